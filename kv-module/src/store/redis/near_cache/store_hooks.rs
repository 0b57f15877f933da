//! What [`RedisStore`](crate::RedisStore) calls into: opening the near
//! cache with the store, reads through it, and [`ForgetOnDrop`], which
//! drops the local copies of the keys a write touched. Kept here so the
//! store's own code gains a few hook lines only.

use std::sync::Arc;

use super::config::NearCacheConfig;
use super::tracking::Tracking;
use crate::error::Result;
use crate::store::redis::link::{Link, Route};
use crate::store::redis::topology::{Kind, Topology};

impl Tracking {
    /// Opens the near cache of the store whose connections are `link` and
    /// whose keys start with `stored_prefix`, within the start-up
    /// deadline; a server that refuses `CLIENT TRACKING` fails the open
    /// (and closes `link`).
    pub(crate) async fn open_for_store(
        link: &Arc<Link>,
        topology: &Topology,
        config: &NearCacheConfig,
        stored_prefix: &str,
    ) -> Result<Arc<Self>> {
        let ctx = link.ctx();
        let deadline = topology.connect_timeout.saturating_mul(2) + topology.command_timeout;
        let cluster = matches!(topology.kind, Kind::Cluster(_));
        let broadcast = config.mode.broadcast_prefix(stored_prefix, cluster);
        let opened = Self::open(
            ctx.store.clone(),
            topology,
            config,
            broadcast,
            link.repairs(),
        );
        let failed = match tokio::time::timeout(deadline, opened).await {
            Ok(Ok(tracking)) => return Ok(tracking),
            Ok(Err(e)) => ctx.map("CLIENT TRACKING", None, e),
            Err(elapsed) => ctx.unavailable(Box::new(elapsed)),
        };
        link.close();
        Err(failed)
    }

    /// `get_bytes` of `key` (`stored` as Redis names it) after
    /// [`lookup`](Self::lookup) found no local copy: `Some` with the
    /// answer, read through the tracking connection under the store's
    /// deadline and breaker, or `None` when the near cache does not answer
    /// (the key's first miss, see `admission.rs`, or its connection is
    /// down): then the store reads as it does without one.
    pub(crate) async fn get_missed(
        &self,
        link: &Arc<Link>,
        key: &str,
        stored: &str,
    ) -> Result<Option<Option<Vec<u8>>>> {
        // A first miss is read as without a near cache (`admission.rs`).
        if !self.admission.admit(stored) {
            return Ok(None);
        }
        let Some(live) = self.live() else {
            return Ok(None);
        };
        let keys = [stored];
        let read = |pool| async move { self.read(live, pool, &keys, true).await };
        let mut values = link
            .call("GET", Some(key), Route::Key(stored), read)
            .await?;
        Ok(Some(values.pop().flatten()))
    }

    /// `get_many_bytes` of `stored` keys, one point in time as `MGET` is:
    /// from memory when every key has a local copy and none was
    /// invalidated while they were read, else all read through the
    /// tracking connection (one `MGET`); `None` as for
    /// [`get_missed`](Self::get_missed) (unless every key missed before).
    pub(crate) async fn get_many(
        &self,
        link: &Arc<Link>,
        stored: &[String],
    ) -> Result<Option<Vec<Option<Vec<u8>>>>> {
        let tickets: Vec<_> = stored.iter().map(|key| self.map.ticket(key)).collect();
        let local: Option<Vec<Option<Vec<u8>>>> =
            stored.iter().map(|key| self.lookup(key)).collect();
        if let Some(values) = local
            && self.map.unchanged(&tickets)
        {
            return Ok(Some(values));
        }
        if !self.admission.admit_all(stored) {
            return Ok(None);
        }
        let Some(live) = self.live() else {
            return Ok(None);
        };
        let keys: Vec<&str> = stored.iter().map(String::as_str).collect();
        let keys = &keys;
        let read = |pool| async move { self.read(live, pool, keys, false).await };
        let values = link.call("MGET", None, Route::Keys(stored), read).await?;
        Ok(Some(values))
    }
}

/// Drops the near cache's copies of the keys a write touches when it
/// goes: at the end of the write, so after Redis replied (whatever it
/// replied), or when the write is cancelled (its outcome unknown). Not
/// before the reply: a read sent between the drop and the write would put
/// the old value back, and the server's invalidation of a client's own
/// write trails its reply.
pub(crate) struct ForgetOnDrop<'a> {
    near: Option<&'a Tracking>,
    stored: &'a [String],
}

impl<'a> ForgetOnDrop<'a> {
    /// A guard for the `stored` keys of a write on a store with `near`.
    pub(crate) fn new(near: Option<&'a Tracking>, stored: &'a [String]) -> Self {
        Self { near, stored }
    }
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(near) = self.near {
            near.forget(self.stored);
        }
    }
}
