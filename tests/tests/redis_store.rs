//! Redis-only behaviour of `RedisStore`: single round trips for batches,
//! glob parity between Redis `SCAN MATCH` and the memory backend's matcher,
//! authentication, and fail-fast opening.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kv_module::store::memory::glob_match;
use kv_module::{KvError, KvStore, KvStoreExt, RedisConfig, RedisStore, Ttl};
use kv_module_tests::TestRedis;
use kv_module_tests::command_stats::{command_calls, delta};

fn calls(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn batches_are_single_round_trips() {
    let redis = TestRedis::start().await;
    let store = redis.store("batches", 0, "rt").await;
    let mut raw = redis.raw(0).await;
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let entries: Vec<(&str, u32)> = keys.iter().map(|k| (k.as_str(), 7)).collect();
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();

    let before = command_calls(&mut raw).await;
    store.set_many(&entries, Ttl::secs(60)).await.unwrap();
    let after = command_calls(&mut raw).await;
    assert_eq!(
        delta(&before, &after),
        calls(&[("multi", 1), ("set", 100), ("exec", 1)]),
        "set_many is one MULTI/EXEC block"
    );

    let before = command_calls(&mut raw).await;
    let values = store.get_many::<u32>(&names).await.unwrap();
    let after = command_calls(&mut raw).await;
    assert_eq!(values, vec![Some(7); 100]);
    assert_eq!(delta(&before, &after), calls(&[("mget", 1)]));

    let before = command_calls(&mut raw).await;
    assert_eq!(store.delete_keys(&names).await.unwrap(), 100);
    let after = command_calls(&mut raw).await;
    assert_eq!(delta(&before, &after), calls(&[("unlink", 1)]));

    let before = command_calls(&mut raw).await;
    assert_eq!(store.delete_keys(&[]).await.unwrap(), 0);
    assert!(store.get_many_bytes(&[]).await.unwrap().is_empty());
    store.set_many_bytes(&[]).await.unwrap();
    let after = command_calls(&mut raw).await;
    assert!(
        delta(&before, &after).is_empty(),
        "empty batches send nothing"
    );
}

/// A transaction of writes that take any type is one `MULTI`/`EXEC`; one
/// with a write that needs a type is one script, which asks the type only
/// of the keys such writes touch.
#[tokio::test]
async fn transactions_send_a_multi_or_one_script() {
    use kv_module::store::Transaction;
    let redis = TestRedis::start().await;
    let store = redis.store("tx", 0, "rt").await;
    let mut raw = redis.raw(0).await;

    let any = Transaction::new()
        .set("{t}a", b"1", Ttl::secs(60))
        .set("{t}b", b"1", Ttl::Never)
        .delete("{t}c")
        .expire("{t}b", Duration::from_secs(60));
    let before = command_calls(&mut raw).await;
    store.transactions().run(&any).await.unwrap();
    let after = command_calls(&mut raw).await;
    assert_eq!(
        delta(&before, &after),
        calls(&[
            ("multi", 1),
            ("set", 2),
            ("del", 1),
            ("pexpire", 1),
            ("exec", 1)
        ]),
    );

    let typed = Transaction::new()
        .set("{t}a", b"2", Ttl::Never)
        .hash_set("{t}h", "f", b"v")
        .hash_set("{t}a", "f", b"v");
    // Loads the script, so that the count below is of one run only.
    let warm = Transaction::new().hash_set("{t}warm", "f", b"v");
    store.transactions().run(&warm).await.unwrap();
    let before = command_calls(&mut raw).await;
    let err = store.transactions().run(&typed).await.unwrap_err();
    let after = command_calls(&mut raw).await;
    assert!(
        matches!(&err, KvError::WrongType { key, .. } if key == "{t}a"),
        "{err:?}"
    );
    assert_eq!(
        delta(&before, &after),
        calls(&[("evalsha", 1), ("type", 1)]),
        "one script, the type of `{{t}}h` only, and no write"
    );
    assert_eq!(store.get_bytes("{t}a").await.unwrap(), Some(b"1".to_vec()));
}

#[tokio::test]
async fn keys_uses_scan_never_keys() {
    let redis = TestRedis::start().await;
    let store = redis.store("scan", 0, "p").await;
    store.set("a", &1, Ttl::Never).await.unwrap();
    let mut raw = redis.raw(0).await;
    let before = command_calls(&mut raw).await;
    assert_eq!(store.keys("*").await.unwrap(), vec!["a".to_string()]);
    let after = command_calls(&mut raw).await;
    assert_eq!(delta(&before, &after), calls(&[("scan", 1)]));
}

/// A small deterministic generator (xorshift) so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn string(&mut self, alphabet: &[&str], max_len: u64) -> String {
        let len = self.next() % (max_len + 1);
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
            .collect()
    }
}

