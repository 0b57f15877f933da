//! [`RedisConfig`]: how a [`RedisStore`](super::RedisStore) connects, to one
//! server, a Redis Cluster or a Sentinel-managed primary, with or without
//! TLS.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::near_cache::NearCacheConfig;
use super::tls::TlsConfig;
use crate::config::{deserialize_db, deserialize_text};
use crate::secret::Secret;

/// How the store finds its server(s).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server at `addr` or `url` (the default).
    #[default]
    Standalone,
    /// A Redis Cluster reached through the seed `nodes`. Keys are spread
    /// over the cluster's primaries; only database 0 exists.
    Cluster,
    /// The primary that the Sentinels at `nodes` name for `master_name`,
    /// followed across failovers.
    Sentinel,
}

/// Connection settings of a Redis-backed store.
///
/// In standalone mode give either `addr` (`host:port`) or `url`
/// (`redis://` or `rediss://`). `username`, `password` and `db` given here
/// take precedence over those in the URL; a `db` that contradicts the
/// URL's is an error. In cluster and sentinel modes give `nodes` (cluster
/// seed nodes or Sentinel addresses) instead. `Debug` shows passwords as
/// `[redacted]`.
///
/// ```
/// use std::time::Duration;
/// use kv_module::RedisConfig;
///
/// let config = RedisConfig::new("localhost:6379")
///     .with_db(1)
///     .with_prefix("sessions")
///     .with_password("s3cret")
///     .with_command_timeout(Duration::from_millis(500));
/// assert!(!format!("{config:?}").contains("s3cret"));
///
/// let cluster = RedisConfig::cluster(["10.0.0.1:7000", "10.0.0.2:7000"]).with_prefix("sessions");
/// let sentinel = RedisConfig::sentinel(["10.0.0.1:26379"], "mymaster").with_db(1);
/// # let _ = (cluster, sentinel);
/// ```
///
/// In YAML (service type `kvstore_redis`) every field is optional except
/// the addresses (`addr`/`url`, or `nodes`); unknown fields are errors:
///
/// ```yaml
/// config:
///   mode: cluster                  # standalone (default) | cluster | sentinel
///   nodes: ${REDIS_NODES:127.0.0.1:7000,127.0.0.1:7001}  # a list, or one comma-separated string
///   master_name: mymaster          # sentinel only, required there
///   sentinel_password: ${REDIS_SENTINEL_PASSWORD}        # sentinel only
///   password: ${REDIS_PASSWORD}
///   tls:                           # optional; a rediss:// URL turns TLS on too
///     ca_file: ${REDIS_CA_FILE}    # default: the webpki root certificates
///     cert_file: ${REDIS_CERT_FILE}  # client certificate (mutual TLS), with key_file
///     key_file: ${REDIS_KEY_FILE}
///   prefix: sessions
///   pool_size: 1
///   connect_timeout: 5s
///   response_timeout: 2s
///   command_timeout: 2s            # the outer deadline of every store call
///   near_cache:                    # optional: hot reads from memory
///     max_bytes: 64MiB             # keys and values counted; default 64MiB
///     ttl: 30s                     # longest life of a local copy; default 30s
///     mode: auto                   # auto, broadcast or tracking (NearCacheMode)
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Standalone, cluster or sentinel. Default: standalone.
    #[serde(deserialize_with = "deserialize_mode")]
    pub mode: RedisMode,
    /// Standalone only: server address as `host:port` (port defaults to
    /// 6379; IPv6 as `[::1]:6379`). Default: none.
    #[serde(deserialize_with = "deserialize_opt_text")]
    pub addr: Option<String>,
    /// Standalone only: server URL
    /// (`redis[s]://[user][:password@]host[:port][/db]`). Default: none.
    #[serde(deserialize_with = "deserialize_opt_text")]
    pub url: Option<String>,
    /// Cluster: seed nodes; sentinel: the Sentinels. Each `host:port`, or a
    /// `redis://`/`rediss://` URL (all of one scheme). In YAML a list or one
    /// comma-separated string. Default: none.
    #[serde(deserialize_with = "deserialize_nodes")]
    pub nodes: Vec<String>,
    /// Sentinel only, and required there: the name the Sentinels monitor
    /// the primary under.
    #[serde(deserialize_with = "deserialize_opt_text")]
    pub master_name: Option<String>,
    /// Sentinel only: the password of the Sentinels (`requirepass` in their
    /// configuration). Default: none.
    pub sentinel_password: Secret,
    /// ACL user name. Default: none (the `default` user).
    #[serde(deserialize_with = "deserialize_opt_text")]
    pub username: Option<String>,
    /// Password of the data nodes. Default: empty (no `AUTH`).
    pub password: Secret,
    /// Database number, 0–15 (0 only on a cluster, where stores sharing
    /// it need their own `prefix`). Default: the URL's, else 0.
    #[serde(deserialize_with = "deserialize_db")]
    pub db: Option<u8>,
    /// TLS settings; `Some` turns TLS on. Default: off (unless the URL is
    /// `rediss://`).
    pub tls: Option<TlsConfig>,
    /// Number of multiplexed connections used round-robin, 1–256. One
    /// already pipelines concurrent requests. Default: 1,
    /// which is the fastest choice for most loads (see `docs/BENCHMARKS.md`);
    /// measure before raising it.
    #[serde(deserialize_with = "deserialize_pool_size")]
    pub pool_size: usize,
    /// Key prefix; stored keys are `{prefix}:{key}`. Default: empty.
    #[serde(deserialize_with = "deserialize_text")]
    pub prefix: String,
    /// Time allowed to establish a connection (on a cluster at most
    /// `command_timeout`); opening fails fast, naming the address, when
    /// nothing answers. Default: 5 s.
    #[serde(with = "crate::config::serde_duration")]
    pub connect_timeout: Duration,
    /// Time allowed for one reply from a server. Default: 2 s. At least
    /// `command_timeout` (the default), it adds nothing: the call's
    /// deadline ends it first, and the connections set none of their own.
    #[serde(with = "crate::config::serde_duration")]
    pub response_timeout: Duration,
    /// The outer deadline of every store call, reconnection waits and
    /// redirections included: a call fails with
    /// [`KvError::Timeout`](crate::KvError::Timeout) when it passes.
    /// Default: 2 s.
    #[serde(with = "crate::config::serde_duration")]
    pub command_timeout: Duration,
    /// A near cache: `get`/`get_many` answered from memory while Redis
    /// (RESP3 `CLIENT TRACKING`) reports no change of the key; see
    /// [`NearCacheConfig`]. Every mode. Default: none.
    pub near_cache: Option<NearCacheConfig>,
}

