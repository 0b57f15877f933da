//! kv-module on a Redis Cluster against raw redis-rs `ClusterConnection`,
//! and the same operations on a cluster against one standalone server.
//!
//! ```text
//! cargo bench -p kv-module-tests --bench cluster
//! BENCH_SECS=1 cargo bench -p kv-module-tests --bench cluster
//! ```
//!
//! A [`TestCluster`] (three primaries, three replicas) and a [`TestRedis`]
//! are started for the run, all on this machine. Every case runs at 1 and
//! 50 tokio tasks sharing one store (or one raw connection), as 9
//! (`BENCH_ROUNDS`) pairs of short back-to-back runs alternating which side
//! goes first; the medians of each side and of the per-pair ratios are
//! reported (see [`kv_module_tests::bench::paired`]).
//!
//! * **typed set / get**: `KvStoreExt::set`/`get` through
//!   `Arc<dyn KvStore>` on a cluster `RedisStore` (pool size 1, prefix
//!   `bench`), against raw redis-rs `ClusterConnection` `SET`/`GET` of the
//!   same pre-encoded JSON bytes under the same keys (`bench:item:N`,
//!   1,000 keys over ~1,000 slots and every primary);
//! * **session get**: `KvSessions::get` (a record with ~250 bytes of
//!   data), against a raw `GET` of the same record key;
//! * **rate-limit check**: `KvRateLimiter::check` (fixed window, one key per
//!   client, 1,000 clients), against raw `EVALSHA` of the same Lua with the
//!   same arguments on the same keys; and against the naive hand-rolled
//!   limiter, a pipelined `INCR` + `PEXPIRE NX` on one key (one slot);
//! * **where the difference goes**: kv-module's bytes API against the same
//!   raw commands (the layer without JSON); the session get against a raw
//!   `GET` followed by decoding the record by hand; and the client work of
//!   a session get besides its `GET`, timed in one thread;
//! * **cluster against standalone**: each kv-module operation on the
//!   cluster store against the same on a standalone store, and the raw
//!   redis-rs operation on `ClusterConnection` against `ConnectionManager`.
//!
//! Every raw connection is configured as `RedisStore` configures its own
//! (TCP_NODELAY on, the same timeouts and retries), so a ratio measures
//! the layer, not a socket option.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kv_module::rate_limit::{Algorithm, KvRateLimiter, RateLimitPolicy};
use kv_module::registry::StoreRef;
use kv_module::session::{KvSessions, SessionConfig, SessionData, SessionId, Sessions};
use kv_module::store::key_slot;
use kv_module::{KvStore, KvStoreExt, RedisConfig, RedisStore, Ttl};
use kv_module_tests::bench::{
    Plan, Workload, ns_per_iter, print_machine, run_duration, run_rounds,
};
use kv_module_tests::{TestCluster, TestRedis};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use serde::{Deserialize, Serialize};

/// Items per case: keys, sessions, rate-limited clients.
const KEY_COUNT: usize = 1_000;
const PREFIX: &str = "bench";
const CONCURRENCIES: [usize; 2] = [1, 50];
const DEFAULT_ROUNDS: usize = 9;
const DEFAULT_SECS: f64 = 0.5;
const WARM_UP: Duration = Duration::from_millis(100);
/// A quota no bench run reaches, so every check is allowed (and writes).
const LIMIT: u64 = 10_000_000;
const WINDOW: Duration = Duration::from_secs(60);
/// `RedisConfig`'s defaults, given to the raw connections too.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The store bench's value: about 200 bytes of JSON, shaped like a cached
/// record.
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

/// Session data of about 250 bytes of JSON: a user, a tenant, roles, the
/// device and the login details an application keeps.
fn session_data(i: usize) -> SessionData {
    SessionData::new(format!("user-{i:06}"))
        .with_tenant("acme-industries")
        .with_metadata("roles", serde_json::json!(["member", "billing-admin"]))
        .with_metadata(
            "user_agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
        )
        .with_metadata("ip", "203.0.113.42")
        .with_metadata("locale", "en-GB")
        .with_metadata("mfa", true)
        .with_metadata("login_method", "password+totp")
}

