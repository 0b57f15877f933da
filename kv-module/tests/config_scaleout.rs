//! The cluster, Sentinel and TLS settings of `kvstore_redis`: every mistake
//! is a start-up error located in the file and naming the service, found
//! before any connection is tried; the memory driver accepts the same
//! fields; the example app's cluster file stays in step with the default
//! one.

use std::collections::BTreeMap;
use std::path::Path;

use kv_module::config::{ConfigError, ConfigLoader, Expander, LoadedConfig};
use kv_module::registry::{RegistryError, ServiceRegistry, ServiceTypes};
use kv_module::{RedisConfig, RedisMode};

fn loader(vars: &[(&str, &str)]) -> ConfigLoader {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ConfigLoader::new().with_expander(Expander::new().with_env(move |name| vars.get(name).cloned()))
}

fn store_yaml(config: &str) -> String {
    format!("services:\n  session_cache:\n    type: kvstore_redis\n    config:\n{config}")
}

/// The error of building a registry from `config` (the `config:` lines of
/// service `session_cache`), which must fail before connecting: nothing
/// listens at the addresses used here.
async fn start_error(config: &str) -> String {
    let loaded = loader(&[])
        .load_str("app.yaml", &store_yaml(config))
        .unwrap_or_else(|e| panic!("the YAML itself is valid: {e}"));
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

/// Located: `app.yaml:5:7` is where the `config:` mapping starts.
const LOCATED: [&str; 2] = ["app.yaml:5:7", "session_cache"];

#[tokio::test]
async fn cluster_without_nodes() {
    let message = start_error("      mode: cluster\n      prefix: sessions\n").await;
    assert_names(&message, &LOCATED);
    assert_names(&message, &["`nodes` is required in cluster mode"]);
}

#[tokio::test]
async fn sentinel_without_nodes_or_master_name() {
    let message = start_error("      mode: sentinel\n      master_name: mymaster\n").await;
    assert_names(&message, &LOCATED);
    assert_names(&message, &["`nodes` is required in sentinel mode"]);
    let message = start_error("      mode: sentinel\n      nodes: 127.0.0.1:1\n").await;
    assert_names(&message, &LOCATED);
    assert_names(&message, &["`master_name` is required in sentinel mode"]);
}

#[tokio::test]
async fn cluster_with_a_database_other_than_zero() {
    let message =
        start_error("      mode: cluster\n      nodes: 127.0.0.1:1,127.0.0.1:2\n      db: 1\n")
            .await;
    assert_names(&message, &LOCATED);
    assert_names(&message, &["db 1", "only database 0", "prefix"]);
}

#[tokio::test]
async fn fields_of_another_mode() {
    let message = start_error("      addr: 127.0.0.1:1\n      nodes: [127.0.0.1:2]\n").await;
    assert_names(&message, &LOCATED);
    assert_names(&message, &["`nodes` is for `mode: cluster`"]);
    let message = start_error("      mode: cluster\n      addr: 127.0.0.1:1\n").await;
    assert_names(&message, &["`addr` and `url` are for a standalone server"]);
    let message = start_error("      addr: 127.0.0.1:1\n      master_name: m\n").await;
    assert_names(&message, &["`master_name` is for `mode: sentinel`"]);
    let message = start_error("      mode: clustre\n      nodes: 127.0.0.1:1\n").await;
    assert_names(
        &message,
        &[
            "app.yaml:5:13",
            "config.mode",
            "expected one of `standalone`, `cluster`, `sentinel`",
        ],
    );
}

#[tokio::test]
async fn unreadable_and_invalid_certificate_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing-ca.pem");
    let message = start_error(&format!(
        "      addr: 127.0.0.1:1\n      tls:\n        ca_file: {}\n",
        missing.display()
    ))
    .await;
    assert_names(&message, &LOCATED);
    assert_names(
        &message,
        &["tls.ca_file", &missing.display().to_string(), "cannot read"],
    );

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    let message = start_error(&format!(
        "      mode: cluster\n      nodes: 127.0.0.1:1\n      tls:\n        ca_file: {}\n",
        junk.display()
    ))
    .await;
    assert_names(&message, &["tls.ca_file", "holds no PEM certificate"]);

    let broken = dir.path().join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").expect("write");
    let message = start_error(&format!(
        "      addr: 127.0.0.1:1\n      tls:\n        ca_file: {}\n",
        broken.display()
    ))
    .await;
    assert_names(&message, &["tls.ca_file", "is not a valid PEM file"]);

    let message = start_error(&format!(
        "      addr: 127.0.0.1:1\n      tls:\n        cert_file: {}\n",
        junk.display()
    ))
    .await;
    assert_names(&message, &["tls.cert_file and tls.key_file go together"]);
}

