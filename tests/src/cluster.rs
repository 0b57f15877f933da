//! [`TestCluster`]: a Redis Cluster of three primaries and three replicas
//! on free ports of 127.0.0.1, plain or TLS, owned by a test or shared by
//! all the tests of a process.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::future::join_all;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;

use crate::TestRedis;
use crate::poll;
use crate::redis_server::ServerSpec;
use crate::role::{Replication, Role, replication};
use crate::tls::{TestCerts, TlsClientAuth, install_crypto_provider};

/// Environment variable naming the `redis-cli` binary that creates the
/// cluster (default: `redis-cli` on `PATH`).
pub const REDIS_CLI_BIN_ENV: &str = "REDIS_CLI_BIN";

const DEFAULT_CLI_BIN: &str = "redis-cli";
const PRIMARIES: usize = 3;
const NODES: usize = PRIMARIES * 2;
/// `cluster-node-timeout`: how long a node may be unreachable before it
/// is failed over. Short, so that failover tests take seconds (the notes
/// measured 2.5 s from SIGSTOP to a promoted replica).
const NODE_TIMEOUT_MS: u32 = 1_000;
/// For `redis-cli --cluster create`, which waits forever (silently) when
/// the nodes cannot talk to each other.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// For the cluster to settle after creation, a restart or a failover.
/// Generous: a loaded 2-core machine is slow to schedule six servers.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `CLUSTER FAILOVER` may take before it is asked again;
/// Redis gives up on a manual failover after 5 s.
const MANUAL_FAILOVER_ATTEMPT: Duration = Duration::from_secs(6);
/// Response timeout of [`TestCluster::raw_cluster`] connections, so that
/// an assertion against a frozen node fails instead of hanging (redis-rs'
/// cluster default is no timeout at all).
const RAW_CLUSTER_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis Cluster of three primaries, each with one replica, every node
/// a [`TestRedis`] (free port below 22768 with its bus port below 32768,
/// own directory, no persistence, `KEYS` disabled, killed with the test
/// process) started with `--cluster-enabled yes --cluster-node-timeout
/// 1000 --repl-diskless-sync-delay 0` and joined by `redis-cli --cluster
/// create --cluster-replicas 1`.
///
/// Nodes are named by their port, which stays the same across
/// [`restart`](Self::restart) and failovers. Fault injection
/// ([`freeze`](Self::freeze), [`kill`](Self::kill),
/// [`failover_manually`](Self::failover_manually),
/// [`flushall`](Self::flushall)) takes `&mut self`, so the
/// [`shared`](Self::shared) cluster, handed out as an `Arc`, cannot be
/// disturbed by one test under the feet of another: tests that break nodes
/// start their own cluster.
///
/// Dropping the fixture kills every node; during a panic each node's log
/// is printed.
///
/// ```no_run
/// use std::time::Duration;
/// use kv_module_tests::TestCluster;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut cluster = TestCluster::start().await;
/// let primary = cluster.primary_for_key("user:{42}").await;
/// cluster.freeze(primary);
/// let promoted_at = cluster.wait_for_failover(primary, Duration::from_secs(15)).await;
/// cluster.thaw(primary);
/// # let _ = promoted_at;
/// # }
/// ```
#[derive(Debug)]
pub struct TestCluster {
    nodes: Vec<TestRedis>,
    certs: Option<TestCerts>,
    /// The replicas a node had when it was last frozen or killed, for
    /// [`wait_for_failover`](Self::wait_for_failover) to know whom to
    /// watch even when the failover happened before it was called.
    replicas_at_fault: HashMap<u16, Vec<u16>>,
}

/// One node as seen by [`TestCluster::nodes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// Its port (a TLS cluster's nodes have only a TLS port).
    pub port: u16,
    /// Its pid; `None` while killed.
    pub pid: Option<u32>,
    /// What it says it is; `None` when it does not answer (frozen, killed).
    pub role: Option<Role>,
    /// Its directory (log, `nodes.conf`).
    pub dir: PathBuf,
}

impl ClusterNode {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        node_addr(self.port)
    }
}

