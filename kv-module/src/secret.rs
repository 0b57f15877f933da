//! [`Secret`]: a string that never appears in `Debug` or `Display` output.

use std::fmt;

/// A secret string (password, token). `Debug` and `Display` print
/// `[redacted]`; read the value with [`Secret::expose`].
///
/// ```
/// use kv_module::Secret;
/// let password = Secret::new("hunter2");
/// assert_eq!(format!("{password:?}"), "[redacted]");
/// assert_eq!(password.expose(), "hunter2");
/// ```
///
/// Deserializes from a string; null (an empty YAML value, or an unset
/// `${VAR}`) is the empty secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(
            Option::<String>::deserialize(deserializer)?.unwrap_or_default(),
        ))
    }
}

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call only where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (not set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}
