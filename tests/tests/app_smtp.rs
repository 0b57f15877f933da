//! One-time codes delivered by mail: the example app with `SMTP_URL`
//! pointing at an [`SmtpSink`] and the development echo off. The code is
//! read from the delivered mail, never from the response; a refused or
//! unreachable relay is a 503 that names no internals and does not spend
//! the user's resend cooldown; the logs show neither the code nor the
//! user's address; settings that cannot deliver codes do not start.
//!
//! Every test runs on a current-thread runtime with a capturing `tracing`
//! subscriber as the thread's default, so the app's tasks (served on this
//! thread) are seen by it.

use std::time::{Duration, Instant};

use kv_module_tests::log_capture::LogCapture;
use kv_module_tests::smtp_sink::SmtpSink;
use kv_module_tests::test_app::{Driver, TestApp, TestAppConfig, startup_error};
use serde_json::{Value, json};

kv_module_tests::backend_suite! {
    #[tokio::test(flavor = "current_thread")]
    app:
    the_code_arrives_by_mail_only_and_logs_hold_neither_code_nor_address,
    a_refused_mail_is_503_and_an_immediate_retry_succeeds,
}

/// The sender the app is configured with.
const FROM: &str = "codes@example.test";
/// An OTP secret: with the echo off the app requires one.
const SECRET: &str = "an-otp-secret-for-tests-0123456789abcdef";

/// The app mailing codes through `smtp_url`, echo off.
fn mail_config(smtp_url: String, cooldown: &'static str) -> TestAppConfig {
    TestAppConfig {
        otp_resend_cooldown: cooldown,
        extra: vec![
            ("OTP_DEV_ECHO", "false".into()),
            ("OTP_SECRET", SECRET.into()),
            ("SMTP_URL", smtp_url),
            ("SMTP_FROM", format!("Example codes <{FROM}>")),
        ],
        ..TestAppConfig::default()
    }
}

async fn issue(app: &TestApp, user_id: i64) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/otp"))
        .json(&json!({ "user_id": user_id }))
        .send()
        .await
        .expect("POST /api/auth/otp")
}

async fn verify(app: &TestApp, user_id: i64, code: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/otp/verify"))
        .json(&json!({ "user_id": user_id, "code": code }))
        .send()
        .await
        .expect("POST /api/auth/otp/verify")
}

/// The one code of the one mail to `to` among the sink's messages.
fn code_mailed_to(sink: &SmtpSink, to: &str) -> String {
    let mails: Vec<_> = sink
        .messages()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == to))
        .collect();
    assert_eq!(mails.len(), 1, "one mail to {to}: {mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.from, FROM);
    let codes = mail.digit_runs(6);
    assert_eq!(codes.len(), 1, "one code in the body: {}", mail.body());
    codes[0].clone()
}

/// A 503 problem whose detail names no internals.
async fn unavailable_without_internals(response: reqwest::Response, sink: &SmtpSink) {
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let mut body: Value = response.json().await.expect("a problem document");
    // The request id is random hex: it may contain "451" by chance.
    assert!(body["request_id"].is_string(), "{body}");
    body["request_id"] = Value::Null;
    let text = body.to_string();
    for internal in [
        "smtp",
        "SMTP",
        "127.0.0.1",
        &sink.port().to_string(),
        "451",
        "refused",
    ] {
        assert!(!text.contains(internal), "{internal} in {text}");
    }
}

async fn the_code_arrives_by_mail_only_and_logs_hold_neither_code_nor_address(driver: Driver) {
    let (capture, _guard) = LogCapture::install();
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(driver, mail_config(sink.url(), "30s")).await;
    let email = "alice.mailbox@example.com";
    let user = app.create_user("Alice", email).await;

    let response = issue(&app, user).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("dev_code").is_none(), "no echo: {body}");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0), "{body}");

    // The mail was accepted before the 202: it is there already.
    let code = code_mailed_to(&sink, email);
    let response = verify(&app, user, &code).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    // The mailed code is used up.
    assert_eq!(verify(&app, user, &code).await.status(), 401);

    app.stop().await;
    let logs = capture.text();
    assert!(
        logs.contains("one-time code sent by mail") && logs.contains("a***@example.com"),
        "the capture sees the app's delivery log:\n{logs}"
    );
    assert!(
        !logs.contains(&code),
        "the code {code} is in the logs:\n{logs}"
    );
    assert!(!logs.contains(email), "the address is in the logs:\n{logs}");
}

