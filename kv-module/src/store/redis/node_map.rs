//! [`NodeMap`]: which primary of a Redis Cluster serves each hash slot,
//! and the circuit breaker of each primary.
//!
//! redis-rs keeps its own slot map to itself, so the store keeps one of
//! its own, read from `CLUSTER SLOTS` whenever it (re)builds its
//! connections: a frozen primary then opens the breaker of that node only,
//! and the keys of the other primaries keep being served. The map may lag
//! redis-rs's after a resharding or a failover until the next repair; a
//! call is then judged by the node the map names, which a failed call's
//! repair corrects.

use std::sync::Arc;

use redis::RedisResult;
use redis::cluster_async::ClusterConnection;

use super::breaker::Breaker;
use super::routing::slot_ranges;
use crate::store::SLOTS;

/// No primary serves the slot (the map said nothing about it).
const UNSERVED: u16 = u16::MAX;

/// The primaries of a cluster by slot, each with its breaker.
pub(crate) struct NodeMap {
    /// For each slot, its primary's index in `nodes`, or [`UNSERVED`].
    owner: Box<[u16]>,
    nodes: Vec<Node>,
}

/// One primary.
pub(crate) struct Node {
    /// `host:port`, as the breaker registry knows the server.
    pub(crate) server: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) breaker: Arc<Breaker>,
}

impl NodeMap {
    /// Asks the cluster (any node) which primary serves which slots.
    pub(crate) async fn fetch(conn: ClusterConnection) -> RedisResult<NodeMap> {
        let ranges = slot_ranges(conn).await?;
        let mut owner = vec![UNSERVED; usize::from(SLOTS)].into_boxed_slice();
        let mut nodes: Vec<Node> = Vec::new();
        for range in ranges {
            let server = format!("{}:{}", range.host, range.port);
            let index = match nodes.iter().position(|node| node.server == server) {
                Some(index) => index,
                None => {
                    nodes.push(Node {
                        breaker: Breaker::shared(&server),
                        server,
                        host: range.host,
                        port: range.port,
                    });
                    nodes.len() - 1
                }
            };
            let index = u16::try_from(index).unwrap_or(UNSERVED);
            let last = usize::from(range.last.min(SLOTS - 1));
            for slot in usize::from(range.first)..=last {
                owner[slot] = index;
            }
        }
        Ok(NodeMap { owner, nodes })
    }

    /// The primary serving `slot`, if the map knows one.
    pub(crate) fn owner(&self, slot: u16) -> Option<&Node> {
        let index = *self.owner.get(usize::from(slot))?;
        self.nodes.get(usize::from(index))
    }

    /// Every primary.
    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The primary whose breaker is `server`, if it is one of this map.
    pub(crate) fn node(&self, server: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.server == server)
    }
}
