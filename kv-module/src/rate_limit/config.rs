//! [`RateLimitConfig`]: a limiter as a YAML section names it.

use serde::Deserialize;

use super::policy::RateLimitPolicy;
use crate::registry::StoreRef;

/// The store and the policy of one [`KvRateLimiter`](super::KvRateLimiter), as
/// an application's YAML section holds them; built with
/// [`KvRateLimiter::from_registry`](super::KvRateLimiter::from_registry), as
/// the other components are.
///
/// ```yaml
/// rate_limit:
///   store: ratelimit_cache
///   policy: { algorithm: fixed_window, limit: 100, window: 60s, prefix: api }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The service holding the policy's keys.
    pub store: StoreRef,
    /// The policy (validated when the limiter is built).
    pub policy: RateLimitPolicy,
}