/// An optional text field where empty counts as absent.
fn deserialize_opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// `mode`: null (an unset `${VAR}`) is the default.
fn deserialize_mode<'de, D: Deserializer<'de>>(d: D) -> Result<RedisMode, D::Error> {
    Ok(Option::<RedisMode>::deserialize(d)?.unwrap_or_default())
}

/// `nodes`: a list of addresses, or one string of comma-separated ones (so
/// that one `${REDIS_NODES}` can carry them all); null is none.
fn deserialize_nodes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Nodes {
        List(Vec<String>),
        Text(String),
    }
    let nodes = match Option::<Nodes>::deserialize(d)? {
        None => return Ok(Vec::new()),
        Some(Nodes::List(list)) => list,
        Some(Nodes::Text(text)) => text.split(',').map(str::to_owned).collect(),
    };
    Ok(nodes
        .into_iter()
        .map(|node| node.trim().to_owned())
        .filter(|node| !node.is_empty())
        .collect())
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
            mode: RedisMode::Standalone,
            addr: None,
            url: None,
            nodes: Vec::new(),
            master_name: None,
            sentinel_password: Secret::default(),
            username: None,
            password: Secret::default(),
            db: None,
            tls: None,
            pool_size: 1,
            prefix: String::new(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            near_cache: None,
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

    /// Settings for the server at `url` (`redis://...` or `rediss://...`),
    /// other fields default.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Settings for the Redis Cluster reached through the seed `nodes`
    /// (`host:port` each), other fields default.
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            mode: RedisMode::Cluster,
            nodes: nodes.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Settings for the primary that the Sentinels at `sentinels`
    /// (`host:port` each) monitor as `master_name`, other fields default.
    pub fn sentinel<I, S>(sentinels: I, master_name: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            mode: RedisMode::Sentinel,
            nodes: sentinels.into_iter().map(Into::into).collect(),
            master_name: Some(master_name.into()),
            ..Self::default()
        }
    }

    /// Sets the database number (0–15; 0 on a cluster). Default: the
    /// URL's, else 0.
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

    /// Sets the Sentinels' own password. Default: none.
    pub fn with_sentinel_password(mut self, password: impl Into<Secret>) -> Self {
        self.sentinel_password = password.into();
        self
    }

    /// Turns TLS on with `tls`. Default: off (unless the URL is
    /// `rediss://`).
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
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

    /// Sets the time allowed for one reply. Default: 2 s.
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets the outer deadline of every store call. Default: 2 s.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Turns the near cache on: reads of recently read keys answered from
    /// this process's memory, dropped when any client changes them (Redis
    /// pushes an invalidation on a dedicated RESP3 connection; on a
    /// cluster, on one per node). Every mode. Default: off.
    ///
    /// ```
    /// use kv_module::{NearCacheConfig, RedisConfig};
    ///
    /// let config = RedisConfig::new("localhost:6379")
    ///     .with_prefix("users")
    ///     .with_near_cache(NearCacheConfig::new().with_max_bytes(8 << 20));
    /// assert!(config.near_cache.is_some());
    /// ```
    pub fn with_near_cache(mut self, near_cache: NearCacheConfig) -> Self {
        self.near_cache = Some(near_cache);
        self
    }

    /// The addresses for error messages when the settings do not resolve
    /// (never a URL, which may embed a password).
    pub(crate) fn display_addr(&self) -> String {
        match (self.mode, &self.addr, &self.url) {
            (RedisMode::Standalone, Some(addr), _) => addr.clone(),
            (RedisMode::Standalone, None, Some(_)) => "<url>".into(),
            (RedisMode::Standalone, None, None) => "<none>".into(),
            (_, _, _) if self.nodes.iter().any(|n| n.contains("://")) => "<urls>".into(),
            (_, _, _) => self.nodes.join(","),
        }
    }
}
