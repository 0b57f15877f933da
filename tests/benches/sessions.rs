//! Session lookup and OTP `verify`, in round trips and operations per
//! second, against a raw `GET` of the same bytes and against
//! tower-sessions' Redis store, on the same server in the same run and
//! process.
//!
//! ```text
//! cargo bench -p kv-module-tests --bench sessions
//! BENCH_OPS=20000 BENCH_ROUNDS=15 cargo bench -p kv-module-tests --bench sessions
//! ```
//!
//! A [`TestRedis`] is started for the run. Every run is a fixed number of
//! operations (`BENCH_OPS`, default 10,000) spread over 1 or 50 tokio
//! tasks; a session lookup is compared in rounds (`BENCH_ROUNDS`, default
//! 9) of six runs — raw `GET`, kv-module's store `GET`, kv-module's
//! hash + `GET`, kv-module `load`, tower-sessions, fred `GET` — whose order
//! rotates from round to round, and the medians of each side and of the
//! per-round ratios are reported, so drift on a shared machine affects all
//! six alike. OTP `verify` is paired with the raw `GET` the same way.
//!
//! Each of the 1,000 sessions holds the same realistic data on both
//! sides, about 250 bytes as JSON: an e-mail user id, a tenant, roles, a
//! display name, a CSRF token, a user agent, the login time.
//!
//! `BENCH_PROFILE=raw|store|hashed|kv|tower|fred` runs only that side's lookup, from 50
//! tasks, for `BENCH_ROUNDS` runs, and prints its rate: a steady load for
//! `perf record`.
//!
//! * raw: a redis-rs `ConnectionManager` (TCP_NODELAY on, as `RedisStore`
//!   has it) doing `GET` of the very records kv-module reads
//!   (`bench:session:{<tag>}:<handle>`);
//! * store GET: [`KvStore::get_bytes`] of the same records through that
//!   `RedisStore` (deadline, circuit breaker, metrics, key prefix): what
//!   kv-module's store adds to a raw `GET`;
//! * hash + GET: what `load` does before decoding — the record key from
//!   the id (its SHA-256 handle, [`SessionId::handle`]) and the store
//!   `GET` — without decoding the record: the floor of any `load`, and,
//!   against `load`, what decoding costs;
//! * kv-module: [`Sessions::load`] (what the axum extractor calls) through
//!   `RedisStore` (pool size 1), refresh interval 10 minutes so no refresh
//!   falls in the run: hashing the id, the `GET`, decoding the record;
//! * fred GET: a plain `GET` of the same records kv-module reads, on the
//!   fred client tower-sessions-redis-store uses (its own connection,
//!   TCP_NODELAY on): what the peer's client costs, apart from the peer;
//! * tower-sessions: `SessionStore::load` of tower-sessions-redis-store
//!   on one fred `Client` (one connection, TCP_NODELAY on): the `GET` of
//!   the id and a MessagePack decode of the record. It keys records by the
//!   id itself (no hash) and has no absolute timeout;
//! * OTP `verify`: [`KvOneTimeCodes::verify`] of the right code (the common
//!   path: compare and consume), one code per subject, issued before the
//!   timed run; it computes the HMAC and runs one script.
//!
//! Each lookup run also reads the bench process's CPU time (every thread,
//! `CLOCK_PROCESS_CPUTIME_ID`; the server is another process):
//! what a lookup costs the client, which on this project's two-vCPU
//! machines moves less than a run's rate. At 1 task the rate is mostly
//! the time to wake an idle vCPU when the reply arrives, and it swings
//! between sides that do the same work (see docs/BENCHMARKS.md).
//!
//! Round trips are counted separately from `INFO commandstats` over 1,000
//! operations: the commands the client sent, and those a script ran inside
//! the server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_module::otp::{IssueOutcome, KvOneTimeCodes, OneTimeCodes, OtpConfig};
use kv_module::registry::StoreRef;
use kv_module::session::{KvSessions, SessionConfig, SessionId, Sessions};
use kv_module::{KvStore, MemoryStore, RedisConfig, RedisStore, Secret};
use kv_module_tests::TestRedis;
use kv_module_tests::bench::session_fixture::session_data;
use kv_module_tests::bench::{
    Comparison, median, median_of, paired, per_op, print_machine, process_cpu_ns, run_rounds,
    thousands,
};
use kv_module_tests::command_stats::{command_calls, delta};
use redis::aio::ConnectionManager;
use tower_sessions::session::Id;
use tower_sessions::session_store::SessionStore;
use tower_sessions_peer::{FredClient, TowerRedisStore, fred_client, tower_store};
use tower_sessions_redis_store::fred::prelude::KeysInterface;

