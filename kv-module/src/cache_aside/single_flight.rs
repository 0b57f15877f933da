//! [`SingleFlight`]: concurrent misses for one key in one process share
//! one load.
//!
//! The first caller for a key (the leader) starts the work on its own
//! tokio task; every caller, the leader included, awaits a shared handle
//! to that task's result. Because the work does not run inside any
//! caller's future, a caller that is cancelled (a client that hung up)
//! neither cancels the load for the others nor leaves them waiting on a
//! future nobody polls. The task removes its map entry when it ends —
//! completed, failed, panicked or cancelled by a runtime shutdown — through
//! a drop guard, so an entry can never outlive its work.
//!
//! The map's lock is a `std` mutex held only to look up or insert an
//! entry, never across an `.await`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tracing::Instrument;

/// The shared handle to a flight's result: `None` when the work panicked
/// or its task was cancelled.
pub(crate) type FlightHandle<T> = Shared<BoxFuture<'static, Option<T>>>;

/// One load per key at a time, shared by every concurrent caller.
pub(crate) struct SingleFlight<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    flights: Mutex<HashMap<String, Flight<T>>>,
    next_id: AtomicU64,
}

struct Flight<T> {
    /// Tells this flight from a later one for the same key, so that a
    /// finishing flight never removes its successor.
    id: u64,
    handle: FlightHandle<T>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                flights: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
            }),
        }
    }
}

impl<T> std::fmt::Debug for SingleFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight")
            .field("in_flight", &lock(&self.inner.flights).len())
            .finish()
    }
}

/// The map, even if a thread panicked while holding it: every operation
/// under the lock is a single map call, so it cannot be left half-done.
fn lock<T>(flights: &Mutex<T>) -> MutexGuard<'_, T> {
    flights.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// The flight for `key`: the one in progress, or a new one running
    /// `start()`'s future (then the second value is `true`). The caller is
    /// registered when this returns; awaiting the handle gives the result.
    ///
    /// The work runs on a task of the current tokio runtime (outside one,
    /// it runs inside the callers' futures, shared the same way).
    pub(crate) fn join<F, Fut>(&self, key: &str, start: F) -> (FlightHandle<T>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let mut flights = lock(&self.inner.flights);
        if let Some(flight) = flights.get(key) {
            return (flight.handle.clone(), false);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let cleanup = Cleanup {
            inner: Arc::downgrade(&self.inner),
            key: key.to_owned(),
            id,
        };
        // The guard lives inside the work, so it drops when the work ends
        // however it ends. It takes the lock, so it cannot run before the
        // entry below is inserted.
        let work = start();
        let work = async move {
            let _cleanup = cleanup;
            work.await
        }
        .instrument(tracing::Span::current());
        let handle: FlightHandle<T> = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let task = runtime.spawn(work);
                async move { task.await.ok() }.boxed().shared()
            }
            Err(_) => work.map(Some).boxed().shared(),
        };
        flights.insert(
            key.to_owned(),
            Flight {
                id,
                handle: handle.clone(),
            },
        );
        (handle, true)
    }

    /// Detaches the flight in progress for `key`, if any: its callers
    /// still get its result, but later callers start a new one. Called
    /// after an update, so that no `get` that starts after the update
    /// returns joins a load that read the old row.
    pub(crate) fn forget(&self, key: &str) {
        lock(&self.inner.flights).remove(key);
    }

    /// How many flights are in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner.flights).len()
    }
}

/// Removes a flight's entry when its work ends, unless a newer flight has
/// replaced it (after [`SingleFlight::forget`]).
struct Cleanup<T> {
    inner: Weak<Inner<T>>,
    key: String,
    id: u64,
}

impl<T> Drop for Cleanup<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut flights = lock(&inner.flights);
        if flights.get(&self.key).is_some_and(|f| f.id == self.id) {
            flights.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::sync::{Notify, oneshot};

    use super::*;

    /// Work that counts its runs and finishes when `release` is notified.
    fn gated(
        runs: &Arc<AtomicUsize>,
        release: &Arc<Notify>,
        value: u32,
    ) -> impl Future<Output = u32> + Send + 'static {
        let runs = Arc::clone(runs);
        let release = Arc::clone(release);
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            release.notified().await;
            value
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights = SingleFlight::<u32>::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let mut handles = Vec::new();
        for _ in 0..50 {
            let (handle, _) = flights.join("k", || gated(&runs, &release, 7));
            handles.push(handle);
        }
        assert_eq!(flights.len(), 1);
        release.notify_one();
        for handle in handles {
            assert_eq!(handle.await, Some(7));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0, "the entry is removed when the work ends");
        // A later caller starts a new flight.
        let (handle, leader) = flights.join("k", || async { 8 });
        assert!(leader);
        assert_eq!(handle.await, Some(8));
    }

    #[tokio::test]
    async fn a_cancelled_leader_does_not_strand_the_others() {
        let flights = Arc::new(SingleFlight::<u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let (joined_tx, joined_rx) = oneshot::channel();
        let leader = {
            let flights = Arc::clone(&flights);
            let (runs, release) = (Arc::clone(&runs), Arc::clone(&release));
            tokio::spawn(async move {
                let (handle, leader) = flights.join("k", || gated(&runs, &release, 1));
                let _ = joined_tx.send(leader);
                handle.await
            })
        };
        assert_eq!(joined_rx.await, Ok(true));
        let (follower, is_leader) = flights.join("k", || gated(&runs, &release, 2));
        assert!(!is_leader);
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        release.notify_one();
        assert_eq!(follower.await, Some(1));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_panicking_flight_reports_none_and_is_removed() {
        let flights = SingleFlight::<u32>::default();
        let (handle, _) = flights.join("k", || async { panic!("load exploded") });
        let (other, leader) = flights.join("k", || async { 3 });
        assert!(!leader);
        assert_eq!(handle.await, None);
        assert_eq!(other.await, None);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn forget_detaches_without_disturbing_the_old_flight() {
        let flights = SingleFlight::<u32>::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (release_old, release_newer) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (old, _) = flights.join("k", || gated(&runs, &release_old, 1));
        flights.forget("k");
        let (new, leader) = flights.join("k", || async { 2 });
        assert!(leader);
        assert_eq!(new.await, Some(2));
        // The new flight ended and removed itself; the old one's cleanup
        // must not remove a newer entry either.
        let (newer, _) = flights.join("k", || gated(&runs, &release_newer, 3));
        release_old.notify_one();
        assert_eq!(old.await, Some(1));
        assert_eq!(
            flights.len(),
            1,
            "the old flight left the newer entry alone"
        );
        release_newer.notify_one();
        assert_eq!(newer.await, Some(3));
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn outside_a_runtime_the_callers_drive_the_work() {
        let flights = SingleFlight::<u32>::default();
        let (a, _) = flights.join("k", || async { 5 });
        let (b, leader) = flights.join("k", || async { 6 });
        assert!(!leader);
        assert_eq!(futures::executor::block_on(b), Some(5));
        assert_eq!(futures::executor::block_on(a), Some(5));
        assert_eq!(flights.len(), 0);
    }
}
