//! The transaction section of the conformance suite
//! ([`KvTransactions`](kv_module::KvTransactions)): every kind of write
//! applied together, the type check that writes nothing on a mismatch,
//! no reader ever seeing half a transaction, cross-slot transactions
//! refused on a cluster, and compare-and-set `update` losing no update
//! under concurrency. Cases are listed in
//! [`conformance_suite!`](crate::conformance_suite).

use std::time::Duration;

use kv_module::store::{End, Transaction};
use kv_module::{KeyTtl, KvError, KvStoreExt, Ttl};

use crate::conformance::Backend;

/// Every kind of write lands, in order, with its TTL; an empty
/// transaction does nothing.
pub async fn transactions_apply_every_write(b: &impl Backend) {
    let s = b.store("tx", 0, "app").await;
    s.transactions().run(&Transaction::new()).await.unwrap();
    s.sets().add("{t}pending", &[b"1", b"2"]).await.unwrap();
    s.set("{t}old", &1, Ttl::Never).await.unwrap();
    s.set("{t}later", &1, Ttl::Never).await.unwrap();
    let tx = Transaction::new()
        .set("{t}s", b"v", Ttl::secs(60))
        .delete("{t}old")
        .expire("{t}later", Duration::from_secs(60))
        .hash_set("{t}h", "a", b"1")
        .hash_set_many("{t}h", &[("b", b"2"), ("c", b"3")])
        .hash_delete("{t}h", &["c"])
        .set_remove("{t}pending", &[b"1"])
        .set_add("{t}done", &[b"1"])
        .sorted_set_add("{t}z", &[(2.0, b"b"), (1.0, b"a")])
        .sorted_set_remove("{t}z", &[b"b"])
        .list_push("{t}l", End::Back, &[b"x", b"y"])
        .list_push("{t}l", End::Front, &[b"w"])
        .delete("{t}never")
        .expire("{t}never", Duration::from_secs(1));
    assert_eq!(tx.len(), 14);
    s.transactions().run(&tx).await.unwrap();
    assert_eq!(
        s.get_bytes("{t}s").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(s.ttl("{t}s").await.unwrap().remaining().is_some());
    assert!(!s.exists("{t}old").await.unwrap());
    assert!(s.ttl("{t}later").await.unwrap().remaining().is_some());
    let mut hash = s.hashes().get_all("{t}h").await.unwrap();
    hash.sort();
    assert_eq!(
        hash,
        vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]
    );
    assert_eq!(
        s.sets().members("{t}pending").await.unwrap(),
        vec![b"2".to_vec()]
    );
    assert_eq!(
        s.sets().members("{t}done").await.unwrap(),
        vec![b"1".to_vec()]
    );
    assert_eq!(
        s.sorted_sets()
            .range_by_rank("{t}z", 0, -1, kv_module::store::Order::Ascending)
            .await
            .unwrap(),
        vec![(b"a".to_vec(), 1.0)]
    );
    assert_eq!(
        s.lists().range("{t}l", 0, -1).await.unwrap(),
        vec![b"w".to_vec(), b"x".to_vec(), b"y".to_vec()]
    );
    assert!(!s.exists("{t}never").await.unwrap());
}

