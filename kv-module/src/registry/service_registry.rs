//! [`ServiceRegistry`]: the named service instances of an application.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::health::{ServiceHealth, ServiceState};
use super::service::{Service, ServiceContext, StoreRef, lookup, lookup_store};
use super::{RegistryError, ServiceTypes};
use crate::config::{LoadedConfig, Location, ServiceDefinition};
use crate::store::KvStore;

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
    pub async fn build(config: &LoadedConfig, types: &ServiceTypes) -> Result<Self, RegistryError> {
        let mut stores = Vec::new();
        let mut others = Vec::new();
        for definition in config.services() {
            let type_name = &definition.type_name;
            if let Some(decode) = types.stores.get(type_name) {
                stores.push((definition, decode(definition)?));
            } else if let Some(decode) = types.services.get(type_name) {
                others.push((definition, decode(definition)?));
            } else {
                return Err(RegistryError::UnknownType {
                    location: definition.type_location().clone(),
                    service: definition.name.clone(),
                    type_name: type_name.clone(),
                    known: types.names(),
                });
            }
        }

        let started = futures::future::join_all(stores.into_iter().map(|(definition, start)| {
            let started = start(context(definition, &BTreeMap::new()));
            async move { (definition, started.await) }
        }))
        .await;
        let mut registry = Self {
            services: BTreeMap::new(),
        };
        let mut first_error = None;
        for (definition, result) in started {
            match result {
                Ok(store) => registry.insert(definition, Arc::new(store.clone()), Some(store)),
                Err(source) => {
                    first_error.get_or_insert(RegistryError::Start {
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

        for (definition, start) in others {
            match start(context(definition, &registry.services)).await {
                Ok(value) => registry.insert(definition, value, None),
                Err(error) => {
                    registry.close().await;
                    return Err(error);
                }
            }
        }
        tracing::info!(services = ?registry.names(), "service registry built");
        Ok(registry)
    }

    fn insert(
        &mut self,
        definition: &ServiceDefinition,
        value: Arc<dyn Any + Send + Sync>,
        store: Option<Arc<dyn KvStore>>,
    ) {
        let service = Service {
            type_name: definition.type_name.clone(),
            location: definition.location.clone(),
            value,
            store,
        };
        self.services.insert(definition.name.clone(), service);
    }

    /// The service names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.services.keys().map(String::as_str).collect()
    }

    /// The key-value store named `name`; an error lists the known names,
    /// or says the service is not a store.
    pub fn store(&self, name: &str) -> Result<Arc<dyn KvStore>, RegistryError> {
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
    ) -> Result<Arc<dyn KvStore>, RegistryError> {
        lookup_store(
            &self.services,
            store.name(),
            Some(format!("component `{component}`")),
        )
    }

    /// The service named `name` as the concrete type `T` its factory built.
    pub fn get<T: Send + Sync + 'static>(&self, name: &str) -> Result<Arc<T>, RegistryError> {
        let service = lookup(&self.services, name, None)?;
        (service.downcast::<T>())
            .ok_or_else(|| service.wrong_kind(name, std::any::type_name::<T>()))
    }

    /// Where the service `name` is defined.
    pub fn location(&self, name: &str) -> Option<&Location> {
        self.services.get(name).map(|service| &service.location)
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

/// The context of the service `definition` defines, which may use `built`.
fn context(definition: &ServiceDefinition, built: &BTreeMap<String, Service>) -> ServiceContext {
    ServiceContext {
        name: definition.name.clone(),
        built: built.clone(),
    }
}
