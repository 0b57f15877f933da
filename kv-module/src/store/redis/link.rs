//! [`Link`]: a store's live connections, the one deadline every call runs
//! under, and their repair after a failover.
//!
//! # Why the store repairs its own connections
//!
//! redis-rs reconnects a dropped connection to the *same* address, which
//! is right for one server and wrong in two cases measured on this
//! project's machines (`../shared/notes/redis-scaleout.md`):
//!
//! * **Cluster**: a frozen primary keeps its TCP connections open, so
//!   nothing looks broken; after its replica is promoted the existing
//!   cluster connection keeps a stale slot map and timed out for 14 s.
//!   A freshly built one worked 2.3 s after the failover.
//! * **Sentinel**: redis-rs resolves the primary once and never follows a
//!   failover; the old primary, once back, answers `READONLY`.
//!
//! So every call is bounded by `command_timeout` (which also bounds the
//! waits on redis-rs's reconnection, which its own response timeout does
//! not), and after a failed call ([`REPAIR_AFTER`]) — at once on
//! `READONLY` behind Sentinels — a background task builds fresh
//! connections (a new slot map; the primary the Sentinels name now) and
//! swaps them in. Callers never wait for a repair: they fail within their
//! deadline and the next ones use the repaired connections. A standalone
//! server needs none of this: its `ConnectionManager` reconnects to the
//! one address there is.
//!
//! Every call also goes through the server's circuit breaker
//! (`breaker.rs`) — on a cluster, the breaker of the primary serving the
//! call's slot (`node_map.rs`): once a call timed out (or three failed to
//! connect) the next ones fail at once instead of each waiting its
//! deadline, and the breaker's probe pings through the store's connections
//! (`impl Prober for Link`), its failures running the same repairs, until
//! the server answers again.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};
use tracing::Instrument;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::blocking::{BLOCKING_POOL_SIZE, BlockingPool};
use super::breaker::{Breaker, BreakerOpen, BreakerState, PROBE_DEADLINE, Prober, Symptom};
use super::connection::{Conn, connect, connect_blocking};
use super::error_map::ErrorContext;
use super::node_map::NodeMap;
use super::sentinel_watch;
use super::store_metrics;
use super::topology::{Kind, Topology};
use crate::error::{KvError, Result};
use crate::store::key_slot;

/// Consecutive failed calls (timeouts, connection errors) after which the
/// connections of a cluster or Sentinel store are rebuilt. One: a call
/// that got no answer within `command_timeout` is reason enough, and a
/// rebuild that finds nothing changed costs a few round trips in the
/// background. With two, an idle store found a promoted replica only
/// after two full timeouts (6 s after the promotion with the default 2 s
/// deadline, measured by `tests/failover.rs`).
pub(crate) const REPAIR_AFTER: u32 = 1;

/// The least time between the starts of two repairs: while a failover is
/// still under way a repair finds the old topology, and the next one must
/// come soon, but not in a storm.
const REPAIR_GAP: Duration = Duration::from_millis(500);

/// The connections of one store and their health.
pub(crate) struct Link {
    topology: Topology,
    ctx: ErrorContext,
    /// A std lock is fine: it is held only to clone or swap handles, never
    /// across an `.await`.
    state: RwLock<State>,
    next: AtomicUsize,
    /// Calls failed in a row; reset by any reply.
    failures: AtomicU32,
    repair: Mutex<Repair>,
    /// The circuit breaker(s) of the server(s), shared with the other
    /// stores of the same server(s).
    breakers: Breakers,
    /// Background tasks that watch the topology (the Sentinels'
    /// announcements); aborted when the link closes or is dropped.
    watchers: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Counts the repairs that swapped connections in, for those who must
    /// react to a possible change of server (the near cache flushes).
    repairs: tokio::sync::watch::Sender<u64>,
    /// Connections of blocking pops, one per pop in progress.
    blocking: BlockingPool,
    /// The metrics handles of this store's calls.
    calls: store_metrics::CallMetrics,
}

struct State {
    /// Empty once closed.
    conns: Vec<Conn>,
    closed: bool,
}

