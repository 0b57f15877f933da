//! Logs and metrics: the `tracing` subscriber (`RUST_LOG`, `LOG_FORMAT`)
//! and the Prometheus recorder behind `GET /metrics`.
//!
//! * `LOG_FORMAT=text` (the default) writes lines for people, `json` one
//!   JSON object per line for collectors ([`JsonLines`]); each carries
//!   the request's span (`request_id`, `method`, `route`) in its `spans`
//!   list, also inside a span nested in the request's.
//! * Colour (ANSI codes) only when standard output is a terminal and
//!   `NO_COLOR` is unset: a file or a pipe gets plain text.
//! * Lines go through a non-blocking writer: a request never waits for
//!   the terminal or the disk. Its thread writes what queued up, then
//!   naps 10 ms, so that under load lines go out in batches. Should the
//!   writer fall behind by more than its buffer (128 000 lines), lines
//!   are dropped rather than the request path slowed.
//! * Metrics go through the `metrics` facade (kv-module records its
//!   stores' and components' figures there); [`metrics_handle`] installs
//!   the Prometheus recorder once per process and renders its text; a
//!   thread folds histogram samples into buckets every 5 s (the
//!   exporter's upkeep), scraped or not. With
//!   `app.metrics: false` (`APP_METRICS=false`) start-up never calls it:
//!   no recorder, so every figure is a no-op.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

mod json_lines;

pub use json_lines::JsonLines;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Buckets of every histogram, in seconds: 0.1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The log line format (`LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines for people (the default).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`'s value: `text`, `json` (any case), or unset/empty for
    /// text; anything else is an error naming the accepted values.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).unwrap_or("") {
            "" => Ok(Self::Text),
            v if v.eq_ignore_ascii_case("text") => Ok(Self::Text),
            v if v.eq_ignore_ascii_case("json") => Ok(Self::Json),
            other => Err(format!(
                "LOG_FORMAT must be `text` or `json`, got `{other}`"
            )),
        }
    }
}

/// Keeps the log writer's thread alive: drop it last (at exit), so that
/// buffered lines are written.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the global subscriber (default filter `info`) writing to
/// standard output in `format`. A second call changes nothing.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // Buffered: the writer thread writes what queued up in one syscall
    // (a line each cost a `write` on stdout's line buffer), and flushes
    // whenever its queue is empty, so an idle app's lines are not held;
    // then it naps (`NappingWriter`).
    let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let (writer, guard) = tracing_appender::non_blocking(NappingWriter::new(stdout));
    let installed = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(ansi)
            .try_init()
            .is_ok(),
        // Our own layer, not `fmt().json()` (which parses a span's fields
        // again for every line) nor `json-subscriber` (a `serde_json::Value`
        // per line and field): see `JsonLines`.
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(JsonLines::new(writer))
            .try_init()
            .is_ok(),
    };
    LogGuard(installed.then_some(guard))
}

/// How long the log writer's thread naps after each flush.
const WRITER_NAP: Duration = Duration::from_millis(10);

/// The log writer thread's output: flushing it flushes `W`, then sleeps
/// [`WRITER_NAP`].
///
/// `tracing-appender`'s thread flushes whenever its queue is empty. Under
/// load, lines arrive one at a time, so it would wake up, `write` one or
/// two lines and sleep again, thousands of times a second, each wake-up a
/// futex call on the request's side too (about a tenth of the app's CPU
/// at `RUST_LOG=info` on a cache hit, issue 15). With a nap after each
/// flush, the lines that arrive meanwhile wait in the queue and go out in
/// one `write`: at most a hundred wake-ups a second (a millisecond's nap
/// still spent 2–3 % of a cached user read's CPU in `write` calls of a
/// few kB each, issue 15). Nothing is held back by it: the nap comes
/// after the flush, so a line waits at most one nap before it is
/// written, and an idle app's last line is on its way at once.
struct NappingWriter<W> {
    inner: W,
}

impl<W> NappingWriter<W> {
    fn new(inner: W) -> Self {
        Self { inner }
    }
}

impl<W: std::io::Write> std::io::Write for NappingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = self.inner.flush();
        std::thread::sleep(WRITER_NAP);
        flushed
    }
}

/// The process's Prometheus recorder, installed as the `metrics` facade's
/// recorder on first use. Should another recorder already be installed
/// (an embedding application's), the handle renders an empty registry.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
                Ok(builder) => builder,
                // Only an empty bucket list is refused.
                Err(_) => PrometheusBuilder::new(),
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
            } else {
                spawn_upkeep(handle.clone());
            }
            handle
        })
        .clone()
}

/// How often histogram samples are folded into their buckets: the
/// exporter's own default for the recorders it installs itself.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds histogram samples into their buckets every [`UPKEEP_INTERVAL`],
/// for the life of the process. A recorder built with `build_recorder`
/// gets no upkeep task: each sample stays queued until `/metrics` is
/// scraped, so an unscraped app would keep one more queued sample per
/// request and store call (memory without bound, and a long first
/// scrape). A thread, not a task: the recorder is process-wide and
/// outlives any one tokio runtime (tests run several).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread: histograms drain only when scraped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_is_text_json_or_an_error() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some("text")), Ok(LogFormat::Text));
        let err = LogFormat::parse(Some("yaml")).unwrap_err();
        assert!(
            err.contains("`text` or `json`") && err.contains("yaml"),
            "{err}"
        );
    }
}
