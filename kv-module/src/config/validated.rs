//! The one template every component configuration follows: the type
//! derives `Deserialize` with `#[serde(remote = "Self")]` (serde then
//! writes an inherent `deserialize` instead of the trait impl), has
//! `fn validate(&self) -> Result<(), String>` whose message names the
//! field, and [`deserialize_validated!`] implements `Deserialize` as
//! "read the fields, then validate": a broken rule in YAML fails as a
//! deserialization error, which the loader locates (`file:line:col`); the
//! component's constructor validates a configuration built in code with
//! [`ConfigError::invalid_setting`](super::ConfigError::invalid_setting).

/// Implements `Deserialize` for `$ty` as the derived (remote) reading
/// followed by `$ty::validate`.
macro_rules! deserialize_validated {
    ($ty:ty) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let config = <$ty>::deserialize(deserializer)?;
                config
                    .validate()
                    .map_err(<D::Error as serde::de::Error>::custom)?;
                Ok(config)
            }
        }
    };
}

pub(crate) use deserialize_validated;

/// A duration in whole milliseconds, saturating (validated configuration
/// bounds keep real values far below the limit).
pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
