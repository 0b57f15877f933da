//! Issue 15: the whole login flow, logged at `TRACE` through the example
//! app's JSON layer (`LOG_FORMAT=json`'s [`JsonLines`]), gives one JSON
//! object per line, and no line holds the one-time code, the session id
//! (nor its secret part), the e-mail address or the request's query
//! string.

use example_app::telemetry::JsonLines;
use kv_module_tests::log_buffer::LogBuffer;
use kv_module_tests::test_app::{Driver, TestApp};
use serde_json::{Value, json};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

/// `POST path` with a JSON `body`: the status and the JSON reply (`null`
/// when the body is not JSON).
async fn post_json(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

// The capture is this thread's default subscriber, so the app and the
// client run on a current-thread runtime: every task is polled here.
#[tokio::test(flavor = "current_thread")]
async fn a_login_flow_at_trace_logs_json_lines_without_secrets() {
    let buffer = LogBuffer::default();
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

    let (status, issued) = post_json(&app, "/api/auth/otp", json!({ "user_id": id })).await;
    assert_eq!(status, 202, "{issued}");
    let code = issued["dev_code"].as_str().expect("a dev code").to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, _) = post_json(
        &app,
        "/api/auth/otp/verify",
        json!({ "user_id": id, "code": wrong }),
    )
    .await;
    assert_eq!(status, 401);
    // The e-mail in a query string too: the request line must not log it.
    let (status, verified) = post_json(
        &app,
        &format!("/api/auth/otp/verify?email={email}"),
        json!({ "user_id": id, "code": code }),
    )
    .await;
    assert_eq!(status, 200, "{verified}");
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

    let log = buffer.text();
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
