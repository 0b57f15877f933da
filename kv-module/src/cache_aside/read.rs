//! The read path of [`KvCachedRepository`]: `get`, the shared load of a miss
//! (single-flight, lease) and its write-back, fenced by the load's ticket.

use std::sync::Arc;

use super::entry::{Lookup, NOT_FOUND, Observed, decode_entry, encode_value};
use super::error::{CacheError, LoadFailure};
use super::keys::RecordKeys;
use super::kv_cached_repository::{FlightResult, KvCachedRepository};
use super::lease::{self, Lease, LeaseOutcome};
use super::metrics::Count;
use super::observe::observe;
use super::repository::Repository;
use super::scripts::FILL;
use crate::config::millis;
use crate::store::{ScriptArgs, ScriptValue};

impl<R: Repository> KvCachedRepository<R> {
    /// The record at `key`: from the cache when it holds the key (a value
    /// or a cached "not found"), else from the repository — one load for
    /// all concurrent misses of the key — and then cached.
    ///
    /// # Errors
    ///
    /// Only the repository's: [`CacheError::Load`] with its error, or
    /// [`CacheError::LoadAborted`] when the load panicked. A failing store
    /// is counted and logged, and the record is loaded from the
    /// repository.
    // Not instrumented as a whole: a span costs about as much as the rest
    // of a hit (measured), and a hit is one store call, which has its own.
    // A miss opens a span around the shared load (`miss`).
    pub async fn get(&self, key: &R::Key) -> Result<Option<R::Value>, CacheError<R::Error>> {
        let entry_key = self.entry_key(key);
        let counters = &self.state.counters;
        let store_ok = if counters.bypassing() {
            // The store failed a moment ago: do not make this read wait
            // for it to fail again.
            false
        } else {
            match self.store.get_bytes(&entry_key).await {
                Ok(bytes) => {
                    counters.store_ok(self.name());
                    if let Some(value) = self.decode(&entry_key, bytes.as_deref()) {
                        counters.count(&self.name, Count::Hit);
                        return Ok(Some(value));
                    }
                    // Nothing usable at the entry key: a cached "not found"
                    // lives at a key of its own.
                    let negative_key = self.keys().negative_key(&entry_key);
                    match self.store.exists(&negative_key).await {
                        Ok(true) => {
                            counters.count(&self.name, Count::NegativeHit);
                            return Ok(None);
                        }
                        Ok(false) => true,
                        Err(err) => {
                            self.store_failed("EXISTS", &negative_key, &err);
                            false
                        }
                    }
                }
                Err(err) => {
                    self.store_failed("GET", &entry_key, &err);
                    false
                }
            }
        };
        self.miss(key, entry_key, store_ok).await
    }

