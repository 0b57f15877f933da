//! [`CountBatches`]: fixed-window checks of one key that are in flight on
//! one instance at the same time, counted by one `INCRBY`.
//!
//! A fixed-window check of cost 1 adds 1 to the key's counter and compares
//! the new count with the limit ([`Reply::fixed_window_count`]). A check
//! of a key with no other check of it in flight is sent at once, by the
//! check itself, as without batching (when no check of any key sharing
//! its hash slot is in flight either, without touching the map: one
//! atomic add and subtract). A check that finds one in flight queues
//! instead, and a counting task (spawned on the runtime for the key; one
//! at a time, living while its queue is not empty) sends `INCRBY key k`
//! for the `k` checks queued and hands each its own count, `c − k + 1 … c` for the
//! new value `c`; checks arriving meanwhile make up its next batch. That
//! is what `k` increments of 1 sent back to back would have given:
//! `INCRBY` is atomic, so the counts of every instance are still distinct
//! and consecutive, and exactly the checks holding the counts 1 to the
//! limit pass, across any number of instances. The key's expiry is armed
//! by the same call (`PEXPIRE … NX`), and its TTL read by it, as for a
//! single check.
//!
//! Under load on one key (one busy client, or a key many share), the
//! store then receives one call per batch instead of one per check, and a
//! queued check waits for at most the batch in flight before its own is
//! sent. No check waits on another check's future: the first is sent by
//! its own check, the batches by the counting task, which the runtime
//! polls, so a check that is cancelled, or held without being polled,
//! holds up no other.
//!
//! A batch that fails fails every check in it: an unreachable store or a
//! timeout as the same kind of error (`is_unavailable` answers alike),
//! anything else as a backend error naming the store, the key and the
//! batch's error. Each check then goes through its own fail-open /
//! fail-closed handling.
//!
//! Cancellation: a queued check that leaves before its batch is sent is
//! not counted; one that leaves after has spent its count, as a cancelled
//! check's `INCRBY` would have. If the counting task is dropped (the
//! runtime shutting down), the checks it would have counted count alone
//! (if its batch had reached the server, those units are spent as well:
//! stricter, never looser). A check that does not run as a tokio task
//! (a runtime's `block_on`, another executor) is never queued: it counts
//! alone, as nothing says a task spawned for it would be run.
//!
//! Memory: a key has an entry only while a check or a batch of it is in
//! flight, so the map holds at most as many keys as there are.
//!
//! [`Reply::fixed_window_count`]: super::scripts::Reply::fixed_window_count

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::fast::RandomState;
use tokio::sync::oneshot;

use crate::error::{BoxError, KvError};
use crate::store::{KeyTtl, KvStore};

/// Shards of the map: checks of different keys rarely wait on one lock.
const SHARDS: usize = 16;

/// Slots counting the checks in flight by key hash: a check whose slot
/// holds none is sent at once without touching the map.
const SLOTS: usize = 1024;

/// A check's count after the increment, and the key's TTL.
pub(crate) type Counted = Result<(i64, KeyTtl), KvError>;

/// A key's checks in flight.
#[derive(Default)]
struct InFlight {
    /// Whether a check is being sent by itself (at most one at a time).
    direct: bool,
    /// Whether the key's counting task runs.
    counting: bool,
    /// The checks waiting for the counting task's next batch.
    queue: Vec<oneshot::Sender<Counted>>,
}

type Shard = HashMap<Box<str>, InFlight, RandomState>;

/// The fixed-window counts in flight of one limiter (and its clones).
pub(crate) struct CountBatches {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    /// Checks in flight per slot (a key's hash modulo [`SLOTS`]).
    in_flight: Box<[AtomicU32]>,
}

impl std::fmt::Debug for CountBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountBatches").finish_non_exhaustive()
    }
}

