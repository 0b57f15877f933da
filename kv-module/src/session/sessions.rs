//! [`Sessions`]: the session manager's interface, as applications and the
//! axum extractor see it (and as shaku injects it).

use async_trait::async_trait;

use super::config::SessionConfig;
use super::data::{Session, SessionData, UserSession};
use super::id::{SessionHandle, SessionId};
use crate::error::Result;

/// Server-side sessions over a [`KvStore`](crate::KvStore).
///
/// Implemented by [`KvSessions`](super::KvSessions); hold it as
/// `Arc<dyn Sessions>` (shaku resolves it as such). Every method is one
/// round trip to the store, whatever the number of sessions stored, but
/// [`list_user_sessions`](Self::list_user_sessions) and
/// [`delete_user_sessions`](Self::delete_user_sessions): two each.
#[async_trait]
pub trait Sessions: crate::Interface {
    /// The validated configuration (timeouts, cookie name, and the
    /// cookie helpers [`set_cookie`](SessionConfig::set_cookie) and
    /// [`clear_cookie`](SessionConfig::clear_cookie)).
    fn config(&self) -> &SessionConfig;

    /// Creates a session for `data` and returns its new id (the user's
    /// hash tag and 256 bits from the OS CSPRNG). Never overwrites an
    /// existing session (`SET NX`).
    ///
    /// # Errors
    ///
    /// [`KvError::InvalidArgument`](crate::KvError::InvalidArgument) for an
    /// empty user id; any store error.
    async fn create(&self, data: SessionData) -> Result<SessionId>;

    /// The session, or `None` when it is unknown, expired or deleted. One
    /// `GET`; it does not extend the session (see [`load`](Self::load)).
    async fn get(&self, id: &SessionId) -> Result<Option<Session>>;

    /// Extends the idle timeout — never past the absolute expiry — and
    /// stamps `last_seen`, without rewriting the data. `false` when the
    /// session does not exist.
    async fn refresh(&self, id: &SessionId) -> Result<bool>;

    /// Replaces the data of an existing session, keeping its expiry.
    /// `false` when the session does not exist: an update never brings
    /// back a deleted or expired session.
    ///
    /// # Errors
    ///
    /// [`KvError::InvalidArgument`](crate::KvError::InvalidArgument) when
    /// `data.user_id` differs from the session's: a session's user is fixed
    /// (log the new user in with a new session, or [`cycle_id`](Self::cycle_id)).
    async fn update(&self, id: &SessionId, data: SessionData) -> Result<bool>;

    /// Deletes the session (logout); whether it existed.
    async fn delete(&self, id: &SessionId) -> Result<bool>;

    /// Moves the session to a new id (with the same user tag), in one
    /// atomic step: same data, same expiry, and the old id invalid at once. Call it when privileges
    /// change (login, elevation) so that an id planted before is useless
    /// (session fixation). `None` when the session does not exist.
    async fn cycle_id(&self, id: &SessionId) -> Result<Option<SessionId>>;

    /// The user's live sessions (in no set order), read through the user's
    /// index: the cost follows this user's sessions, not all sessions. Two
    /// round trips: the index, then one `MGET` of the records it lists.
    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<UserSession>>;

    /// Deletes one session of `user_id`, named by the handle
    /// [`list_user_sessions`](Self::list_user_sessions) gave ("log out that
    /// device"); `false` when it does not exist or is another user's.
    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool>;

    /// Deletes every session of `user_id` ("log out everywhere") through
    /// the user's index; the number deleted. Two round trips: the index,
    /// then one atomic script deleting those sessions. Should sessions of
    /// the user have been created in between, the script says so and runs
    /// again for them, so every session that existed when this returns is
    /// gone.
    ///
    /// # Errors
    ///
    /// Any store error; and, should the user's sessions keep being created
    /// through 16 rounds, [`KvError::Backend`](crate::KvError::Backend)
    /// (the sessions deleted so far stay deleted).
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64>;

    /// The session for a request: [`get`](Self::get), then a
    /// [`refresh`](Self::refresh) only when the last one is at least the
    /// configured refresh interval old — so using a session is one read,
    /// plus one write per interval rather than per request. The refresh
    /// checks the interval again inside the store, so concurrent requests
    /// still write once. `None` when unknown or expired (or deleted between
    /// the two steps).
    ///
    /// `last_seen` is on the store's clock and first compared with this
    /// host's; clock skew only shifts when the refresh round trip is made.
    async fn load(&self, id: &SessionId) -> Result<Option<Session>>;
}
