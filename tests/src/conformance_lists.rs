//! The list section of the conformance suite ([`KvLists`](kv_module::KvLists)):
//! Redis's orders and index rules, empty lists vanishing, `WRONGTYPE`,
//! and blocking pops (woken by pushes, timing out, never holding up the
//! store's other calls, more waiters than dedicated connections,
//! cross-slot keys refused on a cluster). Cases are listed in
//! [`conformance_suite!`](crate::conformance_suite).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kv_module::store::End;
use kv_module::{KvError, KvStoreExt, Ttl};

use crate::conformance::Backend;

fn values(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|v| v.as_bytes().to_vec()).collect()
}

/// Pushes, pops, ranges, lengths and trims reply as Redis's; a missing key
/// reads as an empty list and a list vanishes with its last value.
pub async fn lists_follow_redis(b: &impl Backend) {
    let s = b.store("lists", 0, "app").await;
    let l = s.lists();
    assert_eq!(l.len("l").await.unwrap(), 0);
    assert!(l.range("l", 0, -1).await.unwrap().is_empty());
    assert!(l.pop("l", End::Front, 3).await.unwrap().is_empty());
    l.trim("l", 0, 1).await.unwrap();
    assert_eq!(l.push("l", End::Back, &[]).await.unwrap(), 0);
    assert!(
        !s.exists("l").await.unwrap(),
        "nothing creates an empty list"
    );

    assert_eq!(l.push("l", End::Back, &[b"c", b"d"]).await.unwrap(), 2);
    assert_eq!(l.push("l", End::Front, &[b"b", b"a"]).await.unwrap(), 4);
    assert_eq!(l.push("l", End::Back, &[]).await.unwrap(), 4);
    assert_eq!(
        l.range("l", 0, -1).await.unwrap(),
        values(&["a", "b", "c", "d"])
    );
    assert_eq!(l.range("l", -3, -2).await.unwrap(), values(&["b", "c"]));
    assert_eq!(l.range("l", 2, 100).await.unwrap(), values(&["c", "d"]));
    assert!(l.range("l", 3, 1).await.unwrap().is_empty());
    assert!(l.range("l", 4, 10).await.unwrap().is_empty());
    assert_eq!(l.range("l", -100, 0).await.unwrap(), values(&["a"]));
    assert_eq!(l.pop("l", End::Back, 1).await.unwrap(), values(&["d"]));
    assert!(l.pop("l", End::Back, 0).await.unwrap().is_empty());
    assert_eq!(
        l.pop("l", End::Front, 2).await.unwrap(),
        values(&["a", "b"])
    );
    assert_eq!(l.pop("l", End::Front, 5).await.unwrap(), values(&["c"]));
    assert!(!s.exists("l").await.unwrap(), "an empty list vanishes");

    let items: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let refs: Vec<&[u8]> = items.iter().map(|v| v.as_bytes()).collect();
    l.push("t", End::Back, &refs).await.unwrap();
    l.trim("t", 2, -3).await.unwrap();
    assert_eq!(
        l.range("t", 0, -1).await.unwrap(),
        values(&["2", "3", "4", "5", "6", "7"])
    );
    l.trim("t", -2, 100).await.unwrap();
    assert_eq!(l.range("t", 0, -1).await.unwrap(), values(&["6", "7"]));
    l.trim("t", 5, 1).await.unwrap();
    assert!(!s.exists("t").await.unwrap(), "trimmed to nothing, removed");
    // Binary and empty values.
    l.push("bin", End::Back, &[b"", b"\x00\xff"]).await.unwrap();
    assert_eq!(
        l.pop("bin", End::Front, 2).await.unwrap(),
        vec![Vec::new(), vec![0, 255]]
    );
}