async fn a_refused_mail_is_503_and_an_immediate_retry_succeeds(driver: Driver) {
    let (capture, _guard) = LogCapture::install();
    let sink = SmtpSink::start().await;
    // A cooldown far longer than the test: a spent one would answer 429.
    let app = TestApp::spawn_with(driver, mail_config(sink.url(), "10m")).await;
    let email = "bob@example.com";
    let user = app.create_user("Bob", email).await;
    let other = app.create_user("Bea", "bea@example.com").await;

    // A permanent refusal (for another user), then a transient one.
    sink.refuse_with(554);
    unavailable_without_internals(issue(&app, other).await, &sink).await;
    sink.refuse_with(451);
    unavailable_without_internals(issue(&app, user).await, &sink).await;
    assert!(sink.messages().is_empty());
    let logs = capture.text();
    assert!(
        logs.contains("one-time code not delivered") && logs.contains("554"),
        "the refusal and its status are logged:\n{logs}"
    );

    // The relay recovers: the user asks again at once and gets a code.
    sink.accept();
    let response = issue(&app, user).await;
    assert_eq!(
        response.status(),
        202,
        "a failed delivery must not spend the cooldown: {}",
        response.text().await.unwrap_or_default()
    );
    let code = code_mailed_to(&sink, email);
    assert_eq!(verify(&app, user, &code).await.status(), 200);
    app.stop().await;
}

/// A relay that is down, or that accepts the connection and then says
/// nothing: 503 each time, the latter within `SMTP_TIMEOUT`.
#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_or_silent_relay_is_a_bounded_503() {
    let (capture, _guard) = LogCapture::install();
    let mut sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(Driver::Memory, {
        let mut config = mail_config(sink.url(), "0ms");
        config.extra.push(("SMTP_TIMEOUT", "500ms".into()));
        config
    })
    .await;
    let user = app.create_user("Carol", "carol@example.com").await;

    sink.stop().await;
    unavailable_without_internals(issue(&app, user).await, &sink).await;
    sink.restart().await;
    assert_eq!(issue(&app, user).await.status(), 202);
    code_mailed_to(&sink, "carol@example.com");

    // A relay that accepts connections and never greets.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("smtp://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            connections.push(stream);
        }
    });
    let app = TestApp::spawn_with(Driver::Memory, {
        let mut config = mail_config(silent_url, "0ms");
        config.extra.push(("SMTP_TIMEOUT", "500ms".into()));
        config
    })
    .await;
    let user = app.create_user("Dan", "dan@example.com").await;
    let started = Instant::now();
    let response = issue(&app, user).await;
    let elapsed = started.elapsed();
    unavailable_without_internals(response, &sink).await;
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(3),
        "bounded by SMTP_TIMEOUT (500 ms): {elapsed:?}"
    );
    held.abort();
    let logs = capture.text();
    assert!(
        logs.contains("did not accept the message within 500 ms")
            && logs.contains("d***@example.com"),
        "the timeout is logged, with the address masked:\n{logs}"
    );
    assert!(!logs.contains("dan@example.com"), "{logs}");
}

/// With both SMTP and the echo on, the code goes by mail and in the
/// response (development with a local mail catcher).
#[tokio::test(flavor = "current_thread")]
async fn echo_and_mail_together() {
    let (_capture, _guard) = LogCapture::install();
    let sink = SmtpSink::start().await;
    let mut config = mail_config(sink.url(), "0ms");
    config
        .extra
        .retain(|(k, _)| *k != "OTP_DEV_ECHO" && *k != "OTP_SECRET");
    let app = TestApp::spawn_with(Driver::Memory, config).await;
    let user = app.create_user("Erin", "erin@example.com").await;
    let response = issue(&app, user).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let echoed = body["dev_code"].as_str().expect("the echo").to_owned();
    assert_eq!(code_mailed_to(&sink, "erin@example.com"), echoed);
}

#[tokio::test(flavor = "current_thread")]
async fn settings_that_cannot_deliver_codes_do_not_start() {
    let (_capture, _guard) = LogCapture::install();
    let no_echo = |extra: &[(&'static str, &str)]| TestAppConfig {
        extra: [("OTP_DEV_ECHO", "false"), ("OTP_SECRET", SECRET)]
            .iter()
            .chain(extra)
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect(),
        ..TestAppConfig::default()
    };
    let error = startup_error(no_echo(&[])).await;
    assert!(
        error.contains("SMTP_URL") && error.contains("OTP_DEV_ECHO"),
        "{error}"
    );
    let error = startup_error(no_echo(&[("SMTP_URL", "smtp://127.0.0.1:2525")])).await;
    assert!(error.contains("SMTP_FROM"), "{error}");
    let error = startup_error(no_echo(&[
        ("SMTP_URL", "smtp://127.0.0.1:2525"),
        ("SMTP_FROM", "not a mailbox"),
    ]))
    .await;
    assert!(error.contains("SMTP_FROM `not a mailbox`"), "{error}");
    let error = startup_error(no_echo(&[
        ("SMTP_URL", "ftp://user:hunter2@mail.example.com"),
        ("SMTP_FROM", FROM),
    ]))
    .await;
    assert!(error.contains("SMTP_URL"), "{error}");
    assert!(!error.contains("hunter2"), "the password is shown: {error}");
    let error = startup_error(no_echo(&[
        ("SMTP_URL", "smtp://user:hunter2@mail.example.com:587"),
        ("SMTP_FROM", FROM),
    ]))
    .await;
    assert!(error.contains("unencrypted"), "{error}");
    assert!(!error.contains("hunter2"), "the password is shown: {error}");
}
