//! Issue 11, point 3, on the real binary: SIGTERM while a client holds a
//! partial request. The process stops accepting, drains for at most
//! `SHUTDOWN_TIMEOUT` (1 s here), closes its stores and exits 0; it used to
//! wait for the client forever.
//!
//! The binary is cargo's `CARGO_BIN_EXE_example-app`, or `EXAMPLE_APP_BIN`
//! when set (to run this test against another build).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::App;

#[test]
fn sigterm_with_a_partial_request_exits_within_the_shutdown_deadline() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = support::command(&dir);
    command
        .env("SHUTDOWN_TIMEOUT", "1s")
        // Far away: only the shutdown deadline can end the partial request.
        .env("HTTP_HEADER_READ_TIMEOUT", "60s")
        .env("NO_COLOR", "1");
    let mut app = App::start(command);
    let port = app.port;

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

    app.terminate();
    let signalled = Instant::now();
    let deadline = Duration::from_secs(1) + Duration::from_secs(3);
    let exit = loop {
        if let Some(exit) = app.try_wait() {
            break exit;
        }
        assert!(
            signalled.elapsed() < deadline,
            "still running {deadline:?} after SIGTERM with a 1 s shutdown deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    let log = &app.log;
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
