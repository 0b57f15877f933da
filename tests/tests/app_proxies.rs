//! `TRUSTED_PROXIES`: behind a reverse proxy, the `/api/` rate limit counts
//! each client by the address the proxy forwarded, not the proxy's own
//! (one bucket for everyone); without it, a client's `X-Forwarded-For` is
//! ignored, so it cannot pick a fresh bucket per request. Invalid CIDRs do
//! not start.

use kv_module_tests::test_app::{Driver, TestApp, TestAppConfig, startup_error};

kv_module_tests::backend_suite! {
    app:
    behind_a_trusted_proxy_each_client_has_its_own_bucket,
    without_trusted_proxies_forwarded_for_is_ignored,
}

/// Two requests per window per client.
fn limited(trusted_proxies: Option<&str>) -> TestAppConfig {
    TestAppConfig {
        rate_limit_requests: 2,
        rate_limit_window: "60s",
        extra: trusted_proxies
            .map(|cidrs| ("TRUSTED_PROXIES", cidrs.to_owned()))
            .into_iter()
            .collect(),
        ..TestAppConfig::default()
    }
}

/// `GET /api/users/1` (a 404, limited like every `/api/` route) as
/// forwarded for `xff`; its status.
async fn get_as(app: &TestApp, xff: &str) -> u16 {
    app.client
        .get(app.url("/api/users/1"))
        .header("x-forwarded-for", xff)
        .send()
        .await
        .expect("GET /api/users/1")
        .status()
        .as_u16()
}

async fn behind_a_trusted_proxy_each_client_has_its_own_bucket(driver: Driver) {
    // The test client connects from 127.0.0.1: it plays the proxy.
    let app = TestApp::spawn_with(driver, limited(Some("10.0.0.0/8, 127.0.0.1/32"))).await;
    assert_eq!(get_as(&app, "198.51.100.1").await, 404);
    assert_eq!(get_as(&app, "198.51.100.1").await, 404);
    assert_eq!(get_as(&app, "198.51.100.1").await, 429);
    // Prepending a fake address does not escape: the proxy appended the
    // real one, and the rightmost untrusted address counts.
    assert_eq!(get_as(&app, "203.0.113.66, 198.51.100.1").await, 429);
    // Another client behind the same proxy is not held back.
    assert_eq!(get_as(&app, "198.51.100.2").await, 404);
    assert_eq!(get_as(&app, "198.51.100.2").await, 404);
    assert_eq!(get_as(&app, "198.51.100.2").await, 429);
    app.stop().await;
}

async fn without_trusted_proxies_forwarded_for_is_ignored(driver: Driver) {
    let app = TestApp::spawn_with(driver, limited(None)).await;
    assert_eq!(get_as(&app, "198.51.100.1").await, 404);
    assert_eq!(get_as(&app, "198.51.100.2").await, 404);
    // A third "client" is the same peer: one bucket, now empty.
    assert_eq!(get_as(&app, "198.51.100.3").await, 429);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_trusted_proxies_do_not_start() {
    let error = startup_error(limited(Some("127.0.0.1/32, 10.0.0.0/33"))).await;
    assert!(
        error.contains("trusted_proxies") && error.contains("10.0.0.0/33"),
        "{error}"
    );
    let error = startup_error(limited(Some("proxy.example.com"))).await;
    assert!(error.contains("proxy.example.com"), "{error}");
}
