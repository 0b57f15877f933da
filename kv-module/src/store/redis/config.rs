//! [`RedisConfig`]: how a [`RedisStore`](super::RedisStore) connects.

use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};
use serde::{Deserialize, Deserializer};

use crate::secret::Secret;

/// Connection settings of a Redis-backed store.
///
/// Give either `addr` (`host:port`) or `url` (`redis://` or, with the `tls`
/// feature, `rediss://`). `username`, `password` and `db` given here take
/// precedence over those in the URL; a `db` that contradicts the URL's is an
/// error. `Debug` shows the password as `[redacted]`.
///
/// ```
/// use std::time::Duration;
/// use kv_module::RedisConfig;
///
/// let config = RedisConfig::new("localhost:6379")
///     .with_db(1)
///     .with_prefix("sessions")
///     .with_password("s3cret")
///     .with_response_timeout(Duration::from_millis(500));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
///
/// In YAML (service type `kvstore_redis`), every field is optional except
/// that one of `addr` and `url` must be given; unknown fields are errors:
///
/// ```yaml
/// config:
///   addr: ${REDIS_ADDR:localhost:6379}
///   password: ${REDIS_PASSWORD}
///   db: 1
///   pool_size: 1
///   prefix: sessions
///   connect_timeout: 5s
///   response_timeout: 2s
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Server address as `host:port` (port defaults to 6379). Default: none.
    #[serde(deserialize_with = "deserialize_opt_text")]
    pub addr: Option<String>,
    /// Server URL (`redis://[user][:password@]host[:port][/db]`). Default: none.
    #[serde(deserialize_with = "deserialize_opt_text")]
    pub url: Option<String>,
    /// ACL user name. Default: none (the `default` user).
    #[serde(deserialize_with = "deserialize_opt_text")]
    pub username: Option<String>,
    /// Password. Default: empty (no `AUTH`).
    pub password: Secret,
    /// Database number, 0–15. Default: the URL's, else 0.
    #[serde(deserialize_with = "deserialize_db")]
    pub db: Option<u8>,
    /// Number of multiplexed connections used round-robin. Default: 1,
    /// which is the fastest choice for most loads (see `docs/BENCHMARKS.md`);
    /// measure before raising it.
    #[serde(deserialize_with = "deserialize_pool_size")]
    pub pool_size: usize,
    /// Key prefix; stored keys are `{prefix}:{key}`. Default: empty.
    #[serde(deserialize_with = "deserialize_text")]
    pub prefix: String,
    /// Time allowed to establish a connection. Default: 5 s.
    #[serde(with = "crate::config::serde_duration")]
    pub connect_timeout: Duration,
    /// Time allowed for a response to a command. Default: 2 s.
    #[serde(with = "crate::config::serde_duration")]
    pub response_timeout: Duration,
}

/// A text field that may be written empty (`prefix:` or an unset
/// `${VAR}`, both of which YAML reads as null): null is the empty string.
pub(crate) fn deserialize_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// An optional text field where empty counts as absent.
fn deserialize_opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// `db`: an integer from 0 to 15 (null: not given).
pub(crate) fn deserialize_db<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match Option::<i64>::deserialize(d)? {
        None => Ok(None),
        Some(db @ 0..=15) => Ok(u8::try_from(db).ok()),
        Some(db) => Err(serde::de::Error::custom(format!(
            "db must be between 0 and 15, got {db}"
        ))),
    }
}

fn deserialize_pool_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let size = Option::<i64>::deserialize(d)?.unwrap_or(1);
    match usize::try_from(size) {
        Ok(size @ 1..=MAX_POOL_SIZE) => Ok(size),
        _ => Err(serde::de::Error::custom(format!(
            "pool_size must be between 1 and {MAX_POOL_SIZE}, got {size}"
        ))),
    }
}

/// The most connections one store may open.
pub const MAX_POOL_SIZE: usize = 256;

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            addr: None,
            url: None,
            username: None,
            password: Secret::default(),
            db: None,
            pool_size: 1,
            prefix: String::new(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(2),
        }
    }
}

