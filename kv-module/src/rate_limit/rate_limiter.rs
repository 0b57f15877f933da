//! [`RateLimiter`]: the limiter's interface, as components and layers see it.

use async_trait::async_trait;

use super::decision::Decision;
use super::error::RateLimitError;
use super::policy::NamedPolicy;

/// A rate limiter for one named policy: the shaku interface of
/// [`KvRateLimiter`](super::KvRateLimiter), and what
/// [`RateLimitLayer`](super::RateLimitLayer) takes (as
/// `Arc<dyn RateLimiter>`), so handlers and layers can share one instance
/// resolved from the DI module or substitute their own.
#[async_trait]
pub trait RateLimiter: crate::Interface {
    /// The policy this limiter enforces.
    fn policy(&self) -> &NamedPolicy;

    /// One check of cost 1 for `key` (an IP address, a user id, ...).
    async fn check(&self, key: &str) -> Result<Decision, RateLimitError> {
        self.check_cost(key, 1).await
    }

    /// One check of cost `cost` (1 to the policy's
    /// [`capacity`](NamedPolicy::capacity)) for `key`. A denied check
    /// consumes nothing.
    async fn check_cost(&self, key: &str, cost: u64) -> Result<Decision, RateLimitError>;

    /// How many checks were let through because the store failed under a
    /// fail-open policy.
    fn failed_open(&self) -> u64;

    /// How many checks were refused because the store failed under a
    /// fail-closed policy.
    fn failed_closed(&self) -> u64;
}
