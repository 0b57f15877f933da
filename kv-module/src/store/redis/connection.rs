//! [`Conn`]: one multiplexed connection of a store — to one server or to a
//! whole cluster — and [`connect`], which opens them for a [`Topology`].

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::topology::{Kind, SentinelTarget, Topology};

/// Reconnection attempts a standalone connection makes before failing the
/// commands waiting on it. Kept small so that callers learn quickly that
/// the server is down (and can fail open); the next command starts a new
/// attempt.
const RECONNECT_RETRIES: usize = 2;

/// A connection the store sends commands through: a redis-rs
/// `ConnectionManager` (one server, reconnecting by itself) or a cluster
/// connection (every node, routing by slot). Cheap to clone.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Opens `pool_size` connections for `topology`, each answering `PING`
/// (and, behind Sentinels, `ROLE` as a primary) before it is returned.
/// The caller bounds the whole with its own deadline.
pub(crate) async fn connect(topology: &Topology) -> RedisResult<Vec<Conn>> {
    let conns = (0..topology.pool_size).map(|_| connect_one(topology));
    futures::future::try_join_all(conns).await
}

async fn connect_one(topology: &Topology) -> RedisResult<Conn> {
    let mut conn = match &topology.kind {
        Kind::Standalone(client) => Conn::Single(manager(client.clone(), topology).await?),
        Kind::Cluster(clients) => Conn::Cluster(clients.calls.get_async_connection().await?),
        Kind::Sentinel(target) => {
            let client = master_client(target, topology.connect_timeout).await?;
            let mut conn = manager(client, topology).await?;
            check_primary(&mut conn).await?;
            Conn::Single(conn)
        }
    };
    redis::cmd("PING").query_async::<()>(&mut conn).await?;
    Ok(conn)
}

/// Opens one connection for blocking pops: the same server(s) and
/// settings as [`connect`]'s, but without a response timeout (a pop's
/// reply comes when a value does; the caller bounds the call with its own
/// deadline), and used by one call at a time.
pub(crate) async fn connect_blocking(topology: &Topology) -> RedisResult<Conn> {
    let mut conn = match &topology.kind {
        Kind::Standalone(client) => {
            Conn::Single(manager_with(client.clone(), topology, None).await?)
        }
        Kind::Cluster(clients) => Conn::Cluster(clients.blocking.get_async_connection().await?),
        Kind::Sentinel(target) => {
            let client = master_client(target, topology.connect_timeout).await?;
            let mut conn = manager_with(client, topology, None).await?;
            check_primary(&mut conn).await?;
            Conn::Single(conn)
        }
    };
    redis::cmd("PING").query_async::<()>(&mut conn).await?;
    Ok(conn)
}

async fn manager(client: redis::Client, topology: &Topology) -> RedisResult<ConnectionManager> {
    manager_with(client, topology, reply_deadline(topology)).await
}

/// The connection's own deadline for one reply: `response_timeout` when it
/// is shorter than `command_timeout`, else none. Every call through these
/// connections is bounded by `command_timeout` from before the request is
/// sent (`Link::call`; connecting and probing by their own deadlines), so
/// a reply deadline at least as long can never end a call first, and would
/// only cost a second timer per request.
fn reply_deadline(topology: &Topology) -> Option<Duration> {
    (topology.response_timeout < topology.command_timeout).then_some(topology.response_timeout)
}

async fn manager_with(
    client: redis::Client,
    topology: &Topology,
    response_timeout: Option<Duration>,
) -> RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(topology.connect_timeout))
        .set_response_timeout(response_timeout)
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config).await
}

/// A client for the primary the Sentinels name now.
///
/// Every Sentinel is asked at once, each bounded by `timeout`, and the
/// address most of the answering ones give wins (ties: the first listed):
/// one frozen or stale Sentinel can neither stall nor misdirect the store.
pub(crate) async fn master_client(
    target: &SentinelTarget,
    timeout: Duration,
) -> RedisResult<redis::Client> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let asks = target.sentinels.iter().map(|sentinel| {
        let config = config.clone();
        async move {
            let mut conn = sentinel
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&target.master_name)
                .query_async::<Option<(String, u16)>>(&mut conn)
                .await
        }
    });
    let answers = futures::future::join_all(asks).await;
    let mut votes: HashMap<(String, u16), (usize, usize)> = HashMap::new();
    let mut last_error = None;
    for (order, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(Some(addr)) => votes.entry(addr).or_insert((0, order)).0 += 1,
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
    }
    let Some(((host, port), _)) = votes
        .into_iter()
        .max_by(|(_, (a, a_order)), (_, (b, b_order))| a.cmp(b).then(b_order.cmp(a_order)))
    else {
        return Err(last_error.unwrap_or_else(|| {
            RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "no Sentinel knows the master",
                target.master_name.clone(),
            ))
        }));
    };
    target.master_client(host, port)
}

/// Fails unless the server is a primary: right after a failover a
/// Sentinel may still name the old one, which now refuses writes.
pub(crate) async fn check_primary<C: ConnectionLike + Send>(conn: &mut C) -> RedisResult<()> {
    let role: Vec<Value> = redis::cmd("ROLE").query_async(conn).await?;
    match role.first() {
        Some(Value::BulkString(role)) if role == b"master" => Ok(()),
        Some(Value::SimpleString(role)) if role == "master" => Ok(()),
        _ => Err(RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "the server the Sentinels named is not a primary (yet)",
        ))),
    }
}
