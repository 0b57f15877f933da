//! The service registry: service types registered by name, and the named
//! instances built from a [`LoadedConfig`](crate::config::LoadedConfig).

mod builtin;
mod error;
mod health;
mod service;
mod service_registry;
mod service_types;

pub use builtin::MemoryServiceConfig;
pub use error::RegistryError;
pub use health::{ServiceHealth, ServiceState};
pub use service::{Service, ServiceContext, StoreRef};
pub use service_registry::ServiceRegistry;
pub use service_types::ServiceTypes;
