//! Rate-limit checks per second, and round trips per check, for each
//! algorithm against the naive `INCR` + `PEXPIRE` pipeline on the same
//! server in the same run.
//!
//! ```text
//! cargo bench -p kv-module-tests --bench rate_limit
//! BENCH_SECS=1 BENCH_ROUNDS=15 cargo bench -p kv-module-tests --bench rate_limit
//! ```
//!
//! A [`TestRedis`] is started for the run. For each algorithm and
//! concurrency (1 and 50 tasks sharing one store), the baseline and
//! limiter cases run as 9 (`BENCH_ROUNDS`) pairs of short back-to-back
//! runs of 0.5 s (`BENCH_SECS`) each (alternating
//! which goes first); the medians of each side and of the per-pair ratios
//! are reported, so drift on a shared machine affects both alike.
//!
//! * naive pipeline: a redis-rs `ConnectionManager` (TCP_NODELAY on, as
//!   `RedisStore` has it) sending `INCR key` + `PEXPIRE key 60000` in one
//!   pipeline on one of 1,000 keys: the hand-rolled limiter a user would
//!   write instead (racy about the expiry, re-arming the window on every
//!   hit, and counting denials), and the baseline of issue 16's targets
//!   (fixed window ≥ 0.8, sliding window and GCRA ≥ 0.6);
//! * limiter: [`KvRateLimiter::check`] through `RedisStore` (pool size 1) on
//!   one of 1,000 client keys, with a quota large enough that every check
//!   is allowed (an allowed check is the one that writes). The GCRA quota
//!   (10 per second, a burst of 10^8) keeps every key alive through the
//!   run, so its script reads a stored state as for a real client;
//! * raw: what the check sends (the fixed window's `SET … NX` + `INCRBY` +
//!   `PTTL` pipeline, the other algorithms' Lua ([`Algorithm::script`])
//!   by `EVALSHA`) sent by redis-rs directly on the same kind of
//!   connection, which separates the server's cost from kv-module's (key
//!   formatting, the boxed store call, reply decoding);
//! * trypema: the maintained Redis-backed limiter a user would pick
//!   instead (trypema 2.2, its Redis provider's `absolute` limiter: a
//!   sliding window of 100 ms buckets kept in a hash, a sorted set and a
//!   total, one Lua script by `EVALSHA` per check) on its own redis-rs
//!   `ConnectionManager` (TCP_NODELAY on), on one of the same 1,000 keys
//!   (`ip_N`: its keys may not hold `:`), with the same window and a quota
//!   no run reaches. Before it is measured, one key is checked past a
//!   quota of 60 to show that it does limit on this server (trypema
//!   documents Redis ≥ 7.2).
//!
//! Round trips are counted separately from `INFO commandstats`: the
//! commands a client sends per check, and the commands the scripts run
//! inside the server per check.
//!
//! Then a flood: every key over its limit, so that checks are denied;
//! after each key's first denial the limiter answers from its denial
//! memo. Compared with `governor`'s in-process keyed limiter on the same
//! keys, and the Redis commands the flood sends counted.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as GovernorLimiter};
use kv_module::rate_limit::{Algorithm, KvRateLimiter, RateLimitPolicy};
use kv_module::{KvStore, MemoryStore, RedisConfig, RedisStore};
use kv_module_tests::TestRedis;
use kv_module_tests::bench::{
    Plan, Workload, per_op, print_machine, run_duration, run_rounds, thousands,
};
use kv_module_tests::command_stats::{command_calls, delta};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use trypema::redis::{RedisKey, RedisRateLimiterProvider};
use trypema::{RateLimit, RateLimitDecision, RateLimiterBuilder, WindowSize};

