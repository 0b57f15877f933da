//! Start-up, in the steps `main.rs` takes: [`load_settings`] (the
//! configuration and its `app:` section), [`build_state`] (the registry of
//! stores, SQLite and the DI module), [`build_app`] (the router), then
//! [`Application::bind`] and [`run_until_stopped`](Application::run_until_stopped).
//! [`Application::build`] takes the same steps, for tests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use kv_module::cache_aside::{CacheAsideConfig, KvCachedRepository};
use kv_module::config::{ConfigError, ConfigLoader, Expander, LoadedConfig};
use kv_module::http::Problem;
use kv_module::otp::{KvOneTimeCodes, OtpConfig};
use kv_module::rate_limit::{KeyExtractor, KvRateLimiter, RateLimitLayer, RateLimiter};
use kv_module::registry::{RegistryError, ServiceRegistry, ServiceTypes};
use kv_module::session::{KvSessions, SessionConfig};
use shaku::HasComponent;

use crate::db::Database;
use crate::delivery::{CodeSender, DeliverySetupError, code_sender};
use crate::otp_route_limits::OtpRouteLimiters;
use crate::request_span::request_span;
use crate::routes::{auth, health, metrics, session, users};
use crate::serve::{BodyDeadline, ServerLimits, read_body, serve};
use crate::settings::Settings;
use crate::state::{AppModule, AppState, AppStateInner};
use crate::users::UserRepository;

/// Bodies larger than this are refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A service or component cannot be built: an unknown type or store
    /// name, or a store that is unreachable.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The SQLite database cannot be opened or migrated.
    #[error("database `{path}`: {source}")]
    Database {
        /// Its path.
        path: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// One-time codes cannot be delivered with these settings (no SMTP
    /// and no development echo, or bad SMTP settings).
    #[error(transparent)]
    Delivery(#[from] DeliverySetupError),
    /// The `app:` settings are invalid.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The listen address cannot be bound.
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The environment the configuration's `${VAR}`s read: the process
/// environment by default; tests pass their own.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How to start the app.
pub struct AppOptions {
    /// The configuration file or directory.
    pub config_path: PathBuf,
    /// Overrides the process environment for `${VAR}` expansion.
    pub env: Option<Env>,
}

/// The configuration at `options.config_path`, and its `app:` section.
///
/// # Errors
///
/// A configuration that does not load, or an invalid `app:` section.
pub fn load_settings(options: AppOptions) -> Result<(LoadedConfig, Settings), StartupError> {
    let expander = match options.env {
        Some(env) => Expander::new().with_env(move |name| env(name)),
        None => Expander::new(),
    };
    let config = ConfigLoader::new()
        .with_expander(expander)
        .load(&options.config_path)?;
    let settings = config.required_section("app")?;
    Ok((config, settings))
}

/// Opens every store of `config` (the registry) and SQLite, and builds the
/// DI module: each component from its section, over the store it names.
///
/// # Errors
///
/// Settings that cannot deliver codes or serve (checked before any store
/// is opened), an unreachable store, an invalid section, a database that
/// cannot be opened.
pub async fn build_state(
    config: &LoadedConfig,
    settings: Settings,
) -> Result<AppState, StartupError> {
    // The metrics recorder first, when on: the stores count from their
    // first call. Off, none is installed and every figure is a no-op.
    let metrics = settings.metrics.then(crate::telemetry::metrics_handle);
    // How codes reach users: SMTP or the development echo, else no start.
    let sender = code_sender(&settings)?;
    settings.server.validate().map_err(StartupError::Settings)?;

    let registry = ServiceRegistry::build(config, &ServiceTypes::builtin()).await?;
    let sessions = KvSessions::from_registry(
        &registry,
        "sessions",
        config.required_section::<SessionConfig>("sessions")?,
    )?;
    let otp = KvOneTimeCodes::from_registry(
        &registry,
        "otp",
        config.required_section::<OtpConfig>("otp")?,
    )?;
    let otp_limits = OtpRouteLimiters::from_registry(
        &registry,
        "otp_rate_limit",
        config.required_section("otp_rate_limit")?,
    )?;
    let limiter =
        KvRateLimiter::from_registry(&registry, "api", config.required_section("rate_limit")?)?;
    let path = settings.database_path();
    let db = Database::open(&path).map_err(|source| StartupError::Database {
        path: path.display().to_string(),
        source,
    })?;
    let users = KvCachedRepository::from_registry(
        &registry,
        "user_cache",
        config.required_section::<CacheAsideConfig>("user_cache")?,
        Arc::new(UserRepository::new(db.clone())),
    )?;

    // Every lookup above is done: building the module cannot fail.
    let module = AppModule::builder()
        .with_component_parameters::<KvSessions>(sessions.into_parameters())
        .with_component_parameters::<KvOneTimeCodes>(otp.into_parameters())
        .with_component_parameters::<KvRateLimiter>(limiter.into_parameters())
        .with_component_parameters::<OtpRouteLimiters>(otp_limits.into_parameters())
        .with_component_parameters::<KvCachedRepository<UserRepository>>(users.into_parameters())
        .with_component_override::<dyn CodeSender>(sender)
        .build();
    Ok(AppState::new(AppStateInner {
        module: Arc::new(module),
        settings: Arc::new(settings),
        registry: Arc::new(registry),
        db,
        metrics,
    }))
}

/// A started app: bound, with every component built.
pub struct Application {
    listener: tokio::net::TcpListener,
    limits: ServerLimits,
    router: Router,
    registry: Arc<ServiceRegistry>,
    module: Arc<AppModule>,
}

impl Application {
    /// [`load_settings`], [`build_state`], [`build_app`] and
    /// [`bind`](Self::bind): the app ready to serve.
    pub async fn build(options: AppOptions) -> Result<Self, StartupError> {
        let (config, settings) = load_settings(options)?;
        let state = build_state(&config, settings).await?;
        Self::bind(build_app(state.clone()), &state).await
    }

    /// Binds `app.addr` for `router`, which serves `state`.
    pub async fn bind(router: Router, state: &AppState) -> Result<Self, StartupError> {
        let addr = &state.settings.addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: addr.clone(),
                source,
            })?;
        Ok(Self {
            listener,
            limits: state.settings.server.clone(),
            router,
            registry: state.registry.clone(),
            module: state.module.clone(),
        })
    }

    /// The components (for an embedding program or a test that reads a
    /// component's own counters).
    pub fn module(&self) -> &Arc<AppModule> {
        &self.module
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting, drains
    /// in-flight requests for at most `app.server.shutdown_timeout`, and
    /// closes the stores.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = serve(self.listener, self.router, self.limits, shutdown).await;
        self.registry.close().await;
        tracing::info!("stopped; stores closed");
        served
    }
}

