//! [`SessionConfig`]: the session manager's configuration, and
//! [`SessionSettings`], the same once validated.

use std::time::Duration;

use http::HeaderValue;
use serde::Deserialize;

use super::id::SessionId;
use crate::config::{ConfigError, serde_duration};
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
/// assert_eq!(config.absolute_timeout(), Duration::from_secs(24 * 3600));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSessionConfig")]
pub struct SessionConfig {
    store: StoreRef,
    idle_timeout: Duration,
    absolute_timeout: Duration,
    refresh_interval: Duration,
    cookie_name: String,
    cookie_secure: bool,
}

/// The YAML shape; converted (and validated) into [`SessionConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSessionConfig {
    store: StoreRef,
    #[serde(default = "default_idle", with = "serde_duration")]
    idle_timeout: Duration,
    #[serde(default = "default_absolute", with = "serde_duration")]
    absolute_timeout: Duration,
    #[serde(default = "default_refresh", with = "serde_duration")]
    refresh_interval: Duration,
    #[serde(default = "default_cookie_name")]
    cookie_name: String,
    #[serde(default)]
    cookie_secure: bool,
}

fn default_idle() -> Duration {
    DEFAULT_IDLE_TIMEOUT
}

fn default_absolute() -> Duration {
    DEFAULT_ABSOLUTE_TIMEOUT
}

fn default_refresh() -> Duration {
    DEFAULT_REFRESH_INTERVAL
}

fn default_cookie_name() -> String {
    DEFAULT_COOKIE_NAME.to_owned()
}

impl TryFrom<RawSessionConfig> for SessionConfig {
    type Error = String;

    fn try_from(raw: RawSessionConfig) -> Result<Self, String> {
        let config = Self {
            store: raw.store,
            idle_timeout: raw.idle_timeout,
            absolute_timeout: raw.absolute_timeout,
            refresh_interval: raw.refresh_interval,
            cookie_name: raw.cookie_name,
            cookie_secure: raw.cookie_secure,
        };
        config.validate()?;
        Ok(config)
    }
}

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

    /// Sets the idle (sliding) timeout. Default: 30 minutes.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the absolute timeout (maximum lifetime from creation).
    /// Default: 24 hours.
    pub fn with_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute_timeout = timeout;
        self
    }

    /// Sets how often use of a session may extend its idle timeout.
    /// Default: 60 seconds. Zero refreshes on every use.
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Sets the cookie name. Default: `session_id`.
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Sets whether cookies carry `Secure`. Default: `false` (set it
    /// whenever the site is served over HTTPS).
    pub fn with_cookie_secure(mut self, secure: bool) -> Self {
        self.cookie_secure = secure;
        self
    }

    /// The store the sessions are kept in.
    pub fn store(&self) -> &StoreRef {
        &self.store
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The absolute timeout.
    pub fn absolute_timeout(&self) -> Duration {
        self.absolute_timeout
    }

    /// The refresh interval.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
    }

    /// The cookie name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Whether cookies carry `Secure`.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure
    }

    /// Checks the rules listed on the type; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
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

/// A [`SessionConfig`] that passed validation: what a
/// [`KvSessions`](super::KvSessions) runs with, and what the
/// extractor and the cookie helpers read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    config: SessionConfig,
    idle_ms: u64,
    absolute_ms: u64,
    refresh_ms: u64,
}

impl SessionSettings {
    /// Validates `config`; an error names `component` (the configuration
    /// section or component the sessions belong to).
    pub fn new(component: &str, config: SessionConfig) -> Result<Self, ConfigError> {
        config
            .validate()
            .map_err(|message| invalid_config(component, message))?;
        Ok(Self {
            idle_ms: millis(config.idle_timeout),
            absolute_ms: millis(config.absolute_timeout),
            refresh_ms: millis(config.refresh_interval),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub(crate) fn idle_ms(&self) -> u64 {
        self.idle_ms
    }

    pub(crate) fn absolute_ms(&self) -> u64 {
        self.absolute_ms
    }

    pub(crate) fn refresh_ms(&self) -> u64 {
        self.refresh_ms
    }

    /// The `Set-Cookie` value that hands `id` to a browser:
    /// `HttpOnly` (no script can read it), `SameSite=Lax` (not sent on
    /// cross-site subrequests), `Path=/`, `Secure` when configured, and
    /// `Max-Age` the absolute timeout (the server ends the session earlier
    /// when it idles).
    ///
    /// ```
    /// use kv_module::registry::StoreRef;
    /// use kv_module::session::{SessionConfig, SessionId, SessionSettings};
    ///
    /// let config = SessionConfig::new(StoreRef::new("s")).with_cookie_secure(true);
    /// let settings = SessionSettings::new("sessions", config).unwrap();
    /// let id = SessionId::generate("user-1").unwrap();
    /// let cookie = settings.set_cookie(&id);
    /// assert_eq!(
    ///     cookie.to_str().unwrap(),
    ///     format!("session_id={}; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax; Secure", id.expose())
    /// );
    /// ```
    pub fn set_cookie(&self, id: &SessionId) -> HeaderValue {
        self.cookie(id.expose(), self.config.absolute_timeout.as_secs().max(1))
    }

    /// The `Set-Cookie` value that removes the session cookie (empty value,
    /// `Max-Age=0`), for logout.
    pub fn clear_cookie(&self) -> HeaderValue {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.config.cookie_secure {
            "; Secure"
        } else {
            ""
        };
        let text = format!(
            "{}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.config.cookie_name
        );
        // The name is a validated token and the value base64url, both
        // visible ASCII; the fallback is never taken.
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A validation error of a component's configuration built in code (a
/// configuration read from YAML fails earlier, with its file position).
pub(crate) fn invalid_config(component: &str, message: String) -> ConfigError {
    ConfigError::InvalidSetting {
        component: component.to_owned(),
        path: component.to_owned(),
        message,
    }
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
        assert_eq!(c.idle_timeout(), Duration::from_secs(1800));
        assert_eq!(c.absolute_timeout(), Duration::from_secs(86400));
        assert_eq!(c.refresh_interval(), Duration::from_secs(60));
        assert_eq!(c.cookie_name(), "session_id");
        assert!(!c.cookie_secure());
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
        ];
        for (config, field) in cases {
            let message = config.validate().unwrap_err();
            assert!(message.contains(field), "{message}");
            let err = SessionSettings::new("sessions", config).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_when_asked() {
        let id = SessionId::generate("user-1").unwrap();
        let plain = SessionSettings::new("s", config()).unwrap();
        let text = plain.set_cookie(&id).to_str().unwrap().to_owned();
        assert!(text.starts_with(&format!("session_id={};", id.expose())));
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Lax"));
        assert!(text.contains("Path=/") && !text.contains("Secure"));
        let secure = SessionSettings::new("s", config().with_cookie_secure(true)).unwrap();
        assert!(
            secure
                .set_cookie(&id)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert_eq!(
            secure.clear_cookie().to_str().unwrap(),
            "session_id=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