impl RedisConfig {
    /// Settings for the server at `addr` (`host:port`), other fields default.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: Some(addr.into()),
            ..Self::default()
        }
    }

    /// Settings for the server at `url` (`redis://...`), other fields default.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Sets the database number (0–15). Default: the URL's, else 0.
    pub fn with_db(mut self, db: u8) -> Self {
        self.db = Some(db);
        self
    }

    /// Sets the key prefix. Default: empty (keys stored as given).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the ACL user name. Default: none.
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the password. Default: none.
    pub fn with_password(mut self, password: impl Into<Secret>) -> Self {
        self.password = password.into();
        self
    }

    /// Sets the number of multiplexed connections. Default: 1.
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// Sets the connect timeout. Default: 5 s.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the response timeout. Default: 2 s.
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Checks the settings and resolves them into redis-rs connection info
    /// and a display address (`host:port/db`, never the password).
    pub(crate) fn resolve(&self) -> Result<(ConnectionInfo, String), String> {
        if self.pool_size == 0 || self.pool_size > MAX_POOL_SIZE {
            return Err(format!(
                "pool_size must be between 1 and {MAX_POOL_SIZE}, got {}",
                self.pool_size
            ));
        }
        if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return Err("connect_timeout and response_timeout must be greater than zero".into());
        }
        let info = match (&self.addr, &self.url) {
            (Some(_), Some(_)) => return Err("give either `addr` or `url`, not both".into()),
            (None, None) => return Err("one of `addr` or `url` is required".into()),
            (Some(addr), None) => {
                let (host, port) = parse_addr(addr)?;
                ConnectionAddr::Tcp(host, port)
                    .into_connection_info()
                    .map_err(|e| format!("invalid addr `{addr}`: {e}"))?
            }
            (None, Some(url)) => url
                .as_str()
                .into_connection_info()
                .map_err(|_| "invalid url: expected redis://host[:port][/db]".to_string())?,
        };
        if matches!(info.addr(), ConnectionAddr::TcpTls { .. }) && !cfg!(feature = "tls") {
            return Err("rediss:// needs kv-module's `tls` feature".into());
        }
        let url_db = info.redis_settings().db();
        let db = match self.db {
            Some(db) if self.url.is_some() && url_db != 0 && url_db != i64::from(db) => {
                return Err(format!("db {db} contradicts the url's db {url_db}"));
            }
            Some(db) => i64::from(db),
            None => url_db,
        };
        if !(0..=15).contains(&db) {
            return Err(format!("db must be between 0 and 15, got {db}"));
        }
        let mut redis: RedisConnectionInfo = info.redis_settings().clone().set_db(db);
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if !self.password.is_empty() {
            redis = redis.set_password(self.password.expose());
        }
        let display = format!("{}/{db}", info.addr());
        let tcp = redis::io::tcp::TcpSettings::default().set_nodelay(true);
        let info = info.set_redis_settings(redis).set_tcp_settings(tcp);
        Ok((info, display))
    }

    /// The address for error messages when the settings do not resolve.
    pub(crate) fn display_addr(&self) -> String {
        match (&self.addr, &self.url) {
            (Some(addr), _) => addr.clone(),
            // A URL may embed a password: show only that one was given.
            (None, Some(_)) => "<url>".into(),
            (None, None) => "<none>".into(),
        }
    }
}

fn parse_addr(addr: &str) -> Result<(String, u16), String> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Err("addr is empty".into());
    }
    if addr.contains("://") {
        return Err(format!("addr `{addr}` looks like a URL: put it in `url`"));
    }
    // `[::1]:6379`, `host:6379`, or `host` alone.
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("addr `{addr}`: unclosed `[`"))?;
        let port = after.strip_prefix(':').unwrap_or(after);
        (host, port)
    } else if addr.matches(':').count() > 1 {
        return Err(format!(
            "addr `{addr}`: write IPv6 addresses as [addr]:port"
        ));
    } else {
        addr.split_once(':').unwrap_or((addr, ""))
    };
    if host.is_empty() {
        return Err(format!("addr `{addr}` has no host"));
    }
    let port = if port.is_empty() {
        6379
    } else {
        port.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("addr `{addr}`: port must be 1–65535"))?
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(parse_addr("localhost:6380"), Ok(("localhost".into(), 6380)));
        assert_eq!(parse_addr("redis"), Ok(("redis".into(), 6379)));
        assert_eq!(parse_addr("[::1]:7000"), Ok(("::1".into(), 7000)));
        assert!(parse_addr("").is_err());
        assert!(parse_addr("host:0").is_err());
        assert!(parse_addr("host:99999").is_err());
        assert!(parse_addr("::1:6379").is_err());
        assert!(parse_addr("redis://x").is_err());
    }

    #[test]
    fn validates_and_redacts() {
        let config = RedisConfig::new("h:1").with_password("pw-123").with_db(16);
        assert!(config.resolve().unwrap_err().contains("between 0 and 15"));
        assert!(!format!("{config:?}").contains("pw-123"));
        assert!(RedisConfig::new("h:1").with_pool_size(0).resolve().is_err());
        let both = RedisConfig {
            url: Some("redis://h".into()),
            ..RedisConfig::new("h:1")
        };
        assert!(both.resolve().is_err());
        assert!(RedisConfig::default().resolve().is_err());
    }

    #[test]
    fn url_db_and_overrides() {
        let (info, display) = RedisConfig::from_url("redis://:pw@h:7/3")
            .resolve()
            .expect("valid url");
        assert_eq!(info.redis_settings().db(), 3);
        assert_eq!(display, "h:7/3");
        assert!(
            RedisConfig::from_url("redis://h:7/3")
                .with_db(4)
                .resolve()
                .is_err()
        );
        let (info, _) = RedisConfig::from_url("redis://h:7")
            .with_db(5)
            .resolve()
            .expect("valid url");
        assert_eq!(info.redis_settings().db(), 5);
        assert!(info.tcp_settings().nodelay());
    }
}
