//! [`StoreRef`]: a configuration field naming a store. It is plain data,
//! so a component's configuration can hold one without the `yaml` feature
//! that builds the registry.

use serde::Deserialize;

/// A configuration field that names a key-value store service
/// (`store: session_cache`). Resolve it with
/// [`ServiceRegistry::store_for`](crate::registry::ServiceRegistry::store_for)
/// or [`ServiceContext::store`](crate::registry::ServiceContext::store).
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
