//! The users cache through the example app's HTTP API (issue 11): a user
//! created after a `GET` cached their id as "not found" is found at once,
//! and with Redis full (`maxmemory`, `noeviction`) a `PUT` still ends the
//! old record's life in the cache.

use kv_module_tests::test_app::{Driver, TestApp, TestAppConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[path = "support/redis_full.rs"]
mod redis_full;

/// `GET /api/users/{id}`: the status and the body.
async fn get_user(app: &TestApp, id: i64) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url(&format!("/api/users/{id}")))
        .send()
        .await
        .expect("GET /api/users/{id}");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

/// How a test changes a user: `PUT /api/users/{id}` with a new name, as
/// the user themself (`session`, from [`TestApp::login`], sent as a
/// bearer token). The only place these tests write a user, so that the
/// authorization of writes changes this function alone.
async fn put_name(app: &TestApp, session: &str, id: i64, name: &str) -> StatusCode {
    app.client
        .put(app.url(&format!("/api/users/{id}")))
        .bearer_auth(session)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("PUT /api/users/{id}")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_created_user_is_found_after_a_cached_404() {
    created_user_is_found_after_a_cached_404(Driver::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_created_user_is_found_after_a_cached_404() {
    created_user_is_found_after_a_cached_404(Driver::Memory).await;
}

/// `GET` of the next id: 404, cached as "not found" (the second `GET` is
/// a cache hit). `POST` creates that id: the next `GET` is 200 at once,
/// not after the negative TTL (issue 11, defect 6).
async fn created_user_is_found_after_a_cached_404(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    let first = app.create_user("Ada", "ada@example.com").await;
    let next = first + 1;
    assert_eq!(get_user(&app, next).await.0, StatusCode::NOT_FOUND);
    let before = app.cache_metrics().negative_hits;
    assert_eq!(get_user(&app, next).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.cache_metrics().negative_hits,
        before + 1,
        "a cached \"not found\""
    );

    let id = app.create_user("Grace", "grace@example.com").await;
    assert_eq!(id, next, "SQLite gives the next id");
    let (status, body) = get_user(&app, id).await;
    assert_eq!(status, StatusCode::OK, "{driver:?}: {body}");
    assert_eq!(body["name"], "Grace");
}

/// Redis full: `PUT` answers 200 and the next `GET` — on this instance
/// and on another one sharing the Redis — shows the new name, never the
/// cached old one (issue 11, defect 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_full_put_then_get_shows_the_new_name() {
    let app = TestApp::spawn(Driver::Redis).await;
    let beside = app.spawn_beside(TestAppConfig::default()).await;
    let id = app.create_user("Ada", "ada@example.com").await;
    let (status, body) = get_user(&beside, id).await;
    assert_eq!((status, &body["name"]), (StatusCode::OK, &json!("Ada")));
    // Logged in while Redis has room for the session.
    let session = app.login(id).await;

    let redis = app.redis.as_ref().expect("the app's Redis");
    redis_full::fill_to_maxmemory(redis).await;
    assert_eq!(put_name(&app, &session, id, "Ada L.").await, StatusCode::OK);
    let (status, body) = get_user(&beside, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Ada L.", "another instance read the old name");
    let (status, body) = get_user(&app, id).await;
    assert_eq!((status, &body["name"]), (StatusCode::OK, &json!("Ada L.")));
}
