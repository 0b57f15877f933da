//! [`SessionConfig`]: the configuration of [`KvSessions`](super::KvSessions).

use std::time::Duration;

use serde::Deserialize;

use crate::config::{deserialize_validated, serde_duration};
use crate::registry::StoreRef;
use crate::store::MAX_TTL;

/// Default idle timeout: 30 minutes (OWASP's upper bound for low-risk
/// applications).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default absolute timeout: 24 hours.
pub const DEFAULT_ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// Default refresh interval: 60 seconds.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "session_id";

/// Configuration of a [`KvSessions`](super::KvSessions), as a YAML
/// section or built in code.
///
/// ```yaml
/// sessions:
///   store: session_cache      # the kvstore service holding the sessions (required)
///   idle_timeout: 30m         # ends a session unused this long (default 30m)
///   absolute_timeout: 24h     # ends any session this long after creation (default 24h)
///   refresh_interval: 60s     # extend the idle timeout at most this often (default 60s)
///   cookie_name: session_id   # default session_id
///   cookie_secure: true       # `Secure` cookies (default false; set it behind HTTPS)
/// ```
///
/// Deserializing checks the rules below, so a bad value fails at start-up
/// with its file position; [`KvSessions::new`](super::KvSessions::new)
/// checks them again for configurations built in code:
///
/// * both timeouts between 1 ms and 100 years, idle not above absolute;
/// * the refresh interval below the idle timeout (otherwise a session in
///   use would still expire);
/// * the cookie name an RFC 6265 token.
///
/// ```
/// use std::time::Duration;
/// use kv_module::registry::StoreRef;
/// use kv_module::session::SessionConfig;
///
/// let config = SessionConfig::new(StoreRef::new("session_cache"))
///     .with_idle_timeout(Duration::from_secs(15 * 60))
///     .with_cookie_secure(true);
/// assert_eq!(config.absolute_timeout, Duration::from_secs(24 * 3600));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    default = "SessionConfig::defaults"
)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The store the sessions are kept in (required).
    pub store: StoreRef,
    /// The idle (sliding) timeout. Default: 30 minutes.
    #[serde(with = "serde_duration")]
    pub idle_timeout: Duration,
    /// The absolute timeout (maximum lifetime from creation). Default: 24 hours.
    #[serde(with = "serde_duration")]
    pub absolute_timeout: Duration,
    /// How often use of a session may extend its idle timeout. Default:
    /// 60 seconds; zero refreshes on every use.
    #[serde(with = "serde_duration")]
    pub refresh_interval: Duration,
    /// The cookie name. Default: `session_id`.
    pub cookie_name: String,
    /// Whether cookies carry `Secure`. Default: `false` (set it whenever
    /// the site is served over HTTPS).
    pub cookie_secure: bool,
}

deserialize_validated!(SessionConfig);

impl SessionConfig {
    /// The defaults, with sessions kept in the store named `store`.
    pub fn new(store: StoreRef) -> Self {
        Self {
            store,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            absolute_timeout: DEFAULT_ABSOLUTE_TIMEOUT,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            cookie_secure: false,
        }
    }

    /// What YAML leaves out (the store is required: its empty default
    /// fails validation).
    fn defaults() -> Self {
        Self::new(StoreRef::new(""))
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`absolute_timeout`](Self::absolute_timeout).
    pub fn with_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute_timeout = timeout;
        self
    }

    /// Sets [`refresh_interval`](Self::refresh_interval).
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Sets [`cookie_name`](Self::cookie_name).
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Sets [`cookie_secure`](Self::cookie_secure).
    pub fn with_cookie_secure(mut self, secure: bool) -> Self {
        self.cookie_secure = secure;
        self
    }

    /// Checks the rules listed on the type; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.store.name().is_empty() {
            return Err("store is required: the kvstore service holding the sessions".to_owned());
        }
        let ms = Duration::from_millis(1);
        for (field, value) in [
            ("idle_timeout", self.idle_timeout),
            ("absolute_timeout", self.absolute_timeout),
        ] {
            if value < ms || value > MAX_TTL {
                return Err(format!(
                    "{field} must be between 1ms and 100 years, got {value:?}"
                ));
            }
        }
        if self.idle_timeout > self.absolute_timeout {
            return Err(format!(
                "idle_timeout ({:?}) must not exceed absolute_timeout ({:?})",
                self.idle_timeout, self.absolute_timeout
            ));
        }
        if self.refresh_interval >= self.idle_timeout {
            return Err(format!(
                "refresh_interval ({:?}) must be shorter than idle_timeout ({:?}), \
                 or sessions in use would expire",
                self.refresh_interval, self.idle_timeout
            ));
        }
        if !is_cookie_token(&self.cookie_name) {
            return Err(format!(
                "cookie_name `{}` is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)",
                self.cookie_name
            ));
        }
        Ok(())
    }
}

/// RFC 6265 `cookie-name` (an RFC 7230 token).
fn is_cookie_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig::new(StoreRef::new("s"))
    }

    #[test]
    fn defaults_are_valid_and_documented() {
        let c = config();
        assert_eq!(c.idle_timeout, Duration::from_secs(1800));
        assert_eq!(c.absolute_timeout, Duration::from_secs(86400));
        assert_eq!(c.refresh_interval, Duration::from_secs(60));
        assert_eq!(c.cookie_name, "session_id");
        assert!(!c.cookie_secure);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_values_are_rejected_with_the_field() {
        let cases = [
            (config().with_idle_timeout(Duration::ZERO), "idle_timeout"),
            (
                config().with_absolute_timeout(Duration::from_secs(60)),
                "absolute_timeout",
            ),
            (
                config().with_refresh_interval(Duration::from_secs(1800)),
                "refresh_interval",
            ),
            (config().with_cookie_name("a b"), "cookie_name"),
            (config().with_cookie_name(""), "cookie_name"),
            (SessionConfig::defaults(), "store"),
        ];
        for (config, field) in cases {
            let message = config.validate().unwrap_err();
            assert!(message.contains(field), "{message}");
        }
    }
}
