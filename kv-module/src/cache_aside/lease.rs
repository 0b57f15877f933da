//! The cross-process lease: on a miss, one process (the holder of a short
//! `SET NX PX` key with a random token) loads and writes back, while the
//! others poll the entry for its value; after `lease.wait` they load by
//! themselves, so a holder that crashed or hangs costs a bounded delay,
//! never a failed read.
//!
//! The lease only limits duplicate loads. Correctness — never writing an
//! old value back — rests on the write-back comparing the entry (see the
//! [module documentation](super)), so a lease that expires mid-load is
//! harmless: at worst two processes load.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::config::CacheAsideConfig;
use super::entry::{Lookup, Observed, decode_entry};
use super::keys::RecordKeys;
use super::metrics::Counters;
use super::observe::observe;
use super::random;
use super::scripts::RELEASE_LEASE;
use crate::store::{KvStore, ScriptArgs, Ttl};

/// First pause between two looks at the entry; it grows by half each
/// time up to [`MAX_POLL`]. Short at first because most loads are quick;
/// cheap because only one caller per process and key polls (the others
/// wait on its single-flight).
const FIRST_POLL: Duration = Duration::from_millis(1);
/// Longest pause between two looks at the entry.
const MAX_POLL: Duration = Duration::from_millis(25);

/// A lease this process holds.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) key: String,
    pub(crate) token: String,
}

/// How the lease step of a miss ended.
pub(crate) enum LeaseOutcome<V> {
    /// This process holds the lease: it loads, and the record was
    /// `Observed` (with its ticket) after taking it.
    Held(Lease, Observed),
    /// Another process loaded meanwhile: its value, or `None` for a
    /// cached "not found".
    Answered(Option<V>),
    /// The wait ran out: load without a lease, the record as last seen.
    TimedOut(Observed),
    /// The store failed (counted and logged): load, and leave the cache
    /// alone.
    StoreFailed,
}

/// Takes the lease `lease_key` of the record at `keys` (of the cache
/// `cache`) or waits for the value of the process that holds it.
pub(crate) async fn acquire_or_wait<V: DeserializeOwned>(
    store: &dyn KvStore,
    cache: &Arc<str>,
    config: &CacheAsideConfig,
    counters: &Counters,
    keys: &RecordKeys,
    lease_key: String,
) -> LeaseOutcome<V> {
    let lease = config.lease;
    let entry_key = keys.entry.as_str();
    let token = random::token();
    let deadline = Instant::now() + lease.wait;
    let mut pause = FIRST_POLL;
    let failed = |op, err: &crate::KvError| {
        counters.store_failed(cache, op, entry_key, err);
        LeaseOutcome::StoreFailed
    };
    loop {
        match store
            .set_bytes_if_absent(&lease_key, token.as_bytes(), Ttl::After(lease.ttl))
            .await
        {
            Err(err) => return failed("lease", &err),
            Ok(true) => {
                // The previous holder may have written back between our
                // last look and taking the lease.
                return match observe::<V>(store, config.tombstone_ttl, keys).await {
                    Err(err) => {
                        release(store, cache, counters, &lease_key, &token).await;
                        failed("observe", &err)
                    }
                    Ok(Lookup::Hit(value)) => {
                        release(store, cache, counters, &lease_key, &token).await;
                        LeaseOutcome::Answered(Some(value))
                    }
                    Ok(Lookup::NotFound) => {
                        release(store, cache, counters, &lease_key, &token).await;
                        LeaseOutcome::Answered(None)
                    }
                    Ok(Lookup::Miss(observed)) => LeaseOutcome::Held(
                        Lease {
                            key: lease_key,
                            token,
                        },
                        observed,
                    ),
                };
            }
            Ok(false) => {}
        }
        // Someone else holds it: watch the entry, the negative key and
        // the lease together.
        loop {
            let now = Instant::now();
            if now >= deadline {
                return match observe::<V>(store, config.tombstone_ttl, keys).await {
                    Err(err) => failed("observe", &err),
                    Ok(Lookup::Hit(value)) => LeaseOutcome::Answered(Some(value)),
                    Ok(Lookup::NotFound) => LeaseOutcome::Answered(None),
                    Ok(Lookup::Miss(observed)) => {
                        tracing::debug!(
                            cache = &**cache,
                            key = entry_key,
                            "lease wait ran out: loading without the lease"
                        );
                        LeaseOutcome::TimedOut(observed)
                    }
                };
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = pause.mul_f32(1.5).min(MAX_POLL);
            let watched = [entry_key, keys.negative.as_str(), lease_key.as_str()];
            let found = match store.get_many_bytes(&watched).await {
                Ok(found) => found,
                Err(err) => return failed("MGET", &err),
            };
            let mut found = found.into_iter();
            let (entry, negative, held) = (
                found.next().flatten(),
                found.next().flatten(),
                found.next().flatten(),
            );
            if let (Some(value), _) = decode_entry::<V>(entry.as_deref()) {
                return LeaseOutcome::Answered(Some(value));
            }
            if negative.is_some() {
                return LeaseOutcome::Answered(None);
            }
            if held.is_none() {
                // Released (or expired) without a value: try to take it.
                break;
            }
        }
    }
}

/// Releases a lease this process holds (if it still does); a failure is
/// counted and logged, and the lease then expires by itself.
pub(crate) async fn release(
    store: &dyn KvStore,
    cache: &Arc<str>,
    counters: &Counters,
    lease_key: &str,
    token: &str,
) {
    if let Err(err) = store
        .run_script(&RELEASE_LEASE, &[lease_key], &ScriptArgs::new().str(token))
        .await
    {
        counters.store_failed(cache, "release lease", lease_key, &err);
    }
}
