//! [`SessionId`] (the bearer secret a client holds) and [`SessionHandle`]
//! (the hash of it the store is keyed by).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{DIGEST_TAG_CHARS, SlotTag};

/// Random bytes in a session id: 256 bits, twice the 128 bits OWASP asks
/// for, so guessing stays out of reach whatever the number of sessions.
const SECRET_BYTES: usize = 32;

/// Length of the secret as text: 32 bytes in unpadded base64url.
const SECRET_CHARS: usize = 43;

/// Length of an id as text: the user's tag, a `.`, the secret.
const ID_CHARS: usize = DIGEST_TAG_CHARS + 1 + SECRET_CHARS;

/// Length of a handle (and of a user key): a SHA-256 in unpadded
/// base64url.
const HASH_CHARS: usize = 43;

/// Whether `b` is in the base64url alphabet.
fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A session id: the user's hash tag and 256 bits from the operating
/// system's CSPRNG, as `<16-character tag>.<43-character secret>` (60
/// characters of unpadded base64url and a dot: safe in URLs, headers and
/// cookies).
///
/// The tag is the start of the user's key (a domain-separated SHA-256 of
/// the user id): it names the slot where the user's sessions live on a
/// Redis Cluster, so reading a session stays one `GET` of a key the id
/// alone determines. It is not secret, and reveals no user id — but a
/// holder of the id who can guess the user id (an e-mail address, say)
/// can confirm it, as anyone reading the store's key names can.
///
/// The id is a bearer secret. `Debug` and `Display` print `[redacted]`;
/// read it with [`expose`](Self::expose) only to hand it to the client
/// (a cookie, a response body). The store never sees it: sessions are
/// keyed by its SHA-256 ([`SessionHandle`]), so a dump of the store
/// yields no usable id (the lesson of Rack's CVE-2019-16782).
///
/// ```
/// use kv_module::session::SessionId;
///
/// let id = SessionId::generate("user-1").expect("the OS CSPRNG is available");
/// assert_eq!(format!("{id:?}"), "SessionId([redacted])");
/// assert_eq!(id.expose().len(), 60);
/// assert_eq!(SessionId::parse(id.expose()), Some(id.clone()));
/// assert_eq!(SessionId::parse("not-an-id"), None);
/// // Every id of one user carries the same tag.
/// let other = SessionId::generate("user-1").unwrap();
/// assert_eq!(id.expose()[..17], other.expose()[..17]);
/// ```
#[derive(Clone)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh id for a session of `user_id`, from the operating system's
    /// CSPRNG.
    ///
    /// # Errors
    ///
    /// When the operating system cannot provide random bytes.
    pub fn generate(user_id: &str) -> Result<Self, getrandom::Error> {
        Self::generate_in(&user_tag(&user_key(user_id)))
    }

    /// A fresh id under `tag` (a user's tag, or an existing id's when the
    /// id is cycled).
    pub(crate) fn generate_in(tag: &SlotTag) -> Result<Self, getrandom::Error> {
        let mut bytes = [0_u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        let mut text = String::with_capacity(ID_CHARS);
        text.push_str(tag.as_str());
        text.push('.');
        URL_SAFE_NO_PAD.encode_string(bytes, &mut text);
        Ok(Self(text))
    }

    /// Parses an id received from a client: exactly a 16-character
    /// base64url tag, a `.`, and 43 characters of canonical unpadded
    /// base64url encoding 32 bytes. Anything else is `None`, so malformed
    /// input never reaches the store.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != ID_CHARS {
            return None;
        }
        let (tag, rest) = text.split_at_checked(DIGEST_TAG_CHARS)?;
        let secret = rest.strip_prefix('.')?;
        if !tag.bytes().all(is_base64url) {
            return None;
        }
        // Decoding also rejects non-canonical trailing bits, so one id has
        // exactly one spelling.
        let bytes = URL_SAFE_NO_PAD.decode(secret).ok()?;
        (bytes.len() == SECRET_BYTES).then(|| Self(text.to_owned()))
    }

    /// The id as text, to send to the client. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The handle (hash) the session is stored under.
    pub fn handle(&self) -> SessionHandle {
        let mut handle = String::with_capacity(HASH_CHARS);
        self.push_handle(&mut handle);
        SessionHandle(handle)
    }

    /// Appends the [`handle`](Self::handle) to `out`, without a `String`
    /// of its own (the record key is built in one allocation).
    pub(crate) fn push_handle(&self, out: &mut String) {
        URL_SAFE_NO_PAD.encode_string(Sha256::digest(self.0.as_bytes()), out);
    }

    /// The hash tag of the session's keys: the id's first 16 characters.
    pub(crate) fn tag(&self) -> SlotTag {
        SlotTag::digest_prefix(&self.0)
    }

    /// The text of [`tag`](Self::tag), without building a [`SlotTag`]:
    /// the id's first 16 characters, base64url (checked by
    /// [`parse`](Self::parse), drawn so by `generate`), hence their own
    /// tag with nothing to escape.
    pub(crate) fn tag_str(&self) -> &str {
        self.0.get(..DIGEST_TAG_CHARS).unwrap_or(&self.0)
    }
}