/// A list key used as another type, and another type's key used as a
/// list (blocking pops included), is `WrongType` naming the store and key.
pub async fn lists_and_other_types_are_different(b: &impl Backend) {
    let s = b.store("list_types", 0, "app").await;
    s.set("text", "v", Ttl::Never).await.unwrap();
    s.lists().push("list", End::Back, &[b"x"]).await.unwrap();
    let l = s.lists();
    let errors = [
        l.push("text", End::Front, &[b"x"]).await.unwrap_err(),
        l.pop("text", End::Back, 1).await.unwrap_err(),
        l.range("text", 0, -1).await.unwrap_err(),
        l.len("text").await.unwrap_err(),
        l.trim("text", 0, 1).await.unwrap_err(),
        l.blocking_pop(&["text"], End::Front, Duration::from_millis(100))
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, KvError::WrongType { .. }), "{err:?}");
        assert_eq!((err.store(), err.key()), ("list_types", Some("text")));
    }
    for err in [
        s.get_bytes("list").await.unwrap_err(),
        s.hashes().get_all("list").await.unwrap_err(),
        s.sets().count("list").await.unwrap_err(),
    ] {
        assert!(matches!(err, KvError::WrongType { .. }), "{err:?}");
    }
    assert_eq!(s.get::<String>("text").await.unwrap().as_deref(), Some("v"));
    assert_eq!(l.len("list").await.unwrap(), 1);
    // Bad blocking arguments are refused before anything is sent.
    for (keys, timeout) in [
        (&["list"][..], Duration::ZERO),
        (&["list"][..], Duration::from_secs(3601)),
        (&[][..], Duration::from_secs(1)),
    ] {
        let err = l.blocking_pop(keys, End::Front, timeout).await.unwrap_err();
        assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
    }
}

/// A blocking pop takes at once from the first key (in the order given)
/// that has a value, and times out with `None` when none gets one.
pub async fn blocking_pop_takes_first_ready_key_or_times_out(b: &impl Backend) {
    let s = b.store("bpop", 0, "app").await;
    let l = s.lists();
    // One hash tag: a multi-key pop must stay in one slot on a cluster.
    l.push("{q}b", End::Back, &[b"b1", b"b2"]).await.unwrap();
    l.push("{q}c", End::Back, &[b"c1"]).await.unwrap();
    let keys = ["{q}a", "{q}b", "{q}c"];
    let wait = Duration::from_secs(2);
    assert_eq!(
        l.blocking_pop(&keys, End::Back, wait).await.unwrap(),
        Some(("{q}b".to_string(), b"b2".to_vec()))
    );
    assert_eq!(
        l.blocking_pop(&keys, End::Front, wait).await.unwrap(),
        Some(("{q}b".to_string(), b"b1".to_vec()))
    );
    assert_eq!(
        l.blocking_pop(&keys, End::Front, wait).await.unwrap(),
        Some(("{q}c".to_string(), b"c1".to_vec()))
    );
    assert!(s.keys("*").await.unwrap().is_empty(), "popped lists vanish");

    let started = Instant::now();
    let popped = l
        .blocking_pop(&keys, End::Front, Duration::from_millis(300))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(popped, None);
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(2),
        "waited {waited:?}"
    );
    // The store still serves calls after a pop that timed out.
    l.push("{q}a", End::Back, &[b"a1"]).await.unwrap();
    assert_eq!(
        l.blocking_pop(&keys, End::Front, wait).await.unwrap(),
        Some(("{q}a".to_string(), b"a1".to_vec()))
    );

    let spread = l
        .blocking_pop(&["x", "y", "z"], End::Front, Duration::from_millis(50))
        .await;
    if b.is_cluster() {
        let err = spread.unwrap_err();
        assert!(matches!(err, KvError::CrossSlot { .. }), "{err:?}");
        assert_eq!(err.key(), Some("x"));
    } else {
        assert_eq!(spread.unwrap(), None);
    }
}

/// Workers waiting in blocking pops are woken by pushes from other
/// tasks; while they wait, the store's other calls go through at once
/// (the pops do not hold its shared connections); more workers than
/// dedicated connections each get exactly one job.
pub async fn blocking_pops_wait_for_pushes_without_holding_up_the_store(b: &impl Backend) {
    let s = b.store("workers", 0, "app").await;
    const WORKERS: usize = 12;
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.lists()
                    .blocking_pop(&["jobs"], End::Front, Duration::from_secs(10))
                    .await
            })
        })
        .collect();
    // While they wait: ordinary calls, each well within a second.
    for i in 0..20 {
        let started = Instant::now();
        s.set("other", &i, Ttl::Never).await.unwrap();
        assert_eq!(s.get::<i32>("other").await.unwrap(), Some(i));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a call waited {:?} behind the blocking pops",
            started.elapsed()
        );
    }
    let jobs: Vec<String> = (0..WORKERS).map(|i| format!("job{i}")).collect();
    for job in &jobs {
        s.lists()
            .push("jobs", End::Back, &[job.as_bytes()])
            .await
            .unwrap();
    }
    let mut done = BTreeSet::new();
    for worker in workers {
        let (key, job) = worker.await.unwrap().unwrap().expect("a job");
        assert_eq!(key, "jobs");
        assert!(done.insert(String::from_utf8(job).unwrap()), "a job twice");
    }
    assert_eq!(done, jobs.into_iter().collect());
    assert!(!s.exists("jobs").await.unwrap());
}