#[derive(Default)]
struct Repair {
    running: bool,
    /// A repair was asked for at once while one ran: run another after it,
    /// since the running one may have seen the old topology.
    again: bool,
    last_started: Option<Instant>,
}

/// The circuit breakers a store answers to.
enum Breakers {
    /// One server, or the primary behind the Sentinels: one breaker.
    Server(Arc<Breaker>),
    /// A cluster: one per primary, found by slot. Swapped with the
    /// connections by a repair.
    Cluster(RwLock<Arc<NodeMap>>),
}

/// The keys a call touches, as stored (prefixed): on a cluster they say
/// which primaries' breakers the call answers to.
#[derive(Clone, Copy)]
pub(crate) enum Route<'a> {
    /// One key (or keys of one slot).
    Key(&'a str),
    /// Keys that may live on several primaries.
    Keys(&'a [String]),
    /// Every primary (`PING`, `SCAN`).
    All,
}

/// The breakers of one call: the one server's, borrowed (the hot path
/// neither allocates nor touches a shared reference count), one primary's
/// or, on a cluster, those of several primaries.
pub(crate) enum Guard<'a> {
    Server(&'a Arc<Breaker>),
    One(Arc<Breaker>),
    Many(Vec<Arc<Breaker>>),
}

impl Guard<'_> {
    fn breakers(&self) -> &[Arc<Breaker>] {
        match self {
            Self::Server(breaker) => std::slice::from_ref(*breaker),
            Self::One(breaker) => std::slice::from_ref(breaker),
            Self::Many(breakers) => breakers,
        }
    }

    fn admit(&self) -> std::result::Result<(), BreakerOpen> {
        self.breakers()
            .iter()
            .try_for_each(|breaker| breaker.admit())
    }

    fn answered(&self) {
        for breaker in self.breakers() {
            breaker.answered();
        }
    }

    /// A failure opens only the breaker of the one server the call went
    /// to: a call spanning several primaries that gets no reply cannot
    /// tell which of them was silent (and while one is known to be down,
    /// `admit` refuses it anyway).
    fn failed(&self, symptom: Symptom, error: impl FnOnce() -> String) {
        match self.breakers() {
            [breaker] => breaker.failed(symptom, error),
            _ if symptom == Symptom::Answered => self.answered(),
            _ => {}
        }
    }
}

/// What a failed call says about the connections.
enum Failure {
    /// A reply came back (an error reply): the connection works.
    Answered,
    /// No reply, or a broken connection: counts towards a repair.
    Lost,
    /// The server is no longer the primary (Sentinel failover): repair now.
    Demoted,
}

impl Link {
    /// Opens the connections, bounded by a start-up deadline so that an
    /// unreachable server fails fast.
    pub(crate) async fn open(topology: Topology, ctx: ErrorContext) -> Result<Arc<Self>> {
        let (conns, nodes) =
            match tokio::time::timeout(startup_deadline(&topology), connect_all(&topology)).await {
                Ok(Ok(connected)) => connected,
                Ok(Err(e)) => {
                    return Err(match ctx.map("connect", None, e) {
                        KvError::Backend { source, .. } => ctx.unavailable(source),
                        other => other,
                    });
                }
                Err(elapsed) => return Err(ctx.unavailable(Box::new(elapsed))),
            };
        let breakers = match nodes {
            Some(nodes) => Breakers::Cluster(RwLock::new(Arc::new(nodes))),
            None => Breakers::Server(Breaker::shared(&topology.server)),
        };
        let link = Arc::new(Self {
            breakers,
            topology,
            ctx,
            state: RwLock::new(State {
                conns,
                closed: false,
            }),
            next: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            repair: Mutex::new(Repair::default()),
            watchers: Mutex::new(Vec::new()),
            repairs: tokio::sync::watch::Sender::new(0),
            blocking: BlockingPool::new(),
            calls: store_metrics::CallMetrics::default(),
        });
        store_metrics::connection_up(&link.ctx.store, true);
        let prober: Arc<dyn Prober> = link.clone();
        for breaker in link.all_breakers() {
            breaker.join(Arc::downgrade(&prober));
            // The server just answered `PING`: a store opened while the
            // breaker is open (its server restarted) must not wait for the
            // probe.
            breaker.answered();
        }
        if let Kind::Sentinel(target) = &link.topology.kind {
            let watchers =
                sentinel_watch::spawn(Arc::downgrade(&link), target, link.topology.connect_timeout);
            *link.watchers.lock().unwrap_or_else(|e| e.into_inner()) = watchers;
        }
        Ok(link)
    }

