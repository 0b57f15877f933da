//! TLS towards Redis through rustls, against servers that speak only TLS
//! and require a client certificate (`tls-auth-clients yes`): a store with
//! the CA and the client certificate works (plain settings, a `rediss://`
//! URL, YAML, a TLS cluster); each way of getting TLS wrong fails with a
//! [`KvError::Unavailable`] naming the store, whose sources say why (the
//! handshake alert, the certificate error), within a bounded time.
//!
//! Sentinel over TLS is not covered: `TestSentinel` starts plain-text
//! servers only.
//!
//! The errors are printed (run with `--nocapture`):
//!
//! ```text
//! cargo test -p kv-module-tests --test tls -- --nocapture
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_module::config::{ConfigLoader, Expander};
use kv_module::registry::{ServiceRegistry, ServiceTypes, StoreRef};
use kv_module::session::{KvSessions, SessionConfig, SessionData, Sessions};
use kv_module::store::redis::TlsConfig;
use kv_module::store::{Script, ScriptValue};
use kv_module::{KvError, KvStore, KvStoreExt, RedisConfig, RedisStore, Ttl};
use kv_module_tests::error_chain::chain;
use kv_module_tests::{TestCerts, TestCluster, TestRedis, TlsClientAuth};

const STORE: &str = "tls_store";
/// What a failing open may take. Stores here keep the default deadlines
/// (which would allow 2 × 5 s connect + 2 s reply): each failure is an
/// answer — a reset, a TLS alert, a certificate the client rejects — and
/// must be reported as soon as it comes, not after a timeout.
const FAIL_BOUND: Duration = Duration::from_secs(2);

/// A mutual-TLS server with fresh certificates.
async fn server() -> (TestCerts, TestRedis) {
    let certs = TestCerts::generate();
    let redis = TestRedis::start_tls(&certs, TlsClientAuth::Required).await;
    (certs, redis)
}

/// The CA and the client certificate: what a store of `certs`' servers
/// needs.
fn mutual_tls(certs: &TestCerts) -> TlsConfig {
    TlsConfig::new()
        .with_ca_file(certs.ca_file())
        .with_client_cert(certs.client_cert_file(), certs.client_key_file())
}

/// Opens a store that must not open: returns the error, checked to be
/// [`KvError::Unavailable`] naming the store and its address, returned
/// within [`FAIL_BOUND`]; prints it with its sources.
async fn refused(label: &str, config: RedisConfig, addr: &str) -> KvError {
    let started = Instant::now();
    let result = RedisStore::open(STORE, config).await;
    let took = started.elapsed();
    let err = match result {
        Ok(store) => panic!("{label}: the store opened: {store:?}"),
        Err(err) => err,
    };
    println!("{label}: failed in {took:?}: {}", chain(&err));
    assert!(took <= FAIL_BOUND, "{label}: failing took {took:?}");
    assert!(
        matches!(err, KvError::Unavailable { .. }),
        "{label}: expected Unavailable: {err:?}"
    );
    assert_eq!(err.store(), STORE, "{label}");
    let message = err.to_string();
    assert!(
        message.contains(STORE) && message.contains(addr),
        "{label}: the message names the store and the address: {message}"
    );
    err
}

/// Adds one to KEYS[1] and returns it: a script round trip over TLS.
static INCREMENT: Script = Script::new("increment", "return redis.call('INCR', KEYS[1])", |run| {
    let key = run.key(0)?;
    let n = run
        .get(key)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        + 1;
    run.set_keep_ttl(key, n.to_string().as_bytes())?;
    Ok(ScriptValue::Int(n))
});

