//! The near cache of `RedisStore` (issue 14) against real `redis-server`
//! processes: two stores on separate connections stand for two instances
//! of a service. Whatever changes a key — another instance, a delete, the
//! server's own expiry or eviction, `FLUSHDB`, a Lua script, a restart or a
//! killed tracking connection — no stale value is served afterwards.
//!
//! No sleep stands in for synchronisation: "afterwards" is after the
//! write was acknowledged plus [`RedisStore::sync_near_cache`] (one `PING`
//! on the tracking connection), or after a counter of the near cache or
//! the server's own state was seen to move (polled with a deadline).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kv_module::{
    KvStore, KvStoreExt, NearCacheConfig, NearCacheMode, NearCacheStats, RedisConfig, RedisStore,
    Ttl,
};
use kv_module_tests::backends::ClusterBackend;
use kv_module_tests::command_stats::{command_calls, delta};
use kv_module_tests::{TestCluster, TestRedis, TestSentinel};

const PREFIX: &str = "nc";

/// Declares a test run in both modes of `CLIENT TRACKING`: the body is
/// `async fn NAME(mode)`, the tests are `NAME::tracking` and
/// `NAME::broadcast`.
macro_rules! in_both_modes {
    ($(#[$attr:meta])* $name:ident) => {
        mod $name {
            use kv_module::NearCacheMode;

            $(#[$attr])*
            async fn tracking() {
                super::$name(NearCacheMode::Tracking).await
            }

            $(#[$attr])*
            async fn broadcast() {
                super::$name(NearCacheMode::Broadcast).await
            }
        }
    };
}

/// A store with a near cache of `max_bytes` in `mode` on `redis`,
/// database 0.
async fn near_store(
    redis: &TestRedis,
    name: &str,
    max_bytes: u64,
    mode: NearCacheMode,
) -> RedisStore {
    let config = RedisConfig::new(redis.addr())
        .with_prefix(PREFIX)
        .with_near_cache(
            NearCacheConfig::new()
                .with_max_bytes(max_bytes)
                .with_ttl(Duration::from_secs(30))
                .with_mode(mode),
        );
    RedisStore::open(name, config)
        .await
        .unwrap_or_else(|e| panic!("cannot open near-cached store `{name}`: {e}"))
}

fn stats(store: &RedisStore) -> NearCacheStats {
    store
        .near_cache_stats()
        .expect("the store has a near cache")
}

fn stored(key: &str) -> String {
    format!("{PREFIX}:{key}")
}

/// Polls `check` every 10 ms until it is true; panics with `what` after
/// `timeout` (a failure deadline, never a wait the test relies on).
async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn raw_get(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(stored(key))
        .query_async(raw)
        .await
        .expect("raw GET")
}

/// The commands sent between two `INFO commandstats` readings, without
/// the tracking connections' liveness `PING` (once a second).
fn sent(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut sent = delta(before, after);
    sent.remove("ping");
    sent
}

/// `get_many` of `k`, `other` and `missing` on `a` (1, 3 and nothing),
/// and the commands it sent.
async fn get_many_sent(
    a: &RedisStore,
    raw: &mut redis::aio::MultiplexedConnection,
) -> BTreeMap<String, u64> {
    let before = command_calls(raw).await;
    let values = a
        .get_many::<u32>(&["k", "other", "missing"])
        .await
        .expect("get_many");
    assert_eq!(values, vec![Some(1), Some(3), None]);
    sent(&before, &command_calls(raw).await)
}

/// Reads `key` on `store` until it is local: two reads keep a copy (a
/// key's first miss is read plain and only notes it, the next keeps it;
/// a key noted before is kept by the first), then a third must be a local
/// hit. Syncs first: in broadcast mode Redis pushes the invalidation of
/// every write under the prefix, the store's own included, and one still
/// on its way when the keeping read is sent refuses to keep that read
/// (which is then read again: correct, but not the hit this helper
/// promises).
async fn read_into_local(store: &RedisStore, key: &str) -> Option<Vec<u8>> {
    store.sync_near_cache().await.expect("sync");
    let first = store.get_bytes(key).await.expect("get");
    let second = store.get_bytes(key).await.expect("get");
    assert_eq!(first, second);
    let hits = stats(store).hits;
    let third = store.get_bytes(key).await.expect("get");
    assert_eq!(second, third);
    assert_eq!(
        stats(store).hits,
        hits + 1,
        "the third read of `{key}` is a local hit"
    );
    third
}

in_both_modes!(
    #[tokio::test]
    hits_send_nothing_and_a_store_reads_its_own_writes
);

/// A local hit sends nothing; `get_many` mixes hits and misses and only
/// sends the misses; a store reads its own writes at once.
async fn hits_send_nothing_and_a_store_reads_its_own_writes(mode: NearCacheMode) {
    let redis = TestRedis::start().await;
    let a = near_store(&redis, "a", 1 << 20, mode).await;
    let mut raw = redis.raw(0).await;
    a.set("k", &1u32, Ttl::Never).await.expect("set");
    // A key's first miss is a plain GET that keeps nothing; its second
    // reads it with its PTTL and keeps it.
    a.sync_near_cache().await.expect("sync");
    let before = command_calls(&mut raw).await;
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(1));
    let after = command_calls(&mut raw).await;
    assert_eq!(
        sent(&before, &after),
        [("get".to_owned(), 1)].into(),
        "first miss: a plain GET"
    );
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(1));
    let kept = command_calls(&mut raw).await;
    assert_eq!(
        sent(&after, &kept),
        [("mget".to_owned(), 1), ("pttl".to_owned(), 1)].into(),
        "second miss: read tracked with its PTTL"
    );
    read_into_local(&a, "missing").await;

    let before = command_calls(&mut raw).await;
    for _ in 0..100 {
        assert_eq!(a.get::<u32>("k").await.expect("get"), Some(1));
        assert_eq!(a.get::<u32>("missing").await.expect("get"), None);
    }
    let after = command_calls(&mut raw).await;
    let calls = sent(&before, &after);
    assert!(calls.is_empty(), "200 local reads send nothing: {calls:?}");

    // get_many: one point in time, as `MGET` is: all local, or all read
    // (one `MGET`) when one key has no local copy; kept once every key
    // missed before.
    a.set("other", &3u32, Ttl::Never).await.expect("set");
    a.sync_near_cache().await.expect("sync");
    assert_eq!(
        get_many_sent(&a, &mut raw).await,
        [("mget".to_owned(), 1)].into(),
        "one key had no local copy: all read in one plain MGET (its first miss)"
    );
    assert_eq!(
        get_many_sent(&a, &mut raw).await,
        [("mget".to_owned(), 1), ("pttl".to_owned(), 3)].into(),
        "every key missed before: one MGET with their PTTLs, kept"
    );
    assert!(
        get_many_sent(&a, &mut raw).await.is_empty(),
        "all local now"
    );

    // Own writes: every write path drops the local copy once Redis replied.
    a.set("k", &2u32, Ttl::Never).await.expect("set");
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(2));
    assert_eq!(a.incr_by("n", 1).await.expect("incr"), 1);
    assert_eq!(a.get_bytes("n").await.expect("get"), Some(b"1".to_vec()));
    assert_eq!(a.incr_by("n", 1).await.expect("incr"), 2);
    assert_eq!(a.get_bytes("n").await.expect("get"), Some(b"2".to_vec()));
    assert!(a.delete("k").await.expect("delete"));
    assert_eq!(a.get::<u32>("k").await.expect("get"), None);
    a.set_many(&[("k", 5u32), ("other", 6)], Ttl::Never)
        .await
        .expect("set_many");
    assert_eq!(
        a.get_many::<u32>(&["k", "other"]).await.expect("get"),
        vec![Some(5), Some(6)]
    );
    assert_eq!(
        a.delete_keys(&["k", "other"]).await.expect("delete_keys"),
        2
    );
    assert_eq!(
        a.get_many::<u32>(&["k", "other"]).await.expect("get"),
        vec![None, None]
    );
    assert!(
        a.set_if_absent("k", &7u32, Ttl::Never)
            .await
            .expect("set nx")
    );
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(7));
    assert!(
        a.expire("k", Duration::from_secs(60))
            .await
            .expect("expire")
    );
    assert!(a.ttl("k").await.expect("ttl").remaining().is_some());
    let s = stats(&a);
    assert!(
        s.tracking && s.hits >= 200 && s.entries > 0 && s.bytes_held > 0,
        "{s:?}"
    );
}

