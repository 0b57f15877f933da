//! What the bench binaries share: paired comparisons reported as medians,
//! the run length from `BENCH_SECS`, the machine header, and number
//! formatting.
//!
//! Every bench compares kv-module with a baseline in the same run. On a
//! shared machine single runs drift by tens of percent, so a comparison is
//! several pairs of short back-to-back runs, alternating which side goes
//! first, and reports the medians of each side and of the per-pair ratios.

use std::future::Future;
use std::process::Command;
use std::time::Duration;

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

/// Prints a Markdown header: `title`, cores, kernel and the Redis version.
///
/// # Panics
///
/// When the server does not answer `INFO server`.
pub async fn print_machine(title: &str, raw: &redis::aio::ConnectionManager) {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let uname = Command::new("uname")
        .arg("-srm")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |out| String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_medians() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(Vec::new()), 0.0);
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
}
