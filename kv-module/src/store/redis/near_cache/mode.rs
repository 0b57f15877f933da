//! [`NearCacheMode`]: how Redis tells a near cache which keys changed.

use serde::Deserialize;

/// How Redis tells a near cache which keys changed (the two modes of
/// `CLIENT TRACKING`).
///
/// Both give the same guarantees (see the near cache's module
/// documentation); they differ in what they cost and where they run:
///
/// | mode | Redis remembers | invalidations pushed | a miss costs Redis (measured) |
/// |---|---|---|---|
/// | `tracking` | every key the store read, until it changes | for keys this store read | 0.76 × a plain `GET` at 50 tasks |
/// | `broadcast` | the store's prefix, once | for every key written under the prefix | 1.0 × a plain `GET` |
///
/// (`GET` + `PTTL` sent raw on a tracking connection against a raw `GET`,
/// `cargo bench -p kv-module-tests --bench near_cache`, docs/BENCHMARKS.md.)
/// Broadcast suits a store whose prefix holds the cached keys and little
/// else (a cache store): every write under it concerns a key the near
/// cache may hold. Tracking suits a store without a prefix, where
/// broadcast would push an invalidation for every write to the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NearCacheMode {
    /// `broadcast` for a store with a prefix on one server (standalone or
    /// behind Sentinels), `tracking` otherwise. The default.
    #[default]
    Auto,
    /// Default-mode `CLIENT TRACKING ON`: Redis remembers each key the
    /// store read and invalidates those. Works on every topology.
    Tracking,
    /// `CLIENT TRACKING ON BCAST PREFIX <prefix>:` (no `PREFIX` for a
    /// store without one: every key of the server): Redis remembers
    /// nothing per read. Not on a Redis Cluster, where a node connection
    /// that redis-rs reopens would silently lose its subscription (tracking
    /// mode re-enables itself with every read there).
    Broadcast,
}

impl NearCacheMode {
    /// The prefix to broadcast for a store whose keys are stored under
    /// `stored_prefix` (`"{prefix}:"`, or empty), on a cluster or not:
    /// `Some` for broadcast (an empty prefix: every key), `None` for
    /// default-mode tracking. [`RedisConfig`](crate::RedisConfig)'s checks
    /// refuse `Broadcast` on a cluster before a store opens.
    pub(crate) fn broadcast_prefix(self, stored_prefix: &str, cluster: bool) -> Option<String> {
        match self {
            Self::Auto if cluster || stored_prefix.is_empty() => None,
            Self::Auto | Self::Broadcast => Some(stored_prefix.to_owned()),
            Self::Tracking => None,
        }
    }
}
