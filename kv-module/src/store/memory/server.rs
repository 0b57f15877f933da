//! [`MemoryServer`]: sixteen in-process databases with Redis's expiry
//! rules, shared by the [`MemoryStore`](super::MemoryStore)s opened on it.
//!
//! Expiry works as in Redis: an expired key is invisible to every read at
//! once (the lazy check), and a background task purges expired entries so
//! that memory does not grow with keys nobody reads again (the active
//! cycle). Each database keeps an index of its expiring keys ordered by
//! deadline, so a purge costs O(expired · log n), not a walk of the map.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::value::Value;

/// Number of databases, as in a default `redis-server`.
const DATABASES: usize = 16;

/// Expired entries one purge removes per lock acquisition, so that a mass
/// expiry never holds a database's lock for long.
const PURGE_BATCH: usize = 1024;

/// Expired entries removed on every insert, on top of the purge task: each
/// write then frees at least as many expired entries as it adds, which
/// bounds memory even where no purge task runs (no Tokio runtime).
const SWEEP_ON_INSERT: usize = 2;

/// Shortest purge interval accepted; a zero interval would spin.
const MIN_PURGE_INTERVAL: Duration = Duration::from_millis(1);

/// An in-process key-value server: sixteen independent databases, like one
/// `redis-server`, shared by every [`MemoryStore`](super::MemoryStore)
/// opened on it.
///
/// Cloning is cheap (an [`Arc`]) and every clone is the same server. Stores
/// with different prefixes or databases on one server see each other
/// exactly as they would on one Redis.
///
/// # Expiry
///
/// Expired keys are invisible to every read at once. They are removed from
/// memory by a purge task that [`new`](Self::new) spawns on the current
/// Tokio runtime, every second by default (see
/// [`with_purge_interval`](Self::with_purge_interval)), and by writes,
/// which each remove a couple of expired entries as they go. Without a
/// runtime at construction no task is spawned and only that lazy expiry
/// happens. The task holds no strong reference to the server: it ends as
/// soon as the last `MemoryServer` or store using it is dropped (or with
/// its runtime).
///
/// ```
/// use kv_module::{KvStoreExt, MemoryConfig, MemoryServer, MemoryStore, Ttl};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let server = MemoryServer::new();
/// let store = MemoryStore::open("cache", &server, MemoryConfig::new().with_db(3))?;
/// store.set("k", &1, Ttl::secs(60)).await?;
/// assert_eq!(server.len(3), 1);
/// assert!(server.is_empty(0));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryServer {
    shared: Arc<Shared>,
}

/// What every handle of one server shares.
struct Shared {
    dbs: [Mutex<Db>; DATABASES],
    /// Woken on every push to a list of the database, so that blocking
    /// pops waiting on it look again (instead of polling).
    pushed: [Notify; DATABASES],
    purge_interval: Duration,
    /// Never sent on: dropping it with the last handle wakes the purge
    /// task at once, so it ends now rather than at its next tick.
    _stop_purge: oneshot::Sender<()>,
}

impl MemoryServer {
    /// Number of databases of a server; valid database numbers are
    /// `0..DATABASES`.
    pub const DATABASES: u8 = DATABASES as u8;

    /// How often expired entries are purged unless set otherwise: 1 s.
    pub const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(1);

    /// An empty server purging expired entries every
    /// [`DEFAULT_PURGE_INTERVAL`](Self::DEFAULT_PURGE_INTERVAL).
    ///
    /// The purge task is spawned on the Tokio runtime current at this call;
    /// outside a runtime there is none and only lazy expiry happens.
    pub fn new() -> Self {
        Self::with_purge_interval(Self::DEFAULT_PURGE_INTERVAL)
    }

    /// An empty server purging expired entries every `interval` (at least
    /// 1 ms), on the current Tokio runtime if there is one.
    pub fn with_purge_interval(interval: Duration) -> Self {
        Self::start(interval).0
    }