const KEY_COUNT: usize = 1_000;
const PREFIX: &str = "bench";
const CONCURRENCIES: [usize; 2] = [1, 50];
/// Paired rounds per case (`BENCH_ROUNDS`); the medians are reported.
const DEFAULT_ROUNDS: usize = 9;
const DEFAULT_SECS: f64 = 0.5;
const WARM_UP: Duration = Duration::from_millis(100);
/// The raw and trypema connections wait for a reply as long as
/// `RedisStore` does by default (redis-rs's own default, 500 ms, is
/// outrun by a stall on a loaded machine, and one timeout ends the run).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Checks counted for the round-trip table.
const COUNTED_CHECKS: u64 = 1_000;
/// A quota no bench run reaches, so every check is allowed.
const LIMIT: u64 = 10_000_000;
const WINDOW: Duration = Duration::from_secs(60);
/// GCRA: 600 per minute (100 ms apart) with a burst no run reaches, so
/// keys live through the run (at `LIMIT` per minute the TAT would trail
/// the clock and every key would have expired by its next check).
const GCRA_LIMIT: u64 = 600;
const GCRA_BURST: u64 = 100_000_000;
/// Issue 16's targets: check rate / naive pipeline rate.
fn target(algorithm: Algorithm) -> f64 {
    match algorithm {
        Algorithm::FixedWindow => 0.8,
        Algorithm::SlidingWindow | Algorithm::Gcra => 0.6,
    }
}
/// The flood's quota, exhausted before it is measured.
const FLOOD_LIMIT: u64 = 10;
/// The governor release compared with (from Cargo.toml).
const GOVERNOR_VERSION: &str = "0.10";
/// The trypema release compared with (from Cargo.toml).
const TRYPEMA_VERSION: &str = "2.2";
const ALGORITHMS: [Algorithm; 3] = [
    Algorithm::FixedWindow,
    Algorithm::SlidingWindow,
    Algorithm::Gcra,
];

#[derive(Clone, Copy, Debug)]
enum Target {
    /// `INCR` + `PEXPIRE` in one pipeline.
    Naive,
    /// What a check sends, by raw redis-rs.
    Raw(Algorithm),
    Redis(Algorithm),
    Memory(Algorithm),
    /// A check of a key over its limit, answered by the denial memo.
    Flood(Algorithm),
    /// The same keys through an in-process `governor` keyed limiter.
    Governor,
    /// trypema's Redis-backed sliding window, every check allowed.
    Trypema,
}

struct Fixture {
    raw: ConnectionManager,
    redis: BTreeMap<&'static str, KvRateLimiter>,
    /// Limiters whose keys are all over their limit (the flood).
    flood: BTreeMap<&'static str, KvRateLimiter>,
    governor: DefaultKeyedRateLimiter<String>,
    trypema: Arc<RedisRateLimiterProvider>,
    /// `ip_N`: the same clients as `keys`, as trypema keys.
    trypema_keys: Vec<RedisKey>,
    /// A quota no run reaches, as trypema spells it.
    trypema_rate: RateLimit,
    memory: BTreeMap<&'static str, KvRateLimiter>,
    /// The limiter's scripts and arguments, for raw redis-rs.
    scripts: BTreeMap<&'static str, (redis::Script, [String; 3])>,
    /// `ip:N`, the limiter's keys.
    keys: Vec<String>,
    /// `bench:incr:N`, the raw counter keys.
    counters: Vec<String>,
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

    print_machine("kv-module rate limiter benchmark", &fixture.raw).await;
    println!(
        "{plan}, {KEY_COUNT} keys, every check allowed (limit {LIMIT} per {} s).\n",
        WINDOW.as_secs()
    );

    // The check against the naive pipeline, with issue 16's target.
    println!(
        "| algorithm | concurrency | naive INCR+PEXPIRE pipeline ops/s | checks/s | ratio \
         (check/naive) | target | met |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for concurrency in CONCURRENCIES {
        for algorithm in ALGORITHMS {
            let c = plan
                .compare(
                    &fixture,
                    Target::Naive,
                    Target::Redis(algorithm),
                    concurrency,
                )
                .await;
            let goal = target(algorithm);
            let met = if c.ratio >= goal { "yes" } else { "no" };
            println!("| {algorithm} | {concurrency} | {c} | {goal:.1} | {met} |");
        }
    }
    // The maintained Redis-backed limiter a user would pick instead.
    fixture.trypema_limits().await;
    println!(
        "\nAgainst trypema {TRYPEMA_VERSION} (Redis provider, absolute sliding window of 100 ms \
         buckets, every check allowed), the maintained Redis-backed limiter a user would pick \
         instead:\n"
    );
    println!(
        "| algorithm | concurrency | trypema checks/s | kv-module checks/s | ratio \
         (kv-module/trypema) |"
    );
    println!("|---|---:|---:|---:|---:|");
    compare_rows(&plan, &fixture, |_| Target::Trypema, Target::Redis).await;
    // Where the difference goes: the same commands sent by raw redis-rs.
    println!(
        "\nWhere the difference goes: what a check sends, sent by raw redis-rs, against the \
         check.\n"
    );
    println!("| algorithm | concurrency | raw ops/s | checks/s | ratio (check/raw) |");
    println!("|---|---:|---:|---:|---:|");
    compare_rows(&plan, &fixture, Target::Raw, Target::Redis).await;

