//! The cache-aside component: what a cache hit costs against a raw GET of
//! the same bytes, and how many loads a stampede of misses causes.
//!
//! ```text
//! cargo bench -p kv-module-tests --bench cache_aside
//! BENCH_SECS=0.3 BENCH_ROUNDS=21 cargo bench -p kv-module-tests --bench cache_aside
//! ```
//!
//! A [`TestRedis`] is started for the run.
//!
//! * **Hits.** For concurrency 1 and 50 (tasks sharing one store), the
//!   raw and cache cases run as 9 (`BENCH_ROUNDS`) pairs of short
//!   back-to-back runs
//!   (alternating which goes first); the medians of each side and of the
//!   per-pair ratios are kept, so that drift in a shared machine affects
//!   both alike. Raw: a redis-rs `ConnectionManager` (TCP_NODELAY, as
//!   `RedisStore`) doing `GET` of the stored entry's key, bytes not
//!   decoded. Cache: `KvCachedRepository::get` on a `RedisStore` (pool size 1):
//!   the same `GET`, plus decoding the entry (the value's JSON), the
//!   key formatting and the counters. Both read the same 1,000 entries,
//!   filled through the cache before any measurement. A second table
//!   shows the store's typed `get` of the same entry against the same raw
//!   `GET` (the JSON decoding alone), and a third the memory backend's
//!   cache hit against its typed `get`.
//! * **Peer.** The same hits against `cached` 4.1's `AsyncRedisCache`
//!   (feature `redis_tokio`: a redis-rs `MultiplexedConnection`, its
//!   defaults, so without TCP_NODELAY), holding the same 1,000 records in
//!   its own MessagePack envelope under its own keys, on the same server:
//!   `async_cache_get` is its `GET` and decode.
//! * **Stampedes.** Trials of 100 concurrent `get`s of a cold key per
//!   process, the repository taking 2 ms per load: one process; two
//!   processes (two caches on two connections) without and with the
//!   lease. The loads per trial are counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cached::AsyncRedisCache;
use cached::prelude::ConcurrentCachedAsync;
use kv_module::cache_aside::{CacheAsideConfig, KvCachedRepository, LeaseConfig, Repository};
use kv_module::registry::StoreRef;
use kv_module::{KvStore, KvStoreExt, MemoryStore, RedisConfig, RedisStore};
use kv_module_tests::TestRedis;
use kv_module_tests::bench::{Plan, Workload, median, print_machine, run_duration, run_rounds};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

const KEY_COUNT: u64 = 1_000;
const PREFIX: &str = "bench";
const KEY_PREFIX: &str = "item";
const CONCURRENCIES: [usize; 2] = [1, 50];
/// Paired rounds per case (`BENCH_ROUNDS` overrides it); the medians are
/// reported.
const DEFAULT_ROUNDS: usize = 9;
const DEFAULT_SECS: f64 = 0.5;
const WARM_UP: Duration = Duration::from_millis(100);
/// Stampede trials per scenario.
const TRIALS: u64 = 20;
/// Concurrent `get`s of one cold key per process in a stampede.
const STAMPEDE: usize = 100;
/// Simulated database time of one load in the stampede runs.
const LOAD_LATENCY: Duration = Duration::from_millis(2);

