//! Issue 11, point 9: a 5xx tells the client nothing about the app's
//! internals, but the server's log keeps the cause, inside the request's
//! span, under the request id the response carries.

use kv_module_tests::log_buffer::LogBuffer;
use kv_module_tests::test_app::{Driver, TestApp};
use serde_json::{Value, json};

// The capture is this thread's default subscriber, so the app and the
// client run on a current-thread runtime: every task is polled here.
#[tokio::test(flavor = "current_thread")]
async fn a_server_error_is_logged_with_its_cause_under_the_request_id() {
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut app = TestApp::spawn(Driver::Redis).await;
    let id = app.create_user("Jo", "jo@example.com").await;
    app.redis.as_mut().expect("redis mode").stop();
    let response = app
        .client
        .post(app.url("/api/auth/otp"))
        .header("x-request-id", "log-probe-7")
        .json(&json!({"user_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-request-id"], "log-probe-7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "log-probe-7");
    let public = body["detail"].as_str().expect("a detail").to_owned();
    app.stop().await;

    let log = buffer.text();
    let line = log
        .lines()
        .find(|l| l.contains("server error"))
        .unwrap_or_else(|| panic!("no `server error` event in:\n{log}"));
    assert!(
        line.contains("request_id=log-probe-7"),
        "logged in the request's span, with its id: {line}"
    );
    let logged = line
        .split_once("detail=")
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("a detail in {line}"));
    assert!(
        !logged.contains(&public),
        "the log keeps the cause, not the public text: {line}"
    );
    assert!(!logged.trim().is_empty(), "{line}");
}
