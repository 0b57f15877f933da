//! Client work per call, in instructions: each kind of call counted by
//! `valgrind --tool=callgrind`, which counts instructions, not seconds, so
//! the figures hardly move with the machine's load (within about 5 %, as
//! the tasks interleave differently; the throughput benches on this
//! project's shared two-core machines move by ±0.1 in ratio between
//! runs).
//!
//! ```text
//! cargo bench -p kv-module-tests --bench instructions
//! BENCH_FILTER=get cargo bench -p kv-module-tests --bench instructions
//! ```
//!
//! Without `BENCH_MODE` the bench runs itself under callgrind twice per
//! kind of call, 2,000 and 12,000 calls (50 tasks on a two-thread runtime,
//! against a [`TestRedis`] started for each run), and prints the
//! difference per call, so that start-up and set-up cancel out, with the
//! ratio to its raw redis-rs baseline. It needs `valgrind` on the `PATH`.
//! The kinds:
//!
//! * `raw_get`, `raw_hget`: redis-rs `MultiplexedConnection` (`TCP_NODELAY`
//!   and a 2 s response timeout, as in the `data_types` bench) `GET` /
//!   `HGET` of the same stored key kv-module reads;
//! * `kv_get`, `kv_hget`: `RedisStore::get_bytes` / `hashes().get` (pool
//!   size 1, prefix `bench`) as `Arc<dyn KvStore>`;
//! * `raw_pair`: `GET` + `PTTL` of that key in one raw pipeline (what a
//!   near-cache miss sends); `near_miss`: `get_bytes` on a store whose
//!   near cache is too small to keep anything (every read a miss);
//! * `raw_session`: raw `GET` of a stored session record (the benches'
//!   realistic ≈ 250-byte session, `bench::session_fixture`);
//!   `session_load`: `KvSessions::load` of the same sessions;
//!   `tower_load`: tower-sessions-redis-store's `load` of the same data
//!   (on fred, the peer a user would pick instead; its own ≈ 300-byte
//!   MessagePack record);
//! * `naive`: the naive limiter's `INCR` + `PEXPIRE` pipeline over 1,000
//!   keys, raw; `fixed`, `sliding`, `gcra`: `KvRateLimiter::check` of
//!   each algorithm over 1,000 client keys (a quota no run reaches).
//!
//! Counted: every thread of the bench process (the client), not the
//! `redis-server` it starts. No tracing subscriber and no metrics recorder
//! are installed, as in the other benches. `BENCH_MODE=<kind>
//! BENCH_OPS=<calls>` runs one kind once, uncounted.

use std::sync::Arc;
use std::time::Duration;

use kv_module::rate_limit::{Algorithm, KvRateLimiter, RateLimitPolicy};
use kv_module::registry::StoreRef;
use kv_module::session::{KvSessions, SessionConfig, Sessions};
use kv_module::{KvStore, NearCacheConfig, RedisConfig, RedisStore, Ttl};
use kv_module_tests::TestRedis;
use kv_module_tests::bench::raw_multiplexed;
use kv_module_tests::bench::session_fixture::session_data;
use tower_sessions::session_store::SessionStore;
use tower_sessions_peer::tower_store;

#[path = "shared/tower_sessions_peer.rs"]
mod tower_sessions_peer;
use redis::AsyncCommands;

const TASKS: usize = 50;
const KEYS: usize = 1_000;
const SESSIONS: usize = 100;

/// Each kind of call and the raw baseline it is compared with.
const KINDS: [(&str, &str); 13] = [
    ("raw_get", "raw_get"),
    ("kv_get", "raw_get"),
    ("raw_pair", "raw_get"),
    ("near_miss", "kv_get"),
    ("raw_session", "raw_session"),
    ("session_load", "raw_session"),
    ("tower_load", "raw_session"),
    ("raw_hget", "raw_hget"),
    ("kv_hget", "raw_hget"),
    ("naive", "naive"),
    ("fixed", "naive"),
    ("sliding", "naive"),
    ("gcra", "naive"),
];
/// The two run lengths whose difference is reported.
const RUNS: [usize; 2] = [2_000, 12_000];

