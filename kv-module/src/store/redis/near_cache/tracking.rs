//! [`Tracking`]: the near cache's own RESP3 connection with `CLIENT
//! TRACKING ON`, whose invalidation pushes feed the [`LocalMap`], and the
//! liveness task that flushes the map and reconnects when the connection
//! is lost.
//!
//! # Why a dedicated `MultiplexedConnection` with a closure
//!
//! * The store's pool stays RESP2 `ConnectionManager`s: nothing changes for
//!   the other commands.
//! * A `MultiplexedConnection` calls a closure push sender *inline*, in its
//!   driver, before it reads the next frame. Redis writes the invalidation
//!   for another client's write into this connection's output before the
//!   reply to any command sent after that write was acknowledged; so once a
//!   `PING` sent on this connection has returned, every invalidation sent
//!   before it has been applied (measured: 0 of 3000 replies overtook their
//!   invalidation; through a `ConnectionManager`, whose pushes go through a
//!   channel and a task, 910 of 3000 did — research note §2). That is the
//!   bound [`RedisStore::sync_near_cache`](crate::RedisStore::sync_near_cache)
//!   offers.
//! * Every miss is read through this connection. In default mode
//!   ([`NearCacheMode::Tracking`](super::NearCacheMode)) Redis then tracks
//!   exactly the keys the map may hold, missing keys included; in
//!   broadcast mode (`BCAST PREFIX`, the default for a store with a prefix
//!   on one server) it pushes every key written under the store's prefix
//!   and remembers nothing per read. Either way the invalidation of a
//!   write acknowledged before a `PING` on this connection is applied
//!   before that `PING` returns (Redis queues broadcast invalidations
//!   before the replies of the same event-loop turn).
//!
//! Invalidations may be missed while the connection is down, so the map is
//! flushed when it is lost (the driver's `Disconnection` push), when a
//! liveness `PING` gets no answer within the deadline, when the store's
//! connections are repaired (a Sentinel switch), and again once tracking is
//! on a new connection; meanwhile reads go to Redis through the pool and
//! nothing is kept.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, ErrorKind, PushInfo, PushKind, RedisError, RedisResult, Value};
use tokio::sync::{Notify, watch};

use super::admission::Admission;
use super::cluster::{self, Slots};
use super::config::NearCacheConfig;
use super::local_map::LocalMap;
use super::stats::{Counters, NearCacheStats};
use crate::store::redis::connection::{self, Conn};
use crate::store::redis::core::sized_cmd;
use crate::store::redis::topology::{ClusterFactory, Kind, SentinelTarget, Topology};

/// How often an idle tracking connection is checked with `PING` (the
/// client-side caching guide's advice for detecting a silent loss), and how
/// often a lost one is reopened.
const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);

/// Where the tracking connection goes.
enum Source {
    /// One server: its client, switched to RESP3.
    Server(redis::Client),
    /// The primary the Sentinels name now, asked at each (re)connection.
    Sentinel(SentinelTarget),
    /// A Redis Cluster: a RESP3 client of its own, tracking per node
    /// (`cluster.rs`).
    Cluster(ClusterFactory),
}

/// The tracking connection: to one server, or to a whole cluster.
#[derive(Clone)]
pub(crate) enum TrackConn {
    Server(MultiplexedConnection),
    /// With the slot map it was opened under.
    Cluster(ClusterConnection, Arc<Slots>),
}

/// The live tracking connection, numbered so that the pushes of an older
/// one (its late `Disconnection`) do not touch its successor.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) id: u64,
    pub(crate) conn: TrackConn,
}