#[tokio::test]
async fn memory_glob_matches_like_redis_scan() {
    let redis = TestRedis::start().await;
    let store = redis.store("parity", 0, "").await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let key_alphabet = ["a", "b", "c", "-", "^", "*", "?", "[", "]", "\\", "é", "z"];
    let mut keys = BTreeSet::new();
    while keys.len() < 300 {
        keys.insert(rng.string(&key_alphabet, 6));
    }
    let entries: Vec<(&str, u8)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    store.set_many(&entries, Ttl::Never).await.unwrap();

    let pattern_alphabet = [
        "a", "b", "c", "z", "-", "^", "*", "?", "[", "]", "\\", "é", "[a-c]", "[^b]", "[c-a]",
    ];
    let mut patterns: Vec<String> = [
        "*", "?", "[", "[]", "[^]", "\\", "a\\", "[a-", "[\\]]*", "*[", "[!a]*", "**?", "",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    patterns.extend((0..400).map(|_| rng.string(&pattern_alphabet, 5)));

    for pattern in &patterns {
        let from_redis: BTreeSet<String> = store.keys(pattern).await.unwrap().into_iter().collect();
        let from_matcher: BTreeSet<String> = keys
            .iter()
            .filter(|k| glob_match(pattern, k))
            .cloned()
            .collect();
        assert_eq!(from_redis, from_matcher, "pattern {pattern:?}");
    }
}

#[tokio::test]
async fn password_is_used_and_wrong_one_fails_cleanly() {
    let redis = TestRedis::start().await;
    let mut raw = redis.raw(0).await;
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("p4ss-w0rd")
        .query_async(&mut raw)
        .await
        .unwrap();

    let good = RedisStore::open(
        "authed",
        RedisConfig::new(redis.addr()).with_password("p4ss-w0rd"),
    )
    .await
    .unwrap();
    good.set("k", &1, Ttl::Never).await.unwrap();

    let err = RedisStore::open(
        "authed",
        RedisConfig::new(redis.addr()).with_password("wrong-pw"),
    )
    .await
    .unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(message.contains("authed"), "{message}");
    assert!(!message.contains("wrong-pw"), "password leaked: {message}");
}

#[tokio::test]
async fn open_fails_fast_naming_the_address() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let err = RedisStore::open(
        "user_cache",
        RedisConfig::new(&addr).with_connect_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&addr) && message.contains("user_cache"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let err = RedisStore::open("bad", RedisConfig::new(&addr).with_db(16))
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::Config { .. }), "{err:?}");
}

#[tokio::test]
async fn stores_write_where_configured() {
    let redis = TestRedis::start().await;
    let store = redis.store("users", 2, "users").await;
    store.set("user:1", &"Ada", Ttl::secs(60)).await.unwrap();
    let mut raw2 = redis.raw(2).await;
    let raw_value: Option<String> = redis::cmd("GET")
        .arg("users:user:1")
        .query_async(&mut raw2)
        .await
        .unwrap();
    assert_eq!(raw_value.as_deref(), Some("\"Ada\""));
    let mut raw0 = redis.raw(0).await;
    let n: u64 = redis::cmd("DBSIZE").query_async(&mut raw0).await.unwrap();
    assert_eq!(n, 0);
    assert_eq!(store.name(), "users");
}

static PING_SCRIPT: kv_module::Script = kv_module::Script::new("ping", "return 'pong'", |_| {
    Ok(kv_module::ScriptValue::Bytes(b"pong".to_vec()))
});

#[tokio::test]
async fn scripts_run_by_hash_and_reload_after_flush() {
    let redis = TestRedis::start().await;
    let store = redis.store("scripted", 0, "s").await;
    let mut raw = redis.raw(0).await;
    let pong = kv_module::ScriptValue::Bytes(b"pong".to_vec());
    assert_eq!(
        store.run_script(&PING_SCRIPT, &[], &[]).await.unwrap(),
        pong
    );
    let before = command_calls(&mut raw).await;
    assert_eq!(
        store.run_script(&PING_SCRIPT, &[], &[]).await.unwrap(),
        pong
    );
    let after = command_calls(&mut raw).await;
    assert_eq!(
        delta(&before, &after),
        calls(&[("evalsha", 1)]),
        "one EVALSHA"
    );
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        store.run_script(&PING_SCRIPT, &[], &[]).await.unwrap(),
        pong,
        "NOSCRIPT fallback"
    );
}