/// The router: health and metrics (when `app.metrics` is on; else
/// `/metrics` is an unknown route, 404) at the root, the API under
/// `/api/` behind the per-client-IP rate limit. Every request gets a request id
/// and a span, and its body is read within `app.server.body_read_timeout`;
/// every error response is problem+json
/// ([`finish_error_response`](crate::error::finish_error_response)).
pub fn build_app(state: AppState) -> Router {
    let limiter: Arc<dyn RateLimiter> = state.module.resolve();
    // The client behind `TRUSTED_PROXIES` (none by default: the peer).
    let clients = KeyExtractor::client_ip(state.settings.trusted_proxies.clone());
    let body_deadline = BodyDeadline {
        timeout: state.settings.server.body_read_timeout,
        max_bytes: MAX_BODY,
    };
    let api = Router::new()
        .route("/users", post(users::create))
        .route(
            "/users/{id}",
            get(users::get).put(users::update).delete(users::delete),
        )
        .route(
            "/users/{id}/sessions",
            axum::routing::delete(users::delete_sessions),
        )
        .route("/auth/otp", post(auth::issue))
        .route("/auth/otp/verify", post(auth::verify))
        .route("/session", get(session::get).delete(session::delete))
        .route("/session/refresh", post(session::refresh))
        .fallback(not_found)
        .layer(RateLimitLayer::new(limiter, clients));
    let exporter = match state.metrics.clone() {
        Some(handle) => Router::new()
            .route("/metrics", get(metrics::metrics))
            .with_state(handle),
        None => Router::new(),
    };
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(exporter)
        .nest("/api", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(body_deadline, read_body))
        .layer(middleware::from_fn(request_span))
        .with_state(state)
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such resource")
}