/// The tracking connection of one store, its map, and its state.
pub(crate) struct Tracking {
    store: Arc<str>,
    source: Source,
    pub(super) map: LocalMap,
    /// Which misses are read tracked and kept (the second of a key).
    pub(super) admission: Admission,
    counters: Arc<Counters>,
    /// `Some(prefix)` in broadcast mode (`BCAST PREFIX prefix`; an empty
    /// prefix: every key), `None` in default mode.
    broadcast: Option<String>,
    /// `None` while down. A std lock: held to clone or swap, never across
    /// an `.await`.
    live: RwLock<Option<Live>>,
    next_id: AtomicU64,
    /// Wakes the liveness task at once when the connection is lost.
    wake: Notify,
    connect_timeout: Duration,
    response_timeout: Duration,
    command_timeout: Duration,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Tracking {
    /// Opens the tracking connection (failing when the server refuses
    /// `CLIENT TRACKING`: a near cache without invalidation would serve
    /// stale data) and starts its liveness task, which also flushes and
    /// reconnects when `repairs` changes.
    pub(crate) async fn open(
        store: Arc<str>,
        topology: &Topology,
        config: &NearCacheConfig,
        broadcast: Option<String>,
        repairs: watch::Receiver<u64>,
    ) -> RedisResult<Arc<Self>> {
        let counters = Arc::new(Counters::new(&store));
        let map = LocalMap::new(config, counters.clone());
        let source = match &topology.kind {
            Kind::Standalone(client) => Source::Server(resp3(client)?),
            Kind::Sentinel(target) => Source::Sentinel(target.clone()),
            Kind::Cluster(clients) => Source::Cluster(clients.tracking.clone()),
        };
        let tracking = Arc::new(Self {
            store,
            source,
            map,
            admission: Admission::new(config.max_bytes),
            counters,
            broadcast,
            live: RwLock::new(None),
            next_id: AtomicU64::new(1),
            wake: Notify::new(),
            connect_timeout: topology.connect_timeout,
            response_timeout: topology.response_timeout,
            command_timeout: topology.command_timeout,
            task: Mutex::new(None),
        });
        tracking.connect().await?;
        let task = tokio::spawn(watch_liveness(Arc::downgrade(&tracking), repairs));
        *tracking.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        Ok(tracking)
    }

    /// The local copy of `key` (stored form): `Some(value)` on a hit.
    pub(crate) fn lookup(&self, key: &str) -> Option<Option<Vec<u8>>> {
        self.map.lookup(key)
    }

    /// Drops the local copies of `keys` (stored form) after the store
    /// itself changed them, and refuses the inserts of reads sent before.
    pub(crate) fn forget<S: AsRef<str>>(&self, keys: &[S]) {
        for key in keys {
            self.map.invalidate(key.as_ref().as_bytes());
        }
    }

    /// The counters, what the map holds, and whether tracking is on.
    pub(crate) fn stats(&self) -> NearCacheStats {
        self.counters
            .snapshot(self.map.bytes_held(), self.map.entries(), self.is_live())
    }

    /// The live connection, `None` while it is down.
    pub(crate) fn live(&self) -> Option<Live> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether connection `id` is the live one (without cloning it).
    fn is_current(&self, id: u64) -> bool {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|current| current.id == id)
    }

    /// Whether tracking is on now.
    pub(crate) fn is_live(&self) -> bool {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Connection `id` is lost (or can no longer be trusted): flush, mark
    /// it down, and let the liveness task reconnect.
    pub(crate) fn lost(&self, id: u64, why: &'static str) {
        let was_current = {
            let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
            match &*live {
                Some(current) if current.id == id => {
                    *live = None;
                    true
                }
                _ => false,
            }
        };
        if was_current {
            self.map.flush();
            tracing::info!(store = %self.store, why, "near cache: tracking connection lost; flushed");
            self.wake.notify_one();
        }
    }

    /// Flushes and reopens the connection: the store's connections were
    /// repaired, so the server may have changed.
    fn reset(&self) {
        let current = self.live().map(|live| live.id);
        match current {
            Some(id) => self.lost(id, "connections repaired"),
            None => self.map.flush(),
        }
    }

    /// Opens a connection, turns tracking on, flushes (invalidations may
    /// have been missed before), then publishes it.
    async fn connect(self: &Arc<Self>) -> RedisResult<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let push = push_handler(Arc::downgrade(self), id);
        let conn = match &self.source {
            Source::Server(client) => self.open_server(client.clone(), push, false).await?,
            Source::Sentinel(target) => {
                let client = connection::master_client(target, self.connect_timeout).await?;
                self.open_server(resp3(&client)?, push, true).await?
            }
            Source::Cluster(factory) => {
                let conn = factory(Some(Arc::new(push)))?
                    .get_async_connection()
                    .await?;
                let mut on = redis::cmd("CLIENT");
                on.arg("TRACKING").arg("ON");
                cluster::on_every_primary(&conn, on)
                    .await
                    .map_err(tracking_refused)?;
                let slots = cluster::slots(&conn).await?;
                TrackConn::Cluster(conn, Arc::new(slots))
            }
        };
        self.map.flush();
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Some(Live { id, conn });
        Ok(())
    }

