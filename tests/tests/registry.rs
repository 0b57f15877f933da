//! The service registry against a real `redis-server`: the reference's
//! three-store YAML, start-up failures, lookups, health and close.

use std::collections::BTreeMap;
use std::sync::Arc;

use kv_module::config::{ConfigLoader, Expander, LoadedConfig};
use kv_module::registry::{RegistryError, ServiceRegistry, ServiceState, ServiceTypes, StoreRef};
use kv_module::{KvStore, KvStoreExt, Ttl};
use kv_module_tests::TestRedis;

/// The reference's "Multiple KvStore Instances" YAML, as written there,
/// with `type: kvstore_redis` and the address of the test's server.
const THREE_STORES: &str = "
services:
  # User cache
  user_cache:
    type: kvstore_redis
    config:
      addr: ${REDIS_ADDR:localhost:6379}
      password: ${REDIS_PASSWORD}
      db: 0
      pool_size: 20
      prefix: users
  # Session cache
  session_cache:
    type: kvstore_redis
    config:
      addr: ${REDIS_ADDR:localhost:6379}
      password: ${REDIS_PASSWORD}
      db: 1
      pool_size: 20
      prefix: sessions
  # Rate limit cache
  ratelimit_cache:
    type: kvstore_redis
    config:
      addr: ${REDIS_ADDR:localhost:6379}
      password: ${REDIS_PASSWORD}
      db: 2
      pool_size: 20
      prefix: ratelimit
";

/// A loader whose environment is only `vars` (the test never reads or
/// changes the process environment).
fn loader(vars: &[(&str, &str)]) -> ConfigLoader {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ConfigLoader::new().with_expander(Expander::new().with_env(move |name| vars.get(name).cloned()))
}

fn load(redis: &TestRedis, yaml: &str) -> LoadedConfig {
    loader(&[("REDIS_ADDR", &redis.addr())])
        .load_str("services.yaml", yaml)
        .unwrap_or_else(|e| panic!("config must load: {e}"))
}

#[tokio::test]
async fn reference_three_stores_write_to_their_dbs_and_prefixes() {
    let redis = TestRedis::start().await;
    let config = load(&redis, THREE_STORES);
    let registry = ServiceRegistry::build(&config, &ServiceTypes::builtin())
        .await
        .unwrap();
    assert_eq!(
        registry.names(),
        ["ratelimit_cache", "session_cache", "user_cache"]
    );
    for (name, db, prefix) in [
        ("user_cache", 0, "users"),
        ("session_cache", 1, "sessions"),
        ("ratelimit_cache", 2, "ratelimit"),
    ] {
        let store = registry.store(name).unwrap();
        store.set("probe", &name, Ttl::secs(60)).await.unwrap();
        let mut raw = redis.raw(db).await;
        let keys: Vec<String> = redis::cmd("SCAN")
            .arg(0)
            .arg("COUNT")
            .arg(100)
            .query_async::<(u64, Vec<String>)>(&mut raw)
            .await
            .unwrap()
            .1;
        assert_eq!(keys, vec![format!("{prefix}:probe")], "db {db}");
        let value: String = redis::cmd("GET")
            .arg(format!("{prefix}:probe"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(value, format!("\"{name}\""));
    }
    registry.close().await;
    let err = registry
        .store("user_cache")
        .unwrap()
        .get::<String>("probe")
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "closed stores refuse work: {err:?}");
}

#[tokio::test]
async fn unreachable_redis_fails_naming_service_and_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = loader(&[("REDIS_ADDR", &addr)])
        .load_str("services.yaml", THREE_STORES)
        .unwrap();
    let err = ServiceRegistry::build(&config, &ServiceTypes::builtin())
        .await
        .unwrap_err();
    let message = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(matches!(err, RegistryError::Start { .. }), "{err:?}");
    assert!(
        message.contains("ratelimit_cache"),
        "first by name: {message}"
    );
    assert!(message.contains(&addr), "{message}");
    assert!(message.contains("services.yaml:"), "{message}");
}

