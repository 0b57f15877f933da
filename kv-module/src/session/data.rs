//! [`SessionData`] (what the application stores), [`Session`] (what it
//! reads back: the data with its timestamps) and [`UserSession`] (one entry
//! of a user's session list), and the stored record format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::id::SessionHandle;

/// What an application keeps in a session: the user, an optional tenant,
/// and free-form metadata.
///
/// ```
/// use kv_module::session::SessionData;
///
/// let data = SessionData::new("user-42")
///     .with_tenant("acme")
///     .with_metadata("role", "admin");
/// assert_eq!(data.metadata["role"], "admin");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionData {
    /// The user the session belongs to; fixed for the session's life
    /// (a login as someone else is a new session).
    pub user_id: String,
    /// The tenant, for multi-tenant applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Anything else the application needs (roles, device, ...).
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl SessionData {
    /// Data for `user_id`, without tenant or metadata.
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            tenant_id: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Sets the tenant. Default: none.
    pub fn with_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Adds one metadata entry. Default: no metadata.
    pub fn with_metadata(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// A session as read from the store: the application's data and the
/// server-side timestamps, all in Unix milliseconds of the store's clock
/// (Redis `TIME`).
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// The application's data.
    pub data: SessionData,
    /// When the session was created.
    pub created_at: u64,
    /// When the session was last refreshed (created, or extended by
    /// [`refresh`](super::Sessions::refresh)). Reads do not move it, so it
    /// is accurate to the manager's refresh interval.
    pub last_seen: u64,
    /// When the session ends whatever its activity: `created_at` plus the
    /// absolute timeout.
    pub absolute_expiry: u64,
}

/// One of a user's sessions, as
/// [`list_user_sessions`](super::Sessions::list_user_sessions) returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct UserSession {
    /// Names the session for
    /// [`delete_user_session`](super::Sessions::delete_user_session)
    /// ("log out that device"); not a credential.
    pub handle: SessionHandle,
    /// The session.
    pub session: Session,
}

/// The stored record, as JSON:
///
/// ```text
/// {"last_seen":1764115200000,"absolute_expiry":1764201600000,"created_at":1764115200000,
///  "user_key":"<base64url sha-256 of the user id>","user_id":"u1","metadata":{...}}
/// ```
///
/// The scripts build and patch the first four fields (the header) with
/// anchored string operations and never decode the rest: Lua's cjson
/// would re-encode the application's metadata lossily (`[]` becomes `{}`,
/// large integers become floats), so the data bytes are written once by
/// serde and kept as they are.
///
/// The data's fields are spelled out rather than `#[serde(flatten)]`ed:
/// flattening makes serde buffer every field of the record before building
/// the data, which cost 1.2–1.5× the decoding of this shape on every
/// session read (`benches/cluster.rs`). Unknown fields (`user_key`) are
/// skipped.
#[derive(Deserialize)]
struct StoredSession {
    last_seen: u64,
    absolute_expiry: u64,
    created_at: u64,
    user_id: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, serde_json::Value>,
}

impl From<StoredSession> for Session {
    fn from(stored: StoredSession) -> Self {
        Session {
            data: SessionData {
                user_id: stored.user_id,
                tenant_id: stored.tenant_id,
                metadata: stored.metadata,
            },
            created_at: stored.created_at,
            last_seen: stored.last_seen,
            absolute_expiry: stored.absolute_expiry,
        }
    }
}

/// Decodes a stored record (`bytes` is left changed: one byte of its
/// header is overwritten).
///
/// The header is read as the scripts read it ([`parse_header`]), and serde
/// decodes only the data after it: the byte before the data (the `,`
/// ending the header) becomes `{`, so the data is a JSON object in place,
/// without a copy. That leaves serde the application's fields alone, where
/// parsing the whole record cost a quarter of a session read. A record
/// whose header does not parse is decoded whole, as before.
pub(crate) fn decode_record(bytes: &mut [u8]) -> Result<Session, serde_json::Error> {
    if let Some(header) = parse_header(bytes) {
        let (created_at, last_seen, absolute_expiry, tail) = (
            header.created_at,
            header.last_seen,
            header.absolute_expiry,
            header.tail_offset,
        );
        // The header ends with `",`: the comma is at `tail - 1`.
        if let Some(data) = tail.checked_sub(1).and_then(|open| bytes.get_mut(open..))
            && let [comma, ..] = data
        {
            *comma = b'{';
            // One UTF-8 check of the whole data, rather than one per string
            // (`from_slice`); invalid UTF-8 is left to `from_slice`'s error.
            let data = match std::str::from_utf8(data) {
                Ok(text) => serde_json::from_str(text)?,
                Err(_) => serde_json::from_slice(data)?,
            };
            return Ok(Session {
                data,
                created_at,
                last_seen,
                absolute_expiry,
            });
        }
    }
    let stored: StoredSession = serde_json::from_slice(bytes)?;
    Ok(stored.into())
}

