//! [`CommandMonitor`]: the commands a test's own stores send to a shared
//! Redis Cluster, counted per command as `INFO commandstats` counts them
//! on a server of the test's own.
//!
//! `INFO commandstats` is server-wide: on the [shared
//! cluster](crate::TestCluster::shared), where the tests of a binary run
//! side by side, its numbers include everyone's commands. `MONITOR` shows
//! every command with the client that sent it, and the commands a script
//! runs right after the script's own line (`[0 lua]`, Redis 7). The
//! monitor attributes to the test:
//!
//! * every command of a client that, during the window, sent a command
//!   with an argument under the test's namespace (its keys, on a
//!   [`ClusterBackend`](crate::backends::ClusterBackend)): those clients
//!   are the test's own store connections, since every store opens its
//!   own; and
//! * every command a script of such a client ran (`TIME` included, which
//!   names no key).
//!
//! The counts are therefore exact for the test's stores, whatever other
//! tests do meanwhile, with one limit: a store connection to a primary
//! that sends that primary only commands naming none of the test's keys
//! (a `PING` alone) is not recognised. Replicas are not watched: the
//! stores never read from them, and on a replica the primary's
//! replication link would carry every test's writes.
//!
//! ```no_run
//! use kv_module_tests::backends::ClusterBackend;
//! use kv_module_tests::command_monitor::CommandMonitor;
//! use kv_module_tests::conformance::Backend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let backend = ClusterBackend::shared();
//! let store = backend.store("cache", 0, "app").await;
//! let monitor = CommandMonitor::start(&backend.cluster, &backend.full_prefix(0, "")).await;
//! store.get_bytes("k").await.unwrap();
//! let calls = monitor.finish().await;
//! assert_eq!(calls.get("get"), Some(&1));
//! # }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::{Role, TestCluster};

/// How long [`CommandMonitor::finish`] waits for a node to show the
/// synchronisation `ECHO`.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// Commands that `INFO commandstats` counts per subcommand
/// (`client|setinfo`).
const CONTAINER_COMMANDS: [&str; 15] = [
    "acl", "client", "cluster", "command", "config", "function", "latency", "memory", "module",
    "object", "pubsub", "script", "slowlog", "xgroup", "xinfo",
];

type Lines = Pin<Box<dyn Stream<Item = String> + Send>>;

/// `MONITOR` on every primary of a cluster, from [`start`](Self::start)
/// to [`finish`](Self::finish), attributing commands to the stores of one
/// namespace (see the [module documentation](self)).
pub struct CommandMonitor {
    cluster: std::sync::Arc<TestCluster>,
    namespace: String,
    primaries: Vec<(u16, Lines)>,
}

impl CommandMonitor {
    /// Starts watching every primary of `cluster` for commands of the
    /// stores whose keys are under `namespace` (a store prefix, or its
    /// first component: `t1n2` matches keys `t1n2:…` and `t1n2.d2:…`).
    /// Commands sent before this returns are not seen.
    ///
    /// # Panics
    ///
    /// On a TLS cluster (not supported), or when a primary refuses
    /// `MONITOR`.
    pub async fn start(cluster: &std::sync::Arc<TestCluster>, namespace: &str) -> Self {
        assert!(
            cluster.certs().is_none(),
            "CommandMonitor watches plain-text clusters only"
        );
        let mut primaries = Vec::new();
        for node in cluster.nodes().await {
            if node.role != Some(Role::Primary) {
                continue;
            }
            let client = redis::Client::open(format!("redis://{}", node.addr()))
                .unwrap_or_else(|err| panic!("client for {}: {err}", node.addr()));
            let monitor = client
                .get_async_monitor()
                .await
                .unwrap_or_else(|err| panic!("MONITOR on {}: {err}", node.addr()));
            let lines: Lines = Box::pin(monitor.into_on_message::<String>());
            primaries.push((node.port, lines));
        }
        assert!(!primaries.is_empty(), "no primary answers");
        Self {
            cluster: cluster.clone(),
            namespace: namespace.to_owned(),
            primaries,
        }
    }

    /// Stops watching and returns the calls per command (lower case,
    /// `container|subcommand` as `INFO commandstats` names them) that the
    /// namespace's stores made since [`start`](Self::start), scripts'
    /// inner commands included. Every command the stores completed before
    /// this call is counted: each primary is sent an `ECHO`, and its
    /// monitor read up to that `ECHO`.
    ///
    /// # Panics
    ///
    /// When a primary does not show the `ECHO` within 10 s.
    pub async fn finish(self) -> BTreeMap<String, u64> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut calls = BTreeMap::new();
        for (port, mut lines) in self.primaries {
            let token = format!(
                "command-monitor-sync-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let mut conn = self.cluster.raw_node(port).await;
            let _: String = redis::cmd("ECHO")
                .arg(&token)
                .query_async(&mut conn)
                .await
                .unwrap_or_else(|err| panic!("ECHO on {port}: {err}"));
            let mut seen = Vec::new();
            let read = async {
                while let Some(line) = lines.next().await {
                    if line.contains(&token) {
                        return true;
                    }
                    seen.push(line);
                }
                false
            };
            match tokio::time::timeout(SYNC_TIMEOUT, read).await {
                Ok(true) => {}
                Ok(false) => panic!("the MONITOR connection to {port} closed"),
                Err(_) => panic!("node {port} did not show `ECHO {token}` within {SYNC_TIMEOUT:?}"),
            }
            for (command, n) in attribute(&seen, &self.namespace) {
                *calls.entry(command).or_insert(0) += n;
            }
        }
        calls
    }
}

