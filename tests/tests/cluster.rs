//! What a store does differently on a Redis Cluster, on the shared cluster
//! of this test process, each test under a namespace of its own: scripts
//! across slots are refused before anything is sent; `keys` scans every
//! primary; batches across slots are split and put back in order;
//! `set_many` is atomic within a slot (only); seeds may be partly
//! unreachable; all-unreachable seeds fail fast.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kv_module::store::{Script, ScriptValue, key_slot};
use kv_module::{KvError, KvStore, KvStoreExt, RedisConfig, RedisStore, Ttl};
use kv_module_tests::TestCluster;
use kv_module_tests::error_chain::chain;
use kv_module_tests::process::free_port;
use redis::cluster_async::ClusterConnection;

const STORE: &str = "cluster_store";
const TTL: Ttl = Ttl::secs(300);

fn config(cluster: &TestCluster, prefix: &str) -> RedisConfig {
    RedisConfig::cluster(cluster.seed_nodes()).with_prefix(prefix)
}

async fn open(cluster: &TestCluster, prefix: &str) -> RedisStore {
    RedisStore::open(STORE, config(cluster, prefix))
        .await
        .unwrap_or_else(|e| panic!("open a store on the shared cluster: {}", chain(&e)))
}

/// `GET` of a stored key through a cluster connection of the fixture's own.
async fn raw_get(conn: &mut ClusterConnection, stored_key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(stored_key)
        .query_async(conn)
        .await
        .unwrap_or_else(|e| panic!("GET {stored_key}: {e}"))
}

/// `EVAL`/`EVALSHA` calls on every answering node since it started, those
/// the server rejected (`CROSSSLOT`) included.
async fn script_calls(cluster: &TestCluster) -> u64 {
    let mut total = 0;
    for node in cluster.nodes().await {
        if node.role.is_none() {
            continue;
        }
        let mut conn = cluster.raw_node(node.port).await;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("INFO commandstats on {}: {e}", node.port));
        for line in info.lines() {
            let Some(fields) = ["cmdstat_eval:", "cmdstat_evalsha:"]
                .iter()
                .find_map(|name| line.trim().strip_prefix(name))
            else {
                continue;
            };
            for field in fields.split(',') {
                if let Some(n) = field
                    .strip_prefix("calls=")
                    .or_else(|| field.strip_prefix("rejected_calls="))
                {
                    total += n.parse::<u64>().expect("a count");
                }
            }
        }
    }
    total
}

/// Sets KEYS[1] and KEYS[2] to ARGV[1].
static WRITE_BOTH: Script = Script::new(
    "write both",
    "redis.call('SET', KEYS[1], ARGV[1]) redis.call('SET', KEYS[2], ARGV[1]) return 1",
    |run| {
        let (first, second, value) = (run.key(0)?, run.key(1)?, run.arg_bytes(0)?);
        run.set(first, value, None)?;
        run.set(second, value, None)?;
        Ok(ScriptValue::Int(1))
    },
);

/// A script whose keys span slots is `CrossSlot` naming the keys, and
/// writes nothing: it is refused before it is sent (no node counts an
/// `EVAL`/`EVALSHA`, run or rejected; no other test of this process runs
/// scripts). The same script with both keys under one hash tag runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_across_slots_is_refused_naming_the_keys_and_writes_nothing() {
    let cluster = TestCluster::shared();
    let prefix = TestCluster::namespace();
    let store = open(&cluster, &prefix).await;
    let (first, second) = ("a", "b");
    assert_ne!(
        key_slot(&format!("{prefix}:{first}")),
        key_slot(&format!("{prefix}:{second}")),
        "the two keys are in different slots"
    );

    let scripts_before = script_calls(&cluster).await;
    let err = store
        .run_script(&WRITE_BOTH, &[first, second], &[b"written".to_vec()])
        .await
        .expect_err("a script across slots must be refused");
    assert_eq!(
        script_calls(&cluster).await,
        scripts_before,
        "the refused script reached a node"
    );
    println!("cross-slot script: {err}");
    match &err {
        KvError::CrossSlot { store, keys, .. } => {
            assert_eq!(&**store, STORE);
            assert_eq!(keys, &[first, second]);
        }
        other => panic!("expected CrossSlot, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(STORE) && message.contains("a, b"),
        "the message names the store and the keys: {message}"
    );
    let mut raw = cluster.raw_cluster().await;
    for key in [first, second] {
        assert_eq!(raw_get(&mut raw, &format!("{prefix}:{key}")).await, None);
    }

    let tagged = ["{t}a", "{t}b"];
    let reply = store
        .run_script(&WRITE_BOTH, &tagged, &[b"written".to_vec()])
        .await
        .unwrap_or_else(|e| panic!("a script within one slot runs: {}", chain(&e)));
    assert_eq!(reply.as_int(), Some(1));
    assert!(
        script_calls(&cluster).await > scripts_before,
        "the count sees scripts that are sent"
    );
    for key in tagged {
        assert_eq!(
            raw_get(&mut raw, &format!("{prefix}:{key}"))
                .await
                .as_deref(),
            Some("written")
        );
    }
    store.delete_keys(&tagged).await.expect("clean up");
}

