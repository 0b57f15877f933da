//! [`TestRedis`]: a throwaway `redis-server` owned by one test.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kv_module::{RedisConfig, RedisStore};
use tempfile::TempDir;

/// Environment variable naming the `redis-server` binary to run (default:
/// `redis-server` on `PATH`). The binary must be, or `exec`, the server
/// itself: the fixture kills the process it spawned.
pub const REDIS_SERVER_BIN_ENV: &str = "REDIS_SERVER_BIN";

const DEFAULT_BIN: &str = "redis-server";
/// The port a developer's own Redis listens on. The fixture never uses it,
/// so a test can never write to (or kill) that server.
const USER_REDIS_PORT: u16 = 6379;
/// How many fresh ports to try when the server exits before it answers;
/// the usual cause is another process taking the port between
/// [`free_port`] releasing it and the server binding it.
const START_ATTEMPTS: usize = 5;
/// How long a started server has to answer before the test fails.
const READY_DEADLINE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
const LOG_FILE: &str = "redis.log";
/// Output written before the server opens its log file (bad arguments).
const CONSOLE_FILE: &str = "console.log";

/// A `redis-server` started by a test on a free port of 127.0.0.1, never
/// 6379, with persistence off, its own temporary directory, and `KEYS`
/// disabled (renamed to nothing) so that any use of it by the code under
/// test fails loudly.
///
/// Dropping the fixture kills the server and waits for it; when the drop
/// happens during a panic (a failed assertion) the server log is printed
/// to stderr.
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
/// redis.stop(); // connections now fail
/// redis.restart().await; // same port, empty data set
/// # }
/// ```
#[derive(Debug)]
pub struct TestRedis {
    bin: OsString,
    port: u16,
    /// `None` while stopped.
    child: Option<Child>,
    /// Declared last so it is removed after the server is dead.
    dir: TempDir,
}

impl TestRedis {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When the binary cannot be spawned (with how to install it), when the
    /// server exits early [`START_ATTEMPTS`] times, or when it does not
    /// answer within [`READY_DEADLINE`] (with its log).
    pub async fn start() -> TestRedis {
        let bin = std::env::var_os(REDIS_SERVER_BIN_ENV).unwrap_or_else(|| DEFAULT_BIN.into());
        let dir = tempfile::Builder::new()
            .prefix("kv-module-redis-")
            .tempdir()
            .unwrap_or_else(|err| {
                panic!("cannot create a temporary directory for redis-server: {err}")
            });
        let mut server = TestRedis {
            bin,
            port: 0,
            child: None,
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
            "redis-server did not start in {START_ATTEMPTS} attempts ({}); its log follows",
            failures.join("; ")
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("{}:{}", Ipv4Addr::LOCALHOST, self.port)
    }

    /// The port the server listens on (kept across [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/DB`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://{}/{db}", self.addr())
    }

