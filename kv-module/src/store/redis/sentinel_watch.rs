//! Following a Sentinel failover the moment it is announced.
//!
//! When the Sentinels promote a replica they publish `+switch-master
//! <name> <old ip> <old port> <new ip> <new port>` on each Sentinel. The
//! old primary, if it is still running (a manual `SENTINEL FAILOVER`, or
//! a frozen primary that wakes up), keeps accepting writes until the
//! Sentinels demote it, about ten seconds later on this project's
//! machines, and those writes are then lost. A store that waited for
//! `READONLY` would write into that window; this watcher subscribes to the
//! announcement on every Sentinel (one frozen Sentinel cannot silence it)
//! and repairs the store's connections at once.

use std::sync::Weak;
use std::time::Duration;

use futures::StreamExt;

use super::link::Link;
use super::topology::SentinelTarget;

/// The pause before subscribing again after a Sentinel dropped the
/// subscription or could not be reached.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Spawns one watcher per Sentinel; each holds the link weakly and stops
/// when it is gone. The handles abort them (the link keeps them and
/// aborts them when closed or dropped).
pub(crate) fn spawn(
    link: Weak<Link>,
    target: &SentinelTarget,
    connect_timeout: Duration,
) -> Vec<tokio::task::AbortHandle> {
    target
        .sentinels
        .iter()
        .map(|sentinel| {
            let sentinel = sentinel.clone();
            let link = link.clone();
            let name = target.master_name.clone();
            tokio::spawn(watch(link, sentinel, name, connect_timeout)).abort_handle()
        })
        .collect()
}

async fn watch(link: Weak<Link>, sentinel: redis::Client, name: String, connect_timeout: Duration) {
    while link.strong_count() > 0 {
        let subscribed = tokio::time::timeout(connect_timeout, async {
            let mut pubsub = sentinel.get_async_pubsub().await?;
            pubsub.subscribe("+switch-master").await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        if let Ok(Ok(pubsub)) = subscribed {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                if payload.split(' ').next() != Some(name.as_str()) {
                    continue;
                }
                let Some(link) = link.upgrade() else {
                    return;
                };
                tracing::info!(store = %link.ctx().store, master = %name,
                    "the Sentinels switched the primary; reconnecting");
                link.repair_now();
            }
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}
