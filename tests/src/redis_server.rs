//! [`TestRedis`]: a throwaway `redis-server` owned by one test.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kv_module::{RedisConfig, RedisStore};
use tempfile::TempDir;

use crate::process::{ServerProcess, free_port};
use crate::tls::{TestCerts, TlsClientAuth, install_crypto_provider};

/// Environment variable naming the `redis-server` binary to run (default:
/// `redis-server` on `PATH`). The binary must be, or `exec`, the server
/// itself: the fixture signals and identifies the process it spawned.
pub const REDIS_SERVER_BIN_ENV: &str = "REDIS_SERVER_BIN";

const DEFAULT_BIN: &str = "redis-server";
/// How many fresh ports to try when the server exits before it answers;
/// the usual cause is another process taking the port between
/// [`free_port`] releasing it and the server binding it.
const START_ATTEMPTS: usize = 5;
/// How long a started server has to answer before the test fails. Loaded
/// 2-core machines (several engineers building at once) need the margin.
const READY_DEADLINE: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
const LOG_FILE: &str = "redis.log";
/// Output written before the server opens its log file (bad arguments).
const CONSOLE_FILE: &str = "console.log";
/// The configuration file of a sentinel, which it rewrites as it learns.
const SENTINEL_CONF_FILE: &str = "sentinel.conf";

/// How to run one server: what [`TestRedis::start`],
/// [`TestRedis::start_tls`] and the cluster and sentinel fixtures vary.
#[derive(Clone, Debug, Default)]
pub(crate) struct ServerSpec {
    /// What the server is, for messages ("redis-server", "cluster node").
    pub(crate) label: &'static str,
    /// TLS only, on the fixture's port (`--port 0`).
    pub(crate) tls: Option<(TestCerts, TlsClientAuth)>,
    /// `requirepass`; the fixture's own clients authenticate with it.
    pub(crate) password: Option<String>,
    /// Run as a sentinel with this initial configuration file.
    pub(crate) sentinel_conf: Option<String>,
    /// Further arguments, after the common ones.
    pub(crate) extra_args: Vec<OsString>,
}

/// A `redis-server` started by a test on a free port of 127.0.0.1 below
/// 32768 (never 6379), with persistence off, its own temporary directory,
/// and `KEYS` disabled (renamed to nothing) so that any use of it by the
/// code under test fails loudly.
///
/// The server runs under a supervisor ([`ServerProcess`]) that kills it
/// when the fixture is dropped and also when the test process dies without
/// dropping it. When the drop happens during a panic (a failed assertion)
/// the server log is printed to stderr.
///
/// ```no_run
/// use kv_module_tests::TestRedis;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut redis = TestRedis::start().await;
/// let mut raw = redis.raw(0).await;
/// let pong: String = redis::cmd("PING").query_async(&mut raw).await.expect("PING");
/// assert_eq!(pong, "PONG");
///
/// redis.freeze(); // SIGSTOP: connections stay open, nothing answers
/// redis.thaw();
/// redis.stop(); // connections now fail
/// redis.restart().await; // same port, empty data set
/// # }
/// ```
#[derive(Debug)]
pub struct TestRedis {
    bin: OsString,
    port: u16,
    spec: ServerSpec,
    /// `None` while stopped.
    process: Option<ServerProcess>,
    /// Declared last so it is removed after the server is dead.
    dir: TempDir,
}

impl TestRedis {
    /// Starts a server on a free port and waits until it answers.
    ///
    /// # Panics
    ///
    /// When the binary cannot be run (with how to install it), when the
    /// server exits early 5 times (each on a new port), or when it does not
    /// answer within 20 s (with its log).
    pub async fn start() -> TestRedis {
        TestRedis::start_with(ServerSpec {
            label: "redis-server",
            ..ServerSpec::default()
        })
        .await
    }

