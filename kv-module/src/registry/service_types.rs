//! [`ServiceTypes`]: the service types a registry can build, by name.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use super::builtin;
use super::service::{Service, ServiceContext};
use crate::config::{ConfigError, ServiceDefinition};
use crate::error::KvError;
use crate::store::KvStore;

/// A decoded, validated configuration, typed by the factory that made it.
pub(crate) type Decoded = Box<dyn Any + Send>;

type DecodeFn = Box<dyn Fn(&ServiceDefinition) -> Result<Decoded, ConfigError> + Send + Sync>;
type StoreFn = Box<
    dyn Fn(ServiceContext, Decoded) -> BoxFuture<'static, Result<Arc<dyn KvStore>, KvError>>
        + Send
        + Sync,
>;
type ServiceFn = Box<
    dyn Fn(ServiceContext, Decoded) -> BoxFuture<'static, Result<Service, ConfigError>>
        + Send
        + Sync,
>;

pub(crate) enum Factory {
    /// Builds a key-value store; stores start first, concurrently.
    Store(StoreFn),
    /// Builds any other service; may use stores and earlier services.
    Service(ServiceFn),
}

pub(crate) struct ServiceType {
    pub(crate) decode: DecodeFn,
    pub(crate) factory: Factory,
}

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
    pub(crate) types: BTreeMap<String, ServiceType>,
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

    /// The built-in types: `kvstore_redis` ([`RedisConfig`](crate::RedisConfig))
    /// and `kvstore_memory` ([`MemoryServiceConfig`](super::MemoryServiceConfig)).
    pub fn builtin() -> Self {
        let mut types = Self::new();
        builtin::register(&mut types);
        types
    }

    /// The registered type names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.types.keys().cloned().collect()
    }

    /// Registers a key-value store type: `factory` gets the service's
    /// context and its config decoded as `C` (errors located in the file).
    pub fn with_store_type<C, F, Fut>(
        mut self,
        type_name: impl Into<String>,
        factory: F,
    ) -> Result<Self, ConfigError>
    where
        C: DeserializeOwned + Send + 'static,
        F: Fn(ServiceContext, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn KvStore>, KvError>> + Send + 'static,
    {
        self.insert(
            type_name.into(),
            ServiceType {
                decode: decode_as::<C>(),
                factory: Factory::Store(Box::new(move |ctx, decoded| {
                    match decoded.downcast::<C>() {
                        Ok(config) => Box::pin(factory(ctx, *config)),
                        Err(_) => Box::pin(async { unreachable_decode() }),
                    }
                })),
            },
        )?;
        Ok(self)
    }

    /// Registers a service type producing any `T`: `factory` gets the
    /// service's context (to resolve the stores it needs) and its config
    /// decoded as `C`.
    pub fn with_service_type<C, T, F, Fut>(
        mut self,
        type_name: impl Into<String>,
        factory: F,
    ) -> Result<Self, ConfigError>
    where
        C: DeserializeOwned + Send + 'static,
        T: Send + Sync + 'static,
        F: Fn(ServiceContext, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, ConfigError>> + Send + 'static,
    {
        let type_name = type_name.into();
        let name_for_service = type_name.clone();
        let factory = Arc::new(factory);
        self.insert(
            type_name,
            ServiceType {
                decode: decode_as::<C>(),
                factory: Factory::Service(Box::new(move |ctx, decoded| {
                    let factory = factory.clone();
                    let type_name = name_for_service.clone();
                    Box::pin(async move {
                        let config =
                            decoded
                                .downcast::<C>()
                                .map_err(|_| ConfigError::WrongKind {
                                    name: ctx.name().to_owned(),
                                    expected: "configuration of its own type",
                                    actual: type_name.clone(),
                                })?;
                        let value = factory(ctx, *config).await?;
                        Ok(Service {
                            type_name,
                            value,
                            store: None,
                        })
                    })
                })),
            },
        )?;
        Ok(self)
    }

    pub(crate) fn insert(
        &mut self,
        type_name: String,
        entry: ServiceType,
    ) -> Result<(), ConfigError> {
        if self.types.contains_key(&type_name) {
            return Err(ConfigError::DuplicateType { type_name });
        }
        self.types.insert(type_name, entry);
        Ok(())
    }
}

fn decode_as<C: DeserializeOwned + Send + 'static>() -> DecodeFn {
    Box::new(|definition| Ok(Box::new(definition.config::<C>()?) as Decoded))
}

/// The registry always hands a factory the value its own decoder made, so
/// a failed downcast cannot happen; it is still an error, not a panic.
fn unreachable_decode<T>() -> Result<T, KvError> {
    Err(KvError::Config {
        store: Arc::from("registry"),
        reason: "internal error: configuration of an unexpected type".into(),
    })
}
