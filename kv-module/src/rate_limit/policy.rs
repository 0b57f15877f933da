//! [`RateLimitPolicy`] (a policy as configured) and [`NamedPolicy`] (a
//! validated policy with its name, ready to run).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::algorithm::{Algorithm, OnStoreError};
use crate::config::{ConfigError, deserialize_validated, millis, serde_duration};

/// Largest `limit` and `burst`.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// Longest `window`.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);
/// Bound on the products the scripts compute (`limit × window` in
/// milliseconds for the sliding window, `burst × interval` in microseconds
/// for GCRA). Lua numbers are doubles, exact up to 2^53; staying under
/// 2^50 keeps every intermediate value exact, so the Lua script and its
/// Rust twin give the same answers.
const MAX_PRODUCT: u64 = 1 << 50;

/// One rate-limit policy as written in configuration: an algorithm, a
/// quota (`limit` per `window`), and what to do when the store fails.
///
/// An application has as many as it needs, usually as a map in its own
/// configuration section; each becomes a [`KvRateLimiter`](super::KvRateLimiter)
/// under its name:
///
/// ```
/// use std::collections::BTreeMap;
/// use std::time::Duration;
/// use kv_module::config::ConfigLoader;
/// use kv_module::rate_limit::{Algorithm, OnStoreError, RateLimitPolicy};
///
/// let yaml = "
/// rate_limits:
///   api:   { algorithm: sliding_window, limit: 100, window: 1m }
///   login: { algorithm: gcra, limit: 5, window: 1m, burst: 3, on_store_error: fail_closed }
///   fixed: { algorithm: fixed_window, limit: 1000, window: 1h, prefix: rl-fixed }
/// ";
/// let config = ConfigLoader::new().load_str("app.yaml", yaml)?;
/// let policies: BTreeMap<String, RateLimitPolicy> = config.required_section("rate_limits")?;
/// let login = &policies["login"];
/// assert_eq!(login.algorithm, Algorithm::Gcra);
/// assert_eq!(login.window, Duration::from_secs(60));
/// assert_eq!(login.burst, Some(3));
/// assert_eq!(login.on_store_error, OnStoreError::FailClosed);
///
/// // Invalid values are refused while loading, with file:line:column.
/// let bad = ConfigLoader::new()
///     .load_str("app.yaml", "rate_limits:\n  api: { algorithm: fixed_window, limit: 0, window: 1m }\n")?
///     .section::<BTreeMap<String, RateLimitPolicy>>("rate_limits")
///     .unwrap_err();
/// assert!(bad.to_string().contains("app.yaml:2:"), "{bad}");
///
/// // The same in code, with the builder.
/// let policy = RateLimitPolicy::new(Algorithm::Gcra, 5, Duration::from_secs(60))
///     .with_burst(3)
///     .with_on_store_error(OnStoreError::FailClosed);
/// assert_eq!(&policy, login);
/// # Ok::<(), kv_module::config::ConfigError>(())
/// ```
///
/// | field | default | meaning |
/// |---|---|---|
/// | `algorithm` | — | `fixed_window`, `sliding_window` or `gcra` ([`Algorithm`]) |
/// | `limit` | — | requests (cost units) per `window`, 1 to 10⁹ |
/// | `window` | — | `500ms`, `1m`, `1h`: whole milliseconds, at most 366 days |
/// | `burst` | `limit` | `gcra` only: how many may arrive at once |
/// | `prefix` | the policy's name | key prefix inside the store (`{prefix}:{key}`) |
/// | `on_store_error` | `fail_open` | `fail_open` or `fail_closed` ([`OnStoreError`]) |
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitPolicy {
    /// The algorithm (required).
    pub algorithm: Algorithm,
    /// Requests (cost units) allowed per window, 1 to 10⁹ (required).
    pub limit: u64,
    /// The window: whole milliseconds, at most 366 days (required).
    #[serde(with = "serde_duration")]
    pub window: Duration,
    /// The GCRA burst: how many requests may arrive at once (the bucket's
    /// size). Default: `limit`. Only valid with [`Algorithm::Gcra`].
    #[serde(default)]
    pub burst: Option<u64>,
    /// The key prefix inside the store. Default: the policy's name.
    #[serde(default)]
    pub prefix: Option<String>,
    /// What a check does when the store fails. Default:
    /// [`OnStoreError::FailOpen`].
    #[serde(default)]
    pub on_store_error: OnStoreError,
}

deserialize_validated!(RateLimitPolicy);

