//! Durations in configuration: `500ms`, `30s`, `5m`, `24h`, `7d`, or a sum
//! such as `1h30m`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a configuration duration: one or more `<integer><unit>` parts
/// with units `ms`, `s`, `m`, `h`, `d` (`500ms`, `5m`, `1h30m`). A bare
/// number is refused, so that no one has to guess its unit.
///
/// ```
/// use std::time::Duration;
/// use kv_module::config::parse_duration;
///
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("invalid duration `{text}`: write it like `500ms`, `30s`, `5m`, `24h`");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Some(Duration::from_millis(value)),
            "s" => Some(Duration::from_secs(value)),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "h" => value.checked_mul(3600).map(Duration::from_secs),
            "d" => value.checked_mul(86_400).map(Duration::from_secs),
            _ => return Err(bad()),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
    }
    Ok(total)
}

/// `#[serde(with = "kv_module::config::serde_duration")]` for a
/// [`Duration`] field written as `500ms`, `5m`, ...
pub mod serde_duration {
    use super::*;

    /// Deserializes a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "kv_module::config::serde_duration_opt")]` for an
/// `Option<Duration>` field.
pub mod serde_duration_opt {
    use super::*;

    /// Deserializes an optional duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        let cases = [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("24h", 86_400_000),
            ("1d", 86_400_000),
            ("1h30m", 5_400_000),
            ("1s500ms", 1_500),
            (" 2s ", 2_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in [
            "",
            "5",
            "ms",
            "5x",
            "-5s",
            "1.5s",
            "5 s",
            "s5",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("18446744073709551615d").is_err());
    }
}
