//! Throughput of kv-module's hashes, lists, sets, sorted sets and
//! transactions against the same commands sent with raw redis-rs on the
//! same server, and of the memory backend.
//!
//! ```text
//! cargo bench -p kv-module-tests --bench data_types
//! BENCH_SECS=0.5 BENCH_ROUNDS=9 cargo bench -p kv-module-tests --bench data_types
//! BENCH_FILTER=transactions cargo bench -p kv-module-tests --bench data_types
//! ```
//!
//! A [`TestRedis`] is started for the run. For each operation and
//! concurrency (1 and 50 tasks sharing one store or one connection), the
//! raw and kv-module cases run as pairs of short back-to-back runs
//! (alternating which goes first); the medians of each side and of the
//! per-pair ratios are kept. The memory backend's median throughput of the
//! same kv-module call is printed beside them.
//!
//! * raw: a redis-rs `MultiplexedConnection` (TCP_NODELAY on and a 2 s
//!   response timeout, as `RedisStore` has them) sending the command
//!   kv-module sends, under the full key (`bench:<key>`), values as bytes;
//! * kv-module: `RedisStore` (pool size 1, prefix `bench`) held as
//!   `Arc<dyn KvStore>`, through the raw-bytes data-type API
//!   (`store.hashes()`, `lists()`, `sets()`, `sorted_sets()`,
//!   `transactions()`), so no JSON on either side.
//!
//! Per family, over 1,000 keys each, filled before any measurement:
//!
//! * hashes: `set` of field `f0` (64 bytes, overwriting: `HSET`) and `get`
//!   of it (`HGET`), on hashes of 10 fields;
//! * lists: `push` of one value at the back (`RPUSH`), and a queue step:
//!   that push followed by a `pop` of one value from the front (`LPOP key
//!   1`, two round trips on both sides), on lists filled with 500 values
//!   each. Measured pops alone would drain the memory backend's lists
//!   (millions of pops per second) and time empty pops; after its own push
//!   a pop always finds a value, which both sides assert. Pushes alone grow
//!   the lists by the number of pushes measured;
//! * sets: `add` of a member already there (`SADD`, reply 0) and
//!   `is_member` of a member (`SISMEMBER`), on sets of 100 members;
//! * sorted sets: `add` of a member already there with its score (`ZADD`)
//!   and `range_by_rank` of the first 10 with scores (`ZRANGE k 0 9
//!   WITHSCORES`), on sorted sets of 100 members;
//! * transactions: `run` of a 3-write batch (`set` of a string, `hash_set`
//!   of a field, `set_add` of a member, on three keys sharing a hash tag),
//!   against the same three writes in a raw `MULTI`/`EXEC` and, in a second
//!   table, against a raw `EVALSHA` of the very script kv-module runs (a
//!   batch with a write that needs a type is a script, for all or
//!   nothing); `run` of three `set`s, which kv-module sends as a
//!   `MULTI`/`EXEC`, against the same raw `MULTI`/`EXEC`; and
//!   `update` (compare-and-set: a counter read and written back plus one),
//!   against the same `GET` and compare-and-set `EVALSHA` sent raw.

use std::sync::Arc;
use std::time::Duration;

use kv_module::store::{End, Order, Transaction};
use kv_module::{KvStore, MemoryStore, RedisConfig, RedisStore, Ttl};
use kv_module_tests::TestRedis;
use kv_module_tests::bench::{
    Plan, Workload, print_machine, raw_multiplexed, run_duration, run_rounds, thousands,
};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, MultiplexedConnection};

/// Keys per family.
const KEY_COUNT: usize = 1_000;
const PREFIX: &str = "bench";
const CONCURRENCIES: [usize; 2] = [1, 50];
/// Paired rounds per case (`BENCH_ROUNDS` overrides); medians are reported.
const ROUNDS: usize = 7;
/// Seconds per measured run (`BENCH_SECS` overrides): short, so that the
/// whole bench stays under three minutes.
const DEFAULT_SECS: f64 = 0.2;
const WARM_UP: Duration = Duration::from_millis(50);
/// Fields per hash, members per set and sorted set.
const MEMBERS: usize = 100;
const HASH_FIELDS: usize = 10;
/// Values per list before measuring.
const LIST_FILL: usize = 500;
/// The value of hash fields, list values and transaction writes.
const VALUE: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Compare-and-set attempts, as kv-module's `UPDATE_ATTEMPTS`.
const CAS_ATTEMPTS: u32 = kv_module::store::UPDATE_ATTEMPTS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    HashSet,
    HashGet,
    ListPush,
    ListQueue,
    SetAdd,
    SetIsMember,
    SortedSetAdd,
    SortedSetRange,
    TxRun,
    TxAny,
    Update,
}