/// A value of about 200 bytes of JSON, shaped like a cached record (the
/// store bench's value).
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
    fn sample(id: u64) -> Self {
        Self {
            id,
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

/// Every key exists; loads are counted and may take a simulated time.
#[derive(Default)]
struct Profiles {
    loads: AtomicUsize,
    latency: Option<Duration>,
}

#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

impl Repository for Profiles {
    type Key = u64;
    type Value = Profile;
    type New = Profile;
    type Update = Profile;
    type Error = Never;

    async fn create(&self, profile: Profile) -> Result<(u64, Profile), Never> {
        Ok((profile.id, profile))
    }

    async fn load(&self, id: &u64) -> Result<Option<Profile>, Never> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if let Some(latency) = self.latency {
            tokio::time::sleep(latency).await;
        }
        Ok(Some(Profile::sample(*id)))
    }

    async fn update(&self, _: &u64, profile: Profile) -> Result<Profile, Never> {
        Ok(profile)
    }

    async fn delete(&self, _: &u64) -> Result<bool, Never> {
        Ok(true)
    }
}

fn config() -> CacheAsideConfig {
    CacheAsideConfig::new(
        StoreRef::new("bench"),
        KEY_PREFIX,
        Duration::from_secs(3600),
    )
}

#[derive(Clone, Copy, Debug)]
enum Target {
    /// redis-rs `GET` of the entry's bytes.
    Raw,
    /// `KvCachedRepository::get` on Redis.
    Cache,
    /// `KvStoreExt::get` of the entry decoded as the record (the entry is
    /// the record's JSON), on the cache's own Redis store: the JSON work
    /// without the cache layer.
    Typed,
    /// `KvStoreExt::get` of the entry decoded as the record, in memory.
    MemoryTyped,
    /// `KvCachedRepository::get` on the memory backend.
    MemoryCache,
    /// `cached` 4.1's `AsyncRedisCache::async_cache_get` of the same record
    /// (its MessagePack envelope), on the same server.
    Peer,
}

struct Fixture {
    raw: ConnectionManager,
    cache: KvCachedRepository<Profiles>,
    memory_store: Arc<dyn KvStore>,
    memory_cache: KvCachedRepository<Profiles>,
    /// `cached`'s Redis store, holding the same records.
    peer: AsyncRedisCache<u64, Profile>,
    /// `bench:item:{N}`, the stored keys.
    stored_keys: Vec<String>,
    /// `item:{N}`, the keys as the stores see them.
    keys: Vec<String>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let plan = Plan {
        rounds: run_rounds(DEFAULT_ROUNDS),
        key_count: KEY_COUNT as usize,
        warm_up: WARM_UP,
        run_for: run_duration(DEFAULT_SECS),
    };
    let server = TestRedis::start().await;
    let fixture = Arc::new(Fixture::new(&server).await);
    let entry_len = fixture.populate().await;
    print_machine("kv-module cache-aside benchmark", &fixture.raw).await;
    println!("{plan}, {KEY_COUNT} entries of {entry_len} bytes of JSON.\n");

    for (title, header, base, other) in [
        (
            "## Cache hits against a raw GET of the same bytes (Redis)",
            "| concurrency | raw GET ops/s | cache get ops/s | ratio (cache/raw) |",
            Target::Raw,
            Target::Cache,
        ),
        (
            "\n## Where the difference goes: the store's typed get of the same entry (JSON \
             decode of the record, no cache layer) against the raw GET",
            "| concurrency | raw GET ops/s | typed get ops/s | ratio (typed/raw) |",
            Target::Raw,
            Target::Typed,
        ),
        (
            "\n## Cache hits against `cached` 4.1's Redis store (`AsyncRedisCache`, \
             `async_cache_get` of the same record)",
            "| concurrency | cached ops/s | kv-module cache get ops/s | ratio (kv-module/cached) |",
            Target::Peer,
            Target::Cache,
        ),
        (
            "\n## Memory backend: cache hit against the store's typed get of the same entry",
            "| concurrency | typed get ops/s | cache get ops/s | ratio |",
            Target::MemoryTyped,
            Target::MemoryCache,
        ),
    ] {
        println!("{title}\n\n{header}\n|---:|---:|---:|---:|");
        for concurrency in CONCURRENCIES {
            let c = plan.compare(&fixture, base, other, concurrency).await;
            println!("| {concurrency} | {c} |");
        }
    }

    println!(
        "\n## Stampedes: loads per {STAMPEDE} concurrent misses of a cold key per process \
         ({TRIALS} trials, {} ms per load)\n",
        LOAD_LATENCY.as_millis()
    );
    println!("| backend | scenario | loads per trial: trials | median time to answer all |");
    println!("|---|---|---|---:|");
    for (label, processes, lease) in [
        ("one process", 1, false),
        ("two processes, no lease", 2, false),
        ("two processes, lease", 2, true),
    ] {
        let redis = stampede(|| server.store("bench", 1, PREFIX), processes, lease).await;
        println!("| Redis | {label} | {} |", redis);
        let memory_server = kv_module::MemoryServer::new();
        let memory = stampede(
            || {
                let server = memory_server.clone();
                async move { memory_store(&server) }
            },
            processes,
            lease,
        )
        .await;
        println!("| memory | {label} | {} |", memory);
    }

    fixture.cache.store().close().await;
    fixture.memory_store.close().await;
}

fn memory_store(server: &kv_module::MemoryServer) -> Arc<dyn KvStore> {
    let config = kv_module::MemoryConfig::new().with_prefix(PREFIX);
    Arc::new(MemoryStore::open("bench-memory", server, config).expect("a memory store"))
}

impl Fixture {
    async fn new(server: &TestRedis) -> Self {
        let info = redis::IntoConnectionInfo::into_connection_info(server.url(0))
            .expect("test Redis URL must parse")
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).expect("test Redis URL must parse");
        let raw = ConnectionManager::new(client)
            .await
            .expect("raw ConnectionManager must connect to the test Redis");
        let redis_config = RedisConfig::new(server.addr())
            .with_prefix(PREFIX)
            .with_pool_size(1);
        let store: Arc<dyn KvStore> = Arc::new(
            RedisStore::open("bench", redis_config)
                .await
                .expect("RedisStore must open on the test Redis"),
        );
        let repo = Arc::new(Profiles::default());
        let cache = KvCachedRepository::new("bench", store, Arc::clone(&repo), config())
            .expect("a valid cache config");
        let memory_store = memory_store(&kv_module::MemoryServer::new());
        let memory_cache =
            KvCachedRepository::new("bench-memory", Arc::clone(&memory_store), repo, config())
                .expect("a valid cache config");
        // The entry of key `i` is `{key_prefix}:{<i>}` (the key is the
        // hash tag it shares with its lease).
        let keys: Vec<String> = (0..KEY_COUNT)
            .map(|i| format!("{KEY_PREFIX}:{{{i}}}"))
            .collect();
        let stored_keys = keys.iter().map(|k| format!("{PREFIX}:{k}")).collect();
        let peer = AsyncRedisCache::builder("bench-cached")
            .ttl(Duration::from_secs(3600))
            .connection_string(&server.url(0))
            .build()
            .await
            .expect("cached's Redis store must connect to the test Redis");
        Self {
            raw,
            cache,
            memory_store,
            memory_cache,
            peer,
            stored_keys,
            keys,
        }
    }

    /// Fills every entry through both caches, checks that the raw client
    /// reads the cache's entry under the full key, and returns its size.
    async fn populate(&self) -> usize {
        for id in 0..KEY_COUNT {
            for cache in [&self.cache, &self.memory_cache] {
                cache
                    .get(&id)
                    .await
                    .expect("loading must succeed")
                    .expect("every key exists");
            }
        }
        let mut raw = self.raw.clone();
        let stored: Vec<u8> = raw
            .get(&self.stored_keys[0])
            .await
            .expect("raw GET of a filled entry must succeed");
        let expected = serde_json::to_vec(&Profile::sample(0)).expect("the sample encodes");
        assert_eq!(
            stored, expected,
            "the raw client must read the record's JSON under `{PREFIX}:{KEY_PREFIX}:{{0}}`"
        );
        let metrics = self.cache.metrics();
        assert_eq!(metrics.fills, KEY_COUNT, "{metrics:?}");
        for id in 0..KEY_COUNT {
            self.peer
                .async_cache_set(id, Profile::sample(id))
                .await
                .expect("cached's set must succeed");
        }
        stored.len()
    }

    async fn run_once(&self, target: Target, index: u64) {
        match target {
            Target::Raw => {
                let mut raw = self.raw.clone();
                let key = &self.stored_keys[index as usize];
                let value: Option<Vec<u8>> = raw.get(key).await.expect("raw GET must succeed");
                assert!(value.is_some(), "raw GET found no value at `{key}`");
            }
            Target::Cache => {
                let value = self
                    .cache
                    .get(&index)
                    .await
                    .expect("cache get must succeed");
                assert!(value.is_some(), "cache get found no value for {index}");
            }
            Target::Typed | Target::MemoryTyped => {
                let store = match target {
                    Target::Typed => self.cache.store(),
                    _ => &self.memory_store,
                };
                let key = &self.keys[index as usize];
                let value: Option<Profile> = store.get(key).await.expect("get must succeed");
                assert!(value.is_some(), "get found no value at `{key}`");
            }
            Target::Peer => {
                let value = self
                    .peer
                    .async_cache_get(&index)
                    .await
                    .expect("cached's get must succeed");
                assert!(value.is_some(), "cached found no value for {index}");
            }
            Target::MemoryCache => {
                let value = self
                    .memory_cache
                    .get(&index)
                    .await
                    .expect("cache get must succeed");
                assert!(value.is_some(), "cache get found no value for {index}");
            }
        }
    }
}

