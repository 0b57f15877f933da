//! [`CountBatches`]: fixed-window checks of one key that are in flight on
//! one instance at the same time, counted by one `INCRBY`.
//!
//! A fixed-window check of cost 1 adds 1 to the key's counter and compares
//! the new count with the limit ([`Reply::fixed_window_count`]). When a
//! check of a key finds another check of the same key waiting for the
//! store, it does not send its own round trip: it joins the next batch.
//! When the round trip in flight returns, the first check of the batch
//! sends `INCRBY key k` for the `k` checks of its batch and hands each its
//! own count, `c − k + 1 … c` for the new value `c`. That is what `k`
//! increments of 1 sent back to back would have given: `INCRBY` is atomic,
//! so the counts of every instance are still distinct and consecutive, and
//! exactly the checks holding the counts 1 to the limit pass, across any
//! number of instances. The key's expiry is armed by the same call
//! (`PEXPIRE … NX`), and its TTL read by it, as for a single check.
//!
//! A key with one check at a time never waits: its check leads a batch of
//! one and is sent at once, as without batching. Under load on one key
//! (one busy client, or a key shared by many), a check waits for at most
//! the round trip in flight before its own is sent, and the store
//! receives one call per batch instead of one per check.
//!
//! A batch that fails (store unreachable, timed out) fails every check in
//! it, each with an error of the same kind naming the store and key; each
//! check then goes through its own fail-open / fail-closed handling.
//!
//! Cancellation: a check whose future is dropped while it waits simply
//! leaves (its count, if already taken, is spent, as a cancelled check's
//! `INCRBY` would be). A check dropped while it leads a batch hands the
//! queue behind it to the next waiting check; the checks of its own batch
//! count alone. If its `INCRBY` had reached the server, those units are
//! spent: the limiter may then allow fewer in that window, never more.
//!
//! Memory: a key has an entry only while a round trip of it is in flight
//! (the list of checks waiting for the next batch), so the map holds at
//! most as many keys as there are checks in flight.
//!
//! [`Reply::fixed_window_count`]: super::scripts::Reply::fixed_window_count

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::fast::RandomState;
use tokio::sync::oneshot;

use crate::error::{BoxError, KvError};
use crate::store::{KeyTtl, KvStore};

/// Shards of the map: checks of different keys rarely wait on one lock.
const SHARDS: usize = 16;

/// A check's count after the increment, and the key's TTL.
pub(crate) type Counted = Result<(i64, KeyTtl), KvError>;

/// What a waiting check is told.
enum Turn {
    /// The batch it joined was counted: its own count.
    Counted(Counted),
    /// The round trip before it is done: it sends the next batch.
    Lead(Baton),
}

/// Per key in flight: the checks waiting for the next batch.
type Shard = HashMap<Box<str>, Vec<oneshot::Sender<Turn>>, RandomState>;

/// The fixed-window counts in flight of one limiter (and its clones).
pub(crate) struct CountBatches {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl Default for CountBatches {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
        }
    }
}

impl std::fmt::Debug for CountBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountBatches").finish_non_exhaustive()
    }
}

impl CountBatches {
    /// Adds 1 to the counter `key` of `store` (armed for `window` when
    /// new), in a batch with the other checks of `key` in flight; this
    /// check's count and the key's TTL.
    pub(crate) async fn count(
        self: &Arc<Self>,
        store: &Arc<dyn KvStore>,
        key: &str,
        window: Duration,
    ) -> Counted {
        let joined = {
            let mut map = self.lock(key);
            match map.get_mut(key) {
                Some(waiting) => {
                    let (sender, receiver) = oneshot::channel();
                    waiting.push(sender);
                    Some(receiver)
                }
                None => {
                    map.insert(key.into(), Vec::new());
                    None
                }
            }
        };
        let mut baton = match joined {
            None => Baton {
                batches: Arc::clone(self),
                key: key.into(),
                batch: Some(Vec::new()),
            },
            Some(receiver) => match receiver.await {
                Ok(Turn::Counted(counted)) => return counted,
                Ok(Turn::Lead(baton)) => baton,
                // The check leading this one's batch was dropped before it
                // counted: count alone.
                Err(_) => return store.incr_by_with_ttl(key, 1, window).await,
            },
        };
        let size = 1 + baton.batch.as_ref().map_or(0, Vec::len);
        let counted = store
            .incr_by_with_ttl(key, i64::try_from(size).unwrap_or(i64::MAX), window)
            .await;
        baton.finish(counted, store.name())
    }

