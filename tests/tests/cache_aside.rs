//! The cache-aside component on every backend: each acceptance point of
//! the cache-aside issue is a generic async function over a
//! [`Backend`], instantiated for Redis (a `redis-server` per test), for
//! the memory backend and for the shared Redis Cluster of this test binary
//! by `backend_suite!`.
//!
//! The interleavings are driven deterministically: the test repository's
//! `load` (or `update`) can be gated, so a test can hold a load between
//! reading its row and returning it while it updates or deletes the row.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kv_module::cache_aside::{
    CacheAsideConfig, CacheError, CacheMetrics, KvCachedRepository, LeaseConfig, Repository,
    WriteMode,
};
use kv_module::registry::StoreRef;
use kv_module::{KeyTtl, KvStore, Ttl};
use kv_module_tests::backends::{ClusterBackend, RedisBackend};
use kv_module_tests::command_monitor::CommandMonitor;
use kv_module_tests::conformance::Backend;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

// ---------------------------------------------------------------------
// The test repository.
// ---------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
}

fn user(id: u64, name: &str) -> User {
    User {
        id,
        name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum DbError {
    NoSuchUser(u64),
    Down,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSuchUser(id) => write!(f, "no user {id}"),
            Self::Down => f.write_str("the database is down"),
        }
    }
}

impl std::error::Error for DbError {}

/// Holds one call between its start and its end, for the test to act in
/// between.
struct Gate {
    started: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// The test's side of a [`Gate`].
struct GateHandle {
    started: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl GateHandle {
    async fn started(&mut self) {
        (&mut self.started)
            .await
            .expect("the gated call must start");
    }

    fn release(self) {
        // The call may have been cancelled meanwhile; nothing to release.
        let _ = self.release.send(());
    }
}

fn gate() -> (Gate, GateHandle) {
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    (
        Gate {
            started: started_tx,
            release: release_rx,
        },
        GateHandle {
            started: started_rx,
            release: release_tx,
        },
    )
}

/// An in-memory "database" of users that counts its calls and can hold
/// the next load or update at a gate.
#[derive(Default)]
struct Users {
    rows: Mutex<HashMap<u64, User>>,
    loads: AtomicUsize,
    updates: AtomicUsize,
    deletes: AtomicUsize,
    load_gate: Mutex<Option<Gate>>,
    update_gate: Mutex<Option<Gate>>,
    /// Simulated query time of every load (the stampede distribution
    /// needs loads that take a moment, as real ones do).
    latency: Mutex<Option<Duration>>,
    failing: AtomicBool,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Users {
    fn with(users: &[User]) -> Arc<Self> {
        let repo = Self::default();
        locked(&repo.rows).extend(users.iter().map(|u| (u.id, u.clone())));
        Arc::new(repo)
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    fn row(&self, id: u64) -> Option<User> {
        locked(&self.rows).get(&id).cloned()
    }

    fn insert(&self, user: User) {
        locked(&self.rows).insert(user.id, user);
    }

    /// The next load reads its row, then waits at the gate.
    fn gate_next_load(&self) -> GateHandle {
        let (gate, handle) = gate();
        *locked(&self.load_gate) = Some(gate);
        handle
    }

    /// The next update waits at the gate before writing.
    fn gate_next_update(&self) -> GateHandle {
        let (gate, handle) = gate();
        *locked(&self.update_gate) = Some(gate);
        handle
    }

    fn set_latency(&self, latency: Duration) {
        *locked(&self.latency) = Some(latency);
    }
}

async fn pass(gate: Option<Gate>) {
    if let Some(gate) = gate {
        let _ = gate.started.send(());
        let _ = gate.release.await;
    }
}

impl Repository for Users {
    type Key = u64;
    type Value = User;
    type New = User;
    type Update = User;
    type Error = DbError;

    async fn create(&self, user: User) -> Result<(u64, User), DbError> {
        self.insert(user.clone());
        Ok((user.id, user))
    }

    async fn load(&self, id: &u64) -> Result<Option<User>, DbError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(DbError::Down);
        }
        // Read first, then wait: a gated load returns the row as it was
        // when the load began.
        let row = self.row(*id);
        let gate = locked(&self.load_gate).take();
        pass(gate).await;
        let latency = *locked(&self.latency);
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        Ok(row)
    }

    async fn update(&self, id: &u64, user: User) -> Result<User, DbError> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        let gate = locked(&self.update_gate).take();
        pass(gate).await;
        let mut rows = locked(&self.rows);
        let row = rows.get_mut(id).ok_or(DbError::NoSuchUser(*id))?;
        *row = user.clone();
        Ok(user)
    }

    async fn delete(&self, id: &u64) -> Result<bool, DbError> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        Ok(locked(&self.rows).remove(id).is_some())
    }
}

// ---------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------

const STORE_PREFIX: &str = "users";
const KEY_PREFIX: &str = "user";

fn config(ttl: Duration) -> CacheAsideConfig {
    CacheAsideConfig::new(StoreRef::new("user_cache"), KEY_PREFIX, ttl)
}

/// A cache of `repo` on a new store of `backend` (a new connection, so
/// two caches built this way act as two processes).
async fn cache(
    backend: &impl Backend,
    repo: &Arc<Users>,
    config: CacheAsideConfig,
) -> (KvCachedRepository<Users>, Arc<dyn KvStore>) {
    cache_in(backend, STORE_PREFIX, repo, config).await
}

/// Like [`cache`], with the store prefix `prefix`: a keyspace of its own,
/// for a test's next round.
async fn cache_in(
    backend: &impl Backend,
    prefix: &str,
    repo: &Arc<Users>,
    config: CacheAsideConfig,
) -> (KvCachedRepository<Users>, Arc<dyn KvStore>) {
    let store = backend.store("user_cache", 0, prefix).await;
    let cache = KvCachedRepository::new("users", Arc::clone(&store), Arc::clone(repo), config)
        .expect("a valid cache config");
    (cache, store)
}

