//! [`ConfigError`]: everything that can be wrong with a configuration, found
//! at start-up, with the file, `line:column` and service it concerns.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A position in a configuration file (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as given to the loader (or a label for in-memory text).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

fn service_part(service: &Option<String>) -> String {
    match service {
        Some(name) => format!(" service `{name}`:"),
        None => String::new(),
    }
}

/// A start-up error of the configuration loader, or of a setting a
/// component checks.
///
/// Every variant that comes from a file carries its [`Location`]
/// (`file:line:column`) and, inside `services:`, the service's name. None
/// of them ever contains a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file or directory cannot be read.
    #[error("cannot read configuration `{}`", path.display())]
    Read {
        /// The path given.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML itself is malformed.
    #[error("{location}: YAML syntax error: {message}")]
    Syntax {
        /// Where the parser stopped.
        location: Location,
        /// The parser's message.
        message: String,
    },
    /// A `${...}` placeholder could not be expanded (unterminated, unknown
    /// resolver, unreadable secret file).
    #[error("{location}:{} {reason}", service_part(service))]
    Expand {
        /// The scalar holding the placeholder.
        location: Location,
        /// The service it belongs to, if inside `services:`.
        service: Option<String>,
        /// What went wrong.
        reason: String,
    },
    /// A value does not fit its type: unknown or missing field, value out
    /// of range, bad duration, wrong type.
    #[error("{location}:{} `{path}`: {message}", service_part(service))]
    Invalid {
        /// The offending node.
        location: Location,
        /// The service it belongs to, if inside `services:`.
        service: Option<String>,
        /// The field path (`services.session_cache.config.db`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Two files define one service with different types.
    #[error(
        "{second}: service `{service}` has type `{second_type}` here but `{first_type}` at {first}"
    )]
    TypeConflict {
        /// The service.
        service: String,
        /// Where it was first defined.
        first: Location,
        /// Its type there.
        first_type: String,
        /// Where it was defined again.
        second: Location,
        /// Its type there.
        second_type: String,
    },
    /// A configuration built in code (not read from a file) breaks a rule;
    /// one read from YAML fails as [`ConfigError::Invalid`] instead, with
    /// its file position.
    #[error("`{path}`: {message} (configuration of `{component}` built in code)")]
    InvalidSetting {
        /// The component or policy configured.
        component: String,
        /// The setting (`sessions.idle_timeout`, `rate_limit.api`, ...).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A top-level section the application requires is absent.
    #[error("the configuration has no `{section}` section (files: {files})")]
    MissingSection {
        /// The section's key.
        section: String,
        /// The files loaded, comma-separated.
        files: String,
    },
}

impl ConfigError {
    /// The error of a component configuration built in code that breaks
    /// a rule: `message` (which names the field) about `component` (the
    /// section, policy or cache configured). A configuration read from
    /// YAML fails earlier, as [`ConfigError::Invalid`] with its position.
    pub fn invalid_setting(component: &str, message: impl Into<String>) -> Self {
        ConfigError::InvalidSetting {
            component: component.to_owned(),
            path: component.to_owned(),
            message: message.into(),
        }
    }
}
