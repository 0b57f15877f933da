//! [`NearCacheStats`]: what a near cache did, as counters since the store
//! opened; the same figures go out through the [`metrics`] facade (the
//! application installs the exporter; without one they cost an atomic
//! add):
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `kv_near_cache_requests_total` | counter | `store`, `result` (`hit`, `miss`) | reads of tracked keys, answered from memory or sent to Redis |
//! | `kv_near_cache_invalidations_total` | counter | `store` | keys Redis reported changed |
//! | `kv_near_cache_flushes_total` | counter | `store` | whole-cache drops (`FLUSHDB`, a lost or reconnected tracking connection) |
//! | `kv_near_cache_evictions_total` | counter | `store` | local copies dropped to stay within `max_bytes` |
//! | `kv_near_cache_bytes` | gauge | `store` | bytes held (keys, values, per-entry overhead); refreshed once a second |
//! | `kv_near_cache_entries` | gauge | `store` | local copies held; refreshed once a second |
//! | `kv_near_cache_tracking` | gauge | `store` | 1 while the tracking connection is up, else 0 |
//!
//! The counter handles are registered once, when the store opens, so a
//! hit costs no registry lookup: install the recorder before opening
//! stores (as for every metric of this crate).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads of tracked keys, by `result`.
pub const REQUESTS: &str = "kv_near_cache_requests_total";
/// Keys Redis reported changed.
pub const INVALIDATIONS: &str = "kv_near_cache_invalidations_total";
/// Whole-cache drops.
pub const FLUSHES: &str = "kv_near_cache_flushes_total";
/// Copies dropped to stay within `max_bytes`.
pub const EVICTIONS: &str = "kv_near_cache_evictions_total";
/// Bytes held.
pub const BYTES: &str = "kv_near_cache_bytes";
/// Copies held.
pub const ENTRIES: &str = "kv_near_cache_entries";
/// Whether tracking is on.
pub const TRACKING: &str = "kv_near_cache_tracking";

/// A snapshot of a near cache's counters (since the store opened) and of
/// what it holds now, from
/// [`RedisStore::near_cache_stats`](crate::RedisStore::near_cache_stats).
/// The counters only grow; compare two snapshots for rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheStats {
    /// Reads answered from memory (a key of `get_many` counts once).
    pub hits: u64,
    /// Reads of keys with no valid local copy, sent to Redis.
    pub misses: u64,
    /// Keys Redis reported changed (invalidation pushes, one per key).
    pub invalidations: u64,
    /// Whole-cache drops: a `FLUSHDB`/`FLUSHALL` push, a lost or
    /// reconnected tracking connection, a failed liveness `PING`, or a
    /// repair of the store's connections.
    pub flushes: u64,
    /// Local copies dropped to stay within `max_bytes` (and values too
    /// large to be held at all).
    pub evictions: u64,
    /// The bytes held now: keys, values and the per-entry overhead, at
    /// most `max_bytes`.
    pub bytes_held: u64,
    /// The local copies held now (expired ones may be among them until
    /// they are read or evicted).
    pub entries: u64,
    /// Whether the tracking connection is up with `CLIENT TRACKING` on:
    /// while it is not, reads go to Redis and nothing is kept.
    pub tracking: bool,
}

/// One counter: an atomic for [`NearCacheStats`] and the facade's handle.
#[derive(Debug)]
pub(crate) struct Count {
    value: AtomicU64,
    metric: metrics::Counter,
}

impl Count {
    fn new(metric: metrics::Counter) -> Self {
        Self {
            value: AtomicU64::new(0),
            metric,
        }
    }

    /// Adds `n`; relaxed: the counters order nothing.
    pub(crate) fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
        self.metric.increment(n);
    }

    /// The count so far.
    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// The live counters behind [`NearCacheStats`], and the gauges of what
/// the map holds.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) hits: Count,
    pub(crate) misses: Count,
    pub(crate) invalidations: Count,
    pub(crate) flushes: Count,
    pub(crate) evictions: Count,
    bytes: metrics::Gauge,
    entries: metrics::Gauge,
    tracking: metrics::Gauge,
}

impl Counters {
    /// The counters of `store`'s near cache, registered with the
    /// installed recorder (no-ops without one).
    pub(crate) fn new(store: &Arc<str>) -> Self {
        let label = || Arc::clone(store);
        Self {
            hits: Count::new(metrics::counter!(REQUESTS, "store" => label(), "result" => "hit")),
            misses: Count::new(metrics::counter!(REQUESTS, "store" => label(), "result" => "miss")),
            invalidations: Count::new(metrics::counter!(INVALIDATIONS, "store" => label())),
            flushes: Count::new(metrics::counter!(FLUSHES, "store" => label())),
            evictions: Count::new(metrics::counter!(EVICTIONS, "store" => label())),
            bytes: metrics::gauge!(BYTES, "store" => label()),
            entries: metrics::gauge!(ENTRIES, "store" => label()),
            tracking: metrics::gauge!(TRACKING, "store" => label()),
        }
    }

    /// The counters with what the map holds and the connection state;
    /// also sets the gauges to them.
    pub(crate) fn snapshot(&self, bytes_held: u64, entries: u64, tracking: bool) -> NearCacheStats {
        self.bytes.set(bytes_held as f64);
        self.entries.set(entries as f64);
        self.tracking.set(if tracking { 1.0 } else { 0.0 });
        NearCacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            invalidations: self.invalidations.get(),
            flushes: self.flushes.get(),
            evictions: self.evictions.get(),
            bytes_held,
            entries,
            tracking,
        }
    }
}