/// `user:{<id>}`: the key is the hash tag of its entry and lease (issue 10;
/// it was `user:<id>`).
fn entry_key(id: u64) -> String {
    format!("{KEY_PREFIX}:{{{id}}}")
}

/// `user~lease:{<id>}`, in the entry's slot (issue 10; it was
/// `user~lease:<id>`).
fn lease_key(id: u64) -> String {
    format!("{KEY_PREFIX}~lease:{{{id}}}")
}

/// `user~nf:{<id>}`: a cached "not found", beside the entry (issue 11; it
/// was `{"nf":true}` at the entry key).
fn negative_key(id: u64) -> String {
    format!("{KEY_PREFIX}~nf:{{{id}}}")
}

/// The JSON entry stored for `id`, decoded, or `None`.
async fn raw_entry(store: &Arc<dyn KvStore>, id: u64) -> Option<serde_json::Value> {
    let bytes = store
        .get_bytes(&entry_key(id))
        .await
        .expect("reading the entry must work");
    bytes.map(|b| serde_json::from_slice(&b).expect("every entry is JSON"))
}

/// Waits until `condition` holds, checking every millisecond; fails the
/// test after 10 s. For states the test cannot be told about otherwise
/// (how many callers have joined a load inside the cache).
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `n` concurrent gets of `id` and returns their results.
async fn concurrent_gets(
    cache: &KvCachedRepository<Users>,
    id: u64,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Result<Option<User>, CacheError<DbError>>>> {
    (0..n)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&id).await })
        })
        .collect()
}

async fn all_ok(
    handles: Vec<tokio::task::JoinHandle<Result<Option<User>, CacheError<DbError>>>>,
) -> Vec<Option<User>> {
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(
            handle
                .await
                .expect("a get task panicked")
                .expect("a get failed"),
        );
    }
    out
}

// One `#[tokio::test]` per case and backend, on four worker threads as
// this suite has always run.
kv_module_tests::backend_suite! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    components:
    cold_key_stampede_loads_once,
    two_processes_with_lease_load_at_most_twice,
    missing_row_is_negatively_cached_until_its_ttl,
    load_racing_an_update_never_writes_the_old_value,
    load_racing_a_delete_never_writes_the_old_value,
    racing_write_through_updates_never_cache_the_loser,
    store_outage_reads_and_writes_go_to_the_repository,
    ttls_of_keys_written_together_are_spread,
    repository_errors_pass_through_and_are_not_cached,
    undecodable_entry_is_reloaded_and_replaced,
    cancelled_caller_does_not_strand_the_others,
    stuck_lease_holder_delays_but_never_fails_a_read,
    write_through_and_invalidate_modes,
    create_after_a_cached_miss_is_found_at_once,
    entry_key_holds_the_value_json_or_nothing,
}

// The same cases on a Redis server whose stores have a near cache
// (issue 14): cache-aside reads through it unchanged, and its guarantees
// (single flight, no stale write-back, tombstones) hold as they are.
kv_module_tests::backend_suite! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    near_cache: kv_module_tests::slot_checking_store::SlotCheckedBackend::new(
        kv_module_tests::backends::NearCacheBackend::start().await,
    );
    cold_key_stampede_loads_once,
    two_processes_with_lease_load_at_most_twice,
    missing_row_is_negatively_cached_until_its_ttl,
    load_racing_an_update_never_writes_the_old_value,
    load_racing_a_delete_never_writes_the_old_value,
    racing_write_through_updates_never_cache_the_loser,
    store_outage_reads_and_writes_go_to_the_repository,
    ttls_of_keys_written_together_are_spread,
    repository_errors_pass_through_and_are_not_cached,
    undecodable_entry_is_reloaded_and_replaced,
    cancelled_caller_does_not_strand_the_others,
    stuck_lease_holder_delays_but_never_fails_a_read,
    write_through_and_invalidate_modes,
    create_after_a_cached_miss_is_found_at_once,
    entry_key_holds_the_value_json_or_nothing,
}

// ---------------------------------------------------------------------
// 1. Stampede protection.
// ---------------------------------------------------------------------

/// 100 concurrent gets of a cold key in one process: one load. The load is
/// held until all 100 have joined it, so they are truly concurrent.
async fn cold_key_stampede_loads_once(b: impl Backend) {
    let repo = Users::with(&[user(1, "Ada")]);
    let (cache, store) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    let mut gate = repo.gate_next_load();
    let handles = concurrent_gets(&cache, 1, 100).await;
    gate.started().await;
    wait_until("all 100 gets wait for the load", || {
        cache.metrics().misses == 100
    })
    .await;
    gate.release();
    let results = all_ok(handles).await;
    assert!(results.iter().all(|r| r.as_ref() == Some(&user(1, "Ada"))));
    assert_eq!(repo.loads(), 1, "100 concurrent misses, one load");
    let metrics = cache.metrics();
    assert_eq!((metrics.misses, metrics.loads, metrics.fills), (100, 1, 1));
    // Cached as the documented JSON envelope.
    assert_eq!(
        raw_entry(&store, 1).await,
        Some(serde_json::json!(user(1, "Ada")))
    );
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    assert_eq!(cache.metrics().hits, 1);
    assert_eq!(repo.loads(), 1);
}

const TRIALS: u64 = 20;

