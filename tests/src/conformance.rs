//! The conformance suite of the [`KvStore`] contract: written once as
//! generic async functions over a [`Backend`], and instantiated for every
//! backend by [`conformance_suite!`](crate::conformance_suite).
//!
//! A behaviour that only one backend has is a bug; a case added here runs
//! on all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kv_module::{KeyTtl, KvError, KvStore, KvStoreExt, Script, ScriptValue, Ttl};
use serde::{Deserialize, Serialize};

// The sections of the suite for each data type, in files of their own;
// their cases are listed in `conformance_suite!` with the others.
pub use crate::conformance_hashes::*;
pub use crate::conformance_lists::*;
pub use crate::conformance_sets::*;
pub use crate::conformance_sorted_sets::*;
pub use crate::conformance_transactions::*;
pub use crate::conformance_typed::*;

/// Opens stores of one backend, all on one server, so cases can check how
/// stores with different prefixes or databases see each other.
pub trait Backend: Send + Sync {
    /// A store named `name` on database `db` with `prefix`.
    fn store(
        &self,
        name: &str,
        db: u8,
        prefix: &str,
    ) -> impl Future<Output = Arc<dyn KvStore>> + Send;

    /// Makes `store` unreachable, for outage tests: stops the Redis server
    /// (so every store of the backend fails), or closes the memory store
    /// (it then answers `Unavailable`).
    fn outage(&mut self, store: &Arc<dyn KvStore>) -> impl Future<Output = ()> + Send;

    /// Makes new stores work again (Redis restarts on the same port with an
    /// empty data set; stores closed by an outage stay closed).
    fn recover(&mut self) -> impl Future<Output = ()> + Send;

    /// Whether the stores are on a Redis Cluster, where an atomic
    /// operation over keys of several slots is refused
    /// ([`KvError::CrossSlot`]) rather than run.
    fn is_cluster(&self) -> bool {
        false
    }
}

/// A backend lent to a case: [`backend_suite!`](crate::backend_suite)
/// gives every case `&mut` its backend, which a case taking `impl Backend`
/// by value accepts too.
impl<B: Backend> Backend for &mut B {
    fn store(
        &self,
        name: &str,
        db: u8,
        prefix: &str,
    ) -> impl Future<Output = Arc<dyn KvStore>> + Send {
        (**self).store(name, db, prefix)
    }

    fn outage(&mut self, store: &Arc<dyn KvStore>) -> impl Future<Output = ()> + Send {
        (**self).outage(store)
    }

    fn recover(&mut self) -> impl Future<Output = ()> + Send {
        (**self).recover()
    }

    fn is_cluster(&self) -> bool {
        (**self).is_cluster()
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each building its
/// backend with `$make` (an async expression yielding a [`Backend`]) and
/// running the case with `&mut` it, in the module it is called in
/// (`tests/conformance.rs` writes one per backend): the expansion of
/// [`backend_suite!`](crate::backend_suite), one backend at a time.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::backend_suite!(@cases (flavor = "multi_thread", worker_threads = 2)
            [$crate::conformance::] [&mut] ($make) [
            typed_values_round_trip,
            missing_key_is_none,
            decode_error_names_the_key,
            delete_reports_existence,
            delete_keys_counts_and_empty_batch_is_noop,
            keys_strip_prefix_and_follow_glob_rules,
            keys_scan_many_without_duplicates,
            keys_never_cross_prefix_boundaries,
            glob_characters_in_prefix_match_literally,
            exists_expire_ttl_persist,
            short_ttls_expire,
            set_replaces_value_and_expiry,
            incr_by_counts_and_keeps_expiry,
            incr_by_rejects_non_integers_without_change,
            incr_by_concurrent_total_is_exact,
            incr_by_with_ttl_arms_a_counter_once,
            incr_by_with_ttl_concurrent_counts_are_exact,
            set_if_absent_is_nx,
            get_many_and_set_many,
            raw_bytes_are_binary_safe,
            unicode_keys_and_values,
            one_mebibyte_value,
            two_prefixes_share_a_db_without_seeing_each_other,
            same_prefix_on_two_dbs_is_isolated,
            invalid_ttls_are_rejected_and_nothing_written,
            scripts_are_atomic_and_see_stored_keys,
            script_commands_match_redis,
            ping_and_close,
            hashes_follow_redis,
            hash_incr_by_follows_redis,
            hash_incr_by_concurrent_total_is_exact,
            hashes_and_strings_are_different_types,
            hash_keys_expire_and_delete_like_any_key,
            sets_follow_redis,
            set_scan_returns_every_member,
            sets_and_other_types_are_different,
            set_keys_expire_and_delete_like_any_key,
            sorted_sets_follow_redis,
            sorted_set_ranges_follow_redis,
            sorted_sets_and_other_types_are_different,
            lists_follow_redis,
            lists_and_other_types_are_different,
            blocking_pop_takes_first_ready_key_or_times_out,
            blocking_pops_wait_for_pushes_without_holding_up_the_store,
            transactions_apply_every_write,
            transaction_with_a_wrong_type_writes_nothing,
            transactions_are_never_seen_half_applied,
            any_type_transactions_replace_and_are_never_seen_half_applied,
            cross_slot_transactions_are_refused_on_a_cluster,
            update_is_compare_and_set,
            concurrent_updates_lose_nothing,
            large_batches_are_applied_whole,
            typed_helpers_round_trip,
            typed_update_changes_json_values,
        ]);
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    tags: Vec<String>,
    settings: BTreeMap<String, serde_json::Value>,
    nickname: Option<String>,
}

