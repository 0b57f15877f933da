//! [`KvCachedRepository`]: a [`Repository`] read through a [`KvStore`]: the
//! component, its construction and its shaku interface. The read path
//! (`get`) is in `read.rs`, the write path (`create`, `update`, `delete`,
//! `invalidate`) in `write.rs`.

use std::sync::Arc;

use async_trait::async_trait;
#[cfg(feature = "shaku")]
use shaku::Component;

use super::cached_repository::CachedRepository;
use super::config::CacheAsideConfig;
use super::error::{CacheError, LoadFailure};
use super::keys::{CacheKeys, RecordKeys};
use super::metrics::{CacheMetrics, Counters};
use super::random;
use super::repository::Repository;
use super::single_flight::SingleFlight;
use crate::config::ConfigError;
use crate::error::KvError;
#[cfg(feature = "yaml")]
use crate::registry::{RegistryError, ServiceRegistry};
use crate::store::KvStore;

/// What one shared load gives every caller waiting on it.
pub(super) type FlightResult<R> =
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
/// use kv_module::cache_aside::{KvCachedRepository, CacheAsideConfig, Repository};
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
/// let config = CacheAsideConfig::new(StoreRef::new("squares"), "square", Duration::from_secs(60));
/// let cache = KvCachedRepository::new("squares", store, Arc::new(Squares), config)?;
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
#[cfg_attr(feature = "shaku", derive(Component))]
#[cfg_attr(feature = "shaku", shaku(interface = CachedRepository<R>))]
pub struct KvCachedRepository<R: Repository> {
    /// The store the entries live in: resolve it with
    /// [`ServiceRegistry::store_for`].
    pub(super) store: Arc<dyn KvStore>,
    /// The application's repository.
    pub(super) repository: Arc<R>,
    /// The cache's name (in logs, errors and metrics).
    pub(super) name: Arc<str>,
    /// The validated configuration.
    pub(super) config: CacheAsideConfig,
    /// Counters and loads in flight, shared by clones.
    #[cfg_attr(feature = "shaku", shaku(force_default))]
    pub(super) state: Arc<State<R>>,
}

/// What clones of a cache share.
pub(super) struct State<R: Repository> {
    pub(super) counters: Counters,
    pub(super) flights: SingleFlight<FlightResult<R>>,
}

impl<R: Repository> Default for State<R> {
    fn default() -> Self {
        Self {
            counters: Counters::default(),
            flights: SingleFlight::default(),
        }
    }
}

impl<R: Repository> Clone for KvCachedRepository<R> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            repository: Arc::clone(&self.repository),
            name: Arc::clone(&self.name),
            config: self.config.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

impl<R: Repository> std::fmt::Debug for KvCachedRepository<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCachedRepository")
            .field("name", &self.name)
            .field("store", &self.store.name())
            .field("config", &self.config)
            .field("in_flight", &self.state.flights)
            .finish()
    }
}

impl<R: Repository> KvCachedRepository<R> {
    /// A cache named `name` (for logs, errors and metrics) of
    /// `repository`, with its entries in `store` (`config.store` is not
    /// consulted: it is for [`from_registry`](Self::from_registry)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] when `config` breaks a rule of
    /// [`CacheAsideConfig`].
    pub fn new(
        name: &str,
        store: Arc<dyn KvStore>,
        repository: Arc<R>,
        config: CacheAsideConfig,
    ) -> Result<Self, ConfigError> {
        config
            .validate()
            .map_err(|message| ConfigError::invalid_setting(name, message))?;
        Ok(Self {
            store,
            repository,
            name: Arc::from(name),
            config,
            state: Arc::default(),
        })
    }

    /// The cache `component` (its configuration section's name, also the
    /// cache's name) on the store `config.store` names in `registry`.
    ///
    /// # Errors
    ///
    /// An unknown store, a service that is not a store, or an invalid
    /// configuration — each naming `component`.
    #[cfg(feature = "yaml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
    pub fn from_registry(
        registry: &ServiceRegistry,
        component: &str,
        config: CacheAsideConfig,
        repository: Arc<R>,
    ) -> Result<Self, RegistryError> {
        let store = registry.store_for(component, &config.store)?;
        Ok(Self::new(component, store, repository, config)?)
    }

