//! [`ServerProcess`]: a server process that cannot outlive the test
//! process, and [`free_port`], the ports the fixtures listen on.
//!
//! Shared fixtures live in `static`s, which Rust never drops, and a test
//! process may also die from a signal or an abort: a server killed "on
//! drop" would then be left running. So no server is a direct child of the
//! test process. Each runs under a tiny `sh` supervisor whose standard
//! input is a pipe from the test process; the kernel closes that pipe when
//! the test process dies, however it dies, and the supervisor then kills
//! the server. No `unsafe` (`prctl(PR_SET_PDEATHSIG)`) and no libc needed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

/// The supervisor, run as `sh -c SUPERVISOR kv-module-supervisor
/// CLEANUP_DIRS BIN ARGS...`.
///
/// * The server runs in the background with its output on the
///   supervisor's stderr (the console file) and no copy of the pipe, so
///   only the supervisor's own copy of the stdin pipe matters.
/// * Its pid is the first and only line on stdout; the supervisor then
///   points its stdout at the console too, so the reader sees end of file.
/// * A watcher subshell blocks on the pipe. `stop` (written by
///   [`ServerProcess::stop`]) or end of file (the test process died) makes
///   it SIGKILL the server; it exits 0 for `stop` and 1 for end of file.
/// * The supervisor waits for the server, so that when the supervisor has
///   exited the server is reaped and its port is free. It exits with the
///   server's status, which tells the test process about an early exit.
///   137 (SIGKILL) means the watcher killed it: after end of file the
///   temporary directories are removed, since the test process that owned
///   them is gone and can no longer do it. Any other status means the
///   server exited on its own, and the watcher is stopped so that it never
///   signals a pid the system may have reused. (A server SIGKILLed by
///   someone else, the OOM killer say, leaves the watcher waiting; it then
///   signals a pid that is most probably still free: accepted in tests.)
const SUPERVISOR: &str = r#"
cleanup_dirs=$1
shift
exec 3<&0
"$@" >&2 3<&- &
server=$!
echo "$server"
exec >&2
{ read -r command <&3; kill -KILL "$server"; [ "$command" = stop ]; } &
watcher=$!
exec 3<&-
wait "$server"
status=$?
if [ "$status" -ne 137 ]; then
    kill "$watcher" 2>/dev/null
    exit "$status"
fi
if ! wait "$watcher"; then
    printf '%s\n' "$cleanup_dirs" | while IFS= read -r dir; do
        case $dir in
            */kv-module-*) rm -rf -- "$dir" ;;
        esac
    done
fi
exit "$status"
"#;

/// Exit statuses with which `sh` reports that it could not run the binary
/// at all: 127 not found, 126 not executable.
const NOT_FOUND: i32 = 127;
const NOT_EXECUTABLE: i32 = 126;

/// Ports the fixtures pick from. Below 32768, where Linux starts handing
/// out ephemeral ports for outgoing connections (which could otherwise
/// take a port between our check and the server's bind), and low enough
/// that a cluster node's bus port (`port + 10000`) is below 32768 too.
/// The developer's own Redis (6379) is outside the range.
pub const PORT_RANGE: std::ops::Range<u16> = 10_000..22_768;
/// Added to a cluster node's port to get its cluster bus port.
pub const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// A server process (normally `redis-server`) under a supervisor that
/// kills it when this value is dropped, when [`stop`](Self::stop) is
/// called, or when the test process dies, whichever comes first.
///
/// [`pid`](Self::pid) is the server's own pid, not the supervisor's, so
/// [`freeze`](Self::freeze) stops the server itself.
#[derive(Debug)]
pub struct ServerProcess {
    supervisor: Child,
    /// The test process's end of the pipe; `None` once stopped.
    stdin: Option<ChildStdin>,
    pid: u32,
    frozen: bool,
}

