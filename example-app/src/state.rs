//! [`AppState`]: what handlers reach, and the shaku module of components.

use std::sync::Arc;

use axum::extract::FromRef;
use kv_module::cache_aside::CacheAside;
use kv_module::otp::OtpService;
use kv_module::rate_limit::RateLimiter;
use kv_module::registry::ServiceRegistry;
use kv_module::session::{SessionManager, Sessions};
use shaku::{HasComponent, module};

use crate::db::Database;
use crate::delivery::EchoSender;
use crate::settings::Settings;
use crate::users::UserRepository;

/// The shaku module; its macro generates items without doc comments.
#[allow(missing_docs)]
mod di {
    use super::*;

    // The components, each over the store its configuration names.
    // `EchoSender` is only the placeholder of `dyn CodeSender`: start-up
    // always overrides it with the sender the settings chose.
    module! {
        pub AppModule {
            components = [SessionManager, OtpService, RateLimiter, EchoSender],
            providers = []
        }
    }
}

pub use di::AppModule;

/// The users' cache-aside repository (SQLite behind `user_cache`).
pub type UserCache = CacheAside<UserRepository>;

/// The router state.
#[derive(Clone)]
pub struct AppState {
    /// The components (`shaku_axum::Inject` resolves from it).
    pub module: Arc<AppModule>,
    /// Every named store, for `/readyz`.
    pub registry: Arc<ServiceRegistry>,
    /// Users through their cache.
    pub users: Arc<UserCache>,
    /// The app's settings.
    pub settings: Arc<Settings>,
    /// SQLite, for `/readyz` (users go through [`users`](Self::users)).
    pub db: Database,
}

impl FromRef<AppState> for Arc<AppModule> {
    fn from_ref(state: &AppState) -> Self {
        state.module.clone()
    }
}

impl FromRef<AppState> for Arc<dyn Sessions> {
    fn from_ref(state: &AppState) -> Self {
        state.module.resolve()
    }
}
