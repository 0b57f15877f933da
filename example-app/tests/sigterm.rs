//! Issue 11, point 3, on the real binary: SIGTERM while a client holds a
//! partial request. The process stops accepting, drains for at most
//! `SHUTDOWN_TIMEOUT` (1 s here), closes its stores and exits 0; it used to
//! wait for the client forever.
//!
//! The binary is cargo's `CARGO_BIN_EXE_example-app`, or `EXAMPLE_APP_BIN`
//! when set (to run this test against another build).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the app if the test ends before it has exited.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The port in a `listening` log line (`addr=127.0.0.1:PORT`, maybe with
/// colour codes around the field name).
fn port_in(line: &str) -> Option<u16> {
    let rest = &line[line.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn sigterm_with_a_partial_request_exits_within_the_shutdown_deadline() {
    let bin = std::env::var_os("EXAMPLE_APP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_example-app")));
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/services.yaml");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let child = Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .env("KV_DRIVER", "kvstore_memory")
        .env("APP_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", dir.path().join("app.db"))
        .env("OTP_DEV_ECHO", "true")
        .env("SHUTDOWN_TIMEOUT", "1s")
        // Far away: only the shutdown deadline can end the partial request.
        .env("HTTP_HEADER_READ_TIMEOUT", "60s")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut app = App(child);
    let stdout = app.0.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let port = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no `listening` line ({e}); log so far: {log:#?}"));
        let port = line.contains("listening").then(|| port_in(&line)).flatten();
        log.push(line);
        if let Some(port) = port {
            break port;
        }
    };

    let mut partial = TcpStream::connect(("127.0.0.1", port)).expect("connect to the app");
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: app\r\nX-Slow: ")
        .expect("send part of a request");
    let mut healthy = TcpStream::connect(("127.0.0.1", port)).expect("connect to the app");
    healthy
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        .expect("send a request");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut healthy, &mut response).expect("a response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");

    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"kill -TERM "$1""#)
        .arg("sh")
        .arg(app.0.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed: {status}");
    let signalled = Instant::now();
    let deadline = Duration::from_secs(1) + Duration::from_secs(3);
    let exit = loop {
        if let Some(exit) = app.0.try_wait().expect("poll the app") {
            break exit;
        }
        assert!(
            signalled.elapsed() < deadline,
            "still running {deadline:?} after SIGTERM with a 1 s shutdown deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    log.extend(lines.try_iter());
    assert!(exit.success(), "exit status {exit}; log: {log:#?}");
    assert!(
        took >= Duration::from_millis(900),
        "the partial request was given the drain deadline, not cut at once: {took:?}"
    );
    assert!(
        log.iter().any(|l| l.contains("stores closed")),
        "the stores were closed: {log:#?}"
    );
    drop(partial);
}
