//! The near cache (issue 14): a local hit against raw redis-rs `GET` of
//! the same value, and a miss against a plain `get` of a store without
//! one, in operations per second.
//!
//! ```text
//! cargo bench -p kv-module-tests --bench near_cache
//! BENCH_SECS=1 BENCH_ROUNDS=15 cargo bench -p kv-module-tests --bench near_cache
//! BENCH_FILTER=miss cargo bench -p kv-module-tests --bench near_cache
//! ```
//!
//! A [`TestRedis`] is started for the run; 1,000 keys of about 200 bytes
//! are written first. For each comparison and concurrency (1 and 50
//! tasks), 9 (`BENCH_ROUNDS`) paired runs of 0.5 s (`BENCH_SECS`)
//! alternate which side goes first; medians are reported (see
//! `kv_module_tests::bench`).
//!
//! * raw: a redis-rs `ConnectionManager` (TCP_NODELAY, as `RedisStore`)
//!   doing `GET` of the stored key;
//! * hit: `get_bytes` on a near-cached `RedisStore` whose copies are all
//!   local (checked before measuring: every read of the run is a hit);
//! * plain: `get_bytes` on a `RedisStore` without a near cache;
//! * raw pair: the same `ConnectionManager` sending `GET` + `PTTL` of the
//!   key in one pipeline, the commands a miss sends: the floor of a miss
//!   against a plain `get`, with nothing of kv-module in it;
//! * miss: `get_bytes` on a near-cached store too small to keep anything
//!   (`max_bytes` 16), so every read after a key's first goes through the
//!   tracking connection (`MGET` + `PTTL` in one pipeline) and its insert
//!   is refused: what the read after an invalidation or an eviction costs;
//!   in the default mode (`auto`: broadcast, as the store has a prefix),
//!   and in tracking mode;
//! * first miss: `get_bytes` on that store of a key it never read (65,536
//!   more keys read in turn, far more than its doorkeeper remembers),
//!   against a plain `get` of the same keys: a key's first miss is a plain
//!   `GET` that only notes the key (`near_cache/admission.rs`).
//!
//! A hit never waits, so a task doing hits never yields: with 50 tasks the
//! runtime's workers each run one task at a time to the deadline. The
//! number is then what all workers together serve.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kv_module::{KvStore, NearCacheConfig, NearCacheMode, RedisConfig, RedisStore, Ttl};
use kv_module_tests::TestRedis;
use kv_module_tests::bench::{Plan, Workload, print_machine, run_duration, run_rounds, thousands};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};

const KEY_COUNT: usize = 1_000;
/// Keys read in turn by the first-miss rows: far more than the miss
/// store's doorkeeper (1,024 slots) remembers between two reads of one.
const COLD_KEY_COUNT: usize = 65_536;
const PREFIX: &str = "bench";
const CONCURRENCIES: [usize; 2] = [1, 50];
/// Paired rounds per case (`BENCH_ROUNDS`); the medians are reported.
const DEFAULT_ROUNDS: usize = 9;
const DEFAULT_SECS: f64 = 0.5;
const WARM_UP: Duration = Duration::from_millis(100);
/// The raw connections wait for a reply as long as `RedisStore` does
/// (redis-rs's own 500 ms ended runs on a loaded machine).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
enum Target {
    Raw,
    /// Raw redis-rs `GET` + `PTTL` of the key in one pipeline: what a miss
    /// asks the server, without the near cache's client side.
    RawPair,
    /// The same pipeline on a RESP3 connection with `CLIENT TRACKING ON`
    /// (the server remembers each key read): the floor of a miss.
    RawPairTracked,
    /// The same with `CLIENT TRACKING ON BCAST PREFIX bench:` (the server
    /// remembers nothing per read; every write of the prefix is pushed).
    RawPairBcast,
    Hit,
    Plain,
    /// A miss in the default mode (broadcast here).
    Miss,
    /// A miss in tracking mode.
    MissTracking,
    /// A plain `get` of the next of the cold keys.
    PlainCold,
    /// A near-cache miss of the next of the cold keys: its first.
    FirstMiss,
}

struct Fixture {
    raw: ConnectionManager,
    tracked: MultiplexedConnection,
    bcast: MultiplexedConnection,
    hit: RedisStore,
    plain: RedisStore,
    miss: RedisStore,
    miss_tracking: RedisStore,
    keys: Vec<String>,
    stored_keys: Vec<String>,
    cold_keys: Vec<String>,
    /// The next cold key to read.
    next_cold: AtomicUsize,
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
    print_machine("kv-module near cache benchmark", &fixture.raw).await;
    println!("{plan}, {KEY_COUNT} keys, values of 200 bytes.\n");