    /// Builds a server and spawns its purge task when a runtime is current;
    /// the task's handle lets tests watch it end.
    pub(crate) fn start(interval: Duration) -> (Self, Option<JoinHandle<()>>) {
        let interval = interval.max(MIN_PURGE_INTERVAL);
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            dbs: std::array::from_fn(|_| Mutex::new(Db::default())),
            pushed: std::array::from_fn(|_| Notify::new()),
            purge_interval: interval,
            _stop_purge: stop_tx,
        });
        let task = tokio::runtime::Handle::try_current()
            .ok()
            .map(|runtime| runtime.spawn(purge_loop(Arc::downgrade(&shared), interval, stop_rx)));
        (Self { shared }, task)
    }

    /// Number of entries physically held in database `db`, counting expired
    /// entries not purged yet (so tests can watch the purge); 0 for a
    /// database number out of range.
    pub fn len(&self, db: u8) -> usize {
        DbIndex::new(db).map_or(0, |db| self.lock(db).len())
    }

    /// Whether database `db` holds no entry at all, expired or not (true
    /// for a database number out of range).
    pub fn is_empty(&self, db: u8) -> bool {
        self.len(db) == 0
    }

    /// Locks one database.
    ///
    /// A std `Mutex` is right here (as in mini-redis): it is only ever held
    /// for a few map operations and never across an `.await`, so an async
    /// mutex would add cost and nothing else. A poisoned lock is recovered:
    /// no code path panics while holding it, and a database left as it was
    /// is better than a server that panics from then on.
    pub(crate) fn lock(&self, db: DbIndex) -> MutexGuard<'_, Db> {
        self.shared.dbs[db.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryServer {
    /// What blocking pops on database `db` wait on: notified (all waiters)
    /// after every push to a list of that database.
    pub(crate) fn pushed(&self, db: DbIndex) -> &Notify {
        &self.shared.pushed[db.index()]
    }
}

impl Default for MemoryServer {
    /// Same as [`MemoryServer::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryServer {
    /// Shows the settings, never the contents.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryServer")
            .field("databases", &DATABASES)
            .field("purge_interval", &self.shared.purge_interval)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Removes every entry expired at `now`, one batch per lock
    /// acquisition, yielding between batches.
    async fn purge(&self, now: Instant) {
        for db in &self.dbs {
            loop {
                let removed = db
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .purge(now, PURGE_BATCH);
                if removed < PURGE_BATCH {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    }
}

/// The purge task: every `interval`, purges the server if it still exists.
async fn purge_loop(server: Weak<Shared>, interval: Duration, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            // Resolves (with an error) when the last handle drops `Shared`.
            _ = &mut stop => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Some(server) = server.upgrade() else {
            return;
        };
        server.purge(Instant::now()).await;
    }
}

/// A database number known to be below [`DATABASES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DbIndex(u8);

impl DbIndex {
    /// `Some` for 0 to 15.
    pub(crate) fn new(db: u8) -> Option<Self> {
        (usize::from(db) < DATABASES).then_some(Self(db))
    }

    fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One database: the entries and the index of their deadlines.
///
/// Invariant: `expiries` holds exactly one `(at, id) -> key` for every
/// entry whose `expiry` is `Some(Expiry { at, id })`, and nothing else.
/// Only the methods below touch `expiry`, which keeps it so.
#[derive(Default)]
pub(crate) struct Db {
    entries: HashMap<String, Entry>,
    /// Expiring keys by deadline. The id makes every index entry unique and
    /// lets an entry be found again without building a key to compare.
    expiries: BTreeMap<(Instant, u64), String>,
    next_id: u64,
    /// The blocking pops waiting on this database, by arrival (see
    /// `lists.rs`): a push serves the earliest first, as Redis does.
    pub(crate) poppers: BTreeMap<u64, Popper>,
    pub(crate) next_popper: u64,
}

/// One blocking pop waiting on a database.
pub(crate) struct Popper {
    /// The stored keys it waits on, in the order given.
    pub(crate) keys: Vec<String>,
    /// Which end it pops.
    pub(crate) end: crate::store::End,
    /// What a push handed it: the index of the key in `keys`, the value.
    pub(crate) served: Option<(usize, Vec<u8>)>,
}

/// One stored value.
pub(crate) struct Entry {
    /// A string or a collection.
    pub(crate) value: Value,
    expiry: Option<Expiry>,
}

#[derive(Clone, Copy)]
struct Expiry {
    at: Instant,
    id: u64,
}

impl Entry {
    /// When the entry expires, if it does.
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        self.expiry.map(|expiry| expiry.at)
    }

    /// Redis's rule: a key expires once the clock is *past* its deadline
    /// (`now > when`), so it is still there at the deadline itself.
    fn is_live(&self, now: Instant) -> bool {
        self.expiry.is_none_or(|expiry| now <= expiry.at)
    }
}

impl Db {
    /// Entries held, expired or not.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The live entry at `key`.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<&Entry> {
        self.entries.get(key).filter(|entry| entry.is_live(now))
    }

    /// The value of the live entry at `key`, to replace in place; the
    /// entry keeps its expiry.
    pub(crate) fn value_mut(&mut self, key: &str, now: Instant) -> Option<&mut Value> {
        self.entries
            .get_mut(key)
            .filter(|entry| entry.is_live(now))
            .map(|entry| &mut entry.value)
    }

    /// The live keys.
    pub(crate) fn keys(&self, now: Instant) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(move |(_, entry)| entry.is_live(now))
            .map(|(key, _)| key.as_str())
    }

    /// Stores `value` at `key` with the given deadline (`None`: persistent),
    /// replacing any entry and its expiry. Returns the replaced entry so
    /// the caller can free it after releasing the lock.
    pub(crate) fn insert(
        &mut self,
        key: String,
        value: Value,
        expires_at: Option<Instant>,
        now: Instant,
    ) -> Option<Entry> {
        self.purge(now, SWEEP_ON_INSERT);
        let expiry = expires_at.map(|at| self.index(at, key.clone()));
        let old = self.entries.insert(key, Entry { value, expiry })?;
        self.unindex(old.expiry);
        Some(old)
    }

    /// Removes `key`; returns the entry if it was live. An expired entry is
    /// removed too, but reported as absent.
    pub(crate) fn remove(&mut self, key: &str, now: Instant) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.unindex(entry.expiry);
        entry.is_live(now).then_some(entry)
    }

    /// Sets or clears (`None`) the deadline of the live entry at `key`.
    /// Returns the previous deadline (`Some(None)`: it was persistent), or
    /// `None` when there is no live entry.
    pub(crate) fn set_expiry(
        &mut self,
        key: &str,
        expires_at: Option<Instant>,
        now: Instant,
    ) -> Option<Option<Instant>> {
        let entry = self.entries.get(key)?;
        if !entry.is_live(now) {
            self.remove(key, now);
            return None;
        }
        let previous = entry.expiry;
        self.unindex(previous);
        let expiry = expires_at.map(|at| self.index(at, key.to_owned()));
        if let Some(entry) = self.entries.get_mut(key) {
            entry.expiry = expiry;
        }
        Some(previous.map(|expiry| expiry.at))
    }

    /// Removes up to `limit` entries expired at `now`, earliest first;
    /// returns how many it removed.
    pub(crate) fn purge(&mut self, now: Instant, limit: usize) -> usize {
        let mut removed = 0;
        while removed < limit {
            let Some(first) = self.expiries.first_entry() else {
                break;
            };
            if first.key().0 >= now {
                break;
            }
            let key = first.remove();
            self.entries.remove(&key);
            removed += 1;
        }
        removed
    }

    /// Adds `key` to the deadline index.
    fn index(&mut self, at: Instant, key: String) -> Expiry {
        let id = self.next_id;
        // 2^64 writes never happen; wrapping keeps this panic-free anyway.
        self.next_id = self.next_id.wrapping_add(1);
        self.expiries.insert((at, id), key);
        Expiry { at, id }
    }

    /// Removes an entry's deadline from the index.
    fn unindex(&mut self, expiry: Option<Expiry>) {
        if let Some(Expiry { at, id }) = expiry {
            self.expiries.remove(&(at, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db0() -> DbIndex {
        DbIndex::default()
    }

    fn bytes(text: &str) -> Value {
        Value::String(Arc::from(text.as_bytes()))
    }

    /// Checks the index invariant of a database.
    fn assert_consistent(db: &Db) {
        let expiring = db.entries.values().filter(|e| e.expiry.is_some()).count();
        assert_eq!(
            db.expiries.len(),
            expiring,
            "one index entry per expiring key"
        );
        for ((at, id), key) in &db.expiries {
            let expiry = db.entries.get(key).and_then(|e| e.expiry);
            assert!(
                matches!(expiry, Some(e) if e.at == *at && e.id == *id),
                "index entry of {key:?} matches its entry"
            );
        }
    }

    #[test]
    fn database_numbers_are_checked() {
        assert!(DbIndex::new(0).is_some());
        assert!(DbIndex::new(15).is_some());
        assert!(DbIndex::new(16).is_none());
        assert!(DbIndex::new(u8::MAX).is_none());
        assert_eq!(MemoryServer::DATABASES, 16);
    }

    #[test]
    fn without_a_runtime_no_task_is_spawned() {
        let (server, task) = MemoryServer::start(Duration::from_secs(1));
        assert!(task.is_none());
        assert!(server.is_empty(0));
        assert_eq!(server.len(99), 0);
        assert!(server.is_empty(99));
    }

    #[test]
    fn debug_shows_settings_not_contents() {
        let server = MemoryServer::new();
        let now = Instant::now();
        server
            .lock(db0())
            .insert("secret-key".into(), bytes("secret-value"), None, now);
        let debug = format!("{server:?}");
        assert!(debug.contains("MemoryServer"), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn index_follows_every_change() {
        let server = MemoryServer::new();
        let mut db = server.lock(db0());
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        db.insert("a".into(), bytes("1"), Some(later), now);
        db.insert("b".into(), bytes("2"), None, now);
        assert_consistent(&db);
        // Same deadline again: the old index entry must go, not the new.
        db.insert("a".into(), bytes("3"), Some(later), now);
        assert_consistent(&db);
        assert_eq!(db.set_expiry("b", Some(later), now), Some(None));
        assert_consistent(&db);
        assert_eq!(db.set_expiry("a", None, now), Some(Some(later)));
        assert_consistent(&db);
        assert_eq!(db.set_expiry("missing", None, now), None);
        assert!(db.remove("b", now).is_some());
        assert_consistent(&db);
        assert_eq!(db.len(), 1);
    }

    #[test]
    fn expired_entries_are_invisible_and_reported_absent() {
        let server = MemoryServer::new();
        let mut db = server.lock(db0());
        let now = Instant::now();
        let deadline = now + Duration::from_millis(100);
        db.insert("k".into(), bytes("v"), Some(deadline), now);
        // Live at the deadline itself, gone just after (Redis: now > when).
        assert!(db.get("k", deadline).is_some());
        let after = deadline + Duration::from_nanos(1);
        assert!(db.get("k", after).is_none());
        assert!(db.value_mut("k", after).is_none());
        assert_eq!(db.keys(after).count(), 0);
        assert_eq!(db.set_expiry("k", None, after), None);
        assert_eq!(db.len(), 0, "set_expiry dropped the expired entry");
        assert_consistent(&db);

        db.insert("k".into(), bytes("v"), Some(deadline), now);
        assert!(db.remove("k", after).is_none(), "expired counts as absent");
        assert_eq!(db.len(), 0);
        assert_consistent(&db);
    }

    #[test]
    fn purge_removes_only_expired_entries_earliest_first() {
        let server = MemoryServer::new();
        let mut db = server.lock(db0());
        let now = Instant::now();
        for i in 0..10_u64 {
            let at = now + Duration::from_millis(10 * (i + 1));
            db.insert(format!("k{i}"), bytes("v"), Some(at), now);
        }
        db.insert("persistent".into(), bytes("v"), None, now);
        let t = now + Duration::from_millis(55);
        assert_eq!(db.purge(t, 2), 2, "the limit is respected");
        assert!(db.entries.contains_key("k2") && !db.entries.contains_key("k1"));
        assert_eq!(db.purge(t, 100), 3);
        assert_eq!(db.len(), 6);
        assert_consistent(&db);
        assert_eq!(db.purge(now + Duration::from_secs(1), 100), 5);
        assert_eq!(db.len(), 1);
        assert_consistent(&db);
    }

    #[test]
    fn inserts_sweep_a_few_expired_entries() {
        let server = MemoryServer::new();
        let mut db = server.lock(db0());
        let now = Instant::now();
        for i in 0..5 {
            db.insert(format!("old{i}"), bytes("v"), Some(now), now);
        }
        let later = now + Duration::from_secs(1);
        db.insert("new".into(), bytes("v"), None, later);
        assert_eq!(db.len(), 5 - SWEEP_ON_INSERT + 1);
        assert_consistent(&db);
    }

    #[test]
    fn a_poisoned_database_is_recovered() {
        let server = MemoryServer::new();
        let poisoner = server.clone();
        let result = std::thread::spawn(move || {
            let _guard = poisoner.lock(db0());
            panic!("poisoning the lock on purpose");
        })
        .join();
        assert!(result.is_err());
        assert!(server.shared.dbs[0].is_poisoned());
        let now = Instant::now();
        server.lock(db0()).insert("k".into(), bytes("v"), None, now);
        assert_eq!(server.len(0), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn purge_task_removes_expired_entries() {
        let (server, task) = MemoryServer::start(Duration::from_secs(1));
        assert!(task.is_some());
        let now = Instant::now();
        {
            let mut db = server.lock(db0());
            db.insert(
                "short".into(),
                bytes("v"),
                Some(now + Duration::from_millis(100)),
                now,
            );
            db.insert(
                "long".into(),
                bytes("v"),
                Some(now + Duration::from_secs(5)),
                now,
            );
            db.insert("forever".into(), bytes("v"), None, now);
        }
        let db7 = DbIndex::new(7).expect("db 7");
        server.lock(db7).insert(
            "other".into(),
            bytes("v"),
            Some(now + Duration::from_millis(100)),
            now,
        );

        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(server.len(0), 3, "expired but not purged yet");
        assert_eq!(server.len(7), 1);
        // The purge runs at t = 1 s.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(server.len(0), 2);
        assert!(server.is_empty(7), "every database is purged");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(server.len(0), 1);
        assert_consistent(&server.lock(db0()));
    }

    #[tokio::test(start_paused = true)]
    async fn purge_handles_more_than_one_batch() {
        let (server, _task) = MemoryServer::start(Duration::from_secs(1));
        let now = Instant::now();
        {
            let mut db = server.lock(db0());
            // Deadlines equal to `now` are not expired yet at `now`, so these
            // inserts do not sweep each other.
            for i in 0..(PURGE_BATCH * 2 + 10) {
                db.insert(format!("k{i}"), bytes("v"), Some(now), now);
            }
            assert_eq!(db.len(), PURGE_BATCH * 2 + 10);
            assert_consistent(&db);
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(server.is_empty(0));
    }

    #[tokio::test(start_paused = true)]
    async fn purge_task_ends_when_the_last_handle_drops() {
        let (server, task) = MemoryServer::start(Duration::from_secs(1));
        let mut task = task.expect("a runtime is current");
        let clone = server.clone();
        let weak = Arc::downgrade(&server.shared);
        drop(server);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(!task.is_finished(), "a clone still holds the server");
        assert!(
            tokio::time::timeout(Duration::from_secs(3), &mut task)
                .await
                .is_err(),
            "the task keeps running across ticks"
        );
        drop(clone);
        assert!(
            weak.upgrade().is_none(),
            "the task holds no strong reference"
        );
        // Ends at once, without waiting for its next tick.
        let ended = tokio::time::timeout(Duration::from_millis(1), task).await;
        assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_is_raised_to_the_minimum() {
        let server = MemoryServer::with_purge_interval(Duration::ZERO);
        assert_eq!(server.shared.purge_interval, MIN_PURGE_INTERVAL);
        let now = Instant::now();
        server.lock(db0()).insert(
            "k".into(),
            bytes("v"),
            Some(now + Duration::from_millis(1)),
            now,
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(server.is_empty(0));
    }
}
