//! The example app with its Redis frozen (SIGSTOP) — issue 11, defect 7:
//! one bounded wait per request, not one per component. The first request
//! pays at most one `command_timeout` (the app's is the library default,
//! 2 s: `config/services.yaml` sets none); the stores of that server then
//! refuse calls at once, so user reads fall back to SQLite and the
//! session and code endpoints answer 503, each in well under a round
//! trip to a frozen server; after the thaw everything works again with no
//! restart.
//!
//! Before the breaker a user read took 4 s (limiter 2 s + cache 2 s), a
//! session lookup 4 s and a code request 6 s, every time. The measured
//! times are printed (run with `--nocapture`):
//!
//! ```text
//! cargo test -p kv-module-tests --test app_frozen_redis -- --nocapture
//! ```

use std::time::{Duration, Instant};

use kv_module_tests::test_app::{Driver, TestApp};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::json;

/// The app's `command_timeout`: `config/services.yaml` gives none, so the
/// library default.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// What the first request may take beyond one `command_timeout`: the
/// SQLite fallback and scheduling on a loaded 2-core machine.
const FIRST_MARGIN: Duration = Duration::from_secs(1);
/// What each later request may take while Redis stays frozen: no Redis
/// round trip fits in it (each would take `command_timeout`).
const FAST: Duration = Duration::from_millis(300);
/// Requests after the first, per endpoint.
const LATER: usize = 5;
/// The app must answer normally again within this of the thaw: the
/// breaker's longest probe backoff (2 s) and a round trip, with margin.
const RECOVERY_LIMIT: Duration = Duration::from_secs(5);

async fn timed(request: RequestBuilder) -> (Duration, StatusCode) {
    let started = Instant::now();
    let response = request.send().await.expect("the app answers");
    let status = response.status();
    // The body is part of the answer's time.
    let _ = response.bytes().await.expect("a body");
    (started.elapsed(), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_costs_one_timeout_then_requests_answer_fast_until_it_thaws() {
    let mut app = TestApp::spawn(Driver::Redis).await;
    // Kept beside the app (alive until the end of the test) to signal it.
    let mut redis = app.redis.take().expect("a Redis app");
    let id = app.create_user("Ada", "ada@example.com").await;
    let session = app.login(id).await;
    let user = || app.client.get(app.url(&format!("/api/users/{id}")));
    let code = || {
        app.client
            .post(app.url("/api/auth/otp"))
            .json(&json!({ "user_id": id }))
    };
    let session_get = || {
        app.client
            .get(app.url("/api/session"))
            .bearer_auth(&session)
    };
    assert_eq!(timed(user()).await.1, StatusCode::OK, "cached");
    assert_eq!(timed(session_get()).await.1, StatusCode::OK);

    redis.freeze();
    let frozen_at = Instant::now();

    // The first request meets the frozen server: one timeout, then SQLite.
    let (first, status) = timed(user()).await;
    assert_eq!(status, StatusCode::OK, "a user read falls back to SQLite");
    assert!(
        first <= COMMAND_TIMEOUT + FIRST_MARGIN,
        "the first user read took {first:?}"
    );

    let mut slowest = Vec::new();
    for (what, request, expected) in [
        (
            "user read",
            &user as &dyn Fn() -> RequestBuilder,
            StatusCode::OK,
        ),
        ("code request", &code, StatusCode::SERVICE_UNAVAILABLE),
        (
            "session lookup",
            &session_get,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ] {
        let mut max = Duration::ZERO;
        for i in 0..LATER {
            let (latency, status) = timed(request()).await;
            assert_eq!(status, expected, "{what} {i} while Redis is frozen");
            assert!(latency < FAST, "{what} {i} took {latency:?}");
            max = max.max(latency);
        }
        slowest.push((what, max));
    }
    let frozen_for = frozen_at.elapsed();

    redis.thaw();
    let thawed_at = Instant::now();
    loop {
        let (latency, status) = timed(session_get()).await;
        assert!(
            latency <= COMMAND_TIMEOUT + FIRST_MARGIN,
            "a session lookup during recovery took {latency:?}"
        );
        if status == StatusCode::OK {
            break;
        }
        assert!(
            thawed_at.elapsed() < RECOVERY_LIMIT,
            "the session lookup still answers {status} {:?} after the thaw",
            thawed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = thawed_at.elapsed();
    assert_eq!(timed(code()).await.1, StatusCode::ACCEPTED);
    assert_eq!(timed(user()).await.1, StatusCode::OK);
    println!(
        "app, frozen Redis: first user read {first:?}; slowest later request per endpoint \
         {slowest:?} (frozen for {frozen_for:?}); thaw -> session lookup ok {recovered:?}"
    );
    app.stop().await;
}