    /// The rest of a `get` that found nothing usable: join (or start) the
    /// key's shared load and wait for it.
    #[tracing::instrument(
        name = "cache_miss",
        level = "debug",
        skip_all,
        fields(cache = %self.name(), key = %entry_key, store_ok),
        err(level = "debug")
    )]
    async fn miss(
        &self,
        key: &R::Key,
        entry_key: String,
        store_ok: bool,
    ) -> Result<Option<R::Value>, CacheError<R::Error>> {
        let (flight, _) = self.state.flights.join(&entry_key, || {
            let cache = self.clone();
            let key = key.clone();
            let entry_key = entry_key.clone();
            async move { cache.load_through(key, entry_key, store_ok).await }
        });
        // Counted once registered with the flight, so that a miss counted
        // is a caller the flight will answer.
        self.state.counters.count(&self.name, Count::Miss);
        match flight.await {
            Some(Ok(value)) => Ok(value),
            Some(Err(failure)) => Err(failure.into_error(&self.name, entry_key)),
            None => Err(LoadFailure::Aborted.into_error(&self.name, entry_key)),
        }
    }

    /// The work of one shared miss: look again (taking a load ticket),
    /// take the lease (when enabled), load, write back.
    async fn load_through(
        &self,
        key: R::Key,
        entry_key: String,
        store_ok: bool,
    ) -> FlightResult<R> {
        let keys = self.record_keys(entry_key);
        let mut held: Option<Lease> = None;
        let observed = if !store_ok {
            // The store just failed: do not wait on it again before
            // loading, nor try to write back.
            None
        } else if let Some(lease_key) = keys.lease.clone() {
            match lease::acquire_or_wait::<R::Value>(
                self.store.as_ref(),
                &self.name,
                &self.config,
                &self.state.counters,
                &keys,
                lease_key,
            )
            .await
            {
                LeaseOutcome::Held(lease, observed) => {
                    held = Some(lease);
                    Some(observed)
                }
                LeaseOutcome::Answered(value) => return Ok(value),
                LeaseOutcome::TimedOut(observed) => Some(observed),
                LeaseOutcome::StoreFailed => None,
            }
        } else {
            // The read that missed may predate the write-back of a load
            // that has just ended; looking again spares a second load,
            // and takes the ticket the write-back needs.
            match observe::<R::Value>(self.store.as_ref(), self.config.tombstone_ttl, &keys).await {
                Ok(Lookup::Hit(value)) => return Ok(Some(value)),
                Ok(Lookup::NotFound) => return Ok(None),
                Ok(Lookup::Miss(observed)) => Some(observed),
                Err(err) => {
                    self.store_failed("observe", &keys.entry, &err);
                    None
                }
            }
        };

        self.state.counters.count(&self.name, Count::Load);
        match self.repository.load(&key).await {
            Ok(value) => {
                if let Some(observed) = observed {
                    self.write_back(&keys, value.as_ref(), observed, held).await;
                }
                Ok(value)
            }
            Err(err) => {
                self.state.counters.count(&self.name, Count::LoadError);
                self.release(held).await;
                Err(LoadFailure::Repository(Arc::new(err)))
            }
        }
    }

    /// Writes a loaded value (or "not found") back, only if the load's
    /// ticket is still in the mark (no write since the load began), and
    /// releases the lease.
    async fn write_back(
        &self,
        keys: &RecordKeys,
        value: Option<&R::Value>,
        observed: Observed,
        lease: Option<Lease>,
    ) {
        let counters = &self.state.counters;
        let name = self.name();
        let entry_key = keys.entry.as_str();
        let encoded = match value {
            Some(value) => match encode_value(value) {
                Ok(bytes) => Some(("v", bytes, millis(self.config.ttl))),
                Err(err) => {
                    counters.count(&self.name, Count::StoreError);
                    tracing::warn!(cache = name, key = entry_key, error = %err, "cannot encode the loaded value; not cached");
                    None
                }
            },
            None if self.config.negative_ttl.is_zero() => None,
            None => Some(("n", NOT_FOUND.to_vec(), millis(self.config.negative_ttl))),
        };
        let (Some((target, bytes, ttl_ms)), Some(ticket)) = (encoded.as_ref(), &observed.ticket)
        else {
            if encoded.is_some() {
                counters.count(&self.name, Count::FillSkipped);
                tracing::debug!(
                    cache = name,
                    key = entry_key,
                    "a write was in progress (or the store refused the load's ticket): \
                     loaded value not written back"
                );
            }
            return self.release(lease).await;
        };
        let (kind, expected) = match &observed.entry {
            Some(bytes) => ("1", bytes.clone()),
            None => ("0", Vec::new()),
        };
        let mut args = ScriptArgs::new()
            .str(kind)
            .bytes(expected)
            .bytes(ticket.clone())
            .str(target)
            .bytes(bytes.clone())
            .uint(self.jittered_ms(*ttl_ms));
        let mut script_keys = keys.record().to_vec();
        if let Some(lease) = &lease {
            script_keys.push(&lease.key);
            args = args.str(&lease.token);
        }
        match self.store.run_script(&FILL, &script_keys, &args).await {
            Ok(ScriptValue::Int(1)) => counters.count(&self.name, Count::Fill),
            Ok(ScriptValue::Int(2)) => {
                counters.count(&self.name, Count::FillSkipped);
                counters.count(&self.name, Count::StoreError);
                tracing::debug!(
                    cache = name,
                    key = entry_key,
                    "the store refused the write-back (out of memory?): not cached"
                );
            }
            Ok(_) => {
                counters.count(&self.name, Count::FillSkipped);
                tracing::debug!(
                    cache = name,
                    key = entry_key,
                    "record written during the load (or its ticket expired): not written back"
                );
            }
            Err(err) => {
                self.store_failed("write back", entry_key, &err);
                self.release(lease).await;
            }
        }
    }

    /// Releases the lease this load holds, if any (a failure is counted
    /// and logged; the lease then expires by itself).
    async fn release(&self, lease: Option<Lease>) {
        if let Some(lease) = lease {
            let counters = &self.state.counters;
            let store = self.store.as_ref();
            lease::release(store, &self.name, counters, &lease.key, &lease.token).await;
        }
    }

    /// Decodes the bytes of an entry key; one that does not decode is a
    /// miss, counted and logged.
    fn decode(&self, entry_key: &str, bytes: Option<&[u8]>) -> Option<R::Value> {
        let (value, err) = decode_entry(bytes);
        if let Some(err) = err {
            self.state.counters.count(&self.name, Count::StoreError);
            tracing::warn!(
                cache = self.name(),
                key = entry_key,
                error = %err,
                "cached entry does not decode; loading from the repository"
            );
        }
        value
    }
}
