//! Tests of the scale-out fixtures: [`TestCluster`], [`TestSentinel`],
//! TLS servers, freezing, and the supervisor that kills servers when the
//! test process dies. Start-up and failover times are printed (run with
//! `--nocapture` to see them).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kv_module_tests::process::ServerProcess;
use kv_module_tests::{
    Role, SentinelAuth, TestCerts, TestCluster, TestRedis, TestSentinel, TlsClientAuth,
};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

/// The port of the developer's own Redis, which the fixtures must not use.
const USER_REDIS_PORT: u16 = 6379;
/// Set in the child process of [`servers_die_with_the_test_process`].
const ORPHAN_CHILD_ENV: &str = "KV_MODULE_TESTS_ORPHAN_CHILD";
/// How long a call to a frozen server may take to fail: redis-rs' default
/// response timeout is 500 ms, connect 1 s.
const FROZEN_ANSWER_BOUND: Duration = Duration::from_secs(3);
/// What a failover after SIGSTOP may take (notes: cluster 2.5 s, sentinel
/// 3.2 s); the assertion is looser than the measured times, for a loaded
/// machine.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);

async fn ping(conn: &mut MultiplexedConnection) -> redis::RedisResult<String> {
    redis::cmd("PING").query_async(conn).await
}

/// `PING` on a fresh connection to `client`, failing fast.
async fn ping_client(client: &redis::Client) -> redis::RedisResult<String> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    ping(&mut conn).await
}

