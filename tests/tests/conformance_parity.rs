//! The memory backend against Redis on generated sequences of operations:
//! the same random operations over every data type (strings, hashes,
//! sets, sorted sets, lists, transactions, compare-and-set) run on a
//! `MemoryStore` and on a `RedisStore`, and every result — replies,
//! errors by kind and key — must be the same at every step. A few keys
//! and small alphabets make collisions, wrong types, non-integers and
//! empty collections frequent.
//!
//! Sequences come from a small deterministic generator (xorshift), so a
//! failure names its seed and step and reproduces.

use std::ops::Bound;
use std::sync::Arc;

use kv_module::store::{End, Limit, Order, Transaction};
use kv_module::{KvError, KvStore, MemoryStore, Ttl};
use kv_module_tests::TestRedis;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn some<T: Copy>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let n = 1 + self.below(max);
        (0..n).map(|_| self.pick(items)).collect()
    }
}

const KEYS: &[&str] = &["k0", "k1", "k2", "k3"];
const FIELDS: &[&str] = &["f0", "f1", "f2"];
const VALUES: &[&[u8]] = &[b"1", b"-3", b"10", b"a", b"", b"007"];
const MEMBERS: &[&[u8]] = &[b"m0", b"m1", b"m2", b"m3", b""];
const SCORES: &[f64] = &[-1.0, 0.0, -0.0, 1.0, 2.5, f64::INFINITY, f64::NEG_INFINITY];
const DELTAS: &[i64] = &[1, -2, 100, i64::MAX, i64::MIN];
const INDEXES: &[i64] = &[0, 1, 2, -1, -2, -5, 10];

fn bound(rng: &mut Rng) -> Bound<f64> {
    let score = rng.pick(&[-1.0, 0.0, 1.0, 2.5, f64::INFINITY]);
    match rng.below(3) {
        0 => Bound::Included(score),
        1 => Bound::Excluded(score),
        _ => Bound::Unbounded,
    }
}

fn end(rng: &mut Rng) -> End {
    if rng.below(2) == 0 {
        End::Front
    } else {
        End::Back
    }
}

fn order(rng: &mut Rng) -> Order {
    if rng.below(2) == 0 {
        Order::Ascending
    } else {
        Order::Descending
    }
}

/// An error as the comparison sees it: its kind and key.
fn error(e: &KvError) -> String {
    let kind = match e {
        KvError::WrongType { .. } => "WrongType",
        KvError::NotAnInteger { .. } => "NotAnInteger",
        KvError::Overflow { .. } => "Overflow",
        KvError::InvalidArgument { .. } => "InvalidArgument",
        other => return format!("unexpected error {other:?}"),
    };
    format!("Err({kind}, {:?})", e.key())
}

fn show<T: std::fmt::Debug>(result: kv_module::Result<T>) -> String {
    match result {
        Ok(value) => format!("Ok({value:?})"),
        Err(e) => error(&e),
    }
}

fn sorted<T: Ord + std::fmt::Debug>(result: kv_module::Result<Vec<T>>) -> String {
    show(result.map(|mut items| {
        items.sort();
        items
    }))
}

/// A random transaction of one to three writes.
fn transaction(rng: &mut Rng) -> Transaction {
    let mut tx = Transaction::new();
    for _ in 0..1 + rng.below(3) {
        let key = rng.pick(KEYS);
        tx = match rng.below(8) {
            0 => tx.set(key, rng.pick(VALUES), Ttl::Never),
            1 => tx.delete(key),
            2 => tx.hash_set(key, rng.pick(FIELDS), rng.pick(VALUES)),
            3 => tx.hash_delete(key, &rng.some(FIELDS, 2)),
            4 => tx.set_add(key, &rng.some(MEMBERS, 2)),
            5 => tx.set_remove(key, &rng.some(MEMBERS, 2)),
            6 => tx.sorted_set_add(key, &[(rng.pick(SCORES), rng.pick(MEMBERS))]),
            _ => tx.list_push(key, end(rng), &rng.some(VALUES, 2)),
        };
    }
    tx
}