in_both_modes!(
    #[tokio::test]
    another_instance_write_is_seen_after_one_round_trip
);

/// Two instances: after B's write is acknowledged and A synced (one round
/// trip on A's tracking connection), A's next read returns B's value —
/// every time, and A had a local copy each time.
async fn another_instance_write_is_seen_after_one_round_trip(mode: NearCacheMode) {
    let redis = TestRedis::start().await;
    let a = near_store(&redis, "a", 1 << 20, mode).await;
    let b = near_store(&redis, "b", 1 << 20, mode).await;
    b.set("k", &0u64, Ttl::Never).await.expect("set");
    let invalidations = stats(&a).invalidations;
    for i in 1..=300u64 {
        read_into_local(&a, "k").await;
        b.set("k", &i, Ttl::Never).await.expect("B's write");
        a.sync_near_cache().await.expect("sync");
        assert_eq!(a.get::<u64>("k").await.expect("get"), Some(i), "round {i}");
    }
    assert!(
        stats(&a).invalidations >= invalidations + 300,
        "{:?}",
        stats(&a)
    );
}

in_both_modes!(
    #[tokio::test]
    delete_expiry_flushdb_and_scripts_invalidate
);

/// Delete, server-side expiry, FLUSHDB and a Lua script all invalidate.
async fn delete_expiry_flushdb_and_scripts_invalidate(mode: NearCacheMode) {
    let redis = TestRedis::start().await;
    let a = near_store(&redis, "a", 1 << 20, mode).await;
    let b = near_store(&redis, "b", 1 << 20, mode).await;
    let mut raw = redis.raw(0).await;

    // Delete by another instance.
    b.set("del", &1u32, Ttl::Never).await.expect("set");
    read_into_local(&a, "del").await;
    assert!(b.delete("del").await.expect("delete"));
    a.sync_near_cache().await.expect("sync");
    assert_eq!(a.get::<u32>("del").await.expect("get"), None);

    // Expiry on the server: a key read while it had 30 s to live, then
    // given 50 ms by another client; gone once the server says so.
    b.set("exp", &1u32, Ttl::secs(30)).await.expect("set");
    read_into_local(&a, "exp").await;
    let _: bool = redis::cmd("PEXPIRE")
        .arg(stored("exp"))
        .arg(50)
        .query_async(&mut raw)
        .await
        .expect("PEXPIRE");
    a.sync_near_cache().await.expect("sync");
    // Read again (tracked again, with its 50 ms), then let the server
    // expire it: the expiry itself sends the invalidation.
    let _ = a.get::<u32>("exp").await.expect("get");
    let before = stats(&a).invalidations;
    until("the server expires the key", Duration::from_secs(5), || {
        let mut raw = raw.clone();
        async move {
            let n: u64 = redis::cmd("EXISTS")
                .arg(stored("exp"))
                .query_async(&mut raw)
                .await
                .expect("EXISTS");
            n == 0
        }
    })
    .await;
    a.sync_near_cache().await.expect("sync");
    assert_eq!(a.get::<u32>("exp").await.expect("get"), None);
    assert!(
        stats(&a).invalidations > before,
        "the expiry was pushed: {:?}",
        stats(&a)
    );

    // A Lua script run by another client.
    b.set("lua", &1u32, Ttl::Never).await.expect("set");
    read_into_local(&a, "lua").await;
    let _: () = redis::cmd("EVAL")
        .arg("redis.call('SET', KEYS[1], ARGV[1])")
        .arg(1)
        .arg(stored("lua"))
        .arg("2")
        .query_async(&mut raw)
        .await
        .expect("EVAL");
    a.sync_near_cache().await.expect("sync");
    assert_eq!(a.get::<u32>("lua").await.expect("get"), Some(2));

    // FLUSHDB: one null invalidation, the whole local cache dropped.
    b.set("f1", &1u32, Ttl::Never).await.expect("set");
    b.set("f2", &2u32, Ttl::Never).await.expect("set");
    read_into_local(&a, "f1").await;
    read_into_local(&a, "f2").await;
    let flushes = stats(&a).flushes;
    let _: () = redis::cmd("FLUSHDB")
        .query_async(&mut raw)
        .await
        .expect("FLUSHDB");
    a.sync_near_cache().await.expect("sync");
    assert!(stats(&a).flushes > flushes, "{:?}", stats(&a));
    assert_eq!(
        a.get_many::<u32>(&["f1", "f2"]).await.expect("get"),
        vec![None, None]
    );
}