fn profile() -> Profile {
    Profile {
        id: 123,
        name: "John".into(),
        tags: vec!["premium".into(), "verified".into()],
        settings: [("theme".to_string(), serde_json::json!("dark"))].into(),
        nickname: None,
    }
}

fn sorted(keys: Vec<String>) -> Vec<String> {
    let set: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(
        set.len(),
        keys.len(),
        "keys() returned duplicates: {keys:?}"
    );
    set.into_iter().collect()
}

fn strings(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    v.sort();
    v
}

/// Structs, maps, vectors and primitives survive a typed round trip.
pub async fn typed_values_round_trip(b: &impl Backend) {
    let s = b.store("typed", 0, "app").await;
    s.set("user:123", &profile(), Ttl::secs(60)).await.unwrap();
    assert_eq!(s.get::<Profile>("user:123").await.unwrap(), Some(profile()));
    s.set("tags", &vec!["go", "redis"], Ttl::Never)
        .await
        .unwrap();
    assert_eq!(
        s.get::<Vec<String>>("tags").await.unwrap(),
        Some(vec!["go".to_string(), "redis".to_string()])
    );
    s.set("counter", &42_i64, Ttl::Never).await.unwrap();
    assert_eq!(s.get::<i64>("counter").await.unwrap(), Some(42));
    s.set("message", "Hello, World!", Ttl::Never).await.unwrap();
    assert_eq!(
        s.get::<String>("message").await.unwrap().as_deref(),
        Some("Hello, World!")
    );
    s.set("flag", &true, Ttl::Never).await.unwrap();
    assert_eq!(s.get::<bool>("flag").await.unwrap(), Some(true));
    // Values are stored as JSON: the raw bytes are the JSON text.
    assert_eq!(
        s.get_bytes("counter").await.unwrap().as_deref(),
        Some(&b"42"[..])
    );
}

/// A missing key reads as `Ok(None)` in every read operation.
pub async fn missing_key_is_none(b: &impl Backend) {
    let s = b.store("missing", 0, "app").await;
    assert_eq!(s.get::<String>("nope").await.unwrap(), None);
    assert_eq!(s.get_bytes("nope").await.unwrap(), None);
    assert!(!s.exists("nope").await.unwrap());
    assert_eq!(s.ttl("nope").await.unwrap(), KeyTtl::Missing);
    assert!(!s.expire("nope", Duration::from_secs(5)).await.unwrap());
    assert!(!s.persist("nope").await.unwrap());
    assert!(s.keys("*").await.unwrap().is_empty());
}

/// A value that does not decode as the requested type is an error naming
/// the store and the key.
pub async fn decode_error_names_the_key(b: &impl Backend) {
    let s = b.store("decode_store", 0, "app").await;
    s.set("user:7", "not a profile", Ttl::Never).await.unwrap();
    let err = s.get::<Profile>("user:7").await.unwrap_err();
    assert!(matches!(err, KvError::Decode { .. }), "{err:?}");
    assert_eq!(err.key(), Some("user:7"));
    assert_eq!(err.store(), "decode_store");
    let message = err.to_string();
    assert!(
        message.contains("user:7") && message.contains("decode_store"),
        "{message}"
    );
    s.set_bytes("bin", &[0xff, 0x00], Ttl::Never).await.unwrap();
    let err = s.get_many::<String>(&["user:7", "bin"]).await.unwrap_err();
    assert_eq!(
        err.key(),
        Some("bin"),
        "the key that failed, not the first one"
    );
}

/// `delete` returns whether the key existed.
pub async fn delete_reports_existence(b: &impl Backend) {
    let s = b.store("delete", 0, "app").await;
    s.set("k", &1, Ttl::Never).await.unwrap();
    assert!(s.delete("k").await.unwrap());
    assert!(!s.delete("k").await.unwrap());
    assert_eq!(s.get::<i32>("k").await.unwrap(), None);
}

