//! The circuit breaker of the Redis stores (issue 11, defect 7): a frozen
//! or dead server costs a caller at most one `command_timeout`, then every
//! call to any store of that server fails at once, until the server
//! answers again, with no restart.
//!
//! Each case runs on a server of its own (faults would disturb other
//! tests). The measured times are printed (run with `--nocapture`):
//!
//! ```text
//! cargo test -p kv-module-tests --test breaker -- --nocapture
//! ```

use std::time::{Duration, Instant};

use kv_module::{KvError, KvStore, KvStoreExt, RedisConfig, RedisStore, Ttl};
use kv_module_tests::command_stats::command_calls;
use kv_module_tests::error_chain::chain;
use kv_module_tests::{TestCluster, TestRedis};

/// The `command_timeout` of the stores here: shorter than the default 2 s
/// to keep the suite quick, long next to a local round trip.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// What a call may take beyond `command_timeout`: scheduling on a loaded
/// 2-core machine, not waiting.
const LATENCY_MARGIN: Duration = Duration::from_millis(500);
/// A call refused by an open breaker sends nothing: it must return in far
/// less than any round trip to a frozen server could.
const FAST_FAIL: Duration = Duration::from_millis(50);
/// Calls refused fast, per store, after the first timeout.
const FAST_CALLS: usize = 20;
/// Calls must succeed again within this of the server answering again:
/// the probe's longest backoff (2 s) plus its round trip, with margin.
const RECOVERY_LIMIT: Duration = Duration::from_secs(4);

async fn open(redis: &TestRedis, name: &str, db: u8) -> RedisStore {
    let config = RedisConfig::new(redis.addr())
        .with_db(db)
        .with_prefix("brk")
        .with_command_timeout(COMMAND_TIMEOUT);
    RedisStore::open(name, config)
        .await
        .unwrap_or_else(|e| panic!("open `{name}`: {}", chain(&e)))
}

/// One timed `get` of `k`.
async fn timed_get(store: &RedisStore) -> (Duration, Result<Option<i64>, KvError>) {
    timed_get_key(store, "k").await
}

/// One timed `get` of `key`.
async fn timed_get_key(store: &RedisStore, key: &str) -> (Duration, Result<Option<i64>, KvError>) {
    let started = Instant::now();
    let result = store.get::<i64>(key).await;
    (started.elapsed(), result)
}

/// Polls `store` with `get` of `k` until it succeeds; returns when, or
/// panics after `limit`.
async fn recovered(store: &RedisStore, since: Instant, limit: Duration) -> Duration {
    recovered_key(store, "k", since, limit).await
}

