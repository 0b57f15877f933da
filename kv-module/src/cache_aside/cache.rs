//! [`CacheAside`]: a [`Repository`] read through a [`KvStore`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shaku::Component;
use tokio::time::Instant;

use super::config::{CacheConfig, CacheSettings, WriteMode};
use super::entry::{
    Lookup, Observed, encode_invalidated, encode_not_found, encode_value, encode_writing, lookup,
};
use super::error::{CacheError, LoadFailure};
use super::interface::CachedRepository;
use super::lease::{self, Lease, LeaseOutcome, Seen};
use super::metrics::{CacheMetrics, Counters, bump};
use super::random;
use super::repository::Repository;
use super::scripts::{FILL, FINISH_WRITE, INVALIDATE};
use super::single_flight::SingleFlight;
use crate::config::ConfigError;
use crate::error::KvError;
use crate::registry::ServiceRegistry;
use crate::store::{KvStore, ScriptArgs, ScriptValue, Ttl};

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
/// * **Writes** ([`update`](Self::update), [`delete`](Self::delete)) always
///   reach the repository, even when the store is down, and return its
///   result. The cache entry is then replaced (write-through) or
///   invalidated, so that no load that began before the write can put the
///   old value back.
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
    ) -> Result<Self, ConfigError> {
        let store = registry.store_for(component, config.store())?;
        Self::new(component, store, repository, config)
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
        let store_ok = if counters.bypassing() {
            // The store failed a moment ago: do not make this read wait
            // for it to fail again.
            false
        } else {
            match self.store.get_bytes(&entry_key).await {
                Ok(bytes) => {
                    counters.store_ok(self.settings.name());
                    match self.lookup(&entry_key, bytes) {
                        Lookup::Hit(value) => {
                            bump(&counters.hits);
                            return Ok(Some(value));
                        }
                        Lookup::NotFound => {
                            bump(&counters.negative_hits);
                            return Ok(None);
                        }
                        Lookup::Miss(_) => true,
                    }
                }
                Err(err) => {
                    counters.store_failed(self.settings.name(), "GET", &entry_key, &err);
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

    /// Creates a record in the repository (stub: repository only).
    ///
    /// # Errors
    ///
    /// The repository's error, unchanged.
    pub async fn create(&self, new: R::New) -> Result<(R::Key, R::Value), R::Error> {
        self.repository.create(new).await
    }

    /// Applies `update` in the repository, then — by the configured
    /// [`WriteMode`] — caches the record the repository returned or
    /// invalidates the entry. Returns the repository's result.
    ///
    /// Before the repository is written, the entry is replaced by a
    /// marker, so that no reader keeps the old value while the write is
    /// in progress and no load writes a value back until it is done. An
    /// update cancelled half-way (a client that hung up) therefore leaves
    /// at worst the marker, which expires after `tombstone_ttl`, never the
    /// old value.
    ///
    /// # Errors
    ///
    /// The repository's error, unchanged (the entry is then invalidated,
    /// as the repository's state is unknown). A failing store never fails
    /// an update: the repository is written anyway, and the failure is
    /// counted and logged.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.settings.name(), key = %key),
        err(level = "debug")
    )]
    pub async fn update(&self, key: &R::Key, update: R::Update) -> Result<R::Value, R::Error> {
        let entry_key = self.settings.entry_key(key);
        let marker = self.mark_writing(&entry_key).await;
        let result = self.repository.update(key, update).await;
        match (&result, self.settings.config().write_mode()) {
            (Ok(value), WriteMode::WriteThrough) => {
                self.finish_write_through(&entry_key, marker, value).await;
            }
            _ => self.finish_invalidate(&entry_key, marker.is_some()).await,
        }
        self.state.flights.forget(&entry_key);
        result
    }

    /// Deletes the record in the repository, then invalidates the entry.
    /// Returns whether the record existed.
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
        let entry_key = self.settings.entry_key(key);
        let marked = self.mark_writing(&entry_key).await.is_some();
        let result = self.repository.delete(key).await;
        self.finish_invalidate(&entry_key, marked).await;
        self.state.flights.forget(&entry_key);
        result
    }

    /// Invalidates the entry of `key`, for a change made to the
    /// repository outside this cache — for instance after inserting a
    /// record whose key may be cached as "not found".
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
        let entry_key = self.settings.entry_key(key);
        let result = self.write_tombstone(&entry_key).await;
        self.state.flights.forget(&entry_key);
        if let Err(err) = &result {
            self.state
                .counters
                .store_failed(self.settings.name(), "invalidate", &entry_key, err);
        }
        result
    }

    /// The work of one shared miss: look again, take the lease (when
    /// enabled), load, write back.
    async fn load_through(
        &self,
        key: R::Key,
        entry_key: String,
        store_ok: bool,
    ) -> FlightResult<R> {
        let mut held: Option<Lease> = None;
        let seen = if !store_ok {
            // The store just failed: do not wait on it again before
            // loading, nor try to write back.
            None
        } else if self.settings.config().lease().is_enabled() {
            match lease::acquire_or_wait::<R::Value>(
                self.store.as_ref(),
                &self.settings,
                &self.state.counters,
                &entry_key,
            )
            .await
            {
                LeaseOutcome::Held(lease, seen) => {
                    held = Some(lease);
                    Some(seen)
                }
                LeaseOutcome::Answered(value) => return Ok(value),
                LeaseOutcome::TimedOut(seen) => Some(seen),
                LeaseOutcome::StoreFailed => None,
            }
        } else {
            // The read that missed may predate the write-back of a load
            // that has just ended; looking again spares a second load.
            let at = Instant::now();
            match self.store.get_bytes(&entry_key).await {
                // An entry that does not decode was reported by the read
                // that missed.
                Ok(bytes) => match lookup(bytes).0 {
                    Lookup::Hit(value) => return Ok(Some(value)),
                    Lookup::NotFound => return Ok(None),
                    Lookup::Miss(observed) => Some(Seen { observed, at }),
                },
                Err(err) => {
                    self.state
                        .counters
                        .store_failed(self.settings.name(), "GET", &entry_key, &err);
                    None
                }
            }
        };

        bump(&self.state.counters.loads);
        match self.repository.load(&key).await {
            Ok(value) => {
                if let Some(seen) = seen {
                    self.write_back(&entry_key, value.as_ref(), seen, held)
                        .await;
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

    /// Writes a loaded value (or "not found") back, only if the entry is
    /// still as `seen` before the load, and releases the lease.
    async fn write_back(
        &self,
        entry_key: &str,
        value: Option<&R::Value>,
        seen: Seen,
        lease: Option<Lease>,
    ) {
        let counters = &self.state.counters;
        let name = self.settings.name();
        let encoded = match value {
            Some(value) => match encode_value(value) {
                Ok(bytes) => Some((bytes, self.settings.ttl_ms())),
                Err(err) => {
                    bump(&counters.store_errors);
                    tracing::warn!(cache = name, key = entry_key, error = %err, "cannot encode the loaded value; not cached");
                    None
                }
            },
            None if self.settings.negative_ttl_ms() == 0 => None,
            None => Some((encode_not_found(), self.settings.negative_ttl_ms())),
        };
        // Invalidations are remembered for `tombstone_ttl`: a load older
        // than half of it might have raced with one already forgotten.
        let guard = Duration::from_millis(self.settings.tombstone_ttl_ms() / 2);
        let fresh = seen.at.elapsed() < guard;
        let cacheable = encoded.is_some();
        let (Some((bytes, ttl_ms)), true, true) = (encoded, seen.observed.is_fillable(), fresh)
        else {
            if cacheable {
                bump(&counters.fills_skipped);
                tracing::debug!(
                    cache = name,
                    key = entry_key,
                    write_in_progress = !seen.observed.is_fillable(),
                    fresh,
                    "loaded value not written back"
                );
            }
            if let Some(lease) = lease {
                self.release(&lease).await;
            }
            return;
        };
        let ttl_ms = random::jittered_ms(ttl_ms, self.settings.jitter(), random::unit());
        let (kind, expected) = match seen.observed {
            Observed::Bytes(bytes) => ("1", bytes),
            Observed::Absent | Observed::Writing => ("0", Vec::new()),
        };
        let mut args = ScriptArgs::new()
            .str(kind)
            .bytes(expected)
            .bytes(bytes)
            .uint(ttl_ms);
        let mut keys = vec![entry_key];
        if let Some(lease) = &lease {
            keys.push(&lease.key);
            args = args.str(&lease.token);
        }
        match self.store.run_script(&FILL, &keys, &args).await {
            Ok(ScriptValue::Int(1)) => bump(&counters.fills),
            Ok(_) => {
                bump(&counters.fills_skipped);
                tracing::debug!(
                    cache = name,
                    key = entry_key,
                    "entry changed during the load (update or delete): not written back"
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

    /// Replaces the entry by a write marker before a repository write;
    /// the marker's bytes when it was written.
    async fn mark_writing(&self, entry_key: &str) -> Option<Vec<u8>> {
        let marker = encode_writing(&random::token());
        let ttl = Ttl::millis(self.settings.tombstone_ttl_ms());
        match self.store.set_bytes(entry_key, &marker, ttl).await {
            Ok(()) => Some(marker),
            Err(err) => {
                self.state.counters.store_failed(
                    self.settings.name(),
                    "mark write",
                    entry_key,
                    &err,
                );
                None
            }
        }
    }

    /// After a write-through update: the new value replaces the marker,
    /// unless something else replaced the marker meanwhile.
    async fn finish_write_through(
        &self,
        entry_key: &str,
        marker: Option<Vec<u8>>,
        value: &R::Value,
    ) {
        let counters = &self.state.counters;
        let name = self.settings.name();
        let Some(marker) = marker else {
            // Without a marker another writer's race cannot be detected:
            // invalidate instead.
            return self.finish_invalidate(entry_key, false).await;
        };
        let encoded = match encode_value(value) {
            Ok(bytes) => bytes,
            Err(err) => {
                bump(&counters.store_errors);
                tracing::warn!(cache = name, key = entry_key, error = %err, "cannot encode the updated value; invalidating");
                return self.finish_invalidate(entry_key, true).await;
            }
        };
        let ttl_ms = random::jittered_ms(
            self.settings.ttl_ms(),
            self.settings.jitter(),
            random::unit(),
        );
        let args = ScriptArgs::new()
            .bytes(marker)
            .bytes(encoded)
            .uint(ttl_ms)
            .bytes(encode_invalidated(&random::token()))
            .uint(self.settings.tombstone_ttl_ms());
        let lease_key = self.lease_key(entry_key);
        let mut keys = vec![entry_key];
        keys.extend(lease_key.as_deref());
        match self.store.run_script(&FINISH_WRITE, &keys, &args).await {
            Ok(ScriptValue::Int(1)) => counters.store_ok(name),
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

    /// After a write: a tombstone replaces whatever the entry holds.
    async fn finish_invalidate(&self, entry_key: &str, marked: bool) {
        let name = self.settings.name();
        if let Err(err) = self.write_tombstone(entry_key).await {
            self.state
                .counters
                .store_failed(name, "invalidate", entry_key, &err);
            if marked {
                self.marker_left(entry_key);
            } else {
                tracing::warn!(
                    cache = name,
                    key = entry_key,
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
            "the write marker stays until it expires; reads go to the repository meanwhile"
        );
    }

    /// A tombstone replaces the entry; with the lease enabled, the key's
    /// lease goes too (a load in flight began before the write and will
    /// not write back; the processes waiting for it need not wait).
    async fn write_tombstone(&self, entry_key: &str) -> Result<(), KvError> {
        let tombstone = encode_invalidated(&random::token());
        let ttl_ms = self.settings.tombstone_ttl_ms();
        match self.lease_key(entry_key) {
            None => {
                self.store
                    .set_bytes(entry_key, &tombstone, Ttl::millis(ttl_ms))
                    .await?;
            }
            Some(lease_key) => {
                let args = ScriptArgs::new().bytes(tombstone).uint(ttl_ms);
                self.store
                    .run_script(&INVALIDATE, &[entry_key, &lease_key], &args)
                    .await?;
            }
        }
        self.state.counters.store_ok(self.settings.name());
        Ok(())
    }

    /// The lease key of an entry, when the lease is enabled.
    fn lease_key(&self, entry_key: &str) -> Option<String> {
        self.settings
            .config()
            .lease()
            .is_enabled()
            .then(|| self.settings.lease_key(entry_key))
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

    /// Decodes an entry; an undecodable one is a miss, counted and logged.
    fn lookup(&self, entry_key: &str, bytes: Option<Vec<u8>>) -> Lookup<R::Value> {
        let (found, err) = lookup(bytes);
        if let Some(err) = err {
            bump(&self.state.counters.store_errors);
            tracing::warn!(
                cache = self.settings.name(),
                key = entry_key,
                error = %err,
                "cached entry does not decode; loading from the repository"
            );
        }
        found
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