/// Whether a process with `pid` exists (`kill -0`, via the shell builtin).
fn process_exists(pid: u32) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(r#"kill -0 "$1" 2>/dev/null"#)
        .arg("sh")
        .arg(pid.to_string())
        .status()
        .expect("run sh")
        .success()
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
async fn eventually(what: &str, timeout: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- TestRedis: ports, freeze, TLS ----------------------------------------

#[tokio::test]
async fn ports_are_below_the_ephemeral_range_with_a_free_bus_port() {
    let redis = TestRedis::start().await;
    assert!((10_000..22_768).contains(&redis.port()), "{}", redis.port());
    assert_ne!(redis.port(), USER_REDIS_PORT);
    let pid = redis.pid();
    assert!(process_exists(pid));
    let mut raw = redis.raw(0).await;
    let info: redis::InfoDict = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut raw)
        .await
        .expect("INFO");
    assert_eq!(
        info.get::<u32>("process_id"),
        Some(pid),
        "pid() is the server's own pid, not its supervisor's"
    );
}

#[tokio::test]
async fn freeze_stops_answers_and_thaw_resumes_them() {
    let mut redis = TestRedis::start().await;
    let mut before = redis.raw(0).await;

    redis.freeze();
    assert!(redis.is_frozen());
    let asked = Instant::now();
    assert!(
        ping(&mut before).await.is_err(),
        "a frozen server must not answer"
    );
    let client = redis.client(0);
    assert!(ping_client(&client).await.is_err());
    assert!(
        asked.elapsed() < FROZEN_ANSWER_BOUND,
        "failing against a frozen server took {:?}",
        asked.elapsed()
    );

    redis.thaw();
    assert!(!redis.is_frozen());
    assert_eq!(ping_client(&client).await.expect("PING after thaw"), "PONG");
    redis.thaw(); // thawing a running server is a no-op
}

#[tokio::test]
async fn a_frozen_server_is_killed_on_drop() {
    let mut redis = TestRedis::start().await;
    let (pid, client) = (redis.pid(), redis.client(0));
    redis.freeze();
    drop(redis);

    assert!(!process_exists(pid), "the frozen server was not reaped");
    assert!(ping_client(&client).await.is_err());
}

#[tokio::test]
async fn tls_server_requires_the_client_certificate() {
    let certs = TestCerts::generate();
    let started = Instant::now();
    let redis = TestRedis::start_tls(&certs, TlsClientAuth::Required).await;
    println!("TLS server ready in {:?}", started.elapsed());
    assert!(redis.is_tls());
    assert_eq!(redis.url(0), format!("rediss://{}/0", redis.addr()));

    // The fixture's own connection presents the client certificate.
    let mut raw = redis.raw(0).await;
    assert_eq!(ping(&mut raw).await.expect("PING over TLS"), "PONG");
    let with_cert =
        redis::Client::build_with_tls(redis.url(0), certs.tls_certificates()).expect("TLS client");
    assert_eq!(ping_client(&with_cert).await.expect("mTLS"), "PONG");

    let plain = redis::Client::open(format!("redis://{}/0", redis.addr())).expect("URL");
    assert!(
        ping_client(&plain).await.is_err(),
        "plain text must be refused"
    );
    let without_cert =
        redis::Client::build_with_tls(redis.url(0), certs.tls_certificates_without_client_cert())
            .expect("TLS client");
    assert!(
        ping_client(&without_cert).await.is_err(),
        "a client without a certificate must be refused"
    );
    let other_ca =
        redis::Client::build_with_tls(redis.url(0), certs.tls_certificates_of_other_ca())
            .expect("TLS client");
    assert!(
        ping_client(&other_ca).await.is_err(),
        "a client trusting another CA must refuse the server"
    );
}

#[tokio::test]
async fn tls_server_with_optional_client_auth_accepts_clients_without_a_certificate() {
    let certs = TestCerts::generate();
    let mut redis = TestRedis::start_tls(&certs, TlsClientAuth::Optional).await;
    let without_cert =
        redis::Client::build_with_tls(redis.url(0), certs.tls_certificates_without_client_cert())
            .expect("TLS client");
    assert_eq!(ping_client(&without_cert).await.expect("TLS"), "PONG");

    // The certificate files outlive `certs` for a restart.
    drop(certs);
    redis.restart().await;
    assert_eq!(ping_client(&without_cert).await.expect("TLS"), "PONG");
}

#[test]
fn certificates_are_pem_files_in_one_directory() {
    let certs = TestCerts::generate();
    for path in [
        certs.ca_file(),
        certs.cert_file(),
        certs.client_cert_file(),
        certs.other_ca_file(),
        certs.other_client_cert_file(),
    ] {
        let pem = std::fs::read_to_string(&path).expect("readable");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{path:?}");
        assert_eq!(path.parent(), Some(certs.dir()));
    }
    for path in [
        certs.key_file(),
        certs.client_key_file(),
        certs.other_client_key_file(),
    ] {
        let pem = std::fs::read_to_string(&path).expect("readable");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{path:?}");
    }
    assert_ne!(certs.ca_pem(), certs.other_ca_pem());
}

// ---- The supervisor ---------------------------------------------------------

/// Runs this test binary again as a child that starts a [`TestRedis`] (and
/// forgets it) and the [`TestCluster::shared`] cluster (in a `static`),
/// then is SIGKILLed: every server must die and every temporary directory
/// go with it.
#[tokio::test]
async fn servers_die_with_the_test_process() {
    let mut child = ChildGuard(
        Command::new(std::env::current_exe().expect("current exe"))
            .args(["orphan_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(ORPHAN_CHILD_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child test process"),
    );
    let stdout = child.0.stdout.take().expect("piped");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut servers: Vec<(u32, u16, String)> = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the child reports its servers");
        // libtest may have printed `test orphan_child ... ` on the line.
        if line.ends_with("orphan-ready") {
            break;
        }
        if let Some((_, server)) = line.split_once("orphan-server ") {
            let mut fields = server.split(' ');
            let mut next = || fields.next().expect("pid port dir").to_owned();
            servers.push((
                next().parse().expect("pid"),
                next().parse().expect("port"),
                next(),
            ));
        }
    }
    assert_eq!(servers.len(), 7, "one TestRedis and six cluster nodes");
    for (pid, _, _) in &servers {
        assert!(process_exists(*pid));
    }

    child.0.kill().expect("SIGKILL the child");
    child.0.wait().expect("reap the child");

    for (pid, port, dir) in servers {
        eventually(
            &format!("server {pid} on port {port} to die with its test process"),
            Duration::from_secs(10),
            async || !process_exists(pid),
        )
        .await;
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).expect("URL");
        assert!(ping_client(&client).await.is_err(), "port {port} answers");
        eventually(
            &format!("{dir} to be removed"),
            Duration::from_secs(10),
            async || !std::path::Path::new(&dir).exists(),
        )
        .await;
    }
}