#[tokio::test]
async fn lookups_name_what_exists() {
    let yaml = "
services:
  cache:
    type: kvstore_memory
    config: { db: 3, prefix: c, addr: ignored:1, pool_size: 20, password: x }
  flags:
    type: feature_flags
    config: { store: cache, defaults: { beta: true } }
";
    let config = loader(&[]).load_str("app.yaml", yaml).unwrap();
    let registry = ServiceRegistry::build(&config, &flag_types())
        .await
        .unwrap();

    let err = registry.store("nope").unwrap_err().to_string();
    assert!(
        err.contains("nope") && err.contains("cache") && err.contains("flags"),
        "{err}"
    );
    let err = registry.store("flags").unwrap_err().to_string();
    assert!(
        err.contains("flags") && err.contains("feature_flags"),
        "{err}"
    );
    let err = registry
        .store_for("visit_counter", &StoreRef::new("sessions"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("visit_counter") && err.contains("sessions"),
        "{err}"
    );

    let flags = registry.get::<FeatureFlags>("flags").unwrap();
    assert!(flags.enabled("beta").await);
    assert!(!flags.enabled("gamma").await);
    flags.set("gamma", true).await;
    assert!(flags.enabled("gamma").await);
    assert!(registry.get::<String>("flags").is_err());

    let health = registry.health().await;
    let states: Vec<(&str, &ServiceState)> =
        health.iter().map(|h| (h.name.as_str(), &h.state)).collect();
    assert_eq!(
        states,
        [
            ("cache", &ServiceState::Up),
            ("flags", &ServiceState::NotChecked)
        ]
    );
}

#[tokio::test]
async fn health_reports_down_and_latency() {
    let mut redis = TestRedis::start().await;
    let config = load(&redis, THREE_STORES);
    let registry = ServiceRegistry::build(&config, &ServiceTypes::builtin())
        .await
        .unwrap();
    let health = registry.health().await;
    assert!(
        health.iter().all(|h| h.state == ServiceState::Up),
        "{health:?}"
    );
    assert!(health.iter().all(|h| h.latency.as_nanos() > 0));
    redis.stop();
    let health = registry.health().await;
    assert!(
        health
            .iter()
            .all(|h| matches!(h.state, ServiceState::Down(_))),
        "{health:?}"
    );
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json[0]["name"], "ratelimit_cache");
    assert_eq!(json[0]["state"], "down");
}

#[tokio::test]
async fn bad_service_configs_fail_with_position_and_service() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "services:\n  cache:\n    type: kvstore_redis\n    config:\n      addr: h:1\n      db: 16\n",
            "6:11",
            "db must be between 0 and 15",
        ),
        (
            "services:\n  cache:\n    type: kvstore_redis\n    config:\n      addr: h:1\n      pool_size: 0\n",
            "6:18",
            "pool_size must be between 1",
        ),
        (
            "services:\n  cache:\n    type: kvstore_redis\n    config:\n      addr: h:1\n      poolsize: 3\n",
            "6:7",
            "poolsize",
        ),
        (
            "services:\n  cache:\n    type: kvstore_redis\n    config:\n      db: 1\n",
            "5:7",
            "one of `addr` or `url` is required",
        ),
        (
            "services:\n  cache:\n    type: kvstore_redis\n    config:\n      addr: h:1\n      response_timeout: 5 minutes\n",
            "6:25",
            "invalid duration",
        ),
        (
            "services:\n  cache:\n    type: kvstore_redis\n    config:\n      addr: h:1\n      near_cache:\n        mode: bcast\n",
            "7:15",
            "broadcast",
        ),
        (
            "services:\n  cache:\n    type: kvstore_redis\n    config:\n      mode: cluster\n      nodes: h:1\n      near_cache:\n        mode: broadcast\n",
            "5:7",
            "not available on a Redis Cluster",
        ),
        (
            "services:\n  cache:\n    type: kvstore_memcached\n",
            "3:11",
            "kvstore_memory, kvstore_redis",
        ),
    ];
    for (yaml, position, needle) in cases {
        let message = match loader(&[]).load_str("bad.yaml", yaml) {
            Err(e) => e.to_string(),
            Ok(config) => ServiceRegistry::build(&config, &ServiceTypes::builtin())
                .await
                .unwrap_err()
                .to_string(),
        };
        assert!(
            message.contains(&format!("bad.yaml:{position}"))
                && message.contains("cache")
                && message.contains(needle),
            "expected `bad.yaml:{position}` and `{needle}` in: {message}"
        );
    }
}

/// An application's own service type: feature flags kept in a named store.
struct FeatureFlags {
    store: Arc<dyn KvStore>,
    defaults: BTreeMap<String, bool>,
}

impl FeatureFlags {
    async fn enabled(&self, flag: &str) -> bool {
        match self.store.get::<bool>(&format!("flag:{flag}")).await {
            Ok(Some(value)) => value,
            _ => self.defaults.get(flag).copied().unwrap_or(false),
        }
    }