/// The data as the tail of a record: its JSON object without the opening
/// brace, to follow the header the scripts write (`..."user_key":"k",` +
/// `"user_id":"u1","metadata":{}}`).
pub(crate) fn record_tail(data: &SessionData) -> Result<Vec<u8>, serde_json::Error> {
    let mut json = serde_json::to_vec(data)?;
    // A struct always serializes as an object starting with `{"user_id"`.
    json.remove(0);
    Ok(json)
}

/// The fixed header fields of a stored record, parsed as the scripts parse
/// them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader<'a> {
    pub(crate) last_seen: u64,
    pub(crate) absolute_expiry: u64,
    pub(crate) created_at: u64,
    pub(crate) user_key: &'a str,
    /// Where `"absolute_expiry"` starts: everything from there on is kept
    /// when `last_seen` is rewritten.
    pub(crate) after_last_seen: usize,
    /// Where the data tail (`"user_id":...`) starts.
    pub(crate) tail_offset: usize,
}

/// Parses the header of a record, exactly as the Lua pattern
/// `^{"last_seen":(%d+),()"absolute_expiry":(%d+),"created_at":%d+,"user_key":"([%w_%-]+)",()`
/// does.
///
/// Every session read runs it: a slice is checked against each literal at
/// once, digits and the key are scanned with a table lookup per byte (the
/// first version, a cursor checking bound and class byte by byte, was the
/// largest function of kv-module in a session read's profile).
pub(crate) fn parse_header(record: &[u8]) -> Option<RecordHeader<'_>> {
    let rest = record.strip_prefix(b"{\"last_seen\":")?;
    let (last_seen, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b",")?;
    let after_last_seen = record.len() - rest.len();
    let rest = rest.strip_prefix(b"\"absolute_expiry\":")?;
    let (absolute_expiry, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b",\"created_at\":")?;
    let (created_at, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b",\"user_key\":\"")?;
    let key_len = rest
        .iter()
        .position(|&b| !KEY_BYTES[usize::from(b)])
        .unwrap_or(rest.len());
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let rest = rest.strip_prefix(b"\",")?;
    // ASCII by construction (`KEY_BYTES`), so this cannot fail.
    let user_key = std::str::from_utf8(key).ok()?;
    Some(RecordHeader {
        last_seen,
        absolute_expiry,
        created_at,
        user_key,
        after_last_seen,
        tail_offset: record.len() - rest.len(),
    })
}

/// The bytes of Lua's `[%w_%-]`: ASCII letters and digits, `_`, `-`.
const KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    table
};

