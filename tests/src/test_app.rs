//! [`TestApp`]: the example app started in-process on port 0, with its own
//! SQLite file and, in Redis mode, its own `redis-server` (in cluster mode,
//! the process's shared [`TestCluster`]), driven over HTTP; and
//! [`TestApp::spawn_beside`], a second instance of the same service.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use example_app::state::{AppModule, UserCache};
use example_app::{AppOptions, Application};
use kv_module::cache_aside::CacheMetrics;
use kv_module::rate_limit::RateLimiter;
use serde_json::{Value, json};
use shaku::HasComponent;
use tokio::sync::oneshot;

use crate::{TestCluster, TestRedis};

/// Which store driver the app runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// `kvstore_redis` against a [`TestRedis`] (`config/services.yaml`).
    Redis,
    /// `kvstore_memory`: no Redis at all.
    Memory,
    /// `kvstore_redis` in cluster mode (`config/services.cluster.yaml`,
    /// `REDIS_NODES` naming every node) on this process's
    /// [`TestCluster::shared`]. The configuration's prefixes are fixed
    /// (`users`, `sessions`, `ratelimit`), so every app of the process on
    /// this driver writes the same key space: tests keep apart by what
    /// they touch (see `tests/tests/app_cluster.rs`).
    Cluster,
}

/// A running example app.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The app's address.
    pub addr: SocketAddr,
    /// An HTTP client without a cookie store (tests pass cookies and
    /// bearer tokens explicitly).
    pub client: reqwest::Client,
    /// The Redis server, in Redis mode, for the app that started it (an
    /// instance started [beside](Self::spawn_beside) it has `None` and
    /// uses that one's).
    pub redis: Option<TestRedis>,
    /// The cluster, in cluster mode.
    pub cluster: Option<Arc<TestCluster>>,
    /// The driver.
    pub driver: Driver,
    /// What an instance started beside this one shares with it.
    service: Service,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    module: Arc<AppModule>,
}

/// What the instances of one service share: the configuration file, the
/// stores' addresses and the SQLite file (in a directory that lives as
/// long as the last of them).
#[derive(Clone)]
struct Service {
    config_path: PathBuf,
    store_env: Vec<(&'static str, String)>,
    dir: Arc<tempfile::TempDir>,
}

impl Service {
    fn database(&self) -> PathBuf {
        self.dir.path().join("app.db")
    }
}

/// Settings a test may change; the rest are the configuration's defaults.
#[derive(Clone, Debug)]
pub struct TestAppConfig {
    /// `RATE_LIMIT_REQUESTS`.
    pub rate_limit_requests: u64,
    /// `RATE_LIMIT_WINDOW`.
    pub rate_limit_window: &'static str,
    /// `OTP_RESEND_COOLDOWN`.
    pub otp_resend_cooldown: &'static str,
    /// Extra variables.
    pub extra: Vec<(&'static str, String)>,
}

impl Default for TestAppConfig {
    fn default() -> Self {
        Self {
            rate_limit_requests: 100_000,
            rate_limit_window: "60s",
            otp_resend_cooldown: "0ms",
            extra: Vec::new(),
        }
    }
}

/// The repository's `config/services.yaml`.
pub fn services_yaml() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/services.yaml")
}

/// The repository's `config/services.cluster.yaml`.
pub fn services_cluster_yaml() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/services.cluster.yaml")
}

impl TestApp {
    /// Starts the app on `driver` with default test settings.
    pub async fn spawn(driver: Driver) -> Self {
        Self::spawn_with(driver, TestAppConfig::default()).await
    }