impl TestCluster {
    /// Starts a plain-text cluster and waits until it is ready:
    /// `cluster_state:ok` on every node and `master_link_status:up` on the
    /// three replicas.
    ///
    /// # Panics
    ///
    /// When a node does not start, the cluster cannot be created, or it is
    /// not ready in time (with the nodes' logs).
    pub async fn start() -> TestCluster {
        TestCluster::launch(None).await
    }

    /// Starts a cluster that speaks only TLS, on client ports and on the
    /// cluster bus and replication links alike (`--tls-cluster yes
    /// --tls-replication yes`), with the node certificate of `certs` and
    /// client certificates required. The fixture's connections present the
    /// client certificate of `certs`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub async fn start_tls(certs: &TestCerts) -> TestCluster {
        TestCluster::launch(Some(certs.clone())).await
    }

    /// The cluster shared by every test of this process that asks for it:
    /// started on first use, never stopped by a test (it is handed out
    /// behind an `Arc`, and fault injection needs `&mut`), and killed with
    /// the test process. Tests sharing it keep to their own keys, under a
    /// [`namespace`](Self::namespace).
    ///
    /// It is started on a thread of its own with its own runtime, so it
    /// does not depend on the runtime of the first `#[tokio::test]` that
    /// asked for it; the caller blocks meanwhile. Nothing in the fixture
    /// holds a connection, so any runtime can use it afterwards.
    ///
    /// # Panics
    ///
    /// When it cannot be started; every later call then panics at once
    /// with the same message.
    pub fn shared() -> Arc<TestCluster> {
        static SHARED: OnceLock<Result<Arc<TestCluster>, String>> = OnceLock::new();
        shared_from(&SHARED, "shared cluster", TestCluster::start)
    }

    /// Like [`shared`](Self::shared), a TLS cluster (with certificates of
    /// its own, see [`certs`](Self::certs)).
    ///
    /// # Panics
    ///
    /// As [`shared`](Self::shared).
    pub fn shared_tls() -> Arc<TestCluster> {
        static SHARED_TLS: OnceLock<Result<Arc<TestCluster>, String>> = OnceLock::new();
        shared_from(&SHARED_TLS, "shared TLS cluster", || async {
            TestCluster::start_tls(&TestCerts::generate()).await
        })
    }

    /// A fresh key prefix component, unique in this process and across
    /// processes (`t<pid>n<counter>`), for tests sharing a cluster: keys
    /// under it are the test's own. It holds no `{`, `}` (so it never
    /// becomes a hash tag), glob characters, or `:`.
    pub fn namespace() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!(
            "t{}n{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    async fn launch(certs: Option<TestCerts>) -> TestCluster {
        let mut extra_args: Vec<OsString> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &NODE_TIMEOUT_MS.to_string(),
            // Replicas of a fresh (or restarted) primary sync at once
            // instead of waiting 5 s for more replicas to join.
            "--repl-diskless-sync-delay",
            "0",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if certs.is_some() {
            for arg in ["--tls-cluster", "yes", "--tls-replication", "yes"] {
                extra_args.push(arg.into());
            }
        }
        let spec = ServerSpec {
            label: "cluster node",
            tls: certs.clone().map(|certs| (certs, TlsClientAuth::Required)),
            extra_args,
            ..ServerSpec::default()
        };
        let nodes = join_all((0..NODES).map(|_| TestRedis::start_with(spec.clone()))).await;
        let cluster = TestCluster {
            nodes,
            certs,
            replicas_at_fault: HashMap::new(),
        };
        cluster.create().await;
        poll::until("cluster creation", SETTLE_TIMEOUT, || cluster.formed()).await;
        cluster
    }

    /// `redis-cli --cluster create`: slots, replicas, and the meeting of
    /// the nodes.
    async fn create(&self) {
        let bin = std::env::var_os(REDIS_CLI_BIN_ENV).unwrap_or_else(|| DEFAULT_CLI_BIN.into());
        let mut command = tokio::process::Command::new(&bin);
        if let Some(certs) = &self.certs {
            command
                .arg("--tls")
                .arg("--cacert")
                .arg(certs.ca_file())
                .arg("--cert")
                .arg(certs.client_cert_file())
                .arg("--key")
                .arg(certs.client_key_file());
        }
        command
            .args(["--cluster", "create"])
            .args(self.seed_nodes())
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(CREATE_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| {
                panic!("`redis-cli --cluster create` did not finish within {CREATE_TIMEOUT:?}")
            })
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run `{}` ({err}); set {REDIS_CLI_BIN_ENV} or install redis-tools",
                    bin.to_string_lossy()
                )
            });
        assert!(
            output.status.success(),
            "`redis-cli --cluster create` failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `Ok` once every node says `cluster_state:ok`, three of them are
    /// replicas, and every replica's link to its primary is up.
    async fn formed(&self) -> Result<(), String> {
        let mut replicas = 0;
        for node in &self.nodes {
            let state = self.cluster_state(node.port()).await;
            if state.as_deref() != Some("ok") {
                return Err(format!("node {} cluster_state {state:?}", node.port()));
            }
            match replication(node).await {
                Some(Replication {
                    role: Role::Replica,
                    link_up: true,
                    ..
                }) => replicas += 1,
                Some(Replication {
                    role: Role::Primary,
                    ..
                }) => {}
                other => return Err(format!("node {} replication {other:?}", node.port())),
            }
        }
        if replicas == PRIMARIES {
            Ok(())
        } else {
            Err(format!("{replicas} replicas linked, want {PRIMARIES}"))
        }
    }

    /// `127.0.0.1:PORT` of every node, in start order: seeds for a cluster
    /// client (`REDIS_NODES`).
    pub fn seed_nodes(&self) -> Vec<String> {
        self.nodes.iter().map(TestRedis::addr).collect()
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` for TLS) of every node.
    pub fn seed_urls(&self) -> Vec<String> {
        let scheme = if self.certs.is_some() {
            "rediss"
        } else {
            "redis"
        };
        self.nodes
            .iter()
            .map(|node| format!("{scheme}://{}", node.addr()))
            .collect()
    }

    /// The certificates of a TLS cluster (its CA and a client certificate:
    /// [`TestCerts::tls_certificates`]); `None` for a plain one.
    pub fn certs(&self) -> Option<&TestCerts> {
        self.certs.as_ref()
    }

    /// Every node with its pid and the role it reports now (asked of each
    /// node; `None` for frozen and killed ones).
    pub async fn nodes(&self) -> Vec<ClusterNode> {
        let roles = join_all(self.nodes.iter().map(replication)).await;
        self.nodes
            .iter()
            .zip(roles)
            .map(|(node, replication)| ClusterNode {
                port: node.port(),
                pid: node.is_running().then(|| node.pid()),
                role: replication.map(|r| r.role),
                dir: node.dir().to_owned(),
            })
            .collect()
    }

    /// The primary serving `slot`, as every answering node agrees (waits
    /// up to 30 s for them to agree, e.g. right after a failover).
    ///
    /// # Panics
    ///
    /// When the nodes do not agree in time or `slot` is not below 16384.
    pub async fn primary_for_slot(&self, slot: u16) -> u16 {
        assert!(slot < 16_384, "slot {slot} out of range");
        poll::until(
            &format!("the nodes to agree on the primary of slot {slot}"),
            SETTLE_TIMEOUT,
            || self.agreed_primary(slot),
        )
        .await
    }

    async fn agreed_primary(&self, slot: u16) -> Result<u16, String> {
        let mut seen = Vec::new();
        for port in self.live_ports() {
            let primary = self.view(port).await.and_then(|view| {
                view.into_iter()
                    .find(|entry| entry.is_serving_primary() && entry.serves(slot))
                    .map(|entry| entry.port)
            });
            seen.push((port, primary));
        }
        match seen.first() {
            Some(&(_, Some(primary))) if seen.iter().all(|&(_, p)| p == Some(primary)) => {
                Ok(primary)
            }
            _ => Err(format!("views (node, primary): {seen:?}")),
        }
    }

    /// The primary serving `key` (its hash slot, from `CLUSTER KEYSLOT`, so
    /// hash tags count as the server counts them).
    ///
    /// # Panics
    ///
    /// When no node answers or the nodes do not agree in time.
    pub async fn primary_for_key(&self, key: &str) -> u16 {
        let slot = poll::until("CLUSTER KEYSLOT", SETTLE_TIMEOUT, || async {
            let port = self.live_ports().next().ok_or("no node answers")?;
            let mut conn = self.connect(port).await?;
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async::<u16>(&mut conn)
                .await
                .map_err(|err| err.to_string())
        })
        .await;
        self.primary_for_slot(slot).await
    }

    /// A replica of `primary` that is not marked failed, as the answering
    /// nodes see it (waits up to 30 s for one, e.g. right after a restart).
    ///
    /// # Panics
    ///
    /// When `primary` has no replica in time.
    pub async fn replica_of(&self, primary: u16) -> u16 {
        poll::until(
            &format!("a replica of {primary}"),
            SETTLE_TIMEOUT,
            || async {
                self.current_replicas(primary)
                    .await
                    .first()
                    .copied()
                    .ok_or_else(|| "no node names one".to_owned())
            },
        )
        .await
    }

    /// The replicas of `primary` in the view of the first answering node
    /// that knows any (the primary's own first).
    async fn current_replicas(&self, primary: u16) -> Vec<u16> {
        let mut askers: Vec<u16> = self.live_ports().collect();
        askers.sort_by_key(|&port| port != primary);
        for port in askers {
            let Some(view) = self.view(port).await else {
                continue;
            };
            let Some(id) = view
                .iter()
                .find(|e| e.port == primary)
                .map(|e| e.id.clone())
            else {
                continue;
            };
            let replicas: Vec<u16> = view
                .iter()
                .filter(|e| !e.failed && e.primary_id.as_deref() == Some(id.as_str()))
                .map(|e| e.port)
                .collect();
            if !replicas.is_empty() {
                return replicas;
            }
        }
        Vec::new()
    }

    /// Freezes node `port` (SIGSTOP, see [`TestRedis::freeze`]); after
    /// `cluster-node-timeout` (1 s) the others mark it failed and, for a
    /// primary, promote its replica.
    ///
    /// # Panics
    ///
    /// When `port` is not a running node of this cluster.
    pub async fn freeze(&mut self, port: u16) {
        self.remember_replicas(port).await;
        self.node_mut(port).freeze();
    }

    /// Resumes node `port` after [`freeze`](Self::freeze). A primary that
    /// was failed over meanwhile comes back as a replica of its successor.
    ///
    /// # Panics
    ///
    /// When `port` is not a running node of this cluster.
    pub fn thaw(&mut self, port: u16) {
        self.node_mut(port).thaw();
    }

    /// Kills node `port` (SIGKILL; connections are refused).
    ///
    /// # Panics
    ///
    /// When `port` is not a node of this cluster.
    pub async fn kill(&mut self, port: u16) {
        self.remember_replicas(port).await;
        self.node_mut(port).stop();
    }

    /// Starts node `port` again (killing it first if needed) with its
    /// `nodes.conf` but no data, and waits until it says `cluster_state:ok`
    /// and, if it came back as a replica, its link is up. A failed-over
    /// primary rejoins as a replica of its successor; one that was not
    /// failed over comes back as an empty primary of its slots.
    ///
    /// # Panics
    ///
    /// When the node does not restart or settle in time.
    pub async fn restart(&mut self, port: u16) {
        self.node_mut(port).restart().await;
        let node = self.node(port);
        poll::until(
            &format!("restarted node {port} to rejoin"),
            SETTLE_TIMEOUT,
            || async {
                let state = self.cluster_state(port).await;
                let replication = replication(node).await;
                match (&state, &replication) {
                    (Some(ok), Some(r)) if ok == "ok" && (r.role == Role::Primary || r.link_up) => {
                        Ok(())
                    }
                    _ => Err(format!(
                        "cluster_state {state:?}, replication {replication:?}"
                    )),
                }
            },
        )
        .await;
    }

    async fn remember_replicas(&mut self, port: u16) {
        let replicas = self.current_replicas(port).await;
        self.replicas_at_fault.insert(port, replicas);
    }

    /// Waits until a replica of `old_primary` says it is a primary and
    /// every answering node says `cluster_state:ok`, and returns when that
    /// was first seen (for measuring failover times). The replicas watched
    /// are those `old_primary` had when it was frozen or killed through
    /// this fixture, otherwise those it has now.
    ///
    /// # Panics
    ///
    /// When that is not seen within `timeout`, or `old_primary` had no
    /// replica.
    pub async fn wait_for_failover(&self, old_primary: u16, timeout: Duration) -> Instant {
        let candidates = match self.replicas_at_fault.get(&old_primary) {
            Some(replicas) => replicas.clone(),
            None => self.current_replicas(old_primary).await,
        };
        assert!(
            !candidates.is_empty(),
            "node {old_primary} had no replica to fail over to"
        );
        poll::until(
            &format!("a replica of {old_primary} (one of {candidates:?}) to take over"),
            timeout,
            || async {
                let mut promoted = false;
                for &port in &candidates {
                    let role = replication(self.node(port)).await.map(|r| r.role);
                    promoted |= role == Some(Role::Primary);
                }
                if !promoted {
                    return Err("no candidate is a primary yet".to_owned());
                }
                self.all_ok().await?;
                Ok(Instant::now())
            },
        )
        .await
    }

    /// `Ok` when every answering node says `cluster_state:ok`.
    async fn all_ok(&self) -> Result<(), String> {
        for port in self.live_ports() {
            let state = self.cluster_state(port).await;
            if state.as_deref() != Some("ok") {
                return Err(format!("node {port} cluster_state {state:?}"));
            }
        }
        Ok(())
    }

    /// `CLUSTER FAILOVER` on `replica`: a coordinated switch with its
    /// primary, without data loss. Sent once every node knows `replica` as
    /// a replica of its primary (and again if Redis' 5 s manual failover
    /// timeout passes). Waits until `replica` says it is a
    /// primary, its old primary says it is a replica of it with the link
    /// up, and every answering node says `cluster_state:ok` and sees
    /// `replica` as a primary.
    ///
    /// # Panics
    ///
    /// When `replica` is not a replica, refuses, or the switch is not
    /// seen in time.
    pub async fn failover_manually(&mut self, replica: u16) {
        let old_primary = match replication(self.node(replica)).await {
            Some(Replication {
                role: Role::Replica,
                primary_port: Some(primary),
                ..
            }) => primary,
            other => panic!("node {replica} is not a replica ({other:?})"),
        };
        // A primary ignores the failover request of a node it does not (yet)
        // know as its replica, and the request then times out after 5 s:
        // likely right after a failover or a restart, when gossip lags.
        poll::until(
            &format!("every node to know {replica} as a replica of {old_primary}"),
            SETTLE_TIMEOUT,
            || self.known_as_replica(replica, old_primary),
        )
        .await;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut conn = self.raw_node(replica).await;
            let () = redis::cmd("CLUSTER")
                .arg("FAILOVER")
                .query_async(&mut conn)
                .await
                .unwrap_or_else(|err| panic!("CLUSTER FAILOVER on {replica}: {err}"));
            let promoted = poll::within(MANUAL_FAILOVER_ATTEMPT, || async {
                replication(self.node(replica)).await.map(|r| r.role) == Some(Role::Primary)
            })
            .await;
            if promoted {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "CLUSTER FAILOVER on {replica} did not promote it within {SETTLE_TIMEOUT:?}"
            );
        }
        poll::until(
            &format!("manual failover from {old_primary} to {replica}"),
            SETTLE_TIMEOUT,
            || async {
                let new = replication(self.node(replica)).await;
                if new.as_ref().map(|r| r.role) != Some(Role::Primary) {
                    return Err(format!("{replica}: {new:?}"));
                }
                let old = replication(self.node(old_primary)).await;
                if old.is_some()
                    && !matches!(
                        old,
                        Some(Replication {
                            role: Role::Replica,
                            link_up: true,
                            primary_port: Some(p),
                        }) if p == replica
                    )
                {
                    return Err(format!("{old_primary}: {old:?}"));
                }
                self.all_ok().await?;
                for port in self.live_ports() {
                    let sees = self.view(port).await.is_some_and(|view| {
                        view.iter()
                            .any(|e| e.port == replica && e.is_serving_primary())
                    });
                    if !sees {
                        return Err(format!("node {port} does not see {replica} as primary"));
                    }
                }
                Ok(())
            },
        )
        .await;
    }

    /// `Ok` when `replica`'s link is up and every answering node sees it,
    /// not failed, as a replica of `primary`, itself not failed.
    async fn known_as_replica(&self, replica: u16, primary: u16) -> Result<(), String> {
        let link = replication(self.node(replica)).await;
        if !link.as_ref().is_some_and(|r| r.link_up) {
            return Err(format!("{replica}: {link:?}"));
        }
        for port in self.live_ports() {
            let view = self
                .view(port)
                .await
                .ok_or(format!("{port} does not answer"))?;
            let entry = |p: u16| view.iter().find(|e| e.port == p);
            let known = match (entry(replica), entry(primary)) {
                (Some(r), Some(p)) => {
                    !r.failed && !p.failed && r.primary_id.as_deref() == Some(p.id.as_str())
                }
                _ => false,
            };
            if !known {
                return Err(format!(
                    "node {port} does not see {replica} following {primary}"
                ));
            }
        }
        Ok(())
    }

    /// A plain redis-rs connection to node `port` (TLS with the client
    /// certificate for a TLS cluster), for per-node assertions.
    ///
    /// # Panics
    ///
    /// When the node cannot be reached.
    pub async fn raw_node(&self, port: u16) -> redis::aio::MultiplexedConnection {
        self.node(port).raw(0).await
    }

    /// A redis-rs cluster connection to this cluster, for assertions that
    /// must not go through the code under test. It has a 2 s response
    /// timeout (redis-rs' default is none) and redis-rs' other defaults
    /// (16 retries, at least 1.28 s apart).
    ///
    /// # Panics
    ///
    /// When the client cannot be built or no seed answers.
    pub async fn raw_cluster(&self) -> ClusterConnection {
        let mut builder = ClusterClientBuilder::new(self.seed_urls())
            .response_timeout(RAW_CLUSTER_RESPONSE_TIMEOUT);
        if let Some(certs) = &self.certs {
            install_crypto_provider();
            builder = builder.certs(certs.tls_certificates());
        }
        let client = builder
            .build()
            .unwrap_or_else(|err| panic!("cannot build a cluster client: {err}"));
        client
            .get_async_connection()
            .await
            .unwrap_or_else(|err| panic!("cannot connect to the test cluster: {err}"))
    }

    /// Empties every answering primary (replicas follow). `&mut`: not for
    /// the [`shared`](Self::shared) cluster, whose tests keep to their own
    /// [`namespace`](Self::namespace).
    ///
    /// # Panics
    ///
    /// When a primary refuses.
    pub async fn flushall(&mut self) {
        for node in &self.nodes {
            if replication(node).await.map(|r| r.role) == Some(Role::Primary) {
                let mut conn = node.raw(0).await;
                let () = redis::cmd("FLUSHALL")
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_else(|err| panic!("FLUSHALL on {}: {err}", node.port()));
            }
        }
    }

    /// The logs of every node, each under a header naming it.
    pub fn log(&self) -> String {
        self.nodes
            .iter()
            .map(TestRedis::labelled_log)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn node(&self, port: u16) -> &TestRedis {
        self.nodes
            .iter()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("{port} is not a node of this cluster"))
    }

    fn node_mut(&mut self, port: u16) -> &mut TestRedis {
        self.nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("{port} is not a node of this cluster"))
    }

    /// Ports of the nodes that can answer: running and not frozen.
    fn live_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|node| node.is_running() && !node.is_frozen())
            .map(TestRedis::port)
    }

    async fn connect(&self, port: u16) -> Result<redis::aio::MultiplexedConnection, String> {
        self.node(port)
            .client(0)
            .get_multiplexed_async_connection()
            .await
            .map_err(|err| format!("node {port}: {err}"))
    }

    /// `cluster_state` from `CLUSTER INFO` on node `port`; `None` when it
    /// does not answer.
    async fn cluster_state(&self, port: u16) -> Option<String> {
        if !self.live_ports().any(|p| p == port) {
            return None;
        }
        let mut conn = self.connect(port).await.ok()?;
        let info: redis::InfoDict = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut conn)
            .await
            .ok()?;
        info.get("cluster_state")
    }

    /// `CLUSTER NODES` as node `port` sees the cluster; `None` when it does
    /// not answer.
    async fn view(&self, port: u16) -> Option<Vec<NodeEntry>> {
        let mut conn = self.connect(port).await.ok()?;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .ok()?;
        Some(text.lines().filter_map(NodeEntry::parse).collect())
    }
}

/// One line of `CLUSTER NODES`:
/// `id ip:port@bus[,hostname] flags primary-id ping pong epoch link slots...`.
#[derive(Clone, Debug)]
struct NodeEntry {
    id: String,
    port: u16,
    primary: bool,
    /// Flagged `fail` by the cluster (not the local suspicion `fail?`).
    failed: bool,
    /// The primary a replica follows.
    primary_id: Option<String>,
    /// Inclusive slot ranges served (migration markers `[...]` skipped).
    slots: Vec<(u16, u16)>,
}

impl NodeEntry {
    fn parse(line: &str) -> Option<NodeEntry> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return None;
        }
        let address = fields[1].split('@').next()?;
        let port = address.rsplit(':').next()?.parse().ok()?;
        let flags: Vec<&str> = fields[2].split(',').collect();
        let slots = fields[8..]
            .iter()
            .filter(|range| !range.starts_with('['))
            .filter_map(|range| match range.split_once('-') {
                Some((start, end)) => Some((start.parse().ok()?, end.parse().ok()?)),
                None => {
                    let slot = range.parse().ok()?;
                    Some((slot, slot))
                }
            })
            .collect();
        Some(NodeEntry {
            id: fields[0].to_owned(),
            port,
            primary: flags.contains(&"master"),
            failed: flags.contains(&"fail"),
            primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
            slots,
        })
    }

    fn is_serving_primary(&self) -> bool {
        self.primary && !self.failed && !self.slots.is_empty()
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(start, end)| (start..=end).contains(&slot))
    }
}

fn node_addr(port: u16) -> String {
    format!("{}:{port}", Ipv4Addr::LOCALHOST)
}

/// Gets the cluster in `cell`, starting it with `start` on a thread of its
/// own (with a current-thread runtime that ends with the start) the first
/// time.
pub(crate) fn shared_from<T, F, Fut>(
    cell: &'static OnceLock<Result<Arc<T>, String>>,
    what: &str,
    start: F,
) -> Arc<T>
where
    T: Send + Sync + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let started = cell.get_or_init(|| {
        std::thread::Builder::new()
            .name(format!("start {what}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|err| panic!("cannot build a runtime: {err}"));
                Arc::new(runtime.block_on(start()))
            })
            .unwrap_or_else(|err| panic!("cannot spawn a thread: {err}"))
            .join()
            .map_err(|payload| {
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "unknown panic".to_owned())
            })
    });
    match started {
        Ok(fixture) => Arc::clone(fixture),
        Err(message) => panic!("the {what} did not start: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes_lines() {
        let primary = NodeEntry::parse(
            "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 \
             myself,master - 0 1426238316232 4 connected 0-5460 5462 [5463->-e7d1eec]",
        )
        .expect("parses");
        assert_eq!(primary.port, 30004);
        assert!(primary.primary && !primary.failed);
        assert_eq!(primary.primary_id, None);
        assert_eq!(primary.slots, [(0, 5460), (5462, 5462)]);
        assert!(primary.serves(5460) && primary.serves(5462) && !primary.serves(5461));

        let replica = NodeEntry::parse(
            "e7d1eec 127.0.0.1:30002@31002 slave,fail 07c37df 0 1426238317239 2 disconnected",
        )
        .expect("parses");
        assert!(!replica.primary && replica.failed);
        assert_eq!(replica.primary_id.as_deref(), Some("07c37df"));
        assert!(replica.slots.is_empty());
    }
}