impl Workload for Fixture {
    type Op = Target;

    async fn run(&self, target: Target, index: usize) {
        self.run_once(target, index as u64).await;
    }
}

/// Runs [`TRIALS`] stampedes on fresh keys: [`STAMPEDE`] concurrent gets
/// per process, `processes` caches each on its own store from
/// `open_store`. Returns the table cells: the distribution of loads per
/// trial and the median time until every get was answered.
async fn stampede<F, Fut>(open_store: F, processes: usize, lease: bool) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future,
    Fut::Output: IntoStore,
{
    let repo = Arc::new(Profiles {
        loads: AtomicUsize::new(0),
        latency: Some(LOAD_LATENCY),
    });
    let lease_config = if lease {
        LeaseConfig::enabled()
    } else {
        LeaseConfig::default()
    };
    let mut caches = Vec::new();
    for _ in 0..processes {
        let store = open_store().await.into_store();
        let config = config().with_lease(lease_config);
        caches.push(
            KvCachedRepository::new("stampede", store, Arc::clone(&repo), config)
                .expect("a valid cache config"),
        );
    }
    // Fresh keys per scenario: the Redis database is shared by them.
    let base = 1_000_000 * (processes as u64) + if lease { 500_000 } else { 0 };
    let mut distribution = BTreeMap::<usize, u64>::new();
    let mut times = Vec::new();
    for trial in 0..TRIALS {
        let id = base + trial;
        let before = repo.loads.load(Ordering::SeqCst);
        let started = Instant::now();
        let mut handles = Vec::new();
        for cache in &caches {
            for _ in 0..STAMPEDE {
                let cache = cache.clone();
                handles.push(tokio::spawn(async move { cache.get(&id).await }));
            }
        }
        for handle in handles {
            let value = handle
                .await
                .expect("a get task panicked")
                .expect("a get failed");
            assert!(value.is_some());
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let loads = repo.loads.load(Ordering::SeqCst) - before;
        *distribution.entry(loads).or_default() += 1;
    }
    for cache in &caches {
        cache.store().close().await;
    }
    let cells: Vec<String> = distribution
        .iter()
        .map(|(loads, trials)| {
            format!(
                "{loads} load{}: {trials}",
                if *loads == 1 { "" } else { "s" }
            )
        })
        .collect();
    format!("{} | {:.1} ms", cells.join(", "), median(times))
}

/// A store opened by the stampede's `open_store`: a Redis store (owned)
/// or an already shared memory store.
trait IntoStore {
    fn into_store(self) -> Arc<dyn KvStore>;
}

impl IntoStore for RedisStore {
    fn into_store(self) -> Arc<dyn KvStore> {
        Arc::new(self)
    }
}

impl IntoStore for Arc<dyn KvStore> {
    fn into_store(self) -> Arc<dyn KvStore> {
        self
    }
}
