//! [`CacheAside`]: a [`Repository`] read through a [`KvStore`].

use std::sync::Arc;

use async_trait::async_trait;
use shaku::Component;

use super::config::{CacheConfig, CacheSettings, WriteMode};
use super::entry::{Lookup, NOT_FOUND, Observed, decode_entry, encode_value, write_marker};
use super::error::{CacheError, LoadFailure};
use super::interface::CachedRepository;
use super::keys::RecordKeys;
use super::lease::{self, Lease, LeaseOutcome};
use super::metrics::{CacheMetrics, Counters, bump};
use super::observe::observe;
use super::random;
use super::repository::Repository;
use super::scripts::{FILL, FINISH_WRITE, MARK};
use super::single_flight::SingleFlight;
use crate::config::ConfigError;
use crate::error::KvError;
use crate::registry::{RegistryError, ServiceRegistry};
use crate::store::{KvStore, ScriptArgs, ScriptValue};

/// What one shared load gives every caller waiting on it.
type FlightResult<R> =
    Result<Option<<R as Repository>::Value>, LoadFailure<<R as Repository>::Error>>;

/// A [`Repository`] read through a cache in a [`KvStore`]: cache first,
/// the repository on a miss, and writes that go to the repository and
/// then update or invalidate the cache.
///
/// * **Reads** ([`get`](Self::get)): a hit is one `GET`. Concurrent misses
///   of a key in one process share one load; with the lease enabled,
///   processes share it too. "Not found" is cached for `negative_ttl`.
///   When the store fails, reads go to the repository (still one load per
///   key at a time) and succeed.
/// * **Writes** ([`create`](Self::create), [`update`](Self::update),
///   [`delete`](Self::delete)) always reach the repository, even when the
///   store is down or full, and return its result. The cache entry is then
///   replaced (write-through updates) or invalidated — a create clears a
///   cached "not found" of its key — so that no load that began before the
///   write can put the old value back.
/// * **TTLs** get a random jitter (default ±10 %), so entries written
///   together do not expire together.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use kv_module::MemoryStore;
/// use kv_module::cache_aside::{CacheAside, CacheConfig, Repository};
/// use kv_module::registry::StoreRef;
///
/// /// Squares, as if each took a database query.
/// struct Squares;
///
/// impl Repository for Squares {
///     type Key = u64;
///     type Value = u64;
///     type New = u64;
///     type Update = u64;
///     type Error = std::io::Error;
///
///     async fn load(&self, n: &u64) -> Result<Option<u64>, std::io::Error> {
///         Ok((*n < 1000).then(|| n * n))
///     }
///     async fn create(&self, n: u64) -> Result<(u64, u64), std::io::Error> {
///         Ok((n, n * n))
///     }
///     async fn update(&self, _: &u64, value: u64) -> Result<u64, std::io::Error> {
///         Ok(value)
///     }
///     async fn delete(&self, _: &u64) -> Result<bool, std::io::Error> {
///         Ok(true)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new("squares", "app"));
/// let config = CacheConfig::new(StoreRef::new("squares"), "square", Duration::from_secs(60));
/// let cache = CacheAside::new("squares", store, Arc::new(Squares), config)?;
///
/// assert_eq!(cache.get(&12).await?, Some(144)); // miss: loaded, then cached
/// assert_eq!(cache.get(&12).await?, Some(144)); // hit
/// assert_eq!(cache.get(&5000).await?, None); // not found, cached as such
/// assert_eq!(cache.get(&5000).await?, None); // negative hit
/// let metrics = cache.metrics();
/// assert_eq!((metrics.hits, metrics.negative_hits, metrics.loads), (1, 1, 2));
/// # Ok(())
/// # }
/// ```
///
/// See the [module documentation](super) for the stored layout, the
/// guarantees and how they are kept, and wiring with shaku.
#[derive(Component)]
#[shaku(interface = CachedRepository<R>)]
pub struct CacheAside<R: Repository> {
    /// The store the entries live in: resolve it with
    /// [`ServiceRegistry::store_for`].
    store: Arc<dyn KvStore>,
    /// The application's repository.
    repository: Arc<R>,
    /// The validated policy and the cache's name, from
    /// [`CacheSettings::new`].
    settings: CacheSettings,
    /// Counters and loads in flight, shared by clones.
    #[shaku(force_default)]
    state: Arc<State<R>>,
}