/// A stored session record (`{"last_seen":..,"absolute_expiry":..,
/// "created_at":..,"user_key":"..",` then the data's fields) decoded
/// field by field, as an application reading the record without
/// kv-module would.
#[derive(Deserialize)]
#[allow(
    dead_code,
    reason = "every field is decoded, as a reader of the record would"
)]
struct RecordByHand {
    last_seen: u64,
    absolute_expiry: u64,
    created_at: u64,
    user_key: String,
    user_id: String,
    tenant_id: Option<String>,
    metadata: BTreeMap<String, serde_json::Value>,
}

/// The same record decoded the way kv-module's session decoder was
/// declared before af3e503 (the timestamps, then the [`SessionData`]
/// under `#[serde(flatten)]`), to show what that shape cost.
#[derive(Deserialize)]
#[allow(dead_code, reason = "decoded only to time the decoding")]
struct RecordFlattened {
    last_seen: u64,
    absolute_expiry: u64,
    created_at: u64,
    #[serde(flatten)]
    data: SessionData,
}

/// Where an operation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// Raw redis-rs `ClusterConnection`.
    RawCluster,
    /// Raw redis-rs `ConnectionManager` on the standalone server.
    RawStandalone,
    /// kv-module on the cluster.
    Cluster,
    /// kv-module on the standalone server.
    Standalone,
    /// kv-module's raw-bytes API (`get_bytes`/`set_bytes`) on the cluster:
    /// the layer without JSON.
    ClusterBytes,
}

/// What an operation does; on a raw side, the same commands on the same
/// keys with the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Set,
    Get,
    SessionGet,
    /// Fixed-window check; raw: `EVALSHA` of the same script.
    Check,
    /// Raw only: the naive limiter, `INCR` + `PEXPIRE NX` in one pipeline.
    IncrPexpire,
    /// Raw only: `GET` of the session record and decoding it as an
    /// application would by hand ([`RecordByHand`]).
    SessionGetDecoded,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Self::Set => "typed set",
            Self::Get => "typed get",
            Self::SessionGet => "session get",
            Self::Check => "rate-limit check",
            Self::IncrPexpire => "INCR + PEXPIRE",
            Self::SessionGetDecoded => "GET + decode",
        }
    }
}

/// kv-module's components on one backend, and the stored keys they use.
struct Kv {
    store: Arc<dyn KvStore>,
    sessions: KvSessions,
    limiter: KvRateLimiter,
    ids: Vec<SessionId>,
    /// `bench:session:{<tag>}:<handle>` of `ids`, for the raw `GET`.
    record_keys: Vec<String>,
}

struct Fixture {
    raw_cluster: ClusterConnection,
    raw_standalone: ConnectionManager,
    cluster: Kv,
    standalone: Kv,
    /// `item:N`: the keys kv-module is given.
    keys: Vec<String>,
    /// `bench:item:N`: the same keys as stored.
    stored_keys: Vec<String>,
    value: Profile,
    encoded: Vec<u8>,
    /// `ip:N`: the rate-limited clients.
    clients: Vec<String>,
    /// `bench:<policy>:ip:N`: the limiter's keys as stored.
    limit_keys: Vec<String>,
    /// `bench:naive:ip:N`: the naive limiter's counters.
    naive_keys: Vec<String>,
    script: redis::Script,
    script_args: [String; 3],
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let plan = Plan {
        rounds: run_rounds(DEFAULT_ROUNDS),
        key_count: KEY_COUNT,
        warm_up: WARM_UP,
        run_for: run_duration(DEFAULT_SECS),
    };
    let cluster = TestCluster::start().await;
    let server = TestRedis::start().await;
    let fixture = Arc::new(Fixture::new(&cluster, &server).await);
    let record_len = fixture.populate().await;

    print_machine("kv-module on a Redis Cluster", &fixture.raw_standalone).await;
    println!(
        "Cluster: 3 primaries + 3 replicas (`TestCluster`), standalone: one server \
         (`TestRedis`), all on this machine; redis-rs 1.8.\n"
    );
    println!(
        "{plan}, {KEY_COUNT} items per case; value {} bytes of JSON; session data {} bytes of \
         JSON, record {record_len} bytes; every check allowed (limit {LIMIT} per {} s).\n",
        fixture.encoded.len(),
        serde_json::to_vec(&session_data(0))
            .expect("session data encodes")
            .len(),
        WINDOW.as_secs()
    );
    fixture.print_spread().await;

