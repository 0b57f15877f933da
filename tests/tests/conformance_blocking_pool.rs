//! What only the Redis backend has around blocking pops: the dedicated
//! connections they run on (at most 8 per store, reused, a clear timeout
//! when all are busy), their deadline (the pop's timeout plus
//! `command_timeout`, even against a frozen server), and their end with
//! the store. The behaviour both backends share is in the conformance
//! suite (`tests/src/conformance_lists.rs`).

use std::time::{Duration, Instant};

use kv_module::store::End;
use kv_module::{KvError, KvStore, KvStoreExt, RedisConfig, RedisStore, Ttl};
use kv_module_tests::TestRedis;

/// The lines of `CLIENT LIST` (one per connected client).
async fn client_list(redis: &TestRedis) -> Vec<String> {
    let mut raw = redis.raw(0).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut raw)
        .await
        .unwrap();
    list.lines().map(str::to_owned).collect()
}

/// Clients blocked in a command now (`flags=b`).
async fn blocked_pops(redis: &TestRedis) -> usize {
    client_list(redis)
        .await
        .iter()
        .filter(|line| line.contains(" flags=b "))
        .count()
}

/// Connections whose last command was a blocking pop: the store's
/// dedicated ones (its shared connections never send one).
async fn pop_connections(redis: &TestRedis) -> usize {
    client_list(redis)
        .await
        .iter()
        .filter(|line| line.contains(" cmd=blpop "))
        .count()
}

/// Asks the server until `n` pops are blocked (each ask a round trip, so
/// this waits on the server, not on a clock), or fails after 5 s.
async fn until_blocked(redis: &TestRedis, n: usize) {
    let started = Instant::now();
    while blocked_pops(redis).await != n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{n} pops never blocked"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pops_run_on_at_most_eight_dedicated_connections() {
    let redis = TestRedis::start().await;
    let store = std::sync::Arc::new(redis.store("pool", 0, "app").await);
    let pops: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .lists()
                    .blocking_pop(&["q"], End::Front, Duration::from_secs(10))
                    .await
            })
        })
        .collect();
    until_blocked(&redis, 8).await;
    // The ninth waits for a connection within its own timeout, then says
    // why it could not run.
    let started = Instant::now();
    let err = store
        .lists()
        .blocking_pop(&["q"], End::Front, Duration::from_millis(300))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, KvError::Timeout { .. }), "{err:?}");
    assert!(err.is_timeout() && err.store() == "pool", "{err:?}");
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        source.as_deref().is_some_and(|s| s.contains("busy")),
        "{source:?}"
    );
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // Other calls go on, on the shared connection.
    store.set("k", &1, Ttl::Never).await.unwrap();
    assert_eq!(store.get::<i32>("k").await.unwrap(), Some(1));
    let values: Vec<String> = (0..8).map(|i| format!("v{i}")).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    store.lists().push("q", End::Back, &refs).await.unwrap();
    for pop in pops {
        assert!(pop.await.unwrap().unwrap().is_some());
    }
    assert_eq!(
        pop_connections(&redis).await,
        8,
        "eight dedicated connections"
    );
    // Kept and reused: another round opens none.
    store.lists().push("q", End::Back, &[b"x"]).await.unwrap();
    assert!(
        store
            .lists()
            .blocking_pop(&["q"], End::Front, Duration::from_secs(1))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(pop_connections(&redis).await, 8, "reused, none opened");
    // Closing the store ends them, and later pops fail as unavailable.
    store.close().await;
    let err = store
        .lists()
        .blocking_pop(&["q"], End::Front, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop_against_a_frozen_server_ends_at_its_deadline() {
    let mut redis = TestRedis::start().await;
    let config = RedisConfig::new(redis.addr())
        .with_prefix("app")
        .with_command_timeout(Duration::from_millis(500));
    let store = RedisStore::open("frozen_pop", config).await.unwrap();
    // One pop first, so the dedicated connection exists when it freezes.
    store.lists().push("q", End::Back, &[b"x"]).await.unwrap();
    let pop = store
        .lists()
        .blocking_pop(&["q"], End::Front, Duration::from_millis(300))
        .await;
    assert!(pop.unwrap().is_some());
    redis.freeze();
    let started = Instant::now();
    let err = store
        .lists()
        .blocking_pop(&["q"], End::Front, Duration::from_millis(300))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    redis.thaw();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_millis(2000),
        "timeout (300 ms) plus command_timeout (500 ms): {waited:?}"
    );
}