impl Op {
    const ALL: [Op; 11] = [
        Op::HashSet,
        Op::HashGet,
        Op::ListPush,
        Op::ListQueue,
        Op::SetAdd,
        Op::SetIsMember,
        Op::SortedSetAdd,
        Op::SortedSetRange,
        Op::TxRun,
        Op::TxAny,
        Op::Update,
    ];

    /// Family, kv-module call, and what the raw side sends.
    fn labels(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::HashSet => ("hashes", "`set`", "`HSET`"),
            Self::HashGet => ("hashes", "`get`", "`HGET`"),
            Self::ListPush => ("lists", "`push` back", "`RPUSH`"),
            Self::ListQueue => (
                "lists",
                "`push` back + `pop` front 1",
                "`RPUSH` + `LPOP k 1`",
            ),
            Self::SetAdd => ("sets", "`add`", "`SADD`"),
            Self::SetIsMember => ("sets", "`is_member`", "`SISMEMBER`"),
            Self::SortedSetAdd => ("sorted sets", "`add`", "`ZADD`"),
            Self::SortedSetRange => (
                "sorted sets",
                "`range_by_rank` 0..=9",
                "`ZRANGE … WITHSCORES`",
            ),
            Self::TxRun => (
                "transactions",
                "`run` (3 writes)",
                "`MULTI` 3 writes `EXEC`",
            ),
            Self::TxAny => (
                "transactions",
                "`run` (3 `set`s)",
                "`MULTI` 3 `SET`s `EXEC`",
            ),
            Self::Update => ("transactions", "`update`", "`GET` + CAS `EVALSHA`"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Target {
    /// The command(s) kv-module sends, sent with raw redis-rs.
    Raw,
    /// For [`Op::TxRun`] only: kv-module's own transaction script, sent raw.
    RawScript,
    Redis,
    Memory,
}

/// Keys of item `i`: as given to kv-module, and as stored.
struct Keys {
    hash: String,
    list: String,
    set: String,
    zset: String,
    /// Three keys sharing the hash tag `{t<i>}`: string, hash, set.
    tx: [String; 3],
    /// Three strings sharing the hash tag `{a<i>}`.
    any: [String; 3],
    counter: String,
}

impl Keys {
    fn caller(i: usize) -> Self {
        Self {
            hash: format!("h:{i}"),
            list: format!("l:{i}"),
            set: format!("s:{i}"),
            zset: format!("z:{i}"),
            tx: [
                format!("{{t{i}}}:str"),
                format!("{{t{i}}}:hash"),
                format!("{{t{i}}}:set"),
            ],
            any: [
                format!("{{a{i}}}:0"),
                format!("{{a{i}}}:1"),
                format!("{{a{i}}}:2"),
            ],
            counter: format!("c:{i}"),
        }
    }

    fn stored(&self) -> Self {
        let s = |key: &str| format!("{PREFIX}:{key}");
        Self {
            hash: s(&self.hash),
            list: s(&self.list),
            set: s(&self.set),
            zset: s(&self.zset),
            tx: [s(&self.tx[0]), s(&self.tx[1]), s(&self.tx[2])],
            any: [s(&self.any[0]), s(&self.any[1]), s(&self.any[2])],
            counter: s(&self.counter),
        }
    }
}

/// What the tasks of one case share.
struct Fixture {
    raw: MultiplexedConnection,
    redis_store: Arc<dyn KvStore>,
    memory_store: Arc<dyn KvStore>,
    keys: Vec<Keys>,
    stored: Vec<Keys>,
    /// `m0` … `m99`.
    members: Vec<Vec<u8>>,
    transaction: redis::Script,
    compare_and_set: redis::Script,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let plan = Plan {
        rounds: run_rounds(ROUNDS),
        key_count: KEY_COUNT,
        warm_up: WARM_UP,
        run_for: run_duration(DEFAULT_SECS),
    };
    let server = TestRedis::start().await;
    let fixture = Arc::new(Fixture::new(&server).await);
    fixture.populate().await;

    let header = ConnectionManager::new(server.client(0))
        .await
        .expect("a ConnectionManager must connect to the test Redis");
    print_machine("kv-module data types benchmark", &header).await;
    println!(
        "{plan}, {KEY_COUNT} keys per family, values of {} bytes.\n",
        VALUE.len()
    );

    println!(
        "| family | kv-module call | raw redis-rs | concurrency | raw ops/s | kv-module ops/s | \
         ratio (kv/raw) | memory ops/s |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    // `BENCH_FILTER=transactions` runs only the rows whose family or call
    // holds it (the script comparison below runs with `transactions`).
    let filter = std::env::var("BENCH_FILTER").unwrap_or_default();
    for concurrency in CONCURRENCIES {
        for op in Op::ALL {
            let (family, call, raw_cmd) = op.labels();
            if !family.contains(filter.as_str()) && !call.contains(filter.as_str()) {
                continue;
            }
            let c = plan
                .compare(
                    &fixture,
                    (Target::Raw, op),
                    (Target::Redis, op),
                    concurrency,
                )
                .await;
            let memory = plan
                .median_throughput(&fixture, (Target::Memory, op), concurrency)
                .await;
            println!(
                "| {family} | {call} | {raw_cmd} | {concurrency} | {c} | {} |",
                thousands(memory)
            );
        }
    }

    if !"transactions".contains(filter.as_str()) {
        return;
    }
    println!(
        "\nThe transaction against raw `EVALSHA` of kv-module's own transaction script \
         (same keys and arguments): the layer's cost alone.\n"
    );
    println!("| concurrency | raw EVALSHA ops/s | kv-module `run` ops/s | ratio |");
    println!("|---:|---:|---:|---:|");
    for concurrency in CONCURRENCIES {
        let op = Op::TxRun;
        let c = plan
            .compare(
                &fixture,
                (Target::RawScript, op),
                (Target::Redis, op),
                concurrency,
            )
            .await;
        println!("| {concurrency} | {c} |");
    }

    fixture.redis_store.close().await;
    fixture.memory_store.close().await;
}

impl Fixture {
    async fn new(server: &TestRedis) -> Self {
        let raw = raw_multiplexed(server).await;
        let store_config = RedisConfig::new(server.addr())
            .with_prefix(PREFIX)
            .with_pool_size(1);
        let redis_store: Arc<dyn KvStore> = Arc::new(
            RedisStore::open("bench", store_config)
                .await
                .expect("RedisStore must open on the test Redis"),
        );
        let memory_store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("bench-memory", PREFIX));
        let keys: Vec<Keys> = (0..KEY_COUNT).map(Keys::caller).collect();
        let stored = keys.iter().map(Keys::stored).collect();
        Self {
            raw,
            redis_store,
            memory_store,
            keys,
            stored,
            members: (0..MEMBERS).map(|j| format!("m{j}").into_bytes()).collect(),
            transaction: redis::Script::new(kv_module::store::redis::TRANSACTION_SCRIPT.lua()),
            compare_and_set: redis::Script::new(
                kv_module::store::redis::COMPARE_AND_SET_SCRIPT.lua(),
            ),
        }
    }

    /// Fills every family through both stores, then checks that the raw
    /// client sees what kv-module wrote under the stored key names, so that
    /// both sides of a comparison work on the same data.
    async fn populate(&self) {
        let fields: Vec<String> = (0..HASH_FIELDS).map(|j| format!("f{j}")).collect();
        let field_values: Vec<(&str, &[u8])> = fields.iter().map(|f| (f.as_str(), VALUE)).collect();
        let members: Vec<&[u8]> = self.members.iter().map(Vec::as_slice).collect();
        let scored: Vec<(f64, &[u8])> = members
            .iter()
            .enumerate()
            .map(|(j, m)| (j as f64, *m))
            .collect();
        let list_values = vec![VALUE; LIST_FILL];
        for keys in &self.keys {
            for store in [&self.redis_store, &self.memory_store] {
                let fill = async {
                    store
                        .hashes()
                        .set_many(&keys.hash, &field_values, None)
                        .await?;
                    store
                        .lists()
                        .push(&keys.list, End::Back, &list_values)
                        .await?;
                    store.sets().add(&keys.set, &members).await?;
                    store.sorted_sets().add(&keys.zset, &scored).await?;
                    store.set_bytes(&keys.counter, b"0", Ttl::Never).await
                };
                fill.await.expect("populating the key space must succeed");
            }
        }
        let mut raw = self.raw.clone();
        let first = &self.stored[0];
        let value: Option<Vec<u8>> = raw
            .hget(&first.hash, "f0")
            .await
            .expect("raw HGET must succeed");
        assert_eq!(
            value.as_deref(),
            Some(VALUE),
            "kv-module must store under `{PREFIX}:<key>`"
        );
        let len: usize = raw.llen(&first.list).await.expect("raw LLEN must succeed");
        assert_eq!(len, LIST_FILL);
        let zlen: usize = raw
            .zcard(&first.zset)
            .await
            .expect("raw ZCARD must succeed");
        assert_eq!(zlen, MEMBERS);
    }

    async fn run_once(&self, target: Target, op: Op, index: usize) {
        match target {
            Target::Raw => self.raw_once(op, index).await,
            Target::RawScript => self.raw_script_tx(index).await,
            Target::Redis => self.kv_once(&self.redis_store, op, index).await,
            Target::Memory => self.kv_once(&self.memory_store, op, index).await,
        }
    }

    fn member(&self, index: usize) -> &[u8] {
        &self.members[index % MEMBERS]
    }

    async fn raw_once(&self, op: Op, index: usize) {
        // A clone is an `Arc` bump; every clone shares one connection.
        let mut raw = self.raw.clone();
        let keys = &self.stored[index];
        let member = self.member(index);
        match op {
            Op::HashSet => {
                let _: u64 = raw.hset(&keys.hash, "f0", VALUE).await.expect("raw HSET");
            }
            Op::HashGet => {
                let value: Option<Vec<u8>> = raw.hget(&keys.hash, "f0").await.expect("raw HGET");
                assert!(
                    value.is_some(),
                    "raw HGET found no field at `{}`",
                    keys.hash
                );
            }
            Op::ListPush => {
                let _: u64 = raw.rpush(&keys.list, VALUE).await.expect("raw RPUSH");
            }
            Op::ListQueue => {
                let _: u64 = raw.rpush(&keys.list, VALUE).await.expect("raw RPUSH");
                let count = std::num::NonZeroUsize::MIN;
                let popped: Option<Vec<Vec<u8>>> =
                    raw.lpop(&keys.list, Some(count)).await.expect("raw LPOP");
                assert_eq!(
                    popped.map_or(0, |values| values.len()),
                    1,
                    "raw LPOP of `{}`",
                    keys.list
                );
            }
            Op::SetAdd => {
                let _: u64 = raw.sadd(&keys.set, member).await.expect("raw SADD");
            }
            Op::SetIsMember => {
                let found: bool = raw
                    .sismember(&keys.set, member)
                    .await
                    .expect("raw SISMEMBER");
                assert!(found, "raw SISMEMBER missed a member of `{}`", keys.set);
            }
            Op::SortedSetAdd => {
                let score = (index % MEMBERS) as f64;
                let _: u64 = raw.zadd(&keys.zset, member, score).await.expect("raw ZADD");
            }
            Op::SortedSetRange => {
                let range: Vec<(Vec<u8>, f64)> = raw
                    .zrange_withscores(&keys.zset, 0, 9)
                    .await
                    .expect("raw ZRANGE WITHSCORES");
                assert_eq!(range.len(), 10, "raw ZRANGE of `{}`", keys.zset);
            }
            Op::TxRun => {
                let [string, hash, set] = &keys.tx;
                let () = redis::pipe()
                    .atomic()
                    .set(string, VALUE)
                    .ignore()
                    .hset(hash, "f0", VALUE)
                    .ignore()
                    .sadd(set, member)
                    .ignore()
                    .query_async(&mut raw)
                    .await
                    .expect("raw MULTI/EXEC");
            }
            Op::TxAny => {
                let [a, b, c] = &keys.any;
                let () = redis::pipe()
                    .atomic()
                    .set(a, VALUE)
                    .ignore()
                    .set(b, VALUE)
                    .ignore()
                    .set(c, VALUE)
                    .ignore()
                    .query_async(&mut raw)
                    .await
                    .expect("raw MULTI/EXEC");
            }
            Op::Update => self.raw_update(&mut raw, &keys.counter).await,
        }
    }

    /// `update` by hand: `GET`, then the compare-and-set script, retried
    /// with the value it returns on a conflict.
    async fn raw_update(&self, raw: &mut MultiplexedConnection, key: &str) {
        let mut current: Option<Vec<u8>> = raw.get(key).await.expect("raw GET");
        for _ in 0..CAS_ATTEMPTS {
            let next = plus_one(current.as_deref());
            let reply: Vec<redis::Value> = self
                .compare_and_set
                .key(key)
                .arg(if current.is_some() { "1" } else { "0" })
                .arg(current.as_deref().unwrap_or_default())
                .arg("set")
                .arg(next.as_deref().unwrap_or_default())
                .arg("keep")
                .invoke_async(raw)
                .await
                .expect("raw compare-and-set EVALSHA");
            match reply.as_slice() {
                [redis::Value::Int(1)] => return,
                [_] => current = None,
                [_, redis::Value::BulkString(now)] => current = Some(now.clone()),
                other => panic!("unexpected reply of the compare-and-set script: {other:?}"),
            }
        }
        panic!("raw compare-and-set of `{key}` kept conflicting");
    }

    /// kv-module's transaction script with the arguments `run` builds.
    async fn raw_script_tx(&self, index: usize) {
        let mut raw = self.raw.clone();
        let [string, hash, set] = &self.stored[index].tx;
        let reply: (i64, i64) = self
            .transaction
            .key(string)
            .key(hash)
            .key(set)
            .arg(3)
            .arg("SET")
            .arg(1)
            .arg(1)
            .arg(VALUE)
            .arg("HSET")
            .arg(2)
            .arg(2)
            .arg("f0")
            .arg(VALUE)
            .arg("SADD")
            .arg(3)
            .arg(1)
            .arg(self.member(index))
            .invoke_async(&mut raw)
            .await
            .expect("raw transaction EVALSHA");
        assert_eq!(reply, (1, 0), "the transaction script refused its writes");
    }

    async fn kv_once(&self, store: &Arc<dyn KvStore>, op: Op, index: usize) {
        let keys = &self.keys[index];
        let member = self.member(index);
        match op {
            Op::HashSet => {
                store
                    .hashes()
                    .set(&keys.hash, "f0", VALUE)
                    .await
                    .expect("kv-module hashes().set");
            }
            Op::HashGet => {
                let value = store
                    .hashes()
                    .get(&keys.hash, "f0")
                    .await
                    .expect("kv-module hashes().get");
                assert!(
                    value.is_some(),
                    "kv-module found no field at `{}`",
                    keys.hash
                );
            }
            Op::ListPush => {
                store
                    .lists()
                    .push(&keys.list, End::Back, &[VALUE])
                    .await
                    .expect("kv-module lists().push");
            }
            Op::ListQueue => {
                let lists = store.lists();
                lists
                    .push(&keys.list, End::Back, &[VALUE])
                    .await
                    .expect("kv-module lists().push");
                let popped = lists
                    .pop(&keys.list, End::Front, 1)
                    .await
                    .expect("kv-module lists().pop");
                assert_eq!(popped.len(), 1, "kv-module pop of `{}`", keys.list);
            }
            Op::SetAdd => {
                store
                    .sets()
                    .add(&keys.set, &[member])
                    .await
                    .expect("kv-module sets().add");
            }
            Op::SetIsMember => {
                let found = store
                    .sets()
                    .is_member(&keys.set, member)
                    .await
                    .expect("kv-module sets().is_member");
                assert!(found, "kv-module missed a member of `{}`", keys.set);
            }
            Op::SortedSetAdd => {
                let score = (index % MEMBERS) as f64;
                store
                    .sorted_sets()
                    .add(&keys.zset, &[(score, member)])
                    .await
                    .expect("kv-module sorted_sets().add");
            }
            Op::SortedSetRange => {
                let range = store
                    .sorted_sets()
                    .range_by_rank(&keys.zset, 0, 9, Order::Ascending)
                    .await
                    .expect("kv-module sorted_sets().range_by_rank");
                assert_eq!(range.len(), 10, "kv-module range of `{}`", keys.zset);
            }
            Op::TxRun => {
                let [string, hash, set] = &keys.tx;
                let tx = Transaction::new()
                    .set(string, VALUE, Ttl::Never)
                    .hash_set(hash, "f0", VALUE)
                    .set_add(set, &[member]);
                store
                    .transactions()
                    .run(&tx)
                    .await
                    .expect("kv-module transactions().run");
            }
            Op::TxAny => {
                let [a, b, c] = &keys.any;
                let tx = Transaction::new()
                    .set(a, VALUE, Ttl::Never)
                    .set(b, VALUE, Ttl::Never)
                    .set(c, VALUE, Ttl::Never);
                store
                    .transactions()
                    .run(&tx)
                    .await
                    .expect("kv-module transactions().run");
            }
            Op::Update => {
                store
                    .transactions()
                    .update(&keys.counter, None, &plus_one)
                    .await
                    .expect("kv-module transactions().update");
            }
        }
    }
}

/// The update both sides compute: a decimal counter plus one (missing: 1).
fn plus_one(current: Option<&[u8]>) -> Option<Vec<u8>> {
    let n: u64 = current
        .and_then(|bytes| std::str::from_utf8(bytes).ok()?.parse().ok())
        .unwrap_or(0);
    Some((n + 1).to_string().into_bytes())
}

impl Workload for Fixture {
    type Op = (Target, Op);

    async fn run(&self, (target, op): (Target, Op), index: usize) {
        self.run_once(target, op, index).await;
    }
}
