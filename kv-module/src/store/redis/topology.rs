//! [`Topology`]: a [`RedisConfig`] checked and resolved into what the
//! store connects to — one server, a cluster, or Sentinels — before any
//! connection is made, so every mistake is a start-up error.

use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use super::config::{MAX_POOL_SIZE, RedisConfig, RedisMode};

/// What a store connects to, with everything it needs to (re)connect.
#[derive(Clone)]
pub(crate) struct Topology {
    pub(crate) kind: Kind,
    /// The address(es) for messages: `host:port/db`, `cluster a,b`,
    /// `sentinel name via a,b`; never a password.
    pub(crate) display: String,
    /// The server as the circuit breaker knows it (see `breaker.rs`): the
    /// stores of one server share one breaker whatever their database. A
    /// cluster's is unused: each primary has a breaker of its own
    /// (`node_map.rs`).
    pub(crate) server: String,
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) command_timeout: Duration,
}

#[derive(Clone)]
pub(crate) enum Kind {
    Standalone(redis::Client),
    Cluster(Box<ClusterClients>),
    Sentinel(SentinelTarget),
}

/// The clients of a cluster: one for the shared connections, and one for
/// the dedicated connections of blocking pops, whose replies may take as
/// long as the pop waits (`response_timeout` would cut them short).
#[derive(Clone)]
pub(crate) struct ClusterClients {
    pub(crate) calls: redis::cluster::ClusterClient,
    pub(crate) blocking: redis::cluster::ClusterClient,
    /// Builds the near cache's tracking client (RESP3, with its push
    /// sender) with the same settings.
    pub(crate) tracking: ClusterFactory,
}

/// Builds a cluster client with a store's settings: RESP3 with the given
/// push sender when there is one.
pub(crate) type ClusterFactory = Arc<
    dyn Fn(
            Option<Arc<dyn redis::aio::AsyncPushSender>>,
        ) -> redis::RedisResult<redis::cluster::ClusterClient>
        + Send
        + Sync,
>;

/// How to find and reach the primary behind a set of Sentinels.
#[derive(Clone)]
pub(crate) struct SentinelTarget {
    /// One client per Sentinel (its password, TLS).
    pub(crate) sentinels: Vec<redis::Client>,
    pub(crate) master_name: String,
    /// Database, user and password of the data nodes.
    pub(crate) redis: RedisConnectionInfo,
    /// Certificates for the data nodes when TLS is on (`Some(None)`: TLS
    /// with the default roots).
    pub(crate) tls: Option<Option<Certificates>>,
}

#[cfg(feature = "tls")]
pub(crate) type Certificates = redis::TlsCertificates;
/// Without the `tls` feature no certificate can be loaded.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub(crate) enum Certificates {}

