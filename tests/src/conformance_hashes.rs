//! The hash section of the conformance suite ([`KvHashes`](kv_module::KvHashes)):
//! Redis's replies, `WRONGTYPE`, empty hashes vanishing, TTLs on hash
//! keys, and exact concurrent `HINCRBY`s. Cases are listed in
//! [`conformance_suite!`](crate::conformance_suite), which runs them on
//! every backend and topology.

use std::collections::BTreeMap;
use std::time::Duration;

use kv_module::{KeyTtl, KvError, KvStoreExt, Ttl};

use crate::conformance::Backend;

fn map(pairs: Vec<(String, Vec<u8>)>) -> BTreeMap<String, Vec<u8>> {
    let n = pairs.len();
    let map: BTreeMap<_, _> = pairs.into_iter().collect();
    assert_eq!(map.len(), n, "HGETALL returned a field twice");
    map
}

/// Every hash operation replies as Redis does, a missing key reads as an
/// empty hash, and a hash vanishes with its last field.
pub async fn hashes_follow_redis(b: &impl Backend) {
    let s = b.store("hashes", 0, "app").await;
    let h = s.hashes();
    assert_eq!(h.get("h", "f").await.unwrap(), None);
    assert_eq!(
        h.get_many("h", &["a", "b"]).await.unwrap(),
        vec![None, None]
    );
    assert!(h.get_all("h").await.unwrap().is_empty());
    assert_eq!(h.len("h").await.unwrap(), 0);
    assert!(!h.exists("h", "f").await.unwrap());
    assert_eq!(h.delete("h", &["f"]).await.unwrap(), 0);
    assert!(!s.exists("h").await.unwrap(), "reads create nothing");

    assert!(h.set("h", "name", b"Ada").await.unwrap());
    assert!(!h.set("h", "name", b"Grace").await.unwrap(), "not new");
    let fields: [(&str, &[u8]); 3] = [("a", b"1"), ("b", b"\x00\xff"), ("a", b"3")];
    assert_eq!(h.set_many("h", &fields, None).await.unwrap(), 2);
    assert_eq!(h.set_many("h", &[], None).await.unwrap(), 0);
    assert_eq!(
        h.get("h", "name").await.unwrap().as_deref(),
        Some(&b"Grace"[..])
    );
    assert_eq!(
        h.get_many("h", &["b", "zz", "a"]).await.unwrap(),
        vec![Some(b"\x00\xff".to_vec()), None, Some(b"3".to_vec())],
        "in the order asked, the last value of a field listed twice"
    );
    assert!(h.get_many("h", &[]).await.unwrap().is_empty());
    assert_eq!(
        map(h.get_all("h").await.unwrap()),
        BTreeMap::from([
            ("a".to_string(), b"3".to_vec()),
            ("b".to_string(), b"\x00\xff".to_vec()),
            ("name".to_string(), b"Grace".to_vec()),
        ])
    );
    assert_eq!(h.len("h").await.unwrap(), 3);
    assert!(h.exists("h", "a").await.unwrap());
    assert_eq!(h.delete("h", &["a", "zz", "a"]).await.unwrap(), 1);
    assert_eq!(h.delete("h", &[]).await.unwrap(), 0);
    assert_eq!(h.len("h").await.unwrap(), 2);
    assert_eq!(h.delete("h", &["b", "name"]).await.unwrap(), 2);
    assert!(!s.exists("h").await.unwrap(), "an empty hash vanishes");
    assert!(s.keys("*").await.unwrap().is_empty());
    // A unicode field, an empty value.
    assert!(h.set("h", "ключ🦀", b"").await.unwrap());
    assert_eq!(h.get("h", "ключ🦀").await.unwrap(), Some(Vec::new()));
    assert_eq!(
        h.get_all("h").await.unwrap(),
        vec![("ключ🦀".to_string(), Vec::new())]
    );
}

/// `HINCRBY` counts from 0, rejects non-integers and overflows without a
/// change, and keeps the key's expiry.
pub async fn hash_incr_by_follows_redis(b: &impl Backend) {
    let s = b.store("hash_incr", 0, "app").await;
    let h = s.hashes();
    assert_eq!(h.incr_by("c", "n", 5).await.unwrap(), 5);
    assert_eq!(h.incr_by("c", "n", -7).await.unwrap(), -2);
    assert_eq!(h.get("c", "n").await.unwrap().as_deref(), Some(&b"-2"[..]));
    h.set("c", "text", b"abc").await.unwrap();
    h.set("c", "zeros", b"007").await.unwrap();
    for field in ["text", "zeros"] {
        let err = h.incr_by("c", field, 1).await.unwrap_err();
        assert!(
            matches!(err, KvError::NotAnInteger { .. }),
            "{field}: {err:?}"
        );
        assert_eq!((err.store(), err.key()), ("hash_incr", Some("c")));
    }
    h.set("c", "max", i64::MAX.to_string().as_bytes())
        .await
        .unwrap();
    let err = h.incr_by("c", "max", 1).await.unwrap_err();
    assert!(matches!(err, KvError::Overflow { .. }), "{err:?}");
    assert_eq!(
        h.get("c", "max").await.unwrap(),
        Some(i64::MAX.to_string().into_bytes())
    );
    assert!(s.expire("c", Duration::from_secs(60)).await.unwrap());
    h.incr_by("c", "n", 1).await.unwrap();
    assert!(s.ttl("c").await.unwrap().remaining().is_some(), "kept");
}

