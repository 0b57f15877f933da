//! [`SlotCheckingStore`]: a [`KvStore`] that forwards to another and
//! asserts, for every script it runs, that all the script's stored keys
//! (prefix included) hash to one Redis Cluster slot — what a cluster
//! requires of a script, checked on a single server or the memory backend.
//! [`SlotCheckedBackend`] wraps every store of a [`Backend`], so that a
//! whole component suite proves its scripts cluster-safe.
//!
//! Together with the memory backend's refusal of keys a script was not
//! given, this covers both halves of the rule: every key in `KEYS`, and
//! all of them in one slot.
//!
//! ```
//! use std::sync::Arc;
//! use kv_module::{KvStore, MemoryStore, Script, ScriptValue};
//! use kv_module_tests::slot_checking_store::SlotCheckingStore;
//!
//! static TOUCH: Script = Script::new("touch", "return 1", |_| Ok(ScriptValue::Int(1)));
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let checked = SlotCheckingStore::wrap(Arc::new(MemoryStore::new("m", "app")));
//! let store: Arc<dyn KvStore> = checked.clone();
//! store.run_script(&TOUCH, &["a:{u1}", "b:{u1}"], &[]).await.unwrap();
//! assert_eq!(checked.log().scripts_checked(), 1);
//! # }
//! ```

use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kv_module::store::{KeySpace, key_slot};
use kv_module::{
    KeyTtl, KvHashes, KvLists, KvSets, KvSortedSets, KvStore, KvTransactions, Result, Script,
    ScriptValue, Ttl,
};

use crate::conformance::Backend;

/// What the checks saw: how many scripts, and the violations (one line
/// each), shared by every store of a [`SlotCheckedBackend`].
#[derive(Debug, Default)]
pub struct SlotLog {
    checked: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl SlotLog {
    /// The scripts checked so far.
    pub fn scripts_checked(&self) -> u64 {
        self.checked.load(Ordering::SeqCst)
    }

    /// The violations so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Forwards every call to `inner`; each `run_script` first checks that the
/// script's stored keys share one slot and panics (and logs the violation,
/// in case the panic lands in a task whose failure a component absorbs)
/// when they do not.
pub struct SlotCheckingStore {
    inner: Arc<dyn KvStore>,
    space: KeySpace,
    log: Arc<SlotLog>,
}

impl SlotCheckingStore {
    /// Wraps `inner`, with a log of its own.
    pub fn wrap(inner: Arc<dyn KvStore>) -> Arc<Self> {
        Self::wrap_with_log(inner, Arc::default())
    }

    /// Wraps `inner`, recording into `log`.
    pub fn wrap_with_log(inner: Arc<dyn KvStore>, log: Arc<SlotLog>) -> Arc<Self> {
        let space = KeySpace::new(inner.prefix());
        Arc::new(Self { inner, space, log })
    }

    /// What the checks saw.
    pub fn log(&self) -> &Arc<SlotLog> {
        &self.log
    }

    fn check(&self, script: &Script, keys: &[&str]) {
        self.log.checked.fetch_add(1, Ordering::SeqCst);
        let stored: Vec<(String, u16)> = keys
            .iter()
            .map(|key| {
                let stored = self.space.stored_key(key);
                let slot = key_slot(&stored);
                (stored, slot)
            })
            .collect();
        let Some((_, first)) = stored.first() else {
            // Redis Cluster routes a script by its first key: one without
            // keys runs on a random node.
            self.violate(format!("script `{}` has no key", script.name()));
            return;
        };
        if stored.iter().any(|(_, slot)| slot != first) {
            let keys: Vec<String> = stored
                .iter()
                .map(|(key, slot)| format!("{key} (slot {slot})"))
                .collect();
            self.violate(format!(
                "script `{}` spans slots: {}",
                script.name(),
                keys.join(", ")
            ));
        }
    }

    fn violate(&self, message: String) {
        self.log
            .violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(message.clone());
        panic!("{message}");
    }
}

#[async_trait]
impl KvStore for SlotCheckingStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn prefix(&self) -> &str {
        self.inner.prefix()
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get_bytes(key).await
    }

    async fn set_bytes(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.inner.set_bytes(key, value, ttl).await
    }

    async fn set_bytes_if_absent(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        self.inner.set_bytes_if_absent(key, value, ttl).await
    }

    async fn get_many_bytes(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        self.inner.get_many_bytes(keys).await
    }

    async fn set_many_bytes(&self, entries: &[(&str, &[u8], Ttl)]) -> Result<()> {
        self.inner.set_many_bytes(entries).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }

    async fn delete_keys(&self, keys: &[&str]) -> Result<u64> {
        self.inner.delete_keys(keys).await
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        self.inner.keys(pattern).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.inner.expire(key, ttl).await
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        self.inner.ttl(key).await
    }

    async fn persist(&self, key: &str) -> Result<bool> {
        self.inner.persist(key).await
    }

    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64> {
        self.inner.incr_by(key, delta).await
    }

    async fn incr_by_with_ttl(
        &self,
        key: &str,
        delta: i64,
        ttl: Duration,
    ) -> Result<(i64, KeyTtl)> {
        self.inner.incr_by_with_ttl(key, delta, ttl).await
    }

    async fn run_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<ScriptValue> {
        self.check(script, keys);
        self.inner.run_script(script, keys, args).await
    }

    async fn ping(&self) -> Result<()> {
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

/// A [`Backend`] whose every store is a [`SlotCheckingStore`] sharing one
/// [`SlotLog`]; dropping it fails the test if any script spanned slots
/// (a panic swallowed by a component's own task still counts). Derefs to
/// the wrapped backend, for what is particular to it (`b.server`).
pub struct SlotCheckedBackend<B> {
    inner: B,
    log: Arc<SlotLog>,
}

impl<B: Backend> SlotCheckedBackend<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            log: Arc::default(),
        }
    }