/// Kills the child test process if the parent test fails before it does.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child of [`servers_die_with_the_test_process`]; does nothing in a
/// normal run.
#[tokio::test]
async fn orphan_child() {
    if std::env::var_os(ORPHAN_CHILD_ENV).is_none() {
        return;
    }
    let redis = TestRedis::start().await;
    println!(
        "orphan-server {} {} {}",
        redis.pid(),
        redis.port(),
        redis.dir().display()
    );
    let cluster = TestCluster::shared();
    for node in cluster.nodes().await {
        let pid = node.pid.expect("running");
        println!("orphan-server {pid} {} {}", node.port, node.dir.display());
    }
    println!("orphan-ready");
    // Neither fixture is dropped: the process is killed while it waits.
    std::mem::forget(redis);
    loop {
        std::thread::park();
    }
}

#[test]
fn a_binary_that_does_not_exist_is_reported_as_such() {
    let dir = tempfile::Builder::new()
        .prefix("kv-module-test-")
        .tempdir()
        .expect("tempdir");
    let console = std::fs::File::create(dir.path().join("console")).expect("console");
    let mut process = ServerProcess::spawn(
        "kv-module-no-such-binary".as_ref(),
        &[],
        &console,
        &[dir.path()],
    );
    let status = loop {
        if let Some(status) = process.exit_status() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(ServerProcess::is_not_found(status), "{status}");
}

// ---- TestCluster ----------------------------------------------------------

/// Roles and routing on the shared cluster (read-only but for keys in a
/// namespace of the test's own).
#[tokio::test]
async fn shared_cluster_routes_keys_where_the_fixture_says() {
    let started = Instant::now();
    let cluster = TestCluster::shared();
    println!("shared cluster available after {:?}", started.elapsed());
    assert!(Arc::ptr_eq(&cluster, &TestCluster::shared()));

    let nodes = cluster.nodes().await;
    assert_eq!(nodes.len(), 6);
    let primaries: Vec<u16> = nodes
        .iter()
        .filter(|n| n.role == Some(Role::Primary))
        .map(|n| n.port)
        .collect();
    assert_eq!(primaries.len(), 3, "{nodes:?}");
    for node in &nodes {
        assert!(node.port + 10_000 < 32_768, "bus port of {}", node.port);
        assert_eq!(node.addr(), format!("127.0.0.1:{}", node.port));
    }
    assert_eq!(
        cluster.seed_nodes(),
        nodes.iter().map(|n| n.addr()).collect::<Vec<_>>()
    );
    for &primary in &primaries {
        let replica = cluster.replica_of(primary).await;
        let role = nodes.iter().find(|n| n.port == replica).map(|n| n.role);
        assert_eq!(role, Some(Some(Role::Replica)));
    }

    let ns = TestCluster::namespace();
    assert!(
        !ns.contains(['{', '}', '*', '?', '[', ']', ':']),
        "namespace {ns}"
    );
    assert_ne!(ns, TestCluster::namespace());
    let mut routed = cluster.raw_cluster().await;
    for i in 0..12 {
        let key = format!("{ns}:k{i}");
        let () = routed.set(&key, i).await.expect("SET through the cluster");
        let owner = cluster.primary_for_key(&key).await;
        assert!(primaries.contains(&owner));
        for &primary in &primaries {
            let mut conn = cluster.raw_node(primary).await;
            let got: redis::RedisResult<Option<i32>> = conn.get(&key).await;
            if primary == owner {
                assert_eq!(got.expect("GET on the owner"), Some(i), "{key}");
            } else {
                let err = got.expect_err("another primary redirects");
                let to = err.redirect_node().map(|(addr, _slot)| addr.to_owned());
                assert_eq!(to, Some(format!("127.0.0.1:{owner}")), "{err}");
            }
        }
    }
    // A hash tag puts keys on one node.
    let tagged = [format!("{{{ns}}}:a"), format!("{{{ns}}}:b")];
    assert_eq!(
        cluster.primary_for_key(&tagged[0]).await,
        cluster.primary_for_key(&tagged[1]).await
    );
}

/// The shared cluster outlives the runtime that started it: a runtime on
/// another thread uses it too.
#[test]
fn shared_cluster_serves_any_runtime() {
    for _ in 0..2 {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let cluster = TestCluster::shared();
                let mut conn = cluster.raw_cluster().await;
                let pong: String = redis::cmd("PING")
                    .query_async(&mut conn)
                    .await
                    .expect("PING");
                assert_eq!(pong, "PONG");
            });
        })
        .join()
        .expect("thread");
    }
}

