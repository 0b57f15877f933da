//! [`Admission`]: which misses are worth a tracked read. A key enters the
//! near cache on its second miss within the doorkeeper's memory, not its
//! first.
//!
//! # Why
//!
//! A miss that may keep a local copy costs more than a plain `GET`: its
//! read goes through the tracking connection with a `PTTL` beside it (a
//! copy must not outlive the key), Redis records the key in its tracking
//! table (default mode), and the reply is inserted into the map. Measured
//! on the project's two-core machine: `GET` + `PTTL` runs at 0.68–0.80 of
//! a `GET` at 50 tasks (`cargo bench -p kv-module-tests --bench
//! near_cache`, docs/BENCHMARKS.md). In a skewed workload most distinct keys
//! are read once (the long tail): caching them buys nothing, costs that
//! price, and pushes hot copies out of the map. So the first miss of a key
//! is a plain `GET` through the store's connections (as without a near
//! cache) that only notes the key here; a second miss, while the note is
//! still here, reads it tracked and keeps it. A hot key pays one extra
//! plain read per instance, once; a key read once pays nothing extra. This
//! is TinyLFU's "doorkeeper" (Einziger et al., 2017), before the network
//! rather than before the map.
//!
//! # What it holds
//!
//! A Bloom filter of the keys that missed (two bits per key, eight bits of
//! filter per key it remembers), cleared once it has noted as many keys as
//! it remembers. A key noted since the last clear is always admitted (no
//! false "first miss": two hot keys never push each other out); about 5 %
//! of new keys are admitted at once (their bits set by others: a tracked
//! read that was not needed). Neither affects what is served: admission
//! only decides how a miss is read. It remembers one key per 512 bytes of
//! `max_bytes`, at least 1,024 and at most 2^20 keys, in one byte each
//! (64 MiB of `max_bytes`: 128 KiB, outside `max_bytes`). Lock-free: an
//! atomic load per bit, and an atomic `or` per bit when a key is noted.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use quick_cache::DefaultHashBuilder;

/// Bytes of `max_bytes` per key remembered.
const BYTES_PER_KEY: u64 = 512;
/// The fewest keys remembered.
const MIN_KEYS: usize = 1 << 10;
/// The most keys remembered.
const MAX_KEYS: usize = 1 << 20;
/// Bits of filter per key remembered.
const BITS_PER_KEY: usize = 8;

/// The keys that missed recently: a miss of one of them is read tracked
/// and kept; any other miss is read plain, and noted.
pub(crate) struct Admission {
    bits: Box<[AtomicU64]>,
    /// Bits in the filter minus one (a power of two minus one).
    mask: u64,
    /// Keys noted since the last clear, and how many trigger one.
    noted: AtomicUsize,
    capacity: usize,
    hasher: DefaultHashBuilder,
}

impl Admission {
    /// A doorkeeper for a near cache of `max_bytes`.
    pub(crate) fn new(max_bytes: u64) -> Self {
        let wanted = usize::try_from(max_bytes / BYTES_PER_KEY).unwrap_or(MAX_KEYS);
        let capacity = wanted.clamp(MIN_KEYS, MAX_KEYS).next_power_of_two();
        let bits = capacity * BITS_PER_KEY;
        Self {
            bits: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits as u64 - 1,
            noted: AtomicUsize::new(0),
            capacity,
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Whether a miss of `key` (stored form) should be read tracked and
    /// kept: `true` when it missed since the filter was last cleared;
    /// either way it is noted now.
    pub(crate) fn admit(&self, key: &str) -> bool {
        let hash = self.hasher.hash_one(key);
        // Two bit positions from the two halves of the hash.
        let positions = [hash & self.mask, (hash >> 32).rotate_left(7) & self.mask];
        let seen = positions.iter().all(|&bit| {
            let word = &self.bits[(bit / 64) as usize];
            word.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0
        });
        if seen {
            return true;
        }
        for bit in positions {
            self.bits[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
        if self.noted.fetch_add(1, Ordering::Relaxed) + 1 >= self.capacity {
            self.clear();
        }
        false
    }

    /// Whether a `get_many` of `keys` should be read tracked and kept:
    /// `true` when every key missed recently; every key is noted now.
    pub(crate) fn admit_all<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        // Not `all`: it would stop at the first new key without noting the
        // rest.
        let mut every = true;
        for key in keys {
            every &= self.admit(key.as_ref());
        }
        every
    }

    /// Forgets every key (once as many were noted as it remembers).
    /// Racing notes may survive or be lost: either costs one read's kind.
    fn clear(&self) {
        self.noted.store(0, Ordering::Relaxed);
        for word in self.bits.iter() {
            word.store(0, Ordering::Relaxed);
        }
    }

    /// How many keys it remembers.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_admitted_on_its_second_miss() {
        let admission = Admission::new(64 << 20);
        assert!(!admission.admit("users:1"), "first miss: noted only");
        assert!(admission.admit("users:1"), "second miss: admitted");
        assert!(admission.admit("users:1"), "and after");
        assert!(!admission.admit("users:2"), "another key starts over");
    }

    #[test]
    fn get_many_is_admitted_when_every_key_missed_before_and_notes_them_all() {
        let admission = Admission::new(1 << 20);
        assert!(!admission.admit("a"), "noted");
        assert!(!admission.admit_all(&["a", "b", "c"]), "b and c are new");
        assert!(admission.admit_all(&["a", "b", "c"]), "all noted by then");
    }

    #[test]
    fn the_filter_is_bounded_whatever_max_bytes_says() {
        assert_eq!(Admission::new(0).capacity(), MIN_KEYS);
        assert_eq!(Admission::new(64 << 20).capacity(), 1 << 17);
        assert_eq!(Admission::new(u64::MAX).capacity(), MAX_KEYS);
        assert_eq!(Admission::new(64 << 20).bits.len() * 8, 128 << 10);
    }

    #[test]
    fn keys_never_push_each_other_out_until_the_filter_is_cleared() {
        let admission = Admission::new(0);
        let keys: Vec<String> = (0..MIN_KEYS / 2).map(|i| format!("k{i}")).collect();
        let new = keys.iter().filter(|key| !admission.admit(key)).count();
        assert!(new > keys.len() * 9 / 10, "most are new: {new}");
        assert!(keys.iter().all(|key| admission.admit(key)), "all noted");
        // As many more new keys as it remembers clear it.
        for i in 0..MIN_KEYS {
            admission.admit(&format!("other{i}"));
        }
        let kept = keys.iter().filter(|key| admission.admit(key)).count();
        assert!(
            kept < keys.len() / 2,
            "forgotten after a clear: {kept} kept"
        );
    }
}
