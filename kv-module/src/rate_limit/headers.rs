//! The rate-limit response headers of draft-ietf-httpapi-ratelimit-headers:
//! `RateLimiter-Policy`, `RateLimiter`, and `Retry-After` on denials.

use http::header::HeaderName;
#[cfg(feature = "axum")]
use http::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use super::decision::{Decision, ceil_secs};
use super::policy::NamedPolicy;

/// `RateLimiter-Policy`: the quota policies applying to the resource.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimiter`: what is left of a policy's quota for this client.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// `"<name>";q=<limit>;w=<window in seconds, rounded up>`.
///
/// ```
/// use std::time::Duration;
/// use kv_module::rate_limit::{policy_header, Algorithm, NamedPolicy, RateLimitPolicy};
///
/// let policy = NamedPolicy::new("default", RateLimitPolicy::new(
///     Algorithm::FixedWindow, 100, Duration::from_secs(60)))?;
/// assert_eq!(policy_header(&policy), r#""default";q=100;w=60"#);
/// # Ok::<(), kv_module::config::ConfigError>(())
/// ```
pub fn policy_header(policy: &NamedPolicy) -> String {
    format!(
        "\"{}\";q={};w={}",
        policy.name(),
        policy.limit(),
        ceil_secs(policy.window())
    )
}

/// `"<name>";r=<remaining>;t=<seconds until reset, rounded up>`.
///
/// ```
/// use std::time::Duration;
/// use kv_module::rate_limit::{rate_limit_header, Algorithm, Decision, NamedPolicy, RateLimitPolicy};
///
/// let policy = NamedPolicy::new("default", RateLimitPolicy::new(
///     Algorithm::FixedWindow, 100, Duration::from_secs(60)))?;
/// let decision = Decision {
///     allowed: true, limit: 100, remaining: 42,
///     reset_after: Duration::from_millis(16_200), retry_after: None,
/// };
/// assert_eq!(rate_limit_header(&policy, &decision), r#""default";r=42;t=17"#);
/// # Ok::<(), kv_module::config::ConfigError>(())
/// ```
pub fn rate_limit_header(policy: &NamedPolicy, decision: &Decision) -> String {
    format!(
        "\"{}\";r={};t={}",
        policy.name(),
        decision.remaining,
        decision.reset_after_secs()
    )
}

/// [`policy_header`] as a header value, built once per layer (the policy
/// does not change): `None` only if it could not be a header value.
#[cfg(feature = "axum")]
pub(crate) fn policy_value(policy: &NamedPolicy) -> Option<HeaderValue> {
    HeaderValue::try_from(policy_header(policy)).ok()
}

/// Appends `RateLimiter-Policy` (`policy_value`, from [`policy_value`]),
/// and with a decision `RateLimiter` (and `Retry-After` when it was
/// denied). Appending rather than replacing lets nested layers each list
/// their policy, as the draft allows.
#[cfg(feature = "axum")]
pub(crate) fn append(
    headers: &mut HeaderMap,
    policy: &NamedPolicy,
    policy_value: Option<&HeaderValue>,
    decision: Option<&Decision>,
) {
    if let Some(value) = policy_value {
        headers.append(RATELIMIT_POLICY, value.clone());
    }
    if let Some(decision) = decision {
        append_value(headers, RATELIMIT, rate_limit_header(policy, decision));
        if let Some(secs) = decision.retry_after_secs() {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

#[cfg(feature = "axum")]
fn append_value(headers: &mut HeaderMap, name: HeaderName, value: String) {
    // Names are validated printable ASCII and the rest is digits, so this
    // cannot fail; if it ever did, a missing header beats a panic.
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.append(name, value);
    }
}
