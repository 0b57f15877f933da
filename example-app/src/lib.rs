//! The kv-module example app: a small accounts service with SQLite as its
//! system of record and Redis (or the in-memory store) in front of it.
//!
//! # Layout
//!
//! * `main.rs`: telemetry, settings, [`Application::build`], serve.
//! * [`startup`]: [`Application`] (config → registry → components → router
//!   → listener) and [`build_app`](startup::build_app).
//! * [`settings`]: the app's own `app:` section and the config path.
//! * [`state`]: [`AppState`](state::AppState) and the shaku module.
//! * [`routes`]: one file per resource (`users`, `auth`, `session`,
//!   `health`, `metrics`).
//! * [`users`]: the model and the SQLite repository (also the cache's
//!   [`Repository`](kv_module::cache_aside::Repository)).
//! * [`db`]: SQLite, created and migrated at start.
//! * [`delivery`]: the [`CodeSender`](delivery::CodeSender) component
//!   (one-time codes by SMTP, or the development echo).
//! * [`client_address`]: the client's IP through `TRUSTED_PROXIES`
//!   ([`ClientAddress`](client_address::ClientAddress)).
//! * [`error`]: [`ApiError`](error::ApiError) → problem+json.
//! * [`serve`]: the accept loop with the connection limits
//!   ([`ServerLimits`](serve::ServerLimits)) and the graceful shutdown.
//! * [`request_span`], [`request_id`], [`telemetry`]: logs, and the
//!   request id every response carries.
#![forbid(unsafe_code)]

pub mod client_address;
pub mod db;
pub mod delivery;
pub mod error;
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
