//! Throughput of kv-module's typed `get`/`set` against raw redis-rs on the
//! same server, and of the memory backend.
//!
//! ```text
//! cargo bench -p kv-module-tests --bench store
//! BENCH_SECS=1 BENCH_ROUNDS=15 cargo bench -p kv-module-tests --bench store
//! ```
//!
//! A [`TestRedis`] is started for the run. For each operation and
//! concurrency (1 and 50 tasks sharing one store), the raw and kv-module
//! cases run as 9 (`BENCH_ROUNDS`) pairs of short back-to-back runs of
//! 0.5 s (`BENCH_SECS`) each (alternating which goes
//! first); the medians of each side and of the per-pair ratios are kept, so
//! that drift in a shared machine affects both alike.
//!
//! * raw: a redis-rs `ConnectionManager` doing `SET`/`GET` of pre-encoded
//!   JSON bytes, with TCP_NODELAY on as `RedisStore` has it (a last table
//!   compares it with redis-rs's default socket settings);
//! * kv-module: `RedisStore` (pool size 1, prefix `bench`) held as
//!   `Arc<dyn KvStore>`, through the typed `KvStoreExt::set`/`get`, so it
//!   includes JSON encoding and decoding of the value.
//!
//! Both use the same 1,000 stored keys (`bench:item:N`), written before any
//! measurement so every `GET` finds a value.

use std::sync::Arc;
use std::time::Duration;

use kv_module::{KvStore, KvStoreExt, MemoryStore, RedisConfig, RedisStore, Ttl};
use kv_module_tests::TestRedis;
use kv_module_tests::bench::{
    Plan, Workload, ns_per_iter, print_machine, run_duration, run_rounds, thousands,
};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// Size of the key space; keys are reused so values exist for `GET`.
const KEY_COUNT: usize = 1_000;
const PREFIX: &str = "bench";
const CONCURRENCIES: [usize; 2] = [1, 50];
/// Paired rounds per case (`BENCH_ROUNDS`); the medians are reported.
const DEFAULT_ROUNDS: usize = 9;
const DEFAULT_SECS: f64 = 0.5;
/// Warm-up before each measured run: connections established, caches and
/// the allocator settled.
const WARM_UP: Duration = Duration::from_millis(100);

/// A value of about 200 bytes of JSON, shaped like a cached record.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
    score: f64,
    active: bool,
    bio: String,
}

impl Profile {
    fn sample() -> Self {
        Self {
            id: 4_211_903,
            name: "Ada Lovelace".to_owned(),
            email: "ada.lovelace@example.com".to_owned(),
            roles: vec!["admin".to_owned(), "editor".to_owned()],
            score: 97.25,
            active: true,
            bio: "Wrote the first algorithm meant for a machine; works on the analytical engine."
                .to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Set,
    Get,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Self::Set => "set",
            Self::Get => "get",
        }
    }
}

/// What the tasks of one case share.
struct Fixture {
    raw: ConnectionManager,
    raw_default: ConnectionManager,
    redis_store: Arc<dyn KvStore>,
    memory_store: Arc<dyn KvStore>,
    /// `item:N`: the keys kv-module is given.
    keys: Vec<String>,
    /// `bench:item:N`: the same keys as stored, for the raw client.
    stored_keys: Vec<String>,
    value: Profile,
    encoded: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Raw,
    Redis,
    /// kv-module's raw-bytes API on the same pre-encoded bytes: the cost of
    /// the layer itself, without JSON.
    RedisBytes,
    /// Raw redis-rs with its default socket settings (Nagle on).
    RawDefault,
    Memory,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let plan = Plan {
        rounds: run_rounds(DEFAULT_ROUNDS),
        key_count: KEY_COUNT,
        warm_up: WARM_UP,
        run_for: run_duration(DEFAULT_SECS),
    };
    let server = TestRedis::start().await;
    let fixture = Arc::new(Fixture::new(&server).await);
    fixture.populate().await;

    print_machine("kv-module store benchmark", &fixture.raw).await;
    println!(
        "{plan}, {KEY_COUNT} keys, value {} bytes of JSON.\n",
        fixture.encoded.len()
    );

    for (intro, header, target) in [
        (
            "",
            "| operation | concurrency | raw ops/s | kv-module ops/s | ratio (kv/raw) |",
            Target::Redis,
        ),
        (
            "\nWhere the difference goes: kv-module's raw-bytes API (no JSON) against raw \
             redis-rs, and the JSON work alone.\n\n",
            "| operation | concurrency | raw ops/s | kv-module bytes ops/s | ratio |",
            Target::RedisBytes,
        ),
        (
            "\nThe socket setting: raw redis-rs with TCP_NODELAY (as RedisStore) against its \
             defaults (Nagle on).\n\n",
            "| operation | concurrency | raw NODELAY ops/s | raw default ops/s | ratio |",
            Target::RawDefault,
        ),
    ] {
        print!("{intro}");
        println!("{header}\n|---|---:|---:|---:|---:|");
        for concurrency in CONCURRENCIES {
            for op in [Op::Set, Op::Get] {
                let (raw, other) = ((Target::Raw, op), (target, op));
                let c = plan.compare(&fixture, raw, other, concurrency).await;
                println!("| {} | {concurrency} | {c} |", op.label());
            }
        }
    }
    let (encode_ns, decode_ns) = json_cost(&fixture);
    println!(
        "\nJSON alone, one thread: encode {encode_ns:.0} ns, decode {decode_ns:.0} ns per value."
    );