/// Two caches on separate connections (two "processes", each with its own
/// single-flight) and 100 concurrent gets of a cold key on each: with the
/// lease, at most two loads and usually one. Without it, the same
/// workload is shown for comparison. The distributions are printed.
async fn two_processes_with_lease_load_at_most_twice(b: impl Backend) {
    let mut report = String::new();
    for lease in [true, false] {
        let repo = Users::with(&(0..TRIALS).map(|i| user(i, "Ada")).collect::<Vec<_>>());
        repo.set_latency(Duration::from_millis(5));
        let lease_config = if lease {
            LeaseConfig::enabled()
        } else {
            LeaseConfig::default()
        };
        let config = config(Duration::from_secs(60)).with_lease(lease_config);
        let prefix = format!("users-lease-{lease}");
        let (a, _) = cache_in(&b, &prefix, &repo, config.clone()).await;
        let (c, _) = cache_in(&b, &prefix, &repo, config).await;
        let mut distribution = BTreeMap::<usize, u64>::new();
        for id in 0..TRIALS {
            let before = repo.loads();
            let mut handles = concurrent_gets(&a, id, 100).await;
            handles.extend(concurrent_gets(&c, id, 100).await);
            let results = all_ok(handles).await;
            assert!(results.iter().all(|r| r.as_ref() == Some(&user(id, "Ada"))));
            let loads = repo.loads() - before;
            assert!(
                (1..=2).contains(&loads),
                "trial {id}: {loads} loads for 200 concurrent gets in two processes"
            );
            *distribution.entry(loads).or_default() += 1;
        }
        if lease {
            assert!(
                distribution.get(&1).copied().unwrap_or(0) > TRIALS / 2,
                "with the lease, one load should be the common case: {distribution:?}"
            );
        }
        report.push_str(&format!(
            "lease {}: loads per trial -> trials {distribution:?}; ",
            if lease { "on" } else { "off" }
        ));
    }
    eprintln!("two processes x 100 concurrent gets, {TRIALS} trials: {report}");
}

// ---------------------------------------------------------------------
// 2. Negative caching.
// ---------------------------------------------------------------------

/// A missing row is loaded once, then answered from the negative cache
/// (a key of its own, `user~nf:{<id>}`, with its own TTL; the entry key
/// stays absent) until that expires.
async fn missing_row_is_negatively_cached_until_its_ttl(b: impl Backend) {
    let negative_ttl = Duration::from_millis(400);
    let repo = Users::with(&[user(1, "Ada")]);
    let config = config(Duration::from_secs(60)).with_negative_ttl(negative_ttl);
    let (cache, store) = cache(&b, &repo, config).await;

    assert_eq!(cache.get(&404).await.unwrap(), None);
    assert_eq!(repo.loads(), 1);
    for _ in 0..20 {
        assert_eq!(cache.get(&404).await.unwrap(), None);
    }
    assert_eq!(repo.loads(), 1, "answered by the negative cache");
    assert_eq!(cache.metrics().negative_hits, 20);
    assert_eq!(raw_entry(&store, 404).await, None);
    assert!(store.exists(&negative_key(404)).await.unwrap());
    let ttl = store
        .ttl(&negative_key(404))
        .await
        .unwrap()
        .remaining()
        .unwrap();
    assert!(
        ttl <= negative_ttl.mul_f64(1.1),
        "negative TTL with jitter: {ttl:?}"
    );
    // A value is a different entry with the value TTL.
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    let ttl = store.ttl(&entry_key(1)).await.unwrap().remaining().unwrap();
    assert!(ttl > Duration::from_secs(50), "value TTL: {ttl:?}");

    // A real TTL passing: the negative entry expires, the row is loaded
    // again (and is still missing).
    tokio::time::sleep(negative_ttl.mul_f64(1.1) + Duration::from_millis(100)).await;
    assert_eq!(
        store.ttl(&negative_key(404)).await.unwrap(),
        KeyTtl::Missing
    );
    assert_eq!(cache.get(&404).await.unwrap(), None);
    assert_eq!(repo.loads(), 3);

    // A row created outside the cache: invalidating its key ends the
    // negative entry at once.
    repo.insert(user(404, "Grace"));
    assert_eq!(
        cache.get(&404).await.unwrap(),
        None,
        "still negatively cached"
    );
    cache.invalidate(&404).await.unwrap();
    assert_eq!(cache.get(&404).await.unwrap(), Some(user(404, "Grace")));
}

// ---------------------------------------------------------------------
// 3. No stale write-back.
// ---------------------------------------------------------------------

fn modes() -> Vec<(WriteMode, bool)> {
    vec![
        (WriteMode::Invalidate, false),
        (WriteMode::Invalidate, true),
        (WriteMode::WriteThrough, false),
        (WriteMode::WriteThrough, true),
    ]
}

/// load-start → update → load-finish, in both write modes, with and
/// without the lease: the cache ends with the new value or nothing, never
/// the old one. A get that starts after the update returns does not join
/// the old load.
async fn load_racing_an_update_never_writes_the_old_value(b: impl Backend) {
    for (id, (mode, lease)) in (1_u64..).zip(modes()) {
        let repo = Users::with(&[user(id, "Old")]);
        let mut config = config(Duration::from_secs(60)).with_write_mode(mode);
        if lease {
            config = config.with_lease(LeaseConfig::enabled());
        }
        let (cache, store) = cache_in(&b, &format!("users-{id}"), &repo, config).await;
        let case = format!("{mode:?}, lease {lease}");

        let mut gate = repo.gate_next_load();
        let slow_get = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&id).await })
        };
        gate.started().await; // the load has read the old row

        let updated = cache.update(&id, user(id, "New")).await.unwrap();
        assert_eq!(updated, user(id, "New"));
        assert_eq!(repo.row(id), Some(user(id, "New")));
        // A get after the update does not join the slow load.
        assert_eq!(
            cache.get(&id).await.unwrap(),
            Some(user(id, "New")),
            "{case}"
        );

        gate.release(); // the slow load finishes with the old row
        let old = slow_get.await.unwrap().unwrap();
        assert_eq!(old, Some(user(id, "Old")), "it began before the update");

        let entry = raw_entry(&store, id).await;
        assert_ne!(
            entry,
            Some(serde_json::json!(user(id, "Old"))),
            "{case}: stale write-back"
        );
        assert_eq!(
            cache.get(&id).await.unwrap(),
            Some(user(id, "New")),
            "{case}"
        );
        assert!(cache.metrics().fills_skipped >= 1, "{case}");
    }
}