in_both_modes!(
    #[tokio::test]
    eviction_under_maxmemory_invalidates
);

/// Eviction under `maxmemory` (allkeys-lru) invalidates the evicted key.
async fn eviction_under_maxmemory_invalidates(mode: NearCacheMode) {
    let redis = TestRedis::start().await;
    let mut raw = redis.raw(0).await;
    let a = near_store(&redis, "a", 1 << 20, mode).await;
    a.set_bytes("victim", b"v", Ttl::Never).await.expect("set");
    read_into_local(&a, "victim").await;

    let info: redis::InfoDict = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut raw)
        .await
        .expect("INFO");
    let used: u64 = info.get("used_memory").expect("used_memory");
    let limit = used + 2 * 1024 * 1024;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .arg("maxmemory")
        .arg(limit)
        .query_async(&mut raw)
        .await
        .expect("CONFIG SET");

    let before = stats(&a).invalidations;
    let filler = vec![b'x'; 10_000];
    let mut batch = 0u32;
    until(
        "`victim` is evicted and A told",
        Duration::from_secs(30),
        || {
            batch += 1;
            let mut raw = raw.clone();
            let filler = filler.clone();
            let a = &a;
            async move {
                let mut pipe = redis::pipe();
                for i in 0..50 {
                    pipe.cmd("SET")
                        .arg(format!("fill:{batch}:{i}"))
                        .arg(&filler)
                        .ignore();
                }
                let _: () = pipe.query_async(&mut raw).await.expect("fill");
                // A PING on A's tracking connection applies what was pushed.
                a.sync_near_cache().await.expect("sync");
                stats(a).invalidations > before
            }
        },
    )
    .await;
    let exists: u64 = redis::cmd("EXISTS")
        .arg(stored("victim"))
        .query_async(&mut raw)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0, "the only key A tracks was evicted");
    assert_eq!(a.get_bytes("victim").await.expect("get"), None);
}

