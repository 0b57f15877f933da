//! The example app's one-time codes against abuse and trouble, end to end
//! (issue 11, defects 5 and 8 and "several instances, one secret"): one
//! client hammering a user's codes does not lock the user out from another
//! client; a right code stays usable when no session can be created; and
//! two instances sharing `OTP_SECRET` with `OTP_DEV_ECHO=true` accept each
//! other's codes.
//!
//! The app listens on 127.0.0.1; a second client connects from 127.0.0.2
//! (its socket bound there: all of 127/8 is loopback on Linux), so the app
//! sees two peers.

use std::net::{IpAddr, Ipv4Addr};

use kv_module_tests::test_app::{Driver, TestApp, TestAppConfig};
use serde_json::{Value, json};

kv_module_tests::backend_suite! {
    app:
    one_client_hammering_a_user_does_not_lock_out_another_client,
    otp_routes_are_limited_per_client_ip_across_users,
}

/// A client whose connections come from `ip` (a loopback address).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .build()
        .expect("a client bound to a loopback address")
}

async fn request_code(app: &TestApp, client: &reqwest::Client, user: i64) -> reqwest::Response {
    client
        .post(app.url("/api/auth/otp"))
        .json(&json!({ "user_id": user }))
        .send()
        .await
        .expect("POST /api/auth/otp")
}

async fn verify_code(
    app: &TestApp,
    client: &reqwest::Client,
    user: i64,
    code: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/auth/otp/verify"))
        .json(&json!({ "user_id": user, "code": code }))
        .send()
        .await
        .expect("POST /api/auth/otp/verify")
}

/// Defect 5: from 127.0.0.1 an attacker asks for far more codes than a
/// user needs and guesses wrong far more often than the per-user lock
/// allowed; the user, from 127.0.0.2, still gets a code and logs in.
async fn one_client_hammering_a_user_does_not_lock_out_another_client(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    let victim = app.create_user("Vi", "vi@example.com").await;
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let user = client_from(Ipv4Addr::new(127, 0, 0, 2));

    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            request_code(&app, &attacker, victim)
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(
        statuses.contains(&429),
        "the attacker's client must be limited: {statuses:?}"
    );
    let mut guesses = Vec::new();
    for n in 0..25 {
        let guess = format!("{:06}", 999_999 - n);
        guesses.push(
            verify_code(&app, &attacker, victim, &guess)
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(
        guesses.iter().all(|s| [401, 429].contains(s)),
        "{guesses:?}"
    );

    let response = request_code(&app, &user, victim).await;
    assert_eq!(
        response.status(),
        202,
        "the user's own client still gets a code"
    );
    let body: Value = response.json().await.expect("JSON");
    let code = body["dev_code"].as_str().expect("a dev code").to_owned();
    let response = verify_code(&app, &user, victim, &code).await;
    assert_eq!(response.status(), 200, "and logs in with it");
    let body: Value = response.json().await.expect("JSON");
    assert!(body["session_id"].is_string(), "{body}");
    assert_eq!(body["user_id"], json!(victim), "an integer user id");
    app.stop().await;
}

/// One client cannot walk through every user: the OTP routes have their own
/// per-client-IP limits across users (`OTP_IP_ISSUE_LIMIT`,
/// `OTP_IP_VERIFY_LIMIT`), which leave other clients alone.
async fn otp_routes_are_limited_per_client_ip_across_users(driver: Driver) {
    let config = TestAppConfig {
        extra: vec![
            ("OTP_IP_ISSUE_LIMIT", "3".to_owned()),
            ("OTP_IP_VERIFY_LIMIT", "2".to_owned()),
        ],
        ..TestAppConfig::default()
    };
    let app = TestApp::spawn_with(driver, config).await;
    let mut users = Vec::new();
    for n in 0..4 {
        users.push(app.create_user("U", &format!("u{n}@example.com")).await);
    }
    let walker = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let other = client_from(Ipv4Addr::new(127, 0, 0, 3));
    let mut statuses = Vec::new();
    for user in &users {
        statuses.push(request_code(&app, &walker, *user).await.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429], "one code each for 3 users");
    let refused = request_code(&app, &walker, users[3]).await;
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(request_code(&app, &other, users[3]).await.status(), 202);

    let mut guesses = Vec::new();
    for user in &users[..3] {
        let status = verify_code(&app, &walker, *user, "000000").await.status();
        guesses.push(status.as_u16());
    }
    assert_eq!(guesses[2], 429, "{guesses:?}");
    assert!(guesses[..2].iter().all(|s| *s == 401), "{guesses:?}");
    let response = verify_code(&app, &other, users[0], "000000").await;
    assert_eq!(response.status(), 401, "another client may still guess");
    app.stop().await;
}

/// "Several instances, one secret": `OTP_SECRET` with `OTP_DEV_ECHO=true`
/// starts (codes echoed, the given secret used), and a code one instance
/// issued verifies on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_with_one_secret_accept_each_others_codes() {
    let secret = (
        "OTP_SECRET",
        "a shared secret of at least thirty-two bytes".to_owned(),
    );
    let config = TestAppConfig {
        extra: vec![secret.clone()],
        ..TestAppConfig::default()
    };
    let first = TestApp::spawn_with(Driver::Redis, config.clone()).await;
    let second = first.spawn_beside(config).await;
    let user = first.create_user("Sam", "sam@example.com").await;

    let response = request_code(&first, &first.client, user).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("JSON");
    let code = body["dev_code"].as_str().expect("a dev code").to_owned();
    let response = verify_code(&second, &second.client, user, &code).await;
    assert_eq!(
        response.status(),
        200,
        "the other instance accepts the code"
    );

    let response = request_code(&second, &second.client, user).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("JSON");
    let code = body["dev_code"].as_str().expect("a dev code").to_owned();
    let response = verify_code(&first, &first.client, user, &code).await;
    assert_eq!(response.status(), 200, "and the other way round");
    second.stop().await;
    first.stop().await;
}

/// Defect 8: the session store refuses the session's write after the code
/// was checked (here Redis' ACL denies the session keys, not the codes'):
/// 503, and the same code logs in once the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_code_stays_usable_when_no_session_can_be_created() {
    let app = TestApp::spawn(Driver::Redis).await;
    let user = app.create_user("Di", "di@example.com").await;
    let response = request_code(&app, &app.client, user).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("JSON");
    let code = body["dev_code"].as_str().expect("a dev code").to_owned();

    let redis = app.redis.as_ref().expect("Redis mode");
    let mut admin = redis.raw(1).await;
    // The app's connections use the default user: from now on it may touch
    // users, limits and one-time codes, but no session key.
    let () = ::redis::cmd("ACL")
        .arg(&["SETUSER", "default", "resetkeys"])
        .arg(&["~users:*", "~ratelimit:*", "~sessions:otp:*"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let response = verify_code(&app, &app.client, user, &code).await;
    assert_eq!(response.status(), 503, "no session could be created");

    let () = ::redis::cmd("ACL")
        .arg(&["SETUSER", "default", "allkeys"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let response = verify_code(&app, &app.client, user, &code).await;
    assert_eq!(response.status(), 200, "the code was not used up");
    let body: Value = response.json().await.expect("JSON");
    assert!(body["session_id"].is_string(), "{body}");
    let response = verify_code(&app, &app.client, user, &code).await;
    assert_eq!(response.status(), 401, "and now it is");
    app.stop().await;
}