/// load-start → delete → load-finish: the old value is not written back,
/// and the record reads as gone.
async fn load_racing_a_delete_never_writes_the_old_value(b: impl Backend) {
    for (id, (mode, lease)) in (1_u64..).zip(modes()) {
        let repo = Users::with(&[user(id, "Old")]);
        let mut config = config(Duration::from_secs(60)).with_write_mode(mode);
        if lease {
            config = config.with_lease(LeaseConfig::enabled());
        }
        let (cache, store) = cache_in(&b, &format!("users-{id}"), &repo, config).await;
        let case = format!("{mode:?}, lease {lease}");

        let mut gate = repo.gate_next_load();
        let slow_get = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&id).await })
        };
        gate.started().await;
        assert!(cache.delete(&id).await.unwrap());
        assert_eq!(repo.row(id), None);
        gate.release();
        assert_eq!(
            slow_get.await.unwrap().unwrap(),
            Some(user(id, "Old")),
            "{case}"
        );

        let entry = raw_entry(&store, id).await;
        assert_ne!(
            entry,
            Some(serde_json::json!(user(id, "Old"))),
            "{case}: stale write-back"
        );
        assert_eq!(cache.get(&id).await.unwrap(), None, "{case}");
        assert!(!cache.delete(&id).await.unwrap(), "{case}: already gone");
    }
}

/// Two write-through updates of one key whose repository writes land in
/// the opposite order of their cache writes: the cache must not keep the
/// value the database overwrote.
async fn racing_write_through_updates_never_cache_the_loser(b: impl Backend) {
    let repo = Users::with(&[user(1, "Start")]);
    let config = config(Duration::from_secs(60)).with_write_mode(WriteMode::WriteThrough);
    let (cache, store) = cache(&b, &repo, config).await;
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Start")));

    // A: marks the entry, then waits before writing the database.
    let mut gate = repo.gate_next_update();
    let slow_update = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.update(&1, user(1, "A")).await })
    };
    gate.started().await;
    // B: a whole update meanwhile (database = B, cache = B).
    cache.update(&1, user(1, "B")).await.unwrap();
    assert_eq!(
        raw_entry(&store, 1).await,
        Some(serde_json::json!(user(1, "B")))
    );
    // A writes the database last: database = A. A's marker is gone, so A
    // cannot know it won; it must not leave B cached.
    gate.release();
    slow_update.await.unwrap().unwrap();
    assert_eq!(repo.row(1), Some(user(1, "A")));
    assert_ne!(
        raw_entry(&store, 1).await,
        Some(serde_json::json!(user(1, "B"))),
        "the cache kept a value the database overwrote"
    );
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "A")));
}

// ---------------------------------------------------------------------
// 4. Store failures.
// ---------------------------------------------------------------------

/// With the store stopped: gets return the repository's values (one load
/// per key however many ask), updates and deletes reach the repository,
/// and the failures are counted.
async fn store_outage_reads_and_writes_go_to_the_repository<B: Backend>(mut b: B) {
    for lease in [false, true] {
        let repo = Users::with(&[user(1, "Ada"), user(2, "Grace"), user(3, "Edsger")]);
        let mut config = config(Duration::from_secs(60));
        if lease {
            config = config.with_lease(LeaseConfig::enabled());
        }
        let (cache, store) = cache_in(&b, &format!("users-{lease}"), &repo, config).await;
        assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada"))); // cached
        b.outage(&store).await;

        let started = Instant::now();
        assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
        assert_eq!(repo.loads(), 2, "lease {lease}: read from the repository");

        // No stampede while the store is down.
        let mut gate = repo.gate_next_load();
        let misses = cache.metrics().misses;
        let handles = concurrent_gets(&cache, 2, 50).await;
        gate.started().await;
        wait_until("50 gets wait for the load", || {
            cache.metrics().misses == misses + 50
        })
        .await;
        gate.release();
        let results = all_ok(handles).await;
        assert!(
            results
                .iter()
                .all(|r| r.as_ref() == Some(&user(2, "Grace")))
        );
        assert_eq!(repo.loads(), 3, "lease {lease}: one load for 50 gets");

        // Writes reach the repository.
        assert_eq!(
            cache.update(&1, user(1, "Ada L.")).await.unwrap(),
            user(1, "Ada L.")
        );
        assert_eq!(repo.row(1), Some(user(1, "Ada L.")));
        assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada L.")));
        assert!(cache.delete(&3).await.unwrap());
        assert_eq!(repo.row(3), None);
        assert_eq!(cache.get(&3).await.unwrap(), None);
        assert!(
            cache.invalidate(&2).await.is_err(),
            "invalidate reports the store's error"
        );

        let metrics = cache.metrics();
        assert!(metrics.store_errors >= 5, "{metrics:?}");
        assert_eq!(metrics.fills, 1, "nothing written while down: {metrics:?}");
        eprintln!(
            "store down (lease {lease}): 4 gets, 50 concurrent gets, update, delete in {:?}",
            started.elapsed()
        );
        b.recover().await;
    }
}

// ---------------------------------------------------------------------
// 5. Jitter.
// ---------------------------------------------------------------------