#[path = "shared/tower_sessions_peer.rs"]
mod tower_sessions_peer;

const PREFIX: &str = "bench";
const SESSION_COUNT: usize = 1_000;
const CONCURRENCIES: [usize; 2] = [1, 50];
/// Rounds per case (`BENCH_ROUNDS`); the medians are reported.
const DEFAULT_ROUNDS: usize = 9;
const DEFAULT_OPS: usize = 10_000;
/// Operations counted for the round-trip table.
const COUNTED_OPS: usize = 1_000;
const SECRET: &str = "a benchmark secret of at least 32 bytes";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    RawGet,
    StoreGet,
    HashedGet,
    FredGet,
    SessionLoad,
    TowerLoad,
    OtpVerify,
}

/// One backend's components and their inputs.
struct Side {
    sessions: KvSessions,
    otp: KvOneTimeCodes,
    ids: Vec<SessionId>,
}

struct Fixture {
    raw: ConnectionManager,
    /// The `RedisStore` of `redis` (for the store `GET`s).
    store: Arc<dyn KvStore>,
    /// The stored keys of `redis.ids`' records, for the raw `GET`.
    raw_keys: Vec<String>,
    redis: Side,
    memory: Side,
    tower: TowerRedisStore<FredClient>,
    tower_ids: Vec<Id>,
    fred: FredClient,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let ops = run_ops();
    let rounds = run_rounds(DEFAULT_ROUNDS);
    let server = TestRedis::start().await;
    let fixture = Arc::new(Fixture::new(&server).await);

    if let Ok(side) = std::env::var("BENCH_PROFILE") {
        let target = match side.as_str() {
            "raw" => Target::RawGet,
            "store" => Target::StoreGet,
            "hashed" => Target::HashedGet,
            "kv" => Target::SessionLoad,
            "tower" => Target::TowerLoad,
            "fred" => Target::FredGet,
            _ => {
                panic!("BENCH_PROFILE must be raw, store, hashed, kv, tower or fred, got `{side}`")
            }
        };
        for round in 0..rounds {
            let cpu_before = process_cpu_ns();
            let rate = measure(&fixture, false, target, 50, ops, &format!("p{round}")).await;
            let cpu = process_cpu_ns().saturating_sub(cpu_before);
            println!(
                "{side}, 50 tasks: {} ops/s, {:.1} µs of CPU per lookup",
                thousands(rate),
                cpu as f64 / 1_000.0 / ops as f64
            );
        }
        return;
    }

    print_machine("kv-module sessions and OTP benchmark", &fixture.raw).await;
    println!(
        "* tower-sessions 0.14.0, tower-sessions-redis-store 0.16.0 (fred 10)\n\n\
         {ops} operations per run, medians of {rounds} rounds, {SESSION_COUNT} sessions; \
         every verify is of the right code (one fresh code per subject)."
    );
    fixture.print_sizes().await;

