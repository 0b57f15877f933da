//! [`LocalMap`]: the near cache's local copies, bounded in bytes, and the
//! generation check that keeps a read racing an invalidation from
//! inserting a stale value.
//!
//! # Why a generation check
//!
//! A miss reads the key from Redis and inserts the reply. The reply and an
//! invalidation of the same key can arrive back to back on the tracking
//! connection: the driver task applies the invalidation (nothing to remove
//! yet) while the reading task is still on its way to insert the old
//! value, which then stays until its lifetime ends, since Redis sends one
//! invalidation per read. That is the bug measured in redis-rs 1.8.1's
//! `cache-aio` (300 of 300 rounds stale, `docs/design/near-cache-research.md`
//! §1). So a reader takes a [`Ticket`] *before* sending: the generation of
//! the key's stripe and the cache's epoch. An invalidation bumps the
//! stripe's generation under the stripe lock; the insert happens under the
//! same lock and only if neither moved. A shared stripe may refuse an
//! insert it need not (a later miss reads again); it never lets a stale
//! one in.
//!
//! A flush (the tracking connection was lost, `FLUSHDB`, a repair) bumps
//! the epoch: O(1), and every hit compares the entry's epoch with the
//! current one, so an insert racing the flush is never served either.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use super::config::NearCacheConfig;
use super::stats::Counters;

/// Bytes counted for an entry on top of its key and value: the entry
/// itself, the map's slot and the allocations' headers, roughly.
pub(crate) const ENTRY_OVERHEAD: u64 = 96;

/// Stripes of the generation check: many, so two keys rarely share one
/// (a shared stripe costs only a refused insert).
const STRIPES: usize = 1024;

/// Shards of the byte-bounded map (a power of two).
const SHARDS: u64 = 16;

/// A local copy: the value (`None`: the key did not exist, which Redis
/// tracks too), when it stops being valid, and the epoch it was read in.
#[derive(Clone)]
struct Entry {
    value: Option<Arc<[u8]>>,
    expires_at: Instant,
    epoch: u64,
}

/// Weighs an entry by its bytes.
#[derive(Clone)]
struct Bytes;

impl Weighter<String, Entry> for Bytes {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        let value = entry.value.as_ref().map_or(0, |v| v.len());
        (key.len() + value) as u64 + ENTRY_OVERHEAD
    }
}

/// Counts the entries the map drops to stay within its bound.
#[derive(Clone)]
struct CountEvictions(Arc<Counters>);

impl Lifecycle<String, Entry> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: String, _entry: Entry) {
        self.0.evictions.add(1);
    }
}

/// What a reader holds between sending a read and inserting its reply.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    stripe: usize,
    generation: u64,
    epoch: u64,
    sent_at: Instant,
}

/// The local copies of one store (keys as stored, prefix included).
pub(crate) struct LocalMap {
    cache: Cache<String, Entry, Bytes, DefaultHashBuilder, CountEvictions>,
    /// Generation per stripe. A std lock is fine: held for a map insert
    /// or removal, never across an `.await`.
    stripes: Box<[Mutex<u64>]>,
    hasher: RandomState,
    epoch: AtomicU64,
    ttl: Duration,
    counters: Arc<Counters>,
}

impl LocalMap {
    /// An empty map bounded by `config.max_bytes` (rounded down to a
    /// multiple of the shard count, so the shards' bounds add up to at
    /// most `max_bytes`).
    pub(crate) fn new(config: &NearCacheConfig, counters: Arc<Counters>) -> Self {
        let capacity = (config.max_bytes / SHARDS * SHARDS).max(SHARDS);
        // quick_cache sizes its record of recently evicted keys (hashes
        // only, outside `max_bytes`) from this estimate: one per KiB keeps
        // that record under ~1/50 of the bound.
        let items = usize::try_from(capacity / 1024)
            .unwrap_or(usize::MAX)
            .max(64);
        let options = OptionsBuilder::new()
            .shards(SHARDS as usize)
            .estimated_items_capacity(items)
            .weight_capacity(capacity)
            .build();
        // Every option is set above; `build` fails only when one is not.
        let options = match options {
            Ok(options) => options,
            Err(e) => unreachable!("near cache options: {e}"),
        };
        let cache = Cache::with_options(
            options,
            Bytes,
            DefaultHashBuilder::default(),
            CountEvictions(counters.clone()),
        );
        Self {
            cache,
            stripes: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
            hasher: RandomState::new(),
            epoch: AtomicU64::new(0),
            ttl: config.ttl,
            counters,
        }
    }

