//! [`TestApp`]: the example app started in-process on port 0, with its own
//! SQLite file and, in Redis mode, its own `redis-server`, driven over
//! HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use example_app::{AppOptions, Application};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::TestRedis;

/// Which store driver the app runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// `kvstore_redis` against a [`TestRedis`].
    Redis,
    /// `kvstore_memory`: no Redis at all.
    Memory,
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
    /// The Redis server, in Redis mode.
    pub redis: Option<TestRedis>,
    /// The driver.
    pub driver: Driver,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
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

impl TestApp {
    /// Starts the app on `driver` with default test settings.
    pub async fn spawn(driver: Driver) -> Self {
        Self::spawn_with(driver, TestAppConfig::default()).await
    }

    /// Starts the app on `driver` with `config`.
    pub async fn spawn_with(driver: Driver, config: TestAppConfig) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let redis = match driver {
            Driver::Redis => Some(TestRedis::start().await),
            Driver::Memory => None,
        };
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
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
        match &redis {
            Some(redis) => {
                set("KV_DRIVER", "kvstore_redis".into());
                set("REDIS_ADDR", redis.addr());
            }
            None => set("KV_DRIVER", "kvstore_memory".into()),
        }
        for (k, v) in config.extra {
            set(k, v);
        }
        let env = Arc::new(env);
        let app = Application::build(AppOptions {
            config_path: services_yaml(),
            env: Some(Arc::new(move |name: &str| env.get(name).cloned())),
        })
        .await
        .unwrap_or_else(|e| panic!("the app must start: {e}"));
        let addr = app.local_addr().expect("a bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            addr,
            client: reqwest::Client::new(),
            redis,
            driver,
            stop: Some(stop),
            served: Some(served),
            _dir: dir,
        }
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

    /// Issues a code (dev echo) and verifies it: a new session id.
    pub async fn login(&self, user_id: i64) -> String {
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
        let body: Value = response.json().await.expect("JSON");
        body["session_id"]
            .as_str()
            .expect("a session id")
            .to_owned()
    }

    /// A counter of `/metrics`, e.g. `kv_cache_loads_total{cache="users"}`.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
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