fn main() {
    match std::env::var("BENCH_MODE") {
        Ok(mode) => {
            let ops: usize = std::env::var("BENCH_OPS")
                .ok()
                .and_then(|ops| ops.parse().ok())
                .unwrap_or_else(|| panic!("BENCH_OPS must be a number of calls"));
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime")
                .block_on(run(&mode, ops));
        }
        Err(_) => count_all(),
    }
}

/// Runs every kind (those holding `BENCH_FILTER`, and their baselines)
/// under callgrind and prints the table.
fn count_all() {
    let filter = std::env::var("BENCH_FILTER").unwrap_or_default();
    let exe = std::env::current_exe().expect("the bench's own path");
    let per_call = |kind: &str| -> f64 {
        let [short, long] = RUNS.map(|ops| instructions(&exe, kind, ops));
        (long - short) as f64 / (RUNS[1] - RUNS[0]) as f64
    };
    println!("# kv-module instructions per call (callgrind)\n");
    println!(
        "{} and {} calls of each kind from {TASKS} tasks; the difference per call. \
         Client process only (the server is not counted).\n",
        RUNS[0], RUNS[1]
    );
    println!("| call | baseline | instructions per call | baseline's | ratio (call/baseline) |");
    println!("|---|---|---:|---:|---:|");
    let mut measured: Vec<(&str, f64)> = Vec::new();
    for (kind, baseline) in KINDS {
        if !kind.contains(filter.as_str()) && !baseline.contains(filter.as_str()) {
            continue;
        }
        let mut of = |name: &'static str| match measured.iter().find(|(k, _)| *k == name) {
            Some((_, n)) => *n,
            None => {
                let n = per_call(name);
                measured.push((name, n));
                n
            }
        };
        let (own, base) = (of(kind), of(baseline));
        println!(
            "| `{kind}` | `{baseline}` | {own:.0} | {base:.0} | {:.2} |",
            own / base
        );
    }
}

/// The instructions callgrind counted in one run of `kind` with `ops`
/// calls.
fn instructions(exe: &std::path::Path, kind: &str, ops: usize) -> u64 {
    let out = std::env::temp_dir().join(format!("kv-instructions-{}.out", std::process::id()));
    let run = std::process::Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .env("BENCH_MODE", kind)
        .env("BENCH_OPS", ops.to_string())
        .output()
        .unwrap_or_else(|e| panic!("valgrind must be on the PATH (apt-get install valgrind): {e}"));
    let _ = std::fs::remove_file(&out);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "{kind} under callgrind failed:\n{stderr}"
    );
    stderr
        .lines()
        .find_map(|line| line.split("Collected :").nth(1))
        .and_then(|n| n.trim().replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no `Collected :` line from callgrind:\n{stderr}"))
}

