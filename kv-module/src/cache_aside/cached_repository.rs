//! [`CachedRepository`]: the cache-aside component's interface, through
//! which handlers reach it (shaku binds components by interface).

use crate::Interface;
use async_trait::async_trait;

use super::error::CacheError;
use super::metrics::CacheMetrics;
use super::repository::Repository;
use crate::error::KvError;

/// A repository `R` read through a cache: what
/// [`KvCachedRepository<R>`](super::KvCachedRepository) offers, as an object-safe shaku
/// interface (`Inject<AppModule, dyn CachedRepository<Users>>` in an axum
/// handler). Each method is documented on `KvCachedRepository`.
#[async_trait]
pub trait CachedRepository<R: Repository>: Interface {
    /// See [`KvCachedRepository::get`](super::KvCachedRepository::get).
    async fn get(&self, key: &R::Key) -> Result<Option<R::Value>, CacheError<R::Error>>;

    /// See [`KvCachedRepository::create`](super::KvCachedRepository::create).
    async fn create(&self, new: R::New) -> Result<(R::Key, R::Value), R::Error>;

    /// See [`KvCachedRepository::update`](super::KvCachedRepository::update).
    async fn update(&self, key: &R::Key, update: R::Update) -> Result<R::Value, R::Error>;

    /// See [`KvCachedRepository::delete`](super::KvCachedRepository::delete).
    async fn delete(&self, key: &R::Key) -> Result<bool, R::Error>;

    /// See [`KvCachedRepository::invalidate`](super::KvCachedRepository::invalidate).
    async fn invalidate(&self, key: &R::Key) -> Result<(), KvError>;

    /// See [`KvCachedRepository::metrics`](super::KvCachedRepository::metrics).
    fn metrics(&self) -> CacheMetrics;

    /// The cache's name.
    fn name(&self) -> &str;
}