/// set, get and a script through a store that trusts the CA and presents
/// the client certificate; the values are on the server (read back with the
/// fixture's own TLS connection).
async fn works(store: &dyn KvStore, redis: &TestRedis, prefix: &str) {
    store
        .set("greeting", &"hello", Ttl::secs(60))
        .await
        .unwrap_or_else(|e| panic!("set over TLS: {}", chain(&e)));
    let read: Option<String> = store.get("greeting").await.expect("get over TLS");
    assert_eq!(read.as_deref(), Some("hello"));
    for expected in 1..=2 {
        let n = store
            .run_script(&INCREMENT, &["counter"], &[])
            .await
            .unwrap_or_else(|e| panic!("script over TLS: {}", chain(&e)));
        assert_eq!(n.as_int(), Some(expected));
    }
    let mut raw = redis.raw(0).await;
    let stored: String = redis::cmd("GET")
        .arg(format!("{prefix}:greeting"))
        .query_async(&mut raw)
        .await
        .expect("GET on the server");
    assert_eq!(stored, "\"hello\"");
}

#[tokio::test]
async fn mutual_tls_store_sets_gets_and_runs_scripts() {
    let (certs, redis) = server().await;
    let config = RedisConfig::new(redis.addr())
        .with_prefix("mtls")
        .with_tls(mutual_tls(&certs));
    let store = RedisStore::open(STORE, config)
        .await
        .unwrap_or_else(|e| panic!("open over mutual TLS: {}", chain(&e)));
    works(&store, &redis, "mtls").await;
    store.ping().await.expect("PING over TLS");
}

#[tokio::test]
async fn a_rediss_url_turns_tls_on() {
    let (certs, redis) = server().await;
    let url = format!("rediss://{}/0", redis.addr());
    assert_eq!(url, redis.url(0));
    let config = RedisConfig::from_url(&url)
        .with_prefix("url")
        .with_tls(mutual_tls(&certs));
    let store = RedisStore::open(STORE, config)
        .await
        .unwrap_or_else(|e| panic!("open with a rediss:// url: {}", chain(&e)));
    works(&store, &redis, "url").await;
}

/// The YAML of issue 10 (`url: rediss://…` and a `tls:` section with the
/// three files, from the environment) builds a working store.
#[tokio::test]
async fn yaml_with_a_rediss_url_and_tls_files_builds_a_working_store() {
    let (certs, redis) = server().await;
    let yaml = "
services:
  tls_store:
    type: kvstore_redis
    config:
      url: ${REDIS_URL}
      tls:
        ca_file: ${REDIS_CA_FILE}
        cert_file: ${REDIS_CERT_FILE}
        key_file: ${REDIS_KEY_FILE}
      command_timeout: 1s
      prefix: yaml
";
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let vars = [
        ("REDIS_URL", redis.url(0)),
        ("REDIS_CA_FILE", path(certs.ca_file())),
        ("REDIS_CERT_FILE", path(certs.client_cert_file())),
        ("REDIS_KEY_FILE", path(certs.client_key_file())),
    ];
    let loader = ConfigLoader::new().with_expander(Expander::new().with_env(move |name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.clone())
    }));
    let config = loader
        .load_str("services.yaml", yaml)
        .unwrap_or_else(|e| panic!("the YAML loads: {e}"));
    let registry = ServiceRegistry::build(&config, &ServiceTypes::builtin())
        .await
        .unwrap_or_else(|e| panic!("the registry builds: {e}"));
    let store = registry.store(STORE).expect("the store is registered");
    works(store.as_ref(), &redis, "yaml").await;
}

/// Plain text against the TLS port: the server drops the connection; the
/// store fails fast instead of waiting.
#[tokio::test]
async fn plain_text_against_the_tls_port_fails_fast_naming_the_store() {
    let (_certs, redis) = server().await;
    let config = RedisConfig::new(redis.addr());
    refused("plain text to a TLS port", config, &redis.addr()).await;
}

/// TLS without a client certificate: the server ends the handshake with
/// the `certificate required` alert, which the error's sources carry.
#[tokio::test]
async fn tls_without_a_client_certificate_is_refused_naming_the_store() {
    let (certs, redis) = server().await;
    let config =
        RedisConfig::new(redis.addr()).with_tls(TlsConfig::new().with_ca_file(certs.ca_file()));
    let err = refused("no client certificate", config, &redis.addr()).await;
    let why = chain(&err);
    assert!(
        why.contains("CertificateRequired"),
        "the handshake alert is in the error: {why}"
    );
}