/// TTLs of 1,000 keys written together spread over `ttl ± 10 %`.
async fn ttls_of_keys_written_together_are_spread(b: impl Backend) {
    let ttl = Duration::from_secs(100);
    let ids: Vec<u64> = (0..1000).collect();
    let repo = Users::with(&ids.iter().map(|&i| user(i, "Ada")).collect::<Vec<_>>());
    let (cache, store) = cache(&b, &repo, config(ttl)).await;
    let started = Instant::now();
    let results = futures::future::join_all(ids.iter().map(|id| cache.get(id))).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Some(_)))));
    assert_eq!(cache.metrics().fills, 1000);

    let mut remaining = Vec::with_capacity(ids.len());
    for id in &ids {
        let left = store.ttl(&entry_key(*id)).await.unwrap();
        remaining.push(left.remaining().expect("every entry expires"));
    }
    let elapsed = started.elapsed();
    let (low, high) = (ttl.mul_f64(0.9), ttl.mul_f64(1.1));
    let min = *remaining.iter().min().unwrap();
    let max = *remaining.iter().max().unwrap();
    assert!(
        min + elapsed + Duration::from_millis(1) >= low,
        "min {min:?}"
    );
    assert!(max <= high, "max {max:?}");
    let distinct: BTreeSet<u128> = remaining.iter().map(Duration::as_millis).collect();
    assert!(distinct.len() >= 50, "{} distinct TTLs", distinct.len());
    // Spread over the range, not bunched: both outer fifths are used.
    let below = remaining.iter().filter(|t| **t < ttl.mul_f64(0.94)).count();
    let above = remaining.iter().filter(|t| **t > ttl.mul_f64(1.06)).count();
    assert!(below >= 100 && above >= 100, "below {below}, above {above}");
    eprintln!(
        "1,000 TTLs (ttl 100 s, jitter 0.1): min {min:?}, max {max:?}, {} distinct, \
         {below} under 94 s, {above} over 106 s",
        distinct.len()
    );
}

// ---------------------------------------------------------------------
// More behaviour.
// ---------------------------------------------------------------------

/// A failing load reaches every waiting caller as the repository's own
/// error, is not cached, and the next get tries again.
async fn repository_errors_pass_through_and_are_not_cached(b: impl Backend) {
    for lease in [false, true] {
        let repo = Users::with(&[user(1, "Ada")]);
        let mut config = config(Duration::from_secs(60));
        if lease {
            config = config.with_lease(LeaseConfig::enabled());
        }
        let (cache, store) = cache_in(&b, &format!("users-{lease}"), &repo, config).await;
        repo.failing.store(true, Ordering::SeqCst);
        let handles = concurrent_gets(&cache, 1, 10).await;
        for handle in handles {
            let err = handle.await.unwrap().unwrap_err();
            assert_eq!(err.repository_error(), Some(&DbError::Down));
            assert_eq!(err.cache(), "users");
            assert!(matches!(err, CacheError::Load { .. }));
        }
        assert!(repo.loads() <= 10);
        assert_eq!(raw_entry(&store, 1).await, None, "errors are not cached");
        assert!(
            !store.exists(&lease_key(1)).await.unwrap(),
            "a failed load releases its lease"
        );
        assert!(cache.metrics().load_errors >= 1);
        repo.failing.store(false, Ordering::SeqCst);
        assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
        // An update's error is the repository's type itself.
        assert_eq!(
            cache.update(&9, user(9, "Nobody")).await.unwrap_err(),
            DbError::NoSuchUser(9)
        );
    }
}

/// An entry that does not decode as the value type (an older schema) is a
/// miss: reloaded, replaced, and counted.
async fn undecodable_entry_is_reloaded_and_replaced(b: impl Backend) {
    let repo = Users::with(&[user(1, "Ada")]);
    let (cache, store) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    store
        .set_bytes(
            &entry_key(1),
            br#"{"v":{"id":1,"fullname":"Ada"}}"#,
            Ttl::secs(60),
        )
        .await
        .unwrap();
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    assert_eq!(
        raw_entry(&store, 1).await,
        Some(serde_json::json!(user(1, "Ada")))
    );
    assert!(cache.metrics().store_errors >= 1);
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    assert_eq!(repo.loads(), 1);
}

/// The caller that started a load is cancelled (its client hung up): the
/// other callers still get the value, and the load is not repeated.
async fn cancelled_caller_does_not_strand_the_others(b: impl Backend) {
    let repo = Users::with(&[user(1, "Ada")]);
    let (cache, store) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    let mut gate = repo.gate_next_load();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(&1).await })
    };
    gate.started().await;
    let followers = concurrent_gets(&cache, 1, 10).await;
    wait_until("the followers join the load", || {
        cache.metrics().misses == 11
    })
    .await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    gate.release();
    let results = all_ok(followers).await;
    assert!(results.iter().all(|r| r.as_ref() == Some(&user(1, "Ada"))));
    assert_eq!(repo.loads(), 1);
    assert_eq!(
        raw_entry(&store, 1).await,
        Some(serde_json::json!(user(1, "Ada"))),
        "the load finished and wrote back without its first caller"
    );
}

/// A lease held by a process that never finishes (crashed) delays other
/// processes by at most `lease.wait`, after which they load themselves.
async fn stuck_lease_holder_delays_but_never_fails_a_read(b: impl Backend) {
    let wait = Duration::from_millis(300);
    let repo = Users::with(&[user(1, "Ada")]);
    let config = config(Duration::from_secs(60)).with_lease(LeaseConfig::enabled().with_wait(wait));
    let (cache, store) = cache(&b, &repo, config).await;
    store
        .set_bytes(&lease_key(1), b"someone-else", Ttl::secs(30))
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    let took = started.elapsed();
    assert!(took >= wait, "waited for the holder: {took:?}");
    assert!(took < wait * 10, "but not for long: {took:?}");
    assert_eq!(repo.loads(), 1);
    // The stuck holder's lease is not ours to release; the value was still
    // written back (the entry was unchanged).
    assert!(store.exists(&lease_key(1)).await.unwrap());
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    assert_eq!(repo.loads(), 1);
}