/// Polls `store` with `get` of `key` until it succeeds; returns when, or
/// panics after `limit`.
async fn recovered_key(store: &RedisStore, key: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        let (latency, result) = timed_get_key(store, key).await;
        assert!(
            latency <= COMMAND_TIMEOUT + LATENCY_MARGIN,
            "a call during recovery took {latency:?}"
        );
        match result {
            Ok(_) => return since.elapsed(),
            Err(e) => assert!(
                since.elapsed() < limit,
                "`{}` did not recover within {limit:?}: {}",
                store.name(),
                chain(&e)
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The message of a call refused by the open breaker: unavailable, naming
/// the store, the server, that the breaker is open and why.
fn assert_refused_by_breaker(e: &KvError, store: &str, addr: &str) {
    let text = chain(e);
    assert!(e.is_unavailable(), "{text}");
    assert_eq!(e.store(), store, "{text}");
    assert!(text.contains("circuit breaker open"), "{text}");
    assert!(text.contains(addr), "names the server: {text}");
    assert!(text.contains("since"), "says for how long: {text}");
    assert!(text.contains("last error"), "says why: {text}");
}

/// A frozen server: the first call times out within `command_timeout`;
/// the next 20 calls on that store and on a second store of the same
/// server (another database, opened separately) each fail in < 50 ms
/// without waiting for the server; after the thaw both stores work again
/// within [`RECOVERY_LIMIT`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_costs_one_timeout_then_its_stores_fail_fast_until_it_thaws() {
    let mut redis = TestRedis::start().await;
    let users = open(&redis, "user_cache", 0).await;
    let sessions = open(&redis, "session_cache", 1).await;
    users.set("k", &1_i64, Ttl::secs(600)).await.expect("set");
    sessions
        .set("k", &2_i64, Ttl::secs(600))
        .await
        .expect("set");
    assert!(!users.breaker_state().is_open());

    redis.freeze();
    let frozen_at = Instant::now();
    let (first, result) = timed_get(&users).await;
    let e = result.expect_err("a frozen server cannot answer");
    assert!(e.is_timeout(), "the first call times out: {}", chain(&e));
    assert!(
        first <= COMMAND_TIMEOUT + LATENCY_MARGIN,
        "the first call took {first:?}"
    );

    let mut slowest = Duration::ZERO;
    for store in [&users, &sessions] {
        assert!(store.breaker_state().is_open(), "{}", store.name());
        for i in 0..FAST_CALLS {
            let (latency, result) = timed_get(store).await;
            let e = result.expect_err("the server is still frozen");
            assert!(
                latency < FAST_FAIL,
                "`{}` call {i} took {latency:?}: {}",
                store.name(),
                chain(&e)
            );
            assert_refused_by_breaker(&e, store.name(), &redis.addr());
            slowest = slowest.max(latency);
        }
    }
    // Other operations are refused the same way: the breaker is per
    // server, not per command.
    let e = sessions
        .set("k", &3_i64, Ttl::secs(60))
        .await
        .expect_err("frozen");
    assert_refused_by_breaker(&e, "session_cache", &redis.addr());
    assert!(
        sessions
            .keys("*")
            .await
            .expect_err("frozen")
            .is_unavailable()
    );

    let frozen_for = frozen_at.elapsed();
    redis.thaw();
    let thawed_at = Instant::now();
    let users_back = recovered(&users, thawed_at, RECOVERY_LIMIT).await;
    let sessions_back = recovered(&sessions, thawed_at, RECOVERY_LIMIT).await;
    assert!(!users.breaker_state().is_open());
    assert_eq!(sessions.get::<i64>("k").await.expect("get"), Some(2));
    println!(
        "frozen server: first call {first:?}, slowest of {} refused calls {slowest:?}, \
         frozen for {frozen_for:?}; thaw -> user_cache ok {users_back:?}, \
         session_cache ok {sessions_back:?}",
        2 * FAST_CALLS
    );
}

/// A freeze long enough for the probe to back off to its longest pause
/// (2 s): the thawed server is still found within [`RECOVERY_LIMIT`], and
/// until then calls keep failing at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_freeze_is_noticed_within_the_longest_probe_pause() {
    /// Past the probes at 0.25, 1.25 and 2.75 s (each waiting its 500 ms
    /// deadline): the next one is 2 s away. The outage itself, not a wait
    /// for an event.
    const FROZEN_FOR: Duration = Duration::from_secs(4);
    let mut redis = TestRedis::start().await;
    let store = open(&redis, "user_cache", 0).await;
    store.set("k", &1_i64, Ttl::secs(600)).await.expect("set");

    redis.freeze();
    let (_, result) = timed_get(&store).await;
    assert!(result.expect_err("frozen").is_timeout());
    tokio::time::sleep(FROZEN_FOR).await;
    let (latency, result) = timed_get(&store).await;
    assert!(latency < FAST_FAIL, "still refused at once: {latency:?}");
    assert_refused_by_breaker(&result.expect_err("frozen"), "user_cache", &redis.addr());

    redis.thaw();
    let thawed_at = Instant::now();
    let back = recovered(&store, thawed_at, RECOVERY_LIMIT).await;
    println!("frozen for {FROZEN_FOR:?}: thaw -> ok {back:?}");
}

/// A killed server: calls fail with connection errors, three in a row open
/// the breaker (then calls fail fast, saying so), and once the server is
/// back on its port the store works again, with no restart of the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_opens_the_breaker_and_its_restart_closes_it() {
    let mut redis = TestRedis::start().await;
    let store = open(&redis, "ratelimit_cache", 2).await;
    store.set("k", &1_i64, Ttl::secs(600)).await.expect("set");

    redis.stop();
    let mut errors = Vec::new();
    let mut refused = None;
    for _ in 0..10 {
        let (latency, result) = timed_get(&store).await;
        assert!(
            latency <= COMMAND_TIMEOUT + LATENCY_MARGIN,
            "a call took {latency:?}"
        );
        let e = result.expect_err("the server is down");
        assert!(e.is_unavailable(), "{}", chain(&e));
        if chain(&e).contains("circuit breaker open") {
            refused = Some(e);
            break;
        }
        errors.push(chain(&e));
    }
    let refused = refused.unwrap_or_else(|| panic!("the breaker never opened: {errors:#?}"));
    assert!(
        errors.len() <= 3,
        "opens after 3 connection errors, not {}: {errors:#?}",
        errors.len()
    );
    assert_refused_by_breaker(&refused, "ratelimit_cache", &redis.addr());
    assert!(store.breaker_state().is_open());
    for _ in 0..FAST_CALLS {
        let (latency, result) = timed_get(&store).await;
        assert!(latency < FAST_FAIL, "a refused call took {latency:?}");
        assert_refused_by_breaker(&result.expect_err("down"), "ratelimit_cache", &redis.addr());
    }

    redis.restart().await;
    let restarted_at = Instant::now();
    let back = recovered(&store, restarted_at, RECOVERY_LIMIT).await;
    // The data set starts empty after a restart (no persistence).
    assert_eq!(store.get::<i64>("k").await.expect("get"), None);
    assert!(!store.breaker_state().is_open());
    println!(
        "killed server: {} connection errors before the breaker opened; restart -> ok {back:?}",
        errors.len()
    );
}