impl SentinelTarget {
    /// A client for the data node at `host:port` (the primary a Sentinel
    /// named), with the data nodes' credentials and TLS.
    pub(crate) fn master_client(
        &self,
        host: String,
        port: u16,
    ) -> redis::RedisResult<redis::Client> {
        let invalid = |reason: String| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "cannot use the master address a Sentinel gave",
                reason,
            ))
        };
        let info = node_info(host, port, self.tls.is_some())
            .map_err(invalid)?
            .set_redis_settings(self.redis.clone())
            .set_tcp_settings(tcp_settings());
        client(info, self.tls.clone().flatten()).map_err(invalid)
    }
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("display", &self.display)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// Checks every rule of the settings and resolves them. The error is a
    /// sentence for the user (the registry adds the file position).
    pub(crate) fn resolve(&self) -> Result<Topology, String> {
        if self.pool_size == 0 || self.pool_size > MAX_POOL_SIZE {
            return Err(format!(
                "pool_size must be between 1 and {MAX_POOL_SIZE}, got {}",
                self.pool_size
            ));
        }
        let timeouts = [
            ("connect_timeout", self.connect_timeout),
            ("response_timeout", self.response_timeout),
            ("command_timeout", self.command_timeout),
        ];
        if let Some((name, _)) = timeouts.iter().find(|(_, t)| t.is_zero()) {
            return Err(format!("{name} must be greater than zero"));
        }
        if let Some(near_cache) = self.near_cache.as_ref().filter(|n| n.enabled) {
            near_cache.check(self.mode == RedisMode::Cluster)?;
        }
        let certificates = self.certificates()?;
        let (kind, display, server) = match self.mode {
            RedisMode::Standalone => self.standalone(certificates)?,
            RedisMode::Cluster => self.cluster_client(certificates)?,
            RedisMode::Sentinel => self.sentinel_target(certificates)?,
        };
        Ok(Topology {
            kind,
            display,
            server,
            pool_size: self.pool_size,
            connect_timeout: self.connect_timeout,
            response_timeout: self.response_timeout,
            command_timeout: self.command_timeout,
        })
    }

    /// The certificates of the `tls` section, loaded and checked.
    fn certificates(&self) -> Result<Option<Certificates>, String> {
        match &self.tls {
            None => Ok(None),
            #[cfg(feature = "tls")]
            Some(tls) => tls.load().map(Some),
            #[cfg(not(feature = "tls"))]
            Some(_) => Err(no_tls_feature()),
        }
    }

    /// Rules shared by the modes that take `nodes`, and the fields that
    /// belong to another mode.
    fn check_mode_fields(&self) -> Result<(), String> {
        let mode = match self.mode {
            RedisMode::Standalone => "standalone",
            RedisMode::Cluster => "cluster",
            RedisMode::Sentinel => "sentinel",
        };
        if self.mode == RedisMode::Standalone {
            if !self.nodes.is_empty() {
                return Err("`nodes` is for `mode: cluster` or `mode: sentinel`; \
                            a standalone server takes `addr` or `url`"
                    .into());
            }
        } else {
            if self.addr.is_some() || self.url.is_some() {
                return Err(format!(
                    "`addr` and `url` are for a standalone server; in {mode} mode list the \
                     {} in `nodes`",
                    if self.mode == RedisMode::Cluster {
                        "seed nodes"
                    } else {
                        "Sentinels"
                    }
                ));
            }
            if self.nodes.is_empty() {
                return Err(format!(
                    "`nodes` is required in {mode} mode (a list, or one comma-separated string \
                     of host:port)"
                ));
            }
        }
        if self.mode != RedisMode::Sentinel {
            if self.master_name.is_some() {
                return Err("`master_name` is for `mode: sentinel`".into());
            }
            if !self.sentinel_password.is_empty() {
                return Err("`sentinel_password` is for `mode: sentinel`".into());
            }
        }
        Ok(())
    }

    fn standalone(
        &self,
        certificates: Option<Certificates>,
    ) -> Result<(Kind, String, String), String> {
        self.check_mode_fields()?;
        let info = match (&self.addr, &self.url) {
            (Some(_), Some(_)) => return Err("give either `addr` or `url`, not both".into()),
            (None, None) => return Err("one of `addr` or `url` is required".into()),
            (Some(addr), None) => {
                let (host, port) = parse_addr(addr)?;
                node_info(host, port, self.tls.is_some())?
            }
            (None, Some(url)) => {
                let info = parse_url(url)?;
                if self.tls.is_some() && !is_tls(&info) {
                    return Err(plain_url_with_tls());
                }
                info
            }
        };
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
        let display = format!("{}/{db}", info.addr());
        let server = info.addr().to_string();
        let redis = self.credentials(info.redis_settings().clone().set_db(db));
        let info = info
            .set_redis_settings(redis)
            .set_tcp_settings(tcp_settings());
        let client = client(info, certificates)?;
        Ok((Kind::Standalone(client), display, server))
    }

    fn cluster_client(
        &self,
        certificates: Option<Certificates>,
    ) -> Result<(Kind, String, String), String> {
        self.check_mode_fields()?;
        if let Some(db) = self.db.filter(|db| *db != 0) {
            return Err(format!(
                "db {db}: a Redis Cluster has only database 0; give each store its own `prefix` \
                 to keep stores apart"
            ));
        }
        let seeds = self.node_infos()?;
        if let Some(seed) = seeds.iter().find(|info| info.redis_settings().db() != 0) {
            return Err(format!(
                "node {}: a Redis Cluster has only database 0; give each store its own `prefix` \
                 to keep stores apart",
                seed.addr()
            ));
        }
        let tls = seeds.first().is_some_and(is_tls);
        let display = format!("cluster {}", join_addrs(&seeds));
        let server = display.clone();
        // A node connection may be opened in the middle of a call (after a
        // redirection, or by a repair racing a failover, when a frozen node
        // accepts TCP but never answers): it must fit in the call's deadline.
        let node_connect_timeout = self.connect_timeout.min(self.command_timeout);
        let build = |response_timeout: Duration| {
            self.cluster_builder(
                seeds.clone(),
                node_connect_timeout,
                tls,
                certificates.clone(),
                response_timeout,
                None,
            )
            .map_err(|e| format!("invalid cluster settings: {e}"))
        };
        let (config, tracking_seeds, tracking_certificates) =
            (self.clone(), seeds.clone(), certificates.clone());
        let tracking: ClusterFactory = Arc::new(move |push| {
            config.cluster_builder(
                tracking_seeds.clone(),
                node_connect_timeout,
                tls,
                tracking_certificates.clone(),
                config.response_timeout,
                push,
            )
        });
        let clients = ClusterClients {
            calls: build(self.response_timeout)?,
            // A blocking pop is bounded by the store (its timeout plus
            // `command_timeout`), never by the client.
            blocking: build(crate::store::MAX_BLOCKING_TIMEOUT + self.command_timeout)?,
            tracking,
        };
        Ok((Kind::Cluster(Box::new(clients)), display, server))
    }

    /// A cluster client with this config's settings and `response_timeout`;
    /// RESP3 with `push` as its push sender when given (the near cache's).
    fn cluster_builder(
        &self,
        seeds: Vec<ConnectionInfo>,
        node_connect_timeout: Duration,
        tls: bool,
        certificates: Option<Certificates>,
        response_timeout: Duration,
        push: Option<Arc<dyn redis::aio::AsyncPushSender>>,
    ) -> redis::RedisResult<redis::cluster::ClusterClient> {
        let mut builder = redis::cluster::ClusterClientBuilder::new(seeds)
            .connection_timeout(node_connect_timeout)
            .response_timeout(response_timeout)
            // The store's own deadline bounds every call, and a failed call
            // is repaired by rebuilding the connection (see `link.rs`), so
            // redis-rs's own retries (16, from 1.28 s each by default) would
            // only hold a caller past its deadline.
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .tcp_settings(tcp_settings());
        if let Some(username) = &self.username {
            builder = builder.username(username);
        }
        if !self.password.is_empty() {
            builder = builder.password(self.password.expose());
        }
        #[cfg(feature = "tls")]
        if tls {
            builder = builder.tls(redis::TlsMode::Secure);
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
        }
        #[cfg(not(feature = "tls"))]
        let _ = (tls, certificates);
        if let Some(push) = push {
            builder = builder
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push);
        }
        builder.build()
    }

    fn sentinel_target(
        &self,
        certificates: Option<Certificates>,
    ) -> Result<(Kind, String, String), String> {
        self.check_mode_fields()?;
        let master_name = self
            .master_name
            .clone()
            .ok_or("`master_name` is required in sentinel mode: the name the Sentinels monitor")?;
        let infos = self.node_infos()?;
        let tls = infos.first().is_some_and(is_tls);
        let display = format!("sentinel {master_name} via {}", join_addrs(&infos));
        let mut sorted: Vec<String> = infos.iter().map(|info| info.addr().to_string()).collect();
        sorted.sort();
        let server = format!("sentinel {master_name} via {}", sorted.join(","));
        let sentinels = infos
            .into_iter()
            .map(|info| {
                let mut redis = RedisConnectionInfo::default();
                if !self.sentinel_password.is_empty() {
                    redis = redis.set_password(self.sentinel_password.expose());
                }
                client(
                    info.set_redis_settings(redis)
                        .set_tcp_settings(tcp_settings()),
                    certificates.clone(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let db = self.db.map_or(0, i64::from);
        let redis = self.credentials(RedisConnectionInfo::default().set_db(db));
        let target = SentinelTarget {
            sentinels,
            master_name,
            redis,
            tls: tls.then_some(certificates),
        };
        Ok((Kind::Sentinel(target), display, server))
    }

    /// `nodes` as connection infos, all plain or all TLS.
    fn node_infos(&self) -> Result<Vec<ConnectionInfo>, String> {
        let infos = self
            .nodes
            .iter()
            .map(|node| {
                if node.contains("://") {
                    let info = parse_url(node)?;
                    if self.tls.is_some() && !is_tls(&info) {
                        return Err(plain_url_with_tls());
                    }
                    Ok(info)
                } else {
                    let (host, port) = parse_addr(node)?;
                    node_info(host, port, self.tls.is_some())
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        if infos.iter().any(is_tls) && !infos.iter().all(is_tls) {
            return Err("`nodes` mixes redis:// and rediss:// URLs: use one scheme".into());
        }
        Ok(infos)
    }

    /// `info` with this config's user name and password, when given.
    fn credentials(&self, mut info: RedisConnectionInfo) -> RedisConnectionInfo {
        if let Some(username) = &self.username {
            info = info.set_username(username);
        }
        if !self.password.is_empty() {
            info = info.set_password(self.password.expose());
        }
        info
    }
}

/// A client for one server, with the loaded certificates when given.
fn client(
    info: ConnectionInfo,
    certificates: Option<Certificates>,
) -> Result<redis::Client, String> {
    let built = match certificates {
        None => redis::Client::open(info),
        #[cfg(feature = "tls")]
        Some(certificates) => redis::Client::build_with_tls(info, certificates),
        #[cfg(not(feature = "tls"))]
        Some(never) => match never {},
    };
    built.map_err(|e| format!("invalid settings: {e}"))
}

/// TCP_NODELAY on: a store sends small requests and waits for each reply.
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

fn is_tls(info: &ConnectionInfo) -> bool {
    matches!(info.addr(), ConnectionAddr::TcpTls { .. })
}

fn join_addrs(infos: &[ConnectionInfo]) -> String {
    infos
        .iter()
        .map(|info| info.addr().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn plain_url_with_tls() -> String {
    "`tls` is set but the URL says redis:// (plain text): use rediss:// or remove `tls`".into()
}

#[cfg(not(feature = "tls"))]
fn no_tls_feature() -> String {
    "TLS needs kv-module's `tls` feature".into()
}

/// The connection info of `host:port`, over TLS when `tls`.
fn node_info(host: String, port: u16, tls: bool) -> Result<ConnectionInfo, String> {
    let addr = if tls {
        #[cfg(not(feature = "tls"))]
        return Err(no_tls_feature());
        #[cfg(feature = "tls")]
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    };
    addr.into_connection_info()
        .map_err(|e| format!("invalid address: {e}"))
}

fn parse_url(url: &str) -> Result<ConnectionInfo, String> {
    if url.starts_with("rediss://") && !cfg!(feature = "tls") {
        return Err("rediss:// needs kv-module's `tls` feature".into());
    }
    // The URL may hold a password: never echo it.
    url.into_connection_info()
        .map_err(|_| "invalid url: expected redis[s]://[user[:password]@]host[:port][/db]".into())
}

/// `host:port`, `[ipv6]:port` or `host` (port 6379).
pub(crate) fn parse_addr(addr: &str) -> Result<(String, u16), String> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Err("addr is empty".into());
    }
    if addr.contains("://") {
        return Err(format!("addr `{addr}` looks like a URL: put it in `url`"));
    }
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
    use crate::store::redis::TlsConfig;

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
        let zero = RedisConfig::new("h:1").with_command_timeout(Duration::ZERO);
        assert!(zero.resolve().unwrap_err().contains("command_timeout"));
    }

    #[test]
    fn url_db_and_overrides() {
        let topology = RedisConfig::from_url("redis://:pw@h:7/3")
            .resolve()
            .expect("valid url");
        assert_eq!(topology.display, "h:7/3");
        assert!(
            RedisConfig::from_url("redis://h:7/3")
                .with_db(4)
                .resolve()
                .is_err()
        );
        assert_eq!(
            RedisConfig::from_url("redis://h:7")
                .with_db(5)
                .resolve()
                .expect("valid")
                .display,
            "h:7/5"
        );
    }

    #[test]
    fn mode_rules() {
        let err = |config: RedisConfig| config.resolve().unwrap_err();
        assert!(err(RedisConfig::cluster(Vec::<String>::new())).contains("`nodes` is required"));
        let sentinel_without_name = RedisConfig {
            mode: RedisMode::Sentinel,
            nodes: vec!["h:26379".into()],
            ..RedisConfig::default()
        };
        assert!(err(sentinel_without_name).contains("`master_name` is required"));
        let db = err(RedisConfig::cluster(["h:7000"]).with_db(1));
        assert!(
            db.contains("only database 0") && db.contains("prefix"),
            "{db}"
        );
        assert!(
            err(RedisConfig {
                nodes: vec!["h:1".into()],
                ..RedisConfig::new("h:1")
            })
            .contains("`nodes` is for")
        );
        assert!(
            err(RedisConfig {
                addr: Some("h:1".into()),
                ..RedisConfig::cluster(["h:7000"])
            })
            .contains("standalone")
        );
        assert!(
            err(RedisConfig {
                master_name: Some("m".into()),
                ..RedisConfig::new("h:1")
            })
            .contains("master_name")
        );
        let mixed = RedisConfig::cluster(["redis://h:1", "rediss://h:2"]);
        if cfg!(feature = "tls") {
            assert!(err(mixed).contains("one scheme"));
        }

        let cluster = RedisConfig::cluster(["h:7000", "h:7001"])
            .resolve()
            .expect("valid");
        assert_eq!(cluster.display, "cluster h:7000,h:7001");
        let sentinel = RedisConfig::sentinel(["h:26379"], "mymaster")
            .with_db(2)
            .resolve()
            .expect("valid");
        assert_eq!(sentinel.display, "sentinel mymaster via h:26379");
    }

    #[test]
    fn tls_rules() {
        let plain_url = RedisConfig::from_url("redis://h:1").with_tls(TlsConfig::new());
        let err = plain_url.resolve().unwrap_err();
        if cfg!(feature = "tls") {
            assert!(err.contains("redis://"), "{err}");
            assert!(
                RedisConfig::new("h:1")
                    .with_tls(TlsConfig::new())
                    .resolve()
                    .is_ok()
            );
            assert!(RedisConfig::from_url("rediss://h:1").resolve().is_ok());
        } else {
            assert!(err.contains("`tls` feature"), "{err}");
        }
    }
}