    let cases = [Op::Set, Op::Get, Op::SessionGet, Op::Check];
    let compare = |base: (Side, Op), other: (Side, Op), concurrency: usize| {
        plan.compare(&fixture, base, other, concurrency)
    };

    println!("## kv-module against raw redis-rs `ClusterConnection`, on the cluster\n");
    println!(
        "(rate-limit check: against raw `EVALSHA` of the same script)\n\n\
         | operation | concurrency | raw ops/s | kv-module ops/s | ratio (kv/raw) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for concurrency in CONCURRENCIES {
        for op in cases {
            let c = compare((Side::RawCluster, op), (Side::Cluster, op), concurrency).await;
            println!("| {} | {concurrency} | {c} |", op.label());
        }
    }

    println!(
        "\n## Where the difference goes: kv-module's raw-bytes API (no JSON) against raw \
         redis-rs, on the cluster\n"
    );
    println!("| operation | concurrency | raw ops/s | kv-module bytes ops/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    for concurrency in CONCURRENCIES {
        for op in [Op::Set, Op::Get] {
            let c = compare(
                (Side::RawCluster, op),
                (Side::ClusterBytes, op),
                concurrency,
            )
            .await;
            let label = if op == Op::Set {
                "set_bytes"
            } else {
                "get_bytes"
            };
            println!("| {label} | {concurrency} | {c} |");
        }
    }
    println!(
        "\nThe session record decoded by hand: raw `GET` + serde decoding of the record (no \
         kv-module) against `KvSessions::get`, on the cluster.\n"
    );
    println!("| concurrency | raw GET + decode ops/s | session get ops/s | ratio |");
    println!("|---:|---:|---:|---:|");
    for concurrency in CONCURRENCIES {
        let c = compare(
            (Side::RawCluster, Op::SessionGetDecoded),
            (Side::Cluster, Op::SessionGet),
            concurrency,
        )
        .await;
        println!("| {concurrency} | {c} |");
    }
    fixture.print_client_costs().await;

    println!(
        "\n## Rate-limit check against the naive limiter (raw `INCR` + `PEXPIRE NX`, one \
         pipeline), on the cluster\n"
    );
    println!("| concurrency | INCR+PEXPIRE ops/s | checks/s | ratio (check/naive) |");
    println!("|---:|---:|---:|---:|");
    for concurrency in CONCURRENCIES {
        let c = compare(
            (Side::RawCluster, Op::IncrPexpire),
            (Side::Cluster, Op::Check),
            concurrency,
        )
        .await;
        println!("| {concurrency} | {c} |");
    }

    println!("\n## Cluster against standalone: the same operation on both\n");
    println!(
        "| operation | concurrency | kv standalone ops/s | kv cluster ops/s | ratio (cluster/standalone) \
         | raw standalone ops/s | raw cluster ops/s | raw ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for concurrency in CONCURRENCIES {
        for op in cases {
            let kv = compare((Side::Standalone, op), (Side::Cluster, op), concurrency).await;
            let raw = compare(
                (Side::RawStandalone, op),
                (Side::RawCluster, op),
                concurrency,
            )
            .await;
            println!("| {} | {concurrency} | {kv} | {raw} |", op.label());
        }
    }

    fixture.cluster.store.close().await;
    fixture.standalone.store.close().await;
}

impl Kv {
    async fn open(config: RedisConfig, clients: &[String]) -> Self {
        let store: Arc<dyn KvStore> = Arc::new(
            RedisStore::open("bench", config.with_prefix(PREFIX).with_pool_size(1))
                .await
                .expect("RedisStore must open on the test servers"),
        );
        let sessions = KvSessions::new(store.clone(), SessionConfig::new(StoreRef::new("bench")))
            .expect("the bench session config is valid");
        let policy = RateLimitPolicy::new(Algorithm::FixedWindow, LIMIT, WINDOW);
        let limiter = KvRateLimiter::new(store.clone(), "api", policy)
            .expect("the bench rate-limit policy is valid");
        let mut ids = Vec::with_capacity(KEY_COUNT);
        for i in 0..KEY_COUNT {
            ids.push(
                sessions
                    .create(session_data(i))
                    .await
                    .expect("session create must succeed"),
            );
        }
        let record_keys = ids
            .iter()
            .map(|id| {
                format!(
                    "{PREFIX}:session:{{{}}}:{}",
                    &id.expose()[..16],
                    id.handle()
                )
            })
            .collect();
        // One check per client, so that every limiter key exists and the
        // timed checks take the common path (an existing counter).
        for client in clients {
            let decision = limiter.check(client).await.expect("check must succeed");
            assert!(decision.allowed, "the bench quota must never be reached");
        }
        Self {
            store,
            sessions,
            limiter,
            ids,
            record_keys,
        }
    }
}