/// Freeze, automatic failover, thaw, manual failover back, kill and
/// restart, on a cluster of the test's own.
#[tokio::test]
async fn cluster_fails_over_a_frozen_primary_and_back() {
    let started = Instant::now();
    let mut cluster = TestCluster::start().await;
    println!("cluster ready in {:?}", started.elapsed());

    let key = format!("{}:failover", TestCluster::namespace());
    let mut routed = cluster.raw_cluster().await;
    let () = routed.set(&key, "before").await.expect("SET");
    let primary = cluster.primary_for_key(&key).await;
    let replica = cluster.replica_of(primary).await;
    let mut before = cluster.raw_node(primary).await;
    // Wait until the replica has the key, so a failover keeps it.
    let mut on_replica = cluster.raw_node(replica).await;
    let () = redis::cmd("READONLY")
        .query_async(&mut on_replica)
        .await
        .expect("READONLY");
    eventually(
        "the write to replicate",
        Duration::from_secs(5),
        async || {
            on_replica
                .get::<_, Option<String>>(&key)
                .await
                .ok()
                .flatten()
                == Some("before".into())
        },
    )
    .await;

    let frozen_at = Instant::now();
    cluster.freeze(primary).await;
    assert!(
        ping(&mut before).await.is_err(),
        "a frozen node must not answer"
    );
    assert!(frozen_at.elapsed() < FROZEN_ANSWER_BOUND);
    let promoted_at = cluster
        .wait_for_failover(primary, Duration::from_secs(20))
        .await;
    let failover = promoted_at - frozen_at;
    println!("cluster failover after SIGSTOP: {failover:?}");
    assert!(failover < FAILOVER_BOUND, "failover took {failover:?}");
    assert_eq!(cluster.primary_for_key(&key).await, replica);
    let roles = cluster.nodes().await;
    let frozen = roles.iter().find(|n| n.port == primary).expect("listed");
    assert_eq!(frozen.role, None, "a frozen node does not answer");

    cluster.thaw(primary);
    eventually(
        "the old primary to rejoin as a replica",
        Duration::from_secs(20),
        async || {
            let nodes = cluster.nodes().await;
            nodes.iter().find(|n| n.port == primary).map(|n| n.role) == Some(Some(Role::Replica))
        },
    )
    .await;
    assert_eq!(cluster.replica_of(replica).await, primary);

    let manual = Instant::now();
    cluster.failover_manually(primary).await;
    println!("manual cluster failover: {:?}", manual.elapsed());
    assert_eq!(cluster.primary_for_key(&key).await, primary);
    let mut fresh = cluster.raw_cluster().await;
    let value: Option<String> = fresh.get(&key).await.expect("GET after failovers");
    assert_eq!(value.as_deref(), Some("before"));

    cluster.kill(replica).await;
    let client = redis::Client::open(format!("redis://127.0.0.1:{replica}/0")).expect("URL");
    assert!(ping_client(&client).await.is_err(), "a killed node refuses");
    cluster.restart(replica).await;
    assert_eq!(cluster.replica_of(primary).await, replica);

    cluster.flushall().await;
    let mut fresh = cluster.raw_cluster().await;
    let value: Option<String> = fresh.get(&key).await.expect("GET after FLUSHALL");
    assert_eq!(value, None);
}