    println!("\nRound trips and server-side commands per check ({COUNTED_CHECKS} checks each):\n");
    println!("| operation | client commands per op | commands run inside the server per op |");
    println!("|---|---|---|");
    let mut raw_conn = server.raw(0).await;
    let before = command_calls(&mut raw_conn).await;
    for i in 0..COUNTED_CHECKS as usize {
        fixture.run_once(Target::Naive, i % KEY_COUNT).await;
    }
    let after = command_calls(&mut raw_conn).await;
    println!(
        "| naive pipeline | {} (one round trip) | — |",
        per_op(&delta(&before, &after), COUNTED_CHECKS)
    );
    for algorithm in ALGORITHMS {
        let before = command_calls(&mut raw_conn).await;
        for i in 0..COUNTED_CHECKS as usize {
            fixture
                .run_once(Target::Redis(algorithm), i % KEY_COUNT)
                .await;
        }
        let after = command_calls(&mut raw_conn).await;
        let mut calls = delta(&before, &after);
        match calls.remove("evalsha") {
            Some(evalsha) => println!(
                "| {algorithm} check | evalsha {:.2} | {} |",
                evalsha as f64 / COUNTED_CHECKS as f64,
                per_op(&calls, COUNTED_CHECKS)
            ),
            None => println!(
                "| {algorithm} check | {} (one round trip) | — |",
                per_op(&calls, COUNTED_CHECKS)
            ),
        }
    }
    let before = command_calls(&mut raw_conn).await;
    for i in 0..COUNTED_CHECKS as usize {
        fixture.run_once(Target::Trypema, i % KEY_COUNT).await;
    }
    let mut calls = delta(&before, &command_calls(&mut raw_conn).await);
    let evalsha = calls.remove("evalsha").unwrap_or(0);
    println!(
        "| trypema {TRYPEMA_VERSION} check | evalsha {:.2} | {} |",
        evalsha as f64 / COUNTED_CHECKS as f64,
        per_op(&calls, COUNTED_CHECKS)
    );

    // A flood: every key over its limit. The first denial of each key
    // asks Redis; the rest are answered from the denial memo. Against an
    // in-process `governor` keyed limiter (no store at all), over the same
    // keys, likewise exhausted.
    fixture.exhaust_flood_keys().await;
    for key in &fixture.keys {
        for _ in 0..=FLOOD_LIMIT {
            let _ = fixture.governor.check_key(key);
        }
    }
    println!(
        "\nA flood (every key over its limit of {FLOOD_LIMIT} per {} s; denials answered \
         from memory) against governor {}'s in-process keyed limiter:\n",
        WINDOW.as_secs(),
        GOVERNOR_VERSION
    );
    println!(
        "| algorithm | concurrency | governor checks/s | denied checks/s | ratio (check/governor) |"
    );
    println!("|---|---:|---:|---:|---:|");
    compare_rows(&plan, &fixture, |_| Target::Governor, Target::Flood).await;
    // The measure above can outlast the 60 s window (at the default run
    // length): exhaust every key again, so the count is of denials.
    fixture.exhaust_flood_keys().await;
    let before = command_calls(&mut raw_conn).await;
    for i in 0..COUNTED_CHECKS as usize {
        fixture
            .run_once(Target::Flood(Algorithm::FixedWindow), i % KEY_COUNT)
            .await;
    }
    let calls = delta(&before, &command_calls(&mut raw_conn).await);
    println!(
        "\nRedis commands for {COUNTED_CHECKS} flood checks: {}",
        if calls.is_empty() {
            "none".to_owned()
        } else {
            format!("{calls:?}")
        }
    );

    println!("\nMemoryStore (same checks, no network):\n");
    println!("| algorithm | concurrency | checks/s |");
    println!("|---|---:|---:|");
    for concurrency in CONCURRENCIES {
        for algorithm in ALGORITHMS {
            let memory = Target::Memory(algorithm);
            let ops = plan.median_throughput(&fixture, memory, concurrency).await;
            println!("| {algorithm} | {concurrency} | {} |", thousands(ops));
        }
    }
}