/// `delete_keys` counts the keys that existed; an empty batch is a no-op.
pub async fn delete_keys_counts_and_empty_batch_is_noop(b: &impl Backend) {
    let s = b.store("delete_keys", 0, "app").await;
    for k in ["user:1", "user:2", "user:3"] {
        s.set(k, &k, Ttl::Never).await.unwrap();
    }
    assert_eq!(s.delete_keys(&[]).await.unwrap(), 0);
    assert_eq!(
        s.delete_keys(&["user:1", "user:3", "user:9", "user:1"])
            .await
            .unwrap(),
        2
    );
    assert_eq!(sorted(s.keys("*").await.unwrap()), strings(&["user:2"]));
}

/// Patterns are relative to the prefix, results have it removed, and the
/// Redis glob rules hold: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\` escapes.
pub async fn keys_strip_prefix_and_follow_glob_rules(b: &impl Backend) {
    let s = b.store("glob", 0, "myapp").await;
    let all = [
        "user:1",
        "user:2",
        "user:10",
        "user:1:profile",
        "user:2:profile",
        "session:abc123",
        "session:abc456",
        "session:xyz",
        "a*b",
        "a?b",
        "axb",
        "h[x]",
        r"back\slash",
    ];
    for k in all {
        s.set(k, &1, Ttl::Never).await.unwrap();
    }
    let cases: &[(&str, &[&str])] = &[
        (
            "user:*",
            &[
                "user:1",
                "user:2",
                "user:10",
                "user:1:profile",
                "user:2:profile",
            ],
        ),
        ("user:?", &["user:1", "user:2"]),
        ("user:*:profile", &["user:1:profile", "user:2:profile"]),
        ("session:abc*", &["session:abc123", "session:abc456"]),
        ("user:[12]", &["user:1", "user:2"]),
        ("user:[^1]", &["user:2"]),
        ("user:[0-1]*", &["user:1", "user:10", "user:1:profile"]),
        (r"a\*b", &["a*b"]),
        (r"a\?b", &["a?b"]),
        ("a?b", &["a*b", "a?b", "axb"]),
        (r"h\[x\]", &["h[x]"]),
        (r"back\\slash", &[r"back\slash"]),
        ("nothing*", &[]),
    ];
    for (pattern, expected) in cases {
        assert_eq!(
            sorted(s.keys(pattern).await.unwrap()),
            strings(expected),
            "pattern {pattern:?}"
        );
    }
    assert_eq!(s.keys("*").await.unwrap().len(), all.len());
}

/// Enough keys for `SCAN` to take many iterations: every key once.
pub async fn keys_scan_many_without_duplicates(b: &impl Backend) {
    let s = b.store("scan", 0, "many").await;
    let noise = b.store("scan_noise", 0, "other").await;
    let entries: Vec<(String, u32)> = (0..3000).map(|i| (format!("item:{i}"), i)).collect();
    let batch: Vec<(&str, u32)> = entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    s.set_many(&batch, Ttl::Never).await.unwrap();
    noise.set_many(&batch, Ttl::Never).await.unwrap();
    let keys = sorted(s.keys("item:*").await.unwrap());
    assert_eq!(keys.len(), 3000);
    assert!(keys.iter().all(|k| k.starts_with("item:")));
}

/// A store with prefix `app` never sees keys of prefix `application` or
/// unprefixed keys; an unprefixed store sees everything on its db.
pub async fn keys_never_cross_prefix_boundaries(b: &impl Backend) {
    let app = b.store("app", 0, "app").await;
    let application = b.store("application", 0, "application").await;
    let bare = b.store("bare", 0, "").await;
    app.set("x", &1, Ttl::Never).await.unwrap();
    application.set("x", &2, Ttl::Never).await.unwrap();
    bare.set("app", &3, Ttl::Never).await.unwrap();
    bare.set("appx", &4, Ttl::Never).await.unwrap();
    assert_eq!(sorted(app.keys("*").await.unwrap()), strings(&["x"]));
    assert_eq!(app.get::<i32>("x").await.unwrap(), Some(1));
    assert_eq!(
        sorted(application.keys("*").await.unwrap()),
        strings(&["x"])
    );
    assert_eq!(
        sorted(bare.keys("*").await.unwrap()),
        strings(&["app:x", "application:x", "app", "appx"])
    );
    assert_eq!(bare.get::<i32>("app:x").await.unwrap(), Some(1));
}