impl Fixture {
    async fn new(cluster: &TestCluster, server: &TestRedis) -> Self {
        // As `RedisStore` builds its cluster client (topology.rs).
        let raw_cluster = ClusterClientBuilder::new(cluster.seed_urls())
            .connection_timeout(CONNECT_TIMEOUT.min(RESPONSE_TIMEOUT))
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true))
            .build()
            .expect("the cluster client settings are valid")
            .get_async_connection()
            .await
            .expect("raw ClusterConnection must connect to the test cluster");
        // As `RedisStore` builds its standalone connection (connection.rs).
        let info = redis::IntoConnectionInfo::into_connection_info(server.url(0))
            .expect("test Redis URL must parse")
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).expect("test Redis URL must parse");
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let raw_standalone = ConnectionManager::new_with_config(client, manager_config)
            .await
            .expect("raw ConnectionManager must connect to the test Redis");

        let clients: Vec<String> = (0..KEY_COUNT).map(|i| format!("ip:{i}")).collect();
        let cluster_kv = Kv::open(RedisConfig::cluster(cluster.seed_nodes()), &clients).await;
        let standalone_kv = Kv::open(RedisConfig::new(server.addr()), &clients).await;
        let limit_keys = clients
            .iter()
            .map(|client| format!("{PREFIX}:{}", cluster_kv.limiter.stored_key(client)))
            .collect();
        let naive_keys = clients
            .iter()
            .map(|client| format!("{PREFIX}:naive:{client}"))
            .collect();
        let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("item:{i}")).collect();
        let stored_keys = keys.iter().map(|key| format!("{PREFIX}:{key}")).collect();
        let value = Profile::sample();
        let encoded = serde_json::to_vec(&value).expect("the sample value must encode");
        let window_ms = WINDOW.as_millis().to_string();
        Self {
            raw_cluster,
            raw_standalone,
            cluster: cluster_kv,
            standalone: standalone_kv,
            keys,
            stored_keys,
            value,
            encoded,
            clients,
            limit_keys,
            naive_keys,
            script: redis::Script::new(Algorithm::FixedWindow.script().lua()),
            script_args: [LIMIT.to_string(), window_ms, "1".to_owned()],
        }
    }

    fn kv(&self, side: Side) -> &Kv {
        match side {
            Side::Standalone | Side::RawStandalone => &self.standalone,
            Side::Cluster | Side::ClusterBytes | Side::RawCluster => &self.cluster,
        }
    }

    /// Writes every item through both stores, and checks that the raw
    /// clients see what kv-module wrote under the keys they use, so that
    /// both sides of a comparison do the same work. The session record's
    /// length.
    async fn populate(&self) -> usize {
        for key in &self.keys {
            for kv in [&self.cluster, &self.standalone] {
                kv.store
                    .set(key, &self.value, Ttl::Never)
                    .await
                    .expect("populating the key space must succeed");
            }
        }
        let mut record_len = 0;
        for side in [Side::RawCluster, Side::RawStandalone] {
            let stored: Option<Vec<u8>> = self.raw_get(side, &self.stored_keys[0]).await;
            assert_eq!(
                stored.as_deref(),
                Some(self.encoded.as_slice()),
                "{side:?}: kv-module must store the value as the same JSON under `{PREFIX}:<key>`"
            );
            let record = self
                .raw_get(side, &self.kv(side).record_keys[0])
                .await
                .unwrap_or_else(|| panic!("{side:?}: no session record at the raw key"));
            record_len = record.len();
            let counter = self
                .raw_get(side, &self.limit_keys[0])
                .await
                .unwrap_or_else(|| panic!("{side:?}: no rate-limit counter at the raw key"));
            assert_eq!(counter, b"1", "{side:?}: one check so far on `ip:0`");
        }
        record_len
    }

    /// Client CPU of what `KvSessions::get` does besides its `GET`,
    /// one thread, no I/O.
    async fn print_client_costs(&self) {
        const N: u32 = 100_000;
        let record = self
            .raw_get(Side::RawCluster, &self.cluster.record_keys[0])
            .await
            .expect("the session record exists");
        let id = &self.cluster.ids[0];
        let handle = ns_per_iter(N, || {
            std::hint::black_box(std::hint::black_box(id).handle());
        });
        let by_hand = ns_per_iter(N, || {
            let decoded: RecordByHand = serde_json::from_slice(std::hint::black_box(&record))
                .expect("a session record decodes");
            std::hint::black_box(decoded);
        });
        let flattened = ns_per_iter(N, || {
            let decoded: RecordFlattened = serde_json::from_slice(std::hint::black_box(&record))
                .expect("a session record decodes");
            std::hint::black_box(decoded);
        });
        println!(
            "\nClient work of a session get besides the `GET`, one thread: the id's handle \
             (SHA-256 + base64) {handle:.0} ns; decoding the {}-byte record field by field \
             {by_hand:.0} ns, with the data under `#[serde(flatten)]` (kv-module's shape before af3e503) \
             {flattened:.0} ns.",
            record.len()
        );
    }

    async fn raw_get(&self, side: Side, key: &str) -> Option<Vec<u8>> {
        let cmd = redis::Cmd::get(key);
        match side {
            Side::RawCluster => cmd.query_async(&mut self.raw_cluster.clone()).await,
            _ => cmd.query_async(&mut self.raw_standalone.clone()).await,
        }
        .expect("raw GET must succeed")
    }

    /// How the keys spread over slots and primaries.
    async fn print_spread(&self) {
        let primaries = slot_owners(&mut self.raw_cluster.clone()).await;
        let record_keys = &self.cluster.record_keys;
        for (label, keys) in [
            ("items", &self.stored_keys),
            ("session records", record_keys),
            ("rate-limit keys", &self.limit_keys),
        ] {
            let slots: BTreeSet<u16> = keys.iter().map(|key| key_slot(key)).collect();
            let mut per_primary: BTreeMap<u16, usize> = BTreeMap::new();
            for key in keys.iter() {
                let slot = key_slot(key);
                let port = primaries
                    .iter()
                    .find(|(start, end, _)| (*start..=*end).contains(&slot))
                    .map(|(_, _, port)| *port)
                    .unwrap_or_else(|| panic!("no primary serves slot {slot}"));
                *per_primary.entry(port).or_default() += 1;
            }
            let spread: Vec<String> = per_primary.values().map(usize::to_string).collect();
            println!(
                "* {label}: {} keys in {} slots; per primary {}",
                keys.len(),
                slots.len(),
                spread.join(" / ")
            );
        }
        println!();
    }

    async fn raw_once<C: ConnectionLike + Clone + Send>(
        &self,
        conn: &C,
        kv: &Kv,
        op: Op,
        index: usize,
    ) {
        // A clone is an `Arc` bump; every clone shares the connection(s).
        let mut conn = conn.clone();
        match op {
            Op::Set => {
                let () = redis::Cmd::set(&self.stored_keys[index], self.encoded.as_slice())
                    .query_async(&mut conn)
                    .await
                    .expect("raw SET must succeed");
            }
            Op::Get => {
                let value: Option<Vec<u8>> = redis::Cmd::get(&self.stored_keys[index])
                    .query_async(&mut conn)
                    .await
                    .expect("raw GET must succeed");
                assert!(value.is_some(), "raw GET found no value");
            }
            Op::SessionGet => {
                let value: Option<Vec<u8>> = redis::Cmd::get(&kv.record_keys[index])
                    .query_async(&mut conn)
                    .await
                    .expect("raw GET must succeed");
                assert!(value.is_some(), "raw GET found no session record");
            }
            Op::Check => {
                let mut invocation = self.script.prepare_invoke();
                invocation.key(&self.limit_keys[index]);
                for arg in &self.script_args {
                    invocation.arg(arg.as_str());
                }
                let reply: Vec<i64> = invocation
                    .invoke_async(&mut conn)
                    .await
                    .expect("raw EVALSHA must succeed");
                assert_eq!(
                    reply.first(),
                    Some(&1),
                    "the bench quota must never be reached"
                );
            }
            Op::SessionGetDecoded => {
                let bytes: Option<Vec<u8>> = redis::Cmd::get(&kv.record_keys[index])
                    .query_async(&mut conn)
                    .await
                    .expect("raw GET must succeed");
                let bytes = bytes.expect("raw GET found no session record");
                let record: RecordByHand =
                    serde_json::from_slice(&bytes).expect("a session record decodes");
                assert!(
                    !record.user_id.is_empty() && u128::from(record.absolute_expiry) > unix_ms(),
                    "the bench sessions are live"
                );
            }
            Op::IncrPexpire => {
                let key = &self.naive_keys[index];
                let (count, _armed): (i64, i64) = redis::pipe()
                    .cmd("INCR")
                    .arg(key)
                    .cmd("PEXPIRE")
                    .arg(key)
                    .arg(WINDOW.as_millis() as u64)
                    .arg("NX")
                    .query_async(&mut conn)
                    .await
                    .expect("raw INCR + PEXPIRE must succeed");
                assert!(count > 0, "INCR counts from 1");
            }
        }
    }

    async fn kv_once(&self, kv: &Kv, op: Op, index: usize) {
        match op {
            Op::Set => kv
                .store
                .set(&self.keys[index], &self.value, Ttl::Never)
                .await
                .expect("kv-module set must succeed"),
            Op::Get => {
                let value: Option<Profile> = kv
                    .store
                    .get(&self.keys[index])
                    .await
                    .expect("kv-module get must succeed");
                assert!(value.is_some(), "kv-module get found no value");
            }
            Op::SessionGet => {
                let session = kv
                    .sessions
                    .get(&kv.ids[index])
                    .await
                    .expect("session get must succeed");
                assert!(session.is_some(), "the bench sessions do not expire");
            }
            Op::Check => {
                let decision = kv
                    .limiter
                    .check(&self.clients[index])
                    .await
                    .expect("the check must succeed");
                assert!(decision.allowed, "the bench quota must never be reached");
            }
            Op::IncrPexpire | Op::SessionGetDecoded => {
                unreachable!("{op:?} is measured on raw redis-rs only")
            }
        }
    }

    async fn kv_bytes_once(&self, op: Op, index: usize) {
        let store = &self.cluster.store;
        let key = &self.keys[index];
        match op {
            Op::Set => store
                .set_bytes(key, &self.encoded, Ttl::Never)
                .await
                .expect("kv-module set_bytes must succeed"),
            Op::Get => {
                let value = store
                    .get_bytes(key)
                    .await
                    .expect("kv-module get_bytes must succeed");
                assert!(value.is_some(), "kv-module get_bytes found no value");
            }
            _ => unreachable!("the bytes API is measured for set and get"),
        }
    }
}

