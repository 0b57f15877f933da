//! [`SessionId`] (the bearer secret a client holds) and [`SessionHandle`]
//! (the hash of it the store is keyed by).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in a session id: 256 bits, twice the 128 bits OWASP asks
/// for, so guessing stays out of reach whatever the number of sessions.
const ID_BYTES: usize = 32;

/// Length of an id as text: 32 bytes in unpadded base64url.
const ID_CHARS: usize = 43;

/// A session id: 256 bits from the operating system's CSPRNG, as 43
/// characters of unpadded base64url (safe in URLs, headers and cookies).
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
/// let id = SessionId::generate().expect("the OS CSPRNG is available");
/// assert_eq!(format!("{id:?}"), "SessionId([redacted])");
/// assert_eq!(id.expose().len(), 43);
/// assert_eq!(SessionId::parse(id.expose()), Some(id.clone()));
/// assert_eq!(SessionId::parse("not-an-id"), None);
/// ```
#[derive(Clone)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh id from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// When the operating system cannot provide random bytes.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0_u8; ID_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Parses an id received from a client: exactly 43 characters of
    /// canonical unpadded base64url. Anything else is `None`, so malformed
    /// input never reaches the store.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != ID_CHARS {
            return None;
        }
        // Decoding also rejects non-canonical trailing bits, so one id has
        // exactly one spelling.
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        (bytes.len() == ID_BYTES).then(|| Self(text.to_owned()))
    }

    /// The id as text, to send to the client. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The handle (hash) the session is stored under.
    pub fn handle(&self) -> SessionHandle {
        SessionHandle(URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes())))
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
        let well_formed = text.len() == ID_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(text.to_owned()))
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of a user's session index: the SHA-256 of the user id (domain
/// separated), so user ids (often e-mail addresses) do not appear in key
/// names, and any user id makes a well-formed key.
pub(crate) fn user_key(user_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"kv-module/session-user\0");
    hasher.update(user_id.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_well_formed_and_redacted() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), ID_CHARS);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert!(!format!("{a:?}{a}").contains(a.expose()));
        assert_ne!(a.handle(), b.handle());
        assert_ne!(a.handle().as_str(), a.expose());
    }

    #[test]
    fn parse_accepts_only_canonical_ids() {
        let id = SessionId::generate().unwrap();
        assert_eq!(SessionId::parse(id.expose()), Some(id.clone()));
        for bad in [
            "",
            "short",
            &format!("{}=", id.expose()),
            &id.expose()[1..],
            &format!("{}A", id.expose()),
            "+++++++++++++++++++++++++++++++++++++++++++",
            // 43 chars whose last one carries non-zero trailing bits.
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn handles_parse_and_user_keys_are_stable() {
        let id = SessionId::generate().unwrap();
        let handle = id.handle();
        assert_eq!(SessionHandle::parse(handle.as_str()), Some(handle));
        assert_eq!(SessionHandle::parse("x"), None);
        assert_eq!(user_key("alice"), user_key("alice"));
        assert_ne!(user_key("alice"), user_key("bob"));
        assert_eq!(user_key("alice").len(), ID_CHARS);
    }
}
