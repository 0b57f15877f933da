//! [`Decision`]: the answer to one rate-limit check.

use std::time::Duration;

/// The answer to one check: whether the request may proceed, and what the
/// client should be told about its quota.
///
/// ```
/// use std::time::Duration;
/// use kv_module::rate_limit::Decision;
///
/// let denied = Decision {
///     allowed: false,
///     limit: 10,
///     remaining: 0,
///     reset_after: Duration::from_secs(30),
///     retry_after: Some(Duration::from_millis(1500)),
/// };
/// assert_eq!(denied.retry_after_secs(), Some(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the check passed. A denied check consumed nothing.
    pub allowed: bool,
    /// The policy's quota: `limit` per window.
    pub limit: u64,
    /// How many cost units the key may still spend now (after this check,
    /// when it was allowed). For GCRA this is what the bucket holds, which
    /// can exceed `limit` when `burst` does.
    pub remaining: u64,
    /// Time until the key's quota is wholly restored: the rest of a fixed
    /// window; for the sliding window, until neither the current nor the
    /// previous window's count weighs any more; for GCRA, until the bucket
    /// is full again. Zero for a key never used.
    pub reset_after: Duration,
    /// When denied: how long until the same check would pass (`None` when
    /// allowed).
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// [`reset_after`](Self::reset_after) in whole seconds, rounded up (the
    /// `t` of the `RateLimiter` header).
    pub fn reset_after_secs(&self) -> u64 {
        ceil_secs(self.reset_after)
    }

    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up so a
    /// client that waits that long is not refused again (the
    /// `Retry-After` header).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(ceil_secs)
    }
}

/// Seconds, rounded up.
pub(crate) fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}
