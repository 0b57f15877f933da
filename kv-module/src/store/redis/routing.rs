//! The operations whose keys may live on several nodes: `SCAN` (one
//! server, or every primary of a cluster) and `set_many` (one `MULTI`, or
//! one per hash slot of a cluster).
//!
//! `MGET` and `UNLINK` need nothing here: on a cluster redis-rs splits
//! them per slot, sends the parts concurrently and puts the replies back
//! in order.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{RedisError, RedisResult, Value};

use super::connection::Conn;
use crate::store::key_slot;

/// Keys matching `pattern`, without duplicates (`SCAN` may return a key
/// more than once), on the one server or on every primary of a cluster
/// (replicas hold copies). Each round trip is bounded by `per_call`. Keys
/// that are not UTF-8 cannot be named through the `&str` API and are
/// skipped.
///
/// On a cluster that is resharding, a key moving between primaries during
/// the scan may be missed or seen twice (seen twice is deduplicated): the
/// same guarantee `SCAN` gives on one server for keys written meanwhile.
pub(crate) async fn scan_matching(
    conn: Conn,
    pattern: &str,
    per_call: Duration,
) -> RedisResult<HashSet<String>> {
    let mut found = HashSet::new();
    match conn {
        Conn::Single(conn) => {
            scan_node(&mut found, pattern, per_call, |cmd| {
                let mut conn = conn.clone();
                async move { cmd.query_async::<Value>(&mut conn).await }
            })
            .await?;
        }
        Conn::Cluster(conn) => {
            let primaries = within(per_call, primaries(conn.clone())).await?;
            let scans = primaries.into_iter().map(|(host, port)| {
                let conn = conn.clone();
                async move {
                    let mut found = HashSet::new();
                    scan_node(&mut found, pattern, per_call, |cmd| {
                        let mut conn = conn.clone();
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port,
                        });
                        async move { conn.route_command(cmd, route).await }
                    })
                    .await
                    .map(|()| found)
                }
            });
            for part in futures::future::try_join_all(scans).await? {
                found.extend(part);
            }
        }
    }
    Ok(found)
}

/// One node's `SCAN` loop, each round trip sent by `send`.
async fn scan_node<F, Fut>(
    found: &mut HashSet<String>,
    pattern: &str,
    per_call: Duration,
    send: F,
) -> RedisResult<()>
where
    F: Fn(redis::Cmd) -> Fut,
    Fut: Future<Output = RedisResult<Value>>,
{
    let mut cursor: u64 = 0;
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let reply = within(per_call, send(cmd)).await?;
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::from_redis_value(reply)?;
        found.extend(batch.into_iter().filter_map(|k| String::from_utf8(k).ok()));
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// The primaries of the cluster (`host`, `port`), from `CLUSTER SLOTS`.
async fn primaries(conn: ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let mut primaries = Vec::new();
    for range in slot_ranges(conn).await? {
        let primary = (range.host, range.port);
        if !primaries.contains(&primary) {
            primaries.push(primary);
        }
    }
    Ok(primaries)
}

/// A range of hash slots and the primary serving it.
pub(crate) struct SlotRange {
    pub(crate) first: u16,
    pub(crate) last: u16,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// The slot ranges of the cluster and their primaries, from
/// `CLUSTER SLOTS` (asked of any node).
pub(crate) async fn slot_ranges(mut conn: ClusterConnection) -> RedisResult<Vec<SlotRange>> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    let reply = conn
        .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
        .await?;
    // Each range: [start, end, [host, port, id, ...], replicas...].
    let ranges: Vec<Vec<Value>> = redis::from_redis_value(reply)?;
    let mut found = Vec::with_capacity(ranges.len());
    for range in ranges {
        let mut fields = range.into_iter();
        let (Some(first), Some(last), Some(primary)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let node: Vec<Value> = redis::from_redis_value(primary)?;
        let mut node = node.into_iter();
        let (Some(host), Some(port)) = (node.next(), node.next()) else {
            continue;
        };
        found.push(SlotRange {
            first: redis::from_redis_value(first)?,
            last: redis::from_redis_value(last)?,
            host: redis::from_redis_value(host)?,
            port: redis::from_redis_value(port)?,
        });
    }
    Ok(found)
}

/// `SET` commands grouped by hash slot, in first-seen order of the slots:
/// on a cluster each group is one `MULTI` on the primary of that slot.
pub(crate) fn by_slot(stored: Vec<(String, redis::Cmd)>) -> Vec<Vec<redis::Cmd>> {
    let mut order = Vec::new();
    let mut groups: BTreeMap<u16, Vec<redis::Cmd>> = BTreeMap::new();
    for (key, cmd) in stored {
        let slot = key_slot(&key);
        if !groups.contains_key(&slot) {
            order.push(slot);
        }
        groups.entry(slot).or_default().push(cmd);
    }
    order
        .into_iter()
        .filter_map(|slot| groups.remove(&slot))
        .collect()
}

/// `future`, or a timeout error when it takes longer than `limit`.
async fn within<T>(
    limit: Duration,
    future: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no reply within command_timeout ({limit:?})"),
        ))),
    }
}