/// A write to a key of another type — as the key is before the
/// transaction, or as earlier writes of it leave the key — fails the
/// whole transaction with `WrongType` naming that key, and nothing is
/// written; invalid TTLs and NaN scores are refused before anything is
/// sent.
pub async fn transaction_with_a_wrong_type_writes_nothing(b: &impl Backend) {
    let s = b.store("tx_types", 0, "app").await;
    s.set("{t}text", "v", Ttl::Never).await.unwrap();
    s.lists().push("{t}list", End::Back, &[b"x"]).await.unwrap();
    let cases = [
        (
            Transaction::new()
                .set("{t}a", b"1", Ttl::Never)
                .list_push("{t}list", End::Back, &[b"y"])
                .hash_set("{t}text", "f", b"v"),
            "{t}text",
        ),
        (
            Transaction::new()
                .set_add("{t}list", &[b"m"])
                .set("{t}a", b"1", Ttl::Never),
            "{t}list",
        ),
        (
            Transaction::new()
                .hash_set("{t}a", "f", b"1")
                .set_add("{t}a", &[b"m"]),
            "{t}a",
        ),
        (
            Transaction::new()
                .set("{t}a", b"1", Ttl::Never)
                .sorted_set_add("{t}a", &[(1.0, b"m")]),
            "{t}a",
        ),
    ];
    for (tx, key) in cases {
        let err = s.transactions().run(&tx).await.unwrap_err();
        assert!(matches!(err, KvError::WrongType { .. }), "{err:?}");
        assert_eq!((err.store(), err.key()), ("tx_types", Some(key)));
        assert!(!s.exists("{t}a").await.unwrap(), "nothing written");
        assert_eq!(s.lists().len("{t}list").await.unwrap(), 1);
        assert_eq!(
            s.get::<String>("{t}text").await.unwrap().as_deref(),
            Some("v")
        );
    }
    // A key made anew within the transaction takes its new type.
    let tx = Transaction::new()
        .delete("{t}text")
        .hash_set("{t}text", "f", b"v")
        .set("{t}list", b"now a string", Ttl::Never);
    s.transactions().run(&tx).await.unwrap();
    assert_eq!(s.hashes().len("{t}text").await.unwrap(), 1);
    assert_eq!(
        s.get_bytes("{t}list").await.unwrap().as_deref(),
        Some(&b"now a string"[..])
    );
    for tx in [
        Transaction::new().set("{t}b", b"1", Ttl::Never).set(
            "{t}c",
            b"1",
            Ttl::After(Duration::ZERO),
        ),
        Transaction::new()
            .set("{t}b", b"1", Ttl::Never)
            .expire("{t}b", Duration::ZERO),
        Transaction::new()
            .set("{t}b", b"1", Ttl::Never)
            .sorted_set_add("{t}z", &[(f64::NAN, b"m")]),
    ] {
        let err = s.transactions().run(&tx).await.unwrap_err();
        assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
        assert!(!s.exists("{t}b").await.unwrap());
    }
}

/// A reader running beside a writer never sees one transaction's writes
/// without the others: the two keys (and a hash field) always agree.
pub async fn transactions_are_never_seen_half_applied(b: &impl Backend) {
    let s = b.store("tx_atomic", 0, "app").await;
    const ROUNDS: u32 = 200;
    write_while_reading(&s, 0..ROUNDS, |n| {
        Transaction::new()
            .set("{t}a", n, Ttl::Never)
            .set("{t}b", n, Ttl::Never)
            .hash_set("{t}h", "n", n)
            .list_push("{t}log", End::Back, &[n])
    })
    .await;
    let last = (ROUNDS - 1).to_string().into_bytes();
    assert_eq!(s.hashes().get("{t}h", "n").await.unwrap(), Some(last));
    assert_eq!(s.lists().len("{t}log").await.unwrap(), u64::from(ROUNDS));
}

/// A batch of writes that take a key of any type (`set`, `delete`,
/// `expire`: one `MULTI`/`EXEC` on Redis) replaces keys of every type,
/// keeps its TTLs, and is never seen half applied either.
pub async fn any_type_transactions_replace_and_are_never_seen_half_applied(b: &impl Backend) {
    let s = b.store("tx_any", 0, "app").await;
    s.hashes().set("{t}a", "f", b"1").await.unwrap();
    s.lists().push("{t}b", End::Back, &[b"1"]).await.unwrap();
    s.sets().add("{t}gone", &[b"1"]).await.unwrap();
    let tx = Transaction::new()
        .set("{t}a", b"0", Ttl::secs(60))
        .set("{t}b", b"0", Ttl::Never)
        .delete("{t}gone")
        .expire("{t}b", Duration::from_secs(60));
    s.transactions().run(&tx).await.unwrap();
    assert_eq!(
        s.get_many_bytes(&["{t}a", "{t}b"]).await.unwrap(),
        vec![Some(b"0".to_vec()), Some(b"0".to_vec())]
    );
    assert!(s.ttl("{t}a").await.unwrap().remaining().is_some());
    assert!(s.ttl("{t}b").await.unwrap().remaining().is_some());
    assert!(!s.exists("{t}gone").await.unwrap());

    const ROUNDS: u32 = 200;
    write_while_reading(&s, 1..ROUNDS + 1, |n| {
        Transaction::new()
            .set("{t}a", n, Ttl::Never)
            .delete("{t}gone")
            .set("{t}b", n, Ttl::secs(60))
    })
    .await;
    assert_eq!(
        s.get_bytes("{t}b").await.unwrap(),
        Some(ROUNDS.to_string().into_bytes())
    );
}