    /// A RESP3 connection to one server with `push` as its push sender,
    /// named and tracking; behind Sentinels, checked to be the primary.
    async fn open_server(
        &self,
        client: redis::Client,
        push: impl redis::aio::AsyncPushSender,
        check_primary: bool,
    ) -> RedisResult<TrackConn> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_push_sender(push);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        if check_primary {
            connection::check_primary(&mut conn).await?;
        }
        let mut setup = redis::pipe();
        setup
            .cmd("CLIENT")
            .arg("SETNAME")
            .arg(client_name(&self.store))
            .ignore()
            .cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON");
        if let Some(prefix) = &self.broadcast {
            setup.arg("BCAST");
            if !prefix.is_empty() {
                setup.arg("PREFIX").arg(prefix);
            }
        }
        setup.ignore();
        setup
            .query_async::<()>(&mut conn)
            .await
            .map_err(tracking_refused)?;
        Ok(TrackConn::Server(conn))
    }

    /// Applies one push from connection `id`. Runs in its driver, so it
    /// must not block: a map removal under a stripe lock at most.
    fn on_push(&self, id: u64, push: PushInfo) {
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        if let Value::BulkString(key) = key {
                            self.map.invalidate(key);
                        }
                    }
                    self.counters.invalidations.add(keys.len() as u64);
                }
                // `FLUSHDB`/`FLUSHALL` (a null), or a shape we do not
                // know: drop everything.
                _ => self.map.flush(),
            },
            PushKind::Disconnection => self.lost(id, "disconnected"),
            _ => {}
        }
    }

    /// Stops the liveness task and drops the connection.
    pub(crate) fn close(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.map.flush();
    }

    /// `PING` on the tracking connection under the command deadline: once
    /// it returns, every invalidation Redis sent before it has been
    /// applied.
    pub(crate) async fn ping(&self, live: &Live) -> RedisResult<()> {
        let ping = async {
            match &live.conn {
                TrackConn::Server(conn) => {
                    redis::cmd("PING")
                        .query_async::<()>(&mut conn.clone())
                        .await
                }
                TrackConn::Cluster(conn, _) => {
                    cluster::on_every_primary(conn, redis::cmd("PING")).await
                }
            }
        };
        match tokio::time::timeout(self.command_timeout, ping).await {
            Ok(reply) => reply,
            Err(_) => Err(RedisError::from((
                ErrorKind::Io,
                "no reply to PING on the tracking connection within command_timeout",
            ))),
        }
    }

    /// The liveness check: [`ping`](Self::ping), and on a cluster also
    /// that the slot map is the one tracking started under (a new primary
    /// or a moved slot knows nothing of our reads).
    async fn check(&self, live: &Live) -> RedisResult<()> {
        self.ping(live).await?;
        if let TrackConn::Cluster(conn, opened_under) = &live.conn {
            let now = tokio::time::timeout(self.command_timeout, cluster::slots(conn)).await;
            match now {
                Ok(Ok(now)) if now == **opened_under => {}
                Ok(Ok(_)) => {
                    return Err(RedisError::from((
                        ErrorKind::Client,
                        "the cluster's slot map changed",
                    )));
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(RedisError::from((
                        ErrorKind::Io,
                        "no reply to CLUSTER SLOTS within command_timeout",
                    )));
                }
            }
        }
        Ok(())
    }

    /// Reads `keys` (stored form) through the tracking connection —
    /// `MGET` of them all, then `PTTL` of each, in one pipeline, so that
    /// Redis tracks them and the values are one point in time (on a
    /// cluster, per slot, as a plain `MGET` there) — keeping the replies
    /// no invalidation raced. A key that exists but is not a string reads
    /// as missing (as `MGET` says) and is not kept; with `strict` (one
    /// key, `get`) it is read again with `GET` through `pool`, so that the
    /// caller gets the same error as without a near cache. When the
    /// tracking connection turns out to be broken, it is marked lost and
    /// the keys are read through `pool` instead (nothing kept): a lost
    /// tracking connection never fails a read the pool can serve.
    pub(crate) async fn read(
        &self,
        live: Live,
        mut pool: Conn,
        keys: &[&str],
        strict: bool,
    ) -> RedisResult<Vec<Option<Vec<u8>>>> {
        let tickets: Vec<_> = keys.iter().map(|key| self.map.ticket(key)).collect();
        // A loss after the tickets moves the epoch, which refuses the
        // inserts; one between taking `live` and the tickets does not:
        // then `live` (perhaps still answering, from a server we no longer
        // follow) must not fill the map.
        let keep = self.is_current(live.id);
        let sent = async {
            match &live.conn {
                TrackConn::Server(conn) => {
                    let pipe = read_pipeline(keys);
                    let replies = conn
                        .clone()
                        .send_packed_commands(&pipe, 0, 1 + keys.len())
                        .await?;
                    let mut replies = replies.into_iter();
                    let values = match replies.next() {
                        Some(Value::Array(values)) => values,
                        Some(Value::ServerError(e)) => return Err(e.into()),
                        _ => return Err(unexpected("MGET", "an array")),
                    };
                    let pttls = replies
                        .map(|reply| match reply {
                            Value::ServerError(e) => Err(RedisError::from(e)),
                            reply => Ok(reply),
                        })
                        .collect::<RedisResult<Vec<Value>>>()?;
                    Ok((values, pttls))
                }
                TrackConn::Cluster(conn, _) => cluster::read(conn, keys).await,
            }
        };
        let (values, pttls) = match sent.await {
            Ok(replies) => replies,
            Err(e) if is_lost(&e) => {
                self.lost(live.id, "a read failed");
                let mut plain = redis::cmd(if strict { "GET" } else { "MGET" });
                plain.arg(keys);
                return if strict {
                    plain
                        .query_async::<Option<Vec<u8>>>(&mut pool)
                        .await
                        .map(|value| vec![value])
                } else {
                    plain.query_async(&mut pool).await
                };
            }
            Err(e) => return Err(e),
        };
        if values.len() != keys.len() || pttls.len() != keys.len() {
            return Err(unexpected("MGET/PTTL pipeline", "a reply per key"));
        }
        let mut out = Vec::with_capacity(keys.len());
        for (((key, ticket), value), pttl) in keys.iter().zip(tickets).zip(values).zip(pttls) {
            let value = match value {
                Value::Nil => None,
                Value::BulkString(bytes) => Some(bytes),
                _ => return Err(unexpected("MGET", "strings or nils")),
            };
            let Value::Int(pttl) = pttl else {
                return Err(unexpected("PTTL", "an integer"));
            };
            if value.is_none() && pttl != -2 && strict {
                // It exists, yet `MGET` gave nil: not a string.
                let mut get = redis::cmd("GET");
                get.arg(*key);
                let value: Option<Vec<u8>> = get.query_async(&mut pool).await?;
                return Ok(vec![value]);
            }
            if keep {
                self.map.fill(key, ticket, value.as_deref(), pttl);
            }
            out.push(value);
        }
        Ok(out)
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// The push sender of connection `id`: a closure, so the driver runs it
/// inline (see the module docs). Holds the tracking weakly: the connection
/// it serves is owned by the tracking.
fn push_handler(
    tracking: Weak<Tracking>,
    id: u64,
) -> impl Fn(PushInfo) -> Result<(), Infallible> + Send + Sync + 'static {
    move |push| {
        if let Some(tracking) = tracking.upgrade() {
            tracking.on_push(id, push);
        }
        Ok(())
    }
}