/// One `MONITOR` line: `<time> [<db> <client address>|lua] "arg" ...`.
#[derive(Debug, PartialEq, Eq)]
struct MonitorLine {
    /// `None` for a command run by a script.
    client: Option<String>,
    args: Vec<Vec<u8>>,
}

impl MonitorLine {
    fn parse(line: &str) -> Option<MonitorLine> {
        let (_, rest) = line.split_once(" [")?;
        let (source, args) = rest.split_once("] ")?;
        let (_db, client) = source.split_once(' ')?;
        Some(MonitorLine {
            client: (client != "lua").then(|| client.to_owned()),
            args: parse_args(args)?,
        })
    }

    /// `get`, or `client|setinfo` for a container command.
    fn command(&self) -> Option<String> {
        let name = String::from_utf8_lossy(self.args.first()?).to_lowercase();
        match self.args.get(1) {
            Some(sub) if CONTAINER_COMMANDS.contains(&name.as_str()) => Some(format!(
                "{name}|{}",
                String::from_utf8_lossy(sub).to_lowercase()
            )),
            _ => Some(name),
        }
    }

    fn names_namespace(&self, namespace: &str) -> bool {
        self.args.iter().skip(1).any(|arg| {
            arg.strip_prefix(namespace.as_bytes())
                .is_some_and(|rest| rest.starts_with(b":") || rest.starts_with(b"."))
        })
    }
}

/// The arguments of a line, as Redis quotes them (`sdscatrepr`): each in
/// double quotes, with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` and
/// `\xHH` escapes.
fn parse_args(text: &str) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut bytes = text.bytes().peekable();
    loop {
        while bytes.peek() == Some(&b' ') {
            bytes.next();
        }
        match bytes.next() {
            None => return Some(args),
            Some(b'"') => {}
            Some(_) => return None,
        }
        let mut arg = Vec::new();
        loop {
            match bytes.next()? {
                b'"' => break,
                b'\\' => match bytes.next()? {
                    b'n' => arg.push(b'\n'),
                    b'r' => arg.push(b'\r'),
                    b't' => arg.push(b'\t'),
                    b'a' => arg.push(0x07),
                    b'b' => arg.push(0x08),
                    b'x' => {
                        let hex = [bytes.next()?, bytes.next()?];
                        let hex = std::str::from_utf8(&hex).ok()?;
                        arg.push(u8::from_str_radix(hex, 16).ok()?);
                    }
                    other => arg.push(other),
                },
                other => arg.push(other),
            }
        }
        args.push(arg);
    }
}

/// The calls per command of the clients that named `namespace` in
/// `lines`, with the commands their scripts ran (the `lua` lines right
/// after a client's line are its script's).
fn attribute(lines: &[String], namespace: &str) -> BTreeMap<String, u64> {
    let parsed: Vec<MonitorLine> = lines
        .iter()
        .filter_map(|line| MonitorLine::parse(line))
        .collect();
    let ours: HashSet<&str> = parsed
        .iter()
        .filter(|line| line.names_namespace(namespace))
        .filter_map(|line| line.client.as_deref())
        .collect();
    let mut calls = BTreeMap::new();
    let mut in_ours = false;
    for line in &parsed {
        if let Some(client) = &line.client {
            in_ours = ours.contains(client.as_str());
        }
        if in_ours && let Some(command) = line.command() {
            *calls.entry(command).or_insert(0) += 1;
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_and_script_lines() {
        let line = MonitorLine::parse(
            r#"1796101780.099702 [0 127.0.0.1:60684] "evalsha" "b0eb" "1" "k{a}" "x\"y\\z\x01""#,
        )
        .expect("parses");
        assert_eq!(line.client.as_deref(), Some("127.0.0.1:60684"));
        assert_eq!(
            line.args,
            [&b"evalsha"[..], b"b0eb", b"1", b"k{a}", b"x\"y\\z\x01"]
        );
        let lua = MonitorLine::parse(r#"1796101780.099823 [0 lua] "TIME""#).expect("parses");
        assert_eq!(lua.client, None);
        assert_eq!(lua.command().as_deref(), Some("time"));
        let sub = MonitorLine::parse(r#"1.0 [0 127.0.0.1:1] "CLIENT" "SETINFO" "lib-name" "x""#)
            .expect("parses");
        assert_eq!(sub.command().as_deref(), Some("client|setinfo"));
    }

    #[test]
    fn attributes_the_namespace_clients_and_their_scripts() {
        let lines: Vec<String> = [
            r#"1.0 [0 127.0.0.1:1] "PING""#,
            r#"1.1 [0 127.0.0.1:2] "evalsha" "s" "1" "t1n2:k""#,
            r#"1.2 [0 lua] "GET" "t1n2:k""#,
            r#"1.3 [0 lua] "TIME""#,
            r#"1.4 [0 127.0.0.1:3] "evalsha" "s" "1" "t1n23:k""#,
            r#"1.5 [0 lua] "TIME""#,
            r#"1.6 [0 127.0.0.1:3] "get" "t1n2""#,
            r#"1.7 [0 127.0.0.1:2] "PING""#,
            r#"1.8 [0 127.0.0.1:4] "set" "t1n2.d2:rl:k" "1""#,
        ]
        .map(str::to_owned)
        .to_vec();
        let calls = attribute(&lines, "t1n2");
        let expected: BTreeMap<String, u64> = [
            ("evalsha", 1),
            ("get", 1),
            ("ping", 1),
            ("set", 1),
            ("time", 1),
        ]
        .map(|(c, n)| (c.to_owned(), n))
        .into();
        assert_eq!(calls, expected);
    }
}
