//! What the keys of one cached record hold, and how a read of them is
//! classified ([`Lookup`], [`Observed`]).
//!
//! | key | holds | a `get` sees |
//! |---|---|---|
//! | entry | the value's JSON, nothing else | a hit |
//! | negative | `1` | a cached "not found" |
//! | mark | `l:<token>`: a load ticket | a miss; the ticket's load may fill |
//! | mark | `w:<token>`: a write in progress | a miss; no load fills |
//!
//! The tokens are random, so a mark never looks like an earlier one: a
//! load writes back only if the mark still holds the ticket it saw before
//! loading, and every write deletes or replaces the mark.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What the negative key holds: its presence is the whole message.
pub(crate) const NOT_FOUND: &[u8] = b"1";

/// What a read of a record's keys found.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup<V> {
    /// A cached value.
    Hit(V),
    /// A cached "not found".
    NotFound,
    /// Nothing usable; what was there, for the write-back's comparison.
    Miss(Observed),
}

/// The state of a record's keys before a load, which the write-back
/// requires to be unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Observed {
    /// What the entry key held: nothing, or bytes that do not decode
    /// (written by another version of the application), which a loaded
    /// value replaces.
    pub(crate) entry: Option<Vec<u8>>,
    /// The load ticket in the mark key; `None` when a write is in
    /// progress or the store refused to record a ticket (out of memory):
    /// the loaded value is then not written back.
    pub(crate) ticket: Option<Vec<u8>>,
}

/// `l:<token>`: the ticket of the loads that start while it is there.
pub(crate) fn load_ticket(token: &str) -> Vec<u8> {
    format!("l:{token}").into_bytes()
}

/// `w:<token>`: a write in progress, the writer's own.
pub(crate) fn write_marker(token: &str) -> Vec<u8> {
    format!("w:{token}").into_bytes()
}

/// The value's JSON: what the entry key holds.
pub(crate) fn encode_value<V: Serialize>(value: &V) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(value)
}

/// Classifies the raw bytes of the entry key (a `GET` of it alone). An
/// entry that does not decode is reported, for the caller to log.
pub(crate) fn decode_entry<V: DeserializeOwned>(
    bytes: Option<&[u8]>,
) -> (Option<V>, Option<serde_json::Error>) {
    match bytes.map(serde_json::from_slice::<V>) {
        None => (None, None),
        Some(Ok(value)) => (Some(value), None),
        Some(Err(err)) => (None, Some(err)),
    }
}

/// Classifies the three keys of a record as read together: the entry, the
/// negative key's presence, the mark.
pub(crate) fn lookup<V: DeserializeOwned>(
    entry: Option<Vec<u8>>,
    negative: bool,
    mark: Option<Vec<u8>>,
) -> (Lookup<V>, Option<serde_json::Error>) {
    let (value, err) = decode_entry(entry.as_deref());
    if let Some(value) = value {
        return (Lookup::Hit(value), None);
    }
    if negative {
        return (Lookup::NotFound, err);
    }
    let ticket = mark.filter(|m| m.starts_with(b"l:"));
    (Lookup::Miss(Observed { entry, ticket }), err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_is_documented() {
        let user = json!({"id": 1, "name": "Ada"});
        assert_eq!(
            encode_value(&user).unwrap(),
            br#"{"id":1,"name":"Ada"}"#.to_vec()
        );
        assert_eq!(load_ticket("ab"), b"l:ab".to_vec());
        assert_eq!(write_marker("cd"), b"w:cd".to_vec());
    }

    #[test]
    fn lookup_classifies() {
        let hit = lookup::<u32>(Some(b"7".to_vec()), false, None);
        assert_eq!(hit.0, Lookup::Hit(7));
        assert!(hit.1.is_none());
        assert_eq!(lookup::<u32>(None, true, None).0, Lookup::NotFound);
        let ticket = Some(load_ticket("t"));
        assert_eq!(
            lookup::<u32>(None, false, ticket.clone()).0,
            Lookup::Miss(Observed {
                entry: None,
                ticket: ticket.clone()
            })
        );
        let writing = lookup::<u32>(None, false, Some(write_marker("t"))).0;
        assert!(matches!(writing, Lookup::Miss(o) if o.ticket.is_none()));
        let refused = lookup::<u32>(None, false, None).0;
        assert!(matches!(refused, Lookup::Miss(o) if o.ticket.is_none()));
        // A value of another shape (an older schema) is a miss, reported,
        // and replaceable.
        let (found, err) = lookup::<u32>(Some(br#"{"v":7}"#.to_vec()), false, ticket.clone());
        assert_eq!(
            found,
            Lookup::Miss(Observed {
                entry: Some(br#"{"v":7}"#.to_vec()),
                ticket
            })
        );
        assert!(err.is_some());
        assert_eq!(decode_entry::<u32>(Some(b"7")).0, Some(7));
        assert!(decode_entry::<u32>(Some(b"x")).1.is_some());
    }
}