    // `BENCH_FILTER=miss` runs only the rows whose name holds it.
    let filter = std::env::var("BENCH_FILTER").unwrap_or_default();
    let rows = |base: Target, rows: &'static [(Target, &'static str)]| {
        let (plan, fixture, filter) = (&plan, &fixture, filter.as_str());
        async move {
            for &(target, name) in rows.iter().filter(|(_, name)| name.contains(filter)) {
                for concurrency in CONCURRENCIES {
                    let c = plan.compare(fixture, base, target, concurrency).await;
                    println!("| {name} | {concurrency} | {c} |");
                }
            }
        }
    };
    println!("| read | concurrency | raw GET ops/s | near-cache hit ops/s | ratio (hit/raw) |");
    println!("|---|---:|---:|---:|---:|");
    rows(Target::Raw, &[(Target::Hit, "hit")]).await;
    println!(
        "\n| read | concurrency | plain get ops/s | near-cache miss ops/s | ratio (miss/plain) |"
    );
    println!("|---|---:|---:|---:|---:|");
    rows(
        Target::Plain,
        &[
            (Target::Miss, "miss, default mode (broadcast)"),
            (Target::MissTracking, "miss, tracking mode"),
        ],
    )
    .await;
    rows(
        Target::PlainCold,
        &[(Target::FirstMiss, "first miss of a key (default mode)")],
    )
    .await;
    println!(
        "\nThe commands of a miss, sent raw (the floor of the ratio above):\n\n\
         | read | concurrency | raw GET ops/s | raw GET + PTTL pipeline ops/s | ratio (pair/GET) |"
    );
    println!("|---|---:|---:|---:|---:|");
    rows(
        Target::Raw,
        &[
            (Target::RawPair, "raw pair"),
            (Target::RawPairTracked, "raw pair, `TRACKING ON`"),
            (Target::RawPairBcast, "raw pair, `TRACKING ON BCAST`"),
        ],
    )
    .await;
    let hit = fixture.hit.near_cache_stats().expect("near cache");
    let miss = fixture.miss.near_cache_stats().expect("near cache");
    let miss_tracking = fixture
        .miss_tracking
        .near_cache_stats()
        .expect("near cache");
    println!(
        "\nnear-cached store: {} hits, {} misses; the store too small to keep anything: {} hits, {} misses",
        thousands(hit.hits as f64),
        thousands(hit.misses as f64),
        thousands(miss.hits as f64),
        thousands(miss.misses as f64)
    );
    assert_eq!(miss.hits, 0, "the miss side never hits");
    assert_eq!(miss_tracking.hits, 0, "the miss side never hits");
    for store in [
        &fixture.hit,
        &fixture.plain,
        &fixture.miss,
        &fixture.miss_tracking,
    ] {
        store.close().await;
    }
}

