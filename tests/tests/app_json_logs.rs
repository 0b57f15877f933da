//! Issue 15: the whole login flow, logged at `TRACE` through the example
//! app's JSON layer (`LOG_FORMAT=json`'s [`JsonLines`]), gives one JSON
//! object per line, and no line holds the one-time code, the session id
//! (nor its secret part), the e-mail address or the request's query
//! string.

use std::io::Write;
use std::sync::{Arc, Mutex};

use example_app::telemetry::JsonLines;
use kv_module_tests::test_app::{Driver, TestApp};
use serde_json::{Value, json};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Log lines, shared with the test.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

// The capture is this thread's default subscriber, so the app and the
// client run on a current-thread runtime: every task is polled here.
#[tokio::test(flavor = "current_thread")]
async fn a_login_flow_at_trace_logs_json_lines_without_secrets() {
    let buffer = Buffer::default();
    // Everything at TRACE but the test's own HTTP client (not the app).
    let filter = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("reqwest", LevelFilter::OFF);
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(JsonLines::new(buffer.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::spawn(Driver::Redis).await;
    let email = "json-logs-probe@example.com";
    let id = app.create_user("Jo", email).await;
    let client = &app.client;

    let issued: Value = client
        .post(app.url("/api/auth/otp"))
        .json(&json!({ "user_id": id }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = issued["dev_code"].as_str().expect("a dev code").to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = client
        .post(app.url("/api/auth/otp/verify"))
        .json(&json!({ "user_id": id, "code": wrong }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let verified: Value = client
        .post(app.url(&format!("/api/auth/otp/verify?email={email}")))
        .json(&json!({ "user_id": id, "code": code }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = verified["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned();
    for (method, path) in [
        ("GET", "/api/session".to_owned()),
        ("POST", "/api/session/refresh".to_owned()),
        ("GET", format!("/api/users/{id}")),
        ("DELETE", format!("/api/users/{id}/sessions")),
    ] {
        let response = client
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&session)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
    }
    app.stop().await;

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).expect("UTF-8 lines");
    let mut responses = 0;
    let mut below_info = 0;
    for line in log.lines() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        if value["fields"]["message"] == "response" {
            responses += 1;
            assert_eq!(value["spans"][0]["name"], "request", "{line}");
        }
        if value["level"] == "DEBUG" || value["level"] == "TRACE" {
            below_info += 1;
        }
    }
    // Every request of the flow was logged, and lines below INFO too: the
    // capture did run at TRACE.
    assert!(responses >= 8, "{responses} response lines in:\n{log}");
    assert!(below_info > 0, "no DEBUG or TRACE line in:\n{log}");
    let secret = session.rsplit('.').next().unwrap_or(&session);
    for (what, needle) in [
        ("the code", code.as_str()),
        ("the session id", session.as_str()),
        ("the session id's secret", secret),
        ("the e-mail address", email),
        ("the e-mail's local part", "json-logs-probe"),
    ] {
        assert!(!log.contains(needle), "{what} is in the logs:\n{log}");
    }
}
