//! [`RegistryError`]: why services could not be registered, built or
//! looked up.

use crate::config::{ConfigError, Location};
use crate::error::KvError;

/// A start-up error of the service registry, or of a component wired from
/// it.
///
/// A bad configuration is [`RegistryError::Config`], with the message of
/// the [`ConfigError`] it wraps. Variants that concern a service name it;
/// those that come from a file carry its [`Location`]. None of them ever
/// contains a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A configuration is invalid: a service's `config:` (found while
    /// building the registry) or a component's section.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A service names a type nobody registered.
    #[error(
        "{location}: service `{service}`: unknown type `{type_name}` (registered types: {})",
        known.join(", ")
    )]
    UnknownType {
        /// The `type:` node.
        location: Location,
        /// The service.
        service: String,
        /// The unknown type.
        type_name: String,
        /// The registered types.
        known: Vec<String>,
    },
    /// A service type was registered twice.
    #[error("service type `{type_name}` is already registered")]
    DuplicateType {
        /// The type name.
        type_name: String,
    },
    /// A service could not be started (for example its Redis is
    /// unreachable: the source names the address).
    #[error("service `{service}` (type `{type_name}`, defined at {location}) failed to start")]
    Start {
        /// The service.
        service: String,
        /// Its type.
        type_name: String,
        /// Where it is defined.
        location: Location,
        /// Underlying error (boxed to keep `RegistryError` small).
        #[source]
        source: Box<KvError>,
    },
    /// A service or component refers to a service that does not exist.
    #[error("{}unknown service `{name}` (known services: {})", wanted_by.as_ref().map(|w| format!("{w}: ")).unwrap_or_default(), known.join(", "))]
    UnknownService {
        /// The name asked for.
        name: String,
        /// Who asked (a component or a service), if known.
        wanted_by: Option<String>,
        /// The services that exist.
        known: Vec<String>,
    },
    /// A service exists but is not of the kind asked for (for example a
    /// component's `store:` names a service that is not a key-value store).
    #[error("service `{name}` is a `{actual}`, not a {expected}")]
    WrongKind {
        /// The service.
        name: String,
        /// The kind asked for.
        expected: &'static str,
        /// Its actual type.
        actual: String,
    },
}
