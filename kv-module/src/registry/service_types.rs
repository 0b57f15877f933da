//! [`ServiceTypes`]: the service types a registry can build, by name.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use super::{RegistryError, ServiceContext};
use crate::config::{ConfigError, ServiceDefinition};
use crate::error::KvError;
use crate::store::KvStore;

/// What a store factory produces.
pub(crate) type StoreResult = Result<Arc<dyn KvStore>, KvError>;
/// What any other service's factory produces.
pub(crate) type ServiceResult = Result<Arc<dyn Any + Send + Sync>, RegistryError>;

/// A service whose configuration has been decoded and checked: starting it
/// is all that is left. The typed config lives inside the closure, so the
/// registry never sees it and nothing has to be downcast.
pub(crate) type Start<T> = Box<dyn FnOnce(ServiceContext) -> BoxFuture<'static, T> + Send>;

/// Decodes one service definition into its [`Start`].
pub(crate) type Decode<T> =
    Box<dyn Fn(&ServiceDefinition) -> Result<Start<T>, ConfigError> + Send + Sync>;

/// The service types a [`ServiceRegistry`](super::ServiceRegistry) can
/// build, each registered by name with a factory taking its typed config.
///
/// [`ServiceTypes::builtin`] has `kvstore_redis` and `kvstore_memory`; an
/// application adds its own with [`with_store_type`](Self::with_store_type)
/// or [`with_service_type`](Self::with_service_type).
///
/// ```
/// use std::sync::Arc;
/// use kv_module::registry::{ServiceTypes, StoreRef};
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct GreeterConfig { greeting: String, store: StoreRef }
///
/// struct Greeter { greeting: String, store: Arc<dyn kv_module::KvStore> }
///
/// let types = ServiceTypes::builtin()
///     .with_service_type("greeter", |ctx, config: GreeterConfig| async move {
///         let store = ctx.store(&config.store)?;
///         Ok(Arc::new(Greeter { greeting: config.greeting, store }))
///     })
///     .expect("`greeter` is a new type name");
/// assert_eq!(types.names(), ["greeter", "kvstore_memory", "kvstore_redis"]);
/// ```
#[derive(Default)]
pub struct ServiceTypes {
    /// Key-value store types: their services start first, concurrently.
    pub(crate) stores: BTreeMap<String, Decode<StoreResult>>,
    /// Every other type: built after the stores, in name order.
    pub(crate) services: BTreeMap<String, Decode<ServiceResult>>,
}

impl std::fmt::Debug for ServiceTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTypes")
            .field("types", &self.names())
            .finish()
    }
}

impl ServiceTypes {
    /// No types at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registered type names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stores
            .keys()
            .chain(self.services.keys())
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Registers a key-value store type: `factory` gets the service's
    /// context and its config decoded as `C` (errors located in the file).
    /// Rules across fields belong in `C`'s `Deserialize` (for example
    /// `#[serde(try_from = ...)]`): they then fail with the file position,
    /// before any service starts.
    ///
    /// # Errors
    ///
    /// [`RegistryError::DuplicateType`] when `type_name` is taken.
    pub fn with_store_type<C, F, Fut>(
        mut self,
        type_name: impl Into<String>,
        factory: F,
    ) -> Result<Self, RegistryError>
    where
        C: DeserializeOwned + Send + 'static,
        F: Fn(ServiceContext, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StoreResult> + Send + 'static,
    {
        let type_name = self.vacant(type_name.into())?;
        self.insert_store_type(type_name, factory);
        Ok(self)
    }

    /// Registers a service type producing any `T`: `factory` gets the
    /// service's context (to resolve the stores it needs) and its config
    /// decoded as `C`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::DuplicateType`] when `type_name` is taken.
    pub fn with_service_type<C, T, F, Fut>(
        mut self,
        type_name: impl Into<String>,
        factory: F,
    ) -> Result<Self, RegistryError>
    where
        C: DeserializeOwned + Send + 'static,
        T: Send + Sync + 'static,
        F: Fn(ServiceContext, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, RegistryError>> + Send + 'static,
    {
        let type_name = self.vacant(type_name.into())?;
        self.insert_service_type(type_name, factory);
        Ok(self)
    }

    /// Registers a key-value store type like
    /// [`with_store_type`](Self::with_store_type), replacing any type of
    /// that name (to swap a built-in type for a test double, say).
    pub fn insert_store_type<C, F, Fut>(&mut self, type_name: impl Into<String>, factory: F)
    where
        C: DeserializeOwned + Send + 'static,
        F: Fn(ServiceContext, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StoreResult> + Send + 'static,
    {
        let type_name = type_name.into();
        self.services.remove(&type_name);
        self.stores.insert(type_name, decode_with(factory));
    }

    /// Registers a service type like
    /// [`with_service_type`](Self::with_service_type), replacing any type
    /// of that name.
    pub fn insert_service_type<C, T, F, Fut>(&mut self, type_name: impl Into<String>, factory: F)
    where
        C: DeserializeOwned + Send + 'static,
        T: Send + Sync + 'static,
        F: Fn(ServiceContext, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, RegistryError>> + Send + 'static,
    {
        let type_name = type_name.into();
        self.stores.remove(&type_name);
        let erased = move |ctx, config: C| {
            let built = factory(ctx, config);
            async move { Ok(built.await? as Arc<dyn Any + Send + Sync>) }
        };
        self.services.insert(type_name, decode_with(erased));
    }

    fn vacant(&self, type_name: String) -> Result<String, RegistryError> {
        if self.stores.contains_key(&type_name) || self.services.contains_key(&type_name) {
            return Err(RegistryError::DuplicateType { type_name });
        }
        Ok(type_name)
    }
}

/// Decodes a definition's `config:` as `C` and holds it for `factory`.
fn decode_with<C, T, F, Fut>(factory: F) -> Decode<T>
where
    C: DeserializeOwned + Send + 'static,
    F: Fn(ServiceContext, C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let factory = Arc::new(factory);
    Box::new(move |definition| {
        let config = definition.config::<C>()?;
        let factory = factory.clone();
        Ok(Box::new(move |ctx| {
            Box::pin(factory(ctx, config)) as BoxFuture<'static, T>
        }))
    })
}
