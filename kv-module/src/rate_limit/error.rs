//! [`RateLimitError`]: why a check gave no decision.

use crate::error::KvError;

/// A check that could not decide.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The cost is 0 or more than the policy could ever allow at once
    /// (`limit`, or `burst` for GCRA): no amount of waiting would let it
    /// pass, so it is a caller error rather than a denial.
    #[error("rate limit `{policy}`: cost {cost} is outside 1..={max}")]
    InvalidCost {
        /// The policy's name.
        policy: String,
        /// The cost asked for.
        cost: u64,
        /// The largest cost the policy accepts.
        max: u64,
    },
    /// The store failed and the policy fails closed
    /// ([`OnStoreError::FailClosed`](super::OnStoreError::FailClosed)):
    /// treat the request as refused. Under a fail-open policy a store error
    /// is an allowed [`Decision`](super::Decision) instead.
    #[error("rate limit `{policy}`: the store failed and the policy fails closed")]
    Store {
        /// The policy's name.
        policy: String,
        /// The store's error.
        #[source]
        source: KvError,
    },
}

impl RateLimitError {
    /// True for a store failure (the policy failed closed).
    pub fn is_store_error(&self) -> bool {
        matches!(self, Self::Store { .. })
    }
}