impl RateLimitPolicy {
    /// A policy allowing `limit` per `window` with `algorithm`; no burst
    /// (GCRA then allows `limit` at once), the policy's name as prefix, and
    /// fail-open. Validated when it becomes a [`NamedPolicy`].
    pub fn new(algorithm: Algorithm, limit: u64, window: Duration) -> Self {
        Self {
            algorithm,
            limit,
            window,
            burst: None,
            prefix: None,
            on_store_error: OnStoreError::FailOpen,
        }
    }

    /// Sets [`burst`](Self::burst).
    pub fn with_burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Sets [`prefix`](Self::prefix).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets [`on_store_error`](Self::on_store_error).
    pub fn with_on_store_error(mut self, on_store_error: OnStoreError) -> Self {
        self.on_store_error = on_store_error;
        self
    }

    /// Checks every value; the message says which one is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(format!(
                "limit must be 1 to {MAX_LIMIT}, got {}",
                self.limit
            ));
        }
        if self.window.is_zero() || self.window > MAX_WINDOW {
            return Err(format!("window must be 1ms to 366d, got {:?}", self.window));
        }
        if !self.window.subsec_nanos().is_multiple_of(1_000_000) {
            return Err(format!(
                "window must be whole milliseconds, got {:?}",
                self.window
            ));
        }
        if let Some(prefix) = &self.prefix
            && prefix.is_empty()
        {
            return Err("prefix must not be empty (leave it out to use the policy's name)".into());
        }
        let window_ms = millis(self.window);
        match self.algorithm {
            Algorithm::FixedWindow | Algorithm::SlidingWindow => {
                if self.burst.is_some() {
                    return Err(format!(
                        "burst applies only to the gcra algorithm, not {}",
                        self.algorithm
                    ));
                }
                if self.algorithm == Algorithm::SlidingWindow
                    && self.limit.saturating_mul(window_ms) > MAX_PRODUCT
                {
                    return Err(format!(
                        "limit × window is too large for the sliding window \
                         ({} × {window_ms} ms > 2^50): use a shorter window",
                        self.limit
                    ));
                }
            }
            Algorithm::Gcra => {
                let burst = self.burst.unwrap_or(self.limit);
                if !(1..=MAX_LIMIT).contains(&burst) {
                    return Err(format!("burst must be 1 to {MAX_LIMIT}, got {burst}"));
                }
                let window_us = window_ms * 1_000;
                if self.limit > window_us {
                    return Err(format!(
                        "limit {} per {window_ms} ms is more than one per microsecond",
                        self.limit
                    ));
                }
                if burst.saturating_mul(window_us.div_ceil(self.limit)) > MAX_PRODUCT {
                    return Err(format!(
                        "burst {burst} at {} per {window_ms} ms takes more than 2^50 µs to refill",
                        self.limit
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A validated policy and its name: what a
/// [`KvRateLimiter`](super::KvRateLimiter) runs. The name appears in the
/// `RateLimiter-Policy` and `RateLimiter` headers and, by default, as the key
/// prefix.
///
/// ```
/// use std::time::Duration;
/// use kv_module::rate_limit::{Algorithm, NamedPolicy, RateLimitPolicy};
///
/// let policy = RateLimitPolicy::new(Algorithm::FixedWindow, 100, Duration::from_secs(60));
/// let named = NamedPolicy::new("api", policy.clone())?;
/// assert_eq!((named.name(), named.prefix(), named.limit()), ("api", "api", 100));
///
/// // Values are checked here for policies built in code.
/// let zero = RateLimitPolicy::new(Algorithm::FixedWindow, 0, Duration::from_secs(60));
/// assert!(NamedPolicy::new("api", zero).is_err());
/// assert!(NamedPolicy::new("bad\"name", policy).is_err());
/// # Ok::<(), kv_module::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPolicy {
    name: Arc<str>,
    prefix: Arc<str>,
    policy: RateLimitPolicy,
}

impl NamedPolicy {
    /// Validates `policy` under `name`.
    ///
    /// The name must be non-empty printable ASCII without spaces, `"` or
    /// `\` (it is sent as a structured-field string in headers). A bad
    /// value is a [`ConfigError::InvalidSetting`] whose path is
    /// `rate_limit.<name>`; policies loaded from YAML were already checked
    /// with their file location when deserialized.
    pub fn new(name: impl Into<String>, policy: RateLimitPolicy) -> Result<Self, ConfigError> {
        let name = name.into();
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !valid_name {
            return Err(ConfigError::invalid_setting(
                &format!("rate_limit.{name}"),
                "a policy name must be non-empty printable ASCII without spaces, `\"` or `\\`",
            ));
        }
        policy.validate().map_err(|message| {
            ConfigError::invalid_setting(&format!("rate_limit.{name}"), message)
        })?;
        let prefix = policy.prefix.clone().unwrap_or_else(|| name.clone());
        Ok(Self {
            name: Arc::from(name),
            prefix: Arc::from(prefix),
            policy,
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared (a metric label without a copy).
    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// The key prefix: the configured one, else the name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The policy as configured.
    pub fn policy(&self) -> &RateLimitPolicy {
        &self.policy
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.policy.algorithm
    }

    /// Requests (cost units) allowed per window.
    pub fn limit(&self) -> u64 {
        self.policy.limit
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.policy.window
    }

    /// The window in milliseconds.
    pub(crate) fn window_ms(&self) -> u64 {
        millis(self.policy.window)
    }

    /// How many may arrive at once: the GCRA burst (default `limit`), or
    /// `limit` for the window algorithms. The largest cost one check may
    /// carry.
    pub fn capacity(&self) -> u64 {
        match self.policy.algorithm {
            Algorithm::Gcra => self.policy.burst.unwrap_or(self.policy.limit),
            Algorithm::FixedWindow | Algorithm::SlidingWindow => self.policy.limit,
        }
    }

    /// What a check does when the store fails.
    pub fn on_store_error(&self) -> OnStoreError {
        self.policy.on_store_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: RateLimitPolicy) -> Result<NamedPolicy, String> {
        NamedPolicy::new("p", policy).map_err(|e| e.to_string())
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn accepts_sensible_policies_and_defaults() {
        let named = check(RateLimitPolicy::new(Algorithm::Gcra, 10, MINUTE)).unwrap();
        assert_eq!(named.capacity(), 10);
        assert_eq!(named.prefix(), "p");
        assert_eq!(named.on_store_error(), OnStoreError::FailOpen);
        let named = check(
            RateLimitPolicy::new(Algorithm::Gcra, 10, MINUTE)
                .with_burst(25)
                .with_prefix("rl"),
        )
        .unwrap();
        assert_eq!((named.capacity(), named.prefix()), (25, "rl"));
        let named = check(RateLimitPolicy::new(
            Algorithm::SlidingWindow,
            100,
            Duration::from_millis(250),
        ))
        .unwrap();
        assert_eq!(named.window_ms(), 250);
    }

    #[test]
    fn rejects_bad_values_with_a_reason() {
        let cases = [
            (
                RateLimitPolicy::new(Algorithm::FixedWindow, 0, MINUTE),
                "limit",
            ),
            (
                RateLimitPolicy::new(Algorithm::FixedWindow, MAX_LIMIT + 1, MINUTE),
                "limit",
            ),
            (
                RateLimitPolicy::new(Algorithm::FixedWindow, 1, Duration::ZERO),
                "window",
            ),
            (
                RateLimitPolicy::new(Algorithm::FixedWindow, 1, Duration::from_micros(1500)),
                "whole milliseconds",
            ),
            (
                RateLimitPolicy::new(Algorithm::FixedWindow, 1, MAX_WINDOW + MINUTE),
                "window",
            ),
            (
                RateLimitPolicy::new(Algorithm::FixedWindow, 5, MINUTE).with_burst(2),
                "only to the gcra",
            ),
            (
                RateLimitPolicy::new(Algorithm::Gcra, 5, MINUTE).with_burst(0),
                "burst",
            ),
            (
                RateLimitPolicy::new(Algorithm::Gcra, 5_000, Duration::from_millis(1)),
                "microsecond",
            ),
            (
                RateLimitPolicy::new(Algorithm::Gcra, 1, MAX_WINDOW).with_burst(MAX_LIMIT),
                "2^50",
            ),
            (
                RateLimitPolicy::new(Algorithm::SlidingWindow, MAX_LIMIT, MAX_WINDOW),
                "2^50",
            ),
            (
                RateLimitPolicy::new(Algorithm::FixedWindow, 1, MINUTE).with_prefix(""),
                "prefix",
            ),
        ];
        for (policy, expected) in cases {
            let message = check(policy.clone()).unwrap_err();
            assert!(message.contains(expected), "{policy:?}: {message}");
            assert!(message.contains("rate_limit.p"), "{message}");
        }
        for name in ["", "has space", "quo\"te", "back\\slash", "é"] {
            let policy = RateLimitPolicy::new(Algorithm::FixedWindow, 1, MINUTE);
            assert!(NamedPolicy::new(name, policy).is_err(), "{name:?}");
        }
    }
}
