//! [`CacheMetrics`]: what a cache has done, as counters the application
//! reads (and exports, for example to Prometheus).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::KvError;

/// After a store failure, reads skip the store for this long (then one
/// read tries it again). A store that is down can take hundreds of
/// milliseconds to fail each call (a Redis client retrying its
/// connection); reads should not pay that every time. Writes never skip
/// the store: their invalidations are what keeps the cache correct.
pub(crate) const READ_BYPASS: Duration = Duration::from_secs(1);

/// A snapshot of a cache's counters, all counted since the cache was
/// built. Every `get` counts once as a hit, a negative hit or a miss.
///
/// The example application exports them as
/// `kv_cache_requests_total{cache="users",result="hit"}` (`hits +
/// negative_hits`), `{result="miss"}` (`misses`) and
/// `kv_cache_loads_total{cache="users"}` (`loads`).
///
/// ```
/// use kv_module::cache_aside::CacheMetrics;
///
/// let metrics = CacheMetrics::default();
/// assert_eq!(metrics.requests(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheMetrics {
    /// `get`s answered by a cached value.
    pub hits: u64,
    /// `get`s answered by a cached "not found".
    pub negative_hits: u64,
    /// `get`s that found nothing usable in the cache (including when the
    /// store failed) and waited for a load.
    pub misses: u64,
    /// Calls of [`Repository::load`](super::Repository::load): one per
    /// miss at most, fewer when concurrent misses share a load.
    pub loads: u64,
    /// Loads that returned an error.
    pub load_errors: u64,
    /// Loaded values (or "not found") written back to the cache.
    pub fills: u64,
    /// Loaded values not written back: the record was written during the
    /// load (a create, update, delete or invalidation ended its ticket), a
    /// write was in progress, the load outlived its ticket, or the store
    /// refused the write (out of memory).
    pub fills_skipped: u64,
    /// Failed cache operations (reads, write-backs, invalidations, leases),
    /// writes the store refused (out of memory), and entries that did not
    /// decode or encode. None of them fails a request. After a failure to
    /// reach the store, reads skip it for a second.
    pub store_errors: u64,
}

impl CacheMetrics {
    /// Every `get`: `hits + negative_hits + misses`.
    pub fn requests(&self) -> u64 {
        self.hits + self.negative_hits + self.misses
    }
}

/// The live counters behind [`CacheMetrics`], and the store's health as
/// the cache last saw it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) negative_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) fills: AtomicU64,
    pub(crate) fills_skipped: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    health: Health,
}

/// Read by every `get`, written only when the store fails or recovers:
/// kept on its own cache line, so that the counters other threads bump
/// on every hit do not make these reads miss.
#[derive(Debug)]
#[repr(align(64))]
struct Health {
    /// Whether the last store operation failed, so that the first failure
    /// of an outage is logged at `warn` and the recovery at `info`, and
    /// the requests in between only at `debug`.
    failing: AtomicBool,
    /// Until when (milliseconds after `epoch`) reads skip the store.
    bypass_until_ms: AtomicU64,
    epoch: Instant,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            failing: AtomicBool::new(false),
            bypass_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

/// Adds one to a counter. Relaxed: the counters are statistics, read
/// without any ordering with the operations they count.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What a cache counts: each is a [`CacheMetrics`] field and a metric of
/// the [`metrics`] facade (the application installs the exporter).
///
/// | event | facade metric |
/// |---|---|
/// | `Hit`, `NegativeHit`, `Miss` | `kv_cache_requests_total{cache, result="hit"|"negative_hit"|"miss"}` |
/// | `Load` | `kv_cache_loads_total{cache}` |
/// | `LoadError` | `kv_cache_load_errors_total{cache}` |
/// | `Fill` | `kv_cache_fills_total{cache}` |
/// | `FillSkipped` | `kv_cache_fills_skipped_total{cache}` |
/// | store errors | `kv_cache_store_errors_total{cache}` |
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Hit,
    NegativeHit,
    Miss,
    Load,
    LoadError,
    Fill,
    FillSkipped,
    StoreError,
}

