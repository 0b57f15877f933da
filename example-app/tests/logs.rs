//! Logs of the real binary, written to a pipe (as to a file or a
//! collector): `LOG_FORMAT=json` gives one JSON object per line, `text`
//! lines for people; neither carries colour codes when the output is not
//! a terminal (`NO_COLOR` unset here on purpose); the request's line has
//! its id, method, route, status and latency, and never the query string;
//! an unknown `LOG_FORMAT` stops the start with a message.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use support::App;

fn command(log_format: &str, dir: &tempfile::TempDir) -> Command {
    let mut command = support::command(dir);
    command
        .env("SHUTDOWN_TIMEOUT", "1s")
        .env("LOG_FORMAT", log_format)
        .env_remove("NO_COLOR")
        .stderr(std::process::Stdio::piped());
    command
}

/// Starts the app, sends one request whose query holds an e-mail address,
/// stops it with SIGTERM and returns every line it wrote.
fn run(log_format: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut app = App::start(command(log_format, &dir));
    let port = app.port;
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client
        .write_all(
            b"GET /healthz?email=leak%40example.com&code=123456 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
        )
        .expect("send a request");
    let mut response = String::new();
    client.read_to_string(&mut response).expect("a response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    app.terminate();
    let exit = app.wait();
    assert!(exit.success(), "exit status {exit}");
    std::mem::take(&mut app.log)
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
    // The request's span is the first (outermost) of the line's spans.
    let span = &response["spans"][0];
    assert_eq!(span["name"], "request", "{response}");
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