in_both_modes!(
    #[tokio::test]
    lost_tracking_connection_and_restart_drop_everything
);

/// Killing the tracking connection, then killing and restarting Redis:
/// the local copies are dropped, and nothing stale is served afterwards.
async fn lost_tracking_connection_and_restart_drop_everything(mode: NearCacheMode) {
    let mut redis = TestRedis::start().await;
    let a = near_store(&redis, "a", 1 << 20, mode).await;
    let b = near_store(&redis, "b", 1 << 20, mode).await;
    let mut raw = redis.raw(0).await;

    // CLIENT KILL of A's tracking connection (found by its name).
    b.set("k", &1u32, Ttl::Never).await.expect("set");
    read_into_local(&a, "k").await;
    let flushes = stats(&a).flushes;
    assert!(
        kill_tracking(&mut raw, "a").await,
        "A's tracking connection found and killed"
    );
    until(
        "A notices the loss and flushes",
        Duration::from_secs(10),
        || async { stats(&a).flushes > flushes },
    )
    .await;
    b.set("k", &2u32, Ttl::Never).await.expect("set");
    // Whether tracking is back yet or not, A reads B's value.
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(2));
    until("tracking is back on", Duration::from_secs(10), || async {
        stats(&a).tracking
    })
    .await;
    read_into_local(&a, "k").await;
    b.set("k", &3u32, Ttl::Never).await.expect("set");
    a.sync_near_cache().await.expect("sync");
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(3));

    // Kill and restart Redis: the data set comes back empty.
    let flushes = stats(&a).flushes;
    redis.restart().await;
    until(
        "A flushes after the restart",
        Duration::from_secs(10),
        || async { stats(&a).flushes > flushes },
    )
    .await;
    let mut raw = redis.raw(0).await;
    let _: () = redis::cmd("SET")
        .arg(stored("k"))
        .arg("4")
        .query_async(&mut raw)
        .await
        .expect("SET");
    // The pool reconnects on its own; a read may fail while it does, but
    // none returns the old 3.
    until("A reads the new value", Duration::from_secs(10), || async {
        match a.get::<u32>("k").await {
            Ok(value) => {
                assert_ne!(value, Some(3), "a stale value after the restart");
                value == Some(4)
            }
            Err(_) => false,
        }
    })
    .await;
    until("tracking is back on", Duration::from_secs(10), || async {
        stats(&a).tracking
    })
    .await;
    read_into_local(&a, "k").await;
    let _: () = redis::cmd("SET")
        .arg(stored("k"))
        .arg("5")
        .query_async(&mut raw)
        .await
        .expect("SET");
    a.sync_near_cache().await.expect("sync");
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(5));
}

in_both_modes!(
    #[tokio::test]
    the_memory_bound_holds
);

/// The memory bound holds under a stream of distinct keys worth many
/// times `max_bytes`, and the least useful copies are evicted.
async fn the_memory_bound_holds(mode: NearCacheMode) {
    let redis = TestRedis::start().await;
    let max = 64 * 1024;
    let a = near_store(&redis, "a", max, mode).await;
    let value = vec![b'v'; 1000];
    let keys: Vec<String> = (0..700).map(|i| format!("key:{i}")).collect();
    for chunk in keys.chunks(100) {
        let entries: Vec<(&str, &[u8], Ttl)> = chunk
            .iter()
            .map(|k| (k.as_str(), value.as_slice(), Ttl::Never))
            .collect();
        a.set_many_bytes(&entries).await.expect("set_many");
    }
    // Each key read twice: its second miss keeps it.
    for key in &keys {
        for _ in 0..2 {
            assert_eq!(a.get_bytes(key).await.expect("get"), Some(value.clone()));
            let s = stats(&a);
            assert!(s.bytes_held <= max, "{} bytes held > {max}", s.bytes_held);
        }
    }
    let s = stats(&a);
    assert!(s.evictions > 0 && s.entries > 0, "{s:?}");
    assert!(s.entries < 700, "{s:?}");
}

in_both_modes!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    read_invalidate_race_leaves_nothing_stale
);

