//! [`TestSentinel`]: a primary, its replica and three sentinels watching
//! them, on free ports of 127.0.0.1.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::TestRedis;
use crate::poll;
use crate::redis_server::ServerSpec;
use crate::role::{Role, replication};

const MASTER_NAME: &str = "mymaster";
const SENTINELS: usize = 3;
/// Sentinels that must agree the primary is down before a failover.
const QUORUM: usize = 2;
/// How long the primary may be silent before a sentinel calls it down.
/// Short, so that failover tests take seconds (the notes measured a switch
/// 3.2 s after SIGSTOP).
const DOWN_AFTER_MS: u32 = 1_000;
/// Also the pause before sentinels fail over the same primary again:
/// twice this (10 s).
const FAILOVER_TIMEOUT_MS: u32 = 5_000;
/// For the set to settle after start, a restart or a failover. Sentinels
/// find each other through hello messages sent every 2 s; a loaded 2-core
/// machine needs the margin.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Passwords of a [`TestSentinel`] set; none by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SentinelAuth {
    /// `requirepass` (and `masterauth`) of the primary and the replica,
    /// given to the sentinels with `sentinel auth-pass`.
    pub data_password: Option<String>,
    /// `requirepass` of the sentinels themselves (which they also use with
    /// each other).
    pub sentinel_password: Option<String>,
}

/// A primary, one replica and three sentinels monitoring them as
/// `mymaster` (quorum 2, `down-after-milliseconds 1000`,
/// `failover-timeout 5000`), each a [`TestRedis`] of its own (free port,
/// own directory, killed with the test process; a sentinel runs as
/// `redis-server sentinel.conf --sentinel` with a configuration file it
/// can rewrite).
///
/// Data nodes are named by their port, kept across failovers and
/// restarts; which one is the primary changes.
///
/// Dropping the fixture kills every server; during a panic each server's
/// log is printed.
///
/// ```no_run
/// use std::time::Duration;
/// use kv_module_tests::TestSentinel;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut set = TestSentinel::start().await;
/// let old = set.master_addr().await;
/// let frozen = set.freeze_primary().await;
/// set.wait_for_switch(&old, Duration::from_secs(15)).await;
/// set.thaw(frozen);
/// # }
/// ```
#[derive(Debug)]
pub struct TestSentinel {
    /// Declared first: dropped (killed) before the data nodes, so that
    /// they do not start a failover during teardown.
    sentinels: Vec<TestRedis>,
    /// The initial primary, then the initial replica.
    data: Vec<TestRedis>,
    auth: SentinelAuth,
}

impl TestSentinel {
    /// Starts the set without passwords and waits until it is ready: the
    /// replica's link is up and every sentinel knows the replica and the
    /// two other sentinels.
    ///
    /// # Panics
    ///
    /// When a server does not start or the set is not ready in time (with
    /// the logs).
    pub async fn start() -> TestSentinel {
        TestSentinel::start_with_auth(SentinelAuth::default()).await
    }

    /// One set per test process, started on first use (on a thread of its
    /// own, like [`TestCluster::shared`](crate::TestCluster::shared)) and
    /// killed with the test process. Shared by reference, so no test can
    /// fail it over under the others; tests keep to their own keys under a
    /// [`TestCluster::namespace`](crate::TestCluster::namespace).
    ///
    /// # Panics
    ///
    /// When it cannot be started; every later call then panics at once
    /// with the same message.
    pub fn shared() -> std::sync::Arc<TestSentinel> {
        static SHARED: std::sync::OnceLock<Result<std::sync::Arc<TestSentinel>, String>> =
            std::sync::OnceLock::new();
        crate::cluster::shared_from(&SHARED, "shared sentinel set", TestSentinel::start)
    }

