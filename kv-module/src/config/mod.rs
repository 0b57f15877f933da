//! Configuration: YAML service definitions with `${VAR}` expansion,
//! located errors, and typed application sections.

mod de;
mod duration;
mod error;
mod expand;
mod loader;
mod node;

pub use duration::{parse_duration, serde_duration, serde_duration_opt};
pub use error::{ConfigError, Location};
pub use expand::{Expanded, Expander, FileResolver, Resolver};
pub use loader::{ConfigLoader, LoadedConfig, ServiceDefinition};
pub use node::Node;
