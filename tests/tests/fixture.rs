//! Tests of the [`TestRedis`] fixture itself: that it starts an isolated
//! server (never on 6379), refuses `KEYS`, can be stopped and restarted
//! for outage tests, and that several run side by side. Also checks the
//! `INFO commandstats` helpers against a live server.

use kv_module::{KvStoreExt, Ttl};
use kv_module_tests::TestRedis;
use kv_module_tests::command_stats::{command_calls, delta};
use redis::aio::MultiplexedConnection;

/// The port of the developer's own Redis, which the fixture must not use.
const USER_REDIS_PORT: u16 = 6379;

async fn ping(conn: &mut MultiplexedConnection) -> redis::RedisResult<String> {
    redis::cmd("PING").query_async(conn).await
}

#[tokio::test]
async fn starts_on_a_free_port_other_than_6379_and_answers_ping() {
    let redis = TestRedis::start().await;

    assert_ne!(redis.port(), USER_REDIS_PORT);
    assert_eq!(redis.addr(), format!("127.0.0.1:{}", redis.port()));
    assert_eq!(
        redis.url(3),
        format!("redis://127.0.0.1:{}/3", redis.port())
    );
    let mut raw = redis.raw(0).await;
    assert_eq!(ping(&mut raw).await.expect("PING"), "PONG");

    let port: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .query_async(&mut raw)
        .await
        .expect("CONFIG GET port");
    assert_eq!(port, ["port".to_owned(), redis.port().to_string()]);
}

#[tokio::test]
async fn runs_without_persistence() {
    let redis = TestRedis::start().await;
    let mut raw = redis.raw(0).await;

    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query_async(&mut raw)
        .await
        .expect("CONFIG GET save");
    assert_eq!(config, ["save".to_owned(), String::new()]);
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(&mut raw)
        .await
        .expect("CONFIG GET appendonly");
    assert_eq!(config, ["appendonly".to_owned(), "no".to_owned()]);
}

#[tokio::test]
async fn refuses_keys() {
    let redis = TestRedis::start().await;
    let mut raw = redis.raw(0).await;
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut raw)
        .await
        .expect("SET");

    let err = redis::cmd("KEYS")
        .arg("*")
        .query_async::<Vec<String>>(&mut raw)
        .await
        .expect_err("KEYS must be disabled on the test server");
    assert!(
        err.to_string().contains("unknown command"),
        "unexpected KEYS error: {err}"
    );

    // Only KEYS is gone: SCAN still lists the key, and the connection
    // survived the refusal.
    let (cursor, keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .query_async(&mut raw)
        .await
        .expect("SCAN");
    assert_eq!((cursor, keys), (0, vec!["k".to_owned()]));
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_serves_again() {
    let mut redis = TestRedis::start().await;
    let port = redis.port();
    let mut before_stop = redis.raw(0).await;
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut before_stop)
        .await
        .expect("SET");

    redis.stop();
    assert!(
        ping(&mut before_stop).await.is_err(),
        "a connection opened before stop() must fail"
    );
    let client = redis::Client::open(redis.url(0)).expect("valid URL");
    let refused = client.get_multiplexed_async_connection().await;
    assert!(refused.is_err(), "connecting to a stopped server must fail");
    redis.stop(); // a second stop is a no-op

    redis.restart().await;
    assert_eq!(redis.port(), port, "restart() must keep the port");
    let mut after_restart = redis.raw(0).await;
    assert_eq!(ping(&mut after_restart).await.expect("PING"), "PONG");
    let value: Option<String> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut after_restart)
        .await
        .expect("GET");
    assert_eq!(value, None, "a restarted server starts empty");
}

#[tokio::test]
async fn two_fixtures_run_side_by_side() {
    let (a, b) = tokio::join!(TestRedis::start(), TestRedis::start());
    assert_ne!(a.port(), b.port());
    assert_ne!(a.port(), USER_REDIS_PORT);
    assert_ne!(b.port(), USER_REDIS_PORT);

    let (mut raw_a, mut raw_b) = (a.raw(0).await, b.raw(0).await);
    let () = redis::cmd("SET")
        .arg("only-in-a")
        .arg("1")
        .query_async(&mut raw_a)
        .await
        .expect("SET on a");
    let in_b: Option<String> = redis::cmd("GET")
        .arg("only-in-a")
        .query_async(&mut raw_b)
        .await
        .expect("GET on b");
    assert_eq!(in_b, None);

    drop(a);
    assert_eq!(ping(&mut raw_b).await.expect("b survives a's drop"), "PONG");
}

#[tokio::test]
async fn dropping_the_fixture_kills_the_server() {
    let redis = TestRedis::start().await;
    let url = redis.url(0);
    drop(redis);

    let client = redis::Client::open(url).expect("valid URL");
    assert!(client.get_multiplexed_async_connection().await.is_err());
}

#[tokio::test]
async fn store_uses_the_database_and_prefix_given() {
    let redis = TestRedis::start().await;
    let store = redis.store("fixture", 2, "pfx").await;
    store
        .set("k", &42_u32, Ttl::Never)
        .await
        .expect("set through RedisStore");

    let mut db2 = redis.raw(2).await;
    let stored: Option<String> = redis::cmd("GET")
        .arg("pfx:k")
        .query_async(&mut db2)
        .await
        .expect("GET pfx:k");
    assert_eq!(stored.as_deref(), Some("42"));
    let mut db0 = redis.raw(0).await;
    let size: u64 = redis::cmd("DBSIZE")
        .query_async(&mut db0)
        .await
        .expect("DBSIZE");
    assert_eq!(size, 0, "nothing may be written to database 0");
}

#[tokio::test]
async fn command_stats_count_the_commands_in_between() {
    let redis = TestRedis::start().await;
    let mut raw = redis.raw(0).await;

    let before = command_calls(&mut raw).await;
    for _ in 0..2 {
        let _: Option<String> = redis::cmd("GET")
            .arg("k")
            .query_async(&mut raw)
            .await
            .expect("GET");
    }
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut raw)
        .await
        .expect("SET");
    let after = command_calls(&mut raw).await;

    let expected = [("get".to_owned(), 2), ("set".to_owned(), 1)];
    assert_eq!(delta(&before, &after), expected.into_iter().collect());
    assert!(after["info"] > before.get("info").copied().unwrap_or(0));
}
