//! Issue 11, the app's own defects (points 1, 9 and 10): who may read and
//! change a user, what error responses say and carry, the session cookie's
//! `Secure` flag, control characters in names, what `/readyz` checks, and
//! the session's `user_id` type. The app runs in-process on port 0, on
//! Redis and on the memory driver.

use kv_module_tests::test_app::{Driver, TestApp, TestAppConfig, problem};
use serde_json::{Value, json};

kv_module_tests::backend_suite! {
    app:
    changing_a_user_takes_that_users_session,
    the_email_is_shown_to_its_owner_only,
    session_user_id_is_an_integer,
    every_error_is_a_problem_with_a_request_id,
    names_with_control_characters_are_refused,
    session_cookie_is_secure_when_configured,
    readyz_fails_when_sqlite_fails_a_query,
}

/// `X-Request-Id` of `response`: a UUID v7 unless the client sent one.
fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id on a {}", response.status()))
        .to_str()
        .expect("an ASCII request id")
        .to_owned()
}

fn is_uuid_v7(id: &str) -> bool {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    id.len() == 36
        && hex.len() == 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && hex.as_bytes()[12] == b'7'
}

async fn changing_a_user_takes_that_users_session(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    // Sign-up needs no session.
    let ann = app.create_user("Ann", "ann@example.com").await;
    let ben = app.create_user("Ben", "ben@example.com").await;
    let ann_cookie = app.login_cookie(ann).await;
    let ben_session = app.login(ben).await;
    let url = app.url(&format!("/api/users/{ann}"));

    let r = app
        .client
        .put(&url)
        .json(&json!({"email": "mallory@evil.example"}))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    let r = app
        .client
        .put(&url)
        .bearer_auth(&ben_session)
        .json(&json!({"email": "mallory@evil.example"}))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    let r = app.client.delete(&url).send().await.unwrap();
    problem(r, 401).await;
    let r = app
        .client
        .delete(&url)
        .bearer_auth(&ben_session)
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    // Nothing changed.
    let r = app
        .client
        .get(&url)
        .header("cookie", &ann_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": ann, "name": "Ann", "email": "ann@example.com"})
    );

    // Her own session (by cookie) may.
    let r = app
        .client
        .put(&url)
        .header("cookie", &ann_cookie)
        .json(&json!({"name": "Anna"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Anna");
    let r = app
        .client
        .delete(&url)
        .header("cookie", &ann_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    problem(app.client.get(&url).send().await.unwrap(), 404).await;
    // Ben's account was never touched.
    let r = app
        .client
        .get(app.url(&format!("/api/users/{ben}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn the_email_is_shown_to_its_owner_only(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    let cy = app.create_user("Cy", "cy@example.com").await;
    let dee = app.create_user("Dee", "dee@example.com").await;
    let cy_session = app.login(cy).await;
    let dee_session = app.login(dee).await;
    let url = app.url(&format!("/api/users/{cy}"));
    let public = json!({"id": cy, "name": "Cy"});

    // `GET` of Cy's record with `token` as the bearer (none: anonymous).
    let read = async |token: Option<&str>| {
        let mut request = app.client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    assert_eq!(read(None).await, public, "no e-mail without a session");
    assert_eq!(
        read(Some(&dee_session)).await,
        public,
        "no e-mail for another user"
    );
    assert_eq!(read(Some("not-a-session")).await, public);
    let own = read(Some(&cy_session)).await;
    assert_eq!(
        own,
        json!({"id": cy, "name": "Cy", "email": "cy@example.com"})
    );
    app.stop().await;
}

async fn session_user_id_is_an_integer(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    let id = app.create_user("Eve", "eve@example.com").await;
    let session = app.login(id).await;
    let body: Value = app
        .client
        .get(app.url("/api/session"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["user_id"],
        json!(id),
        "an integer, as users' ids: {body}"
    );
    app.stop().await;
}

async fn every_error_is_a_problem_with_a_request_id(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    let id = app.create_user("Fay", "fay@example.com").await;

    // 405, at the root and under /api/, keeps its Allow header.
    for (method, path) in [
        (reqwest::Method::PATCH, format!("/api/users/{id}")),
        (reqwest::Method::POST, "/healthz".to_owned()),
        (reqwest::Method::GET, "/api/auth/otp".to_owned()),
    ] {
        let r = app
            .client
            .request(method.clone(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().contains_key("allow"),
            "{method} {path}: Allow header"
        );
        assert!(is_uuid_v7(&request_id(&r)), "{method} {path}");
        problem(r, 405).await;
    }
    // Unknown routes.
    for path in ["/nope", "/api/nope", "/api/users/1/nope"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert!(is_uuid_v7(&request_id(&r)), "{path}");
        problem(r, 404).await;
    }

    // Every response carries an id, a new one each time...
    let a = app.client.get(app.url("/healthz")).send().await.unwrap();
    let b = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(is_uuid_v7(&request_id(&a)) && is_uuid_v7(&request_id(&b)));
    assert_ne!(request_id(&a), request_id(&b));
    // ...or the caller's own, when it is a plausible id.
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-4bf92f35.01")
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&r), "trace-4bf92f35.01");
    for forged in ["a b", "x\"}{", &"long".repeat(40)] {
        let r = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", forged)
            .send()
            .await
            .unwrap();
        assert!(is_uuid_v7(&request_id(&r)), "{forged:?} replaced");
    }
    app.stop().await;
}

async fn names_with_control_characters_are_refused(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    for (n, name) in [
        "Gus\nERROR forged log line",
        "Gus\r\n",
        "G\u{0}us",
        "\u{1b}[31mGus",
        "Gus\u{7f}",
        "Gus\u{202e}nimda",
    ]
    .into_iter()
    .enumerate()
    {
        let r = app
            .client
            .post(app.url("/api/users"))
            .json(&json!({"name": name, "email": format!("gus{n}@example.com")}))
            .send()
            .await
            .unwrap();
        problem(r, 422).await;
    }
    let r = app
        .client
        .post(app.url("/api/users"))
        .json(&json!({"name": "x".repeat(201), "email": "long@example.com"}))
        .send()
        .await
        .unwrap();
    problem(r, 422).await;
    // Letters of any script are names.
    let id = app
        .create_user("Gülşen 李 O'Neil-Smith", "gulsen@example.com")
        .await;
    let session = app.login(id).await;
    let r = app
        .client
        .put(app.url(&format!("/api/users/{id}")))
        .bearer_auth(&session)
        .json(&json!({"name": "G\u{8}\u{8}admin"}))
        .send()
        .await
        .unwrap();
    problem(r, 422).await;
    app.stop().await;
}

async fn session_cookie_is_secure_when_configured(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    let id = app.create_user("Hal", "hal@example.com").await;
    let cookie = app.login_set_cookie(id).await;
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );
    app.stop().await;

    let config = TestAppConfig {
        extra: vec![("SESSION_COOKIE_SECURE", "true".to_owned())],
        ..TestAppConfig::default()
    };
    let app = TestApp::spawn_with(driver, config).await;
    let id = app.create_user("Hal", "hal@example.com").await;
    let cookie = app.login_set_cookie(id).await;
    assert!(
        cookie.split(';').any(|part| part.trim() == "Secure"),
        "SESSION_COOKIE_SECURE=true: {cookie}"
    );
    for part in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    app.stop().await;
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON readiness report"))
}

fn check_names(body: &Value) -> Vec<String> {
    body["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("checks in {body}"))
        .iter()
        .map(|c| c["name"].as_str().expect("a check name").to_owned())
        .collect()
}

async fn readyz_fails_when_sqlite_fails_a_query(driver: Driver) {
    let app = TestApp::spawn(driver).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    let names = check_names(&body);
    for expected in [
        "sqlite",
        "user_cache.write",
        "session_cache.write",
        "ratelimit_cache.write",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert_eq!(body["failed"], json!([]));

    // Another process breaks the database under the app.
    let db = rusqlite::Connection::open(app.database()).expect("the app's SQLite file");
    db.execute_batch("DROP TABLE users").expect("DROP TABLE");
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["failed"], json!(["sqlite"]), "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("no such table") && !text.contains("users"),
        "names the check, not the cause: {text}"
    );
    app.stop().await;
}

/// A Redis at `maxmemory` with `noeviction` still answers `PING` but
/// refuses every write: not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_when_redis_refuses_writes() {
    let app = TestApp::spawn(Driver::Redis).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    let mut admin = app.redis.as_ref().expect("redis mode").raw(0).await;
    let set = |name: &'static str, value: &'static str| {
        let mut cmd = ::redis::cmd("CONFIG");
        cmd.arg("SET").arg(name).arg(value);
        cmd
    };
    let _: () = set("maxmemory-policy", "noeviction")
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: () = set("maxmemory", "1").query_async(&mut admin).await.unwrap();

    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    let mut failed: Vec<String> = body["failed"]
        .as_array()
        .unwrap_or_else(|| panic!("failed in {body}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "ratelimit_cache.write",
            "session_cache.write",
            "user_cache.write"
        ],
        "{body}"
    );
    assert!(
        body["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "up"),
        "PING still answers: {body}"
    );
    assert!(
        !body.to_string().contains("OOM"),
        "no Redis error text: {body}"
    );

    let _: () = set("maxmemory", "0").query_async(&mut admin).await.unwrap();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "ready once writes are accepted again: {body}");
    app.stop().await;
}

/// A 5xx names no store, address, command or key: the detail is in the
/// server's log under the request id the response carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_name_no_internals() {
    let mut app = TestApp::spawn(Driver::Redis).await;
    let id = app.create_user("Ivy", "ivy@example.com").await;
    let session = app.login(id).await;
    let redis = app.redis.as_mut().expect("redis mode");
    let port = redis
        .addr()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    redis.stop();

    let requests = [
        app.client
            .post(app.url("/api/auth/otp"))
            .json(&json!({"user_id": id})),
        app.client
            .get(app.url("/api/session"))
            .bearer_auth(&session),
        app.client
            .post(app.url("/api/session/refresh"))
            .bearer_auth(&session)
            .header("x-request-id", "support-ticket-42"),
    ];
    for (n, request) in requests.into_iter().enumerate() {
        let r = request.send().await.unwrap();
        let header_id = request_id(&r);
        let body = problem(r, 503).await;
        assert_eq!(body["request_id"], json!(header_id), "request {n}: {body}");
        if n == 2 {
            assert_eq!(header_id, "support-ticket-42");
        } else {
            assert!(is_uuid_v7(&header_id), "{header_id}");
        }
        // The id is checked above; the words are what a client reads.
        let text = format!("{} {}", body["title"], body["detail"]).to_lowercase();
        for internal in [
            "redis",
            "session_cache",
            "sessions:",
            "127.0.0.1",
            "localhost",
            port.as_str(),
            "evalsha",
            "connection",
            "refused",
        ] {
            assert!(
                !text.contains(internal),
                "request {n}: `{internal}` in {text}"
            );
        }
    }
    app.stop().await;
}
