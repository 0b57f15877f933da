//! Logs of the real binary, written to a pipe (as to a file or a
//! collector): `LOG_FORMAT=json` gives one JSON object per line, `text`
//! lines for people; neither carries colour codes when the output is not
//! a terminal (`NO_COLOR` unset here on purpose); the request's line has
//! its id, method, route, status and latency, and never the query string;
//! an unknown `LOG_FORMAT` stops the start with a message.
//!
//! The binary is cargo's `CARGO_BIN_EXE_example-app`, or `EXAMPLE_APP_BIN`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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

fn bin() -> PathBuf {
    std::env::var_os("EXAMPLE_APP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_example-app")))
}

fn command(log_format: &str, dir: &tempfile::TempDir) -> Command {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/services.yaml");
    let mut command = Command::new(bin());
    command
        .arg("--config")
        .arg(&config)
        .env("KV_DRIVER", "kvstore_memory")
        .env("APP_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", dir.path().join("app.db"))
        .env("OTP_DEV_ECHO", "true")
        .env("SHUTDOWN_TIMEOUT", "1s")
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", log_format)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The port in the `listening` line.
fn port_in(line: &str) -> Option<u16> {
    let rest = &line[line.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Starts the app, sends one request whose query holds an e-mail address,
/// stops it with SIGTERM and returns every line it wrote.
fn run(log_format: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut app = App(command(log_format, &dir).spawn().expect("start the app"));
    let stdout = app.0.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
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
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client
        .write_all(
            b"GET /healthz?email=leak%40example.com&code=123456 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
        )
        .expect("send a request");
    let mut response = String::new();
    client.read_to_string(&mut response).expect("a response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"kill -TERM "$1""#)
        .arg("sh")
        .arg(app.0.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = app.0.wait().expect("the app exits");
    assert!(exit.success(), "exit status {exit}");
    // The writer flushed at exit and the pipe closed: every line is here.
    log.extend(lines.iter());
    log
}

#[test]
fn json_logs_are_one_object_per_line_with_the_request_fields() {
    let log = run("json");
    let mut response = None;
    for line in &log {
        assert!(
            !line.contains('\u{1b}'),
            "no colour codes in a pipe: {line:?}"
        );
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        if value["fields"]["message"] == "response" {
            response = Some(value);
        }
    }
    let response = response.unwrap_or_else(|| panic!("no response line: {log:#?}"));
    assert_eq!(response["fields"]["status"], 200, "{response}");
    assert!(response["fields"]["elapsed_ms"].is_u64(), "{response}");
    let span = &response["span"];
    assert_eq!(span["method"], "GET", "{response}");
    assert_eq!(span["route"], "/healthz", "{response}");
    assert_eq!(
        span["request_id"].as_str().map(str::len),
        Some(36),
        "{response}"
    );
    let text = log.join("\n");
    assert!(
        !text.contains("leak") && !text.contains("123456"),
        "no query string in the logs: {text}"
    );
}

#[test]
fn text_logs_in_a_pipe_have_no_colour_codes() {
    let log = run("text");
    let text = log.join("\n");
    assert!(!text.contains('\u{1b}'), "{text}");
    let response = log
        .iter()
        .find(|l| l.contains("response"))
        .unwrap_or_else(|| panic!("no response line: {text}"));
    for field in [
        "request_id=",
        "method=GET",
        "route=/healthz",
        "status=200",
        "elapsed_ms=",
    ] {
        assert!(response.contains(field), "{field} in {response}");
    }
    assert!(!text.contains("leak") && !text.contains("123456"), "{text}");
}

#[test]
fn an_unknown_log_format_stops_the_start_with_a_message() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = command("yaml", &dir).output().expect("run the app");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("LOG_FORMAT must be `text` or `json`, got `yaml`"),
        "{stderr}"
    );
}
