//! [`DenialMemo`]: denials a limiter already knows the answer to, served
//! from memory until the store's `retry_after` has passed, so that a
//! client hammering past its limit costs no round trip per request.
//!
//! Why it never denies what the store would allow: a denial's
//! `retry_after` is the earliest time the same check can pass given what
//! the store holds; every other check (on any instance) only consumes
//! more, so that time can only move later. The memo keeps it from the
//! moment the check was *sent* (at or before the store's clock read it),
//! so its deadline is at or before the store's; and it answers only
//! checks of at least the denied cost (a cheaper one may pass sooner, and
//! goes to the store). Allowed checks always go to the store, so the
//! count of allowed checks across instances stays exact.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use foldhash::fast::RandomState;
use std::sync::Mutex;
use std::time::Instant;

use super::decision::Decision;

/// Shards of the map: checks of different keys rarely wait on one lock.
const SHARDS: usize = 16;

/// A denial, as remembered, with its key (the map is keyed by the key's
/// hash; a colliding key reads as absent).
#[derive(Clone, Debug)]
struct Denied {
    key: Box<str>,
    /// The smallest cost this denial answers.
    cost: u64,
    /// When the same check may pass (send time + `retry_after`).
    retry_at: Instant,
    /// When the quota is whole again (send time + `reset_after`).
    reset_at: Instant,
}

/// One shard: denials by the key's hash, which is already a good hash
/// (hashed once per check, not again by the map).
type Shard = HashMap<u64, Denied, BuildHasherDefault<Prehashed>>;

/// The identity hasher of a map whose keys are hashes.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are `u64`); fold anything else.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Denied keys and until when, bounded by a number of keys.
#[derive(Debug)]
pub(crate) struct DenialMemo {
    shards: Vec<Mutex<Shard>>,
    /// Seeded per memo (keys come from clients, so not a fixed hash), and
    /// cheap: the hash is most of a memo lookup's cost with SipHash.
    hasher: RandomState,
    /// Keys per shard at most.
    per_shard: usize,
}

impl DenialMemo {
    /// A memo of at most `max_keys` keys (0: remembers nothing).
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            per_shard: max_keys.div_ceil(SHARDS),
        }
    }

    /// The key's hash and its shard.
    fn shard(&self, key: &str) -> (u64, &Mutex<Shard>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[(hash % SHARDS as u64) as usize])
    }

    /// The denial of `key` for a check of `cost` at `now`, when the memo
    /// knows it (`limit` fills the decision's quota).
    pub(crate) fn lookup(
        &self,
        key: &str,
        cost: u64,
        limit: u64,
        now: Instant,
    ) -> Option<Decision> {
        if self.per_shard == 0 {
            return None;
        }
        let (hash, shard) = self.shard(key);
        let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let denied = shard.get(&hash).filter(|d| &*d.key == key)?;
        (cost >= denied.cost && now < denied.retry_at).then(|| Decision {
            allowed: false,
            limit,
            remaining: 0,
            reset_after: denied.reset_at.saturating_duration_since(now),
            retry_after: Some(denied.retry_at.saturating_duration_since(now)),
        })
    }

    /// Remembers that a check of `cost` for `key`, sent at `sent`, was
    /// denied with `decision`. A full shard first drops what has expired;
    /// still full, the denial is not remembered (the next check asks the
    /// store, as without a memo).
    pub(crate) fn remember(&self, key: &str, cost: u64, sent: Instant, decision: &Decision) {
        let Some(retry_after) = decision.retry_after.filter(|_| self.per_shard > 0) else {
            return;
        };
        let denied = Denied {
            key: key.into(),
            cost,
            retry_at: sent + retry_after,
            reset_at: sent + decision.reset_after.max(retry_after),
        };
        let (hash, shard) = self.shard(key);
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&hash) {
            let now = Instant::now();
            shard.retain(|_, d| d.retry_at > now);
            if shard.len() >= self.per_shard {
                return;
            }
        }
        shard.insert(hash, denied);
    }

    /// How many keys are remembered (expired ones included until their
    /// shard is next full).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// The default bound: 10 000 keys per limiter (about 1 MB).
pub(crate) const DEFAULT_MAX_KEYS: usize = 10_000;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn denied(retry_ms: u64, reset_ms: u64) -> Decision {
        Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_after: Duration::from_millis(reset_ms),
            retry_after: Some(Duration::from_millis(retry_ms)),
        }
    }

    #[test]
    fn answers_until_retry_after_from_the_send_time_and_only_for_costs_as_high() {
        let memo = DenialMemo::new(100);
        let sent = Instant::now();
        memo.remember("k", 2, sent, &denied(1_000, 5_000));
        let d = memo
            .lookup("k", 2, 5, sent + Duration::from_millis(400))
            .unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(600)));
        assert_eq!(d.reset_after, Duration::from_millis(4_600));
        assert!(memo.lookup("k", 3, 5, sent).is_some(), "a costlier check");
        assert!(
            memo.lookup("k", 1, 5, sent).is_none(),
            "a cheaper one asks the store"
        );
        assert!(
            memo.lookup("k", 2, 5, sent + Duration::from_millis(1_000))
                .is_none()
        );
        assert!(memo.lookup("other", 2, 5, sent).is_none());
    }

    #[test]
    fn allowed_decisions_and_a_zero_bound_remember_nothing() {
        let memo = DenialMemo::new(100);
        let allowed = Decision {
            allowed: true,
            retry_after: None,
            ..denied(0, 1_000)
        };
        memo.remember("k", 1, Instant::now(), &allowed);
        assert_eq!(memo.len(), 0);
        let off = DenialMemo::new(0);
        off.remember("k", 1, Instant::now(), &denied(1_000, 1_000));
        assert!(off.lookup("k", 1, 5, Instant::now()).is_none());
    }

    #[test]
    fn the_bound_holds_and_expired_denials_make_room() {
        let memo = DenialMemo::new(SHARDS * 4);
        // Denials sent a second ago with a 1 ms retry: expired already.
        let past = Instant::now() - Duration::from_secs(1);
        for i in 0..1_000 {
            memo.remember(&format!("k{i}"), 1, past, &denied(1, 1));
        }
        assert!(memo.len() <= SHARDS * 4, "{}", memo.len());
        memo.remember("fresh", 1, Instant::now(), &denied(60_000, 60_000));
        assert!(memo.lookup("fresh", 1, 5, Instant::now()).is_some());
        assert!(memo.len() <= SHARDS * 4);
    }
}