impl PartialEq for SessionId {
    /// Constant-time, as befits a secret.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SessionId {}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The SHA-256 of a [`SessionId`] in unpadded base64url: the name a
/// session is stored under, and the handle
/// [`list_user_sessions`](super::Sessions::list_user_sessions) returns so
/// that one session can be revoked
/// ([`delete_user_session`](super::Sessions::delete_user_session)) without
/// knowing its id.
///
/// A handle is not a credential: the id cannot be recovered from it, and
/// reading a session needs the id. It may be shown and logged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(pub(crate) String);

impl SessionHandle {
    /// The handle as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a handle (43 characters of base64url, as
    /// [`as_str`](Self::as_str) gives it).
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == HASH_CHARS && text.bytes().all(is_base64url);
        well_formed.then(|| Self(text.to_owned()))
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of a user in session records: the SHA-256 of the user id
/// (domain separated), so user ids (often e-mail addresses) do not appear
/// in key names, and any user id makes a well-formed key.
pub(crate) fn user_key(user_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"kv-module/session-user\0");
    hasher.update(user_id.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// The hash tag of a user's sessions: the first 16 characters of the
/// user's key (96 bits; two users sharing one does not happen, and would
/// only make them share an index, which every operation checks record by
/// record).
pub(crate) fn user_tag(user_key: &str) -> SlotTag {
    SlotTag::digest_prefix(user_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_well_formed_and_redacted() {
        let a = SessionId::generate("alice").unwrap();
        let b = SessionId::generate("alice").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), ID_CHARS);
        assert_eq!(ID_CHARS, 60);
        let (tag, secret) = a.expose().split_once('.').unwrap();
        assert_eq!(tag, &user_key("alice")[..16]);
        assert_eq!(a.tag(), user_tag(&user_key("alice")));
        assert_eq!(a.tag_str(), a.tag().as_str());
        assert_eq!(a.tag(), b.tag());
        assert_ne!(a.tag(), SessionId::generate("bob").unwrap().tag());
        assert_eq!(secret.len(), SECRET_CHARS);
        assert!(secret.bytes().all(is_base64url));
        assert!(!format!("{a:?}{a}").contains(a.expose()));
        assert!(!format!("{a:?}{a}").contains(secret));
        assert_ne!(a.handle(), b.handle());
        assert_ne!(a.handle().as_str(), a.expose());
    }

    #[test]
    fn parse_accepts_only_canonical_ids() {
        let id = SessionId::generate("alice").unwrap();
        let text = id.expose();
        assert_eq!(SessionId::parse(text), Some(id.clone()));
        let (tag, secret) = text.split_once('.').unwrap();
        for bad in [
            "",
            "short",
            &format!("{text}="),
            &text[1..],
            &format!("{text}A"),
            // The secret alone (the former format), or without its tag.
            secret,
            &format!(".{secret}"),
            // Another separator, or none.
            &format!("{tag}:{secret}"),
            &format!("{tag}{secret}A"),
            // A tag outside base64url (braces would move the hash tag).
            &format!("{{{}}}.{secret}", &tag[2..]),
            &format!("{}+.{secret}", &tag[1..]),
            // 43 chars whose last one carries non-zero trailing bits.
            &format!("{tag}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"),
            &format!("{tag}.+++++++++++++++++++++++++++++++++++++++++++"),
            // Multi-byte text of the right byte length.
            &format!("{}é.{secret}", &tag[2..]),
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
        // Any base64url tag parses: the tag is checked against the store,
        // not here.
        let foreign = format!("AAAAAAAAAAAAAAAA.{secret}");
        assert!(SessionId::parse(&foreign).is_some());
    }

    #[test]
    fn handles_parse_and_user_keys_are_stable() {
        let id = SessionId::generate("alice").unwrap();
        let handle = id.handle();
        assert_eq!(handle.as_str().len(), HASH_CHARS);
        assert_eq!(SessionHandle::parse(handle.as_str()), Some(handle));
        assert_eq!(SessionHandle::parse("x"), None);
        assert_eq!(user_key("alice"), user_key("alice"));
        assert_ne!(user_key("alice"), user_key("bob"));
        assert_eq!(user_key("alice").len(), HASH_CHARS);
        assert_eq!(user_tag(&user_key("alice")).as_str().len(), 16);
    }
}