    /// Starts the app on `driver` with `config`.
    ///
    /// # Panics
    ///
    /// When its stores or the app cannot be started.
    pub async fn spawn_with(driver: Driver, config: TestAppConfig) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (redis, cluster) = match driver {
            Driver::Redis => (Some(TestRedis::start().await), None),
            Driver::Memory => (None, None),
            Driver::Cluster => (None, Some(TestCluster::shared())),
        };
        let (config_path, store_env) = match (&redis, &cluster) {
            (Some(redis), _) => (
                services_yaml(),
                vec![
                    ("KV_DRIVER", "kvstore_redis".to_owned()),
                    ("REDIS_ADDR", redis.addr()),
                ],
            ),
            (None, Some(cluster)) => (
                services_cluster_yaml(),
                vec![
                    ("KV_DRIVER", "kvstore_redis".to_owned()),
                    ("REDIS_NODES", cluster.seed_nodes().join(",")),
                ],
            ),
            (None, None) => (
                services_yaml(),
                vec![("KV_DRIVER", "kvstore_memory".to_owned())],
            ),
        };
        let service = Service {
            config_path,
            store_env,
            dir: Arc::new(dir),
        };
        Self::launch(driver, service, redis, cluster, config).await
    }

    /// Starts a second instance of the same service beside this one, as a
    /// deployment runs several: the same configuration file, the same Redis
    /// (or cluster) and the same SQLite file, so both see the same users;
    /// its own listener, components and `config` (which need not be this
    /// one's). In Redis mode the server stays this app's: keep this app
    /// alive while the other runs.
    ///
    /// # Panics
    ///
    /// On the memory driver, whose stores live inside one app and cannot
    /// be shared; when the app cannot be started.
    pub async fn spawn_beside(&self, config: TestAppConfig) -> Self {
        assert!(
            self.driver != Driver::Memory,
            "two instances on the memory driver share no store: spawn_beside needs Redis or a cluster"
        );
        Self::launch(
            self.driver,
            self.service.clone(),
            None,
            self.cluster.clone(),
            config,
        )
        .await
    }

    async fn launch(
        driver: Driver,
        service: Service,
        redis: Option<TestRedis>,
        cluster: Option<Arc<TestCluster>>,
        config: TestAppConfig,
    ) -> Self {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("APP_ADDR", "127.0.0.1:0".into());
        set("DATABASE_URL", service.database().display().to_string());
        set("OTP_DEV_ECHO", "true".into());
        set(
            "RATE_LIMIT_REQUESTS",
            config.rate_limit_requests.to_string(),
        );
        set("RATE_LIMIT_WINDOW", config.rate_limit_window.into());
        set("OTP_RESEND_COOLDOWN", config.otp_resend_cooldown.into());
        for (k, v) in &service.store_env {
            set(k, v.clone());
        }
        for (k, v) in config.extra {
            set(k, v);
        }
        let env = Arc::new(env);
        let app = Application::build(AppOptions {
            config_path: service.config_path.clone(),
            env: Some(Arc::new(move |name: &str| env.get(name).cloned())),
        })
        .await
        .unwrap_or_else(|e| panic!("the app must start: {e}"));
        let addr = app.local_addr().expect("a bound address");
        let module = app.module().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            addr,
            client: reqwest::Client::new(),
            redis,
            cluster,
            driver,
            service,
            stop: Some(stop),
            served: Some(served),
            module,
        }
    }

    /// The SQLite file, shared with every instance started
    /// [beside](Self::spawn_beside) this one.
    pub fn database(&self) -> PathBuf {
        self.service.database()
    }

    /// The configuration file the app was started with.
    pub fn config_path(&self) -> &Path {
        &self.service.config_path
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /api/users`; returns the new user's id.
    pub async fn create_user(&self, name: &str, email: &str) -> i64 {
        let response = self
            .client
            .post(self.url("/api/users"))
            .json(&json!({ "name": name, "email": email }))
            .send()
            .await
            .expect("POST /api/users");
        assert_eq!(response.status(), 201, "creating {email}");
        let body: Value = response.json().await.expect("a JSON user");
        body["id"].as_i64().expect("an integer id")
    }

    /// Issues a code (dev echo) and verifies it: the 200 response.
    async fn verified_login(&self, user_id: i64) -> reqwest::Response {
        let response = self
            .client
            .post(self.url("/api/auth/otp"))
            .json(&json!({ "user_id": user_id }))
            .send()
            .await
            .expect("POST /api/auth/otp");
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.expect("JSON");
        let code = body["dev_code"].as_str().expect("a dev code").to_owned();
        let response = self
            .client
            .post(self.url("/api/auth/otp/verify"))
            .json(&json!({ "user_id": user_id, "code": code }))
            .send()
            .await
            .expect("POST /api/auth/otp/verify");
        assert_eq!(response.status(), 200);
        response
    }

    /// Issues a code (dev echo) and verifies it: a new session id.
    pub async fn login(&self, user_id: i64) -> String {
        let response = self.verified_login(user_id).await;
        let body: Value = response.json().await.expect("JSON");
        body["session_id"]
            .as_str()
            .expect("a session id")
            .to_owned()
    }

    /// Logs `user_id` in (dev echo code, then verify) and returns the
    /// response's whole `Set-Cookie` header, to check its attributes.
    pub async fn login_set_cookie(&self, user_id: i64) -> String {
        let response = self.verified_login(user_id).await;
        response.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .expect("a visible-ASCII Set-Cookie")
            .to_owned()
    }

    /// Logs `user_id` in and returns the `Cookie` request header value
    /// (`session_id=<id>`) that carries the new session.
    pub async fn login_cookie(&self, user_id: i64) -> String {
        let set_cookie = self.login_set_cookie(user_id).await;
        set_cookie
            .split(';')
            .next()
            .expect("a name=value pair")
            .trim()
            .to_owned()
    }

    /// Signals the app to stop and waits for it at most `within`: whether
    /// it stopped (drained, closed its stores) in that time. After `false`
    /// the app is still shutting down in the background.
    pub async fn stop_within(mut self, within: std::time::Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.served.take() {
            Some(served) => tokio::time::timeout(within, served).await.is_ok(),
            None => true,
        }
    }

    /// This instance's user cache counters (the `/metrics` figures are
    /// per process, shared by every app a test binary runs).
    pub fn cache_metrics(&self) -> CacheMetrics {
        let cache: &UserCache = self.module.resolve_ref();
        cache.metrics()
    }

    /// How many checks this instance's API limiter let through because
    /// its store failed.
    pub fn failed_open(&self) -> u64 {
        let limiter: &dyn RateLimiter = self.module.resolve_ref();
        limiter.failed_open()
    }

    /// Stops the app gracefully (drains, closes stores) and waits.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the app on the memory driver with the test defaults of
/// [`TestApp::spawn_with`] and `config`, expecting it to refuse: returns
/// the start-up error with its causes, one per line, as `main` prints it.
///
/// # Panics
///
/// When the app starts.
pub async fn startup_error(config: TestAppConfig) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("KV_DRIVER", "kvstore_memory".into());
    set("APP_ADDR", "127.0.0.1:0".into());
    set(
        "DATABASE_URL",
        dir.path().join("app.db").display().to_string(),
    );
    set("OTP_DEV_ECHO", "true".into());
    set(
        "RATE_LIMIT_REQUESTS",
        config.rate_limit_requests.to_string(),
    );
    set("RATE_LIMIT_WINDOW", config.rate_limit_window.into());
    set("OTP_RESEND_COOLDOWN", config.otp_resend_cooldown.into());
    for (k, v) in config.extra {
        set(k, v);
    }
    let env = Arc::new(env);
    let built = Application::build(AppOptions {
        config_path: services_yaml(),
        env: Some(Arc::new(move |name: &str| env.get(name).cloned())),
    })
    .await;
    let Err(error) = built else {
        panic!("the app must refuse to start");
    };
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str("\ncaused by: ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Asserts that `response` is an `application/problem+json` document of
/// `status` with `type`, `title` and `detail`, and returns it.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.expect("a problem document");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}
