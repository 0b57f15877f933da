//! The service registry: service types registered by name, and the named
//! instances built from a [`LoadedConfig`](crate::config::LoadedConfig).

#[cfg(feature = "yaml")]
mod builtin;
mod error;
mod health;
#[cfg(feature = "yaml")]
mod service;
#[cfg(feature = "yaml")]
mod service_registry;
#[cfg(feature = "yaml")]
mod service_types;
mod store_ref;

#[cfg(feature = "yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
pub use builtin::MemoryServiceConfig;
pub use error::RegistryError;
pub use health::{ServiceHealth, ServiceState};
#[cfg(feature = "yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
pub use service::{Service, ServiceContext};
#[cfg(feature = "yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
pub use service_registry::ServiceRegistry;
#[cfg(feature = "yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
pub use service_types::ServiceTypes;
pub use store_ref::StoreRef;
