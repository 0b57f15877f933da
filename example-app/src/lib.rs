//! The kv-module example app: a small accounts service with SQLite as its
//! system of record and Redis (or the in-memory store) in front of it.
//!
//! # Layout
//!
//! * `main.rs`: telemetry, settings, registry and DI module, router,
//!   serve — each a step of [`startup`].
//! * [`startup`]: the steps ([`load_settings`](startup::load_settings),
//!   [`build_state`](startup::build_state), [`build_app`](startup::build_app),
//!   [`Application`]) and [`StartupError`].
//! * [`state`]: [`AppModule`](state::AppModule), the shaku module of
//!   components, and [`AppState`](state::AppState).
//! * [`settings`]: the app's own `app:` section and the config path.
//! * [`routes`]: one file per resource (`users`, `auth`, `session`,
//!   `health`, `metrics`).
//! * [`users`]: the model and the SQLite repository (the system of record
//!   behind the `user_cache` component).
//! * [`db`]: SQLite, created and migrated at start.
//! * [`delivery`]: the [`CodeSender`](delivery::CodeSender) component
//!   (one-time codes by SMTP, or the development echo).
//! * [`otp_route_limits`]: the [`OtpRouteLimits`](otp_route_limits::OtpRouteLimits)
//!   component, per-client-IP limits of the OTP routes.
//! * [`client_address`]: the client's IP through `TRUSTED_PROXIES`
//!   ([`ClientAddress`](client_address::ClientAddress)).
//! * [`error`]: [`ApiError`](error::ApiError) → problem+json.
//! * [`serve`]: the accept loop with the connection limits
//!   ([`ServerLimits`](serve::ServerLimits)) and the graceful shutdown.
//! * [`request_span`], [`request_id`], [`telemetry`]: logs, and the
//!   request id every response carries.
//!
//! # How handlers receive what they use
//!
//! One rule: **a component is injected, everything else is state.** A
//! component is a service behind an interface, built at start-up from its
//! configuration section over the store that section names: the session
//! manager (`dyn Sessions`), one-time codes (`dyn OneTimeCodes`), the
//! API-wide rate limiter (`dyn RateLimiter`), the OTP routes' limiters
//! (`dyn OtpRouteLimits`), the users' cache (`dyn CachedRepository<UserRepository>`,
//! alias [`UserCache`](state::UserCache)) and the code sender
//! (`dyn CodeSender`). Each lives in [`AppModule`](state::AppModule), and a
//! handler names the ones it needs as extractors,
//! `Inject<dyn Sessions>` ([`state::Inject`], shaku_axum's `Inject` on
//! this module). Only the router resolves one by hand (the API-wide
//! limiter, for its layer), and the state gives `CurrentSession` its
//! session manager by `FromRef`, as that extractor asks.
//! [`AppState`](state::AppState) holds the module and the plain values
//! that are not components — the settings, the registry and SQLite (for
//! `/readyz`) — which handlers take with `State`, by `FromRef` where a
//! part is enough.

#![forbid(unsafe_code)]

pub mod client_address;
pub mod db;
pub mod delivery;
pub mod error;
pub mod otp_route_limits;
pub mod request_id;
pub mod request_span;
pub mod routes;
pub mod serve;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod users;

pub use startup::{AppOptions, Application, StartupError};
