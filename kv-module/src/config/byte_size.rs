//! Sizes in configuration: `64MiB`, `512KiB`, `1GiB`, `4096B`, or a plain
//! integer (bytes).

use serde::Deserializer;

/// Parses a configuration size in bytes: a plain integer, or an integer
/// followed by `B`, `KiB`, `MiB` or `GiB` (binary multiples). Decimal
/// units (`MB`) are refused: they are read as binary by some tools and
/// decimal by others, so no one has to guess.
///
/// ```
/// use kv_module::config::parse_byte_size;
///
/// assert_eq!(parse_byte_size("64MiB"), Ok(64 * 1024 * 1024));
/// assert_eq!(parse_byte_size("512KiB"), Ok(512 * 1024));
/// assert_eq!(parse_byte_size("1000"), Ok(1000));
/// assert!(parse_byte_size("64MB").is_err());
/// ```
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "invalid size `{text}`: write it like `64MiB`, `512KiB`, `1GiB` or a number of bytes"
        )
    };
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let value: u64 = text[..digits].parse().map_err(|_| bad())?;
    let multiplier: u64 = match text[digits..].trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

/// `#[serde(with = "kv_module::config::serde_byte_size")]` for a `u64`
/// field written as `64MiB`, `512KiB` or a plain integer.
pub mod serde_byte_size {
    use super::*;

    /// Deserializes a size: an integer (bytes) or a string with a unit.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }

    /// A visitor rather than an untagged enum, so that a bad string keeps
    /// its own message (an untagged enum would replace it with "did not
    /// match any variant").
    struct SizeVisitor;

    impl serde::de::Visitor<'_> for SizeVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a size such as `64MiB`, `512KiB` or a number of bytes")
        }

        fn visit_u64<E: serde::de::Error>(self, bytes: u64) -> Result<u64, E> {
            Ok(bytes)
        }

        fn visit_i64<E: serde::de::Error>(self, bytes: i64) -> Result<u64, E> {
            u64::try_from(bytes)
                .map_err(|_| E::custom(format!("size must not be negative, got {bytes}")))
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u64, E> {
            parse_byte_size(text).map_err(E::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        let cases = [
            ("0", 0),
            ("1000", 1000),
            ("4096B", 4096),
            ("512KiB", 512 * 1024),
            ("64MiB", 64 << 20),
            ("64 MiB", 64 << 20),
            ("2GiB", 2 << 30),
            (" 1KiB ", 1024),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_byte_size(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "64MB",
            "64mb",
            "64kib",
            "1.5MiB",
            "-1",
            "64MiBs",
            "1e6",
            "99999999999999999999",
        ] {
            assert!(parse_byte_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_byte_size("18446744073709551615GiB").is_err());
    }
}
