//! What the bench binaries share: timed runs of concurrent tasks
//! ([`Workload`], [`throughput`]), a bench's [`Plan`] (rounds, key space,
//! warm-up, run length), paired comparisons reported as medians
//! ([`paired`], [`Comparison`] as table cells), medians of repeated runs
//! ([`median_of`]), the time of a single-threaded loop ([`ns_per_iter`]),
//! commands per operation ([`per_op`]), the run length from `BENCH_SECS`,
//! the machine header, and number formatting.
//!
//! Every bench compares kv-module with a baseline in the same run. On a
//! shared machine single runs drift by tens of percent, so a comparison is
//! several pairs of short back-to-back runs, alternating which side goes
//! first, and reports the medians of each side and of the per-pair ratios.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a bench runs: one operation on item `index` of its key space.
///
/// The bench's fixture implements it; [`throughput`] runs it from many
/// tasks at once, each holding the fixture in an `Arc`.
pub trait Workload: Send + Sync + 'static {
    /// Which operation, on which side of a comparison.
    type Op: Copy + Send + 'static;

    /// Runs `op` once on item `index` (below [`Load::key_count`]),
    /// panicking with a clear message when it fails.
    fn run(&self, op: Self::Op, index: usize) -> impl Future<Output = ()> + Send;
}

/// The shape of one measured run.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Tokio tasks issuing operations at once.
    pub concurrency: usize,
    /// Items in the key space; task `t` starts at item
    /// `t * key_count / concurrency`, so concurrent tasks spread over it.
    pub key_count: usize,
    /// Untimed run before each measured one (connections established,
    /// caches and the allocator settled).
    pub warm_up: Duration,
    /// The measured time.
    pub run_for: Duration,
}

/// Warms up, then runs `op` from [`Load::concurrency`] tasks for
/// [`Load::run_for`]; operations per second.
pub async fn throughput<W: Workload>(workload: &Arc<W>, op: W::Op, load: Load) -> f64 {
    run_tasks(workload, op, load, load.warm_up).await;
    let started = Instant::now();
    let ops = run_tasks(workload, op, load, load.run_for).await;
    ops as f64 / started.elapsed().as_secs_f64()
}

/// A bench's fixed shape: paired rounds per comparison, key space,
/// warm-up and measured time per run. Its `Display` is the line that
/// says so under the machine header.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Paired rounds per comparison (or runs per median).
    pub rounds: usize,
    /// See [`Load::key_count`].
    pub key_count: usize,
    /// See [`Load::warm_up`].
    pub warm_up: Duration,
    /// See [`Load::run_for`].
    pub run_for: Duration,
}

impl Plan {
    /// The [`Load`] of a run from `concurrency` tasks.
    pub fn load(&self, concurrency: usize) -> Load {
        Load {
            concurrency,
            key_count: self.key_count,
            warm_up: self.warm_up,
            run_for: self.run_for,
        }
    }

    /// [`paired`] runs of [`throughput`] from `concurrency` tasks: `base`
    /// against `other`.
    pub async fn compare<W: Workload>(
        &self,
        workload: &Arc<W>,
        base: W::Op,
        other: W::Op,
        concurrency: usize,
    ) -> Comparison {
        let load = self.load(concurrency);
        paired(self.rounds, |is_base| {
            throughput(workload, if is_base { base } else { other }, load)
        })
        .await
    }

    /// The median [`throughput`] of `op` over [`rounds`](Self::rounds)
    /// runs from `concurrency` tasks.
    pub async fn median_throughput<W: Workload>(
        &self,
        workload: &Arc<W>,
        op: W::Op,
        concurrency: usize,
    ) -> f64 {
        let load = self.load(concurrency);
        median_of(self.rounds, |_| throughput(workload, op, load)).await
    }
}

/// `0.5 s per run after 100 ms warm-up, medians of 9 paired rounds`.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} s per run after {} ms warm-up, medians of {} paired rounds",
            self.run_for.as_secs_f64(),
            self.warm_up.as_millis(),
            self.rounds
        )
    }
}