/// The ASCII digits `bytes` starts with, as a `u64`, and what follows
/// them; `None` for no digit, or when they overflow.
fn digits(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let len = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    let (number, rest) = bytes.split_at(len);
    if number.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in number {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some((value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: &SessionData) -> Vec<u8> {
        let mut record =
            br#"{"last_seen":10,"absolute_expiry":99,"created_at":10,"user_key":"k_-1","#.to_vec();
        record.extend(record_tail(data).unwrap());
        record
    }

    #[test]
    fn records_round_trip_and_headers_parse() {
        let data = SessionData::new("u\"1")
            .with_tenant("t")
            .with_metadata("empty", serde_json::json!([]))
            .with_metadata("big", serde_json::json!(u64::MAX));
        let bytes = record(&data);
        let session = decode_record(&mut bytes.clone()).unwrap();
        assert_eq!(session.data, data);
        assert_eq!(
            (
                session.created_at,
                session.last_seen,
                session.absolute_expiry
            ),
            (10, 10, 99)
        );
        let header = parse_header(&bytes).unwrap();
        assert_eq!((header.last_seen, header.absolute_expiry), (10, 99));
        assert_eq!(header.user_key, "k_-1");
        assert!(bytes[header.after_last_seen..].starts_with(b"\"absolute_expiry\":99,"));
        assert!(bytes[header.tail_offset..].starts_with(b"\"user_id\":\"u\\\"1\""));
    }

    /// Decoding the data after the header gives what decoding the whole
    /// record gives; a record whose header does not parse (fields in
    /// another order, spaces) is still decoded whole.
    #[test]
    fn data_decoding_matches_whole_record_decoding() {
        let data = SessionData::new("u1")
            .with_metadata("roles", serde_json::json!(["a", "b"]))
            .with_metadata("n", serde_json::json!(7));
        let whole = |bytes: &[u8]| -> Session {
            serde_json::from_slice::<StoredSession>(bytes)
                .unwrap()
                .into()
        };
        let bytes = record(&data);
        assert_eq!(decode_record(&mut bytes.clone()).unwrap(), whole(&bytes));
        let reordered =
            br#"{"created_at":1, "absolute_expiry":3,"last_seen":2,"user_key":"k","user_id":"u1"}"#;
        let session = decode_record(&mut reordered.to_vec()).unwrap();
        assert_eq!(
            (
                session.created_at,
                session.last_seen,
                session.absolute_expiry
            ),
            (1, 2, 3)
        );
        assert_eq!(session.data, SessionData::new("u1"));
        for bad in [
            &br#"{"last_seen":1,"absolute_expiry":1,"created_at":1,"user_key":"k","#[..],
            br#"{"last_seen":1,"absolute_expiry":1,"created_at":1,"user_key":"k","metadata":{}}"#,
            b"not json",
            b"{\"last_seen\":1,\"absolute_expiry\":1,\"created_at\":1,\"user_key\":\"k\",\"user_id\":\"\xff\"}",
        ] {
            assert!(decode_record(&mut bad.to_vec()).is_err());
        }
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for bad in [
            &b""[..],
            b"{}",
            br#"{"last_seen":,"absolute_expiry":1,"created_at":1,"user_key":"k","#,
            br#"{"last_seen":18446744073709551616,"absolute_expiry":1,"created_at":1,"user_key":"k","#,
            br#"{"last_seen":1,"absolute_expiry":1,"created_at":1,"user_key":"","#,
            br#"{"last_seen":1,"absolute_expiry":1,"created_at":1,"user_key":"k""#,
            br#"{"absolute_expiry":1,"last_seen":1,"created_at":1,"user_key":"k","#,
            br#"{"last_seen":1,"absolute_expiry":1,"created_at":1,"user_key":"k.1","#,
            br#"{"last_seen":-1,"absolute_expiry":1,"created_at":1,"user_key":"k","#,
            br#"{"last_seen":1,"absolute_expiry":1,"created_at":1x,"user_key":"k","#,
        ] {
            assert_eq!(parse_header(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    /// What Lua's `%d+` and `[%w_%-]+` take: leading zeros, the largest
    /// `u64`, the key's class to its last byte.
    #[test]
    fn headers_parse_to_their_last_byte() {
        let record = format!(
            r#"{{"last_seen":0007,"absolute_expiry":{},"created_at":0,"user_key":"AZaz09_-","user_id":"u"}}"#,
            u64::MAX
        );
        let header = parse_header(record.as_bytes()).unwrap();
        assert_eq!(
            (header.last_seen, header.absolute_expiry, header.created_at),
            (7, u64::MAX, 0)
        );
        assert_eq!(header.user_key, "AZaz09_-");
        assert_eq!(header.after_last_seen, r#"{"last_seen":0007,"#.len());
        assert_eq!(&record[header.tail_offset..], r#""user_id":"u"}"#);
    }

    /// A key byte is taken exactly when Lua's `[%w_%-]` (C locale) takes
    /// it: each of the 256 bytes, alone as the key's second byte.
    #[test]
    fn key_bytes_are_lua_word_bytes_underscore_and_dash() {
        for byte in 0..=u8::MAX {
            let mut record =
                br#"{"last_seen":1,"absolute_expiry":1,"created_at":1,"user_key":"k"#.to_vec();
            record.push(byte);
            record.extend_from_slice(br#"","user_id":"u"}"#);
            let lua_word = byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
            assert_eq!(
                parse_header(&record).is_some(),
                lua_word,
                "byte {byte:#04x}"
            );
            if lua_word {
                let key = parse_header(&record).map(|header| header.user_key.as_bytes().to_vec());
                assert_eq!(key, Some(vec![b'k', byte]), "byte {byte:#04x}");
            }
        }
    }
}