    async fn set(&self, flag: &str, value: bool) {
        self.store
            .set(&format!("flag:{flag}"), &value, Ttl::Never)
            .await
            .unwrap();
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureFlagsConfig {
    store: StoreRef,
    #[serde(default)]
    defaults: BTreeMap<String, bool>,
}

fn flag_types() -> ServiceTypes {
    ServiceTypes::builtin()
        .with_service_type(
            "feature_flags",
            |ctx, config: FeatureFlagsConfig| async move {
                Ok(Arc::new(FeatureFlags {
                    store: ctx.store(&config.store)?,
                    defaults: config.defaults,
                }))
            },
        )
        .unwrap()
}

#[tokio::test]
async fn custom_type_naming_a_missing_store_is_a_startup_error() {
    let yaml = "services:\n  flags:\n    type: feature_flags\n    config: { store: nowhere }\n";
    let config = loader(&[]).load_str("app.yaml", yaml).unwrap();
    let err = ServiceRegistry::build(&config, &flag_types())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("nowhere") && message.contains("flags"),
        "{message}"
    );
    let duplicate = ServiceTypes::builtin()
        .with_service_type("kvstore_redis", |_, _: ()| async { Ok(Arc::new(0_u8)) });
    assert!(matches!(
        duplicate,
        Err(RegistryError::DuplicateType { .. })
    ));
}

/// Every `kvstore_memory` service built from one `ServiceTypes` value is
/// on one `MemoryServer`, as stores on one `redis-server` are: same `db`
/// and prefix, same keys; another `db`, another keyspace. A registry built
/// again from that value sees the data, one from a fresh `builtin()` does
/// not.
#[tokio::test]
async fn memory_services_of_one_types_value_share_one_server() {
    let yaml = "
services:
  a: { type: kvstore_memory, config: { db: 2, prefix: p } }
  b: { type: kvstore_memory, config: { db: 2, prefix: p } }
  c: { type: kvstore_memory, config: { db: 3, prefix: p } }
";
    let config = loader(&[]).load_str("app.yaml", yaml).unwrap();
    let types = ServiceTypes::builtin();
    let registry = ServiceRegistry::build(&config, &types).await.unwrap();
    let store = |name| registry.store(name).unwrap();
    store("a").set("k", "v", Ttl::Never).await.unwrap();
    assert_eq!(
        store("b").get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    assert_eq!(store("c").get::<String>("k").await.unwrap(), None);
    registry.close().await;

    let again = ServiceRegistry::build(&config, &types).await.unwrap();
    let b = again.store("b").unwrap();
    assert_eq!(b.get::<String>("k").await.unwrap().as_deref(), Some("v"));
    let fresh = ServiceRegistry::build(&config, &ServiceTypes::builtin())
        .await
        .unwrap();
    let b = fresh.store("b").unwrap();
    assert_eq!(b.get::<String>("k").await.unwrap(), None);
}

/// `insert_store_type` swaps a built-in type for a double (no server is
/// running here), where `with_store_type` refuses a taken name.
#[tokio::test]
async fn a_builtin_type_can_be_replaced_but_not_registered_twice() {
    let mut types = ServiceTypes::builtin();
    types.insert_store_type(
        "kvstore_redis",
        |ctx, _: serde::de::IgnoredAny| async move {
            let store = kv_module::MemoryStore::new(ctx.name(), "double");
            Ok(Arc::new(store) as Arc<dyn KvStore>)
        },
    );
    assert_eq!(types.names(), ["kvstore_memory", "kvstore_redis"]);
    let config = loader(&[("REDIS_ADDR", "127.0.0.1:1")])
        .load_str("services.yaml", THREE_STORES)
        .unwrap();
    let registry = ServiceRegistry::build(&config, &types).await.unwrap();
    let users = registry.store("user_cache").unwrap();
    users.set("k", &1_i64, Ttl::Never).await.unwrap();
    assert_eq!(users.get::<i64>("k").await.unwrap(), Some(1));

    let taken = types.with_store_type(
        "kvstore_memory",
        |ctx, _: serde::de::IgnoredAny| async move {
            Ok(Arc::new(kv_module::MemoryStore::new(ctx.name(), "")) as Arc<dyn KvStore>)
        },
    );
    assert!(matches!(taken, Err(RegistryError::DuplicateType { .. })));
}