/// Glob metacharacters in a prefix match only themselves.
pub async fn glob_characters_in_prefix_match_literally(b: &impl Backend) {
    let weird = b.store("weird", 0, r"a*[b]?\").await;
    let lookalike = b.store("lookalike", 0, r"aXb?\").await;
    // Matched by the prefix read as an unescaped glob (`a*[b]?\:*`).
    let other = b.store("other", 0, "azzbQ").await;
    let bare = b.store("bare", 0, "").await;
    weird.set("k", &1, Ttl::Never).await.unwrap();
    lookalike.set("k", &2, Ttl::Never).await.unwrap();
    other.set("k", &3, Ttl::Never).await.unwrap();
    bare.set("ab:k", &4, Ttl::Never).await.unwrap();
    assert_eq!(sorted(weird.keys("*").await.unwrap()), strings(&["k"]));
    assert_eq!(weird.get::<i32>("k").await.unwrap(), Some(1));
    assert_eq!(
        bare.get::<i32>(r"a*[b]?\:k").await.unwrap(),
        Some(1),
        "stored key is {{prefix}}:{{key}}"
    );
    assert_eq!(weird.delete_keys(&["k"]).await.unwrap(), 1);
    assert_eq!(lookalike.get::<i32>("k").await.unwrap(), Some(2));
}

/// `exists`, `expire`, `ttl` and `persist` agree, and `ttl` tells missing,
/// persistent and expiring keys apart.
pub async fn exists_expire_ttl_persist(b: &impl Backend) {
    let s = b.store("ttl", 0, "app").await;
    s.set("k", &1, Ttl::Never).await.unwrap();
    assert!(s.exists("k").await.unwrap());
    assert_eq!(s.ttl("k").await.unwrap(), KeyTtl::Persistent);
    assert!(!s.persist("k").await.unwrap(), "nothing to persist");
    assert!(s.expire("k", Duration::from_secs(100)).await.unwrap());
    let remaining = s.ttl("k").await.unwrap().remaining().expect("expiring");
    assert!(
        remaining > Duration::from_secs(98) && remaining <= Duration::from_secs(100),
        "{remaining:?}"
    );
    assert!(s.persist("k").await.unwrap());
    assert_eq!(s.ttl("k").await.unwrap(), KeyTtl::Persistent);
    s.set("ms", &1, Ttl::millis(1500)).await.unwrap();
    let remaining = s.ttl("ms").await.unwrap().remaining().expect("expiring");
    assert!(
        remaining > Duration::from_millis(1000) && remaining <= Duration::from_millis(1500),
        "millisecond precision: {remaining:?}"
    );
}

/// Short real TTLs expire: the key is gone from every operation.
pub async fn short_ttls_expire(b: &impl Backend) {
    let s = b.store("expiry", 0, "app").await;
    s.set("short", &1, Ttl::millis(100)).await.unwrap();
    s.set("kept", &2, Ttl::secs(60)).await.unwrap();
    s.set("later", &3, Ttl::Never).await.unwrap();
    assert!(s.expire("later", Duration::from_millis(100)).await.unwrap());
    assert_eq!(s.get::<i32>("short").await.unwrap(), Some(1));
    // Real time has to pass for a real TTL: wait past both expiries.
    tokio::time::sleep(Duration::from_millis(250)).await;
    for key in ["short", "later"] {
        assert_eq!(s.get::<i32>(key).await.unwrap(), None, "{key}");
        assert!(!s.exists(key).await.unwrap(), "{key}");
        assert_eq!(s.ttl(key).await.unwrap(), KeyTtl::Missing, "{key}");
        assert!(!s.delete(key).await.unwrap(), "{key}");
    }
    assert_eq!(sorted(s.keys("*").await.unwrap()), strings(&["kept"]));
    assert!(s.set_if_absent("short", &9, Ttl::Never).await.unwrap());
    assert_eq!(
        s.incr_by("later", 5).await.unwrap(),
        5,
        "expired counter restarts"
    );
}

/// `set` replaces both the value and the expiry.
pub async fn set_replaces_value_and_expiry(b: &impl Backend) {
    let s = b.store("replace", 0, "app").await;
    s.set("k", &1, Ttl::secs(60)).await.unwrap();
    s.set("k", &2, Ttl::Never).await.unwrap();
    assert_eq!(s.get::<i32>("k").await.unwrap(), Some(2));
    assert_eq!(s.ttl("k").await.unwrap(), KeyTtl::Persistent);
    s.set("k", &3, Ttl::secs(30)).await.unwrap();
    assert!(s.ttl("k").await.unwrap().remaining().is_some());
}

/// `incr_by` starts missing keys at 0, works on `set` integers, accepts
/// negative deltas, and keeps the key's expiry.
pub async fn incr_by_counts_and_keeps_expiry(b: &impl Backend) {
    let s = b.store("counter", 0, "app").await;
    assert_eq!(s.incr_by("fresh", 3).await.unwrap(), 3);
    assert_eq!(s.ttl("fresh").await.unwrap(), KeyTtl::Persistent);
    s.set("n", &42, Ttl::secs(60)).await.unwrap();
    assert_eq!(s.incr_by("n", 1).await.unwrap(), 43);
    assert_eq!(s.incr_by("n", -50).await.unwrap(), -7);
    assert_eq!(s.get::<i64>("n").await.unwrap(), Some(-7));
    assert!(
        s.ttl("n").await.unwrap().remaining().is_some(),
        "incr_by keeps the expiry"
    );
    s.set("max", &(i64::MAX - 1), Ttl::Never).await.unwrap();
    assert_eq!(s.incr_by("max", 1).await.unwrap(), i64::MAX);
}

/// `incr_by` on a non-integer or past `i64` is an error and changes nothing.
pub async fn incr_by_rejects_non_integers_without_change(b: &impl Backend) {
    let s = b.store("counter_errors", 0, "app").await;
    s.set("text", "abc", Ttl::Never).await.unwrap();
    s.set("float", &1.5, Ttl::Never).await.unwrap();
    s.set_bytes("padded", b" 1", Ttl::Never).await.unwrap();
    s.set_bytes("plus", b"+1", Ttl::Never).await.unwrap();
    s.set_bytes("zeros", b"007", Ttl::Never).await.unwrap();
    for key in ["text", "float", "padded", "plus", "zeros"] {
        let before = s.get_bytes(key).await.unwrap();
        let err = s.incr_by(key, 1).await.unwrap_err();
        assert!(
            matches!(err, KvError::NotAnInteger { .. }),
            "{key}: {err:?}"
        );
        assert_eq!(err.key(), Some(key));
        assert_eq!(s.get_bytes(key).await.unwrap(), before, "{key} unchanged");
    }
    s.set("max", &i64::MAX, Ttl::Never).await.unwrap();
    let err = s.incr_by("max", 1).await.unwrap_err();
    assert!(matches!(err, KvError::Overflow { .. }), "{err:?}");
    assert_eq!(s.get::<i64>("max").await.unwrap(), Some(i64::MAX));
    s.set("min", &i64::MIN, Ttl::Never).await.unwrap();
    assert!(matches!(
        s.incr_by("min", -1).await.unwrap_err(),
        KvError::Overflow { .. }
    ));
}

/// 1,000 concurrent `incr_by` give the exact total.
pub async fn incr_by_concurrent_total_is_exact(b: &impl Backend) {
    let s = b.store("concurrent", 0, "app").await;
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.incr_by("hits", if i % 2 == 0 { 1 } else { 2 }).await })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(s.get::<i64>("hits").await.unwrap(), Some(1500));
    assert_eq!(seen.len(), 1000, "every increment saw a distinct value");
}

