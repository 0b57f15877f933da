//! The [`Backend`]s the suites run on: a Redis server of the test's own,
//! the memory backend, the shared Redis Cluster, the shared Sentinel set,
//! and a mutual-TLS server; and the same with a near cache on every store
//! (a server of the test's own, the shared Sentinel set, mutual TLS).

use std::sync::Arc;

use kv_module::store::redis::TlsConfig;
use kv_module::{
    KvStore, MemoryConfig, MemoryServer, MemoryStore, NearCacheConfig, NearCacheMode, RedisConfig,
    RedisStore,
};

use crate::conformance::Backend;
use crate::{TestCerts, TestCluster, TestRedis, TestSentinel, TlsClientAuth};

/// Redis stores on a `redis-server` of the test's own.
pub struct RedisBackend {
    /// The server; public so tests can stop or inspect it.
    pub server: TestRedis,
}

impl RedisBackend {
    /// Starts a fresh server.
    pub async fn start() -> Self {
        Self {
            server: TestRedis::start().await,
        }
    }
}

impl Backend for RedisBackend {
    async fn store(&self, name: &str, db: u8, prefix: &str) -> Arc<dyn KvStore> {
        Arc::new(self.server.store(name, db, prefix).await)
    }

    async fn outage(&mut self, _store: &Arc<dyn KvStore>) {
        self.server.stop();
    }

    async fn recover(&mut self) {
        self.server.restart().await;
    }
}

/// The near cache the near-cached backends give every store: small, so
/// that evictions happen in the suites too.
fn near_cache() -> NearCacheConfig {
    NearCacheConfig::new().with_max_bytes(256 * 1024)
}

/// Redis stores with a near cache ([`NearCacheConfig`]) on a
/// `redis-server` of the test's own: the contract must not change.
pub struct NearCacheBackend {
    /// The server; public so tests can stop or inspect it.
    pub server: TestRedis,
    mode: NearCacheMode,
}

impl NearCacheBackend {
    /// Starts a fresh server; the stores' near caches in the default mode
    /// ([`NearCacheMode::Auto`]: broadcast, as every store has a prefix).
    pub async fn start() -> Self {
        Self::start_in(NearCacheMode::Auto).await
    }

    /// Starts a fresh server; the stores' near caches in `mode`.
    pub async fn start_in(mode: NearCacheMode) -> Self {
        Self {
            server: TestRedis::start().await,
            mode,
        }
    }
}

impl Backend for NearCacheBackend {
    async fn store(&self, name: &str, db: u8, prefix: &str) -> Arc<dyn KvStore> {
        let config = RedisConfig::new(self.server.addr())
            .with_db(db)
            .with_prefix(prefix)
            .with_near_cache(near_cache().with_mode(self.mode));
        match RedisStore::open(name, config).await {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("near-cached store {name}: {e}"),
        }
    }

    async fn outage(&mut self, _store: &Arc<dyn KvStore>) {
        self.server.stop();
    }

    async fn recover(&mut self) {
        self.server.restart().await;
    }
}

/// Memory stores on one [`MemoryServer`].
#[derive(Default)]
pub struct MemoryBackend {
    /// The shared in-process server.
    pub server: MemoryServer,
}

impl MemoryBackend {
    /// A fresh server.
    pub fn new() -> Self {
        Self {
            server: MemoryServer::new(),
        }
    }
}

impl Backend for MemoryBackend {
    async fn store(&self, name: &str, db: u8, prefix: &str) -> Arc<dyn KvStore> {
        let config = MemoryConfig::new().with_db(db).with_prefix(prefix);
        match MemoryStore::open(name, &self.server, config) {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("memory store {name} on db {db}: {e}"),
        }
    }

    async fn outage(&mut self, store: &Arc<dyn KvStore>) {
        store.close().await;
    }

    async fn recover(&mut self) {
        // Only the closed store was affected; the server is up.
    }
}

/// The prefix a shared-server backend gives a store: its namespace, the
/// database when not 0 (so that "databases" stay apart where only one
/// exists or where other tests use the same ones), then the test's
/// prefix. The namespace holds no `{`, `}`, glob character or `:`.
fn namespaced(namespace: &str, db: u8, prefix: &str) -> String {
    let mut full = namespace.to_owned();
    if db != 0 {
        full.push_str(&format!(".d{db}"));
    }
    if !prefix.is_empty() {
        full.push(':');
        full.push_str(prefix);
    }
    full
}

/// Stores on the test process's shared Redis Cluster
/// ([`TestCluster::shared`]), each under this backend's own namespace, so
/// that tests running side by side never see each other's keys.
///
/// A cluster has only database 0: a store asked for database `db` gets
/// the namespace `…d{db}` instead, which keeps "databases" apart as they
/// are on one server, by prefix (what a cluster deployment does).
///
/// The shared cluster serves every test of the process, so an outage
/// cannot stop it: [`outage`](Backend::outage) closes the store, which
/// then fails as unavailable, as a memory store does. Real failures of
/// cluster nodes (frozen, killed, failed over) are tested on clusters of
/// their own in `tests/failover.rs`.
pub struct ClusterBackend {
    /// The shared cluster.
    pub cluster: Arc<TestCluster>,
    namespace: String,
    near_cache: Option<NearCacheConfig>,
}