    /// Changes each time a repair swaps fresh connections in (the server
    /// behind them may have changed: a Sentinel switch, a failover).
    pub(crate) fn repairs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.repairs.subscribe()
    }

    /// Whether the connections are to a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.topology.kind, Kind::Cluster(..))
    }

    /// The outer deadline of one call.
    pub(crate) fn command_timeout(&self) -> Duration {
        self.topology.command_timeout
    }

    /// The error context (store name, address).
    pub(crate) fn ctx(&self) -> &ErrorContext {
        &self.ctx
    }

    /// The state of the server's circuit breaker; on a cluster, of the
    /// first primary's whose breaker is open.
    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.all_breakers()
            .iter()
            .map(|breaker| breaker.state())
            .find(BreakerState::is_open)
            .unwrap_or(BreakerState::Closed)
    }

    /// Every breaker the store answers to.
    fn all_breakers(&self) -> Vec<Arc<Breaker>> {
        self.guard(Route::All).breakers().to_vec()
    }

    /// The breakers a call on `route` answers to. On a cluster a slot no
    /// primary serves in the store's map has none: the call goes out.
    fn guard(&self, route: Route<'_>) -> Guard<'_> {
        let nodes = match &self.breakers {
            Breakers::Server(breaker) => return Guard::Server(breaker),
            Breakers::Cluster(nodes) => nodes.read().unwrap_or_else(|e| e.into_inner()).clone(),
        };
        let mut breakers: Vec<Arc<Breaker>> = Vec::new();
        let mut add = |breaker: &Arc<Breaker>| {
            if !breakers.iter().any(|b| Arc::ptr_eq(b, breaker)) {
                breakers.push(breaker.clone());
            }
        };
        match route {
            Route::Key(key) => {
                if let Some(node) = nodes.owner(key_slot(key)) {
                    return Guard::One(node.breaker.clone());
                }
            }
            Route::Keys(keys) => keys
                .iter()
                .filter_map(|key| nodes.owner(key_slot(key)))
                .for_each(|n| add(&n.breaker)),
            Route::All => nodes.nodes().iter().for_each(|n| add(&n.breaker)),
        }
        Guard::Many(breakers)
    }

    /// A connection for a call on `route`, and the breakers it answers
    /// to: refused at once while one of them is open.
    pub(crate) fn admit(&self, route: Route<'_>) -> Result<(Conn, Guard<'_>)> {
        let guard = self.guard(route);
        guard
            .admit()
            .map_err(|open| self.ctx.unavailable(Box::new(open)))?;
        Ok((self.conn()?, guard))
    }

    /// A connection, round-robin over the pool.
    pub(crate) fn conn(&self) -> Result<Conn> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if state.closed || state.conns.is_empty() {
            return Err(self.ctx.closed());
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % state.conns.len();
        Ok(state.conns[i].clone())
    }

    /// Runs `f` on a connection under the call deadline, records how it
    /// went, and maps its error with `op` and `key`.
    pub(crate) async fn call<T, F, Fut>(
        self: &Arc<Self>,
        op: &'static str,
        key: Option<&str>,
        route: Route<'_>,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let started = Instant::now();
        // No span unless a subscriber may want it, and a disabled one left
        // alone: with `tracing`'s `log` feature on (axum's default
        // `tower-log` turns it on) and no subscriber installed, building,
        // entering, leaving and recording a disabled span still cost about
        // 800 instructions a call (callgrind), a third of this path's work.
        let span = if tracing::Level::DEBUG <= tracing::level_filters::LevelFilter::current() {
            tracing::debug_span!("kv_store", store = %self.ctx.store, op, outcome = tracing::field::Empty)
        } else {
            tracing::Span::none()
        };
        let traced = !span.is_disabled();
        // A call the breaker refuses ends here like any other failed call
        // (its outcome, its debug event, its metrics).
        let result = match self.admit(route) {
            Err(e) => Err(("unavailable", e)),
            Ok((conn, guard)) => {
                let deadline = tokio::time::timeout(self.topology.command_timeout, f(conn));
                let replied = if traced {
                    deadline.instrument(span.clone()).await
                } else {
                    deadline.await
                };
                match replied {
                    Ok(Ok(value)) => {
                        self.answered();
                        guard.answered();
                        Ok(value)
                    }
                    Ok(Err(e)) => {
                        let kind = match symptom(&e) {
                            Symptom::Timeout => "timeout",
                            Symptom::ConnectionError => "connection",
                            Symptom::Answered => "server",
                        };
                        self.failed(classify(&e));
                        guard.failed(symptom(&e), || format!("`{op}`: {e}"));
                        Err((kind, self.ctx.map(op, key, e)))
                    }
                    Err(_) => {
                        self.failed(Failure::Lost);
                        let timeout = self.topology.command_timeout;
                        guard.failed(Symptom::Timeout, || {
                            format!("`{op}`: no reply within command_timeout ({timeout:?})")
                        });
                        Err(("timeout", self.deadline_passed(op, key)))
                    }
                }
            }
        };
        let kind = result.as_ref().err().map(|(kind, _)| *kind);
        if traced {
            span.record("outcome", kind.unwrap_or("ok"));
        }
        if let Err((kind, error)) = &result {
            tracing::debug!(store = %self.ctx.store, op, kind, %error, "store call failed");
        }
        self.calls.ended(&self.ctx.store, op, started, kind);
        result.map_err(|(_, e)| e)
    }

    /// Runs a blocking command `f` on a dedicated connection (see
    /// `blocking.rs`), never on the shared ones: through the breaker(s) of
    /// `route` like [`call`](Self::call), waiting at most `wait` for a free
    /// connection, and bounded as a whole by `wait` plus
    /// `command_timeout`. The connection is kept for the next blocking
    /// call only after a reply.
    pub(crate) async fn call_blocking<T, F, Fut>(
        self: &Arc<Self>,
        op: &'static str,
        key: Option<&str>,
        route: Route<'_>,
        wait: Duration,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let guard = self.guard(route);
        guard
            .admit()
            .map_err(|open| self.ctx.unavailable(Box::new(open)))?;
        if self.is_closed() {
            return Err(self.ctx.closed());
        }
        let deadline = tokio::time::Instant::now() + wait + self.topology.command_timeout;
        let Some(_permit) = self.blocking.acquire(wait).await else {
            if self.is_closed() {
                return Err(self.ctx.closed());
            }
            return Err(KvError::Timeout {
                store: self.ctx.store.clone(),
                op,
                key: key.map(str::to_owned),
                source: format!(
                    "all {BLOCKING_POOL_SIZE} connections for blocking calls stayed busy for {wait:?}"
                )
                .into(),
            });
        };
        let run = async {
            let conn = match self.blocking.take_idle() {
                Some(conn) => conn,
                None => connect_blocking(&self.topology).await?,
            };
            let reply = f(conn.clone()).await?;
            Ok((conn, reply))
        };
        match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok((conn, value))) => {
                self.blocking.put_back(conn);
                self.answered();
                guard.answered();
                Ok(value)
            }
            Ok(Err(e)) => {
                self.failed(classify(&e));
                guard.failed(symptom(&e), || format!("`{op}`: {e}"));
                Err(self.ctx.map(op, key, e))
            }
            Err(_) => {
                self.failed(Failure::Lost);
                let timeout = self.topology.command_timeout;
                guard.failed(Symptom::Timeout, || {
                    format!("`{op}`: no reply within its wait plus command_timeout ({timeout:?})")
                });
                Err(self.deadline_passed(op, key))
            }
        }
    }

    /// The timeout error of a call whose deadline passed.
    pub(crate) fn deadline_passed(&self, op: &'static str, key: Option<&str>) -> KvError {
        KvError::Timeout {
            store: self.ctx.store.clone(),
            op,
            key: key.map(str::to_owned),
            source: format!(
                "no reply within command_timeout ({:?})",
                self.topology.command_timeout
            )
            .into(),
        }
    }

    /// Records the outcome of a call made outside [`call`](Self::call)
    /// (one made of several round trips, each under its own deadline, which
    /// reports a passed deadline as a timeout error).
    pub(crate) fn observe<T>(
        self: &Arc<Self>,
        op: &'static str,
        guard: &Guard<'_>,
        outcome: &RedisResult<T>,
    ) {
        match outcome {
            Ok(_) => {
                self.answered();
                guard.answered();
            }
            Err(e) => {
                self.failed(classify(e));
                guard.failed(symptom(e), || format!("`{op}`: {e}"));
            }
        }
    }

    fn answered(&self) {
        // A plain load first: the hot path stays read-only.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            store_metrics::connection_up(&self.ctx.store, true);
        }
    }

    fn failed(self: &Arc<Self>, failure: Failure) {
        let repairable = matches!(self.topology.kind, Kind::Cluster(..) | Kind::Sentinel(_));
        match failure {
            Failure::Answered => self.answered(),
            Failure::Lost => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures == 1 {
                    store_metrics::connection_up(&self.ctx.store, false);
                }
                if repairable && failures >= REPAIR_AFTER {
                    self.start_repair(false);
                }
            }
            Failure::Demoted => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if repairable {
                    self.start_repair(true);
                }
            }
        }
    }

    /// Rebuilds the connections now: the topology is known to have changed
    /// (the Sentinels announced a new primary).
    pub(crate) fn repair_now(self: &Arc<Self>) {
        self.start_repair(true);
    }

    /// Builds fresh connections in the background and swaps them in. At
    /// most one repair runs at a time; one triggered by failures starts at
    /// most every [`REPAIR_GAP`], one asked for `now` runs at once, or right
    /// after the running one.
    fn start_repair(self: &Arc<Self>, now: bool) {
        {
            let mut repair = self.repair.lock().unwrap_or_else(|e| e.into_inner());
            if repair.running {
                repair.again |= now;
                return;
            }
            let recent = repair
                .last_started
                .is_some_and(|started| started.elapsed() < REPAIR_GAP);
            if recent && !now {
                return;
            }
            repair.running = true;
            repair.last_started = Some(Instant::now());
        }
        let link = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                link.rebuild().await;
                let mut repair = link.repair.lock().unwrap_or_else(|e| e.into_inner());
                if repair.again && !link.is_closed() {
                    repair.again = false;
                    repair.last_started = Some(Instant::now());
                    continue;
                }
                repair.running = false;
                return;
            }
        });
    }

    /// One repair: fresh connections, swapped in unless the link closed.
    async fn rebuild(self: &Arc<Self>) {
        match tokio::time::timeout(repair_deadline(&self.topology), connect_all(&self.topology))
            .await
        {
            Ok(Ok((conns, nodes))) => {
                {
                    let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                    if state.closed {
                        return;
                    }
                    state.conns = conns;
                    // Kept blocking connections may reach the old primary.
                    self.blocking.clear();
                    if let (Breakers::Cluster(map), Some(nodes)) = (&self.breakers, nodes) {
                        *map.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(nodes);
                    }
                    self.failures.store(0, Ordering::Relaxed);
                }
                store_metrics::connection_up(&self.ctx.store, true);
                tracing::info!(store = %self.ctx.store, addr = %self.ctx.addr,
                    "redis connections rebuilt");
                self.repairs.send_modify(|n| *n = n.wrapping_add(1));
                store_metrics::reconnected(&self.ctx.store);
                let prober: Arc<dyn Prober> = self.clone();
                for breaker in self.all_breakers() {
                    // New primaries (a promoted replica) are probed through
                    // this store too; the breakers of nodes no longer in the
                    // map go when no store holds them.
                    breaker.join(Arc::downgrade(&prober));
                    breaker.repaired();
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(store = %self.ctx.store, addr = %self.ctx.addr, error = %e,
                    "rebuilding redis connections failed; will retry on the next failure");
            }
            Err(_) => {
                tracing::warn!(store = %self.ctx.store, addr = %self.ctx.addr,
                    "rebuilding redis connections timed out; will retry on the next failure");
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.state.read().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Drops the connections; later calls fail as unavailable.
    pub(crate) fn close(&self) {
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            state.closed = true;
            // Dropping the handles closes the connections once in-flight
            // commands (which hold clones) finish.
            state.conns.clear();
        }
        self.blocking.close();
        self.stop_watchers();
    }

    fn stop_watchers(&self) {
        for watcher in self
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            watcher.abort();
        }
    }
}

/// The breaker's probe: `PING` on the store's current connections (the
/// repaired ones, after a repair) under a short deadline. A failure counts
/// like a failed call, so it starts the same repairs; only the breaker is
/// not told (it is open, and the probe reports to it itself).
impl Prober for Link {
    fn probe(
        self: Arc<Self>,
        server: Arc<str>,
    ) -> Pin<Box<dyn Future<Output = Option<bool>> + Send>> {
        Box::pin(async move {
            // Closed: nothing to probe through.
            let conn = self.conn().ok()?;
            // On a cluster, the one primary the breaker is for (`None`:
            // this store's map no longer has it, so has nothing to say).
            let node = match &self.breakers {
                Breakers::Server(_) => None,
                Breakers::Cluster(nodes) => {
                    let nodes = nodes.read().unwrap_or_else(|e| e.into_inner()).clone();
                    let node = nodes.node(&server)?;
                    Some((node.host.clone(), node.port))
                }
            };
            let ping = async move {
                match (conn, node) {
                    (Conn::Cluster(mut conn), Some((host, port))) => {
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host,
                            port,
                        });
                        conn.route_command(redis::cmd("PING"), route)
                            .await
                            .map(drop)
                    }
                    (mut conn, _) => redis::cmd("PING").query_async::<()>(&mut conn).await,
                }
            };
            let deadline = PROBE_DEADLINE.min(self.topology.command_timeout);
            match tokio::time::timeout(deadline, ping).await {
                Ok(Ok(())) => {
                    if self.failures.swap(0, Ordering::Relaxed) != 0 {
                        store_metrics::connection_up(&self.ctx.store, true);
                    }
                    Some(true)
                }
                Ok(Err(e)) => {
                    self.failed(classify(&e));
                    Some(symptom(&e) == Symptom::Answered)
                }
                Err(_) => {
                    self.failed(Failure::Lost);
                    Some(false)
                }
            }
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop_watchers();
    }
}

/// Opens the connections and, on a cluster, reads which primary serves
/// which slot (through them, so the map matches the nodes they reach).
async fn connect_all(topology: &Topology) -> RedisResult<(Vec<Conn>, Option<NodeMap>)> {
    let conns = connect(topology).await?;
    let nodes = match conns.first() {
        Some(Conn::Cluster(conn)) => Some(NodeMap::fetch(conn.clone()).await?),
        _ => None,
    };
    Ok((conns, nodes))
}

/// The time allowed to open (or rebuild) the connections: a connection
/// may be retried once, then answer `PING`.
fn startup_deadline(topology: &Topology) -> Duration {
    topology.connect_timeout.saturating_mul(2) + topology.response_timeout
}

/// The time a repair may take: a connection (within the call deadline on
/// a cluster, see `topology.rs`) and a `PING`. A repair stuck on a node
/// that accepts connections but never answers is abandoned, so the next
/// one (with a newer view of the topology) can start.
fn repair_deadline(topology: &Topology) -> Duration {
    topology.connect_timeout.min(topology.command_timeout) + topology.command_timeout
}

/// What a failed call says to the circuit breaker: only silence and
/// broken connections count; any reply, error replies included, shows the
/// server is there.
fn symptom(e: &RedisError) -> Symptom {
    if e.is_timeout() {
        Symptom::Timeout
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        Symptom::ConnectionError
    } else {
        Symptom::Answered
    }
}

fn classify(e: &RedisError) -> Failure {
    if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
        return Failure::Demoted;
    }
    let lost = e.is_timeout()
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::TryAgain
                    // A redirection left unfollowed: the slot map is stale
                    // or the node it names is down.
                    | ServerErrorKind::Moved
                    | ServerErrorKind::Ask
            )
        );
    if lost {
        Failure::Lost
    } else {
        Failure::Answered
    }
}
