//! Server-side sessions: [`KvSessions`] (the [`Sessions`] component),
//! its configuration, and the axum extractor [`CurrentSession`].
//!
//! # What it guarantees
//!
//! * Ids carry 256 bits from the OS CSPRNG, URL-safe ([`SessionId`]); they
//!   never appear in `Debug` output, logs, or the store, which keys each
//!   session by the SHA-256 of its id ([`SessionHandle`]). An id starts
//!   with its user's hash tag, so the id alone names the session's key.
//! * Two timeouts, both enforced by the key's TTL: idle (sliding, default
//!   30 minutes) and absolute (from creation, default 24 hours). A refresh
//!   extends only the idle one and never past the absolute expiry.
//! * `get` is one `GET`; every write (create, refresh, update, delete,
//!   id cycling, revoking one session of a user) is one
//!   [`Script`](crate::Script) (Lua on Redis, its Rust twin under the
//!   memory backend's lock), so each is atomic. Listing a user's sessions
//!   is two round trips (the index, then one `MGET` of its records); "log
//!   out everywhere" is two (the index, then one script deleting those
//!   records), plus one more round for sessions created in between, so
//!   every session that existed when it returns is gone.
//! * Using a session ([`Sessions::load`], which the extractor calls) reads
//!   it, and refreshes it at most once per refresh interval (default 60 s;
//!   checked again inside the store, so concurrent requests write once):
//!   a request is not a write.
//! * A per-user index makes listing and deleting a user's sessions cost in
//!   proportion to that user's sessions; nothing scans the keyspace.
//! * Every key carries a TTL, indexes included.
//! * Runs unchanged on a Redis Cluster: every script is given every key it
//!   touches in `KEYS`, and all keys of one user share the user's hash tag
//!   (one slot).
//!
//! # Key layout
//!
//! Under the store's prefix, with `{tag}` the user's hash tag:
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `session:{tag}:<handle>` | the record: JSON with `last_seen`, `absolute_expiry`, `created_at` (Unix ms, store clock), `user_key`, then the [`SessionData`] | `min(idle, absolute expiry - now)` |
//! | `user_sessions:{tag}` | the index: JSON `{handle: current expiry ms}`, the expiry each record has now | the latest member's expiry |
//!
//! `handle` is base64url(SHA-256(id)); `user key` is base64url(SHA-256 of
//! the user id, domain separated), and `tag` its first 16 characters (96
//! bits), so neither ids nor user ids (often e-mail addresses) appear in
//! key names. A session id is `<tag>.<secret>`: 16 + 1 + 43 characters.
//!
//! One index per tag: two users sharing a tag does not happen at 96 bits,
//! and if it did they would share an index, not sessions — records hold
//! their user key, and listing, revoking and "log out everywhere" act only
//! on records of the user asked for.
//!
//! Each script that moves a record's expiry (create, refresh, id cycling)
//! writes its index entry in the same step, so the index knows when each
//! record expires: whenever an index is written, members whose expiry has
//! passed (idled out or past the absolute timeout) are dropped, without
//! reading any key the script was not given.
//!
//! # Wiring with shaku and axum
//!
//! Build the manager before the shaku module — resolving its store by the
//! name its configuration gives, so a bad name is a start-up error — and
//! pass it as the component's parameters. The extractor finds it through
//! the router state: implement `FromRef<YourState>` for `Arc<dyn Sessions>`
//! (and for `Arc<YourModule>` when handlers also use `shaku_axum::Inject`).
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, extract::FromRef, http::header::SET_COOKIE, response::IntoResponse, routing::{get, post}};
//! use kv_module::config::ConfigLoader;
//! use kv_module::registry::{ServiceRegistry, ServiceTypes};
//! use kv_module::session::{CurrentSession, SessionConfig, SessionData, KvSessions, Sessions};
//! use shaku::{HasComponent, module};
//!
//! module! {
//!     AppModule { components = [KvSessions], providers = [] }
//! }
//!
//! #[derive(Clone)]
//! struct AppState {
//!     module: Arc<AppModule>,
//! }
//!
//! impl FromRef<AppState> for Arc<dyn Sessions> {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.module.resolve()
//!     }
//! }
//!
//! async fn login(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
//!     let sessions: Arc<dyn Sessions> = state.module.resolve();
//!     match sessions.create(SessionData::new("user-1")).await {
//!         Ok(id) => Ok([(SET_COOKIE, sessions.config().set_cookie(&id))]),
//!         Err(_) => Err(axum::http::StatusCode::SERVICE_UNAVAILABLE),
//!     }
//! }
//!
//! async fn me(current: CurrentSession) -> String {
//!     current.session.data.user_id
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = "
//! services:
//!   session_cache:
//!     type: kvstore_memory
//!     config: { prefix: sessions }
//! sessions:
//!   store: session_cache
//!   idle_timeout: 30m
//!   cookie_secure: true
//! ";
//! let config = ConfigLoader::new().load_str("app.yaml", yaml)?;
//! let registry = ServiceRegistry::build(&config, &ServiceTypes::builtin()).await?;
//! let session_config: SessionConfig = config.required_section("sessions")?;
//! let manager = KvSessions::from_registry(&registry, "sessions", session_config)?;
//! let module = AppModule::builder()
//!     .with_component_parameters::<KvSessions>(manager.into_parameters())
//!     .build();
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/me", get(me))
//!     .with_state(AppState { module: Arc::new(module) });
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod config;
mod cookie;
mod data;
#[cfg(feature = "axum")]
mod extractor;
mod id;
mod kv_sessions;
mod scripts;
mod sessions;

pub use config::{
    DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_COOKIE_NAME, DEFAULT_IDLE_TIMEOUT, DEFAULT_REFRESH_INTERVAL,
    SessionConfig,
};
pub use cookie::find_cookie;
pub use data::{Session, SessionData, UserSession};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extractor::{CurrentSession, SessionRejection};
pub use id::{SessionHandle, SessionId};
pub use kv_sessions::KvSessions;
#[cfg(feature = "shaku")]
#[cfg_attr(docsrs, doc(cfg(feature = "shaku")))]
pub use kv_sessions::KvSessionsParameters;
pub use sessions::Sessions;
