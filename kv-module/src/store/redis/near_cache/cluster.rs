//! The near cache on a Redis Cluster: tracking per node.
//!
//! A node only invalidates keys that a connection read *on that node*, so
//! every miss goes to the primary of its key's slot as one pipeline that
//! begins with `CLIENT TRACKING ON`: whichever node connection redis-rs
//! uses (or reopened) has tracking on when the `GET` runs. The cluster
//! connection speaks RESP3 and forwards every node's pushes to the same
//! handler as on one server.
//!
//! What differs from one server (and why the store flushes more):
//!
//! * redis-rs forwards a node's pushes through a channel and a task, so a
//!   reply may overtake its invalidation by that hop: the bound on seeing
//!   another instance's write is "its invalidation has arrived", no longer
//!   "one round trip" ([`RedisStore::sync_near_cache`](crate::RedisStore::sync_near_cache)
//!   pings every primary, but cannot wait for that hop). The generation
//!   check still refuses every raced insert, and a late invalidation still
//!   drops the copy when it arrives.
//! * A `Disconnection` push does not say which node: the whole map is
//!   flushed.
//! * A new primary (failover) or a moved slot knows nothing of our reads:
//!   the liveness check compares `CLUSTER SLOTS` with what it was when the
//!   connection was opened, and any change flushes and reconnects, as a
//!   repair of the store's connections does.

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{RedisResult, Value};

use crate::store::key_slot;
use crate::store::redis::routing::slot_ranges;

/// Which primary serves which slots, as `(first, last, host, port)`: the
/// snapshot a liveness check compares.
pub(crate) type Slots = Vec<(u16, u16, String, u16)>;

/// The slot map now, sorted.
pub(crate) async fn slots(conn: &ClusterConnection) -> RedisResult<Slots> {
    let mut slots: Slots = slot_ranges(conn.clone())
        .await?
        .into_iter()
        .map(|range| (range.first, range.last, range.host, range.port))
        .collect();
    slots.sort();
    Ok(slots)
}

/// Sends `cmd` to every primary; fails if one fails.
pub(crate) async fn on_every_primary(conn: &ClusterConnection, cmd: redis::Cmd) -> RedisResult<()> {
    let mut conn = conn.clone();
    let route = RoutingInfo::MultiNode((
        MultipleNodeRoutingInfo::AllMasters,
        Some(ResponsePolicy::AllSucceeded),
    ));
    conn.route_command(cmd, route).await.map(drop)
}

/// `MGET` of the keys of each slot, then `PTTL` of each, on the primary
/// of the slot (after `CLIENT TRACKING ON`), one pipeline per slot, sent
/// concurrently; the values and the `PTTL` replies in the order of `keys`.
pub(crate) async fn read(
    conn: &ClusterConnection,
    keys: &[&str],
) -> RedisResult<(Vec<Value>, Vec<Value>)> {
    let mut by_slot: Vec<(u16, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let slot = key_slot(key);
        match by_slot.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, indexes)) => indexes.push(i),
            None => by_slot.push((slot, vec![i])),
        }
    }
    let sends = by_slot.iter().map(|(slot, indexes)| {
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("CLIENT").arg("TRACKING").arg("ON");
        let mget = pipe.cmd("MGET");
        for &i in indexes {
            mget.arg(keys[i]);
        }
        for &i in indexes {
            pipe.cmd("PTTL").arg(keys[i]);
        }
        let route = SingleNodeRoutingInfo::SpecificNode(Route::new(*slot, SlotAddr::Master));
        let count = 1 + indexes.len();
        async move { conn.route_pipeline(pipe, 1, count, route).await }
    });
    let parts = futures::future::try_join_all(sends).await?;
    let mut values = vec![Value::Nil; keys.len()];
    let mut pttls = vec![Value::Nil; keys.len()];
    for ((_, indexes), part) in by_slot.iter().zip(parts) {
        let mut part = part.into_iter();
        let Some(Value::Array(slot_values)) = part.next() else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "MGET",
                "expected an array".to_owned(),
            )));
        };
        for ((&i, value), pttl) in indexes.iter().zip(slot_values).zip(part.by_ref()) {
            values[i] = value;
            pttls[i] = pttl;
        }
    }
    Ok((values, pttls))
}
