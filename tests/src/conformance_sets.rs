//! The set section of the conformance suite ([`KvSets`](kv_module::KvSets)):
//! Redis's replies, `WRONGTYPE`, empty sets vanishing, and `SSCAN`'s
//! guarantee. Cases are listed in
//! [`conformance_suite!`](crate::conformance_suite).

use std::collections::BTreeSet;
use std::time::Duration;

use kv_module::store::ScanCursor;
use kv_module::{KvError, KvStoreExt, Ttl};

use crate::conformance::Backend;

fn set(members: Vec<Vec<u8>>) -> BTreeSet<Vec<u8>> {
    let n = members.len();
    let set: BTreeSet<_> = members.into_iter().collect();
    assert_eq!(set.len(), n, "SMEMBERS returned a member twice");
    set
}

fn bytes(items: &[&[u8]]) -> BTreeSet<Vec<u8>> {
    items.iter().map(|m| m.to_vec()).collect()
}

/// Every set operation replies as Redis does, a missing key reads as an
/// empty set, and a set vanishes with its last member.
pub async fn sets_follow_redis(b: &impl Backend) {
    let s = b.store("sets", 0, "app").await;
    let sets = s.sets();
    assert!(sets.members("tags").await.unwrap().is_empty());
    assert_eq!(sets.count("tags").await.unwrap(), 0);
    assert!(!sets.is_member("tags", b"a").await.unwrap());
    assert_eq!(sets.remove("tags", &[b"a"]).await.unwrap(), 0);
    assert!(!s.exists("tags").await.unwrap(), "reads create nothing");

    assert_eq!(sets.add("tags", &[b"a", b"b", b"a"]).await.unwrap(), 2);
    assert_eq!(
        sets.add("tags", &[b"b", b"", b"\x00\xff"]).await.unwrap(),
        2
    );
    assert_eq!(sets.add("tags", &[]).await.unwrap(), 0);
    assert_eq!(
        set(sets.members("tags").await.unwrap()),
        bytes(&[b"a", b"b", b"", b"\x00\xff"])
    );
    assert_eq!(sets.count("tags").await.unwrap(), 4);
    assert!(sets.is_member("tags", b"").await.unwrap());
    assert!(!sets.is_member("tags", b"c").await.unwrap());
    assert_eq!(sets.remove("tags", &[b"a", b"c", b"a"]).await.unwrap(), 1);
    assert_eq!(sets.remove("tags", &[]).await.unwrap(), 0);
    assert_eq!(
        sets.remove("tags", &[b"b", b"", b"\x00\xff"])
            .await
            .unwrap(),
        3
    );
    assert!(!s.exists("tags").await.unwrap(), "an empty set vanishes");
    assert_eq!(sets.count("tags").await.unwrap(), 0);
}

/// `scan` walks a set page by page: every member present for the whole
/// walk comes back, pages follow the count hint, and a missing key is one
/// empty last page.
pub async fn set_scan_returns_every_member(b: &impl Backend) {
    let s = b.store("set_scan", 0, "app").await;
    let sets = s.sets();
    let page = sets.scan("none", &ScanCursor::start(), 10).await.unwrap();
    assert!(page.members.is_empty() && page.next.is_none(), "{page:?}");

    let all: Vec<Vec<u8>> = (0..1000).map(|i| format!("m{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
    assert_eq!(sets.add("big", &refs).await.unwrap(), 1000);
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    let mut cursor = ScanCursor::start();
    loop {
        let page = sets.scan("big", &cursor, 50).await.unwrap();
        pages += 1;
        // Members removed during the walk (the first 100): those present
        // throughout must all come back.
        if pages == 2 {
            assert_eq!(sets.remove("big", &refs[..100]).await.unwrap(), 100);
        }
        seen.extend(page.members);
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert!(pages > 2, "a large set comes in several pages ({pages})");
    for member in &all[100..] {
        assert!(
            seen.contains(member),
            "{:?} missed",
            String::from_utf8_lossy(member)
        );
    }
    assert!(seen.iter().all(|m| all.contains(m)), "only members");

    // A small set: at least everything, whatever the page size.
    sets.add("small", &[b"x", b"y", b"z"]).await.unwrap();
    let mut seen = BTreeSet::new();
    let mut cursor = ScanCursor::start();
    loop {
        let page = sets.scan("small", &cursor, 1).await.unwrap();
        seen.extend(page.members);
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(seen, bytes(&[b"x", b"y", b"z"]));
}

/// A set key used as another type, or another type's key used as a set,
/// is `WrongType` naming the store and key; nothing changes.
pub async fn sets_and_other_types_are_different(b: &impl Backend) {
    let s = b.store("set_types", 0, "app").await;
    s.set("text", "v", Ttl::Never).await.unwrap();
    s.hashes().set("hash", "f", b"1").await.unwrap();
    s.sets().add("set", &[b"m"]).await.unwrap();
    let sets = s.sets();
    for key in ["text", "hash"] {
        let errors = [
            sets.add(key, &[b"m"]).await.unwrap_err(),
            sets.remove(key, &[b"m"]).await.unwrap_err(),
            sets.members(key).await.unwrap_err(),
            sets.is_member(key, b"m").await.unwrap_err(),
            sets.count(key).await.unwrap_err(),
            sets.scan(key, &ScanCursor::start(), 10).await.unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, KvError::WrongType { .. }), "{key}: {err:?}");
            assert_eq!((err.store(), err.key()), ("set_types", Some(key)));
        }
    }
    for err in [
        s.get_bytes("set").await.unwrap_err(),
        s.incr_by("set", 1).await.unwrap_err(),
        s.hashes().get("set", "f").await.unwrap_err(),
        s.hashes().set("set", "f", b"1").await.unwrap_err(),
    ] {
        assert!(matches!(err, KvError::WrongType { .. }), "{err:?}");
        assert_eq!(err.key(), Some("set"));
    }
    assert_eq!(s.get::<String>("text").await.unwrap().as_deref(), Some("v"));
    assert_eq!(s.sets().members("set").await.unwrap(), vec![b"m".to_vec()]);
}

/// Set keys expire, show in `keys` and are deleted like any key; writes
/// keep the expiry.
pub async fn set_keys_expire_and_delete_like_any_key(b: &impl Backend) {
    let s = b.store("set_ttl", 0, "app").await;
    let sets = s.sets();
    sets.add("a", &[b"1"]).await.unwrap();
    sets.add("b", &[b"1"]).await.unwrap();
    assert!(s.expire("a", Duration::from_millis(100)).await.unwrap());
    sets.add("a", &[b"2"]).await.unwrap();
    assert!(s.ttl("a").await.unwrap().remaining().is_some(), "kept");
    let mut keys = s.keys("*").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    // Real time has to pass for a real TTL.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(sets.count("a").await.unwrap(), 0);
    assert!(!s.exists("a").await.unwrap());
    assert_eq!(s.delete_keys(&["a", "b"]).await.unwrap(), 1);
    assert!(s.keys("*").await.unwrap().is_empty());
}