/// `keys` scans every primary: keys spread over the three primaries are
/// all found, with the prefix stripped. The prefix holds glob characters
/// and is escaped: a neighbour store whose keys the unescaped pattern would
/// match is not listed, and does not list these.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_finds_keys_on_every_primary_with_the_prefix_escaped_and_stripped() {
    let cluster = TestCluster::shared();
    let namespace = TestCluster::namespace();
    let prefix = format!("{namespace}:a*[b]?");
    // `{namespace}:a*[b]?:*`, unescaped, matches this prefix's keys.
    let neighbour_prefix = format!("{namespace}:aXbY");
    let store = open(&cluster, &prefix).await;
    let neighbour = open(&cluster, &neighbour_prefix).await;

    let users: Vec<String> = (0..40).map(|i| format!("user:{i}")).collect();
    let items: Vec<String> = (0..10).map(|i| format!("item:{i}")).collect();
    let all: BTreeSet<String> = users.iter().chain(&items).cloned().collect();
    for key in &all {
        store.set(key, &1, TTL).await.expect("set");
        neighbour
            .set(key, &2, TTL)
            .await
            .expect("set on the neighbour");
    }
    // The keys really are spread: each primary holds some.
    let mut primaries = BTreeSet::new();
    for key in &all {
        primaries.insert(cluster.primary_for_key(&format!("{prefix}:{key}")).await);
        if primaries.len() == 3 {
            break;
        }
    }
    assert_eq!(primaries.len(), 3, "the keys are on all three primaries");

    let found: BTreeSet<String> = store.keys("*").await.expect("keys").into_iter().collect();
    assert_eq!(found, all);
    let found_users: BTreeSet<String> = store
        .keys("user:*")
        .await
        .expect("keys")
        .into_iter()
        .collect();
    assert_eq!(found_users, users.iter().cloned().collect());
    let neighbours: BTreeSet<String> = neighbour
        .keys("*")
        .await
        .expect("keys")
        .into_iter()
        .collect();
    assert_eq!(neighbours, all, "the neighbour sees its own keys only");

    let keys: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_eq!(store.delete_keys(&keys).await.expect("delete"), 50);
    assert!(store.keys("*").await.expect("keys").is_empty());
    assert_eq!(neighbour.keys("*").await.expect("keys").len(), 50);
    neighbour.delete_keys(&keys).await.expect("clean up");
}

/// `set_many`, `get_many` and `delete_keys` over 60 keys in as many slots
/// (split per slot and sent concurrently): values come back in the order
/// asked, missing keys as `None`, and counts are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_across_slots_give_the_right_results_in_order() {
    let cluster = TestCluster::shared();
    let prefix = TestCluster::namespace();
    let store = open(&cluster, &prefix).await;
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let slots: BTreeSet<u16> = keys
        .iter()
        .map(|k| key_slot(&format!("{prefix}:{k}")))
        .collect();
    assert!(
        slots.len() >= 50,
        "the keys span many slots: {}",
        slots.len()
    );

    let entries: Vec<(&str, usize)> = keys.iter().map(String::as_str).zip(0..).collect();
    store.set_many(&entries, TTL).await.expect("set_many");
    let mut raw = cluster.raw_cluster().await;
    for i in [0, 17, 59] {
        assert_eq!(
            raw_get(&mut raw, &format!("{prefix}:k{i}")).await,
            Some(i.to_string())
        );
    }

    // Reversed, with missing keys in between.
    let mut asked = Vec::new();
    let mut expected = Vec::new();
    for (i, key) in keys.iter().enumerate().rev() {
        asked.push(key.clone());
        expected.push(Some(i));
        if i % 7 == 0 {
            asked.push(format!("missing{i}"));
            expected.push(None);
        }
    }
    let asked_refs: Vec<&str> = asked.iter().map(String::as_str).collect();
    let values: Vec<Option<usize>> = store.get_many(&asked_refs).await.expect("get_many");
    assert_eq!(values, expected);

    let mut deleted: Vec<&str> = keys.iter().step_by(2).map(String::as_str).collect();
    deleted.extend(["missing-a", "missing-b"]);
    assert_eq!(store.delete_keys(&deleted).await.expect("delete_keys"), 30);
    let keys_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values: Vec<Option<usize>> = store.get_many(&keys_refs).await.expect("get_many");
    let expected: Vec<Option<usize>> = (0..60).map(|i| (i % 2 == 1).then_some(i)).collect();
    assert_eq!(values, expected);
    store.delete_keys(&keys_refs).await.expect("clean up");
}

