//! [`Service`] (a built instance), [`ServiceContext`] (what a factory may
//! use) and [`StoreRef`] (a configuration field naming a store).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::RegistryError;
use crate::config::Location;
use crate::store::KvStore;

/// A built service instance: a key-value store, or any other value an
/// application's service type produces.
#[derive(Clone)]
pub struct Service {
    pub(crate) type_name: String,
    pub(crate) location: Location,
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) store: Option<Arc<dyn KvStore>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("type_name", &self.type_name)
            .field("is_store", &self.store.is_some())
            .finish()
    }
}

impl Service {
    /// The service's type name (`kvstore_redis`, ...).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The service as a key-value store, when it is one.
    pub fn as_store(&self) -> Option<&Arc<dyn KvStore>> {
        self.store.as_ref()
    }

    /// The service as the concrete type `T` its factory produced.
    pub fn downcast<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.value.clone().downcast::<T>().ok()
    }

    /// The error for asking this service (`name`) to be what it is not.
    pub(crate) fn wrong_kind(&self, name: &str, expected: &'static str) -> RegistryError {
        RegistryError::WrongKind {
            name: name.to_owned(),
            expected,
            actual: self.type_name.clone(),
        }
    }
}

/// What a service factory may use while building its instance: its own
/// name and the services built before it (every store, and the other
/// services before it in name order).
#[derive(Clone, Debug)]
pub struct ServiceContext {
    pub(crate) name: String,
    pub(crate) built: BTreeMap<String, Service>,
}

impl ServiceContext {
    /// The name of the service being built.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key-value store named `store`, for a service that is built on
    /// one. Stores are built before every other service, so any store in
    /// the configuration can be named.
    pub fn store(&self, store: &StoreRef) -> Result<Arc<dyn KvStore>, RegistryError> {
        lookup_store(
            &self.built,
            store.name(),
            Some(format!("service `{}`", self.name)),
        )
    }
}

/// The service `name`; an error lists the known names.
pub(crate) fn lookup<'s>(
    services: &'s BTreeMap<String, Service>,
    name: &str,
    wanted_by: Option<String>,
) -> Result<&'s Service, RegistryError> {
    services
        .get(name)
        .ok_or_else(|| RegistryError::UnknownService {
            name: name.to_owned(),
            wanted_by,
            known: services.keys().cloned().collect(),
        })
}

/// The store `name`; an error lists the known names, or says the service
/// is not a store.
pub(crate) fn lookup_store(
    services: &BTreeMap<String, Service>,
    name: &str,
    wanted_by: Option<String>,
) -> Result<Arc<dyn KvStore>, RegistryError> {
    let service = lookup(services, name, wanted_by)?;
    (service.store.clone()).ok_or_else(|| service.wrong_kind(name, "key-value store"))
}

/// A configuration field that names a key-value store service
/// (`store: session_cache`). Resolve it with
/// [`ServiceRegistry::store_for`](crate::registry::ServiceRegistry::store_for)
/// or [`ServiceContext::store`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct StoreRef(String);

impl StoreRef {
    /// A reference to the store named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The store's service name.
    pub fn name(&self) -> &str {
        &self.0
    }
}