    println!(
        "Session lookup, operations per second: a raw `GET` of kv-module's record on \
         redis-rs (kv-module's client) and on fred (tower-sessions-redis-store's), the same \
         `GET` through kv-module's store, the store `GET` by session id (the id's hash, then \
         the `GET`; no decoding), kv-module `load`, tower-sessions `load`:\n"
    );
    let results = {
        let mut results = Vec::new();
        for concurrency in CONCURRENCIES {
            results.push((
                concurrency,
                lookup_rounds(&fixture, concurrency, ops, rounds).await,
            ));
        }
        results
    };
    let titles: Vec<&str> = LOOKUP_SIDES.iter().map(|(_, title)| *title).collect();
    println!("| concurrency | {} |", titles.join(" | "));
    println!("|---:|{}", "---:|".repeat(titles.len()));
    for (concurrency, lookup) in &results {
        let cells: Vec<String> = lookup.rates.iter().map(|rate| thousands(*rate)).collect();
        println!("| {concurrency} | {} |", cells.join(" | "));
    }
    println!("\nThe same runs, medians of the per-round ratios:\n");
    let titles: Vec<&str> = LOOKUP_RATIOS.iter().map(|(_, _, title)| *title).collect();
    println!("| concurrency | {} |", titles.join(" | "));
    println!("|---:|{}", "---:|".repeat(titles.len()));
    for (concurrency, lookup) in &results {
        let cells: Vec<String> = lookup.ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!("| {concurrency} | {} |", cells.join(" | "));
    }
    println!(
        "\nThe same runs, the bench process's CPU time per lookup in µs (every thread of the \
         client; the redis-server is another process; medians), and the raw `GET`'s and \
         tower-sessions' CPU time over kv-module `load`'s (above 1: `load` costs the client \
         less):\n"
    );
    let titles: Vec<&str> = LOOKUP_SIDES.iter().map(|(_, title)| *title).collect();
    println!(
        "| concurrency | {} | raw GET / load | tower-sessions / load |",
        titles.join(" | ")
    );
    println!("|---:|{}", "---:|".repeat(titles.len() + 2));
    for (concurrency, lookup) in &results {
        let cells: Vec<String> = lookup.cpu_us.iter().map(|us| format!("{us:.1}")).collect();
        let load = lookup.cpu_us[3];
        println!(
            "| {concurrency} | {} | {:.2} | {:.2} |",
            cells.join(" | "),
            lookup.cpu_us[0] / load,
            lookup.cpu_us[4] / load
        );
    }

    println!("\nOTP verify against a raw GET:\n");
    println!("| operation | concurrency | raw GET ops/s | ops/s | ratio (op/GET) |");
    println!("|---|---:|---:|---:|---:|");
    for concurrency in CONCURRENCIES {
        let c = compare(&fixture, Target::OtpVerify, concurrency, ops, rounds).await;
        println!("| otp verify | {concurrency} | {c} |");
    }

    println!("\nRound trips and server-side commands per operation ({COUNTED_OPS} each):\n");
    println!("| operation | client commands per op | commands run inside the server per op |");
    println!("|---|---|---|");
    let mut conn = server.raw(0).await;
    let ops_counted = COUNTED_OPS as u64;
    for (target, label) in [
        (Target::RawGet, "raw GET"),
        (Target::StoreGet, "kv-module store GET"),
        (Target::FredGet, "fred GET"),
        (Target::SessionLoad, "kv-module session load"),
        (Target::TowerLoad, "tower-sessions load"),
        (Target::OtpVerify, "otp verify"),
    ] {
        let subjects = prepare(&fixture, false, target, COUNTED_OPS, "counted").await;
        let before = command_calls(&mut conn).await;
        for i in 0..COUNTED_OPS {
            fixture.run_once(false, target, &subjects, i).await;
        }
        let after = command_calls(&mut conn).await;
        let mut calls = delta(&before, &after);
        let (client, inside) = match target {
            Target::OtpVerify => {
                let evalsha = calls.remove("evalsha").unwrap_or(0);
                let client = format!("evalsha {:.2}", evalsha as f64 / ops_counted as f64);
                (client, per_op(&calls, ops_counted))
            }
            _ => (per_op(&calls, ops_counted), "—".to_owned()),
        };
        println!("| {label} | {client} | {inside} |");
    }