/// Write-through leaves the new value cached (a hit, no load);
/// invalidate leaves no entry (the next get loads). Deletes always
/// invalidate, leaving no key of the record. Every write fences loads
/// with a marker first.
async fn write_through_and_invalidate_modes(b: impl Backend) {
    for mode in [WriteMode::WriteThrough, WriteMode::Invalidate] {
        let repo = Users::with(&[user(1, "Ada")]);
        let config = config(Duration::from_secs(60)).with_write_mode(mode);
        let (cache, store) = cache_in(&b, &format!("users-{mode:?}"), &repo, config).await;
        assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
        cache.update(&1, user(1, "Ada L.")).await.unwrap();
        let entry = raw_entry(&store, 1).await;
        let loads_before = repo.loads();
        assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada L.")));
        match mode {
            WriteMode::WriteThrough => {
                assert_eq!(entry, Some(serde_json::json!(user(1, "Ada L."))));
                let ttl = store.ttl(&entry_key(1)).await.unwrap().remaining().unwrap();
                assert!(ttl > Duration::from_secs(50), "value TTL {ttl:?}");
                assert_eq!(repo.loads(), loads_before, "a hit");
            }
            _ => {
                assert_eq!(entry, None, "invalidated");
                assert_eq!(repo.loads(), loads_before + 1, "loaded again");
            }
        }
        assert!(cache.delete(&1).await.unwrap());
        assert_eq!(store.keys("*").await.unwrap(), Vec::<String>::new());
        assert_eq!(cache.get(&1).await.unwrap(), None);
        let metrics: CacheMetrics = cache.metrics();
        assert_eq!(metrics.store_errors, 0, "{metrics:?}");
    }
}

// ---------------------------------------------------------------------
// Creating a record, and what the entry key holds (issue 11).
// ---------------------------------------------------------------------

/// An id cached as "not found", then created through the cache: the next
/// get finds it at once, not after the negative TTL (issue 11, defect 6).
/// A load of an id that read "not found" before the create and ends after
/// it does not write its miss back. With and without the lease.
async fn create_after_a_cached_miss_is_found_at_once(b: impl Backend) {
    for lease in [false, true] {
        let repo = Users::with(&[user(1, "Ada")]);
        let mut config = config(Duration::from_secs(60)).with_negative_ttl(Duration::from_secs(60));
        if lease {
            config = config.with_lease(LeaseConfig::enabled());
        }
        let (cache, _) = cache_in(&b, &format!("users-{lease}"), &repo, config).await;
        assert_eq!(cache.get(&2).await.unwrap(), None);
        assert_eq!(cache.get(&2).await.unwrap(), None);
        assert_eq!(cache.metrics().negative_hits, 1, "cached as not found");

        let (id, created) = cache.create(user(2, "Grace")).await.unwrap();
        assert_eq!((id, &created), (2, &user(2, "Grace")));
        assert_eq!(repo.row(2), Some(user(2, "Grace")));
        assert_eq!(
            cache.get(&2).await.unwrap(),
            Some(user(2, "Grace")),
            "lease {lease}: the new record, not the cached miss"
        );

        // load-start (reads "no row 3") → create 3 → load-finish.
        let mut gate = repo.gate_next_load();
        let slow_get = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&3).await })
        };
        gate.started().await;
        cache.create(user(3, "Edsger")).await.unwrap();
        gate.release();
        assert_eq!(
            slow_get.await.unwrap().unwrap(),
            None,
            "it began before the create"
        );
        assert_eq!(
            cache.get(&3).await.unwrap(),
            Some(user(3, "Edsger")),
            "lease {lease}: the miss read before the create was not cached"
        );
    }
}

/// The entry key holds exactly the value's JSON or nothing (issue 11,
/// defect 10): after a load, the bytes any other reader of the store
/// decodes as a user; after an update, the new value's JSON
/// (write-through) or no key (invalidate); after a delete, no key — and a
/// "not found" cached afterwards lives at a key of its own. Every key the
/// cache wrote expires.
async fn entry_key_holds_the_value_json_or_nothing(b: impl Backend) {
    for mode in [WriteMode::Invalidate, WriteMode::WriteThrough] {
        let repo = Users::with(&[user(1, "Ada")]);
        let config = config(Duration::from_secs(60)).with_write_mode(mode);
        let (cache, store) = cache_in(&b, &format!("users-{mode:?}"), &repo, config).await;
        let json = |u: &User| serde_json::to_vec(u).unwrap();
        let raw = || async { store.get_bytes(&entry_key(1)).await.unwrap() };

        assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
        assert_eq!(raw().await, Some(json(&user(1, "Ada"))), "{mode:?}");

        cache.update(&1, user(1, "Ada L.")).await.unwrap();
        match mode {
            WriteMode::WriteThrough => {
                assert_eq!(raw().await, Some(json(&user(1, "Ada L."))));
            }
            _ => assert_eq!(raw().await, None, "invalidated: no entry"),
        }
        assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada L.")));
        assert_eq!(raw().await, Some(json(&user(1, "Ada L."))), "{mode:?}");

        assert!(cache.delete(&1).await.unwrap());
        assert!(
            !store.exists(&entry_key(1)).await.unwrap(),
            "{mode:?}: the entry key is absent after a delete"
        );
        assert_eq!(cache.get(&1).await.unwrap(), None);
        assert_eq!(cache.get(&1).await.unwrap(), None);
        assert_eq!(cache.metrics().negative_hits, 1, "the miss is cached");
        assert!(
            !store.exists(&entry_key(1)).await.unwrap(),
            "{mode:?}: a cached miss is not at the entry key"
        );

        let keys = store.keys("*").await.unwrap();
        assert!(!keys.is_empty());
        for key in keys {
            assert!(
                matches!(store.ttl(&key).await.unwrap(), KeyTtl::ExpiresIn(_)),
                "{mode:?}: {key} has no TTL"
            );
        }
    }
}