/// The read/invalidate race (redis-rs 1.8.1 `cache-aio`: 300 of 300
/// rounds ended stale): three writers hammer one key while A reads it;
/// once they stop and A synced, A agrees with the server, every round.
async fn read_invalidate_race_leaves_nothing_stale(mode: NearCacheMode) {
    let redis = TestRedis::start().await;
    let a = Arc::new(near_store(&redis, "a", 1 << 20, mode).await);
    let writers: Vec<redis::aio::MultiplexedConnection> = {
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(redis.raw(0).await);
        }
        conns
    };
    let mut raw = redis.raw(0).await;
    let mut stale = 0;
    let rounds = 300;
    for round in 0..rounds {
        let done = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for (w, conn) in writers.iter().enumerate() {
            let mut conn = conn.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    let _: () = redis::cmd("SET")
                        .arg(stored("race"))
                        .arg(format!("{round}:{w}:{i}"))
                        .query_async(&mut conn)
                        .await
                        .expect("SET");
                }
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        let reader = {
            let a = a.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while done.load(Ordering::SeqCst) < 3 {
                    a.get_bytes("race").await.expect("get");
                    // A local hit never waits, so it never yields either:
                    // let the connections' drivers run on this worker.
                    tokio::task::yield_now().await;
                }
            })
        };
        for task in tasks {
            task.await.expect("writer");
        }
        reader.await.expect("reader");
        a.sync_near_cache().await.expect("sync");
        let local = a.get_bytes("race").await.expect("get");
        if local != raw_get(&mut raw, "race").await {
            stale += 1;
        }
    }
    let s = stats(&a);
    eprintln!("race: {rounds} rounds, {stale} stale; {s:?}");
    assert_eq!(stale, 0, "stale after {rounds} rounds: {stale}; {s:?}");
    assert!(
        s.hits > 0 && s.invalidations > 0,
        "the race was exercised: {s:?}"
    );
}

in_both_modes!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    versions_never_go_backwards_on_one_instance
);

/// Many tasks on two instances increment and read a small key set; on
/// each instance, no read returns a version older than one that instance
/// already wrote or read — across a kill of A's tracking connection too.
async fn versions_never_go_backwards_on_one_instance(mode: NearCacheMode) {
    const KEYS: [&str; 4] = ["v0", "v1", "v2", "v3"];
    let redis = TestRedis::start().await;
    let a = Arc::new(near_store(&redis, "a", 1 << 20, mode).await);
    let b = Arc::new(near_store(&redis, "b", 1 << 20, mode).await);
    for key in KEYS {
        a.set_bytes(key, b"0", Ttl::Never).await.expect("set");
    }
    let seen: [Arc<[AtomicU64; 4]>; 2] =
        [Arc::new(Default::default()), Arc::new(Default::default())];
    let backwards = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (instance, store) in [a.clone(), b.clone()].into_iter().enumerate() {
        for task in 0..6 {
            let (store, seen, backwards, errors) = (
                store.clone(),
                seen[instance].clone(),
                backwards.clone(),
                errors.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for op in 0..400usize {
                    let k = (op + task) % KEYS.len();
                    if task % 3 == 0 {
                        match store.incr_by(KEYS[k], 1).await {
                            Ok(v) => {
                                seen[k].fetch_max(v.unsigned_abs(), Ordering::SeqCst);
                            }
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    } else {
                        let floor = seen[k].load(Ordering::SeqCst);
                        match store.get_bytes(KEYS[k]).await {
                            Ok(Some(bytes)) => {
                                let v: u64 = std::str::from_utf8(&bytes)
                                    .ok()
                                    .and_then(|s| s.parse().ok())
                                    .expect("an integer");
                                if v < floor {
                                    backwards.fetch_add(1, Ordering::SeqCst);
                                }
                                seen[k].fetch_max(v, Ordering::SeqCst);
                                // A local hit never yields by itself.
                                tokio::task::yield_now().await;
                            }
                            Ok(None) => panic!("{} vanished", KEYS[k]),
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }));
        }
    }
    // Kill A's tracking connection in the middle of the run.
    let killer = {
        let mut raw = redis.raw(0).await;
        let a = a.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            until(
                "A has served local hits",
                Duration::from_secs(30),
                || async { stats(&a).hits > 100 || stop.load(Ordering::SeqCst) },
            )
            .await;
            kill_tracking(&mut raw, "a").await
        })
    };
    for task in tasks {
        task.await.expect("task");
    }
    stop.store(true, Ordering::SeqCst);
    let killed = killer.await.expect("killer");
    let (sa, sb) = (stats(&a), stats(&b));
    assert_eq!(
        backwards.load(Ordering::SeqCst),
        0,
        "a version went backwards; A {sa:?}, B {sb:?}"
    );
    assert!(killed, "A's tracking connection was killed mid-run");
    assert!(
        sa.hits > 0 && sb.hits > 0,
        "local hits on both: A {sa:?}, B {sb:?}"
    );
    let errors = errors.load(Ordering::Relaxed);
    assert!(errors < 50, "{errors} failed calls out of 4800");
}