    println!("\nMemoryStore (same operations, no network):\n");
    println!("| operation | concurrency | ops/s |");
    println!("|---|---:|---:|");
    for concurrency in CONCURRENCIES {
        for (target, label) in [
            (Target::SessionLoad, "session load"),
            (Target::OtpVerify, "otp verify"),
        ] {
            let runs = median_of(rounds, |round| {
                let tag = format!("mem-{concurrency}-{round}");
                let fixture = &fixture;
                async move { measure(fixture, true, target, concurrency, ops, &tag).await }
            })
            .await;
            println!("| {label} | {concurrency} | {} |", thousands(runs));
        }
    }
}

impl Side {
    async fn new(store: Arc<dyn KvStore>) -> Self {
        let config = SessionConfig::new(StoreRef::new("bench"))
            .with_refresh_interval(Duration::from_secs(600));
        let sessions =
            KvSessions::new(store.clone(), config).expect("the bench session config is valid");
        let otp = KvOneTimeCodes::new(
            store,
            OtpConfig::new(StoreRef::new("bench"))
                .with_secret(Secret::new(SECRET))
                .with_daily_cap(1_000_000),
        )
        .expect("the bench otp config is valid");
        let mut ids = Vec::with_capacity(SESSION_COUNT);
        for i in 0..SESSION_COUNT {
            let id = sessions
                .create(session_data(i))
                .await
                .expect("create must succeed");
            ids.push(id);
        }
        Self { sessions, otp, ids }
    }
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
        let config = RedisConfig::new(server.addr())
            .with_prefix(PREFIX)
            .with_pool_size(1);
        let redis_store: Arc<dyn KvStore> = Arc::new(
            RedisStore::open("bench", config)
                .await
                .expect("RedisStore must open on the test Redis"),
        );
        let memory_store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("bench-memory", PREFIX));
        let redis = Side::new(redis_store.clone()).await;
        let memory = Side::new(memory_store).await;
        let raw_keys = redis
            .ids
            .iter()
            .map(|id| {
                format!(
                    "{PREFIX}:session:{{{}}}:{}",
                    &id.expose()[..16],
                    id.handle()
                )
            })
            .collect();
        let (tower, tower_ids) = tower_store(server, SESSION_COUNT).await;
        Self {
            raw,
            store: redis_store,
            raw_keys,
            redis,
            memory,
            tower,
            tower_ids,
            fred: fred_client(server).await,
        }
    }

    /// Prints the sizes of a stored record on each side.
    async fn print_sizes(&self) {
        let data = serde_json::to_vec(&session_data(0)).expect("session data serializes");
        let kv: Vec<u8> = redis::cmd("GET")
            .arg(&self.raw_keys[0])
            .query_async(&mut self.raw.clone())
            .await
            .expect("the kv-module record is there");
        let tower: Vec<u8> = redis::cmd("GET")
            .arg(self.tower_ids[0].to_string())
            .query_async(&mut self.raw.clone())
            .await
            .expect("the tower-sessions record is there");
        println!(
            "Session data: {} bytes as JSON; stored record: kv-module {} bytes (JSON with its \
             timestamps and user key), tower-sessions {} bytes (MessagePack with its id and \
             expiry).\n",
            data.len(),
            kv.len(),
            tower.len()
        );
    }

    fn side(&self, memory: bool) -> &Side {
        if memory { &self.memory } else { &self.redis }
    }

    /// Operation number `i`.
    async fn run_once(&self, memory: bool, target: Target, codes: &[(String, String)], i: usize) {
        let side = self.side(memory);
        match target {
            Target::RawGet => {
                let mut raw = self.raw.clone();
                let value: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&self.raw_keys[i % SESSION_COUNT])
                    .query_async(&mut raw)
                    .await
                    .expect("raw GET must succeed");
                assert!(value.is_some(), "raw GET found no session record");
            }
            Target::StoreGet => {
                // The caller's key: the stored one without the prefix.
                let key = &self.raw_keys[i % SESSION_COUNT][PREFIX.len() + 1..];
                let value = self
                    .store
                    .get_bytes(key)
                    .await
                    .expect("store GET must succeed");
                assert!(value.is_some(), "store GET found no session record");
            }
            Target::HashedGet => {
                // The key `load` builds, from the hash computed anew as for
                // every request; with one allocation more than `load`'s
                // (`handle()` returns its own `String`, copied here), so
                // this side slightly overstates the hash's cost.
                let id = &side.ids[i % SESSION_COUNT];
                let (tag, handle) = (&id.expose()[..16], id.handle());
                let mut key = String::with_capacity(64 + handle.as_str().len());
                key.push_str("session:{");
                key.push_str(tag);
                key.push_str("}:");
                key.push_str(handle.as_str());
                let value = self
                    .store
                    .get_bytes(&key)
                    .await
                    .expect("store GET must succeed");
                assert!(value.is_some(), "hash + GET found no session record");
            }
            Target::FredGet => {
                let value: Option<Vec<u8>> = self
                    .fred
                    .get(&self.raw_keys[i % SESSION_COUNT])
                    .await
                    .expect("fred GET must succeed");
                assert!(value.is_some(), "fred GET found no session record");
            }
            Target::SessionLoad => {
                let session = side
                    .sessions
                    .load(&side.ids[i % SESSION_COUNT])
                    .await
                    .expect("session load must succeed");
                assert!(session.is_some(), "the bench sessions do not expire");
            }
            Target::TowerLoad => {
                let record = self
                    .tower
                    .load(&self.tower_ids[i % SESSION_COUNT])
                    .await
                    .expect("tower-sessions load must succeed");
                assert!(record.is_some(), "the bench sessions do not expire");
            }
            Target::OtpVerify => {
                let (subject, code) = &codes[i];
                let outcome = side
                    .otp
                    .verify(subject, "login", code)
                    .await
                    .expect("verify must succeed");
                assert!(outcome.is_verified(), "{outcome:?}");
            }
        }
    }
}