    println!("\nMemoryStore (same typed get/set, no network):\n");
    println!("| operation | concurrency | ops/s |");
    println!("|---|---:|---:|");
    for concurrency in CONCURRENCIES {
        for op in [Op::Set, Op::Get] {
            let memory = (Target::Memory, op);
            let ops = plan.median_throughput(&fixture, memory, concurrency).await;
            println!("| {} | {concurrency} | {} |", op.label(), thousands(ops));
        }
    }

    fixture.redis_store.close().await;
    fixture.memory_store.close().await;
}

impl Fixture {
    async fn new(server: &TestRedis) -> Self {
        // The baseline gets the same socket settings as RedisStore
        // (TCP_NODELAY on), so the comparison measures the layer only.
        let info = redis::IntoConnectionInfo::into_connection_info(server.url(0))
            .expect("test Redis URL must parse")
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).expect("test Redis URL must parse");
        let raw = ConnectionManager::new(client)
            .await
            .expect("raw ConnectionManager must connect to the test Redis");
        let default_client = redis::Client::open(server.url(0)).expect("test Redis URL must parse");
        let raw_default = ConnectionManager::new(default_client)
            .await
            .expect("raw ConnectionManager must connect to the test Redis");
        let config = RedisConfig::new(server.addr())
            .with_prefix(PREFIX)
            .with_pool_size(1);
        let redis_store: Arc<dyn KvStore> = Arc::new(
            RedisStore::open("bench", config)
                .await
                .expect("RedisStore must open on the test Redis"),
        );
        let memory_store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("bench-memory", PREFIX));
        let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("item:{i}")).collect();
        let stored_keys = keys.iter().map(|key| format!("{PREFIX}:{key}")).collect();
        let value = Profile::sample();
        let encoded = serde_json::to_vec(&value).expect("the sample value must encode");
        Self {
            raw,
            raw_default,
            redis_store,
            memory_store,
            keys,
            stored_keys,
            value,
            encoded,
        }
    }

    /// Writes every key through both stores, and checks that the raw
    /// client sees exactly what kv-module wrote under the full key name, so
    /// that both sides of the comparison do the same work.
    async fn populate(&self) {
        for key in &self.keys {
            for store in [&self.redis_store, &self.memory_store] {
                store
                    .set(key, &self.value, Ttl::Never)
                    .await
                    .expect("populating the key space must succeed");
            }
        }
        let mut raw = self.raw.clone();
        let stored: Vec<u8> = raw
            .get(&self.stored_keys[0])
            .await
            .expect("raw GET of a populated key must succeed");
        assert_eq!(
            stored, self.encoded,
            "kv-module must store the value as the same JSON under `{PREFIX}:<key>`"
        );
    }

    /// One operation on key number `index`.
    async fn run_once(&self, target: Target, op: Op, index: usize) {
        match target {
            Target::Raw => self.raw_once(op, index).await,
            Target::Redis => self.kv_once(&self.redis_store, op, index).await,
            Target::RedisBytes => self.kv_bytes_once(op, index).await,
            Target::RawDefault => self.raw_on(&self.raw_default, op, index).await,
            Target::Memory => self.kv_once(&self.memory_store, op, index).await,
        }
    }

    async fn raw_once(&self, op: Op, index: usize) {
        self.raw_on(&self.raw, op, index).await;
    }

    async fn raw_on(&self, conn: &ConnectionManager, op: Op, index: usize) {
        // A clone is an `Arc` bump; every clone shares one connection.
        let mut raw = conn.clone();
        let key = &self.stored_keys[index];
        match op {
            Op::Set => raw
                .set(key, self.encoded.as_slice())
                .await
                .expect("raw SET must succeed"),
            Op::Get => {
                let value: Option<Vec<u8>> = raw.get(key).await.expect("raw GET must succeed");
                assert!(value.is_some(), "raw GET found no value at `{key}`");
            }
        }
    }

    async fn kv_bytes_once(&self, op: Op, index: usize) {
        let key = &self.keys[index];
        match op {
            Op::Set => self
                .redis_store
                .set_bytes(key, &self.encoded, Ttl::Never)
                .await
                .expect("kv-module set_bytes must succeed"),
            Op::Get => {
                let value = self
                    .redis_store
                    .get_bytes(key)
                    .await
                    .expect("kv-module get_bytes must succeed");
                assert!(
                    value.is_some(),
                    "kv-module get_bytes found no value at `{key}`"
                );
            }
        }
    }

    async fn kv_once(&self, store: &Arc<dyn KvStore>, op: Op, index: usize) {
        let key = &self.keys[index];
        match op {
            Op::Set => store
                .set(key, &self.value, Ttl::Never)
                .await
                .expect("kv-module set must succeed"),
            Op::Get => {
                let value: Option<Profile> =
                    store.get(key).await.expect("kv-module get must succeed");
                assert!(value.is_some(), "kv-module get found no value at `{key}`");
            }
        }
    }
}

impl Workload for Fixture {
    type Op = (Target, Op);

    async fn run(&self, (target, op): (Target, Op), index: usize) {
        self.run_once(target, op, index).await;
    }
}

/// Nanoseconds per JSON encode and decode of the bench value.
fn json_cost(fixture: &Fixture) -> (f64, f64) {
    const N: u32 = 200_000;
    let encode = ns_per_iter(N, || {
        let bytes = serde_json::to_vec(std::hint::black_box(&fixture.value))
            .expect("the sample value must encode");
        std::hint::black_box(bytes);
    });
    let decode = ns_per_iter(N, || {
        let value: Profile = serde_json::from_slice(std::hint::black_box(&fixture.encoded))
            .expect("the sample value must decode");
        std::hint::black_box(value);
    });
    (encode, decode)
}
