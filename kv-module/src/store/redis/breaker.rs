//! [`Breaker`]: the circuit breaker every store of one Redis server
//! shares, and [`BreakerState`], what it shows to health checks.
//!
//! # Why
//!
//! Every call is bounded by `command_timeout`, but a request usually makes
//! several calls, often to several stores of the same server (the example
//! app's rate limiter, user cache and sessions live on databases 2, 0
//! and 1 of one Redis). With the server frozen each of them waited its own
//! deadline: a user read took 4 s, a code request 6 s, for as long as the
//! server stayed frozen. Once a server is known to be failing, waiting
//! again tells nobody anything new.
//!
//! # How
//!
//! * **One breaker per server**, shared through a process-wide registry
//!   keyed by the server's address (`host:port` without the database; the
//!   Sentinel set and master name), held weakly: stores opened separately
//!   on one server share it, and it goes away with the last of them. On a
//!   Redis Cluster each primary has its own (keyed by its `host:port`),
//!   found by the slot of the call's keys in the store's own slot map
//!   (`node_map.rs`): a frozen primary fails its keys fast and the other
//!   primaries keep serving theirs. A call spanning several primaries is
//!   refused while any of them is open, but its own failure opens none
//!   (it cannot tell which was silent).
//! * **Opens** on one timeout, or on [`OPEN_AFTER_CONNECTION_ERRORS`]
//!   connection errors in a row (refused, reset, broken pipe: a dead
//!   server fails fast anyway, but each attempt reconnects). Error replies
//!   (`WRONGTYPE`, `NOSCRIPT`, `OOM`, `READONLY`, `MOVED`, ...) are
//!   answers: the server is there.
//! * **While open** every call fails at once with
//!   [`KvError::Unavailable`](crate::KvError::Unavailable) (so
//!   `is_unavailable()`), naming the server, how long the breaker has been
//!   open and the last error; nothing is sent.
//! * **Closes** when any call gets an answer (opening a new store on the
//!   server included), or when the probe does: a background task sends
//!   `PING` through each store's connections (with a short deadline of its
//!   own, [`PROBE_DEADLINE`]) after [`FIRST_PROBE_AFTER`], then backing off
//!   to [`MAX_PROBE_INTERVAL`], and closes the breaker once they all
//!   answer. It goes through the stores' own connections, so the repairs
//!   of `link.rs` (a reconnection, a Sentinel re-resolution, a fresh
//!   cluster slot map) run on its failures and are what it finds working;
//!   a finished repair wakes it at once. The task holds the breaker and
//!   the stores weakly: it stops when they are dropped.

use super::store_metrics;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Connection errors in a row that open the breaker. More than one: a
/// single reset connection is reconnected by the next call; three in a
/// row mean nothing is listening.
pub(crate) const OPEN_AFTER_CONNECTION_ERRORS: u32 = 3;

/// The first probe comes this long after the breaker opened; the pause
/// doubles after each probe that gets no answer.
pub(crate) const FIRST_PROBE_AFTER: Duration = Duration::from_millis(250);

/// The longest pause between two probes: how late, at most, a recovered
/// server is noticed when no call closes the breaker first.
pub(crate) const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// The deadline of one probe (or the store's `command_timeout` if
/// shorter): a local server answers `PING` in well under a millisecond,
/// and a frozen one must not hold the probe for long.
pub(crate) const PROBE_DEADLINE: Duration = Duration::from_millis(500);

/// The health of a store's server as its circuit breaker sees it, from
/// [`RedisStore::breaker_state`](super::RedisStore::breaker_state).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go to the server.
    Closed,
    /// The server timed out or refused connections: calls fail at once
    /// until a probe (or a call in flight) gets an answer.
    Open {
        /// How long the breaker has been open.
        open_for: Duration,
        /// The error that opened it, or the last one since.
        last_error: String,
    },
}

impl BreakerState {
    /// Whether calls are being refused.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open { .. })
    }
}

/// What a failed call says about the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Symptom {
    /// No reply within the deadline: opens the breaker at once.
    Timeout,
    /// The connection was refused, reset or dropped.
    ConnectionError,
    /// The server replied (with an error): it is there.
    Answered,
}