/// Checks the connection every [`LIVENESS_INTERVAL`] (at once when it is
/// lost), reopens it while it is down, and resets it when the store's
/// connections are repaired. Ends when the tracking is dropped or closed.
async fn watch_liveness(tracking: Weak<Tracking>, mut repairs: watch::Receiver<u64>) {
    let mut repairs_open = true;
    loop {
        {
            let Some(strong) = tracking.upgrade() else {
                return;
            };
            tokio::select! {
                () = tokio::time::sleep(LIVENESS_INTERVAL) => {}
                () = strong.wake.notified() => {}
                changed = repairs.changed(), if repairs_open => match changed {
                    Ok(()) => strong.reset(),
                    Err(_) => repairs_open = false,
                },
            }
        }
        let Some(tracking) = tracking.upgrade() else {
            return;
        };
        // Refreshes the gauges of what the map holds.
        let _ = tracking.stats();
        match tracking.live() {
            Some(live) => {
                if let Err(e) = tracking.check(&live).await {
                    tracing::warn!(store = %tracking.store, error = %e,
                        "near cache: liveness PING failed");
                    tracking.lost(live.id, "liveness PING failed");
                }
            }
            None => {
                let deadline = tracking.connect_timeout + tracking.command_timeout;
                match tokio::time::timeout(deadline, tracking.connect()).await {
                    Ok(Ok(())) => {
                        tracing::info!(store = %tracking.store, "near cache: tracking back on");
                    }
                    Ok(Err(e)) => tracing::debug!(store = %tracking.store, error = %e,
                        "near cache: reopening the tracking connection failed; will retry"),
                    Err(_) => tracing::debug!(store = %tracking.store,
                        "near cache: reopening the tracking connection timed out; will retry"),
                }
            }
        }
    }
}