/// `ops` calls of `kind` from [`TASKS`] tasks.
async fn run(mode: &str, ops: usize) {
    let server = TestRedis::start().await;
    let raw = raw_multiplexed(&server).await;
    let store: Arc<dyn KvStore> = Arc::new(
        RedisStore::open(
            "bench",
            RedisConfig::new(server.addr())
                .with_prefix("bench")
                .with_pool_size(1),
        )
        .await
        .expect("RedisStore must open on the test Redis"),
    );
    store
        .hashes()
        .set("h", "f", b"value")
        .await
        .expect("hash field written");
    store
        .set_bytes("s", b"value", Ttl::Never)
        .await
        .expect("string written");
    let limiter = |algorithm, name: &str| {
        let policy = RateLimitPolicy::new(algorithm, 10_000_000, Duration::from_secs(60));
        Arc::new(
            KvRateLimiter::new(store.clone(), name, policy).expect("the bench policy is valid"),
        )
    };
    let fixed = limiter(Algorithm::FixedWindow, "fixed");
    let sliding = limiter(Algorithm::SlidingWindow, "sliding");
    let gcra = limiter(Algorithm::Gcra, "gcra");
    let near = RedisStore::open(
        "near",
        RedisConfig::new(server.addr())
            .with_prefix("bench")
            .with_pool_size(1)
            .with_near_cache(NearCacheConfig::new().with_max_bytes(16)),
    )
    .await
    .expect("a near-cached RedisStore must open on the test Redis");
    let sessions = Arc::new(
        KvSessions::new(
            store.clone(),
            SessionConfig::new(StoreRef::new("bench"))
                .with_refresh_interval(Duration::from_secs(600)),
        )
        .expect("the bench session config is valid"),
    );
    let mut session_ids = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        session_ids.push(
            sessions
                .create(session_data(i))
                .await
                .expect("session created"),
        );
    }
    let record_keys: Vec<String> = session_ids
        .iter()
        .map(|id| format!("bench:session:{{{}}}:{}", &id.expose()[..16], id.handle()))
        .collect();
    let near = Arc::new(near);
    let (tower, tower_ids) = tower_store(&server, SESSIONS).await;
    let (tower, tower_ids) = (Arc::new(tower), Arc::new(tower_ids));
    let (session_ids, record_keys) = (Arc::new(session_ids), Arc::new(record_keys));
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("client-{i}")).collect());
    let naive_keys: Arc<Vec<String>> =
        Arc::new(keys.iter().map(|k| format!("bench:naive:{k}")).collect());
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (mut raw, store, mode) = (raw.clone(), store.clone(), mode.to_owned());
            let (fixed, keys, naive_keys) = (fixed.clone(), keys.clone(), naive_keys.clone());
            let (sliding, gcra) = (sliding.clone(), gcra.clone());
            let (near, sessions) = (near.clone(), sessions.clone());
            let (session_ids, record_keys) = (session_ids.clone(), record_keys.clone());
            let (tower, tower_ids) = (tower.clone(), tower_ids.clone());
            tokio::spawn(async move {
                for i in (task..ops).step_by(TASKS) {
                    match mode.as_str() {
                        "raw_get" => {
                            let _: Option<Vec<u8>> = raw.get("bench:s").await.expect("GET");
                        }
                        "kv_get" => {
                            store.get_bytes("s").await.expect("get_bytes");
                        }
                        "raw_pair" => {
                            let (value, _pttl): (Option<Vec<u8>>, i64) = redis::pipe()
                                .get("bench:s")
                                .pttl("bench:s")
                                .query_async(&mut raw)
                                .await
                                .expect("GET + PTTL");
                            assert!(value.is_some());
                        }
                        "near_miss" => {
                            near.get_bytes("s").await.expect("near-cache miss");
                        }
                        "raw_session" => {
                            let record: Option<Vec<u8>> = raw
                                .get(&record_keys[i % SESSIONS])
                                .await
                                .expect("GET of a session record");
                            assert!(record.is_some(), "the bench sessions do not expire");
                        }
                        "session_load" => {
                            let session = sessions
                                .load(&session_ids[i % SESSIONS])
                                .await
                                .expect("session load");
                            assert!(session.is_some(), "the bench sessions do not expire");
                        }
                        "tower_load" => {
                            let record = tower
                                .load(&tower_ids[i % SESSIONS])
                                .await
                                .expect("tower-sessions load");
                            assert!(record.is_some(), "the bench sessions do not expire");
                        }
                        "raw_hget" => {
                            let _: Option<Vec<u8>> = raw.hget("bench:h", "f").await.expect("HGET");
                        }
                        "kv_hget" => {
                            store.hashes().get("h", "f").await.expect("hashes().get");
                        }
                        "naive" => {
                            let key = &naive_keys[i % KEYS];
                            let (_count,): (i64,) = redis::pipe()
                                .cmd("INCR")
                                .arg(key)
                                .cmd("PEXPIRE")
                                .arg(key)
                                .arg(60_000)
                                .ignore()
                                .query_async(&mut raw)
                                .await
                                .expect("naive pipeline");
                        }
                        "fixed" | "sliding" | "gcra" => {
                            let limiter = match mode.as_str() {
                                "fixed" => &fixed,
                                "sliding" => &sliding,
                                _ => &gcra,
                            };
                            let decision = limiter.check(&keys[i % KEYS]).await.expect("check");
                            assert!(decision.allowed, "the bench quota is never reached");
                        }
                        other => panic!("unknown BENCH_MODE `{other}`"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a benchmark task panicked");
    }
    near.close().await;
    store.close().await;
}