    /// Starts a server that speaks only TLS on its port (`--port 0
    /// --tls-port P`), with the server certificate of `certs`, trusting
    /// their CA for client certificates, which it requires or only accepts
    /// according to `client_auth`. The fixture's own connections
    /// ([`raw`](Self::raw), [`client`](Self::client)) present the client
    /// certificate of `certs`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub async fn start_tls(certs: &TestCerts, client_auth: TlsClientAuth) -> TestRedis {
        TestRedis::start_with(ServerSpec {
            label: "redis-server (TLS)",
            tls: Some((certs.clone(), client_auth)),
            ..ServerSpec::default()
        })
        .await
    }

    /// Starts a server as `spec` says: on a free port, retried on another
    /// one when it exits early.
    pub(crate) async fn start_with(spec: ServerSpec) -> TestRedis {
        let bin = std::env::var_os(REDIS_SERVER_BIN_ENV).unwrap_or_else(|| DEFAULT_BIN.into());
        let dir = tempfile::Builder::new()
            .prefix("kv-module-redis-")
            .tempdir()
            .unwrap_or_else(|err| {
                panic!("cannot create a temporary directory for redis-server: {err}")
            });
        if let Some(conf) = &spec.sentinel_conf {
            let path = dir.path().join(SENTINEL_CONF_FILE);
            fs::write(&path, conf)
                .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
        }
        let mut server = TestRedis {
            bin,
            port: 0,
            spec,
            process: None,
            dir,
        };
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            match server.launch().await {
                Ok(()) => return server,
                Err(exited) => failures.push(format!("port {}: {exited}", server.port)),
            }
        }
        // Dropping `server` while panicking prints its log.
        panic!(
            "{} did not start in {START_ATTEMPTS} attempts ({}); its log follows",
            server.spec.label,
            failures.join("; ")
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("{}:{}", Ipv4Addr::LOCALHOST, self.port)
    }

    /// The port the server listens on (kept across [`restart`](Self::restart)).
    /// For a TLS server, its TLS port: it has no other.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/DB`, or `rediss://…` for a TLS server (whose
    /// client then needs the CA of its [`TestCerts`], see
    /// [`TestCerts::tls_certificates`]), with the password when the server
    /// has one.
    pub fn url(&self, db: u8) -> String {
        let scheme = if self.spec.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = match &self.spec.password {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        format!("{scheme}://{auth}{}/{db}", self.addr())
    }

    /// The server's own temporary directory (its log, `nodes.conf` or
    /// `sentinel.conf`), removed when the fixture is dropped or, by the
    /// supervisor, when the test process dies.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.spec.tls.is_some()
    }

    /// The server's pid (not its supervisor's).
    ///
    /// # Panics
    ///
    /// While the server is stopped.
    pub fn pid(&self) -> u32 {
        self.process
            .as_ref()
            .unwrap_or_else(|| panic!("{} on port {} is stopped", self.spec.label, self.port))
            .pid()
    }

    /// Whether the server runs (it may still be frozen): false after
    /// [`stop`](Self::stop).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// A redis-rs client for database `db`, with the certificates (TLS)
    /// and password the server needs.
    ///
    /// # Panics
    ///
    /// When redis-rs refuses the URL or the certificates.
    pub fn client(&self, db: u8) -> redis::Client {
        let url = self.url(db);
        let client = match &self.spec.tls {
            Some((certs, _)) => {
                install_crypto_provider();
                redis::Client::build_with_tls(url.as_str(), certs.tls_certificates())
            }
            None => redis::Client::open(url.as_str()),
        };
        client.unwrap_or_else(|err| panic!("invalid test Redis client for {url}: {err}"))
    }

    /// A raw redis-rs connection to database `db`, for assertions that must
    /// not go through the code under test. redis-rs bounds the connect (1 s)
    /// and each reply (500 ms) by default, so a frozen server makes calls
    /// fail rather than hang.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached (for example after
    /// [`stop`](Self::stop)).
    pub async fn raw(&self, db: u8) -> redis::aio::MultiplexedConnection {
        self.client(db)
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|err| panic!("cannot connect to test Redis {}: {err}", self.url(db)))
    }

    /// A [`RedisStore`] named `name` on database `db` with `prefix`.
    ///
    /// # Panics
    ///
    /// When the store cannot be opened, and for a TLS server (build its
    /// [`RedisConfig`] in the test).
    pub async fn store(&self, name: &str, db: u8, prefix: &str) -> RedisStore {
        assert!(
            !self.is_tls() && self.spec.password.is_none(),
            "TestRedis::store opens plain stores only; configure TLS or a password in the test"
        );
        let config = RedisConfig::new(self.addr())
            .with_db(db)
            .with_prefix(prefix);
        RedisStore::open(name, config).await.unwrap_or_else(|err| {
            panic!("cannot open RedisStore `{name}` on {}: {err}", self.url(db))
        })
    }

    /// Freezes the server with SIGSTOP: its sockets stay open and accept
    /// connections, but nothing is answered until [`thaw`](Self::thaw), as
    /// when a machine hangs. A frozen server is still killed on drop.
    ///
    /// # Panics
    ///
    /// When the server is stopped or the signal cannot be sent.
    pub fn freeze(&mut self) {
        self.running_process("freeze").freeze();
    }

    /// Resumes a server frozen by [`freeze`](Self::freeze) (SIGCONT); does
    /// nothing when it is not frozen.
    ///
    /// # Panics
    ///
    /// When the server is stopped or the signal cannot be sent.
    pub fn thaw(&mut self) {
        self.running_process("thaw").thaw();
    }

    /// Whether the server is frozen by [`freeze`](Self::freeze).
    pub fn is_frozen(&self) -> bool {
        self.process.as_ref().is_some_and(ServerProcess::is_frozen)
    }

    fn running_process(&mut self, action: &str) -> &mut ServerProcess {
        let (label, port) = (self.spec.label, self.port);
        self.process
            .as_mut()
            .unwrap_or_else(|| panic!("cannot {action} {label} on port {port}: it is stopped"))
    }

    /// Kills the server (SIGKILL, even when frozen) and waits until it is
    /// gone, so that new connections are refused and open ones fail. Does
    /// nothing when already stopped.
    ///
    /// # Panics
    ///
    /// When the process cannot be waited for.
    pub fn stop(&mut self) {
        if let Err(err) = self.kill() {
            panic!("{err}");
        }
    }

    /// SIGKILL rather than `SHUTDOWN`: an outage, not a clean stop.
    fn kill(&mut self) -> Result<(), String> {
        match self.process.take() {
            Some(mut process) => process.stop(),
            None => Ok(()),
        }
    }

    /// Starts the server again on the same port and directory, after
    /// [`stop`](Self::stop) (or stops it first). The data set starts empty:
    /// persistence is off. A cluster node keeps its `nodes.conf`, a
    /// sentinel its rewritten configuration.
    ///
    /// # Panics
    ///
    /// When the server exits early (the port was taken meanwhile) or does
    /// not answer in time.
    pub async fn restart(&mut self) {
        self.stop();
        if let Err(exited) = self.launch().await {
            panic!(
                "{} did not restart on port {}: {exited}; its log follows",
                self.spec.label, self.port
            );
        }
    }

    /// The server's log so far (all runs, including restarts), followed by
    /// anything it printed to the console before opening the log.
    pub fn log(&self) -> String {
        let mut log = read_lossy(&self.dir.path().join(LOG_FILE));
        let console = fs::read(self.dir.path().join(CONSOLE_FILE)).unwrap_or_default();
        let console = String::from_utf8_lossy(&console);
        if !console.trim().is_empty() {
            log.push_str("\n--- console ---\n");
            log.push_str(&console);
        }
        log
    }

    /// What the fixture prints when a test panics: the log with a header.
    pub(crate) fn labelled_log(&self) -> String {
        format!(
            "--- {} log ({}) ---\n{}\n--- end of {} log ({}) ---",
            self.spec.label,
            self.addr(),
            self.log(),
            self.spec.label,
            self.addr()
        )
    }

    /// The command line after the binary.
    fn args(&self) -> Vec<OsString> {
        let dir = self.dir.path();
        let mut args = Args::default();
        if self.spec.sentinel_conf.is_some() {
            // The configuration file must come first; sentinel rewrites it.
            args.path(dir.join(SENTINEL_CONF_FILE))
                .strs(&["--sentinel"]);
        }
        let port = self.port.to_string();
        match &self.spec.tls {
            None => args.strs(&["--port", &port]),
            Some((certs, client_auth)) => args
                .strs(&["--port", "0", "--tls-port", &port])
                .strs(&["--tls-auth-clients", client_auth.config_value()])
                .strs(&["--tls-cert-file"])
                .path(certs.cert_file())
                .strs(&["--tls-key-file"])
                .path(certs.key_file())
                .strs(&["--tls-ca-cert-file"])
                .path(certs.ca_file()),
        };
        args.strs(&["--bind", "127.0.0.1"]);
        if self.spec.sentinel_conf.is_none() {
            args.strs(&["--save", "", "--appendonly", "no"]).strs(&[
                "--rename-command",
                "KEYS",
                "",
            ]);
        }
        if let Some(password) = &self.spec.password {
            args.strs(&["--requirepass", password]);
        }
        args.strs(&["--dir"])
            .path(dir.to_owned())
            .strs(&["--logfile"])
            .path(dir.join(LOG_FILE));
        args.0.extend(self.spec.extra_args.iter().cloned());
        args.0
    }

    /// Spawns the server on `self.port` and waits until it answers.
    /// `Err` describes an early exit, which a caller may retry on another
    /// port; the other failures panic.
    async fn launch(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let console = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(CONSOLE_FILE))
            .unwrap_or_else(|err| {
                panic!("cannot create {}: {err}", dir.join(CONSOLE_FILE).display())
            });
        let mut cleanup = vec![dir];
        if let Some((certs, _)) = &self.spec.tls {
            cleanup.push(certs.dir());
        }
        let process = ServerProcess::spawn(&self.bin, &self.args(), &console, &cleanup);
        self.process = Some(process);
        self.wait_until_ready().await
    }

    /// Polls every [`POLL_INTERVAL`] until the server answers as the
    /// process we started, the process exits (`Err`), or
    /// [`READY_DEADLINE`] passes (panic).
    async fn wait_until_ready(&mut self) -> Result<(), String> {
        // A std clock, so that a test running with paused tokio time still
        // gets a real deadline.
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let process = self
                .process
                .as_mut()
                .expect("wait_until_ready runs right after spawning");
            let pid = process.pid();
            if let Some(status) = process.exit_status() {
                self.process = None;
                if ServerProcess::is_not_found(status) {
                    panic!(
                        "cannot run `{}` ({status}). The end-to-end tests need a real Redis: \
                         install it (`apt-get install redis-server`) or set \
                         {REDIS_SERVER_BIN_ENV} to the path of a redis-server binary.",
                        self.bin.to_string_lossy()
                    );
                }
                return Err(format!("{} exited early ({status})", self.spec.label));
            }
            // Another fixture that won the race for this port would answer
            // too; the pid tells our server apart, and works for sentinels
            // and TLS servers alike.
            if self.served_pid().await == Some(pid) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                // The panic below drops the fixture, which kills the server.
                panic!(
                    "{} on port {} did not answer within {READY_DEADLINE:?}; its log follows",
                    self.spec.label, self.port
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The `process_id` of the server answering on our port; `None` while
    /// nothing (or nothing healthy) answers.
    async fn served_pid(&self) -> Option<u32> {
        // redis-rs bounds both the connect and each reply by default
        // (1 s and 500 ms), so one attempt cannot hang.
        let mut conn = self
            .client(0)
            .get_multiplexed_async_connection()
            .await
            .ok()?;
        let info: redis::InfoDict = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .ok()?;
        info.get("process_id")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // No panic here: a panic while already panicking aborts the test
        // binary and loses every other test's report.
        if let Err(err) = self.kill() {
            eprintln!("{err}");
        }
        if std::thread::panicking() {
            eprintln!("{}", self.labelled_log());
        }
    }
}

/// A command line under construction.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn strs(&mut self, items: &[&str]) -> &mut Self {
        self.0.extend(items.iter().map(OsString::from));
        self
    }

    fn path(&mut self, path: PathBuf) -> &mut Self {
        self.0.push(path.into());
        self
    }
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) => format!("<cannot read {}: {err}>", path.display()),
    }
}