/// Draws one operation from `rng` and runs it on `store`, returning its
/// description and its outcome. Both stores get the same draw: the
/// generator is cloned per store by the caller.
async fn step(rng: &mut Rng, store: &dyn KvStore) -> (String, String) {
    let key = rng.pick(KEYS);
    let (h, s, z, l) = (
        store.hashes(),
        store.sets(),
        store.sorted_sets(),
        store.lists(),
    );
    match rng.below(34) {
        0 => {
            let v = rng.pick(VALUES);
            (
                format!("SET {key} {v:?}"),
                show(store.set_bytes(key, v, Ttl::Never).await),
            )
        }
        1 => (format!("GET {key}"), show(store.get_bytes(key).await)),
        2 => (format!("DEL {key}"), show(store.delete(key).await)),
        3 => {
            let d = rng.pick(DELTAS);
            (
                format!("INCRBY {key} {d}"),
                show(store.incr_by(key, d).await),
            )
        }
        4 => (format!("EXISTS {key}"), show(store.exists(key).await)),
        5 => {
            let (f, v) = (rng.pick(FIELDS), rng.pick(VALUES));
            (
                format!("HSET {key} {f} {v:?}"),
                show(h.set(key, f, v).await),
            )
        }
        6 => {
            let f = rng.pick(FIELDS);
            (format!("HGET {key} {f}"), show(h.get(key, f).await))
        }
        7 => {
            let fs = rng.some(FIELDS, 3);
            (format!("HDEL {key} {fs:?}"), show(h.delete(key, &fs).await))
        }
        8 => {
            let (f, d) = (rng.pick(FIELDS), rng.pick(DELTAS));
            (
                format!("HINCRBY {key} {f} {d}"),
                show(h.incr_by(key, f, d).await),
            )
        }
        9 => (format!("HLEN {key}"), show(h.len(key).await)),
        10 => (format!("HGETALL {key}"), sorted(h.get_all(key).await)),
        11 => {
            let fs = rng.some(FIELDS, 3);
            (
                format!("HMGET {key} {fs:?}"),
                show(h.get_many(key, &fs).await),
            )
        }
        12 => {
            let ms = rng.some(MEMBERS, 3);
            (format!("SADD {key} {ms:?}"), show(s.add(key, &ms).await))
        }
        13 => {
            let ms = rng.some(MEMBERS, 3);
            (format!("SREM {key} {ms:?}"), show(s.remove(key, &ms).await))
        }
        14 => (format!("SMEMBERS {key}"), sorted(s.members(key).await)),
        15 => {
            let m = rng.pick(MEMBERS);
            (
                format!("SISMEMBER {key} {m:?}"),
                show(s.is_member(key, m).await),
            )
        }
        16 => (format!("SCARD {key}"), show(s.count(key).await)),
        17 => {
            let pairs: Vec<(f64, &[u8])> = (0..1 + rng.below(3))
                .map(|_| (rng.pick(SCORES), rng.pick(MEMBERS)))
                .collect();
            (
                format!("ZADD {key} {pairs:?}"),
                show(z.add(key, &pairs).await),
            )
        }
        18 => {
            let ms = rng.some(MEMBERS, 3);
            (format!("ZREM {key} {ms:?}"), show(z.remove(key, &ms).await))
        }
        19 => {
            let m = rng.pick(MEMBERS);
            (format!("ZSCORE {key} {m:?}"), show(z.score(key, m).await))
        }
        20 => {
            let (m, d) = (rng.pick(MEMBERS), rng.pick(SCORES));
            (
                format!("ZINCRBY {key} {d} {m:?}"),
                show(z.incr_by(key, m, d).await),
            )
        }
        21 => {
            let (min, max) = (bound(rng), bound(rng));
            (
                format!("ZCOUNT {key} {min:?} {max:?}"),
                show(z.count_by_score(key, min, max).await),
            )
        }
        22 => {
            let (a, b, o) = (rng.pick(INDEXES), rng.pick(INDEXES), order(rng));
            (
                format!("ZRANGE {key} {a} {b} {o:?}"),
                show(z.range_by_rank(key, a, b, o).await),
            )
        }
        23 => {
            let (min, max, o) = (bound(rng), bound(rng), order(rng));
            let limit = match rng.below(3) {
                0 => None,
                _ => Some(Limit {
                    offset: rng.below(3) as u64,
                    count: rng.below(4) as u64,
                }),
            };
            (
                format!("ZRANGE BYSCORE {key} {min:?} {max:?} {o:?} {limit:?}"),
                show(z.range_by_score(key, min, max, o, limit).await),
            )
        }
        24 => {
            let (min, max) = (bound(rng), bound(rng));
            (
                format!("ZREMRANGEBYSCORE {key} {min:?} {max:?}"),
                show(z.remove_by_score(key, min, max).await),
            )
        }
        25 => (format!("ZCARD {key}"), show(z.count(key).await)),
        26 => {
            let (e, vs) = (end(rng), rng.some(VALUES, 3));
            (
                format!("PUSH {key} {e:?} {vs:?}"),
                show(l.push(key, e, &vs).await),
            )
        }
        27 => {
            let (e, n) = (end(rng), rng.below(4));
            (format!("POP {key} {e:?} {n}"), show(l.pop(key, e, n).await))
        }
        28 => {
            let (a, b) = (rng.pick(INDEXES), rng.pick(INDEXES));
            (
                format!("LRANGE {key} {a} {b}"),
                show(l.range(key, a, b).await),
            )
        }
        29 => (format!("LLEN {key}"), show(l.len(key).await)),
        30 => {
            let (a, b) = (rng.pick(INDEXES), rng.pick(INDEXES));
            (
                format!("LTRIM {key} {a} {b}"),
                show(l.trim(key, a, b).await),
            )
        }
        31 | 32 => {
            let tx = transaction(rng);
            (
                format!("TX {tx:?}"),
                show(store.transactions().run(&tx).await),
            )
        }
        _ => {
            let append = |current: Option<&[u8]>| {
                let mut next = current.map(<[u8]>::to_vec).unwrap_or_default();
                next.push(b'x');
                (next.len() < 4).then_some(next)
            };
            (
                format!("UPDATE {key}"),
                show(store.transactions().update(key, None, &append).await),
            )
        }
    }
}

/// Every seed's sequence gives the same results on both backends, step by
/// step, and leaves the same keys behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_matches_redis_on_random_operations() {
    let redis = TestRedis::start().await;
    for seed in [
        0x9e37_79b9_7f4a_7c15_u64,
        42,
        0xdead_beef,
        7,
        0x1234_5678_9abc,
    ] {
        let prefix = format!("p{seed:x}");
        let memory: Arc<dyn KvStore> = Arc::new(MemoryStore::new("parity", prefix.as_str()));
        let on_redis: Arc<dyn KvStore> = Arc::new(redis.store("parity", 0, &prefix).await);
        let (mut a, mut b) = (Rng(seed), Rng(seed));
        for i in 0..1000 {
            let (op, expected) = step(&mut a, &*on_redis).await;
            let (same_op, got) = step(&mut b, &*memory).await;
            assert_eq!(op, same_op, "generators in step");
            assert_eq!(got, expected, "seed {seed:#x}, step {i}: {op}");
        }
        let mut left_redis = on_redis.keys("*").await.unwrap();
        let mut left_memory = memory.keys("*").await.unwrap();
        left_redis.sort();
        left_memory.sort();
        assert_eq!(left_memory, left_redis, "seed {seed:#x}: keys left");
    }
}