    /// What the checks saw, over every store of this backend.
    pub fn log(&self) -> &Arc<SlotLog> {
        &self.log
    }
}

impl<B> Deref for SlotCheckedBackend<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B: Backend> Backend for SlotCheckedBackend<B> {
    fn store(
        &self,
        name: &str,
        db: u8,
        prefix: &str,
    ) -> impl Future<Output = Arc<dyn KvStore>> + Send {
        let log = self.log.clone();
        let store = self.inner.store(name, db, prefix);
        async move {
            let checked: Arc<dyn KvStore> = SlotCheckingStore::wrap_with_log(store.await, log);
            checked
        }
    }

    fn outage(&mut self, store: &Arc<dyn KvStore>) -> impl Future<Output = ()> + Send {
        self.inner.outage(store)
    }

    fn recover(&mut self) -> impl Future<Output = ()> + Send {
        self.inner.recover()
    }

    fn is_cluster(&self) -> bool {
        self.inner.is_cluster()
    }
}

impl<B> Drop for SlotCheckedBackend<B> {
    fn drop(&mut self) {
        let violations = self.log.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "scripts whose keys span Redis Cluster slots:\n{}",
                violations.join("\n")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use kv_module::MemoryStore;

    use super::*;

    static TWO_KEYS: Script = Script::new("two keys", "return 1", |_| Ok(ScriptValue::Int(1)));

    #[tokio::test]
    async fn one_slot_passes_and_two_slots_are_caught() {
        let checked = SlotCheckingStore::wrap(Arc::new(MemoryStore::new("m", "app")));
        let store: Arc<dyn KvStore> = checked.clone();
        let reply = store
            .run_script(&TWO_KEYS, &["session:{t}:h", "user_sessions:{t}"], &[])
            .await;
        assert_eq!(reply.unwrap(), ScriptValue::Int(1));
        assert_eq!(checked.log().scripts_checked(), 1);

        let task = tokio::spawn({
            let store = store.clone();
            async move { store.run_script(&TWO_KEYS, &["a", "b"], &[]).await }
        });
        let panic = task.await.expect_err("the check panics");
        assert!(panic.is_panic());
        let violations = checked.log().violations();
        assert_eq!(violations.len(), 1);
        assert!(
            violations[0].contains("two keys") && violations[0].contains("app:a (slot"),
            "{violations:?}"
        );
    }

    /// The prefix counts: a tag inside it decides the slot of every key.
    #[tokio::test]
    async fn stored_keys_are_checked_with_the_prefix() {
        let checked = SlotCheckingStore::wrap(Arc::new(MemoryStore::new("m", "p{x}")));
        let store: Arc<dyn KvStore> = checked.clone();
        store.run_script(&TWO_KEYS, &["a", "b"], &[]).await.unwrap();
        assert!(checked.log().violations().is_empty());
    }
}