/// What clones of a cache share.
struct State<R: Repository> {
    counters: Counters,
    flights: SingleFlight<FlightResult<R>>,
}

impl<R: Repository> Default for State<R> {
    fn default() -> Self {
        Self {
            counters: Counters::default(),
            flights: SingleFlight::default(),
        }
    }
}

impl<R: Repository> Clone for CacheAside<R> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            repository: Arc::clone(&self.repository),
            settings: self.settings.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

impl<R: Repository> std::fmt::Debug for CacheAside<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheAside")
            .field("name", &self.settings.name())
            .field("store", &self.store.name())
            .field("config", self.settings.config())
            .field("in_flight", &self.state.flights)
            .finish()
    }
}

impl<R: Repository> CacheAside<R> {
    /// A cache named `name` (for logs, errors and metrics) of
    /// `repository`, with its entries in `store` (`config.store()` is not
    /// consulted: it is for [`from_registry`](Self::from_registry)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] when `config` breaks a rule of
    /// [`CacheConfig`].
    pub fn new(
        name: &str,
        store: Arc<dyn KvStore>,
        repository: Arc<R>,
        config: CacheConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            store,
            repository,
            settings: CacheSettings::new(name, config)?,
            state: Arc::default(),
        })
    }

    /// The cache `component` (its configuration section's name, also the
    /// cache's name) on the store `config.store()` names in `registry`.
    ///
    /// # Errors
    ///
    /// An unknown store, a service that is not a store, or an invalid
    /// configuration — each naming `component`.
    pub fn from_registry(
        registry: &ServiceRegistry,
        component: &str,
        config: CacheConfig,
        repository: Arc<R>,
    ) -> Result<Self, RegistryError> {
        let store = registry.store_for(component, config.store())?;
        Ok(Self::new(component, store, repository, config)?)
    }

    /// The shaku parameters that build this cache inside a module:
    /// `.with_component_parameters::<CacheAside<R>>(cache.into_parameters())`.
    /// The module's instance starts with its own counters.
    pub fn into_parameters(self) -> CacheAsideParameters<R> {
        CacheAsideParameters {
            store: self.store,
            repository: self.repository,
            settings: self.settings,
        }
    }

    /// The store the entries live in.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// The repository behind the cache.
    pub fn repository(&self) -> &Arc<R> {
        &self.repository
    }

    /// The validated policy and the cache's name.
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// The counters so far (shared by clones of this cache).
    pub fn metrics(&self) -> CacheMetrics {
        self.state.counters.snapshot()
    }

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
        let entry_key = self.settings.entry_key(key);
        let counters = &self.state.counters;
        let name = self.settings.name();
        let store_ok = if counters.bypassing() {
            // The store failed a moment ago: do not make this read wait
            // for it to fail again.
            false
        } else {
            match self.store.get_bytes(&entry_key).await {
                Ok(bytes) => {
                    counters.store_ok(name);
                    if let Some(value) = self.decode(&entry_key, bytes.as_deref()) {
                        bump(&counters.hits);
                        return Ok(Some(value));
                    }
                    // Nothing usable at the entry key: a cached "not found"
                    // lives at a key of its own.
                    let negative_key = self.settings.negative_key(&entry_key);
                    match self.store.exists(&negative_key).await {
                        Ok(true) => {
                            bump(&counters.negative_hits);
                            return Ok(None);
                        }
                        Ok(false) => true,
                        Err(err) => {
                            counters.store_failed(name, "EXISTS", &negative_key, &err);
                            false
                        }
                    }
                }
                Err(err) => {
                    counters.store_failed(name, "GET", &entry_key, &err);
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
        fields(cache = %self.settings.name(), key = %entry_key, store_ok),
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
        bump(&self.state.counters.misses);
        match flight.await {
            Some(Ok(value)) => Ok(value),
            Some(Err(failure)) => Err(failure.into_error(self.settings.name_arc(), entry_key)),
            None => Err(LoadFailure::Aborted.into_error(self.settings.name_arc(), entry_key)),
        }
    }

    /// Creates a record in the repository, then clears whatever the cache
    /// holds for its key — above all a cached "not found" from a `get`
    /// before the record existed — so the next `get` finds the record.
    /// Returns the repository's key and record.
    ///
    /// The value is not written through, whatever the [`WriteMode`]: the
    /// key is known only once the repository has it, too late to fence
    /// it against a concurrent update of the new record with a write
    /// marker; the next `get` loads it. A load of the key that began
    /// before the create (and found nothing) does not write its "not
    /// found" back: clearing the key ends its ticket.
    ///
    /// # Errors
    ///
    /// The repository's error, unchanged (the cache is then left alone).
    /// A failing store never fails a create: the failure is counted and
    /// logged, and a "not found" cached before may then be served until
    /// it expires (`negative_ttl`).
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.settings.name()),
        err(level = "debug")
    )]
    pub async fn create(&self, new: R::New) -> Result<(R::Key, R::Value), R::Error> {
        let (key, value) = self.repository.create(new).await?;
        let keys = self.settings.record_keys(self.settings.entry_key(&key));
        if let Err(err) = self.clear(&keys).await {
            self.state
                .counters
                .store_failed(self.settings.name(), "invalidate", &keys.entry, &err);
            tracing::warn!(
                cache = self.settings.name(),
                key = keys.entry,
                negative_ttl = ?self.settings.config().negative_ttl(),
                "cannot clear the key of a created record: a \"not found\" cached \
                 before may be served until it expires"
            );
        }
        self.state.flights.forget(&keys.entry);
        Ok((key, value))
    }

    /// Applies `update` in the repository, then — by the configured
    /// [`WriteMode`] — caches the record the repository returned or
    /// invalidates the entry. Returns the repository's result.
    ///
    /// Before the repository is written, a write marker replaces the
    /// key's load ticket and the entry is deleted, so that no reader
    /// keeps the old value while the write is in progress and no load
    /// writes a value back until it is done. An update cancelled half-way
    /// (a client that hung up) therefore leaves at worst the marker,
    /// which expires after `tombstone_ttl`, never the old value. When the
    /// store refuses the marker (out of memory), the entry and the mark
    /// are deleted instead (`DEL` is always allowed), which keeps the
    /// same promise.
    ///
    /// # Errors
    ///
    /// The repository's error, unchanged (the entry is then invalidated,
    /// as the repository's state is unknown). A failing store never fails
    /// an update: the repository is written anyway, and the failure is
    /// counted and logged. When the store did not answer the marker at
    /// all (unreachable, timed out), the invalidation after the write runs
    /// on a task of its own, so that the update waits for the store at
    /// most once.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.settings.name(), key = %key),
        err(level = "debug")
    )]
    pub async fn update(&self, key: &R::Key, update: R::Update) -> Result<R::Value, R::Error> {
        let keys = self.settings.record_keys(self.settings.entry_key(key));
        let mark = self.mark_writing(&keys).await;
        let result = self.repository.update(key, update).await;
        match (&result, &mark, self.settings.config().write_mode()) {
            (Ok(value), Ok(Some(marker)), WriteMode::WriteThrough) => {
                self.finish_write_through(&keys, marker, value).await;
            }
            _ => self.finish_invalidate(&keys, &mark).await,
        }
        self.state.flights.forget(&keys.entry);
        result
    }

    /// Deletes the record in the repository, then invalidates the entry
    /// (fenced by a write marker, as for [`update`](Self::update)).
    /// Returns whether the record existed. Afterwards none of the key's
    /// store keys exists; the next `get` caches "not found".
    ///
    /// # Errors
    ///
    /// The repository's error, unchanged. As for
    /// [`update`](Self::update), a failing store never fails a delete.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.settings.name(), key = %key),
        err(level = "debug")
    )]
    pub async fn delete(&self, key: &R::Key) -> Result<bool, R::Error> {
        let keys = self.settings.record_keys(self.settings.entry_key(key));
        let mark = self.mark_writing(&keys).await;
        let result = self.repository.delete(key).await;
        self.finish_invalidate(&keys, &mark).await;
        self.state.flights.forget(&keys.entry);
        result
    }

    /// Invalidates the entry of `key`, for a change made to the
    /// repository outside this cache: deletes the entry, a cached "not
    /// found", the key's load ticket (so no load in flight writes back)
    /// and its lease, in one `UNLINK`.
    ///
    /// # Errors
    ///
    /// The store's error (also counted and logged): the entry may then
    /// still be served until it expires.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.settings.name(), key = %key),
        err(level = "debug")
    )]
    pub async fn invalidate(&self, key: &R::Key) -> Result<(), KvError> {
        let keys = self.settings.record_keys(self.settings.entry_key(key));
        let result = self.clear(&keys).await;
        self.state.flights.forget(&keys.entry);
        if let Err(err) = &result {
            self.state
                .counters
                .store_failed(self.settings.name(), "invalidate", &keys.entry, err);
        }
        result
    }

    /// The work of one shared miss: look again (taking a load ticket),
    /// take the lease (when enabled), load, write back.
    async fn load_through(
        &self,
        key: R::Key,
        entry_key: String,
        store_ok: bool,
    ) -> FlightResult<R> {
        let keys = self.settings.record_keys(entry_key);
        let mut held: Option<Lease> = None;
        let observed = if !store_ok {
            // The store just failed: do not wait on it again before
            // loading, nor try to write back.
            None
        } else if keys.lease.is_some() {
            match lease::acquire_or_wait::<R::Value>(
                self.store.as_ref(),
                &self.settings,
                &self.state.counters,
                &keys,
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
            match observe::<R::Value>(self.store.as_ref(), &self.settings, &keys).await {
                Ok(Lookup::Hit(value)) => return Ok(Some(value)),
                Ok(Lookup::NotFound) => return Ok(None),
                Ok(Lookup::Miss(observed)) => Some(observed),
                Err(err) => {
                    self.state.counters.store_failed(
                        self.settings.name(),
                        "observe",
                        &keys.entry,
                        &err,
                    );
                    None
                }
            }
        };

        bump(&self.state.counters.loads);
        match self.repository.load(&key).await {
            Ok(value) => {
                if let Some(observed) = observed {
                    self.write_back(&keys, value.as_ref(), observed, held).await;
                }
                Ok(value)
            }
            Err(err) => {
                bump(&self.state.counters.load_errors);
                if let Some(lease) = held {
                    self.release(&lease).await;
                }
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
        let name = self.settings.name();
        let entry_key = keys.entry.as_str();
        let encoded = match value {
            Some(value) => match encode_value(value) {
                Ok(bytes) => Some(("v", bytes, self.settings.ttl_ms())),
                Err(err) => {
                    bump(&counters.store_errors);
                    tracing::warn!(cache = name, key = entry_key, error = %err, "cannot encode the loaded value; not cached");
                    None
                }
            },
            None if self.settings.negative_ttl_ms() == 0 => None,
            None => Some(("n", NOT_FOUND.to_vec(), self.settings.negative_ttl_ms())),
        };
        let (Some((target, bytes, ttl_ms)), Some(ticket)) = (encoded.as_ref(), &observed.ticket)
        else {
            if encoded.is_some() {
                bump(&counters.fills_skipped);
                tracing::debug!(
                    cache = name,
                    key = entry_key,
                    "a write was in progress (or the store refused the load's ticket): \
                     loaded value not written back"
                );
            }
            if let Some(lease) = lease {
                self.release(&lease).await;
            }
            return;
        };
        let ttl_ms = random::jittered_ms(*ttl_ms, self.settings.jitter(), random::unit());
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
            .uint(ttl_ms);
        let mut script_keys = keys.record().to_vec();
        if let Some(lease) = &lease {
            script_keys.push(&lease.key);
            args = args.str(&lease.token);
        }
        match self.store.run_script(&FILL, &script_keys, &args).await {
            Ok(ScriptValue::Int(1)) => bump(&counters.fills),
            Ok(ScriptValue::Int(2)) => {
                bump(&counters.fills_skipped);
                bump(&counters.store_errors);
                tracing::debug!(
                    cache = name,
                    key = entry_key,
                    "the store refused the write-back (out of memory?): not cached"
                );
            }
            Ok(_) => {
                bump(&counters.fills_skipped);
                tracing::debug!(
                    cache = name,
                    key = entry_key,
                    "record written during the load (or its ticket expired): not written back"
                );
            }
            Err(err) => {
                counters.store_failed(name, "write back", entry_key, &err);
                if let Some(lease) = lease {
                    self.release(&lease).await;
                }
            }
        }
    }

    /// Before a repository write: a write marker replaces the key's mark
    /// (ending the tickets of loads in flight) and the entry and any
    /// cached "not found" are deleted. `Ok(Some(marker))` when the marker
    /// was written, `Ok(None)` when the store refused it (out of memory:
    /// the mark was deleted instead), `Err` when the store failed
    /// (counted and logged).
    async fn mark_writing(&self, keys: &RecordKeys) -> Result<Option<Vec<u8>>, KvError> {
        let name = self.settings.name();
        let marker = write_marker(&random::token());
        let args = ScriptArgs::new()
            .bytes(marker.clone())
            .uint(self.settings.tombstone_ttl_ms());
        match self.store.run_script(&MARK, &keys.record(), &args).await {
            Ok(ScriptValue::Int(1)) => {
                self.state.counters.store_ok(name);
                Ok(Some(marker))
            }
            Ok(_) => {
                bump(&self.state.counters.store_errors);
                tracing::warn!(
                    cache = name,
                    key = keys.entry,
                    "the store refused the write marker (out of memory?): \
                     the entry and the load tickets were deleted instead"
                );
                Ok(None)
            }
            Err(err) => {
                self.state
                    .counters
                    .store_failed(name, "mark write", &keys.entry, &err);
                Err(err)
            }
        }
    }

    /// After a write-through update: the new value replaces the marker,
    /// unless something else replaced the marker meanwhile (then the
    /// entry is deleted).
    async fn finish_write_through(&self, keys: &RecordKeys, marker: &[u8], value: &R::Value) {
        let counters = &self.state.counters;
        let name = self.settings.name();
        let entry_key = keys.entry.as_str();
        let encoded = match encode_value(value) {
            Ok(bytes) => bytes,
            Err(err) => {
                bump(&counters.store_errors);
                tracing::warn!(cache = name, key = entry_key, error = %err, "cannot encode the updated value; invalidating");
                return self.invalidate_after_write(keys, true).await;
            }
        };
        let ttl_ms = random::jittered_ms(
            self.settings.ttl_ms(),
            self.settings.jitter(),
            random::unit(),
        );
        let args = ScriptArgs::new()
            .bytes(marker.to_vec())
            .bytes(encoded)
            .uint(ttl_ms);
        match self
            .store
            .run_script(&FINISH_WRITE, &keys.all(), &args)
            .await
        {
            Ok(ScriptValue::Int(1)) => counters.store_ok(name),
            Ok(ScriptValue::Int(2)) => {
                bump(&counters.store_errors);
                tracing::warn!(
                    cache = name,
                    key = entry_key,
                    "the store refused the updated value (out of memory?): invalidated instead"
                );
            }
            Ok(_) => tracing::debug!(
                cache = name,
                key = entry_key,
                "a concurrent write or invalidation replaced the marker: invalidated instead"
            ),
            Err(err) => {
                counters.store_failed(name, "write through", entry_key, &err);
                self.marker_left(entry_key);
            }
        }
    }

    /// After a write: the record's keys are deleted. When the store did
    /// not even answer the marker (`mark` failed as unavailable), on a
    /// task of its own: the request does not wait for the store a second
    /// time, and the invalidation still happens if the store comes back.
    async fn finish_invalidate(&self, keys: &RecordKeys, mark: &Result<Option<Vec<u8>>, KvError>) {
        if mark.as_ref().is_err_and(KvError::is_unavailable) {
            let cache = self.clone();
            let keys = keys.clone();
            tokio::spawn(async move { cache.invalidate_after_write(&keys, false).await });
            return;
        }
        self.invalidate_after_write(keys, matches!(mark, Ok(Some(_))))
            .await;
    }

    /// Deletes the record's keys after a write; `marked` when the write's
    /// marker is in the store (it then keeps loads from writing back
    /// until it expires, should this deletion fail).
    async fn invalidate_after_write(&self, keys: &RecordKeys, marked: bool) {
        let name = self.settings.name();
        if let Err(err) = self.clear(keys).await {
            self.state
                .counters
                .store_failed(name, "invalidate", &keys.entry, &err);
            if marked {
                self.marker_left(&keys.entry);
            } else {
                tracing::warn!(
                    cache = name,
                    key = keys.entry,
                    ttl = ?self.settings.config().ttl(),
                    "cannot invalidate after a write: if the store kept the entry, \
                     it may serve the previous value until it expires"
                );
            }
        }
    }

    fn marker_left(&self, entry_key: &str) {
        tracing::debug!(
            cache = self.settings.name(),
            key = entry_key,
            expires_in = ?self.settings.config().tombstone_ttl(),
            "the write marker stays until it expires; loads are not written back meanwhile"
        );
    }

    /// Deletes every key of the record in one `UNLINK` (which a full
    /// Redis still runs): the entry, a cached "not found", the mark (a
    /// load in flight began before this and will not write back) and,
    /// with the lease enabled, the lease (the processes waiting for that
    /// load need not).
    async fn clear(&self, keys: &RecordKeys) -> Result<(), KvError> {
        self.store.delete_keys(&keys.all()).await?;
        self.state.counters.store_ok(self.settings.name());
        Ok(())
    }

    async fn release(&self, lease: &Lease) {
        lease::release(
            self.store.as_ref(),
            &self.settings,
            &self.state.counters,
            &lease.key,
            &lease.token,
        )
        .await;
    }

    /// Decodes the bytes of an entry key; one that does not decode is a
    /// miss, counted and logged.
    fn decode(&self, entry_key: &str, bytes: Option<&[u8]>) -> Option<R::Value> {
        let (value, err) = decode_entry(bytes);
        if let Some(err) = err {
            bump(&self.state.counters.store_errors);
            tracing::warn!(
                cache = self.settings.name(),
                key = entry_key,
                error = %err,
                "cached entry does not decode; loading from the repository"
            );
        }
        value
    }
}

#[async_trait]
impl<R: Repository> CachedRepository<R> for CacheAside<R> {
    async fn get(&self, key: &R::Key) -> Result<Option<R::Value>, CacheError<R::Error>> {
        CacheAside::get(self, key).await
    }

    async fn create(&self, new: R::New) -> Result<(R::Key, R::Value), R::Error> {
        CacheAside::create(self, new).await
    }

    async fn update(&self, key: &R::Key, update: R::Update) -> Result<R::Value, R::Error> {
        CacheAside::update(self, key, update).await
    }

    async fn delete(&self, key: &R::Key) -> Result<bool, R::Error> {
        CacheAside::delete(self, key).await
    }

    async fn invalidate(&self, key: &R::Key) -> Result<(), KvError> {
        CacheAside::invalidate(self, key).await
    }

    fn metrics(&self) -> CacheMetrics {
        CacheAside::metrics(self)
    }

    fn name(&self) -> &str {
        self.settings.name()
    }
}