/// Kills the tracking connection of store `name` (`kv-near:<name>` in
/// `CLIENT LIST`); whether one was found.
async fn kill_tracking(raw: &mut redis::aio::MultiplexedConnection, name: &str) -> bool {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(raw)
        .await
        .expect("CLIENT LIST");
    let wanted = format!("name=kv-near:{name} ");
    let Some(id) = list
        .lines()
        .find(|line| line.contains(&wanted))
        .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
    else {
        return false;
    };
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&id)
        .query_async(raw)
        .await
        .expect("CLIENT KILL");
    killed == 1
}

in_both_modes!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    sentinel_switch_flushes_and_tracks_the_new_primary
);

/// Behind Sentinels: after `SENTINEL FAILOVER` the store's connections are
/// repaired, the near cache flushes and tracks on the new primary, and a
/// write there is seen after one round trip.
async fn sentinel_switch_flushes_and_tracks_the_new_primary(mode: NearCacheMode) {
    let mut set = TestSentinel::start().await;
    let config = RedisConfig::sentinel(set.sentinel_addrs(), set.master_name())
        .with_prefix(PREFIX)
        .with_near_cache(
            NearCacheConfig::new()
                .with_max_bytes(1 << 20)
                .with_mode(mode),
        );
    let a = RedisStore::open("a", config)
        .await
        .unwrap_or_else(|e| panic!("open the sentinel store: {e}"));
    a.set("k", &1u32, Ttl::Never).await.expect("set");
    read_into_local(&a, "k").await;
    let flushes = stats(&a).flushes;

    set.failover().await;
    until(
        "A flushes after the switch",
        Duration::from_secs(30),
        || async { stats(&a).flushes > flushes },
    )
    .await;
    let mut primary = set.raw_master().await;
    until(
        "A's tracking connection is on the new primary",
        Duration::from_secs(30),
        || {
            let mut primary = primary.clone();
            async move {
                let list: String = redis::cmd("CLIENT")
                    .arg("LIST")
                    .query_async(&mut primary)
                    .await
                    .expect("CLIENT LIST");
                list.contains("name=kv-near:a ")
            }
        },
    )
    .await;
    until("A tracks again", Duration::from_secs(30), || async {
        stats(&a).tracking
    })
    .await;
    let _: () = redis::cmd("SET")
        .arg(stored("k"))
        .arg("2")
        .query_async(&mut primary)
        .await
        .expect("SET");
    a.sync_near_cache().await.expect("sync");
    assert_eq!(
        a.get::<u32>("k").await.expect("get"),
        Some(2),
        "nothing stale after the switch"
    );
    read_into_local(&a, "k").await;
    let _: () = redis::cmd("SET")
        .arg(stored("k"))
        .arg("3")
        .query_async(&mut primary)
        .await
        .expect("SET");
    a.sync_near_cache().await.expect("sync");
    assert_eq!(
        a.get::<u32>("k").await.expect("get"),
        Some(3),
        "tracked on the new primary"
    );
}

in_both_modes!(
    #[tokio::test]
    frozen_server_fails_the_liveness_ping_and_flushes
);

/// A frozen server (SIGSTOP: the tracking connection stays open, nothing
/// answers): the liveness `PING` fails within `command_timeout`, the local
/// copies are dropped, and reads go to Redis (failing while it is frozen)
/// instead of answering from memory; once thawed, tracking is back.
async fn frozen_server_fails_the_liveness_ping_and_flushes(mode: NearCacheMode) {
    let mut redis = TestRedis::start().await;
    let config = RedisConfig::new(redis.addr())
        .with_prefix(PREFIX)
        .with_command_timeout(Duration::from_millis(300))
        .with_near_cache(
            NearCacheConfig::new()
                .with_max_bytes(1 << 20)
                .with_mode(mode),
        );
    let a = RedisStore::open("a", config).await.expect("open");
    let b = near_store(&redis, "b", 1 << 20, mode).await;
    a.set("k", &1u32, Ttl::Never).await.expect("set");
    read_into_local(&a, "k").await;
    let flushes = stats(&a).flushes;

    redis.freeze();
    until(
        "the liveness PING fails and A flushes",
        Duration::from_secs(10),
        || async { stats(&a).flushes > flushes },
    )
    .await;
    assert!(!stats(&a).tracking, "{:?}", stats(&a));
    assert!(
        a.get::<u32>("k").await.is_err(),
        "no local answer while the server cannot be asked"
    );

    redis.thaw();
    until("tracking is back on", Duration::from_secs(10), || async {
        stats(&a).tracking
    })
    .await;
    // The stores share the server's circuit breaker, which A's timeout
    // opened: B's write goes through once its probe found the server.
    until(
        "B writes once the breaker closed",
        Duration::from_secs(10),
        || async { b.set("k", &2u32, Ttl::Never).await.is_ok() },
    )
    .await;
    a.sync_near_cache().await.expect("sync");
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(2));
    read_into_local(&a, "k").await;
}