impl ServerProcess {
    /// Starts `bin args...` under a supervisor, with its stdout and stderr
    /// appended to `console`. `cleanup_dirs` are removed by the supervisor
    /// if the test process dies first (only directories whose name contains
    /// `kv-module-`, as made by the fixtures).
    ///
    /// Returns as soon as the process is spawned: whether it keeps running
    /// is for [`exit_status`](Self::exit_status) to tell.
    ///
    /// # Panics
    ///
    /// When `sh` cannot be spawned or does not report the server's pid.
    pub fn spawn(
        bin: &OsStr,
        args: &[OsString],
        console: &File,
        cleanup_dirs: &[&Path],
    ) -> ServerProcess {
        let cleanup: Vec<String> = cleanup_dirs
            .iter()
            .map(|dir| {
                let dir = dir.to_str().unwrap_or_else(|| {
                    panic!("temporary directory {} is not UTF-8", dir.display())
                });
                assert!(
                    !dir.contains('\n'),
                    "temporary directory {dir:?} contains a newline"
                );
                dir.to_owned()
            })
            .collect();
        let stderr = console
            .try_clone()
            .unwrap_or_else(|err| panic!("cannot duplicate the server console file: {err}"));
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("kv-module-supervisor")
            .arg(cleanup.join("\n"))
            .arg(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot spawn `sh` to supervise a server: {err}"));
        let stdin = supervisor.stdin.take();
        let stdout = supervisor
            .stdout
            .take()
            .expect("stdout was configured as a pipe");
        // The supervisor prints the pid right after forking, before
        // anything that could block.
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let pid = match (read, line.trim().parse::<u32>()) {
            (Ok(_), Ok(pid)) => pid,
            (read, _) => {
                let status = supervisor.wait();
                panic!(
                    "the server supervisor did not report a pid (read {read:?}, line {line:?}, \
                     supervisor {status:?})"
                )
            }
        };
        ServerProcess {
            supervisor,
            stdin,
            pid,
            frozen: false,
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some` once the server has exited, with its status (the supervisor
    /// exits with it). A server exiting on its own is an early exit, since
    /// only [`stop`](Self::stop) ends a server otherwise.
    ///
    /// # Panics
    ///
    /// When the supervisor cannot be polled.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.supervisor.try_wait().unwrap_or_else(|err| {
            panic!(
                "cannot poll the supervisor of server pid {}: {err}",
                self.pid
            )
        })
    }

    /// Whether `status` says the binary could not be run at all (not
    /// found or not executable), as opposed to a server that started and
    /// then exited.
    pub fn is_not_found(status: ExitStatus) -> bool {
        matches!(status.code(), Some(NOT_FOUND | NOT_EXECUTABLE))
    }

    /// Stops the server with SIGSTOP: it keeps its sockets open but
    /// answers nothing, like a machine that hangs, until
    /// [`thaw`](Self::thaw).
    ///
    /// # Panics
    ///
    /// When the server has exited or `kill` fails.
    pub fn freeze(&mut self) {
        self.signal("STOP");
        self.frozen = true;
    }

    /// Resumes a server stopped by [`freeze`](Self::freeze) (SIGCONT). A
    /// server that is not frozen is left alone.
    ///
    /// # Panics
    ///
    /// When the server has exited or `kill` fails.
    pub fn thaw(&mut self) {
        if self.frozen {
            self.signal("CONT");
            self.frozen = false;
        }
    }

    /// Whether the server is stopped by [`freeze`](Self::freeze).
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Sends `SIG<name>` to the server with the shell's `kill` builtin
    /// (no libc, and no dependency on a `kill` binary being installed).
    fn signal(&mut self, name: &str) {
        // While the supervisor runs, it has not reaped the server, so the
        // pid cannot belong to another process yet.
        if let Some(status) = self.exit_status() {
            panic!(
                "cannot send SIG{name} to server pid {}: it has exited ({status})",
                self.pid
            );
        }
        let status = Command::new("sh")
            .arg("-c")
            .arg(r#"kill -"$1" "$2""#)
            .arg("sh")
            .arg(name)
            .arg(self.pid.to_string())
            .status()
            .unwrap_or_else(|err| panic!("cannot run `kill -{name} {}`: {err}", self.pid));
        assert!(
            status.success(),
            "`kill -{name} {}` failed ({status})",
            self.pid
        );
    }

    /// Kills the server (SIGKILL: an outage, not a clean stop) and waits
    /// until it is reaped, so that its port is free when this returns.
    /// Does nothing the second time.
    ///
    /// A frozen server is killed as it is: SIGKILL ends a stopped process
    /// without waking it first, so it cannot answer anything on the way.
    ///
    /// # Errors
    ///
    /// When the supervisor cannot be waited for.
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut stdin) = self.stdin.take() else {
            return Ok(());
        };
        // A write error means the supervisor has already exited (the
        // server exited on its own); `wait` below reports that just as
        // well. Dropping `stdin` closes the pipe either way.
        let _ = stdin.write_all(b"stop\n");
        drop(stdin);
        self.frozen = false;
        self.supervisor
            .wait()
            .map(drop)
            .map_err(|err| format!("cannot wait for server pid {}: {err}", self.pid))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // No panic here: a panic while already panicking aborts the test
        // binary and loses every other test's report.
        if let Err(err) = self.stop() {
            eprintln!("{err}");
        }
    }
}

/// A port of 127.0.0.1 in [`PORT_RANGE`] that was free a moment ago, and
/// whose cluster bus port (`port + 10000`) was free too: both were bound
/// and released. A server may still lose the port to another process
/// before binding it; the fixtures retry on a new one then.
///
/// # Panics
///
/// When no free pair is found in many random tries.
pub fn free_port() -> u16 {
    const TRIES: usize = 1_000;
    // RandomState is seeded randomly per process (and varies per call),
    // which is all the randomness needed to make concurrent test
    // processes unlikely to race for the same port.
    let random = RandomState::new();
    for attempt in 0..TRIES {
        let span = u64::from(PORT_RANGE.end - PORT_RANGE.start);
        let offset = random.hash_one((attempt, std::process::id())) % span;
        let port = PORT_RANGE.start
            + u16::try_from(offset).expect("the offset is below the span of a u16 range");
        if is_free(port) && is_free(port + CLUSTER_BUS_OFFSET) {
            return port;
        }
    }
    panic!(
        "no free port pair (port, port + {CLUSTER_BUS_OFFSET}) in {PORT_RANGE:?} after {TRIES} tries"
    )
}

fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}