impl ClusterBackend {
    /// A backend on the shared cluster (started on first use, ≈2 s).
    pub fn shared() -> Self {
        Self {
            cluster: TestCluster::shared(),
            namespace: TestCluster::namespace(),
            near_cache: None,
        }
    }

    /// The same backend with a near cache on every store.
    pub fn with_near_cache(mut self) -> Self {
        self.near_cache = Some(near_cache());
        self
    }

    /// The configuration of a store of this backend.
    pub fn config(&self, db: u8, prefix: &str) -> RedisConfig {
        let config = RedisConfig::cluster(self.cluster.seed_nodes()).with_prefix(namespaced(
            &self.namespace,
            db,
            prefix,
        ));
        match self.near_cache {
            Some(near_cache) => config.with_near_cache(near_cache),
            None => config,
        }
    }

    /// The store prefix (namespace included) that `prefix` on `db` gets.
    pub fn full_prefix(&self, db: u8, prefix: &str) -> String {
        namespaced(&self.namespace, db, prefix)
    }
}

impl Backend for ClusterBackend {
    async fn store(&self, name: &str, db: u8, prefix: &str) -> Arc<dyn KvStore> {
        match RedisStore::open(name, self.config(db, prefix)).await {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("cluster store {name}: {e}"),
        }
    }

    async fn outage(&mut self, store: &Arc<dyn KvStore>) {
        store.close().await;
    }

    async fn recover(&mut self) {
        // Only the closed store was affected; the cluster is up.
    }

    fn is_cluster(&self) -> bool {
        true
    }
}

/// Stores on the primary of the test process's shared Sentinel set
/// ([`TestSentinel::shared`]), found through its Sentinels, each under
/// this backend's own namespace. Databases are real here (a Sentinel-
/// managed primary has 16); the namespace keeps side-by-side tests apart.
/// An outage closes the store (see [`ClusterBackend`]); failovers are
/// tested in `tests/failover.rs`.
pub struct SentinelBackend {
    /// The shared set.
    pub sentinel: Arc<TestSentinel>,
    namespace: String,
    near_cache: Option<NearCacheConfig>,
}

impl SentinelBackend {
    /// A backend on the shared Sentinel set (started on first use, ≈2 s).
    pub fn shared() -> Self {
        Self {
            sentinel: TestSentinel::shared(),
            namespace: TestCluster::namespace(),
            near_cache: None,
        }
    }

    /// The same backend with a near cache on every store.
    pub fn with_near_cache(mut self) -> Self {
        self.near_cache = Some(near_cache());
        self
    }
}

impl Backend for SentinelBackend {
    async fn store(&self, name: &str, db: u8, prefix: &str) -> Arc<dyn KvStore> {
        let config =
            RedisConfig::sentinel(self.sentinel.sentinel_addrs(), self.sentinel.master_name())
                .with_db(db)
                .with_prefix(namespaced(&self.namespace, 0, prefix));
        let config = match self.near_cache {
            Some(near_cache) => config.with_near_cache(near_cache),
            None => config,
        };
        match RedisStore::open(name, config).await {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("sentinel store {name}: {e}"),
        }
    }

    async fn outage(&mut self, store: &Arc<dyn KvStore>) {
        store.close().await;
    }

    async fn recover(&mut self) {
        // Only the closed store was affected; the set is up.
    }
}

/// Stores on a `redis-server` of the test's own that speaks only TLS and
/// requires a client certificate (mutual TLS): every store trusts the
/// test CA and presents the test client certificate.
pub struct TlsBackend {
    /// The server; public so tests can stop or inspect it.
    pub server: TestRedis,
    /// The certificates the server and the stores use.
    pub certs: TestCerts,
    near_cache: Option<NearCacheConfig>,
}

impl TlsBackend {
    /// Starts a fresh mutual-TLS server with fresh certificates.
    pub async fn start() -> Self {
        let certs = TestCerts::generate();
        let server = TestRedis::start_tls(&certs, TlsClientAuth::Required).await;
        Self {
            server,
            certs,
            near_cache: None,
        }
    }

    /// The same backend with a near cache on every store (its tracking
    /// connection over mutual TLS too).
    pub fn with_near_cache(mut self) -> Self {
        self.near_cache = Some(near_cache());
        self
    }

    /// The TLS settings of the stores: the test CA and client certificate.
    pub fn tls(&self) -> TlsConfig {
        TlsConfig::new()
            .with_ca_file(self.certs.ca_file())
            .with_client_cert(self.certs.client_cert_file(), self.certs.client_key_file())
    }
}

impl Backend for TlsBackend {
    async fn store(&self, name: &str, db: u8, prefix: &str) -> Arc<dyn KvStore> {
        let config = RedisConfig::new(self.server.addr())
            .with_db(db)
            .with_prefix(prefix)
            .with_tls(self.tls());
        let config = match self.near_cache {
            Some(near_cache) => config.with_near_cache(near_cache),
            None => config,
        };
        match RedisStore::open(name, config).await {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("TLS store {name}: {e}"),
        }
    }

    async fn outage(&mut self, _store: &Arc<dyn KvStore>) {
        self.server.stop();
    }

    async fn recover(&mut self) {
        self.server.restart().await;
    }
}
