//! Randomness for TTL jitter and tokens (operating-system randomness
//! through `getrandom`, with a fallback so that a failing source degrades
//! the spread, never a request).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A uniform number in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    let bits = getrandom::u64().unwrap_or_else(|_| fallback_bits());
    // The top 53 bits fill a double's mantissa exactly.
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

/// `base_ms × (1 + jitter × (2u − 1))`, rounded, at least 1 ms: a TTL
/// spread uniformly over `base ± jitter` for `u` uniform in `[0, 1)`.
pub(crate) fn jittered_ms(base_ms: u64, jitter: f64, u: f64) -> u64 {
    if jitter <= 0.0 {
        return base_ms.max(1);
    }
    let factor = 1.0 + jitter * (2.0 * u - 1.0);
    // Validation keeps `base × (1 + jitter)` within 100 years, far inside
    // both f64's exact integers and u64.
    ((base_ms as f64 * factor).round() as u64).max(1)
}

/// A unique token: 128 random bits as 32 hex digits.
pub(crate) fn token() -> String {
    let mut bytes = [0_u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Unique rather than unpredictable: tokens only need to differ.
        bytes[..8].copy_from_slice(&fallback_bits().to_le_bytes());
        bytes[8..].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Clock nanoseconds mixed with a process-wide counter (SplitMix64), for
/// when the operating system's source fails.
fn fallback_bits() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spans_the_range() {
        assert_eq!(jittered_ms(1000, 0.1, 0.0), 900);
        assert_eq!(jittered_ms(1000, 0.1, 0.5), 1000);
        assert_eq!(jittered_ms(1000, 0.1, 0.999_999), 1100);
        assert_eq!(jittered_ms(1000, 0.0, 0.3), 1000);
        assert_eq!(jittered_ms(1, 0.5, 0.0), 1);
    }

    #[test]
    fn unit_is_in_range_and_varies() {
        let draws: Vec<f64> = (0..1000).map(|_| unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.4..0.6).contains(&mean), "mean {mean}");
    }

    #[test]
    fn tokens_are_unique_hex() {
        let a = token();
        let b = token();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_ne!(fallback_bits(), fallback_bits());
    }
}
