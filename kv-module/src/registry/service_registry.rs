//! [`ServiceRegistry`]: the named service instances of an application.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::health::{ServiceHealth, ServiceState};
use super::service::{Service, ServiceContext, StoreRef, lookup_store};
use super::service_types::{Decoded, Factory, ServiceTypes};
use crate::config::{ConfigError, LoadedConfig, Location, ServiceDefinition};
use crate::store::KvStore;
use crate::store::memory::MemoryServer;

/// How long [`ServiceRegistry::health`] waits for one service.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The services of an application, built from its configuration: every
/// named store (`user_cache`, `session_cache`, ...) and every service of
/// the application's own types.
///
/// ```
/// use kv_module::config::ConfigLoader;
/// use kv_module::registry::{ServiceRegistry, ServiceTypes};
/// use kv_module::{KvStoreExt, Ttl};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let yaml = "
/// services:
///   user_cache:
///     type: kvstore_memory
///     config: { db: 0, prefix: users }
/// ";
/// let config = ConfigLoader::new().load_str("inline.yaml", yaml)?;
/// let registry = ServiceRegistry::build(&config, &ServiceTypes::builtin()).await?;
/// let users = registry.store("user_cache")?;
/// users.set("user:1", "Ada", Ttl::Never).await?;
/// assert!(registry.store("nope").unwrap_err().to_string().contains("user_cache"));
/// registry.close().await;
/// # Ok(())
/// # }
/// ```
pub struct ServiceRegistry {
    services: BTreeMap<String, Service>,
    locations: BTreeMap<String, Location>,
}

impl std::fmt::Debug for ServiceRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRegistry")
            .field("services", &self.services)
            .finish()
    }
}

impl ServiceRegistry {
    /// Builds every service of `config` with the factories of `types`.
    ///
    /// All configurations are decoded and validated first, so a bad field
    /// fails before any connection is made. Then every store starts
    /// concurrently (Redis stores connect and `PING`); a failure names the
    /// service and the address, and the stores already open are closed.
    /// Then the other services are built in name order.
    pub async fn build(config: &LoadedConfig, types: &ServiceTypes) -> Result<Self, ConfigError> {
        let mut stores = Vec::new();
        let mut others = Vec::new();
        for definition in config.services() {
            let service_type =
                types
                    .types
                    .get(&definition.type_name)
                    .ok_or_else(|| ConfigError::UnknownType {
                        location: definition.type_location().clone(),
                        service: definition.name.clone(),
                        type_name: definition.type_name.clone(),
                        known: types.names(),
                    })?;
            let decoded = (service_type.decode)(definition)?;
            match &service_type.factory {
                Factory::Store(_) => stores.push((definition, service_type, decoded)),
                Factory::Service(_) => others.push((definition, service_type, decoded)),
            }
        }

        let memory = MemoryServer::new();
        let context = |name: &str, built: &BTreeMap<String, Service>| ServiceContext {
            name: name.to_owned(),
            built: built.clone(),
            memory: memory.clone(),
        };
        let empty = BTreeMap::new();
        let started = futures::future::join_all(stores.into_iter().map(
            |(definition, service_type, decoded): (&ServiceDefinition, _, Decoded)| {
                let ctx = context(&definition.name, &empty);
                let future = match &service_type.factory {
                    Factory::Store(factory) => Some(factory(ctx, decoded)),
                    Factory::Service(_) => None,
                };
                async move {
                    let result = match future {
                        Some(future) => future.await,
                        None => unreachable_kind(&definition.name),
                    };
                    (definition, result)
                }
            },
        ))
        .await;

        let mut registry = Self {
            services: BTreeMap::new(),
            locations: BTreeMap::new(),
        };
        let mut first_error = None;
        for (definition, result) in started {
            match result {
                Ok(store) => registry.insert(
                    definition,
                    Service {
                        type_name: definition.type_name.clone(),
                        value: Arc::new(store.clone()),
                        store: Some(store),
                    },
                ),
                Err(source) => {
                    first_error.get_or_insert(ConfigError::Start {
                        service: definition.name.clone(),
                        type_name: definition.type_name.clone(),
                        location: definition.location.clone(),
                        source: Box::new(source),
                    });
                }
            }
        }
        if let Some(error) = first_error {
            registry.close().await;
            return Err(error);
        }

        for (definition, service_type, decoded) in others {
            let built = match &service_type.factory {
                Factory::Service(factory) => {
                    factory(context(&definition.name, &registry.services), decoded).await
                }
                Factory::Store(_) => Err(ConfigError::WrongKind {
                    name: definition.name.clone(),
                    expected: "service",
                    actual: definition.type_name.clone(),
                }),
            };
            match built {
                Ok(service) => registry.insert(definition, service),
                Err(error) => {
                    registry.close().await;
                    return Err(error);
                }
            }
        }
        tracing::info!(services = ?registry.names(), "service registry built");
        Ok(registry)
    }