/// `set_many` is one `MULTI` per hash slot: a reader of one slot's keys
/// (one `MGET`, also atomic within its slot) never sees half of a batch.
///
/// Across slots it is *not* atomic: a batch over two slots is two
/// `MULTI`s on two primaries, committed independently, so a reader may
/// see one slot's part of a batch and the other slot's part of the
/// previous one. The test asserts per-slot consistency only for such a
/// batch and prints how often the slots disagreed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_many_is_atomic_within_a_slot_only() {
    const BATCHES: usize = 300;
    let cluster = TestCluster::shared();
    let prefix = TestCluster::namespace();
    let store = Arc::new(open(&cluster, &prefix).await);
    let one_slot = ["{g}a", "{g}b", "{g}c"];
    let two_slots = ["{g}x", "{g}y", "{h}x", "{h}y"];
    assert_ne!(
        key_slot(&format!("{prefix}:{{g}}x")),
        key_slot(&format!("{prefix}:{{h}}x"))
    );

    let done = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, done) = (store.clone(), done.clone());
        async move {
            for n in 1..=BATCHES {
                let batch: Vec<(&str, usize)> =
                    one_slot.iter().chain(&two_slots).map(|k| (*k, n)).collect();
                store.set_many(&batch, TTL).await.expect("set_many");
            }
            done.store(true, Ordering::Relaxed);
        }
    });
    let (mut reads, mut seen_writing, mut torn_across_slots) = (0, 0, 0);
    while !done.load(Ordering::Relaxed) {
        let values: Vec<Option<usize>> = store.get_many(&one_slot).await.expect("get_many");
        assert!(
            values.iter().all(|v| *v == values[0]),
            "half a batch seen within one slot: {values:?}"
        );
        let values: Vec<Option<usize>> = store.get_many(&two_slots).await.expect("get_many");
        assert_eq!(values[0], values[1], "within slot {{g}}: {values:?}");
        assert_eq!(values[2], values[3], "within slot {{h}}: {values:?}");
        torn_across_slots += usize::from(values[0] != values[2]);
        seen_writing += usize::from(values[0].is_some_and(|n| n < BATCHES));
        reads += 1;
    }
    writer.await.expect("the writer panicked");
    println!(
        "set_many: {reads} reads during {BATCHES} batches ({seen_writing} mid-run), \
         {torn_across_slots} saw two slots of a batch disagree"
    );
    assert!(
        seen_writing >= 10,
        "the reader overlapped the writer too little to prove anything: {seen_writing}"
    );
    let all: Vec<&str> = one_slot.iter().chain(&two_slots).copied().collect();
    let values: Vec<Option<usize>> = store.get_many(&all).await.expect("get_many");
    assert!(values.iter().all(|v| *v == Some(BATCHES)), "{values:?}");
    store.delete_keys(&all).await.expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers() {
    let cluster = TestCluster::shared();
    let store = open(&cluster, &TestCluster::namespace()).await;
    store
        .ping()
        .await
        .unwrap_or_else(|e| panic!("PING: {}", chain(&e)));
}

/// Seeds of which only one answers (the others refuse connections): the
/// store opens through it and works on every primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opens_when_only_one_seed_answers() {
    let cluster = TestCluster::shared();
    let prefix = TestCluster::namespace();
    let dead = [free_port(), free_port()].map(|port| format!("127.0.0.1:{port}"));
    let live = cluster.seed_nodes()[0].clone();
    let seeds = [dead[0].clone(), dead[1].clone(), live];
    let store = RedisStore::open(STORE, RedisConfig::cluster(seeds).with_prefix(&prefix))
        .await
        .unwrap_or_else(|e| panic!("open with unreachable seeds: {}", chain(&e)));
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    for key in &keys {
        store.set(key, key, TTL).await.expect("set");
    }
    let keys_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values: Vec<Option<String>> = store.get_many(&keys_refs).await.expect("get_many");
    assert_eq!(values, keys.iter().cloned().map(Some).collect::<Vec<_>>());
    store.delete_keys(&keys_refs).await.expect("clean up");
}

/// Seeds that all refuse connections: `Unavailable`, naming the store and
/// every address, at once (with the default 5 s connect timeout: a refusal
/// is an answer, not something to wait for).
#[tokio::test]
async fn a_store_whose_seeds_are_all_unreachable_fails_fast_naming_them() {
    let seeds = [free_port(), free_port()].map(|port| format!("127.0.0.1:{port}"));
    let started = Instant::now();
    let result = RedisStore::open(STORE, RedisConfig::cluster(seeds.clone())).await;
    let took = started.elapsed();
    let err = match result {
        Ok(store) => panic!("opened a store on nothing: {store:?}"),
        Err(err) => err,
    };
    println!("unreachable seeds: failed in {took:?}: {}", chain(&err));
    assert!(
        matches!(err, KvError::Unavailable { .. }),
        "expected Unavailable: {err:?}"
    );
    assert_eq!(err.store(), STORE);
    let message = err.to_string();
    for seed in &seeds {
        assert!(message.contains(seed.as_str()), "{seed} in: {message}");
    }
    assert!(
        took < Duration::from_secs(2),
        "failing took {took:?}, not fast"
    );
}
