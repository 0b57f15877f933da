//! [`CachedRepository`]: the cache-aside component's interface, through
//! which handlers reach it (shaku binds components by interface).

use crate::Interface;
use async_trait::async_trait;

use super::error::CacheError;
use super::metrics::CacheMetrics;
use super::repository::Repository;
use crate::error::KvError;

/// A repository `R` read through a cache: what
/// [`CacheAside<R>`](super::CacheAside) offers, as an object-safe shaku
/// interface (`Inject<AppModule, dyn CachedRepository<Users>>` in an axum
/// handler). Each method is documented on `CacheAside`.
#[async_trait]
pub trait CachedRepository<R: Repository>: Interface {
    /// See [`CacheAside::get`](super::CacheAside::get).
    async fn get(&self, key: &R::Key) -> Result<Option<R::Value>, CacheError<R::Error>>;

    /// See [`CacheAside::create`](super::CacheAside::create).
    async fn create(&self, new: R::New) -> Result<(R::Key, R::Value), R::Error>;

    /// See [`CacheAside::update`](super::CacheAside::update).
    async fn update(&self, key: &R::Key, update: R::Update) -> Result<R::Value, R::Error>;

    /// See [`CacheAside::delete`](super::CacheAside::delete).
    async fn delete(&self, key: &R::Key) -> Result<bool, R::Error>;

    /// See [`CacheAside::invalidate`](super::CacheAside::invalidate).
    async fn invalidate(&self, key: &R::Key) -> Result<(), KvError>;

    /// See [`CacheAside::metrics`](super::CacheAside::metrics).
    fn metrics(&self) -> CacheMetrics;

    /// The cache's name.
    fn name(&self) -> &str;
}