    fn insert(&mut self, definition: &ServiceDefinition, service: Service) {
        self.locations
            .insert(definition.name.clone(), definition.location.clone());
        self.services.insert(definition.name.clone(), service);
    }

    /// The service names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.services.keys().map(String::as_str).collect()
    }

    /// The key-value store named `name`; an error lists the known names,
    /// or says the service is not a store.
    pub fn store(&self, name: &str) -> Result<Arc<dyn KvStore>, ConfigError> {
        lookup_store(&self.services, name, None)
    }

    /// The store a component's configuration names (`store: session_cache`);
    /// an error names the component. Resolve every store a component needs
    /// before building the DI module, so a bad name is a start-up error and
    /// never a panic inside the container.
    pub fn store_for(
        &self,
        component: &str,
        store: &StoreRef,
    ) -> Result<Arc<dyn KvStore>, ConfigError> {
        lookup_store(
            &self.services,
            store.name(),
            Some(format!("component `{component}`")),
        )
    }

    /// The service named `name` as the concrete type `T` its factory built.
    pub fn get<T: Send + Sync + 'static>(&self, name: &str) -> Result<Arc<T>, ConfigError> {
        let service = self
            .services
            .get(name)
            .ok_or_else(|| ConfigError::UnknownService {
                name: name.to_owned(),
                wanted_by: None,
                known: self.services.keys().cloned().collect(),
            })?;
        service
            .downcast::<T>()
            .ok_or_else(|| ConfigError::WrongKind {
                name: name.to_owned(),
                expected: std::any::type_name::<T>(),
                actual: service.type_name.clone(),
            })
    }

    /// Where the service `name` is defined.
    pub fn location(&self, name: &str) -> Option<&Location> {
        self.locations.get(name)
    }

    /// Checks every store concurrently (`PING`, bounded by a timeout) and
    /// reports each service's state and latency.
    pub async fn health(&self) -> Vec<ServiceHealth> {
        futures::future::join_all(self.services.iter().map(|(name, service)| async move {
            let started = Instant::now();
            let state = match &service.store {
                None => ServiceState::NotChecked,
                Some(store) => match tokio::time::timeout(HEALTH_TIMEOUT, store.ping()).await {
                    Ok(Ok(())) => ServiceState::Up,
                    Ok(Err(e)) => ServiceState::Down(e.to_string()),
                    Err(_) => ServiceState::Down(format!("no answer within {HEALTH_TIMEOUT:?}")),
                },
            };
            ServiceHealth {
                name: name.clone(),
                type_name: service.type_name.clone(),
                state,
                latency: started.elapsed(),
            }
        }))
        .await
    }

    /// Closes every store. Services holding a store see it closed too.
    pub async fn close(&self) {
        futures::future::join_all(
            self.services
                .values()
                .filter_map(|s| s.store.as_ref())
                .map(|store| store.close()),
        )
        .await;
    }
}

fn unreachable_kind(name: &str) -> Result<Arc<dyn KvStore>, crate::KvError> {
    Err(crate::KvError::Config {
        store: Arc::from(name),
        reason: "internal error: not a store type".into(),
    })
}