/// Something that can ask the server whether it is back: a store's
/// connections (`Link`). `Some(true)` when the server answered,
/// `Some(false)` when it did not, `None` when there is nothing to ask
/// through (the store was closed).
pub(crate) trait Prober: Send + Sync {
    /// Asks `server` (the breaker's: on a cluster, which primary).
    fn probe(
        self: Arc<Self>,
        server: Arc<str>,
    ) -> Pin<Box<dyn Future<Output = Option<bool>> + Send>>;
}

/// The error source of a call refused by an open breaker.
#[derive(Debug)]
pub(crate) struct BreakerOpen {
    server: Arc<str>,
    open_for: Duration,
    last_error: String,
}

impl std::fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "circuit breaker open for {} since {:.1?} (last error: {}); nothing was sent",
            self.server, self.open_for, self.last_error
        )
    }
}

impl std::error::Error for BreakerOpen {}

/// The circuit breaker of one server, shared by its stores.
pub(crate) struct Breaker {
    /// The server, for messages and the registry.
    server: Arc<str>,
    /// Read on every call: the hot path takes no lock while closed.
    open: AtomicBool,
    connection_errors: AtomicU32,
    /// A std lock is fine: held only to read or update the fields, never
    /// across an `.await`.
    state: Mutex<State>,
    /// The stores' connections the probe goes through.
    probers: Mutex<Vec<Weak<dyn Prober>>>,
    /// Wakes the probe before its pause is over: a store rebuilt its
    /// connections, so the server may well answer now.
    /// Shared with the probe task, which must not keep the breaker alive.
    wake: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct State {
    opened_at: Option<Instant>,
    last_error: String,
    /// A probe task is running (at most one).
    probing: bool,
}

/// The breakers of the process, by server.
fn registry() -> &'static Mutex<HashMap<String, Weak<Breaker>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<Breaker>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

impl Breaker {
    /// The breaker of `server`: the one a live store of that server
    /// already has, or a new one.
    pub(crate) fn shared(server: &str) -> Arc<Breaker> {
        let mut breakers = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(breaker) = breakers.get(server).and_then(Weak::upgrade) {
            return breaker;
        }
        // Entries of servers whose stores are all gone.
        breakers.retain(|_, breaker| breaker.strong_count() > 0);
        let breaker = Arc::new(Breaker {
            server: Arc::from(server),
            open: AtomicBool::new(false),
            connection_errors: AtomicU32::new(0),
            state: Mutex::default(),
            probers: Mutex::default(),
            wake: Arc::default(),
        });
        breakers.insert(server.to_owned(), Arc::downgrade(&breaker));
        breaker
    }

    /// Lets the probe go through `prober` (a store's connections) while it
    /// lives.
    pub(crate) fn join(&self, prober: Weak<dyn Prober>) {
        let mut probers = self.probers.lock().unwrap_or_else(|e| e.into_inner());
        probers.retain(|p| p.strong_count() > 0);
        // A repair joins again.
        if !probers.iter().any(|p| Weak::ptr_eq(p, &prober)) {
            probers.push(prober);
        }
    }

    /// `Ok` when calls may go to the server; the reason they may not.
    pub(crate) fn admit(&self) -> Result<(), BreakerOpen> {
        if !self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        let state = self.lock();
        match state.opened_at {
            Some(opened_at) => Err(BreakerOpen {
                server: self.server.clone(),
                open_for: opened_at.elapsed(),
                last_error: state.last_error.clone(),
            }),
            // Closed between the load and the lock.
            None => Ok(()),
        }
    }

    /// The state, for health checks.
    pub(crate) fn state(&self) -> BreakerState {
        let state = self.lock();
        match state.opened_at {
            Some(opened_at) if self.open.load(Ordering::Acquire) => BreakerState::Open {
                open_for: opened_at.elapsed(),
                last_error: state.last_error.clone(),
            },
            _ => BreakerState::Closed,
        }
    }

    /// A call got an answer: the server is there.
    pub(crate) fn answered(&self) {
        // Plain loads first: the hot path stays read-only.
        if self.connection_errors.load(Ordering::Relaxed) != 0 {
            self.connection_errors.store(0, Ordering::Relaxed);
        }
        if self.open.load(Ordering::Acquire) {
            self.close();
        }
    }

