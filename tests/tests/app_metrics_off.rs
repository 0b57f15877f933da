//! `APP_METRICS=false`: the app installs no `metrics` recorder (every
//! figure kv-module and the app record is a no-op) and `/metrics` is an
//! unknown route, 404 problem+json, while the API works as usual.
//!
//! One test in this binary: the `metrics` recorder is per process, so no
//! other app (with metrics on) may start in it; `tests/app_metrics.rs`
//! covers metrics on.

use kv_module_tests::test_app::{Driver, TestApp, TestAppConfig, problem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_installs_no_recorder_and_metrics_answers_404() {
    let app = TestApp::spawn_with(
        Driver::Redis,
        TestAppConfig {
            extra: vec![("APP_METRICS", "false".to_owned())],
            ..TestAppConfig::default()
        },
    )
    .await;

    // The API, its stores and the HTTP middleware run (and would count).
    let id = app.create_user("Ada", "ada@example.com").await;
    let r = app
        .client
        .get(app.url(&format!("/api/users/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // No exporter route.
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    problem(r, 404).await;

    // No recorder: the process's global slot is still free, which it would
    // not be had start-up installed the Prometheus recorder.
    assert!(
        metrics::set_global_recorder(metrics::NoopRecorder).is_ok(),
        "with APP_METRICS=false the app must not install a metrics recorder"
    );
    app.stop().await;
}