impl Fixture {
    async fn new(server: &TestRedis) -> Self {
        let info = redis::IntoConnectionInfo::into_connection_info(server.url(0))
            .expect("test Redis URL must parse")
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).expect("test Redis URL must parse");
        let manager_config =
            ConnectionManagerConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
        let raw = ConnectionManager::new_with_config(client.clone(), manager_config.clone())
            .await
            .expect("raw ConnectionManager must connect to the test Redis");
        // Its own connection, like `RedisStore`'s pool of one.
        let trypema_conn = ConnectionManager::new_with_config(client, manager_config)
            .await
            .expect("trypema's ConnectionManager must connect to the test Redis");
        let trypema = RedisRateLimiterProvider::builder(trypema_conn)
            .prefix(RedisKey::try_from("bench_trypema").expect("a valid trypema prefix"))
            .window_size(WindowSize::seconds_or_panic(WINDOW.as_secs()))
            .build()
            .expect("the trypema configuration is valid");
        let config = RedisConfig::new(server.addr())
            .with_prefix(PREFIX)
            .with_pool_size(1);
        let redis_store: Arc<dyn KvStore> = Arc::new(
            RedisStore::open("bench", config)
                .await
                .expect("RedisStore must open on the test Redis"),
        );
        let memory_store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("bench-memory", PREFIX));
        let limiters = |store: &Arc<dyn KvStore>| {
            ALGORITHMS
                .iter()
                .map(|algorithm| {
                    let policy = match algorithm {
                        Algorithm::Gcra => RateLimitPolicy::new(*algorithm, GCRA_LIMIT, WINDOW)
                            .with_burst(GCRA_BURST),
                        _ => RateLimitPolicy::new(*algorithm, LIMIT, WINDOW),
                    };
                    let limiter = KvRateLimiter::new(store.clone(), algorithm.as_str(), policy)
                        .expect("the bench policies are valid");
                    (algorithm.as_str(), limiter)
                })
                .collect()
        };
        let window_ms = WINDOW.as_millis() as u64;
        let interval = (window_ms * 1_000).div_ceil(GCRA_LIMIT);
        let scripts = ALGORITHMS
            .iter()
            .map(|algorithm| {
                let args = match algorithm {
                    Algorithm::Gcra => [interval, GCRA_BURST * interval, 1],
                    _ => [LIMIT, window_ms, 1],
                };
                let script = redis::Script::new(algorithm.script().lua());
                (algorithm.as_str(), (script, args.map(|n| n.to_string())))
            })
            .collect();
        let flood = ALGORITHMS
            .iter()
            .map(|algorithm| {
                let policy = RateLimitPolicy::new(*algorithm, FLOOD_LIMIT, WINDOW);
                let name = format!("flood-{algorithm}");
                let limiter = KvRateLimiter::new(redis_store.clone(), name, policy)
                    .expect("the bench policies are valid");
                (algorithm.as_str(), limiter)
            })
            .collect();
        let quota = Quota::per_minute(NonZeroU32::new(FLOOD_LIMIT as u32).expect("non-zero"));
        Self {
            raw,
            scripts,
            flood,
            governor: GovernorLimiter::keyed(quota),
            trypema,
            trypema_keys: (0..KEY_COUNT)
                .map(|i| RedisKey::try_from(format!("ip_{i}")).expect("a valid trypema key"))
                .collect(),
            trypema_rate: RateLimit::per_second_or_panic(LIMIT as f64 / WINDOW.as_secs_f64()),
            redis: limiters(&redis_store),
            memory: limiters(&memory_store),
            keys: (0..KEY_COUNT).map(|i| format!("ip:{i}")).collect(),
            counters: (0..KEY_COUNT)
                .map(|i| format!("{PREFIX}:incr:{i}"))
                .collect(),
        }
    }

    /// Checks every flood key past its limit, so that it is denied (and
    /// its denial remembered) until its window or TAT moves.
    async fn exhaust_flood_keys(&self) {
        for key in &self.keys {
            for algorithm in ALGORITHMS {
                for _ in 0..=FLOOD_LIMIT {
                    let _ = self.flood[algorithm.as_str()].check(key).await;
                }
            }
        }
    }

    /// Checks one key past a quota of one per second (60 per 60 s window)
    /// through trypema: it must allow exactly that many and deny the next,
    /// or this server does not run its scripts as it expects.
    async fn trypema_limits(&self) {
        let key = RedisKey::try_from("trypema_probe").expect("a valid trypema key");
        let rate = RateLimit::per_second_or_panic(1.0);
        let quota = WINDOW.as_secs();
        let limiter = self.trypema.absolute();
        for n in 1..=quota + 1 {
            let decision = limiter
                .inc(&key, &rate, 1)
                .await
                .expect("a trypema check must succeed");
            let allowed = matches!(decision, RateLimitDecision::Allowed);
            assert_eq!(
                allowed,
                n <= quota,
                "trypema must allow {quota} checks and deny the next: check {n} was {decision:?}"
            );
        }
    }

    async fn run_once(&self, target: Target, index: usize) {
        match target {
            Target::Naive => {
                let mut raw = self.raw.clone();
                let (n,): (i64,) = redis::pipe()
                    .cmd("INCR")
                    .arg(&self.counters[index])
                    .cmd("PEXPIRE")
                    .arg(&self.counters[index])
                    .arg(WINDOW.as_millis() as u64)
                    .ignore()
                    .query_async(&mut raw)
                    .await
                    .expect("the naive pipeline must succeed");
                assert!(n as u64 <= LIMIT, "the bench quota must never be reached");
            }
            Target::Raw(Algorithm::FixedWindow) => {
                let key = format!("{PREFIX}:raw-fixed:{}", self.keys[index]);
                let (_, n, _): (Option<String>, i64, i64) = redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("PX")
                    .arg(WINDOW.as_millis() as u64)
                    .arg("NX")
                    .cmd("INCRBY")
                    .arg(&key)
                    .arg(1)
                    .cmd("PTTL")
                    .arg(&key)
                    .query_async(&mut self.raw.clone())
                    .await
                    .expect("the raw fixed-window pipeline must succeed");
                assert!(n as u64 <= LIMIT, "the bench quota must never be reached");
            }
            Target::Raw(algorithm) => {
                let (script, args) = &self.scripts[algorithm.as_str()];
                let mut invocation = script.prepare_invoke();
                invocation.key(format!("{PREFIX}:raw-{algorithm}:{}", self.keys[index]));
                for arg in args {
                    invocation.arg(arg.as_str());
                }
                // An integer when allowed (both scripts); a table when denied.
                let reply: redis::Value = invocation
                    .invoke_async(&mut self.raw.clone())
                    .await
                    .expect("raw EVALSHA must succeed");
                assert!(
                    matches!(reply, redis::Value::Int(n) if n >= 0),
                    "the bench quota must never be reached: {reply:?}"
                );
            }
            Target::Redis(algorithm) => check(&self.redis, algorithm, &self.keys[index]).await,
            // Over its limit, a key earns one check back every 6 s (GCRA,
            // sliding window, governor): nearly every check is denied.
            Target::Flood(algorithm) => {
                let limiter = &self.flood[algorithm.as_str()];
                limiter
                    .check(&self.keys[index])
                    .await
                    .expect("the check must succeed");
            }
            Target::Governor => {
                let _ = self.governor.check_key(&self.keys[index]);
            }
            Target::Trypema => {
                let decision = self
                    .trypema
                    .absolute()
                    .inc(&self.trypema_keys[index], &self.trypema_rate, 1)
                    .await
                    .expect("a trypema check must succeed");
                assert!(
                    matches!(decision, RateLimitDecision::Allowed),
                    "the bench quota must never be reached: {decision:?}"
                );
            }
            Target::Memory(algorithm) => check(&self.memory, algorithm, &self.keys[index]).await,
        }
    }
}

/// One table row per concurrency and algorithm: `measured(algorithm)`
/// against `baseline(algorithm)` in paired rounds.
async fn compare_rows(
    plan: &Plan,
    fixture: &Arc<Fixture>,
    baseline: impl Fn(Algorithm) -> Target,
    measured: impl Fn(Algorithm) -> Target,
) {
    for concurrency in CONCURRENCIES {
        for algorithm in ALGORITHMS {
            let c = plan
                .compare(
                    fixture,
                    baseline(algorithm),
                    measured(algorithm),
                    concurrency,
                )
                .await;
            println!("| {algorithm} | {concurrency} | {c} |");
        }
    }
}

async fn check(limiters: &BTreeMap<&'static str, KvRateLimiter>, algorithm: Algorithm, key: &str) {
    let limiter = &limiters[algorithm.as_str()];
    let decision = limiter.check(key).await.expect("the check must succeed");
    assert!(decision.allowed, "the bench quota must never be reached");
}

impl Workload for Fixture {
    type Op = Target;

    async fn run(&self, target: Target, index: usize) {
        self.run_once(target, index).await;
    }
}