/// Tasks that each repeat `op`, moving to the next item every time, until
/// `run_for` has passed; the number of operations completed.
async fn run_tasks<W: Workload>(
    workload: &Arc<W>,
    op: W::Op,
    load: Load,
    run_for: Duration,
) -> u64 {
    let deadline = Instant::now() + run_for;
    let key_count = load.key_count.max(1);
    let tasks: Vec<_> = (0..load.concurrency)
        .map(|task| {
            let workload = Arc::clone(workload);
            let mut index = task * (key_count / load.concurrency) % key_count;
            tokio::spawn(async move {
                let mut done = 0_u64;
                while Instant::now() < deadline {
                    workload.run(op, index).await;
                    done += 1;
                    index = (index + 1) % key_count;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("a benchmark task panicked");
    }
    total
}

/// The medians of a paired comparison.
#[derive(Clone, Copy, Debug)]
pub struct Comparison {
    /// Baseline operations per second.
    pub base: f64,
    /// Subject operations per second.
    pub other: f64,
    /// Median of the per-pair ratios `other / base`.
    pub ratio: f64,
}

/// A comparison's three table cells: `base ops/s | other ops/s | ratio`.
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (base, other) = (thousands(self.base), thousands(self.other));
        write!(f, "{base} | {other} | {:.2}", self.ratio)
    }
}

/// Runs `rounds` pairs: `run(true)` measures the baseline, `run(false)` the
/// subject (each returning operations per second); the first of a pair
/// alternates between rounds.
pub async fn paired<F, Fut>(rounds: usize, mut run: F) -> Comparison
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = f64>,
{
    let (mut bases, mut others, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (base, other) = if round % 2 == 0 {
            let base = run(true).await;
            (base, run(false).await)
        } else {
            let other = run(false).await;
            (run(true).await, other)
        };
        bases.push(base);
        others.push(other);
        ratios.push(other / base);
    }
    Comparison {
        base: median(bases),
        other: median(others),
        ratio: median(ratios),
    }
}

/// The median of `rounds` runs of `run(round)` (each returning operations
/// per second, or any other measure).
pub async fn median_of<F, Fut>(rounds: usize, mut run: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = f64>,
{
    let mut runs = Vec::with_capacity(rounds);
    for round in 0..rounds {
        runs.push(run(round).await);
    }
    median(runs)
}

/// The CPU time this process has used so far, in nanoseconds: every
/// thread's, ended ones included, brought up to date for those running
/// (`CLOCK_PROCESS_CPUTIME_ID`). Unlike a run's rate, it does not move
/// with how long the machine takes to wake an idle CPU when a reply
/// arrives.
pub fn process_cpu_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    u64::try_from(now.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(now.tv_nsec).unwrap_or(0))
}

/// Nanoseconds per call of `f`, over `n` calls on this thread.
pub fn ns_per_iter(n: u32, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

/// `get 1.00, set 1.00`: commands per operation from a commandstats delta
/// over `ops` operations; `none` when there were none.
pub fn per_op(calls: &BTreeMap<String, u64>, ops: u64) -> String {
    if calls.is_empty() {
        return "none".to_owned();
    }
    calls
        .iter()
        .map(|(name, n)| format!("{name} {:.2}", *n as f64 / ops as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The median (the upper one of an even count); 0 for no values.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The measured time per run: `BENCH_SECS` (seconds, may be fractional)
/// or `default_secs`.
///
/// # Panics
///
/// When `BENCH_SECS` is not a positive number (a bench, not a library).
pub fn run_duration(default_secs: f64) -> Duration {
    let secs = match std::env::var("BENCH_SECS") {
        Ok(value) => value
            .parse::<f64>()
            .ok()
            .filter(|secs| secs.is_finite() && *secs > 0.0)
            .unwrap_or_else(|| {
                panic!("BENCH_SECS must be a positive number of seconds, got `{value}`")
            }),
        Err(_) => default_secs,
    };
    Duration::from_secs_f64(secs)
}

/// Paired rounds per comparison: `BENCH_ROUNDS` or `default_rounds`.
///
/// # Panics
///
/// When `BENCH_ROUNDS` is not a positive integer (a bench, not a library).
pub fn run_rounds(default_rounds: usize) -> usize {
    match std::env::var("BENCH_ROUNDS") {
        Ok(value) => value
            .parse::<usize>()
            .ok()
            .filter(|rounds| *rounds > 0)
            .unwrap_or_else(|| panic!("BENCH_ROUNDS must be a positive integer, got `{value}`")),
        Err(_) => default_rounds,
    }
}

/// What `program args` prints on standard output, trimmed, or `unknown`
/// when it cannot run or fails.
pub fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |out| String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
}

/// Prints a Markdown header: `title`, cores, kernel, the Rust compiler
/// and the Redis version.
///
/// # Panics
///
/// When the server does not answer `INFO server`.
pub async fn print_machine(title: &str, raw: &redis::aio::ConnectionManager) {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let uname = command_output("uname", &["-srm"]);
    let rustc = command_output("rustc", &["--version"]);
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut raw.clone())
        .await
        .expect("INFO server must succeed");
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim();
    println!("# {title}\n");
    println!("* nproc: {nproc}");
    println!("* uname -srm: {uname}");
    println!("* {rustc}");
    println!("* redis-server: {version}\n");
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A redis-rs `MultiplexedConnection` to `server`'s DB 0 as the benches'
/// raw side uses it: `TCP_NODELAY` on and a 2 s response timeout, as
/// `RedisStore` has them.
pub async fn raw_multiplexed(server: &crate::TestRedis) -> redis::aio::MultiplexedConnection {
    let info = redis::IntoConnectionInfo::into_connection_info(server.url(0))
        .expect("test Redis URL must parse")
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = redis::Client::open(info).expect("test Redis URL must parse");
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(2)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("a raw MultiplexedConnection must connect to the test Redis")
}

/// The benches' realistic session (the `sessions` and `instructions`
/// benches): session `i`'s metadata, with the user id and the tenant about
/// 250 bytes of JSON.
pub mod session_fixture {
    use kv_module::session::SessionData;
    use serde_json::{Value, json};

    /// The tenant of every bench session.
    pub const TENANT: &str = "acme-corporation";

    /// The metadata of session `i`.
    pub fn metadata(i: usize) -> Vec<(&'static str, Value)> {
        vec![
            ("roles", json!(["member"])),
            ("display_name", json!("Ada Lovelace")),
            (
                "csrf",
                json!(format!("k3Jd9sLq0VbT7xWmZr2yPa5NcE8uHf1GiO4tQ6v{i:04}")),
            ),
            (
                "ua",
                json!("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101"),
            ),
            ("login_at", json!(1_764_115_200_000_u64 + i as u64)),
        ]
    }

    /// The user of session `i`.
    pub fn user_id(i: usize) -> String {
        format!("user-{i:04}@example.com")
    }

    /// Session `i`'s data for kv-module.
    pub fn session_data(i: usize) -> SessionData {
        metadata(i).into_iter().fold(
            SessionData::new(user_id(i)).with_tenant(TENANT),
            |data, (key, value)| data.with_metadata(key, value),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_medians() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(Vec::new()), 0.0);
        let calls = BTreeMap::from([("get".to_owned(), 3), ("set".to_owned(), 6)]);
        assert_eq!(per_op(&calls, 3), "get 1.00, set 2.00");
        assert_eq!(per_op(&BTreeMap::new(), 3), "none");
        let c = Comparison {
            base: 1000.0,
            other: 1500.4,
            ratio: 1.5,
        };
        assert_eq!(c.to_string(), "1,000 | 1,500 | 1.50");
    }

    /// The process's CPU time grows with the work of its threads: spinning
    /// reaches 5 ms more of it well within 10 s, however loaded the
    /// machine.
    #[test]
    fn process_cpu_time_grows_with_work() {
        let before = process_cpu_ns();
        let started = Instant::now();
        let mut x: u64 = 0;
        loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let now = process_cpu_ns();
            if now >= before + 5_000_000 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "CPU time stuck at {now} ns (from {before}) after {x} turns"
            );
        }
    }

    #[tokio::test]
    async fn median_of_runs_every_round() {
        let mut rounds = Vec::new();
        let m = median_of(3, |round| {
            rounds.push(round);
            async move { round as f64 * 10.0 }
        })
        .await;
        assert_eq!((rounds, m), (vec![0, 1, 2], 10.0));
    }

    #[tokio::test]
    async fn pairs_alternate_and_report_medians() {
        let mut order = Vec::new();
        let c = paired(4, |base| {
            order.push(base);
            async move { if base { 100.0 } else { 90.0 } }
        })
        .await;
        assert_eq!(order, [true, false, false, true, true, false, false, true]);
        assert_eq!((c.base, c.other), (100.0, 90.0));
        assert!((c.ratio - 0.9).abs() < 1e-9);
    }

    /// Counts operations per item.
    struct Counter(Vec<std::sync::atomic::AtomicU64>);

    impl Workload for Counter {
        type Op = u64;

        async fn run(&self, step: u64, index: usize) {
            self.0[index].fetch_add(step, std::sync::atomic::Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn tasks_spread_over_the_key_space_and_count_every_operation() {
        let counter = Arc::new(Counter((0..10).map(|_| Default::default()).collect()));
        let load = Load {
            concurrency: 5,
            key_count: 10,
            warm_up: Duration::ZERO,
            run_for: Duration::from_millis(200),
        };
        let ops = run_tasks(&counter, 1, load, load.run_for).await;
        let counted: u64 = counter
            .0
            .iter()
            .map(|n| n.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        assert_eq!(ops, counted);
        assert!(ops >= 5, "every task runs at least once: {ops}");
        assert!(
            counter
                .0
                .iter()
                .step_by(2)
                .all(|n| n.load(std::sync::atomic::Ordering::Relaxed) > 0),
            "the tasks start at items 0, 2, 4, 6 and 8"
        );
    }
}