/// For `OtpVerify`, issues one code per operation (for fresh subjects
/// named after `tag`), 50 at a time; `(subject, code)` pairs.
async fn prepare(
    fixture: &Arc<Fixture>,
    memory: bool,
    target: Target,
    ops: usize,
    tag: &str,
) -> Arc<Vec<(String, String)>> {
    if target != Target::OtpVerify {
        return Arc::new(Vec::new());
    }
    let mut codes = Vec::with_capacity(ops);
    for chunk in (0..ops).collect::<Vec<_>>().chunks(50) {
        let issued = futures::future::join_all(chunk.iter().map(|i| {
            let subject = format!("{tag}-{i}@example.com");
            let fixture = fixture.clone();
            async move {
                let outcome = fixture
                    .side(memory)
                    .otp
                    .issue(&subject, "login")
                    .await
                    .expect("issue must succeed");
                match outcome {
                    IssueOutcome::Issued(issued) => (subject, issued.code.expose().to_owned()),
                    IssueOutcome::Refused(refused) => panic!("refused: {refused:?}"),
                }
            }
        }))
        .await;
        codes.extend(issued);
    }
    Arc::new(codes)
}

/// The sides of a lookup comparison, in their columns' order.
const LOOKUP_SIDES: [(Target, &str); 6] = [
    (Target::RawGet, "raw GET"),
    (Target::StoreGet, "store GET"),
    (Target::HashedGet, "hash + GET"),
    (Target::SessionLoad, "kv-module load"),
    (Target::TowerLoad, "tower-sessions load"),
    (Target::FredGet, "fred GET"),
];

/// The ratios reported: (numerator, denominator) as indices into
/// [`LOOKUP_SIDES`], and the column's title.
const LOOKUP_RATIOS: [(usize, usize, &str); 7] = [
    (3, 0, "load / raw GET"),
    (3, 4, "load / tower-sessions"),
    (1, 0, "store GET / raw GET"),
    (2, 0, "hash + GET / raw GET"),
    (3, 2, "load / hash + GET"),
    (0, 5, "raw GET / fred GET"),
    (4, 5, "tower-sessions / fred GET"),
];

