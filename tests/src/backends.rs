//! The two [`Backend`]s the conformance suite runs on.

use std::sync::Arc;

use kv_module::{KvStore, MemoryConfig, MemoryServer, MemoryStore};

use crate::TestRedis;
use crate::conformance::Backend;

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
