//! [`Ttl`] (what a write asks for) and [`KeyTtl`] (what a key has).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{KvError, Result};

/// The longest expiry a store accepts: 100 years. Longer ones are rejected
/// with [`KvError::InvalidArgument`] on every backend, so that no backend
/// overflows its clock where another would accept the value.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Expiry requested when writing a key.
///
/// Durations have millisecond precision (Redis `PX`); a non-zero duration
/// shorter than a millisecond is rounded up to one. A zero duration or one
/// above [`MAX_TTL`] is rejected.
///
/// ```
/// use std::time::Duration;
/// use kv_module::Ttl;
///
/// assert_eq!(Ttl::secs(5), Ttl::After(Duration::from_secs(5)));
/// assert_eq!(Ttl::from(Duration::from_millis(250)), Ttl::millis(250));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Ttl {
    /// The key never expires (any previous expiry is removed).
    #[default]
    Never,
    /// The key expires after this duration.
    After(Duration),
}

impl Ttl {
    /// Expire after `secs` seconds.
    pub const fn secs(secs: u64) -> Self {
        Self::After(Duration::from_secs(secs))
    }

    /// Expire after `millis` milliseconds.
    pub const fn millis(millis: u64) -> Self {
        Self::After(Duration::from_millis(millis))
    }

    /// The expiry in whole milliseconds (`None` for [`Ttl::Never`]), or an
    /// [`KvError::InvalidArgument`] naming `store` and `key`.
    pub fn to_millis(self, store: &Arc<str>, key: &str) -> Result<Option<u64>> {
        match self {
            Self::Never => Ok(None),
            Self::After(duration) => duration_millis(duration, store, key).map(Some),
        }
    }
}

impl From<Duration> for Ttl {
    fn from(duration: Duration) -> Self {
        Self::After(duration)
    }
}

/// Validates an expiry duration and converts it to whole milliseconds,
/// rounding a sub-millisecond remainder up.
pub(crate) fn duration_millis(duration: Duration, store: &Arc<str>, key: &str) -> Result<u64> {
    if duration.is_zero() {
        return Err(invalid_ttl(store, key, "a TTL must be greater than zero"));
    }
    if duration > MAX_TTL {
        return Err(invalid_ttl(store, key, "a TTL may not exceed 100 years"));
    }
    let millis = duration.as_millis();
    let rounded = if duration.subsec_nanos().is_multiple_of(1_000_000) {
        millis
    } else {
        millis + 1
    };
    // MAX_TTL bounds the value far below u64::MAX.
    Ok(u64::try_from(rounded).unwrap_or(u64::MAX))
}

fn invalid_ttl(store: &Arc<str>, key: &str, reason: &str) -> KvError {
    KvError::InvalidArgument {
        store: store.clone(),
        key: Some(key.to_owned()),
        reason: reason.to_owned(),
    }
}

/// The expiry state of a stored key, as returned by
/// [`KvStore::ttl`](crate::KvStore::ttl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key exists and expires after the remaining duration
    /// (millisecond precision).
    ExpiresIn(Duration),
}

impl KeyTtl {
    /// The remaining time, when the key expires.
    pub fn remaining(self) -> Option<Duration> {
        match self {
            Self::ExpiresIn(remaining) => Some(remaining),
            Self::Missing | Self::Persistent => None,
        }
    }

    /// What a `PTTL` reply means: -2 missing, -1 persistent, else the
    /// remaining milliseconds.
    pub(crate) fn from_pttl(ms: i64) -> Self {
        match ms {
            -2 => Self::Missing,
            -1 => Self::Persistent,
            ms => Self::ExpiresIn(Duration::from_millis(ms.max(0).unsigned_abs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Arc<str> {
        Arc::from("t")
    }

    #[test]
    fn rounds_sub_millisecond_up_and_rejects_zero_and_huge() {
        let s = store();
        assert_eq!(Ttl::Never.to_millis(&s, "k").ok(), Some(None));
        assert_eq!(Ttl::millis(5).to_millis(&s, "k").ok(), Some(Some(5)));
        assert_eq!(
            Ttl::After(Duration::from_micros(1)).to_millis(&s, "k").ok(),
            Some(Some(1))
        );
        assert_eq!(
            Ttl::After(Duration::from_micros(1500))
                .to_millis(&s, "k")
                .ok(),
            Some(Some(2))
        );
        assert!(matches!(
            Ttl::After(Duration::ZERO).to_millis(&s, "k"),
            Err(KvError::InvalidArgument { .. })
        ));
        assert!(matches!(
            Ttl::After(MAX_TTL + Duration::from_secs(1)).to_millis(&s, "k"),
            Err(KvError::InvalidArgument { .. })
        ));
    }
}