/// The medians of a lookup comparison: of each side's rate, of each
/// per-round ratio, and of each side's client CPU time per lookup (µs).
struct Lookup {
    rates: [f64; LOOKUP_SIDES.len()],
    ratios: [f64; LOOKUP_RATIOS.len()],
    cpu_us: [f64; LOOKUP_SIDES.len()],
}

/// `rounds` rounds of every side of [`LOOKUP_SIDES`], the order rotating
/// each round; medians of each side and of the per-round ratios.
async fn lookup_rounds(
    fixture: &Arc<Fixture>,
    concurrency: usize,
    ops: usize,
    rounds: usize,
) -> Lookup {
    let sides = LOOKUP_SIDES.len();
    let mut rates: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); sides];
    let mut cpu_us: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); sides];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); LOOKUP_RATIOS.len()];
    for round in 0..rounds {
        let mut rate = [0.0; LOOKUP_SIDES.len()];
        for step in 0..sides {
            let side = (round + step) % sides;
            let tag = format!("lookup-{concurrency}-{round}");
            let cpu_before = process_cpu_ns();
            rate[side] =
                measure(fixture, false, LOOKUP_SIDES[side].0, concurrency, ops, &tag).await;
            let cpu = process_cpu_ns().saturating_sub(cpu_before);
            cpu_us[side].push(cpu as f64 / 1_000.0 / ops as f64);
        }
        for (side, runs) in rates.iter_mut().enumerate() {
            runs.push(rate[side]);
        }
        for ((num, den, _), runs) in LOOKUP_RATIOS.iter().zip(ratios.iter_mut()) {
            runs.push(rate[*num] / rate[*den]);
        }
    }
    Lookup {
        rates: std::array::from_fn(|side| median(std::mem::take(&mut rates[side]))),
        ratios: std::array::from_fn(|i| median(std::mem::take(&mut ratios[i]))),
        cpu_us: std::array::from_fn(|side| median(std::mem::take(&mut cpu_us[side]))),
    }
}

/// Paired runs of raw `GET` and `target` (see [`kv_module_tests::bench::paired`]); each
/// pair prepares its inputs under its own tag.
async fn compare(
    fixture: &Arc<Fixture>,
    target: Target,
    concurrency: usize,
    ops: usize,
    rounds: usize,
) -> Comparison {
    let mut runs = 0_usize;
    paired(rounds, |raw| {
        let tag = format!("redis-{concurrency}-{}", runs / 2);
        runs += 1;
        let side = if raw { Target::RawGet } else { target };
        async move { measure(fixture, false, side, concurrency, ops, &tag).await }
    })
    .await
}

/// Prepares the inputs (untimed), then runs `ops` operations of `target`
/// from `concurrency` tasks; operations per second.
async fn measure(
    fixture: &Arc<Fixture>,
    memory: bool,
    target: Target,
    concurrency: usize,
    ops: usize,
    tag: &str,
) -> f64 {
    let codes = prepare(fixture, memory, target, ops, tag).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let (fixture, codes) = (fixture.clone(), codes.clone());
            tokio::spawn(async move {
                // Task `t` does operations t, t + concurrency, ...
                for i in (task..ops).step_by(concurrency) {
                    fixture.run_once(memory, target, &codes, i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a benchmark task panicked");
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

/// `BENCH_OPS` or [`DEFAULT_OPS`].
fn run_ops() -> usize {
    match std::env::var("BENCH_OPS") {
        Ok(value) => value
            .parse::<usize>()
            .ok()
            .filter(|ops| *ops >= 100)
            .unwrap_or_else(|| {
                panic!("BENCH_OPS must be an integer of at least 100, got `{value}`")
            }),
        Err(_) => DEFAULT_OPS,
    }
}