/// The same client speaking RESP3, which push messages need.
fn resp3(client: &redis::Client) -> RedisResult<redis::Client> {
    let info = client.get_connection_info().clone();
    let redis = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(redis))
}

/// `kv-near:<store>`, with anything `CLIENT SETNAME` refuses (spaces,
/// newlines) replaced: how an operator (or a test) finds the connection in
/// `CLIENT LIST`.
fn client_name(store: &str) -> String {
    let store: String = store
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!("kv-near:{store}")
}

/// `MGET` of `keys` and a `PTTL` of each, as one pipeline whose command
/// buffers are sized once (a miss's commands; built argument by argument,
/// they cost a miss about a tenth of its client work in reallocations).
fn read_pipeline(keys: &[&str]) -> redis::Pipeline {
    let key_bytes: usize = keys.iter().map(|key| key.len()).sum();
    let mut pipe = redis::Pipeline::with_capacity(1 + keys.len());
    let mut mget = sized_cmd("MGET", keys.len(), key_bytes);
    for key in keys {
        mget.arg(*key);
    }
    pipe.add_command(mget);
    for key in keys {
        let mut pttl = sized_cmd("PTTL", 1, key.len());
        pttl.arg(*key);
        pipe.add_command(pttl);
    }
    pipe
}

fn unexpected(what: &'static str, expected: &str) -> RedisError {
    RedisError::from((
        ErrorKind::UnexpectedReturnType,
        what,
        format!("expected {expected}"),
    ))
}

fn tracking_refused(e: RedisError) -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "the server refused CLIENT TRACKING ON, which the near cache needs",
        e.to_string(),
    ))
}

/// Whether a failed read says the tracking connection can no longer be
/// trusted (rather than the server answering with an error).
fn is_lost(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}