/// Runs `tx(n)` for every `n` of `rounds` (as text) in a task while this
/// one reads `{t}a` and `{t}b` in one `MGET` (on a cluster too: one slot,
/// a consistent snapshot) until the writer is done: the two must always
/// agree, or half a transaction was seen.
async fn write_while_reading(
    s: &std::sync::Arc<dyn kv_module::KvStore>,
    rounds: std::ops::Range<u32>,
    tx: fn(&[u8]) -> Transaction,
) {
    // The writer starts once the reader is reading (a memory store's
    // writer could otherwise finish all its rounds before the reader's
    // first look), and yields after each transaction so that on a
    // single-threaded runtime too the reads fall between them.
    let (reading, started) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            started.await.expect("the reader signals before it reads");
            let mut written = 0_u32;
            for i in rounds {
                s.transactions().run(&tx(i.to_string().as_bytes())).await?;
                written += 1;
                tokio::task::yield_now().await;
            }
            Ok::<_, KvError>(written)
        })
    };
    reading.send(()).expect("the writer waits for the reader");
    let mut reads = 0;
    loop {
        let both = s.get_many_bytes(&["{t}a", "{t}b"]).await.unwrap();
        assert_eq!(both[0], both[1], "half a transaction seen");
        reads += 1;
        if writer.is_finished() {
            break;
        }
    }
    let written = writer.await.unwrap().unwrap();
    assert!(
        written > 0 && reads > 0,
        "{written} transactions, {reads} reads"
    );
}

/// On a cluster, a transaction whose keys do not share a slot is
/// `CrossSlot` naming its keys, and nothing is written; elsewhere it runs.
pub async fn cross_slot_transactions_are_refused_on_a_cluster(b: &impl Backend) {
    let s = b.store("tx_slots", 0, "app").await;
    let tx = Transaction::new()
        .set("user:1", b"a", Ttl::Never)
        .hash_set("user:2", "f", b"b")
        .set("user:1", b"c", Ttl::Never);
    assert_eq!(tx.keys(), vec!["user:1", "user:2"]);
    let outcome = s.transactions().run(&tx).await;
    if b.is_cluster() {
        let err = outcome.unwrap_err();
        assert!(
            matches!(&err, KvError::CrossSlot { keys, .. } if keys == &["user:1", "user:2"]),
            "{err:?}"
        );
        assert!(!s.exists("user:1").await.unwrap(), "nothing written");
        assert!(!s.exists("user:2").await.unwrap());
        // The same for a batch of writes of any type (a `MULTI` on Redis).
        let any = Transaction::new()
            .set("user:1", b"a", Ttl::Never)
            .delete("user:2");
        let err = s.transactions().run(&any).await.unwrap_err();
        assert!(
            matches!(&err, KvError::CrossSlot { keys, .. } if keys == &["user:1", "user:2"]),
            "{err:?}"
        );
        assert!(!s.exists("user:1").await.unwrap(), "nothing written");
    } else {
        outcome.unwrap();
        assert_eq!(
            s.get_bytes("user:1").await.unwrap().as_deref(),
            Some(&b"c"[..])
        );
    }
}

fn parse(current: Option<&[u8]>) -> u64 {
    current
        .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
        .unwrap_or(0)
}

