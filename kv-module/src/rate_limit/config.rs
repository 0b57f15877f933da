//! [`RateLimiterConfig`]: a limiter as a YAML section names it.

use serde::Deserialize;

use super::policy::RateLimitPolicy;
use crate::registry::StoreRef;

/// The store and the policy of one [`RateLimiter`](super::RateLimiter), as
/// an application's YAML section holds them; built with
/// [`RateLimiter::from_registry`](super::RateLimiter::from_registry), as
/// the other components are.
///
/// ```yaml
/// rate_limit:
///   store: ratelimit_cache
///   policy: { algorithm: fixed_window, limit: 100, window: 60s, prefix: api }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimiterConfig {
    /// The service holding the policy's keys.
    pub store: StoreRef,
    /// The policy (validated when the limiter is built).
    pub policy: RateLimitPolicy,
}
