//! [`CountingStore`]: a [`KvStore`] that forwards to another and counts
//! the calls, so a test can assert how many round trips a component made
//! on any backend (each `KvStore` call is one round trip to the server).
//!
//! ```
//! use std::sync::Arc;
//! use kv_module::{KvStore, KvStoreExt, MemoryStore, Ttl};
//! use kv_module_tests::counting_store::CountingStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let counting = CountingStore::wrap(Arc::new(MemoryStore::new("m", "app")));
//! let store: Arc<dyn KvStore> = counting.clone();
//! store.set("k", &1, Ttl::Never).await.unwrap();
//! store.get::<i32>("k").await.unwrap();
//! assert_eq!(counting.calls(), 2);
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use kv_module::{
    KeyTtl, KvHashes, KvLists, KvSets, KvSortedSets, KvStore, KvTransactions, Result, Script,
    ScriptValue, Ttl,
};

/// Forwards every call to `inner` and counts the calls that reach the
/// backend (everything but `name` and `prefix`). The data-type accessors
/// (`hashes()`, `lists()`, ...) hand out `inner`'s own, uncounted: the
/// components whose round trips this bounds use strings and scripts.
pub struct CountingStore {
    inner: Arc<dyn KvStore>,
    calls: AtomicU64,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn KvStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: AtomicU64::new(0),
        })
    }

    /// The calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl KvStore for CountingStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn prefix(&self) -> &str {
        self.inner.prefix()
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.count();
        self.inner.get_bytes(key).await
    }

    async fn set_bytes(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.count();
        self.inner.set_bytes(key, value, ttl).await
    }

    async fn set_bytes_if_absent(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        self.count();
        self.inner.set_bytes_if_absent(key, value, ttl).await
    }

    async fn get_many_bytes(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        self.count();
        self.inner.get_many_bytes(keys).await
    }

    async fn set_many_bytes(&self, entries: &[(&str, &[u8], Ttl)]) -> Result<()> {
        self.count();
        self.inner.set_many_bytes(entries).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.count();
        self.inner.delete(key).await
    }

    async fn delete_keys(&self, keys: &[&str]) -> Result<u64> {
        self.count();
        self.inner.delete_keys(keys).await
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        self.count();
        self.inner.keys(pattern).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.count();
        self.inner.exists(key).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.count();
        self.inner.expire(key, ttl).await
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        self.count();
        self.inner.ttl(key).await
    }

    async fn persist(&self, key: &str) -> Result<bool> {
        self.count();
        self.inner.persist(key).await
    }

    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64> {
        self.count();
        self.inner.incr_by(key, delta).await
    }

    async fn incr_by_with_ttl(
        &self,
        key: &str,
        delta: i64,
        ttl: Duration,
    ) -> Result<(i64, KeyTtl)> {
        self.count();
        self.inner.incr_by_with_ttl(key, delta, ttl).await
    }

    async fn run_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<ScriptValue> {
        self.count();
        self.inner.run_script(script, keys, args).await
    }

    async fn ping(&self) -> Result<()> {
        self.count();
        self.inner.ping().await
    }

    fn hashes(&self) -> &dyn KvHashes {
        self.inner.hashes()
    }

    fn transactions(&self) -> &dyn KvTransactions {
        self.inner.transactions()
    }

    fn lists(&self) -> &dyn KvLists {
        self.inner.lists()
    }

    fn sorted_sets(&self) -> &dyn KvSortedSets {
        self.inner.sorted_sets()
    }

    fn sets(&self) -> &dyn KvSets {
        self.inner.sets()
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