    /// The local copy of `key`: `Some(value)` on a hit (`value` is `None`
    /// for a key known not to exist), `None` when there is no valid copy.
    pub(crate) fn lookup(&self, key: &str) -> Option<Option<Vec<u8>>> {
        let found = self.cache.get(key).filter(|entry| {
            entry.epoch == self.epoch.load(Ordering::Acquire) && entry.expires_at > Instant::now()
        });
        match found {
            Some(entry) => {
                self.counters.hits.add(1);
                Some(entry.value.as_deref().map(<[u8]>::to_vec))
            }
            None => {
                self.counters.misses.add(1);
                None
            }
        }
    }

    /// Taken before a read of `key` is sent; see [`fill`](Self::fill).
    pub(crate) fn ticket(&self, key: &str) -> Ticket {
        let stripe = self.stripe(key.as_bytes());
        let generation = *self.stripes[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Ticket {
            stripe,
            generation,
            epoch: self.epoch.load(Ordering::Acquire),
            sent_at: Instant::now(),
        }
    }

    /// Keeps the reply to a read of `key` sent under `ticket` — `value`,
    /// and the key's remaining lifetime `pttl_ms` as `PTTL` answered it —
    /// unless the key was invalidated or the cache flushed since the ticket
    /// was taken. The copy lives until `min(PTTL, ttl)` after the read was
    /// *sent*. Returns whether it was kept.
    pub(crate) fn fill(
        &self,
        key: &str,
        ticket: Ticket,
        value: Option<&[u8]>,
        pttl_ms: i64,
    ) -> bool {
        let lifetime = match pttl_ms {
            // It exists but has no value for us: not a string.
            -1.. if value.is_none() => return false,
            // No expiry.
            -1 => self.ttl,
            // A missing key (Redis tracks those too).
            -2 if value.is_none() => self.ttl,
            ms if ms > 0 => Duration::from_millis(ms.unsigned_abs()).min(self.ttl),
            // Expired between MGET and PTTL: its invalidation follows.
            _ => return false,
        };
        let entry = Entry {
            value: value.map(Arc::from),
            expires_at: ticket.sent_at + lifetime,
            epoch: ticket.epoch,
        };
        let generation = self.stripes[ticket.stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *generation != ticket.generation || self.epoch.load(Ordering::Acquire) != ticket.epoch {
            return false;
        }
        self.cache.insert(key.to_owned(), entry);
        true
    }

    /// Whether no key of `tickets` was invalidated, and the cache not
    /// flushed, since they were taken: copies read after taking them are
    /// then all valid at one instant.
    pub(crate) fn unchanged(&self, tickets: &[Ticket]) -> bool {
        let epoch = self.epoch.load(Ordering::Acquire);
        tickets.iter().all(|ticket| {
            ticket.epoch == epoch
                && *self.stripes[ticket.stripe]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    == ticket.generation
        })
    }

    /// Drops the local copy of `key` (stored form, as Redis names it in an
    /// invalidation) and refuses every insert of a read sent before now.
    pub(crate) fn invalidate(&self, key: &[u8]) {
        let stripe = self.stripe(key);
        let mut generation = self.stripes[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *generation = generation.wrapping_add(1);
        if let Ok(key) = std::str::from_utf8(key) {
            self.cache.remove(key);
        }
    }

    /// Drops every local copy and refuses every insert of a read sent
    /// before now.
    pub(crate) fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.clear();
        self.counters.flushes.add(1);
    }

    /// The bytes the local copies weigh now.
    pub(crate) fn bytes_held(&self) -> u64 {
        self.cache.weight()
    }

    /// The number of local copies now.
    pub(crate) fn entries(&self) -> u64 {
        self.cache.len() as u64
    }

    fn stripe(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) % STRIPES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(max_bytes: u64) -> LocalMap {
        let config = NearCacheConfig::new()
            .with_max_bytes(max_bytes)
            .with_ttl(Duration::from_secs(30));
        LocalMap::new(&config, Arc::new(Counters::new(&Arc::from("test"))))
    }

    #[test]
    fn a_fill_then_a_hit() {
        let map = map(1 << 20);
        assert_eq!(map.lookup("k"), None);
        let ticket = map.ticket("k");
        assert!(map.fill("k", ticket, Some(b"v"), -1));
        assert_eq!(map.lookup("k"), Some(Some(b"v".to_vec())));
        let ticket = map.ticket("missing");
        assert!(map.fill("missing", ticket, None, -2));
        assert_eq!(map.lookup("missing"), Some(None));
    }

    #[test]
    fn an_invalidation_after_the_send_refuses_the_insert() {
        let map = map(1 << 20);
        let ticket = map.ticket("k");
        // The reply and the invalidation arrive back to back: the driver
        // applies the invalidation before the reader inserts.
        map.invalidate(b"k");
        assert!(!map.fill("k", ticket, Some(b"old"), -1));
        assert_eq!(map.lookup("k"), None);
        // A read sent after the invalidation is kept.
        let ticket = map.ticket("k");
        assert!(map.fill("k", ticket, Some(b"new"), -1));
        assert_eq!(map.lookup("k"), Some(Some(b"new".to_vec())));
        map.invalidate(b"k");
        assert_eq!(map.lookup("k"), None);
    }

    #[test]
    fn a_flush_drops_everything_and_refuses_reads_in_flight() {
        let map = map(1 << 20);
        let before = map.ticket("a");
        let ticket = map.ticket("b");
        assert!(map.fill("b", ticket, Some(b"1"), -1));
        map.flush();
        assert_eq!(map.lookup("b"), None);
        assert!(!map.fill("a", before, Some(b"1"), -1));
        assert_eq!(map.lookup("a"), None);
        assert_eq!(map.entries(), 0);
    }

    #[test]
    fn a_copy_never_outlives_the_redis_ttl() {
        let map = map(1 << 20);
        let ticket = map.ticket("k");
        assert!(map.fill("k", ticket, Some(b"v"), 50));
        assert!(
            ticket.sent_at + Duration::from_millis(50)
                >= map
                    .cache
                    .get("k")
                    .map(|e| e.expires_at)
                    .unwrap_or(ticket.sent_at)
        );
        let ticket = map.ticket("k");
        assert!(
            !map.fill("k", ticket, Some(b"v"), -2),
            "expired between GET and PTTL"
        );
        let ticket = map.ticket("j");
        assert!(map.fill("j", ticket, Some(b"v"), 3_600_000));
        let kept = map.cache.get("j").map(|e| e.expires_at);
        assert!(kept.is_some_and(|at| at <= ticket.sent_at + Duration::from_secs(30)));
    }

    #[test]
    fn the_bytes_held_stay_within_the_bound() {
        let max = 64 * 1024;
        let map = map(max);
        let value = vec![7u8; 500];
        for i in 0..2_000 {
            let key = format!("key:{i}");
            let ticket = map.ticket(&key);
            map.fill(&key, ticket, Some(&value), -1);
            assert!(map.bytes_held() <= max, "{} > {max}", map.bytes_held());
        }
        assert!(map.counters.evictions.get() > 0);
    }
}