/// Error replies are answers: a server that says `WRONGTYPE` is up, and
/// however many such errors come, calls keep reaching it.
#[tokio::test]
async fn error_replies_do_not_open_the_breaker() {
    let redis = TestRedis::start().await;
    let store = open(&redis, "cache", 0).await;
    let mut raw = redis.raw(0).await;
    let () = redis::cmd("HSET")
        .arg("brk:hash")
        .arg("f")
        .arg("v")
        .query_async(&mut raw)
        .await
        .expect("HSET");
    for _ in 0..10 {
        let e = store
            .get::<i64>("hash")
            .await
            .expect_err("GET of a hash is WRONGTYPE");
        assert!(!e.is_unavailable(), "{}", chain(&e));
        assert!(chain(&e).contains("WRONGTYPE"), "{}", chain(&e));
    }
    assert!(!store.breaker_state().is_open());
    let before = command_calls(&mut raw).await;
    store.set("k", &1_i64, Ttl::secs(60)).await.expect("set");
    let after = command_calls(&mut raw).await;
    assert_eq!(
        after.get("set").copied().unwrap_or(0),
        before.get("set").copied().unwrap_or(0) + 1,
        "the SET reached the server"
    );
}

/// The breaker is per server: a frozen server does not open the breaker of
/// a store on another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_server_is_not_affected() {
    let mut frozen = TestRedis::start().await;
    let healthy = TestRedis::start().await;
    let on_frozen = open(&frozen, "a", 0).await;
    let on_healthy = open(&healthy, "b", 0).await;
    frozen.freeze();
    let (_, result) = timed_get(&on_frozen).await;
    assert!(result.expect_err("frozen").is_timeout());
    assert!(on_frozen.breaker_state().is_open());
    assert!(!on_healthy.breaker_state().is_open());
    for _ in 0..5 {
        on_healthy
            .set("k", &1_i64, Ttl::secs(60))
            .await
            .expect("set");
    }
    frozen.thaw();
}

/// On a Redis Cluster the breaker is per primary: a frozen primary costs
/// one timeout, then the keys it serves fail at once (naming that node),
/// while the keys of the other primaries are served as before; after the
/// thaw (or the failover it may have led to) its keys work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_only_the_frozen_primary_fails_fast() {
    /// A key served by a healthy primary answers in about a round trip;
    /// this bound only rules out a wait for the frozen one.
    const SERVED: Duration = Duration::from_millis(300);
    /// Short enough for every check to be done well within the
    /// fixture's `cluster-node-timeout` (1 s): once the others mark the
    /// frozen node failed, the whole cluster answers `CLUSTERDOWN` until
    /// its replica is promoted, which is not what this test is about.
    const TIMEOUT: Duration = Duration::from_millis(300);
    let mut cluster = TestCluster::start().await;
    let config = RedisConfig::cluster(cluster.seed_nodes())
        .with_prefix("brk")
        .with_command_timeout(TIMEOUT);
    let store = RedisStore::open("cluster_cache", config)
        .await
        .unwrap_or_else(|e| panic!("open on the cluster: {}", chain(&e)));
    let frozen_key = "k";
    let primary = cluster.primary_for_key(&format!("brk:{frozen_key}")).await;
    let mut healthy_key = None;
    for i in 0..100 {
        let key = format!("other:{i}");
        if cluster.primary_for_key(&format!("brk:{key}")).await != primary {
            healthy_key = Some(key);
            break;
        }
    }
    let healthy_key = healthy_key.expect("a key on another primary");
    for key in [frozen_key, healthy_key.as_str()] {
        store.set(key, &1_i64, Ttl::secs(600)).await.expect("set");
    }

    cluster.freeze(primary).await;
    let frozen_at = Instant::now();
    let (first, result) = timed_get_key(&store, frozen_key).await;
    let e = result.expect_err("the frozen primary cannot answer");
    assert!(e.is_timeout(), "the first call times out: {}", chain(&e));
    assert!(
        first <= TIMEOUT + LATENCY_MARGIN,
        "the first call took {first:?}"
    );
    assert!(store.breaker_state().is_open());

    let node = format!("127.0.0.1:{primary}");
    let (mut slowest_refused, mut slowest_served) = (Duration::ZERO, Duration::ZERO);
    for i in 0..FAST_CALLS {
        let (latency, result) = timed_get_key(&store, frozen_key).await;
        let e = result.expect_err("still frozen");
        assert!(latency < FAST_FAIL, "refused call {i} took {latency:?}");
        assert_refused_by_breaker(&e, "cluster_cache", &node);
        slowest_refused = slowest_refused.max(latency);

        let (latency, result) = timed_get_key(&store, &healthy_key).await;
        let value = result.unwrap_or_else(|e| panic!("the other primary serves: {}", chain(&e)));
        assert_eq!(value, Some(1));
        assert!(latency < SERVED, "served call {i} took {latency:?}");
        slowest_served = slowest_served.max(latency);
    }

    let frozen_for = frozen_at.elapsed();
    cluster.thaw(primary);
    let thawed_at = Instant::now();
    let back = recovered_key(&store, frozen_key, thawed_at, RECOVERY_LIMIT).await;
    println!(
        "cluster, frozen primary {primary}: first call {first:?}; slowest of {FAST_CALLS} \
         refused calls {slowest_refused:?}, of {FAST_CALLS} calls to another primary \
         {slowest_served:?}; frozen for {frozen_for:?}; thaw -> ok {back:?}"
    );
}