#[tokio::test]
async fn tls_cluster_serves_clients_with_the_client_certificate() {
    let started = Instant::now();
    let cluster = TestCluster::shared_tls();
    println!("TLS cluster ready in {:?}", started.elapsed());
    let certs = cluster.certs().expect("a TLS cluster has certs");
    assert!(
        cluster
            .seed_urls()
            .iter()
            .all(|url| url.starts_with("rediss://"))
    );

    let key = format!("{}:tls", TestCluster::namespace());
    let mut routed = cluster.raw_cluster().await;
    let () = routed.set(&key, "secret").await.expect("SET over TLS");
    let owner = cluster.primary_for_key(&key).await;
    let mut conn = cluster.raw_node(owner).await;
    let value: Option<String> = conn.get(&key).await.expect("GET on the owner");
    assert_eq!(value.as_deref(), Some("secret"));

    let port = cluster.nodes().await[0].port;
    let plain = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).expect("URL");
    assert!(ping_client(&plain).await.is_err(), "plain text refused");
    let with_cert = redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{port}/0"),
        certs.tls_certificates(),
    )
    .expect("TLS client");
    assert_eq!(ping_client(&with_cert).await.expect("mTLS"), "PONG");
}

// ---- TestSentinel ---------------------------------------------------------

#[tokio::test]
async fn sentinel_set_starts_and_fails_over_on_request() {
    let started = Instant::now();
    let mut set = TestSentinel::start().await;
    println!("sentinel set ready in {:?}", started.elapsed());
    assert_eq!(set.master_name(), "mymaster");
    assert_eq!(set.sentinel_addrs().len(), 3);

    let primary = set.primary().await;
    let replica = set.replica().await;
    assert_ne!(primary, replica);
    assert_eq!(set.data_ports(), [primary, replica]);
    let old = set.master_addr().await;
    assert_eq!(old, format!("127.0.0.1:{primary}"));
    let mut master = set.raw_master().await;
    let () = master.set("k", "v").await.expect("SET on the master");

    let asked = Instant::now();
    let new = set.failover().await;
    println!("SENTINEL FAILOVER done in {:?}", asked.elapsed());
    assert_eq!(new, format!("127.0.0.1:{replica}"));
    assert_eq!(set.primary().await, replica);
    let mut master = set.raw_master().await;
    let value: Option<String> = master.get("k").await.expect("GET on the new master");
    assert_eq!(value.as_deref(), Some("v"));
}

#[tokio::test]
async fn sentinel_switches_after_the_primary_freezes() {
    let mut set = TestSentinel::start().await;
    let old = set.master_addr().await;
    let replica = set.replica().await;

    let frozen_at = Instant::now();
    let frozen = set.freeze_primary().await;
    assert_eq!(old, format!("127.0.0.1:{frozen}"));
    let switched_at = set.wait_for_switch(&old, Duration::from_secs(20)).await;
    let switch = switched_at - frozen_at;
    println!("sentinel switch after SIGSTOP: {switch:?}");
    assert!(switch < FAILOVER_BOUND, "switch took {switch:?}");
    assert_eq!(set.master_addr().await, format!("127.0.0.1:{replica}"));

    set.thaw(frozen);
    eventually(
        "the sentinels to turn the old primary into a replica",
        Duration::from_secs(30),
        async || set.replica().await == frozen,
    )
    .await;
}

#[tokio::test]
async fn sentinel_set_with_passwords() {
    let auth = SentinelAuth {
        data_password: Some("data-secret".to_owned()),
        sentinel_password: Some("sentinel-secret".to_owned()),
    };
    let set = TestSentinel::start_with_auth(auth.clone()).await;
    assert_eq!(set.auth(), &auth);
    let mut master = set.raw_master().await;
    assert_eq!(ping(&mut master).await.expect("authenticated PING"), "PONG");

    let primary = set.primary().await;
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{primary}/0")).expect("URL");
    let err = ping_client(&anonymous).await.expect_err("NOAUTH");
    assert!(err.to_string().contains("NOAUTH"), "{err}");
    let sentinel = &set.sentinel_addrs()[0];
    let anonymous = redis::Client::open(format!("redis://{sentinel}/0")).expect("URL");
    let err = ping_client(&anonymous).await.expect_err("NOAUTH");
    assert!(err.to_string().contains("NOAUTH"), "{err}");
}