// ---------------------------------------------------------------------
// Redis only: what a hit costs on the wire.
// ---------------------------------------------------------------------

/// A hit is one `GET`; a cold miss (lease off) is a `GET`, an `EXISTS`
/// (no cached "not found") and two script runs (the look that takes the
/// load's ticket, the write-back that needs it).
#[tokio::test]
async fn redis_hit_is_one_get() {
    use kv_module_tests::command_stats::{command_calls, delta};
    let b = RedisBackend::start().await;
    let repo = Users::with(&[user(1, "Ada")]);
    let (cache, _) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    let mut raw = b.server.raw(0).await;
    // Loads the scripts (the first EVALSHA of a script meets NOSCRIPT).
    assert_eq!(cache.get(&2).await.unwrap(), None);

    let before = command_calls(&mut raw).await;
    cache.get(&1).await.unwrap();
    let miss = delta(&before, &command_calls(&mut raw).await);
    let before = command_calls(&mut raw).await;
    cache.get(&1).await.unwrap();
    let hit = delta(&before, &command_calls(&mut raw).await);

    let expected_hit: BTreeMap<String, u64> = [("get".to_owned(), 1)].into();
    assert_eq!(hit, expected_hit, "a hit is one GET");
    // Four round trips: the GET that missed, the EXISTS of the negative
    // key, the look again inside the load (a script: GET entry, EXISTS
    // negative, GET mark, SET the load ticket) and the write-back (a
    // script: GET mark, EXISTS negative, GET entry, SET entry, DEL the
    // used ticket).
    let expected_miss: BTreeMap<String, u64> = [
        ("get".to_owned(), 5),
        ("exists".to_owned(), 3),
        ("evalsha".to_owned(), 2),
        ("set".to_owned(), 2),
        ("del".to_owned(), 1),
    ]
    .into();
    assert_eq!(miss, expected_miss);
}

/// After an outage, reads skip the store for a second (so that they do
/// not each wait for a dead server to fail), then use it again: the
/// restarted Redis is picked up without rebuilding the cache.
#[tokio::test]
async fn redis_cache_recovers_after_restart() {
    let mut b = RedisBackend::start().await;
    let repo = Users::with(&[user(1, "Ada")]);
    let (cache, store) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    b.server.stop();
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    let errors = cache.metrics().store_errors;
    assert_eq!(errors, 1);
    b.server.restart().await; // empty

    // Within the second after the failure: straight to the repository.
    let loads = repo.loads();
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    assert_eq!(repo.loads(), loads + 1);
    assert_eq!(
        cache.metrics().store_errors,
        errors,
        "the store was not tried"
    );
    assert_eq!(raw_entry(&store, 1).await, None);

    // A real second passing ends the bypass.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    assert_eq!(
        raw_entry(&store, 1).await,
        Some(serde_json::json!(user(1, "Ada")))
    );
    let loads = repo.loads();
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    assert_eq!(repo.loads(), loads, "a hit again");
}

/// [`redis_hit_is_one_get`] on the shared cluster, whose `INFO
/// commandstats` counts the commands of every test of this binary: a
/// [`CommandMonitor`] counts the test's own. Every primary has a script
/// cache of its own, so the scripts are loaded with a key on the primary
/// of the measured one.
#[tokio::test]
async fn cluster_hit_is_one_get() {
    let b = ClusterBackend::shared();
    let primary = b.cluster.primary_for_key(&entry_key(1)).await;
    let mut warm_up = 2;
    while b.cluster.primary_for_key(&entry_key(warm_up)).await != primary {
        warm_up += 1;
    }
    let repo = Users::with(&[user(1, "Ada")]);
    let (cache, _) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    assert_eq!(cache.get(&warm_up).await.unwrap(), None);

    let namespace = b.full_prefix(0, "");
    let monitor = CommandMonitor::start(&b.cluster, &namespace).await;
    cache.get(&1).await.unwrap();
    let miss = monitor.finish().await;
    let monitor = CommandMonitor::start(&b.cluster, &namespace).await;
    cache.get(&1).await.unwrap();
    let hit = monitor.finish().await;

    let expected_hit: BTreeMap<String, u64> = [("get".to_owned(), 1)].into();
    assert_eq!(hit, expected_hit, "a hit is one GET");
    let expected_miss: BTreeMap<String, u64> = [
        ("get".to_owned(), 5),
        ("exists".to_owned(), 3),
        ("evalsha".to_owned(), 2),
        ("set".to_owned(), 2),
        ("del".to_owned(), 1),
    ]
    .into();
    assert_eq!(miss, expected_miss);
}

// ---------------------------------------------------------------------
// Redis only: the entry as another reader sees it, and a full Redis.
// ---------------------------------------------------------------------

#[path = "support/redis_full.rs"]
mod redis_full;

/// `users:user:{1}` read over a connection of its own (another service):
/// exactly the user's JSON after a load, no key at all after a delete.
#[tokio::test]
async fn redis_other_readers_see_the_user_json_or_nothing() {
    let b = RedisBackend::start().await;
    let repo = Users::with(&[user(1, "Ada")]);
    let (cache, _) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    let mut raw = b.server.raw(0).await;
    let key = format!("{STORE_PREFIX}:{}", entry_key(1));
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Ada")));
    let stored: Option<Vec<u8>> = ::redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored, Some(serde_json::to_vec(&user(1, "Ada")).unwrap()));
    assert!(cache.delete(&1).await.unwrap());
    let exists: u64 = ::redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(exists, 0, "{key} after a delete");
}