    /// A call failed with `symptom`; `error` says how, for the messages
    /// of the calls refused meanwhile.
    pub(crate) fn failed(self: &Arc<Self>, symptom: Symptom, error: impl FnOnce() -> String) {
        match symptom {
            Symptom::Answered => self.answered(),
            Symptom::Timeout => self.trip(error()),
            Symptom::ConnectionError => {
                let errors = self.connection_errors.fetch_add(1, Ordering::Relaxed) + 1;
                if errors >= OPEN_AFTER_CONNECTION_ERRORS {
                    self.trip(error());
                } else if self.open.load(Ordering::Acquire) {
                    // Keep the message current while open.
                    self.lock().last_error = error();
                }
            }
        }
    }

    /// Opens the breaker (or keeps it open with a newer error) and starts
    /// the probe unless one runs.
    fn trip(self: &Arc<Self>, error: String) {
        let start_probe = {
            let mut state = self.lock();
            if state.opened_at.is_none() {
                state.opened_at = Some(Instant::now());
                tracing::warn!(server = %self.server, error = %error,
                    "redis circuit breaker open: calls to this server fail at once until it answers");
                store_metrics::breaker(&self.server, true);
            }
            state.last_error = error;
            self.open.store(true, Ordering::Release);
            !std::mem::replace(&mut state.probing, true)
        };
        if start_probe {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(probe(Arc::downgrade(self), self.wake.clone()));
                }
                // Calls run on a runtime; without one no probe can run, and
                // the next answered call closes the breaker instead.
                Err(_) => self.lock().probing = false,
            }
        }
    }

    /// A store rebuilt its connections (a new slot map, the primary the
    /// Sentinels name now): probe now rather than after the pause.
    pub(crate) fn repaired(&self) {
        if self.open.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }

    fn close(&self) {
        let mut state = self.lock();
        self.open.store(false, Ordering::Release);
        self.connection_errors.store(0, Ordering::Relaxed);
        if let Some(opened_at) = state.opened_at.take() {
            tracing::info!(server = %self.server, open_for = ?opened_at.elapsed(),
                "redis circuit breaker closed: the server answers again");
            store_metrics::breaker(&self.server, false);
        }
    }

    /// The live stores' connections, to probe through.
    fn probers(&self) -> Vec<Arc<dyn Prober>> {
        let mut probers = self.probers.lock().unwrap_or_else(|e| e.into_inner());
        probers.retain(|p| p.strong_count() > 0);
        probers.iter().filter_map(Weak::upgrade).collect()
    }

    /// Ends the probe task unless the breaker is (again) open; under the
    /// lock, so a `trip` racing this either sees `probing` false and
    /// starts a new task, or is seen here.
    fn stop_probing_unless_open(&self) -> bool {
        let mut state = self.lock();
        if self.open.load(Ordering::Acquire) {
            return false;
        }
        state.probing = false;
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The probe task of an open breaker: `PING` through every store's
/// connections, backing off, until they all answer (which closes the
/// breaker), a call closed it, or the breaker and its stores are gone.
///
/// Every store is probed, not one: each has its own connections (on a
/// cluster its own slot map, behind Sentinels its own idea of the
/// primary), a failed probe starts that store's repair, and closing the
/// breaker while one store still talks to a dead node would cost the next
/// caller of that store a full timeout.
async fn probe(breaker: Weak<Breaker>, wake: Arc<tokio::sync::Notify>) {
    let mut pause = FIRST_PROBE_AFTER;
    loop {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake.notified() => {}
        }
        let Some(live) = breaker.upgrade() else {
            return;
        };
        if !live.open.load(Ordering::Acquire) && live.stop_probing_unless_open() {
            return;
        }
        let probers = live.probers();
        if probers.is_empty() {
            // No store left to probe through; the breaker goes with them.
            live.lock().probing = false;
            return;
        }
        let server = live.server.clone();
        // Neither the breaker nor the stores are held across the pause.
        drop(live);
        let answers = futures::future::join_all(
            probers
                .into_iter()
                .map(|prober| prober.probe(server.clone())),
        )
        .await;
        let Some(live) = breaker.upgrade() else {
            return;
        };
        let answered = answers.contains(&Some(true)) && !answers.contains(&Some(false));
        if answered {
            live.close();
        }
        if live.stop_probing_unless_open() {
            return;
        }
        pause = (pause * 2).min(MAX_PROBE_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A prober that answers once `answer` is set, counting its probes.
    struct FakeServer {
        answer: AtomicBool,
        probes: AtomicUsize,
    }

    impl Prober for FakeServer {
        fn probe(
            self: Arc<Self>,
            _server: Arc<str>,
        ) -> Pin<Box<dyn Future<Output = Option<bool>> + Send>> {
            Box::pin(async move {
                self.probes.fetch_add(1, Ordering::SeqCst);
                Some(self.answer.load(Ordering::SeqCst))
            })
        }
    }

    fn fake() -> Arc<FakeServer> {
        Arc::new(FakeServer {
            answer: AtomicBool::new(false),
            probes: AtomicUsize::new(0),
        })
    }

    #[test]
    fn one_breaker_per_server_while_its_stores_live() {
        let a = Breaker::shared("breaker-test-host:1");
        let b = Breaker::shared("breaker-test-host:1");
        let other = Breaker::shared("breaker-test-host:2");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(
            weak.upgrade().is_none(),
            "the registry holds breakers weakly"
        );
        let fresh = Breaker::shared("breaker-test-host:1");
        assert!(!fresh.open.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_a_timeout_or_three_connection_errors_and_answers_close_it() {
        let breaker = Breaker::shared("breaker-test-host:3");
        breaker.failed(Symptom::Answered, || "WRONGTYPE".into());
        breaker.failed(Symptom::ConnectionError, || "refused".into());
        breaker.failed(Symptom::ConnectionError, || "refused".into());
        assert!(breaker.admit().is_ok(), "two connection errors");
        breaker.answered();
        breaker.failed(Symptom::ConnectionError, || "refused".into());
        breaker.failed(Symptom::ConnectionError, || "refused".into());
        assert!(breaker.admit().is_ok(), "an answer resets the count");
        breaker.failed(Symptom::ConnectionError, || "reset".into());
        let refused = breaker.admit().expect_err("three in a row");
        let text = refused.to_string();
        assert!(
            text.contains("breaker-test-host:3") && text.contains("reset"),
            "{text}"
        );
        breaker.answered();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.failed(Symptom::Timeout, || "no reply".into());
        assert!(breaker.state().is_open(), "one timeout");
        breaker.answered();
        assert!(!breaker.state().is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn the_probe_backs_off_and_closes_the_breaker_on_an_answer() {
        let breaker = Breaker::shared("breaker-test-host:4");
        let server = fake();
        breaker.join(Arc::downgrade(&(server.clone() as Arc<dyn Prober>)));
        breaker.failed(Symptom::Timeout, || "no reply".into());
        // Probes at 0.25, 0.75, 1.75, 3.75, 5.75 s: backoff doubling to 2 s.
        tokio::time::sleep(Duration::from_millis(5_800)).await;
        assert_eq!(server.probes.load(Ordering::SeqCst), 5);
        assert!(breaker.state().is_open());
        server.answer.store(true, Ordering::SeqCst);
        tokio::time::sleep(MAX_PROBE_INTERVAL).await;
        assert_eq!(breaker.state(), BreakerState::Closed);
        let probes = server.probes.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            server.probes.load(Ordering::SeqCst),
            probes,
            "no probe while closed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_probe_stops_when_the_stores_are_gone() {
        let breaker = Breaker::shared("breaker-test-host:5");
        let server = fake();
        breaker.join(Arc::downgrade(&(server.clone() as Arc<dyn Prober>)));
        breaker.failed(Symptom::Timeout, || "no reply".into());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.probes.load(Ordering::SeqCst), 1);
        let weak = Arc::downgrade(&breaker);
        drop(breaker);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(server.probes.load(Ordering::SeqCst), 1, "the task ended");
        assert!(weak.upgrade().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn every_store_must_answer_and_a_repair_probes_at_once() {
        let breaker = Breaker::shared("breaker-test-host:6");
        let (repaired, stale) = (fake(), fake());
        for server in [&repaired, &stale] {
            breaker.join(Arc::downgrade(&(server.clone() as Arc<dyn Prober>)));
        }
        repaired.answer.store(true, Ordering::SeqCst);
        breaker.failed(Symptom::Timeout, || "no reply".into());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stale.probes.load(Ordering::SeqCst), 1, "both probed");
        assert!(
            breaker.state().is_open(),
            "one store still talks to a dead node"
        );
        // The next probe is due 500 ms after the first; a repair brings it
        // forward.
        stale.answer.store(true, Ordering::SeqCst);
        breaker.repaired();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
