//! Configuration: YAML service definitions with `${VAR}` expansion,
//! located errors, and typed application sections.

mod byte_size;
#[cfg(feature = "yaml")]
mod de;
mod duration;
mod error;
#[cfg(feature = "yaml")]
mod expand;
#[cfg(any(feature = "redis", feature = "yaml"))]
mod fields;
#[cfg(feature = "yaml")]
mod loader;
#[cfg(feature = "yaml")]
mod node;
#[cfg(any(
    feature = "session",
    feature = "otp",
    feature = "rate-limit",
    feature = "cache-aside"
))]
mod validated;

pub use byte_size::{parse_byte_size, serde_byte_size};
pub use duration::{parse_duration, serde_duration, serde_duration_opt};
pub use error::{ConfigError, Location};
#[cfg(feature = "yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
pub use expand::{Expanded, Expander, FileResolver, Resolver};
#[cfg(any(feature = "redis", feature = "yaml"))]
pub(crate) use fields::{deserialize_db, deserialize_text};
#[cfg(feature = "yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
pub use loader::{ConfigLoader, LoadedConfig, ServiceDefinition};
#[cfg(feature = "yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
pub use node::Node;
#[cfg(any(
    feature = "session",
    feature = "otp",
    feature = "rate-limit",
    feature = "cache-aside"
))]
pub(crate) use validated::{deserialize_validated, millis};