    /// The shaku parameters that build this cache inside a module:
    /// `.with_component_parameters::<KvCachedRepository<R>>(cache.into_parameters())`.
    /// The module's instance starts with its own counters.
    #[cfg(feature = "shaku")]
    #[cfg_attr(docsrs, doc(cfg(feature = "shaku")))]
    pub fn into_parameters(self) -> KvCachedRepositoryParameters<R> {
        KvCachedRepositoryParameters {
            store: self.store,
            repository: self.repository,
            name: self.name,
            config: self.config,
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

    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The validated configuration.
    pub fn config(&self) -> &CacheAsideConfig {
        &self.config
    }

    /// The counters so far (shared by clones of this cache).
    pub fn metrics(&self) -> CacheMetrics {
        self.state.counters.snapshot()
    }

    /// `ttl_ms` with this cache's jitter applied: a fresh draw per call.
    pub(super) fn jittered_ms(&self, ttl_ms: u64) -> u64 {
        random::jittered_ms(ttl_ms, self.config.jitter, random::unit())
    }

    /// How this cache names its store keys.
    pub(super) fn keys(&self) -> CacheKeys<'_> {
        CacheKeys::new(&self.config.key_prefix)
    }

    /// The store key of `key`'s entry.
    pub(super) fn entry_key(&self, key: &R::Key) -> String {
        self.keys().entry_key(key)
    }

    /// Every store key of the record at `entry_key`.
    pub(super) fn record_keys(&self, entry_key: String) -> RecordKeys {
        self.keys()
            .record_keys(entry_key, self.config.lease.enabled)
    }

    /// Counts and logs a failed store operation `op` on `key` (and has
    /// reads skip the store for a moment).
    pub(super) fn store_failed(&self, op: &'static str, key: &str, err: &KvError) {
        self.state.counters.store_failed(&self.name, op, key, err);
    }
}

#[async_trait]
impl<R: Repository> CachedRepository<R> for KvCachedRepository<R> {
    async fn get(&self, key: &R::Key) -> Result<Option<R::Value>, CacheError<R::Error>> {
        KvCachedRepository::get(self, key).await
    }

    async fn create(&self, new: R::New) -> Result<(R::Key, R::Value), R::Error> {
        KvCachedRepository::create(self, new).await
    }

    async fn update(&self, key: &R::Key, update: R::Update) -> Result<R::Value, R::Error> {
        KvCachedRepository::update(self, key, update).await
    }

    async fn delete(&self, key: &R::Key) -> Result<bool, R::Error> {
        KvCachedRepository::delete(self, key).await
    }

    async fn invalidate(&self, key: &R::Key) -> Result<(), KvError> {
        KvCachedRepository::invalidate(self, key).await
    }

    fn metrics(&self) -> CacheMetrics {
        KvCachedRepository::metrics(self)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::MemoryStore;
    use crate::config::millis;
    use crate::registry::StoreRef;
    use crate::store::MAX_TTL;

    /// A repository that holds nothing.
    struct Empty;

    impl Repository for Empty {
        type Key = u64;
        type Value = u64;
        type New = u64;
        type Update = u64;
        type Error = std::io::Error;

        async fn load(&self, _: &u64) -> Result<Option<u64>, std::io::Error> {
            Ok(None)
        }
        async fn create(&self, n: u64) -> Result<(u64, u64), std::io::Error> {
            Ok((n, n))
        }
        async fn update(&self, _: &u64, n: u64) -> Result<u64, std::io::Error> {
            Ok(n)
        }
        async fn delete(&self, _: &u64) -> Result<bool, std::io::Error> {
            Ok(false)
        }
    }

    fn cache(config: CacheAsideConfig) -> Result<KvCachedRepository<Empty>, ConfigError> {
        let store = Arc::new(MemoryStore::new("s", "app"));
        KvCachedRepository::new("users", store, Arc::new(Empty), config)
    }

    #[test]
    fn code_errors_name_the_cache() {
        let config = CacheAsideConfig::new(StoreRef::new("s"), "", Duration::from_secs(1));
        let err = cache(config).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidSetting { .. }));
        let text = err.to_string();
        assert!(
            text.contains("users") && text.contains("key_prefix"),
            "{text}"
        );
        let config = CacheAsideConfig::new(StoreRef::new("s"), "u", Duration::from_secs(1))
            .with_jitter(f64::NAN);
        assert!(cache(config).is_err());
        let config = CacheAsideConfig::new(StoreRef::new("s"), "u", MAX_TTL);
        assert!(cache(config).is_err(), "jitter would exceed MAX_TTL");
        let config = CacheAsideConfig::new(StoreRef::new("s"), "u", MAX_TTL).with_jitter(0.0);
        assert!(cache(config).is_ok());
        let config = CacheAsideConfig::new(StoreRef::new("s"), "u", Duration::from_secs(1));
        let cache = cache(config).unwrap();
        assert_eq!((cache.name(), millis(cache.config().ttl)), ("users", 1000));
        assert_eq!(cache.entry_key(&42), "u:{42}");
    }
}