/// N tasks each adding 1 to one field give N, every task seeing a
/// distinct value.
pub async fn hash_incr_by_concurrent_total_is_exact(b: &impl Backend) {
    let s = b.store("hash_concurrent", 0, "app").await;
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.hashes().incr_by("stats", "hits", 1).await })
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(seen.len(), 500);
    assert_eq!(
        s.hashes().get("stats", "hits").await.unwrap().as_deref(),
        Some(&b"500"[..])
    );
}

/// A key of one type used as another is `WrongType` naming the store and
/// the key, and changes nothing; `SET` replaces a hash as Redis does, and
/// `MGET` reads a hash as missing.
pub async fn hashes_and_strings_are_different_types(b: &impl Backend) {
    let s = b.store("wrong_type", 0, "app").await;
    let h = s.hashes();
    s.set("text", "v", Ttl::Never).await.unwrap();
    h.set("hash", "f", b"1").await.unwrap();
    let errors = [
        h.set("text", "f", b"1").await.unwrap_err(),
        h.set_many("text", &[("f", b"1")], Some(Ttl::secs(5)))
            .await
            .unwrap_err(),
        h.get("text", "f").await.unwrap_err(),
        h.get_many("text", &["f"]).await.unwrap_err(),
        h.get_all("text").await.unwrap_err(),
        h.delete("text", &["f"]).await.unwrap_err(),
        h.incr_by("text", "f", 1).await.unwrap_err(),
        h.exists("text", "f").await.unwrap_err(),
        h.len("text").await.unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, KvError::WrongType { .. }), "{err:?}");
        assert!(err.is_wrong_type());
        assert_eq!((err.store(), err.key()), ("wrong_type", Some("text")));
        let message = err.to_string();
        assert!(
            message.contains("wrong_type") && message.contains("text"),
            "{message}"
        );
    }
    assert_eq!(
        s.ttl("text").await.unwrap(),
        KeyTtl::Persistent,
        "unchanged"
    );
    for err in [
        s.get_bytes("hash").await.unwrap_err(),
        s.incr_by("hash", 1).await.unwrap_err(),
    ] {
        assert!(matches!(err, KvError::WrongType { .. }), "{err:?}");
        assert_eq!(err.key(), Some("hash"));
    }
    assert_eq!(
        s.get_many_bytes(&["hash", "text"]).await.unwrap(),
        vec![None, Some(b"\"v\"".to_vec())]
    );
    assert!(!s.set_if_absent("hash", &1, Ttl::Never).await.unwrap());
    s.set("hash", &2, Ttl::Never).await.unwrap();
    assert_eq!(
        s.get::<i32>("hash").await.unwrap(),
        Some(2),
        "SET replaces any type"
    );
}

/// TTLs, `keys`, `exists`, `delete` and `delete_keys` treat a hash key like
/// any other; `set_many` sets, keeps or removes the expiry in one step.
pub async fn hash_keys_expire_and_delete_like_any_key(b: &impl Backend) {
    let s = b.store("hash_ttl", 0, "app").await;
    let h = s.hashes();
    let f: [(&str, &[u8]); 1] = [("f", b"1")];
    assert_eq!(h.set_many("h", &f, Some(Ttl::secs(100))).await.unwrap(), 1);
    let left = s.ttl("h").await.unwrap().remaining().expect("expiring");
    assert!(left > Duration::from_secs(98), "{left:?}");
    h.set("h", "g", b"2").await.unwrap();
    h.set_many("h", &f, None).await.unwrap();
    assert!(
        s.ttl("h").await.unwrap().remaining().is_some(),
        "writes keep it"
    );
    h.set_many("h", &f, Some(Ttl::Never)).await.unwrap();
    assert_eq!(s.ttl("h").await.unwrap(), KeyTtl::Persistent);
    let err = h
        .set_many("h", &[("new", b"x")], Some(Ttl::After(Duration::ZERO)))
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
    assert!(!h.exists("h", "new").await.unwrap(), "nothing written");

    h.set("other", "f", b"1").await.unwrap();
    s.set("plain", &1, Ttl::Never).await.unwrap();
    let mut keys = s.keys("*").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["h", "other", "plain"]);
    assert!(s.exists("other").await.unwrap());
    assert_eq!(s.delete_keys(&["other", "plain", "none"]).await.unwrap(), 2);
    assert_eq!(h.len("other").await.unwrap(), 0);

    h.set_many("short", &f, Some(Ttl::millis(100)))
        .await
        .unwrap();
    assert!(s.expire("h", Duration::from_millis(100)).await.unwrap());
    // Real time has to pass for a real TTL.
    tokio::time::sleep(Duration::from_millis(250)).await;
    for key in ["short", "h"] {
        assert_eq!(h.len(key).await.unwrap(), 0, "{key}");
        assert_eq!(h.get(key, "f").await.unwrap(), None, "{key}");
        assert!(!s.exists(key).await.unwrap(), "{key}");
    }
    assert!(h.set("h", "f", b"1").await.unwrap(), "a fresh hash");
    assert_eq!(s.ttl("h").await.unwrap(), KeyTtl::Persistent);
    assert!(s.delete("h").await.unwrap());
}