/// The entry of `id` as stored, read over a connection of its own.
async fn raw_bytes(raw: &mut ::redis::aio::MultiplexedConnection, id: u64) -> Option<Vec<u8>> {
    ::redis::cmd("GET")
        .arg(format!("{STORE_PREFIX}:{}", entry_key(id)))
        .query_async(raw)
        .await
        .unwrap()
}

/// Redis full (`maxmemory`, `noeviction`: every `SET` refused, `DEL`
/// allowed): an update through the cache still ends the old value's
/// life in the cache — read by another process next, it is the new one
/// (issue 11, defect 4). And a load that read the old row before the
/// update, and ends once Redis accepts writes again, does not put it
/// back. In both write modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_full_update_never_leaves_the_old_value() {
    for mode in [WriteMode::Invalidate, WriteMode::WriteThrough] {
        let b = RedisBackend::start().await;
        let repo = Users::with(&[user(1, "Old"), user(2, "Old")]);
        let config = config(Duration::from_secs(60)).with_write_mode(mode);
        let (writer, _) = cache(&b, &repo, config.clone()).await;
        let (reader, _) = cache(&b, &repo, config).await;
        let mut raw = b.server.raw(0).await;
        assert_eq!(writer.get(&1).await.unwrap(), Some(user(1, "Old")));
        assert!(raw_bytes(&mut raw, 1).await.is_some(), "cached");

        // Another process starts loading user 2 while Redis has room.
        let mut gate = repo.gate_next_load();
        let slow_get = {
            let reader = reader.clone();
            tokio::spawn(async move { reader.get(&2).await })
        };
        gate.started().await;

        redis_full::fill_to_maxmemory(&b.server).await;
        assert_eq!(
            writer.update(&1, user(1, "New")).await.unwrap(),
            user(1, "New")
        );
        assert_eq!(
            writer.update(&2, user(2, "New")).await.unwrap(),
            user(2, "New")
        );
        assert_ne!(
            raw_bytes(&mut raw, 1).await,
            Some(serde_json::to_vec(&user(1, "Old")).unwrap()),
            "{mode:?}: the old value is still cached"
        );
        assert_eq!(
            reader.get(&1).await.unwrap(),
            Some(user(1, "New")),
            "{mode:?}"
        );

        redis_full::lift_maxmemory(&b.server).await;
        gate.release();
        assert_eq!(
            slow_get.await.unwrap().unwrap(),
            Some(user(2, "Old")),
            "it began before the update"
        );
        assert_eq!(
            reader.get(&2).await.unwrap(),
            Some(user(2, "New")),
            "{mode:?}: the load that began before the update wrote the old value back"
        );
        assert_eq!(writer.get(&1).await.unwrap(), Some(user(1, "New")));
    }
}

/// Redis full: a delete through the cache leaves no cached user behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_full_delete_never_leaves_the_old_value() {
    let b = RedisBackend::start().await;
    let repo = Users::with(&[user(1, "Old")]);
    let (writer, _) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    let (reader, _) = cache(&b, &repo, config(Duration::from_secs(60))).await;
    let mut raw = b.server.raw(0).await;
    assert_eq!(writer.get(&1).await.unwrap(), Some(user(1, "Old")));

    redis_full::fill_to_maxmemory(&b.server).await;
    assert!(writer.delete(&1).await.unwrap());
    assert_eq!(raw_bytes(&mut raw, 1).await, None, "the entry is gone");
    assert_eq!(reader.get(&1).await.unwrap(), None);
    assert_eq!(writer.get(&1).await.unwrap(), None);
}

/// A frozen Redis (SIGSTOP: connections open, nothing answered) costs a
/// write one store timeout, not one for the marker and another for the
/// invalidation (issue 11: one bounded wait per request), and the next
/// write none (the store's breaker is open). The writes still reach the
/// repository.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_write_waits_for_the_store_once() {
    let timeout = Duration::from_millis(300);
    let mut b = RedisBackend::start().await;
    let redis_config = kv_module::RedisConfig::new(b.server.addr())
        .with_prefix(STORE_PREFIX)
        .with_command_timeout(timeout);
    let store: Arc<dyn KvStore> = Arc::new(
        kv_module::RedisStore::open("user_cache", redis_config)
            .await
            .expect("a store on the test Redis"),
    );
    let repo = Users::with(&[user(1, "Old"), user(2, "Old")]);
    let cache = KvCachedRepository::new(
        "users",
        store,
        Arc::clone(&repo),
        config(Duration::from_secs(60)),
    )
    .expect("a valid cache config");
    assert_eq!(cache.get(&1).await.unwrap(), Some(user(1, "Old")));

    b.server.freeze();
    let started = Instant::now();
    assert_eq!(
        cache.update(&1, user(1, "New")).await.unwrap(),
        user(1, "New")
    );
    let update = started.elapsed();
    let started = Instant::now();
    assert!(cache.delete(&2).await.unwrap());
    let delete = started.elapsed();
    b.server.thaw();
    assert_eq!(repo.row(1), Some(user(1, "New")));
    assert_eq!(repo.row(2), None);
    assert!(
        update >= timeout && update < timeout.mul_f64(1.7),
        "update took {update:?}: one store timeout ({timeout:?}) expected"
    );
    // The update's timeout opened the server's breaker: the next write is
    // refused at once instead of waiting again.
    assert!(
        delete < timeout / 2,
        "delete took {delete:?}: the open breaker should refuse at once"
    );
}