/// `incr_by_with_ttl` gives a new counter exactly its TTL, never pushes
/// it back, arms a counter found without one, and on an error changes
/// nothing (expiry included).
pub async fn incr_by_with_ttl_arms_a_counter_once(b: &impl Backend) {
    let s = b.store("window", 0, "app").await;
    let minute = Duration::from_secs(60);
    assert_eq!(
        s.incr_by_with_ttl("w", 1, minute).await.unwrap(),
        (1, KeyTtl::ExpiresIn(minute))
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (n, left) = s.incr_by_with_ttl("w", 2, minute).await.unwrap();
    assert_eq!(n, 3);
    let left = left.remaining().expect("an expiry");
    assert!(left < minute, "not re-armed: {left:?}");
    let stored = s.ttl("w").await.unwrap().remaining().expect("an expiry");
    assert!(stored <= left, "{stored:?} {left:?}");
    // Another TTL on a later call changes nothing either.
    let (_, later) = s
        .incr_by_with_ttl("w", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(later.remaining().expect("an expiry") > Duration::from_secs(5));
    // A counter without expiry gets one.
    s.set("persistent", &7, Ttl::Never).await.unwrap();
    assert_eq!(
        s.incr_by_with_ttl("persistent", 1, minute).await.unwrap(),
        (8, KeyTtl::ExpiresIn(minute))
    );
    // Errors: nothing changes, the expiry neither.
    s.set("text", "abc", Ttl::Never).await.unwrap();
    let err = s.incr_by_with_ttl("text", 1, minute).await.unwrap_err();
    assert!(matches!(err, KvError::NotAnInteger { .. }), "{err:?}");
    assert_eq!(err.key(), Some("text"));
    assert_eq!(s.ttl("text").await.unwrap(), KeyTtl::Persistent);
    assert_eq!(
        s.get::<String>("text").await.unwrap().as_deref(),
        Some("abc")
    );
    s.set("max", &i64::MAX, Ttl::Never).await.unwrap();
    let err = s.incr_by_with_ttl("max", 1, minute).await.unwrap_err();
    assert!(matches!(err, KvError::Overflow { .. }), "{err:?}");
    assert_eq!(s.get::<i64>("max").await.unwrap(), Some(i64::MAX));
    let err = s
        .incr_by_with_ttl("w", 1, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
    assert_eq!(s.get::<i64>("w").await.unwrap(), Some(4), "nothing added");
}

/// 1,000 concurrent `incr_by_with_ttl` from two stores (two application
/// instances): every call sees a distinct count, the total is exact, and
/// the counter has its expiry.
pub async fn incr_by_with_ttl_concurrent_counts_are_exact(b: &impl Backend) {
    let (first, second) = (
        b.store("concurrent_window", 0, "app").await,
        b.store("concurrent_window", 0, "app").await,
    );
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let s = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(
                async move { s.incr_by_with_ttl("hits", 1, Duration::from_secs(60)).await },
            )
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let (n, left) = task.await.unwrap().unwrap();
        assert!(left.remaining().is_some(), "{n}: {left:?}");
        seen.insert(n);
    }
    assert_eq!(seen, (1..=1000).collect(), "one distinct count per call");
    assert_eq!(first.get::<i64>("hits").await.unwrap(), Some(1000));
    assert!(first.ttl("hits").await.unwrap().remaining().is_some());
}

/// `set_if_absent` writes only when the key is absent.
pub async fn set_if_absent_is_nx(b: &impl Backend) {
    let s = b.store("nx", 0, "app").await;
    assert!(s.set_if_absent("lock", "a", Ttl::secs(10)).await.unwrap());
    assert!(!s.set_if_absent("lock", "b", Ttl::secs(10)).await.unwrap());
    assert_eq!(s.get::<String>("lock").await.unwrap().as_deref(), Some("a"));
    assert!(s.ttl("lock").await.unwrap().remaining().is_some());
    let contenders: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.set_if_absent("race", &i, Ttl::Never).await })
        })
        .collect();
    let mut winners = 0;
    for c in contenders {
        winners += usize::from(c.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
}

/// `get_many` keeps order and reports missing keys; `set_many` writes every
/// entry with its own expiry; empty batches are no-ops.
pub async fn get_many_and_set_many(b: &impl Backend) {
    let s = b.store("many", 0, "app").await;
    assert!(s.get_many::<i32>(&[]).await.unwrap().is_empty());
    s.set_many::<i32>(&[], Ttl::Never).await.unwrap();
    s.set_many(&[("a", 1), ("b", 2), ("c", 3)], Ttl::secs(60))
        .await
        .unwrap();
    assert_eq!(
        s.get_many::<i32>(&["c", "missing", "a", "b"])
            .await
            .unwrap(),
        vec![Some(3), None, Some(1), Some(2)]
    );
    assert!(s.ttl("a").await.unwrap().remaining().is_some());
    s.set_many_bytes(&[
        ("x", b"1".as_slice(), Ttl::Never),
        ("y", b"2".as_slice(), Ttl::millis(60_000)),
    ])
    .await
    .unwrap();
    assert_eq!(s.ttl("x").await.unwrap(), KeyTtl::Persistent);
    assert!(s.ttl("y").await.unwrap().remaining().is_some());
    assert_eq!(
        s.get_many_bytes(&["x", "y", "z"]).await.unwrap(),
        vec![Some(b"1".to_vec()), Some(b"2".to_vec()), None]
    );
}

/// Raw values are binary safe: every byte value, NULs, invalid UTF-8.
pub async fn raw_bytes_are_binary_safe(b: &impl Backend) {
    let s = b.store("bytes", 0, "app").await;
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    s.set_bytes("all", &all, Ttl::Never).await.unwrap();
    assert_eq!(s.get_bytes("all").await.unwrap(), Some(all));
    s.set_bytes("empty", b"", Ttl::Never).await.unwrap();
    assert_eq!(s.get_bytes("empty").await.unwrap(), Some(Vec::new()));
    assert!(s.exists("empty").await.unwrap());
    s.set_bytes("nul", b"a\0b\r\n$3\r\n", Ttl::Never)
        .await
        .unwrap();
    assert_eq!(
        s.get_bytes("nul").await.unwrap().as_deref(),
        Some(&b"a\0b\r\n$3\r\n"[..])
    );
}

/// Unicode in keys, values and prefixes.
pub async fn unicode_keys_and_values(b: &impl Backend) {
    let s = b.store("unicode", 0, "приложение").await;
    let value = "héllo wörld — 日本語 🦀 \u{0}";
    s.set("ключ:🦀", value, Ttl::Never).await.unwrap();
    assert_eq!(
        s.get::<String>("ключ:🦀").await.unwrap().as_deref(),
        Some(value)
    );
    // Patterns match bytes, as in Redis: `?` is one byte, and 🦀 is four.
    assert!(s.keys("ключ:?").await.unwrap().is_empty());
    assert_eq!(
        sorted(s.keys("ключ:????").await.unwrap()),
        strings(&["ключ:🦀"])
    );
    assert_eq!(sorted(s.keys("*").await.unwrap()), strings(&["ключ:🦀"]));
}

/// A 1 MiB value round trips unchanged.
pub async fn one_mebibyte_value(b: &impl Backend) {
    let s = b.store("big", 0, "app").await;
    let big: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    s.set_bytes("big", &big, Ttl::secs(60)).await.unwrap();
    assert_eq!(s.get_bytes("big").await.unwrap(), Some(big));
    let text = "x".repeat(1024 * 1024);
    s.set("text", &text, Ttl::Never).await.unwrap();
    assert_eq!(s.get::<String>("text").await.unwrap(), Some(text));
}

/// Two stores with different prefixes on one db do not see each other.
pub async fn two_prefixes_share_a_db_without_seeing_each_other(b: &impl Backend) {
    let users = b.store("users", 0, "users").await;
    let sessions = b.store("sessions", 0, "sessions").await;
    users.set("k", "u", Ttl::Never).await.unwrap();
    sessions.set("k", "s", Ttl::Never).await.unwrap();
    assert_eq!(
        users.get::<String>("k").await.unwrap().as_deref(),
        Some("u")
    );
    assert_eq!(
        sessions.get::<String>("k").await.unwrap().as_deref(),
        Some("s")
    );
    assert!(users.delete("k").await.unwrap());
    assert_eq!(
        sessions.get::<String>("k").await.unwrap().as_deref(),
        Some("s")
    );
    assert!(users.keys("*").await.unwrap().is_empty());
    assert_eq!(sessions.incr_by("n", 1).await.unwrap(), 1);
    assert_eq!(users.incr_by("n", 1).await.unwrap(), 1);
}

/// Two stores with the same prefix on db 0 and db 1 are isolated.
pub async fn same_prefix_on_two_dbs_is_isolated(b: &impl Backend) {
    let db0 = b.store("db0", 0, "app").await;
    let db1 = b.store("db1", 1, "app").await;
    db0.set("k", &0, Ttl::Never).await.unwrap();
    assert_eq!(db1.get::<i32>("k").await.unwrap(), None);
    db1.set("k", &1, Ttl::Never).await.unwrap();
    assert_eq!(db0.get::<i32>("k").await.unwrap(), Some(0));
    assert_eq!(db1.get::<i32>("k").await.unwrap(), Some(1));
    assert_eq!(db0.delete_keys(&["k"]).await.unwrap(), 1);
    assert_eq!(sorted(db1.keys("*").await.unwrap()), strings(&["k"]));
}

/// A zero or absurd TTL is rejected before anything is written.
pub async fn invalid_ttls_are_rejected_and_nothing_written(b: &impl Backend) {
    let s = b.store("bad_ttl", 0, "app").await;
    for ttl in [Ttl::After(Duration::ZERO), Ttl::After(Duration::MAX)] {
        let err = s.set("k", &1, ttl).await.unwrap_err();
        assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
        assert_eq!(err.key(), Some("k"));
    }
    let err = s
        .set_many(&[("a", 1), ("b", 2)], Ttl::After(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
    assert!(!s.exists("k").await.unwrap());
    assert!(!s.exists("a").await.unwrap());
    s.set("present", &1, Ttl::Never).await.unwrap();
    assert!(s.expire("present", Duration::ZERO).await.is_err());
    assert_eq!(s.ttl("present").await.unwrap(), KeyTtl::Persistent);
}

/// `ping` answers; after `close` operations fail as unavailable.
pub async fn ping_and_close(b: &impl Backend) {
    let s = b.store("closing", 0, "app").await;
    s.ping().await.unwrap();
    s.set("k", &1, Ttl::Never).await.unwrap();
    s.close().await;
    let err = s.get::<i32>("k").await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(err.store(), "closing");
    assert!(s.ping().await.unwrap_err().is_unavailable());
}

/// Read, add one, write back: racy as three commands, exact as a script.
static READ_MODIFY_WRITE: Script = Script::new(
    "read modify write",
    "local n = tonumber(redis.call('GET', KEYS[1]) or '0') + 1 \
     redis.call('SET', KEYS[1], tostring(n), 'KEEPTTL') return {n, KEYS[1]}",
    |run| {
        let key = run.key(0)?;
        let current = run
            .get(key)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let next = current + 1;
        run.set_keep_ttl(key, next.to_string().as_bytes())?;
        Ok(ScriptValue::Array(vec![
            ScriptValue::Int(next),
            ScriptValue::Bytes(key.as_bytes().to_vec()),
        ]))
    },
);

/// Every command the Rust twins may use, with the replies they give.
static COMMANDS: Script = Script::new(
    "commands",
    r#"
    local out = {}
    redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000)
    out[#out+1] = redis.call('PTTL', KEYS[1]) > 59000 and 1 or 0
    redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
    out[#out+1] = redis.call('GET', KEYS[1])
    out[#out+1] = redis.call('PTTL', KEYS[1]) > 0 and 1 or 0
    redis.call('SET', KEYS[1], ARGV[1])
    out[#out+1] = redis.call('PTTL', KEYS[1])
    out[#out+1] = redis.call('PTTL', KEYS[2])
    out[#out+1] = redis.call('PEXPIRE', KEYS[2], 1000)
    out[#out+1] = redis.call('PEXPIRE', KEYS[1], 5000)
    out[#out+1] = redis.call('DEL', KEYS[1])
    out[#out+1] = redis.call('DEL', KEYS[1])
    out[#out+1] = redis.call('GET', KEYS[1]) == false and 1 or 0
    local t = redis.call('TIME')
    out[#out+1] = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if ARGV[3] == 'fail' then return redis.error_reply('asked to fail') end
    return out
    "#,
    |run| {
        let flag = |b: bool| ScriptValue::Int(i64::from(b));
        let (a, b) = (run.key(0)?, run.key(1)?);
        let (one, two) = (run.arg_bytes(0)?, run.arg_bytes(1)?);
        let mut out = Vec::new();
        run.set(a, one, Some(60_000))?;
        out.push(flag(run.pttl(a)? > 59_000));
        run.set_keep_ttl(a, two)?;
        out.push(run.get(a)?.map_or(ScriptValue::Nil, ScriptValue::Bytes));
        out.push(flag(run.pttl(a)? > 0));
        run.set(a, one, None)?;
        out.push(ScriptValue::Int(run.pttl(a)?));
        out.push(ScriptValue::Int(run.pttl(b)?));
        out.push(flag(run.pexpire(b, 1000)?));
        out.push(flag(run.pexpire(a, 5000)?));
        out.push(flag(run.del(a)?));
        out.push(flag(run.del(a)?));
        out.push(flag(run.get(a)?.is_none()));
        out.push(ScriptValue::Int(
            i64::try_from(run.now_ms()).unwrap_or(i64::MAX),
        ));
        if run.arg_bytes(2)? == b"fail" {
            return Err("asked to fail".into());
        }
        Ok(ScriptValue::Array(out))
    },
);

/// Scripts run as one atomic step (200 concurrent read-modify-writes give
/// the exact count) and see the stored (prefixed) keys.
pub async fn scripts_are_atomic_and_see_stored_keys(b: &impl Backend) {
    let s = b.store("scripts", 0, "app").await;
    s.set("n", &0, Ttl::secs(60)).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.run_script(&READ_MODIFY_WRITE, &["n"], &[]).await })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let reply = task.await.unwrap().unwrap();
        let items = reply.as_array().expect("array reply").to_vec();
        // The stored key: the store's prefix (on a shared server a
        // namespace comes first), `:`, the caller's key.
        assert_eq!(
            items[1],
            ScriptValue::Bytes(format!("{}:n", s.prefix()).into_bytes())
        );
        seen.insert(items[0].as_int().expect("int"));
    }
    assert_eq!(seen.len(), 200, "every run saw a distinct value");
    assert_eq!(s.get::<i64>("n").await.unwrap(), Some(200));
    assert!(
        s.ttl("n").await.unwrap().remaining().is_some(),
        "KEEPTTL kept it"
    );
}

/// The commands scripts use reply alike on both backends; a script error
/// is a backend error naming the store.
pub async fn script_commands_match_redis(b: &impl Backend) {
    let s = b.store("script_cmds", 0, "app").await;
    let args = vec![b"one".to_vec(), b"two".to_vec(), b"ok".to_vec()];
    // One hash tag: a script's keys must share a slot on a cluster.
    let reply = s
        .run_script(&COMMANDS, &["{t}a", "{t}b"], &args)
        .await
        .unwrap();
    let items = reply.as_array().expect("array").to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let time = items.last().and_then(ScriptValue::as_int).expect("time");
    assert!((now - time).abs() < 5_000, "server clock {time} vs {now}");
    use ScriptValue::{Bytes, Int};
    assert_eq!(
        items[..items.len() - 1],
        [
            Int(1),
            Bytes(b"two".to_vec()),
            Int(1),
            Int(-1),
            Int(-2),
            Int(0),
            Int(1),
            Int(1),
            Int(0),
            Int(1)
        ]
    );
    let err = s
        .run_script(
            &COMMANDS,
            &["{t}a", "{t}b"],
            &[args[0].clone(), args[1].clone(), b"fail".to_vec()],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::Backend { .. }), "{err:?}");
    assert_eq!(err.store(), "script_cmds");
}