impl Workload for Fixture {
    type Op = (Side, Op);

    async fn run(&self, (side, op): (Side, Op), index: usize) {
        match (side, op) {
            (Side::RawCluster, op) => {
                self.raw_once(&self.raw_cluster, &self.cluster, op, index)
                    .await;
            }
            (Side::RawStandalone, op) => {
                self.raw_once(&self.raw_standalone, &self.standalone, op, index)
                    .await;
            }
            (Side::Cluster, op) => self.kv_once(&self.cluster, op, index).await,
            (Side::Standalone, op) => self.kv_once(&self.standalone, op, index).await,
            (Side::ClusterBytes, op) => self.kv_bytes_once(op, index).await,
        }
    }
}

/// This host's clock in Unix milliseconds.
fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis())
}

/// `(first slot, last slot, primary port)` of every slot range, from
/// `CLUSTER SLOTS`.
async fn slot_owners(conn: &mut ClusterConnection) -> Vec<(u16, u16, u16)> {
    let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(conn)
        .await
        .expect("CLUSTER SLOTS must succeed");
    ranges
        .iter()
        .map(|range| {
            let int = |value: &redis::Value| match value {
                redis::Value::Int(n) => u16::try_from(*n).expect("slots and ports fit u16"),
                other => panic!("CLUSTER SLOTS: unexpected {other:?}"),
            };
            let primary = match range.get(2) {
                Some(redis::Value::Array(node)) => int(&node[1]),
                other => panic!("CLUSTER SLOTS: unexpected node {other:?}"),
            };
            (int(&range[0]), int(&range[1]), primary)
        })
        .collect()
}