/// What each mode asks of Redis, as `CLIENT LIST` shows it (`t`:
/// tracking, `B`: broadcast) and as the invalidations show it: broadcast
/// pushes every key written under the store's prefix, read or not, and
/// none outside it; tracking only keys the store read. `auto` (the
/// default) is broadcast for a store with a prefix, tracking without one.
#[tokio::test]
async fn each_mode_asks_redis_for_what_it_says() {
    let redis = TestRedis::start().await;
    let mut raw = redis.raw(0).await;
    let bc = near_store(&redis, "bc", 1 << 20, NearCacheMode::Broadcast).await;
    let tr = near_store(&redis, "tr", 1 << 20, NearCacheMode::Tracking).await;
    let auto = near_store(&redis, "auto", 1 << 20, NearCacheMode::Auto).await;
    let bare = RedisStore::open(
        "bare",
        RedisConfig::new(redis.addr()).with_near_cache(NearCacheConfig::new()),
    )
    .await
    .expect("open a store without a prefix");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut raw)
        .await
        .expect("CLIENT LIST");
    let flags = |name: &str| -> String {
        let line = list
            .lines()
            .find(|line| line.contains(&format!(" name=kv-near:{name} ")))
            .unwrap_or_else(|| panic!("no tracking connection of `{name}` in {list}"));
        line.split(' ')
            .find_map(|field| field.strip_prefix("flags="))
            .unwrap_or_else(|| panic!("no flags in {line}"))
            .to_owned()
    };
    assert_eq!(flags("bc"), "tB");
    assert_eq!(flags("tr"), "t");
    assert_eq!(flags("auto"), "tB");
    assert_eq!(flags("bare"), "t");

    let before: Vec<u64> = [&bc, &tr, &auto, &bare]
        .iter()
        .map(|store| stats(store).invalidations)
        .collect();
    for key in [stored("never-read"), "elsewhere:k".to_owned()] {
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("1")
            .query_async(&mut raw)
            .await
            .expect("SET");
    }
    let mut moved = Vec::new();
    for (store, before) in [&bc, &tr, &auto, &bare].iter().zip(before) {
        store.sync_near_cache().await.expect("sync");
        moved.push(stats(store).invalidations - before);
    }
    assert_eq!(
        moved,
        vec![1, 0, 1, 0],
        "invalidations of [broadcast, tracking, auto, no prefix] after writes \
         of a key under the prefix no store read and of one outside it"
    );
}

// ---- Redis Cluster: tracking per node ------------------------------------

/// On the shared cluster, keys spread over every primary: after B's
/// writes, A's invalidations arrive (through redis-rs's push forwarding,
/// so awaited on A's counter rather than one round trip) and A reads B's
/// values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_another_instance_write_is_seen_once_invalidated() {
    let backend = ClusterBackend::shared().with_near_cache();
    let a = RedisStore::open("a", backend.config(0, PREFIX))
        .await
        .expect("open A");
    let b = RedisStore::open("b", backend.config(0, PREFIX))
        .await
        .expect("open B");
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    for round in 0..20u32 {
        let entries: Vec<(&str, u32)> = names.iter().map(|k| (*k, round)).collect();
        b.set_many(&entries, Ttl::Never).await.expect("B's writes");
        until("A reads B's values", Duration::from_secs(5), || async {
            a.get_many::<u32>(&names).await.expect("get_many") == vec![Some(round); names.len()]
        })
        .await;
        // Late invalidations of B's writes (forwarded through a task) may
        // still drop fresh copies: wait until one get_many is all local.
        until("every key local on A", Duration::from_secs(5), || async {
            let hits = stats(&a).hits;
            let values = a.get_many::<u32>(&names).await.expect("get_many");
            assert_eq!(values, vec![Some(round); 30], "never an older value");
            stats(&a).hits == hits + 30
        })
        .await;
        let invalidations = stats(&a).invalidations;
        let next: Vec<(&str, u32)> = names.iter().map(|k| (*k, round + 1000)).collect();
        b.set_many(&next, Ttl::Never).await.expect("B's writes");
        until("A is told of every key", Duration::from_secs(5), || async {
            stats(&a).invalidations >= invalidations + 30
        })
        .await;
        assert_eq!(
            a.get_many::<u32>(&names).await.expect("get_many"),
            vec![Some(round + 1000); 30],
            "round {round}"
        );
    }
}

