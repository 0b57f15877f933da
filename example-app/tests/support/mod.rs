//! The real binary under test: started on a free port with the memory
//! driver and a temporary SQLite file, its standard output read line by
//! line, stopped with SIGTERM. The binary is cargo's
//! `CARGO_BIN_EXE_example-app`, or `EXAMPLE_APP_BIN` when set (to test
//! another build).

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary to run.
pub fn bin() -> PathBuf {
    std::env::var_os("EXAMPLE_APP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_example-app")))
}

/// The app's command on the repository's `config/services.yaml`, memory
/// driver, any free port, a database in `dir`, stdout piped; the caller
/// adds its variables.
pub fn command(dir: &tempfile::TempDir) -> Command {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/services.yaml");
    let mut command = Command::new(bin());
    command
        .arg("--config")
        .arg(&config)
        .env("KV_DRIVER", "kvstore_memory")
        .env("APP_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", dir.path().join("app.db"))
        .env("OTP_DEV_ECHO", "true")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    command
}

/// A running app: killed if the test ends before it has exited.
pub struct App {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub log: Vec<String>,
    /// The port from the `listening` line.
    pub port: u16,
}

impl App {
    /// Spawns `command` and waits (up to 30 s) for its `listening` line.
    pub fn start(mut command: Command) -> App {
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut app = App {
            child,
            lines,
            log: Vec::new(),
            port: 0,
        };
        app.port = loop {
            let line = app
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|e| {
                    panic!("no `listening` line ({e}); log so far: {:#?}", app.log)
                });
            let port = line.contains("listening").then(|| port_in(&line)).flatten();
            app.log.push(line);
            if let Some(port) = port {
                break port;
            }
        };
        app
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(r#"kill -TERM "$1""#)
            .arg("sh")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// The exit status, if the app has exited; then every line it wrote
    /// is in [`log`](Self::log).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let exit = self.child.try_wait().expect("poll the app")?;
        self.log.extend(self.lines.iter());
        Some(exit)
    }

    /// Waits for the exit; then every line the app wrote is in
    /// [`log`](Self::log) (the pipe closed with the process).
    pub fn wait(&mut self) -> ExitStatus {
        let exit = self.child.wait().expect("wait for the app");
        self.log.extend(self.lines.iter());
        exit
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The port in a `listening` log line (`addr=127.0.0.1:PORT`, maybe with
/// colour codes or JSON quotes around it).
fn port_in(line: &str) -> Option<u16> {
    let rest = &line[line.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