    /// Like [`start`](Self::start), with the passwords of `auth`. The
    /// fixture's own connections use them.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub async fn start_with_auth(auth: SentinelAuth) -> TestSentinel {
        let mut data_args: Vec<OsString> = vec!["--repl-diskless-sync-delay".into(), "0".into()];
        if let Some(password) = &auth.data_password {
            // The primary becomes a replica after a failover: both need it.
            data_args.extend(["--masterauth".into(), password.into()]);
        }
        let data_spec = ServerSpec {
            label: "redis-server (under sentinel)",
            password: auth.data_password.clone(),
            extra_args: data_args,
            ..ServerSpec::default()
        };
        let primary = TestRedis::start_with(data_spec.clone()).await;
        let mut replica_spec = data_spec;
        replica_spec.extra_args.extend([
            "--replicaof".into(),
            Ipv4Addr::LOCALHOST.to_string().into(),
            primary.port().to_string().into(),
        ]);
        let replica = TestRedis::start_with(replica_spec).await;

        let mut conf = format!(
            "sentinel monitor {MASTER_NAME} {} {} {QUORUM}\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            Ipv4Addr::LOCALHOST,
            primary.port()
        );
        if let Some(password) = &auth.data_password {
            conf.push_str(&format!("sentinel auth-pass {MASTER_NAME} {password}\n"));
        }
        let sentinel_spec = ServerSpec {
            label: "sentinel",
            password: auth.sentinel_password.clone(),
            sentinel_conf: Some(conf),
            ..ServerSpec::default()
        };
        let sentinels =
            join_all((0..SENTINELS).map(|_| TestRedis::start_with(sentinel_spec.clone()))).await;
        let set = TestSentinel {
            sentinels,
            data: vec![primary, replica],
            auth,
        };
        poll::until("the sentinel set to be ready", SETTLE_TIMEOUT, || {
            set.ready()
        })
        .await;
        set
    }

    /// `Ok` once the replica's link is up and every sentinel knows it and
    /// the two other sentinels.
    async fn ready(&self) -> Result<(), String> {
        let replica = replication(&self.data[1]).await;
        if !replica.as_ref().is_some_and(|r| r.link_up) {
            return Err(format!("replica {replica:?}"));
        }
        for sentinel in &self.sentinels {
            let mut conn = connect(sentinel).await?;
            let fields: Vec<String> = redis::cmd("SENTINEL")
                .arg("MASTER")
                .arg(MASTER_NAME)
                .query_async(&mut conn)
                .await
                .map_err(|err| format!("sentinel {}: {err}", sentinel.port()))?;
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|pair| pair[0] == name)
                    .and_then(|pair| pair.get(1))
                    .cloned()
                    .unwrap_or_default()
            };
            let (others, replicas) = (field("num-other-sentinels"), field("num-slaves"));
            if others != (SENTINELS - 1).to_string() || replicas != "1" {
                return Err(format!(
                    "sentinel {} knows {others} other sentinels and {replicas} replicas",
                    sentinel.port()
                ));
            }
        }
        Ok(())
    }

    /// `127.0.0.1:PORT` of every sentinel.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels.iter().map(TestRedis::addr).collect()
    }

    /// The name the sentinels monitor the primary under: `mymaster`.
    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// The passwords the set was started with.
    pub fn auth(&self) -> &SentinelAuth {
        &self.auth
    }

    /// Ports of the two data nodes (the initial primary first).
    pub fn data_ports(&self) -> Vec<u16> {
        self.data.iter().map(TestRedis::port).collect()
    }

    /// The primary's `127.0.0.1:PORT` as the first answering sentinel
    /// reports it (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    ///
    /// # Panics
    ///
    /// When no sentinel answers within 30 s.
    pub async fn master_addr(&self) -> String {
        poll::until("a sentinel to name the master", SETTLE_TIMEOUT, || async {
            let mut errors = Vec::new();
            for sentinel in self.live_sentinels() {
                match master_addr_of(sentinel).await {
                    Ok(addr) => return Ok(addr),
                    Err(err) => errors.push(err),
                }
            }
            Err(errors.join("; "))
        })
        .await
    }

    /// The data node that says it is the primary. When both do (an old
    /// primary thawed before the sentinels reconfigured it), the one the
    /// sentinels name.
    ///
    /// # Panics
    ///
    /// When no single primary is found within 30 s.
    pub async fn primary(&self) -> u16 {
        poll::until("a single primary", SETTLE_TIMEOUT, || async {
            let primaries = self.data_ports_with_role(Role::Primary).await;
            match primaries.as_slice() {
                [primary] => Ok(*primary),
                [] => Err("no data node says it is the primary".to_owned()),
                several => {
                    let named = self.master_addr().await;
                    several
                        .iter()
                        .copied()
                        .find(|&port| node_addr(port) == named)
                        .ok_or_else(|| format!("primaries {several:?}, sentinels name {named}"))
                }
            }
        })
        .await
    }

    /// The data node that says it is a replica.
    ///
    /// # Panics
    ///
    /// When none does within 30 s.
    pub async fn replica(&self) -> u16 {
        poll::until("a replica", SETTLE_TIMEOUT, || async {
            self.data_ports_with_role(Role::Replica)
                .await
                .first()
                .copied()
                .ok_or_else(|| "no data node says it is a replica".to_owned())
        })
        .await
    }

    async fn data_ports_with_role(&self, role: Role) -> Vec<u16> {
        let mut ports = Vec::new();
        for node in &self.data {
            if replication(node).await.map(|r| r.role) == Some(role) {
                ports.push(node.port());
            }
        }
        ports
    }

    /// Freezes the current primary (SIGSTOP) and returns its port; the
    /// sentinels call it down after 1 s and promote the replica.
    ///
    /// # Panics
    ///
    /// When there is no single primary.
    pub async fn freeze_primary(&mut self) -> u16 {
        let primary = self.primary().await;
        self.node_mut(primary).freeze();
        primary
    }

    /// Resumes node `port` (a data node or a sentinel) after a freeze. A
    /// primary replaced meanwhile keeps accepting writes until the
    /// sentinels turn it into a replica.
    ///
    /// # Panics
    ///
    /// When `port` is not a running server of this set.
    pub fn thaw(&mut self, port: u16) {
        self.node_mut(port).thaw();
    }

    /// Kills server `port` (a data node or a sentinel; SIGKILL, connections
    /// are refused).
    ///
    /// # Panics
    ///
    /// When `port` is not a server of this set.
    pub fn kill(&mut self, port: u16) {
        self.node_mut(port).stop();
    }

    /// Starts server `port` again (killing it first if needed), empty, with
    /// its original command line: a data node comes back as what it was
    /// started as until the sentinels reconfigure it; a sentinel with its
    /// rewritten configuration.
    ///
    /// # Panics
    ///
    /// When it does not restart in time.
    pub async fn restart(&mut self, port: u16) {
        self.node_mut(port).restart().await;
    }

    /// `SENTINEL FAILOVER mymaster` (retried while a sentinel answers that
    /// it has no good replica yet or a failover is in progress), then waits
    /// until every sentinel names the new master and it says it is the
    /// primary. Returns the new master's address.
    ///
    /// The old primary still says it is a primary for a while: sentinels
    /// turn it into a replica only after it has reported the wrong role for
    /// some seconds (≈ 10 s measured); [`primary`](Self::primary) names the
    /// new one meanwhile. Sentinels do not fail over the same master twice
    /// within 2 × `failover-timeout` (10 s).
    ///
    /// # Panics
    ///
    /// When the failover is not done within 30 s.
    pub async fn failover(&mut self) -> String {
        let old = self.master_addr().await;
        poll::until(
            "SENTINEL FAILOVER to be accepted",
            SETTLE_TIMEOUT,
            || async {
                let sentinel = self.live_sentinels().next().ok_or("no sentinel answers")?;
                let mut conn = connect(sentinel).await?;
                redis::cmd("SENTINEL")
                    .arg("FAILOVER")
                    .arg(MASTER_NAME)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|err| err.to_string())
            },
        )
        .await;
        self.wait_for_switch(&old, SETTLE_TIMEOUT).await;
        self.master_addr().await
    }

    /// Waits until every answering sentinel names the same master, other
    /// than `old_addr`, and that server says it is the primary; returns
    /// when that was first seen (for measuring switch times).
    ///
    /// # Panics
    ///
    /// When that is not seen within `timeout`.
    pub async fn wait_for_switch(&self, old_addr: &str, timeout: Duration) -> Instant {
        poll::until(
            &format!("the sentinels to switch from {old_addr}"),
            timeout,
            || async {
                let mut named = Vec::new();
                for sentinel in self.live_sentinels() {
                    named.push(master_addr_of(sentinel).await?);
                }
                let Some(new) = named.first() else {
                    return Err("no sentinel answers".to_owned());
                };
                if new == old_addr || named.iter().any(|addr| addr != new) {
                    return Err(format!("sentinels name {named:?}"));
                }
                let role = replication(self.node(self.data_port_of(new))).await;
                if role.as_ref().map(|r| r.role) != Some(Role::Primary) {
                    return Err(format!("{new} says {role:?}"));
                }
                Ok(Instant::now())
            },
        )
        .await
    }

    /// A plain redis-rs connection to the master the sentinels name.
    ///
    /// # Panics
    ///
    /// When no sentinel answers or the master cannot be reached.
    pub async fn raw_master(&self) -> redis::aio::MultiplexedConnection {
        let addr = self.master_addr().await;
        self.node(self.data_port_of(&addr)).raw(0).await
    }

    /// A plain redis-rs connection to server `port` (data node or sentinel),
    /// authenticated when it has a password.
    ///
    /// # Panics
    ///
    /// When `port` is not a server of this set or cannot be reached.
    pub async fn raw_node(&self, port: u16) -> redis::aio::MultiplexedConnection {
        self.node(port).raw(0).await
    }

    /// The logs of every server, each under a header naming it.
    pub fn log(&self) -> String {
        self.data
            .iter()
            .chain(&self.sentinels)
            .map(TestRedis::labelled_log)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn live_sentinels(&self) -> impl Iterator<Item = &TestRedis> {
        self.sentinels
            .iter()
            .filter(|sentinel| sentinel.is_running() && !sentinel.is_frozen())
    }

    /// The data node at `addr` (as sentinels report it).
    fn data_port_of(&self, addr: &str) -> u16 {
        self.data
            .iter()
            .find(|node| node.addr() == addr)
            .unwrap_or_else(|| panic!("{addr} is not a data node of this set"))
            .port()
    }

    fn node(&self, port: u16) -> &TestRedis {
        self.data
            .iter()
            .chain(&self.sentinels)
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("{port} is not a server of this sentinel set"))
    }

    fn node_mut(&mut self, port: u16) -> &mut TestRedis {
        self.data
            .iter_mut()
            .chain(&mut self.sentinels)
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("{port} is not a server of this sentinel set"))
    }
}

async fn connect(server: &TestRedis) -> Result<redis::aio::MultiplexedConnection, String> {
    server
        .client(0)
        .get_multiplexed_async_connection()
        .await
        .map_err(|err| format!("{}: {err}", server.addr()))
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME mymaster` on `sentinel`, as `ip:port`.
async fn master_addr_of(sentinel: &TestRedis) -> Result<String, String> {
    let mut conn = connect(sentinel).await?;
    let (ip, port): (String, u16) = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(MASTER_NAME)
        .query_async(&mut conn)
        .await
        .map_err(|err| format!("sentinel {}: {err}", sentinel.port()))?;
    Ok(format!("{ip}:{port}"))
}

fn node_addr(port: u16) -> String {
    format!("{}:{port}", Ipv4Addr::LOCALHOST)
}
