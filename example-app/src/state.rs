//! [`AppModule`]: the shaku module of the components handlers inject; and
//! [`AppState`], the router's state: the module and what is not a
//! component.

use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

use axum::extract::FromRef;
use kv_module::cache_aside::{CachedRepository, KvCachedRepository};
use kv_module::otp::KvOneTimeCodes;
use kv_module::rate_limit::{KvRateLimiter, TrustedProxies};
use kv_module::registry::ServiceRegistry;
use kv_module::session::{KvSessions, Sessions};
use shaku::{HasComponent, module};

use crate::db::Database;
use crate::delivery::EchoSender;
use crate::otp_route_limits::OtpRouteLimiters;
use crate::settings::Settings;
use crate::users::UserRepository;

/// The shaku module; its macro generates items without doc comments.
#[allow(missing_docs)]
mod di {
    use super::*;

    // Each component over the store its configuration names. `EchoSender`
    // is only the placeholder of `dyn CodeSender`: start-up always
    // overrides it with the sender the settings chose.
    module! {
        pub AppModule {
            components = [
                KvSessions,
                KvOneTimeCodes,
                KvRateLimiter,
                OtpRouteLimiters,
                KvCachedRepository<UserRepository>,
                EchoSender,
            ],
            providers = []
        }
    }
}

pub use di::AppModule;

/// A component of [`AppModule`] as a handler receives it:
/// `Inject<dyn Sessions>`.
pub type Inject<I> = shaku_axum::Inject<AppModule, I>;

/// The users through their cache (SQLite behind `user_cache`), as
/// handlers inject them: `Inject<UserCache>`.
pub type UserCache = dyn CachedRepository<UserRepository>;

/// The router state: the module, and what is not a component
/// ([`AppStateInner`], read through `Deref`: `state.module`).
///
/// One `Arc`: axum clones the state for every request (and drops the
/// clone after it), so a clone is one shared counter, not one per field
/// (those counters, shared by every worker thread, cost 1.5 % of a cached
/// user read's CPU under wrk).
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl AppState {
    /// The state holding `inner`.
    pub fn new(inner: AppStateInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppStateInner {
    /// The components ([`Inject`] resolves from it).
    pub module: Arc<AppModule>,
    /// The app's settings.
    pub settings: Arc<Settings>,
    /// Every named store, for `/readyz`.
    pub registry: Arc<ServiceRegistry>,
    /// SQLite, for `/readyz` (users go through [`UserCache`]).
    pub db: Database,
    /// The Prometheus recorder's handle, for `/metrics`; `None` when
    /// metrics are off (`app.metrics: false`).
    pub metrics: Option<PrometheusHandle>,
}

impl FromRef<AppState> for Arc<AppModule> {
    fn from_ref(state: &AppState) -> Self {
        state.module.clone()
    }
}

/// For [`CurrentSession`](kv_module::session::CurrentSession), which
/// finds the session manager through the state.
impl FromRef<AppState> for Arc<dyn Sessions> {
    fn from_ref(state: &AppState) -> Self {
        state.module.resolve()
    }
}

impl FromRef<AppState> for Arc<Settings> {
    fn from_ref(state: &AppState) -> Self {
        state.settings.clone()
    }
}

/// For [`ClientAddress`](crate::client_address::ClientAddress).
impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.settings.trusted_proxies.clone()
    }
}