    /// A raw redis-rs connection to database `db`, for assertions that must
    /// not go through the code under test.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached (for example after
    /// [`stop`](Self::stop)).
    pub async fn raw(&self, db: u8) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url(db))
            .unwrap_or_else(|err| panic!("invalid test Redis URL {}: {err}", self.url(db)));
        client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|err| panic!("cannot connect to test Redis {}: {err}", self.url(db)))
    }

    /// A [`RedisStore`] named `name` on database `db` with `prefix`.
    ///
    /// # Panics
    ///
    /// When the store cannot be opened.
    pub async fn store(&self, name: &str, db: u8, prefix: &str) -> RedisStore {
        let config = RedisConfig::new(self.addr())
            .with_db(db)
            .with_prefix(prefix);
        RedisStore::open(name, config).await.unwrap_or_else(|err| {
            panic!("cannot open RedisStore `{name}` on {}: {err}", self.url(db))
        })
    }

    /// Kills the server and waits for it to exit, so that new connections
    /// are refused and open ones fail. Does nothing when already stopped.
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
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // `kill` fails only when the process has already exited, which
        // `wait` then reports just as well.
        let _ = child.kill();
        child
            .wait()
            .map(drop)
            .map_err(|err| format!("cannot wait for redis-server (pid {}): {err}", child.id()))
    }

    /// Starts the server again on the same port and directory, after
    /// [`stop`](Self::stop) (or stops it first). The data set starts empty:
    /// persistence is off.
    ///
    /// # Panics
    ///
    /// When the server exits early (the port was taken meanwhile) or does
    /// not answer in time.
    pub async fn restart(&mut self) {
        self.stop();
        if let Err(exited) = self.launch().await {
            panic!(
                "redis-server did not restart on port {}: {exited}; its log follows",
                self.port
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
        let child = Command::new(&self.bin)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join(LOG_FILE))
            .args(["--rename-command", "KEYS", ""])
            .stdin(Stdio::null())
            .stdout(clone_file(&console))
            .stderr(console)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start `{}`: {err}. The end-to-end tests need a real Redis: \
                     install it (`apt-get install redis-server`) or set {REDIS_SERVER_BIN_ENV} \
                     to the path of a redis-server binary.",
                    self.bin.to_string_lossy()
                )
            });
        self.child = Some(child);
        self.wait_until_ready().await
    }

    /// Polls every [`POLL_INTERVAL`] until the server answers `PING`, the
    /// process exits (`Err`), or [`READY_DEADLINE`] passes (panic).
    async fn wait_until_ready(&mut self) -> Result<(), String> {
        // A std clock, so that a test running with paused tokio time still
        // gets a real deadline.
        let deadline = Instant::now() + READY_DEADLINE;
        let own_dir = canonical(self.dir.path());
        loop {
            let child = self
                .child
                .as_mut()
                .expect("wait_until_ready runs right after spawning");
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Err(format!("redis-server exited early ({status})"));
                }
                Ok(None) => {}
                Err(err) => panic!("cannot poll redis-server (pid {}): {err}", child.id()),
            }
            // Another fixture that won the race for this port would answer
            // PING too; the directory tells our server apart.
            if self
                .served_dir()
                .await
                .is_some_and(|dir| canonical(&dir) == own_dir)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                // The panic below drops the fixture, which kills the server.
                panic!(
                    "redis-server on port {} did not answer PING within {READY_DEADLINE:?}; \
                     its log follows",
                    self.port
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The `dir` of the server answering on our port, once it answers
    /// `PING`; `None` while nothing (or nothing healthy) answers.
    async fn served_dir(&self) -> Option<PathBuf> {
        let client = redis::Client::open(self.url(0)).ok()?;
        // redis-rs bounds both the connect and each reply by default
        // (1 s and 500 ms), so one attempt cannot hang.
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        if pong != "PONG" {
            return None;
        }
        let dir: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("dir")
            .query_async(&mut conn)
            .await
            .ok()?;
        dir.into_iter().nth(1).map(PathBuf::from)
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
            eprintln!(
                "--- redis-server log ({}) ---\n{}\n--- end of redis-server log ---",
                self.addr(),
                self.log()
            );
        }
    }
}

/// A port of 127.0.0.1 that was free a moment ago: bound, read, released.
/// The server may still lose it to another process; [`TestRedis::start`]
/// retries on a new one then.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|err| panic!("cannot bind 127.0.0.1:0 to find a free port: {err}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("cannot read the address of a bound socket: {err}"))
            .port();
        if port != USER_REDIS_PORT {
            return port;
        }
    }
}

fn clone_file(file: &File) -> File {
    file.try_clone()
        .unwrap_or_else(|err| panic!("cannot duplicate the redis-server console file: {err}"))
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) => format!("<cannot read {}: {err}>", path.display()),
    }
}

/// `path` with symlinks resolved (redis-server reports its `dir` that way,
/// e.g. `/private/tmp` for `/tmp` on macOS), or as given when it cannot be.
fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}