impl Default for CountBatches {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            in_flight: (0..SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

/// How a check is counted.
enum Route {
    /// By itself, now.
    Direct,
    /// In a batch of the counting task (to be spawned, when given).
    Queued(oneshot::Receiver<Counted>, Option<Counter>),
    /// By itself, without batching: it does not run as a tokio task, so
    /// nothing says a counting task it spawned would be run.
    Alone,
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
        // No check of any key of this slot in flight (the common case: one
        // check of a key at a time): sent at once. The map does not know
        // of it; a check meeting it goes through the map and is sent by
        // itself too, and the ones after that are batched.
        let slot = &self.in_flight[self.hasher.hash_one(key) as usize % SLOTS];
        let alone = slot.fetch_add(1, Ordering::Relaxed) == 0;
        let _slot = InFlightSlot(slot);
        if alone {
            return store.incr_by_with_ttl(key, 1, window).await;
        }
        let route = {
            let mut map = self.lock(key);
            let in_flight = match map.get_mut(key) {
                Some(in_flight) => in_flight,
                None => map.entry(key.into()).or_default(),
            };
            if !in_flight.direct && !in_flight.counting {
                in_flight.direct = true;
                Route::Direct
            } else if tokio::task::try_id().is_none() {
                Route::Alone
            } else {
                let (sender, receiver) = oneshot::channel();
                in_flight.queue.push(sender);
                let counter = (!in_flight.counting).then(|| {
                    in_flight.counting = true;
                    Counter {
                        batches: Arc::clone(self),
                        store: Arc::clone(store),
                        key: key.into(),
                        window,
                        finished: false,
                    }
                });
                Route::Queued(receiver, counter)
            }
        };
        match route {
            Route::Direct => {
                let _direct = Direct { batches: self, key };
                store.incr_by_with_ttl(key, 1, window).await
            }
            Route::Alone => store.incr_by_with_ttl(key, 1, window).await,
            Route::Queued(receiver, counter) => {
                if let Some(counter) = counter {
                    // Spawned with no lock held: a runtime shutting down
                    // drops the task at once, and its `Drop` takes the lock.
                    tokio::spawn(counter.run());
                }
                match receiver.await {
                    Ok(counted) => counted,
                    // The counting task is gone: count alone.
                    Err(_) => store.incr_by_with_ttl(key, 1, window).await,
                }
            }
        }
    }

    fn lock(&self, key: &str) -> MutexGuard<'_, Shard> {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        // Every change under the lock is a flag, a push or a take: a panic
        // elsewhere leaves the map consistent.
        shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Updates `key`'s entry, and drops it once nothing of it is in flight.
    fn update(&self, key: &str, change: impl FnOnce(&mut InFlight)) {
        let mut map = self.lock(key);
        if let Some(in_flight) = map.get_mut(key) {
            change(in_flight);
            if !in_flight.direct && !in_flight.counting && in_flight.queue.is_empty() {
                map.remove(key);
            }
        }
    }
}

/// A check counted in its slot until it ends, returned or dropped.
struct InFlightSlot<'a>(&'a AtomicU32);

impl Drop for InFlightSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A check sent by itself: its key's entry forgets it when it ends,
/// returned or dropped.
struct Direct<'a> {
    batches: &'a CountBatches,
    key: &'a str,
}

impl Drop for Direct<'_> {
    fn drop(&mut self) {
        self.batches
            .update(self.key, |in_flight| in_flight.direct = false);
    }
}

/// A key's counting task: sends a batch for the checks queued, hands out
/// their counts, and again, until the queue is empty.
struct Counter {
    batches: Arc<CountBatches>,
    store: Arc<dyn KvStore>,
    key: Box<str>,
    window: Duration,
    /// Set when the task stops with its queue empty (it has already said
    /// so in its entry).
    finished: bool,
}

impl Counter {
    async fn run(mut self) {
        loop {
            // Taking the queue and deciding to stop are one step under the
            // lock: a check queued after it finds no counting task and
            // spawns one.
            let mut batch = Vec::new();
            let mut stop = true;
            self.batches.update(&self.key, |in_flight| {
                batch = std::mem::take(&mut in_flight.queue);
                stop = batch.is_empty();
                if stop {
                    in_flight.counting = false;
                }
            });
            if stop {
                self.finished = true;
                return;
            }
            // Checks that left before their batch was sent are not counted.
            batch.retain(|waiter| !waiter.is_closed());
            if batch.is_empty() {
                continue;
            }
            let size = i64::try_from(batch.len()).unwrap_or(i64::MAX);
            let counted = self
                .store
                .incr_by_with_ttl(&self.key, size, self.window)
                .await;
            self.hand_out(batch, counted);
        }
    }

    /// Gives each check of `batch` its count out of `counted`, the result
    /// of `INCRBY key batch.len()`.
    fn hand_out(&self, batch: Vec<oneshot::Sender<Counted>>, counted: Counted) {
        let size = i64::try_from(batch.len()).unwrap_or(i64::MAX);
        match counted {
            Ok((last, ttl)) => match last.checked_sub(size) {
                Some(before) => {
                    for (count, waiter) in (before + 1..=last).zip(batch) {
                        // A check that left has spent its count.
                        let _ = waiter.send(Ok((count, ttl)));
                    }
                }
                None => {
                    let error = KvError::Backend {
                        store: Arc::from(self.store.name()),
                        op: "rate limit count",
                        key: Some(self.key.to_string()),
                        source: format!("counter {last} after adding {size}").into(),
                    };
                    self.fail(batch, &error);
                }
            },
            Err(error) => self.fail(batch, &error),
        }
    }

    fn fail(&self, batch: Vec<oneshot::Sender<Counted>>, error: &KvError) {
        for waiter in batch {
            let _ = waiter.send(Err(sibling(error, self.store.name(), &self.key)));
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Dropped (the runtime shutting down) or unwound while it still
        // counted: the key has no counting task any more, and the checks
        // still queued count alone (their senders go).
        self.batches.update(&self.key, |in_flight| {
            in_flight.counting = false;
            in_flight.queue.clear();
        });
    }
}

/// The error each check of a failed batch gets: an unreachable store or a
/// timeout as the same kind, anything else as a backend error; the store,
/// key (where the kind has one) and the batch's error named.
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
