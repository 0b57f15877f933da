//! [`Role`]: whether a data node is a primary or a replica, as it says
//! itself, and the replication details the fixtures poll.

use crate::TestRedis;

/// The replication role a server reports (`INFO replication`, the same
/// answer as `ROLE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A primary (`role:master`).
    Primary,
    /// A replica (`role:slave`).
    Replica,
}

/// What one server says about its replication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Replication {
    pub(crate) role: Role,
    /// The port of the primary a replica follows.
    pub(crate) primary_port: Option<u16>,
    /// A replica's `master_link_status:up`; always false for a primary.
    pub(crate) link_up: bool,
}

/// Asks `node` for its replication state; `None` when it does not answer
/// (stopped, frozen, or not ready). Bounded by redis-rs' default connect
/// (1 s) and response (500 ms) timeouts.
pub(crate) async fn replication(node: &TestRedis) -> Option<Replication> {
    if !node.is_running() || node.is_frozen() {
        return None;
    }
    let mut conn = node
        .client(0)
        .get_multiplexed_async_connection()
        .await
        .ok()?;
    let info: redis::InfoDict = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .ok()?;
    let role = match info.get::<String>("role")?.as_str() {
        "master" => Role::Primary,
        "slave" => Role::Replica,
        _ => return None,
    };
    Some(Replication {
        role,
        primary_port: info.get("master_port"),
        link_up: info.get::<String>("master_link_status").as_deref() == Some("up"),
    })
}
