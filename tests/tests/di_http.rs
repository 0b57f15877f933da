//! Dependency injection end to end over HTTP: an application's own service
//! type built by the registry, and a shaku component whose store is the
//! named instance its YAML chooses, reached by an axum handler through
//! `shaku_axum::Inject`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use kv_module::config::{ConfigError, ConfigLoader, Expander, LoadedConfig};
use kv_module::registry::{RegistryError, ServiceRegistry, ServiceTypes, StoreRef};
use kv_module::{KvError, KvStore, KvStoreExt, Ttl};
use kv_module_tests::TestRedis;
use shaku::{Component, HasComponent, Interface, module};
use shaku_axum::Inject;

/// A component interface: counts visits of a page.
#[async_trait]
trait VisitCounter: Interface {
    async fn hit(&self, page: &str) -> Result<i64, KvError>;
}

/// The component: its store is a shaku parameter, resolved from the YAML
/// (`components.visit_counter.store`) before the module is built.
#[derive(Component)]
#[shaku(interface = VisitCounter)]
struct KvVisitCounter {
    store: Arc<dyn KvStore>,
}

#[async_trait]
impl VisitCounter for KvVisitCounter {
    async fn hit(&self, page: &str) -> Result<i64, KvError> {
        self.store.incr_by(&format!("visits:{page}"), 1).await
    }
}

/// A second interface, implemented by the application's own service type.
#[async_trait]
trait Greeter: Interface {
    async fn greet(&self, name: &str) -> Result<String, KvError>;
}

/// The `greeter` service type: a greeting from configuration, and a store
/// remembering who was greeted.
struct StoreGreeter {
    greeting: String,
    store: Arc<dyn KvStore>,
}

#[async_trait]
impl Greeter for StoreGreeter {
    async fn greet(&self, name: &str) -> Result<String, KvError> {
        self.store
            .set(&format!("greeted:{name}"), &true, Ttl::secs(60))
            .await?;
        Ok(format!("{}, {name}!", self.greeting))
    }
}

/// Hands the registry's `greeter` service to shaku: a component whose
/// parameter is the instance the registry built.
#[derive(Component)]
#[shaku(interface = Greeter)]
struct GreeterComponent {
    service: Arc<StoreGreeter>,
}

#[async_trait]
impl Greeter for GreeterComponent {
    async fn greet(&self, name: &str) -> Result<String, KvError> {
        self.service.greet(name).await
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GreeterConfig {
    greeting: String,
    store: StoreRef,
}

module! {
    AppModule {
        components = [KvVisitCounter, GreeterComponent],
        providers = []
    }
}

/// The application's own configuration section for its components.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Components {
    visit_counter: ComponentStore,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentStore {
    store: StoreRef,
}

const APP_YAML: &str = "
services:
  user_cache:
    type: kvstore_redis
    config: { addr: '${REDIS_ADDR}', db: 0, prefix: users }
  counter_cache:
    type: kvstore_redis
    config: { addr: '${REDIS_ADDR}', db: 3, prefix: counters }
  greeter:
    type: greeter
    config: { greeting: Hello, store: user_cache }
components:
  visit_counter:
    store: counter_cache
";

fn load(yaml: &str, addr: &str) -> Result<LoadedConfig, ConfigError> {
    let addr = addr.to_owned();
    ConfigLoader::new()
        .with_expander(
            Expander::new().with_env(move |name| (name == "REDIS_ADDR").then(|| addr.clone())),
        )
        .load_str("app.yaml", yaml)
}

fn types() -> ServiceTypes {
    ServiceTypes::builtin()
        .with_service_type("greeter", |ctx, config: GreeterConfig| async move {
            Ok(Arc::new(StoreGreeter {
                greeting: config.greeting,
                store: ctx.store(&config.store)?,
            }))
        })
        .expect("greeter is a new type")
}

/// Wiring: every lookup happens before `build()`, so a bad name is an
/// error here and never a panic inside shaku.
async fn wire(config: &LoadedConfig) -> Result<(ServiceRegistry, AppModule), RegistryError> {
    let registry = ServiceRegistry::build(config, &types()).await?;
    let components: Components =
        config
            .section("components")?
            .ok_or_else(|| RegistryError::UnknownService {
                name: "components".into(),
                wanted_by: None,
                known: vec![],
            })?;
    let module = AppModule::builder()
        .with_component_parameters::<KvVisitCounter>(KvVisitCounterParameters {
            store: registry.store_for("visit_counter", &components.visit_counter.store)?,
        })
        .with_component_parameters::<GreeterComponent>(GreeterComponentParameters {
            service: registry.get::<StoreGreeter>("greeter")?,
        })
        .build();
    Ok((registry, module))
}

async fn visit(
    counter: Inject<AppModule, dyn VisitCounter>,
    Path(page): Path<String>,
) -> Result<String, StatusCode> {
    counter
        .hit(&page)
        .await
        .map(|n| n.to_string())
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

async fn greet(
    greeter: Inject<AppModule, dyn Greeter>,
    Path(name): Path<String>,
) -> Result<String, StatusCode> {
    greeter
        .greet(&name)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

async fn health(State(module): State<Arc<AppModule>>) -> &'static str {
    let _: &dyn VisitCounter = module.resolve_ref();
    "ok"
}

fn app(module: AppModule) -> Router {
    Router::new()
        .route("/visits/{page}", post(visit))
        .route("/greet/{name}", get(greet))
        .route("/health", get(health))
        .with_state(Arc::new(module))
}

#[tokio::test]
async fn component_and_custom_service_work_over_http() {
    let redis = TestRedis::start().await;
    let config = load(APP_YAML, &redis.addr()).unwrap();
    let (registry, module) = wire(&config).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app(module)).await });
    let client = reqwest::Client::new();

    for expected in 1..=3 {
        let response = client
            .post(format!("{base}/visits/home"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), expected.to_string());
    }
    let response = client
        .get(format!("{base}/greet/Ada"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Hello, Ada!");
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The component wrote to the store its YAML chose: db 3, prefix counters.
    let mut db3 = redis.raw(3).await;
    let count: i64 = redis::cmd("GET")
        .arg("counters:visits:home")
        .query_async(&mut db3)
        .await
        .unwrap();
    assert_eq!(count, 3);
    // The custom service wrote to user_cache: db 0, prefix users.
    let mut db0 = redis.raw(0).await;
    let greeted: Option<String> = redis::cmd("GET")
        .arg("users:greeted:Ada")
        .query_async(&mut db0)
        .await
        .unwrap();
    assert_eq!(greeted.as_deref(), Some("true"));

    server.abort();
    registry.close().await;
}

#[tokio::test]
async fn a_component_naming_a_missing_or_wrong_store_fails_at_startup() {
    let redis = TestRedis::start().await;
    let missing = APP_YAML.replace("store: counter_cache", "store: nowhere");
    let err = wire(&load(&missing, &redis.addr()).unwrap())
        .await
        .err()
        .expect("must fail");
    let message = err.to_string();
    assert!(
        message.contains("visit_counter") && message.contains("nowhere"),
        "{message}"
    );
    assert!(
        message.contains("counter_cache") && message.contains("user_cache"),
        "lists known: {message}"
    );

    let wrong_kind = APP_YAML.replace("store: counter_cache", "store: greeter");
    let err = wire(&load(&wrong_kind, &redis.addr()).unwrap())
        .await
        .err()
        .expect("must fail");
    assert!(matches!(err, RegistryError::WrongKind { .. }), "{err:?}");
}