/// A CA that did not sign the server's certificate: the store refuses the
/// server, and says it does not know the issuer.
#[tokio::test]
async fn an_unknown_ca_is_refused_naming_the_store() {
    let (certs, redis) = server().await;
    let tls = TlsConfig::new()
        .with_ca_file(certs.other_ca_file())
        .with_client_cert(certs.client_cert_file(), certs.client_key_file());
    let config = RedisConfig::new(redis.addr()).with_tls(tls);
    let err = refused("unknown CA", config, &redis.addr()).await;
    let why = chain(&err);
    assert!(
        why.contains("UnknownIssuer"),
        "the certificate error is in the error: {why}"
    );
}

/// A client certificate from another CA: the server refuses it with an
/// alert.
#[tokio::test]
async fn a_client_certificate_of_another_ca_is_refused_naming_the_store() {
    let (certs, redis) = server().await;
    let tls = TlsConfig::new()
        .with_ca_file(certs.ca_file())
        .with_client_cert(
            certs.other_client_cert_file(),
            certs.other_client_key_file(),
        );
    let config = RedisConfig::new(redis.addr()).with_tls(tls);
    let err = refused("client certificate of another CA", config, &redis.addr()).await;
    let why = chain(&err);
    assert!(
        why.contains("alert"),
        "the server's alert is in the error: {why}"
    );
}

/// A store on the shared TLS cluster (TLS on client ports, the bus and
/// replication): set, get, `keys` over every primary, and a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_serves_sets_gets_keys_and_sessions() {
    let cluster = TestCluster::shared_tls();
    let certs = cluster.certs().expect("a TLS cluster has certificates");
    let prefix = TestCluster::namespace();
    let config = RedisConfig::cluster(cluster.seed_nodes())
        .with_prefix(&prefix)
        .with_tls(mutual_tls(certs));
    let store: Arc<dyn KvStore> = Arc::new(
        RedisStore::open(STORE, config)
            .await
            .unwrap_or_else(|e| panic!("open on the TLS cluster: {}", chain(&e))),
    );

    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        store.set(key, &i, Ttl::secs(60)).await.expect("set");
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(store.get::<usize>(key).await.expect("get"), Some(i));
    }
    let mut primaries = Vec::new();
    for key in &keys {
        let primary = cluster.primary_for_key(&format!("{prefix}:{key}")).await;
        if !primaries.contains(&primary) {
            primaries.push(primary);
        }
    }
    assert_eq!(primaries.len(), 3, "the keys are on every primary");
    let mut found = store.keys("k*").await.expect("keys");
    found.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(found, expected);

    let sessions = KvSessions::new(store.clone(), SessionConfig::new(StoreRef::new(STORE)))
        .expect("valid session settings");
    let id = sessions
        .create(SessionData::new("ada@example.com"))
        .await
        .expect("create a session");
    let session = sessions.get(&id).await.expect("get the session");
    assert_eq!(
        session.map(|s| s.data.user_id).as_deref(),
        Some("ada@example.com")
    );
    store
        .delete_keys(&keys.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .expect("delete");
}

/// A cluster store without a client certificate: refused like a single
/// server, naming the store and the seed nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_without_a_client_certificate_is_refused_naming_the_store() {
    let cluster = TestCluster::shared_tls();
    let certs = cluster.certs().expect("a TLS cluster has certificates");
    let config = RedisConfig::cluster(cluster.seed_nodes())
        .with_tls(TlsConfig::new().with_ca_file(certs.ca_file()));
    let seeds = cluster.seed_nodes().join(",");
    let err = refused("cluster, no client certificate", config, &seeds).await;
    let why = chain(&err);
    assert!(
        why.contains("CertificateRequired"),
        "the handshake alert is in the error: {why}"
    );
}