impl Counters {
    /// Counts `what` for the cache `cache`, in its snapshot and through
    /// the facade.
    pub(crate) fn count(&self, cache: &Arc<str>, what: Count) {
        let (counter, name, result) = match what {
            Count::Hit => (&self.hits, "kv_cache_requests_total", Some("hit")),
            Count::NegativeHit => (
                &self.negative_hits,
                "kv_cache_requests_total",
                Some("negative_hit"),
            ),
            Count::Miss => (&self.misses, "kv_cache_requests_total", Some("miss")),
            Count::Load => (&self.loads, "kv_cache_loads_total", None),
            Count::LoadError => (&self.load_errors, "kv_cache_load_errors_total", None),
            Count::Fill => (&self.fills, "kv_cache_fills_total", None),
            Count::FillSkipped => (&self.fills_skipped, "kv_cache_fills_skipped_total", None),
            Count::StoreError => (&self.store_errors, "kv_cache_store_errors_total", None),
        };
        bump(counter);
        match result {
            Some(result) => {
                metrics::counter!(name, "cache" => Arc::clone(cache), "result" => result)
                    .increment(1);
            }
            None => metrics::counter!(name, "cache" => Arc::clone(cache)).increment(1),
        }
    }

    pub(crate) fn snapshot(&self) -> CacheMetrics {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheMetrics {
            hits: read(&self.hits),
            negative_hits: read(&self.negative_hits),
            misses: read(&self.misses),
            loads: read(&self.loads),
            load_errors: read(&self.load_errors),
            fills: read(&self.fills),
            fills_skipped: read(&self.fills_skipped),
            store_errors: read(&self.store_errors),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.health.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether reads should skip the store (it failed less than
    /// [`READ_BYPASS`] ago).
    pub(crate) fn bypassing(&self) -> bool {
        // The flag first: a healthy store costs no clock read.
        self.health.failing.load(Ordering::Relaxed)
            && self.now_ms() < self.health.bypass_until_ms.load(Ordering::Relaxed)
    }

    /// Counts and logs a failed store operation, and has reads skip the
    /// store for [`READ_BYPASS`].
    pub(crate) fn store_failed(
        &self,
        cache: &Arc<str>,
        op: &'static str,
        key: &str,
        err: &KvError,
    ) {
        self.count(cache, Count::StoreError);
        let cache: &str = cache;
        let until = self.now_ms().saturating_add(READ_BYPASS.as_millis() as u64);
        self.health
            .bypass_until_ms
            .fetch_max(until, Ordering::Relaxed);
        if self.health.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(cache, op, key, error = %err, "cache store still failing");
        } else {
            tracing::warn!(
                cache, op, key, error = %err,
                "cache store failing: reads go to the repository until it recovers"
            );
        }
    }

    /// Notes a store operation that succeeded (logs the end of an outage).
    pub(crate) fn store_ok(&self, cache: &str) {
        if self.health.failing.load(Ordering::Relaxed)
            && self.health.failing.swap(false, Ordering::Relaxed)
        {
            tracing::info!(cache, "cache store recovered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_every_counter() {
        let counters = Counters::default();
        bump(&counters.hits);
        bump(&counters.hits);
        bump(&counters.negative_hits);
        bump(&counters.misses);
        bump(&counters.loads);
        let err = KvError::Config {
            store: "s".into(),
            reason: "x".into(),
        };
        let cache: Arc<str> = Arc::from("c");
        counters.store_failed(&cache, "GET", "k", &err);
        counters.store_failed(&cache, "GET", "k", &err);
        assert!(counters.bypassing());
        counters.store_ok("c");
        let m = counters.snapshot();
        assert_eq!((m.hits, m.negative_hits, m.misses, m.loads), (2, 1, 1, 1));
        assert_eq!(m.store_errors, 2);
        assert_eq!(m.requests(), 4);
        assert!(!counters.health.failing.load(Ordering::Relaxed));
    }
}
