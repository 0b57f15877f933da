//! [`Entry`]: what a cache key holds, as JSON.
//!
//! | state | JSON | a `get` sees |
//! |---|---|---|
//! | a value | `{"v": <value>}` | a hit |
//! | a cached "not found" | `{"nf": true}` | a negative hit |
//! | an invalidation | `{"inv": "<token>"}` | a miss; a load may replace it |
//! | a write in progress | `{"w": "<token>"}` | a miss; no load replaces it |
//!
//! The tokens are random, so an invalidation never looks like an earlier
//! one: a load compares the entry it saw before loading with the entry
//! at write-back, byte for byte, and an update in between always changes
//! it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One cache entry. Serialized externally tagged, so a value is stored as
/// `{"v": ...}`: JSON that any reader of the store can decode.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Entry<V> {
    /// A value loaded from (or written to) the repository.
    #[serde(rename = "v")]
    Value(V),
    /// The repository has no such row (always `true`).
    #[serde(rename = "nf")]
    NotFound(bool),
    /// Invalidated by an update or delete; the token makes it unique.
    #[serde(rename = "inv")]
    Invalidated(String),
    /// An update or delete is writing the repository; the token is the
    /// writer's.
    #[serde(rename = "w")]
    Writing(String),
}

/// What a read of an entry found.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup<V> {
    /// A cached value.
    Hit(V),
    /// A cached "not found".
    NotFound,
    /// Nothing usable; what was there, for the write-back's comparison.
    Miss(Observed),
}

/// The state of an entry before a load, which the write-back requires to
/// be unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// No entry.
    Absent,
    /// These exact bytes: an invalidation, or an entry that does not
    /// decode (written by an older version of the application).
    Bytes(Vec<u8>),
    /// A write in progress: the loaded value may predate it, so it is not
    /// written back.
    Writing,
}

impl Observed {
    /// Whether a loaded value may replace this state.
    pub(crate) fn is_fillable(&self) -> bool {
        !matches!(self, Self::Writing)
    }
}

/// Classifies the raw bytes at an entry key. An entry that does not decode
/// is a miss, with the decode error for the caller to report.
pub(crate) fn lookup<V: DeserializeOwned>(
    bytes: Option<Vec<u8>>,
) -> (Lookup<V>, Option<serde_json::Error>) {
    let Some(bytes) = bytes else {
        return (Lookup::Miss(Observed::Absent), None);
    };
    match serde_json::from_slice::<Entry<V>>(&bytes) {
        Ok(Entry::Value(value)) => (Lookup::Hit(value), None),
        Ok(Entry::NotFound(_)) => (Lookup::NotFound, None),
        Ok(Entry::Invalidated(_)) => (Lookup::Miss(Observed::Bytes(bytes)), None),
        Ok(Entry::Writing(_)) => (Lookup::Miss(Observed::Writing), None),
        Err(err) => (Lookup::Miss(Observed::Bytes(bytes)), Some(err)),
    }
}

/// `{"v": value}`.
pub(crate) fn encode_value<V: Serialize>(value: &V) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Entry::Value(value))
}

/// `{"nf": true}`.
pub(crate) fn encode_not_found() -> Vec<u8> {
    br#"{"nf":true}"#.to_vec()
}

/// `{"inv": token}`.
pub(crate) fn encode_invalidated(token: &str) -> Vec<u8> {
    marker(Entry::<()>::Invalidated(token.to_owned()))
}

/// `{"w": token}`.
pub(crate) fn encode_writing(token: &str) -> Vec<u8> {
    marker(Entry::<()>::Writing(token.to_owned()))
}

fn marker(entry: Entry<()>) -> Vec<u8> {
    // A string in an enum: serde_json cannot fail on it.
    serde_json::to_vec(&entry).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_is_documented_json() {
        let user = json!({"id": 1, "name": "Ada"});
        assert_eq!(
            encode_value(&user).unwrap(),
            br#"{"v":{"id":1,"name":"Ada"}}"#.to_vec()
        );
        assert_eq!(encode_not_found(), br#"{"nf":true}"#.to_vec());
        assert_eq!(encode_invalidated("ab"), br#"{"inv":"ab"}"#.to_vec());
        assert_eq!(encode_writing("cd"), br#"{"w":"cd"}"#.to_vec());
    }

    #[test]
    fn lookup_classifies() {
        let hit = lookup::<u32>(Some(br#"{"v":7}"#.to_vec()));
        assert_eq!(hit.0, Lookup::Hit(7));
        assert!(hit.1.is_none());
        assert_eq!(lookup::<u32>(Some(encode_not_found())).0, Lookup::NotFound);
        assert_eq!(lookup::<u32>(None).0, Lookup::Miss(Observed::Absent));
        let tomb = encode_invalidated("t");
        assert_eq!(
            lookup::<u32>(Some(tomb.clone())).0,
            Lookup::Miss(Observed::Bytes(tomb))
        );
        assert_eq!(
            lookup::<u32>(Some(encode_writing("t"))).0,
            Lookup::Miss(Observed::Writing)
        );
        // A value of another shape (an older schema) is a miss, reported.
        let (found, err) = lookup::<u32>(Some(br#"{"v":"seven"}"#.to_vec()));
        assert_eq!(
            found,
            Lookup::Miss(Observed::Bytes(br#"{"v":"seven"}"#.to_vec()))
        );
        assert!(err.is_some());
        // So is a bare value written by something else.
        assert!(lookup::<u32>(Some(b"7".to_vec())).1.is_some());
    }

    #[test]
    fn fillable() {
        assert!(Observed::Absent.is_fillable());
        assert!(Observed::Bytes(vec![1]).is_fillable());
        assert!(!Observed::Writing.is_fillable());
    }
}
