//! [`NearCacheStats`]: what a near cache did, as counters since the store
//! opened.

use std::sync::atomic::{AtomicU64, Ordering};

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

/// The live counters behind [`NearCacheStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) evictions: AtomicU64,
}

impl Counters {
    /// Adds `n` to `counter`; relaxed: the counters order nothing.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters with what the map holds and the connection state.
    pub(crate) fn snapshot(&self, bytes_held: u64, entries: u64, tracking: bool) -> NearCacheStats {
        NearCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            bytes_held,
            entries,
            tracking,
        }
    }
}