    fn lock(&self, key: &str) -> MutexGuard<'_, Shard> {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        // A panic while holding the lock leaves the map consistent (every
        // change is one insert, remove or take).
        shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The checks that joined while `key`'s batch was in flight become the
    /// next batch, led by the first of them still waiting; with none, the
    /// key has no round trip in flight any more.
    fn hand_off(self: &Arc<Self>, key: &str) {
        let mut map = self.lock(key);
        let Some(waiting) = map.get_mut(key) else {
            return;
        };
        let mut queue = std::mem::take(waiting);
        while !queue.is_empty() {
            let head = queue.remove(0);
            let baton = Baton {
                batches: Arc::clone(self),
                key: key.into(),
                batch: Some(queue),
            };
            match head.send(Turn::Lead(baton)) {
                Ok(()) => return,
                // That check left: the next one leads. (Taking the batch
                // out first makes the returned baton's drop a no-op.)
                Err(Turn::Lead(mut baton)) => queue = baton.batch.take().unwrap_or_default(),
                Err(Turn::Counted(_)) => return,
            }
        }
        map.remove(key);
    }
}

/// The right to send a key's next batch, held by the check leading it:
/// it hands the counts out when its round trip returns, and the queue to
/// the next check in any case, also when it is dropped unused (its check
/// cancelled, or the message carrying it never read).
struct Baton {
    batches: Arc<CountBatches>,
    key: Box<str>,
    /// The other checks of the batch (`None` once handed their counts).
    batch: Option<Vec<oneshot::Sender<Turn>>>,
}

impl Baton {
    /// Gives each check of the batch its count (this one the first), then
    /// hands the queue on; this check's own count.
    fn finish(&mut self, counted: Counted, store: &str) -> Counted {
        let batch = self.batch.take().unwrap_or_default();
        let size = i64::try_from(batch.len()).unwrap_or(i64::MAX);
        let own = match counted {
            Ok((last, ttl)) => {
                let first = last - size;
                for (count, waiter) in (first + 1..).zip(batch) {
                    // A waiter that left has spent its count.
                    let _ = waiter.send(Turn::Counted(Ok((count, ttl))));
                }
                Ok((first, ttl))
            }
            Err(error) => {
                for waiter in batch {
                    let _ = waiter.send(Turn::Counted(Err(sibling(&error, store, &self.key))));
                }
                Err(error)
            }
        };
        self.batches.hand_off(&self.key);
        own
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        if self.batch.take().is_some() {
            // Dropped before its round trip returned: its batch's checks
            // count alone (their senders go with it), the queue goes on.
            self.batches.hand_off(&self.key);
        }
    }
}

/// The error a check of a failed batch gets: the batch's, with its kind
/// (so `is_unavailable` answers the same) and the store and key named.
fn sibling(error: &KvError, store: &str, key: &str) -> KvError {
    let source: BoxError = format!("the batch of checks this one joined failed: {error}").into();
    match error {
        KvError::Unavailable { store, addr, .. } => KvError::Unavailable {
            store: Arc::clone(store),
            addr: Arc::clone(addr),
            source,
        },
        KvError::Timeout { store, op, .. } => KvError::Timeout {
            store: Arc::clone(store),
            op,
            key: Some(key.to_owned()),
            source,
        },
        _ => KvError::Backend {
            store: Arc::from(store),
            op: "rate limit count",
            key: Some(key.to_owned()),
            source,
        },
    }
}