#[tokio::test]
async fn tls_with_a_plain_text_url() {
    let message = start_error("      url: redis://127.0.0.1:1/0\n      tls: {}\n").await;
    assert_names(&message, &LOCATED);
    assert_names(&message, &["`tls` is set but the URL says redis://"]);
    let message =
        start_error("      mode: cluster\n      nodes: [\"redis://127.0.0.1:1\"]\n      tls: {}\n")
            .await;
    assert_names(&message, &["`tls` is set but the URL says redis://"]);
}

/// `nodes` is a YAML list or one comma-separated string (one `${VAR}`),
/// with spaces and empty items ignored; `mode` may come from a variable.
#[test]
fn nodes_as_list_or_comma_separated_string() {
    let text = store_yaml(
        "      mode: ${REDIS_MODE:cluster}\n      nodes: ${REDIS_NODES}\n      prefix: s\n",
    );
    let loaded = loader(&[("REDIS_NODES", " 10.0.0.1:7000, 10.0.0.2:7001,,")])
        .load_str("app.yaml", &text)
        .expect("loads");
    let config: RedisConfig = service_config(&loaded);
    assert_eq!(config.mode, RedisMode::Cluster);
    assert_eq!(config.nodes, ["10.0.0.1:7000", "10.0.0.2:7001"]);

    let text = store_yaml(
        "      mode: sentinel\n      master_name: m\n      nodes:\n        - a:26379\n        - b:26379\n",
    );
    let config: RedisConfig =
        service_config(&loader(&[]).load_str("app.yaml", &text).expect("loads"));
    assert_eq!(config.mode, RedisMode::Sentinel);
    assert_eq!(config.nodes, ["a:26379", "b:26379"]);
    assert_eq!(config.master_name.as_deref(), Some("m"));
}

fn service_config(loaded: &LoadedConfig) -> RedisConfig {
    loaded
        .service("session_cache")
        .expect("service")
        .config()
        .unwrap_or_else(|e| panic!("valid config: {e}"))
}

/// One file serves both drivers: `kvstore_memory` accepts and ignores
/// every connection field of `kvstore_redis`.
#[tokio::test]
async fn memory_driver_ignores_scale_out_fields() {
    let text = "
services:
  session_cache:
    type: kvstore_memory
    config:
      mode: sentinel
      nodes: 127.0.0.1:1,127.0.0.1:2
      master_name: mymaster
      sentinel_password: ${REDIS_SENTINEL_PASSWORD}
      password: pw
      tls:
        ca_file: /nonexistent/ca.pem
        cert_file: /nonexistent/c.pem
        key_file: /nonexistent/k.pem
      command_timeout: 1s
      prefix: sessions
";
    let loaded = loader(&[]).load_str("app.yaml", text).expect("loads");
    let registry = ServiceRegistry::build(&loaded, &ServiceTypes::builtin())
        .await
        .unwrap_or_else(|e| panic!("the memory driver ignores the fields: {e}"));
    let store = registry.store("session_cache").expect("store");
    assert_eq!(store.prefix(), "sessions");
    registry.close().await;
}

/// The example app's cluster configuration differs from the default one
/// only in its `services:` (so the components cannot drift apart), keeps
/// the three store names and prefixes, and starts on the memory driver.
#[tokio::test]
async fn example_cluster_config_matches_the_default_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("config");
    let read = |name: &str| {
        std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let after_services = |text: &str| {
        let start = text
            .find("# Components and the store each one uses.")
            .expect("the components section");
        text[start..].to_owned()
    };
    let default = read("services.yaml");
    let cluster = read("services.cluster.yaml");
    assert_eq!(after_services(&default), after_services(&cluster));

    let loaded = loader(&[("REDIS_NODES", "127.0.0.1:7000,127.0.0.1:7001")])
        .load_str("services.cluster.yaml", &cluster)
        .expect("loads");
    for (name, prefix) in [
        ("user_cache", "users"),
        ("session_cache", "sessions"),
        ("ratelimit_cache", "ratelimit"),
    ] {
        let config: RedisConfig = loaded
            .service(name)
            .expect("store")
            .config()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.mode, RedisMode::Cluster, "{name}");
        assert_eq!(config.nodes, ["127.0.0.1:7000", "127.0.0.1:7001"], "{name}");
        assert_eq!(config.db, Some(0), "{name}");
        assert_eq!(config.prefix, prefix, "{name}");
    }
    let memory = loader(&[("KV_DRIVER", "kvstore_memory")])
        .load_str("services.cluster.yaml", &cluster)
        .expect("loads");
    let registry = ServiceRegistry::build(&memory, &ServiceTypes::builtin())
        .await
        .unwrap_or_else(|e| panic!("starts on the memory driver: {e}"));
    registry.close().await;
}