/// `update` computes from the current value, writes what it returns
/// (deleting on `None`), keeps or sets the expiry, and refuses a key of
/// another type.
pub async fn update_is_compare_and_set(b: &impl Backend) {
    let s = b.store("update", 0, "app").await;
    let u = s.transactions();
    let plus_one = |c: Option<&[u8]>| Some((parse(c) + 1).to_string().into_bytes());
    assert_eq!(
        u.update("n", None, &plus_one).await.unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(s.ttl("n").await.unwrap(), KeyTtl::Persistent);
    assert!(s.expire("n", Duration::from_secs(60)).await.unwrap());
    u.update("n", None, &plus_one).await.unwrap();
    assert!(s.ttl("n").await.unwrap().remaining().is_some(), "kept");
    u.update("n", Some(Ttl::Never), &plus_one).await.unwrap();
    assert_eq!(s.ttl("n").await.unwrap(), KeyTtl::Persistent);
    assert_eq!(
        u.update("n", Some(Ttl::secs(30)), &plus_one).await.unwrap(),
        Some(b"4".to_vec())
    );
    assert!(s.ttl("n").await.unwrap().remaining().is_some());
    assert_eq!(u.update("n", None, &|_| None).await.unwrap(), None);
    assert!(!s.exists("n").await.unwrap(), "None deletes");
    assert_eq!(u.update("n", None, &|_| None).await.unwrap(), None);
    // An empty value is a value, not a missing key.
    u.update("e", None, &|c| {
        assert!(c.is_none());
        Some(Vec::new())
    })
    .await
    .unwrap();
    u.update("e", None, &|c| {
        assert_eq!(c, Some(&b""[..]));
        Some(b"x".to_vec())
    })
    .await
    .unwrap();
    s.sets().add("set", &[b"m"]).await.unwrap();
    let err = u.update("set", None, &plus_one).await.unwrap_err();
    assert!(matches!(err, KvError::WrongType { .. }), "{err:?}");
    assert_eq!(err.key(), Some("set"));
    let err = u
        .update("n", Some(Ttl::After(Duration::ZERO)), &plus_one)
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
}

/// Concurrent `update`s of one key lose no update: every one that
/// reports success is in the final count. (A caller retries one that
/// gave up with `Conflict`, as here; no update is applied twice.)
pub async fn concurrent_updates_lose_nothing(b: &impl Backend) {
    let s = b.store("update_race", 0, "app").await;
    const TASKS: u64 = 8;
    const EACH: u64 = 25;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut conflicts = 0;
                for _ in 0..EACH {
                    loop {
                        let done = s
                            .transactions()
                            .update("counter", None, &|c| {
                                Some((parse(c) + 1).to_string().into_bytes())
                            })
                            .await;
                        match done {
                            Ok(_) => break,
                            Err(KvError::Conflict { attempts, .. }) => {
                                assert_eq!(attempts, kv_module::store::UPDATE_ATTEMPTS);
                                conflicts += 1;
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    assert_eq!(
        s.get_bytes("counter").await.unwrap(),
        Some((TASKS * EACH).to_string().into_bytes()),
        "({conflicts} updates gave up once and were retried)"
    );
}

/// Large writes (tens of thousands of values) go through a transaction
/// and a hash `set_many` with a TTL whole.
pub async fn large_batches_are_applied_whole(b: &impl Backend) {
    let s = b.store("tx_large", 0, "app").await;
    let items: Vec<String> = (0..20_000).map(|i| format!("i{i}")).collect();
    let refs: Vec<&[u8]> = items.iter().map(|i| i.as_bytes()).collect();
    let scored: Vec<(f64, &[u8])> = refs
        .iter()
        .enumerate()
        .map(|(i, m)| (i as f64, *m))
        .collect();
    let fields: Vec<(&str, &[u8])> = items.iter().map(|i| (i.as_str(), i.as_bytes())).collect();
    let tx = Transaction::new()
        .set_add("{t}s", &refs)
        .sorted_set_add("{t}z", &scored)
        .list_push("{t}l", End::Front, &refs)
        .hash_set_many("{t}h", &fields);
    s.transactions().run(&tx).await.unwrap();
    assert_eq!(s.sets().count("{t}s").await.unwrap(), 20_000);
    assert_eq!(s.sorted_sets().count("{t}z").await.unwrap(), 20_000);
    assert_eq!(s.hashes().len("{t}h").await.unwrap(), 20_000);
    assert_eq!(
        s.lists().range("{t}l", 0, 1).await.unwrap(),
        vec![b"i19999".to_vec(), b"i19998".to_vec()],
        "pushed one after the other"
    );
    assert_eq!(
        s.hashes()
            .set_many("h2", &fields, Some(Ttl::secs(60)))
            .await
            .unwrap(),
        20_000
    );
    assert!(s.ttl("h2").await.unwrap().remaining().is_some());
}
