//! Field deserializers shared by the store configurations (`kvstore_redis`
//! and `kvstore_memory` read `db` and `prefix` the same way); they live
//! here, outside the Redis backend, so the memory backend's configuration
//! needs no `redis` feature.

use serde::{Deserialize, Deserializer};

/// A text field that may be written empty (`prefix:` or an unset
/// `${VAR}`, both of which YAML reads as null): null is the empty string.
pub(crate) fn deserialize_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// `db`: an integer from 0 to 15 (null: not given).
pub(crate) fn deserialize_db<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match Option::<i64>::deserialize(d)? {
        None => Ok(None),
        Some(db @ 0..=15) => Ok(u8::try_from(db).ok()),
        Some(db) => Err(serde::de::Error::custom(format!(
            "db must be between 0 and 15, got {db}"
        ))),
    }
}