impl Fixture {
    async fn new(server: &TestRedis) -> Self {
        let info = redis::IntoConnectionInfo::into_connection_info(server.url(0))
            .expect("test Redis URL must parse")
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info.clone()).expect("test Redis URL must parse");
        let resp3 = {
            let settings = info
                .redis_settings()
                .clone()
                .set_protocol(redis::ProtocolVersion::RESP3);
            redis::Client::open(info.set_redis_settings(settings)).expect("RESP3 client")
        };
        let tracking = |args: &'static [&'static str]| {
            let resp3 = resp3.clone();
            async move {
                let (push, _pushes) = tokio::sync::mpsc::unbounded_channel();
                let config = redis::AsyncConnectionConfig::new()
                    .set_push_sender(push)
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                let mut conn = resp3
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .expect("RESP3 connection");
                let () = redis::cmd("CLIENT")
                    .arg("TRACKING")
                    .arg("ON")
                    .arg(args)
                    .query_async(&mut conn)
                    .await
                    .expect("CLIENT TRACKING ON");
                conn
            }
        };
        let tracked = tracking(&[]).await;
        let bcast = tracking(&["BCAST", "PREFIX", "bench:"]).await;
        let raw = ConnectionManager::new_with_config(
            client,
            ConnectionManagerConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT)),
        )
        .await
        .expect("raw ConnectionManager must connect to the test Redis");
        let config = RedisConfig::new(server.addr()).with_prefix(PREFIX);
        let open = |name: &'static str, config: RedisConfig| async move {
            RedisStore::open(name, config)
                .await
                .unwrap_or_else(|e| panic!("RedisStore `{name}` must open: {e}"))
        };
        let hit = open(
            "hit",
            config
                .clone()
                .with_near_cache(NearCacheConfig::new().with_max_bytes(16 << 20)),
        )
        .await;
        let miss = open(
            "miss",
            config
                .clone()
                .with_near_cache(NearCacheConfig::new().with_max_bytes(16)),
        )
        .await;
        let miss_tracking = open(
            "miss-tracking",
            config.clone().with_near_cache(
                NearCacheConfig::new()
                    .with_max_bytes(16)
                    .with_mode(NearCacheMode::Tracking),
            ),
        )
        .await;
        let plain = open("plain", config).await;
        let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("item:{i}")).collect();
        let cold_keys: Vec<String> = (0..COLD_KEY_COUNT).map(|i| format!("cold:{i}")).collect();
        let stored_keys = keys.iter().map(|key| format!("{PREFIX}:{key}")).collect();
        let value = vec![b'v'; 200];
        for key in &keys {
            plain
                .set_bytes(key, &value, Ttl::Never)
                .await
                .expect("populate");
        }
        for chunk in cold_keys.chunks(1_000) {
            let entries: Vec<(&str, &[u8], Ttl)> = chunk
                .iter()
                .map(|key| (key.as_str(), value.as_slice(), Ttl::Never))
                .collect();
            plain.set_many_bytes(&entries).await.expect("populate");
        }
        // Every key local on the hit side: a first read notes it, a
        // second keeps it, a third must be a hit (after the broadcast
        // invalidations of the writes above were applied).
        hit.sync_near_cache().await.expect("sync");
        for _ in 0..2 {
            for key in &keys {
                hit.get_bytes(key).await.expect("warm the near cache");
            }
        }
        let before = hit.near_cache_stats().expect("near cache").hits;
        for key in &keys {
            hit.get_bytes(key).await.expect("read");
        }
        let after = hit.near_cache_stats().expect("near cache").hits;
        assert_eq!(
            after - before,
            KEY_COUNT as u64,
            "every key is local before measuring"
        );
        Self {
            raw,
            tracked,
            bcast,
            hit,
            plain,
            miss,
            miss_tracking,
            keys,
            stored_keys,
            cold_keys,
            next_cold: AtomicUsize::new(0),
        }
    }
}

impl Fixture {
    /// The next of the cold keys, in turn.
    fn next_cold(&self) -> &str {
        &self.cold_keys[self.next_cold.fetch_add(1, Ordering::Relaxed) % COLD_KEY_COUNT]
    }
}

impl Workload for Fixture {
    type Op = Target;

    async fn run(&self, target: Target, index: usize) {
        let value = match target {
            Target::Raw => {
                let mut raw = self.raw.clone();
                let value: Option<Vec<u8>> = raw
                    .get(&self.stored_keys[index])
                    .await
                    .expect("raw GET must succeed");
                value
            }
            Target::RawPair => raw_pair(&mut self.raw.clone(), &self.stored_keys[index]).await,
            Target::RawPairTracked => {
                raw_pair(&mut self.tracked.clone(), &self.stored_keys[index]).await
            }
            Target::RawPairBcast => {
                raw_pair(&mut self.bcast.clone(), &self.stored_keys[index]).await
            }
            Target::Hit => self.hit.get_bytes(&self.keys[index]).await.expect("hit"),
            Target::Plain => self
                .plain
                .get_bytes(&self.keys[index])
                .await
                .expect("plain get"),
            Target::Miss => self.miss.get_bytes(&self.keys[index]).await.expect("miss"),
            Target::MissTracking => self
                .miss_tracking
                .get_bytes(&self.keys[index])
                .await
                .expect("miss"),
            Target::PlainCold => self
                .plain
                .get_bytes(self.next_cold())
                .await
                .expect("plain get"),
            Target::FirstMiss => self
                .miss
                .get_bytes(self.next_cold())
                .await
                .expect("first miss"),
        };
        assert!(value.is_some(), "no value at item {index}");
    }
}

/// `GET` + `PTTL` of `key` in one pipeline on `conn`: what a miss sends.
async fn raw_pair(conn: &mut impl redis::aio::ConnectionLike, key: &str) -> Option<Vec<u8>> {
    let (value, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
        .get(key)
        .pttl(key)
        .query_async(conn)
        .await
        .expect("raw GET + PTTL must succeed");
    assert_eq!(pttl, -1, "the keys have no TTL");
    value
}
