//! The `near_cache:` option of `kvstore_redis`: sizes written `64MiB`,
//! `512KiB` or as plain integers, durations as elsewhere; every mistake a
//! start-up error located in the file and naming the service; accepted in
//! every mode; accepted and ignored by the memory driver.

use std::time::Duration;

use kv_module::config::{ConfigError, ConfigLoader, LoadedConfig};
use kv_module::registry::{RegistryError, ServiceRegistry, ServiceTypes};
use kv_module::{NearCacheConfig, RedisConfig};

fn store_yaml(driver: &str, config: &str) -> String {
    format!("services:\n  user_cache:\n    type: {driver}\n    config:\n{config}")
}

fn load(text: &str) -> LoadedConfig {
    ConfigLoader::new()
        .load_str("app.yaml", text)
        .unwrap_or_else(|e| panic!("the YAML itself is valid: {e}"))
}

fn redis_config(config: &str) -> RedisConfig {
    load(&store_yaml("kvstore_redis", config))
        .service("user_cache")
        .expect("service")
        .config()
        .unwrap_or_else(|e| panic!("valid config: {e}"))
}

/// The error of building a registry from `config`, which must fail before
/// connecting (nothing listens at 127.0.0.1:1).
async fn start_error(config: &str) -> String {
    let loaded = load(&store_yaml("kvstore_redis", config));
    match ServiceRegistry::build(&loaded, &ServiceTypes::builtin()).await {
        Ok(_) => panic!("expected a start-up error for:\n{config}"),
        Err(err) => {
            assert!(
                matches!(err, RegistryError::Config(ConfigError::Invalid { .. })),
                "a configuration mistake, found before connecting: {err:?}"
            );
            err.to_string()
        }
    }
}

#[track_caller]
fn assert_names(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[test]
fn sizes_with_binary_units_or_plain_bytes() {
    let config = redis_config(
        "      addr: 127.0.0.1:1\n      near_cache:\n        max_bytes: 64MiB\n        ttl: 30s\n",
    );
    assert_eq!(
        config.near_cache,
        Some(
            NearCacheConfig::new()
                .with_max_bytes(64 << 20)
                .with_ttl(Duration::from_secs(30))
        )
    );
    let config = redis_config(
        "      addr: 127.0.0.1:1\n      near_cache:\n        max_bytes: 512KiB\n        ttl: 1m\n",
    );
    let near = config.near_cache.expect("near cache on");
    assert_eq!(
        (near.max_bytes, near.ttl),
        (512 << 10, Duration::from_secs(60))
    );
    let config =
        redis_config("      addr: 127.0.0.1:1\n      near_cache:\n        max_bytes: 1000000\n");
    assert_eq!(config.near_cache.map(|n| n.max_bytes), Some(1_000_000));
}

#[test]
fn empty_near_cache_takes_the_defaults_and_absent_is_off() {
    let config = redis_config("      addr: 127.0.0.1:1\n      near_cache: {}\n");
    assert_eq!(config.near_cache, Some(NearCacheConfig::default()));
    let config = redis_config("      addr: 127.0.0.1:1\n");
    assert_eq!(config.near_cache, None);
}

#[tokio::test]
async fn bad_values_are_located_errors() {
    let cases = [
        ("max_bytes: 64MB", "invalid size `64MB`"),
        ("max_bytes: -1", "size must not be negative"),
        (
            "max_bytes: 0",
            "near_cache.max_bytes must be greater than zero",
        ),
        ("ttl: 30", "invalid duration `30`"),
        ("ttl: 0s", "near_cache.ttl must be greater than zero"),
        ("max_entries: 10", "unknown field `max_entries`"),
    ];
    for (line, expected) in cases {
        let message = start_error(&format!(
            "      addr: 127.0.0.1:1\n      near_cache:\n        {line}\n"
        ))
        .await;
        assert_names(&message, &["app.yaml:", "user_cache", expected]);
        let position: Vec<&str> = message.splitn(4, ':').collect();
        assert!(
            position[1].parse::<usize>().is_ok() && position[2].parse::<usize>().is_ok(),
            "`file:line:col` for {line}: {message}"
        );
    }
}

#[test]
fn accepted_on_a_cluster_and_behind_sentinels() {
    for mode in [
        "      mode: cluster\n      nodes: 127.0.0.1:1\n",
        "      mode: sentinel\n      nodes: 127.0.0.1:1\n      master_name: m\n",
    ] {
        let config = redis_config(&format!(
            "{mode}      near_cache:\n        max_bytes: 1MiB\n"
        ));
        assert_eq!(config.near_cache.map(|n| n.max_bytes), Some(1 << 20));
    }
}

/// One file serves both drivers: the memory driver has no round trip to
/// save and ignores `near_cache:`.
#[tokio::test]
async fn the_memory_driver_ignores_it() {
    let text = store_yaml(
        "kvstore_memory",
        "      prefix: users\n      near_cache:\n        max_bytes: 64MiB\n        ttl: 30s\n",
    );
    let registry = ServiceRegistry::build(&load(&text), &ServiceTypes::builtin())
        .await
        .unwrap_or_else(|e| panic!("the memory driver ignores near_cache: {e}"));
    let store = registry.store("user_cache").expect("store");
    assert_eq!(store.prefix(), "users");
    registry.close().await;
}