/// The read/invalidate race on the cluster: writers hammer one key while
/// A reads it; once they stop, A agrees with the server as soon as the
/// last invalidation arrived (a stale insert would stay until `ttl`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_read_invalidate_race_leaves_nothing_stale() {
    let backend = ClusterBackend::shared();
    let near = backend.config(0, PREFIX).with_near_cache(
        NearCacheConfig::new()
            .with_max_bytes(1 << 20)
            .with_ttl(Duration::from_secs(600)),
    );
    let a = Arc::new(RedisStore::open("a", near).await.expect("open A"));
    let w = Arc::new(
        RedisStore::open("w", backend.config(0, PREFIX))
            .await
            .expect("open W"),
    );
    let rounds = 100;
    for round in 0..rounds {
        let done = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for writer in 0..3 {
            let (w, done) = (w.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    let value = format!("{round}:{writer}:{i}");
                    w.set_bytes("race", value.as_bytes(), Ttl::Never)
                        .await
                        .expect("SET");
                }
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        let reader = {
            let (a, done) = (a.clone(), done.clone());
            tokio::spawn(async move {
                while done.load(Ordering::SeqCst) < 3 {
                    a.get_bytes("race").await.expect("get");
                    tokio::task::yield_now().await;
                }
            })
        };
        for task in tasks {
            task.await.expect("writer");
        }
        reader.await.expect("reader");
        let server = w.get_bytes("race").await.expect("server value");
        until(
            "A agrees with the server",
            Duration::from_secs(5),
            || async { a.get_bytes("race").await.expect("get") == server },
        )
        .await;
    }
    let s = stats(&a);
    assert!(
        s.hits > 0 && s.invalidations > 0,
        "the race was exercised: {s:?}"
    );
}

/// A manual failover of the primary serving a key A holds locally: A
/// flushes (the slot map changed, or its node connection dropped), then
/// tracks on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_flushes_and_tracks_the_new_primary() {
    let mut cluster = TestCluster::start().await;
    let config = RedisConfig::cluster(cluster.seed_nodes())
        .with_prefix(PREFIX)
        .with_near_cache(NearCacheConfig::new().with_max_bytes(1 << 20));
    let a = RedisStore::open("a", config).await.expect("open A");
    let b = RedisStore::open(
        "b",
        RedisConfig::cluster(cluster.seed_nodes()).with_prefix(PREFIX),
    )
    .await
    .expect("open B");
    b.set("k", &1u32, Ttl::Never).await.expect("set");
    read_into_local(&a, "k").await;
    let flushes = stats(&a).flushes;

    let primary = cluster.primary_for_key(&stored("k")).await;
    let replica = cluster.replica_of(primary).await;
    cluster.failover_manually(replica).await;
    until(
        "A flushes after the failover",
        Duration::from_secs(15),
        || async { stats(&a).flushes > flushes },
    )
    .await;
    until("A tracks again", Duration::from_secs(15), || async {
        stats(&a).tracking
    })
    .await;
    until(
        "B writes on the new primary",
        Duration::from_secs(15),
        || async { b.set("k", &2u32, Ttl::Never).await.is_ok() },
    )
    .await;
    until("A reads the new value", Duration::from_secs(15), || async {
        matches!(a.get::<u32>("k").await, Ok(Some(2)))
    })
    .await;
    read_into_local(&a, "k").await;
    let invalidations = stats(&a).invalidations;
    b.set("k", &3u32, Ttl::Never).await.expect("set");
    until(
        "A is told by the new primary",
        Duration::from_secs(5),
        || async { stats(&a).invalidations > invalidations },
    )
    .await;
    assert_eq!(a.get::<u32>("k").await.expect("get"), Some(3));
}

/// `enabled: false` keeps the section but opens the store without a near
/// cache (the example app's `USER_NEAR_CACHE=false`): every read goes to
/// Redis.
#[tokio::test]
async fn a_disabled_near_cache_is_not_opened() {
    let redis = TestRedis::start().await;
    let config = RedisConfig::new(redis.addr())
        .with_prefix(PREFIX)
        .with_near_cache(NearCacheConfig::new().with_enabled(false));
    let store = RedisStore::open("off", config).await.expect("opens");
    assert!(store.near_cache_stats().is_none());
    store.set_bytes("k", b"v", Ttl::Never).await.expect("set");
    let mut raw = redis.raw(0).await;
    let before = command_calls(&mut raw).await;
    for _ in 0..3 {
        assert_eq!(
            store.get_bytes("k").await.expect("get").as_deref(),
            Some(&b"v"[..])
        );
    }
    let calls = delta(&before, &command_calls(&mut raw).await);
    assert_eq!(calls.get("get"), Some(&3), "{calls:?}");
}
