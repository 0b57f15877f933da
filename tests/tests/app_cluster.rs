//! The example app on a Redis Cluster, end to end: two instances of one
//! service, A and B — the same `config/services.cluster.yaml`, the same
//! cluster (`REDIS_NODES`), the same SQLite file — each in-process on a
//! port of its own, driven over HTTP.
//!
//! The cluster is this process's [`TestCluster::shared`]: each test file
//! is a process of its own, so the tests below are its only users. The
//! configuration's prefixes are fixed (`users`, `sessions`, `ratelimit`:
//! no variable changes them), so the tests keep apart by what they touch
//! instead of by prefix: only the login test creates users (user ids start
//! at 1 in every SQLite file, and name the cache, session and OTP keys),
//! and the rate-limit test requests a route that reads no store, from a
//! loopback address no other test uses (the limiter counts per client IP).
//!
//! Both instances live in one process, so with `OTP_DEV_ECHO=true` they
//! share the per-process development OTP secret, as instances in
//! production share `OTP_SECRET`: a code issued by one verifies on the
//! other.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use kv_module_tests::test_app::{Driver, TestApp, TestAppConfig, problem};
use kv_module_tests::{Role, TestCluster};
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

/// The three stores' prefixes in `config/services.cluster.yaml`.
const PREFIXES: [&str; 3] = ["users:", "sessions:", "ratelimit:"];

/// A problem+json response with `status`: its body.
/// `POST /api/auth/otp` for `user` on `app`: the echoed code.
async fn issue_code(app: &TestApp, user: i64) -> String {
    let response = app
        .client
        .post(app.url("/api/auth/otp"))
        .json(&json!({ "user_id": user }))
        .send()
        .await
        .expect("POST /api/auth/otp");
    assert_eq!(response.status(), 202, "a code for user {user}");
    let body: Value = response.json().await.expect("JSON");
    body["dev_code"].as_str().expect("a dev code").to_owned()
}

/// `POST /api/auth/otp/verify` on `app`: the response.
async fn verify_code(app: &TestApp, user: i64, code: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/otp/verify"))
        .json(&json!({ "user_id": user, "code": code }))
        .send()
        .await
        .expect("POST /api/auth/otp/verify")
}

/// `POST /api/auth/otp/verify` on `app`, which must succeed: the session
/// id and the `name=value` pair of its cookie.
async fn verified_session(app: &TestApp, user: i64, code: &str) -> (String, String) {
    let response = verify_code(app, user, code).await;
    assert_eq!(response.status(), 200, "verifying user {user}'s code");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("an ASCII cookie")
        .split(';')
        .next()
        .expect("a cookie pair")
        .to_owned();
    let body: Value = response.json().await.expect("JSON");
    let session = body["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned();
    assert_eq!(cookie, format!("session_id={session}"));
    (session, cookie)
}

/// `GET /api/session` on `app` with `session` as bearer token.
async fn session_on(app: &TestApp, session: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/session"))
        .bearer_auth(session)
        .send()
        .await
        .expect("GET /api/session")
}

/// `GET /api/users/{id}` on `app`, which must find the user: its name.
async fn user_name(app: &TestApp, id: i64) -> String {
    let response = app
        .client
        .get(app.url(&format!("/api/users/{id}")))
        .send()
        .await
        .expect("GET /api/users/{id}");
    assert_eq!(response.status(), 200, "user {id} on {}", app.base);
    let body: Value = response.json().await.expect("a JSON user");
    body["name"].as_str().expect("a name").to_owned()
}

/// One key as a primary of the cluster holds it.
#[derive(Debug)]
struct ClusterKey {
    key: String,
    /// The primary it was found on.
    node: u16,
    /// `CLUSTER KEYSLOT`, as the server computes it.
    slot: u16,
    /// `PTTL`: -1 without expiry, -2 gone since the scan.
    pttl: i64,
}

/// Every key of the cluster, by `SCAN` on each primary (the fixture's
/// nodes start with `KEYS` disabled), with its slot and `PTTL` asked of
/// the node that holds it; checks on the way that every node (replicas
/// too) has keys in database 0 only.
async fn cluster_keys(cluster: &TestCluster) -> Vec<ClusterKey> {
    let mut found = Vec::new();
    for node in cluster.nodes().await {
        let mut conn = cluster.raw_node(node.port).await;
        let keyspace: String = redis::cmd("INFO")
            .arg("keyspace")
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("INFO keyspace on {}: {e}", node.port));
        let dbs: Vec<&str> = keyspace
            .lines()
            .filter_map(|line| line.split_once(':').map(|(db, _)| db))
            .filter(|db| db.starts_with("db"))
            .collect();
        assert!(
            dbs.iter().all(|db| *db == "db0"),
            "node {}: a cluster has database 0 only, keys in {dbs:?}",
            node.port
        );
        if node.role != Some(Role::Primary) {
            continue;
        }
        for key in scan(&mut conn).await {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("CLUSTER KEYSLOT {key}: {e}"));
            let pttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("PTTL {key} on {}: {e}", node.port));
            found.push(ClusterKey {
                key,
                node: node.port,
                slot,
                pttl,
            });
        }
    }
    found
}

async fn scan(conn: &mut MultiplexedConnection) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap_or_else(|e| panic!("SCAN: {e}"));
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// The keys among `keys` starting with `start`.
fn starting_with<'k>(keys: &'k [ClusterKey], start: &str) -> Vec<&'k ClusterKey> {
    keys.iter().filter(|k| k.key.starts_with(start)).collect()
}

/// The hash tag of a key: what lies between its first `{` and the next
/// `}`, as Redis Cluster reads it.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = key[open + 1..].find('}')?;
    Some(&key[open + 1..open + 1 + close]).filter(|tag| !tag.is_empty())
}

/// Asserts that `keys` (at least one) share one slot and one primary.
fn assert_one_slot(keys: &[&ClusterKey], what: &str) {
    assert!(!keys.is_empty(), "{what}: no keys");
    let places: BTreeSet<(u16, u16)> = keys.iter().map(|k| (k.slot, k.node)).collect();
    assert_eq!(
        places.len(),
        1,
        "{what} share one slot on one primary: {keys:#?}"
    );
}

/// Create a user on A, request a code on A, verify it on B, use the
/// session on A and B, log out everywhere on B: the session is refused on
/// A. Along the way, the keys the flow wrote are checked on the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_logout_everywhere_across_two_instances() {
    let a = TestApp::spawn(Driver::Cluster).await;
    let b = a.spawn_beside(TestAppConfig::default()).await;
    let cluster = a.cluster.clone().expect("cluster mode");
    assert!(
        a.config_path().ends_with("config/services.cluster.yaml"),
        "{}",
        a.config_path().display()
    );

    // Users: created on either instance, seen by both (one SQLite file),
    // cached on the cluster.
    let ada = a.create_user("Ada", "ada@example.com").await;
    let bo = b.create_user("Bo", "bo@example.com").await;
    assert_eq!(user_name(&b, ada).await, "Ada");
    assert_eq!(user_name(&a, bo).await, "Bo");

    // A code requested on A verifies on B, once: the code was consumed for
    // both instances.
    let code = issue_code(&a, ada).await;
    let (first, first_cookie) = verified_session(&b, ada, &code).await;
    problem(verify_code(&a, ada, &code).await, 401).await;
    problem(verify_code(&b, ada, &code).await, 401).await;
    // Her rename on A (which takes her session) reaches B: A's write
    // deletes the entry B had cached, in the shared store.
    let renamed = a
        .client
        .put(a.url(&format!("/api/users/{ada}")))
        .bearer_auth(&first)
        .json(&json!({ "name": "Ada L." }))
        .send()
        .await
        .expect("PUT /api/users/{id}");
    assert_eq!(renamed.status(), 200);
    assert_eq!(user_name(&b, ada).await, "Ada L.");

    // The session works on both instances, by bearer token and by cookie.
    for app in [&a, &b] {
        let response = session_on(app, &first).await;
        assert_eq!(response.status(), 200, "the session on {}", app.base);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["user_id"], ada);
        let by_cookie = app
            .client
            .get(app.url("/api/session"))
            .header("cookie", &first_cookie)
            .send()
            .await
            .expect("GET /api/session");
        assert_eq!(by_cookie.status(), 200, "the cookie on {}", app.base);
    }
    // A second session of Ada's, the other way round (code on B, verified
    // on A), and one of Bo's, which logging Ada out must not touch.
    let code = issue_code(&b, ada).await;
    let (second, _) = verified_session(&a, ada, &code).await;
    let code = issue_code(&a, bo).await;
    let (bos, _) = verified_session(&b, bo, &code).await;
    // A pending code of Ada's with one wrong guess, so that her OTP keys
    // include a code and a failure count beside the daily count.
    let pending = issue_code(&a, ada).await;
    let wrong = if pending == "000000" {
        "111111"
    } else {
        "000000"
    };
    problem(verify_code(&b, ada, wrong).await, 401).await;

    check_key_layout(&cluster, ada, [&first, &second]).await;

    // Log out everywhere on B (the user's own session is required there):
    // both of Ada's sessions are refused on A and on B; Bo's is not.
    let logout = b
        .client
        .delete(b.url(&format!("/api/users/{ada}/sessions")))
        .bearer_auth(&first)
        .send()
        .await
        .expect("DELETE /api/users/{id}/sessions");
    assert_eq!(logout.status(), 204);
    for session in [&first, &second] {
        problem(session_on(&a, session).await, 401).await;
        problem(session_on(&b, session).await, 401).await;
    }
    let by_cookie = a
        .client
        .get(a.url("/api/session"))
        .header("cookie", &first_cookie)
        .send()
        .await
        .expect("GET /api/session");
    problem(by_cookie, 401).await;
    for app in [&a, &b] {
        let response = session_on(app, &bos).await;
        assert_eq!(response.status(), 200, "Bo's session stays on {}", app.base);
    }

    // Nothing of Ada's sessions is left on the cluster: records and index.
    let tag = session_tag(&first);
    let keys = cluster_keys(&cluster).await;
    let left: Vec<&ClusterKey> = keys
        .iter()
        .filter(|k| k.key.starts_with("sessions:") && hash_tag(&k.key) == Some(tag))
        .collect();
    assert!(
        left.is_empty(),
        "Ada's session keys after logout: {left:#?}"
    );

    b.stop().await;
    a.stop().await;
}

/// The user's hash tag a session id starts with (`<tag>.<secret>`).
fn session_tag(session: &str) -> &str {
    let (tag, secret) = session.split_once('.').expect("a `<tag>.<secret>` id");
    assert_eq!((tag.len(), secret.len()), (16, 43), "session id shape");
    tag
}

/// What the login flow wrote, as the cluster holds it: every key of the
/// cluster has a TTL and one of the three stores' prefixes, in database 0;
/// user `ada`'s session records and their index share one slot, and so do
/// the OTP keys of each subject.
async fn check_key_layout(cluster: &TestCluster, ada: i64, sessions: [&str; 2]) {
    let keys = cluster_keys(cluster).await;
    for key in &keys {
        assert!(
            PREFIXES.iter().any(|p| key.key.starts_with(p)),
            "{} has one of the stores' prefixes {PREFIXES:?}",
            key.key
        );
        // -2: expired or deleted between SCAN and PTTL, which only a key
        // with a TTL (or one being deleted) does.
        assert!(key.pttl != -1, "{} has a TTL: {key:?}", key.key);
    }
    for prefix in PREFIXES {
        assert!(
            !starting_with(&keys, prefix).is_empty(),
            "the flow wrote under {prefix}"
        );
    }

    // The user cache: `users:user:{<id>}` holds the row for
    // USER_CACHE_TTL (1 h) ± 10 % jitter.
    let entry = format!("users:user:{{{ada}}}");
    let cached = keys
        .iter()
        .find(|k| k.key == entry)
        .unwrap_or_else(|| panic!("{entry} on the cluster: {keys:#?}"));
    assert!(
        cached.pttl > 3_000_000 && cached.pttl <= 3_960_000,
        "USER_CACHE_TTL 1h ± jitter: {cached:?}"
    );

    // Sessions: two records `sessions:session:{<tag>}:<handle>` and the
    // index `sessions:user_sessions:{<tag>}`, the tag being the one both
    // session ids start with; one slot, TTLs of the idle timeout (30 m).
    let tag = session_tag(sessions[0]);
    assert_eq!(session_tag(sessions[1]), tag, "one user, one tag");
    let records = starting_with(&keys, &format!("sessions:session:{{{tag}}}:"));
    assert_eq!(records.len(), 2, "Ada's two session records: {records:#?}");
    let index = format!("sessions:user_sessions:{{{tag}}}");
    let mut together = records.clone();
    together.extend(keys.iter().filter(|k| k.key == index));
    assert_eq!(together.len(), 3, "{index} on the cluster: {keys:#?}");
    assert_one_slot(&together, "Ada's session records and index");
    for key in &together {
        assert!(
            key.pttl > 1_700_000 && key.pttl <= 1_800_000,
            "SESSION_TTL 30m: {key:?}"
        );
    }

    // One-time codes: `sessions:otp:{<subject tag>}:…`. Each subject's keys
    // share a slot; Ada's pending code makes one subject hold a code, a
    // failure count and a daily count.
    let mut by_subject: BTreeMap<&str, Vec<&ClusterKey>> = BTreeMap::new();
    for key in starting_with(&keys, "sessions:otp:") {
        let tag = hash_tag(&key.key).unwrap_or_else(|| panic!("{} has a hash tag", key.key));
        by_subject.entry(tag).or_default().push(key);
    }
    assert!(
        by_subject.len() >= 2,
        "OTP keys of Ada and Bo: {by_subject:#?}"
    );
    for (tag, keys) in &by_subject {
        assert_one_slot(keys, &format!("the OTP keys of subject {{{tag}}}"));
    }
    let kinds = |keys: &[&ClusterKey]| -> BTreeSet<String> {
        keys.iter()
            .filter_map(|k| k.key.split(':').nth(3).map(str::to_owned))
            .collect()
    };
    assert!(
        by_subject.values().any(|keys| ["code", "failures", "daily"]
            .iter()
            .all(|kind| kinds(keys).contains(*kind))),
        "one subject with a code, failures and a daily count: {by_subject:#?}"
    );

    // The limiter: one counter per client IP, for the window (60 s).
    let counter = keys
        .iter()
        .find(|k| k.key == "ratelimit:api:ip:127.0.0.1")
        .unwrap_or_else(|| panic!("the limiter's counter of 127.0.0.1: {keys:#?}"));
    assert!(
        counter.pttl > 0 && counter.pttl <= 60_000,
        "RATE_LIMIT_WINDOW 60s: {counter:?}"
    );
}

/// A client whose requests come from `ip` (any address of 127.0.0.0/8 is
/// the loopback interface's on Linux), so that the limiter, which counts
/// per peer IP, gives it a counter of its own.
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .build()
        .expect("an HTTP client")
}

/// `RateLimiter: "api";r=<remaining>;t=<reset>`: the remaining quota.
fn remaining(response: &reqwest::Response) -> u64 {
    let header = response.headers()["ratelimit"]
        .to_str()
        .expect("an ASCII RateLimiter header");
    header
        .strip_prefix("\"api\";r=")
        .and_then(|rest| rest.split(';').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("RateLimiter header {header:?}"))
}

/// A limit of 10 per client shared by A and B: of 40 concurrent requests
/// from one client, split evenly over the two, exactly 10 pass (each with
/// its own remaining count, 9 down to 0), the other 30 get 429 with the
/// problem+json body and headers of one node; the counter on the cluster
/// says 10; another client still has its whole quota on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_exact_across_two_instances() {
    const LIMIT: u64 = 10;
    const REQUESTS: usize = 40;
    let config = TestAppConfig {
        rate_limit_requests: LIMIT,
        rate_limit_window: "60s",
        ..TestAppConfig::default()
    };
    let a = TestApp::spawn_with(Driver::Cluster, config.clone()).await;
    let b = a.spawn_beside(config).await;
    let cluster = a.cluster.clone().expect("cluster mode");

    // `GET /api/session` without credentials: the limiter runs, then the
    // handler answers 401 without reading a store.
    let client = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let on_a = i % 2 == 0;
            let url = if on_a { &a } else { &b }.url("/api/session");
            let client = client.clone();
            tokio::spawn(async move {
                let response = client.get(url).send().await.expect("GET /api/session");
                (on_a, response)
            })
        })
        .collect();
    let mut allowed = Vec::new();
    let mut denied_on = [0_usize; 2];
    for request in requests {
        let (on_a, response) = request.await.expect("the request task");
        assert_eq!(
            response.headers()["ratelimit-policy"],
            "\"api\";q=10;w=60",
            "every /api/ response states the policy"
        );
        let left = remaining(&response);
        if response.status() == 429 {
            denied_on[usize::from(!on_a)] += 1;
            assert_eq!(left, 0, "a denied request leaves nothing");
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .expect("ASCII")
                .parse()
                .expect("Retry-After in seconds");
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
            problem(response, 429).await;
        } else {
            problem(response, 401).await;
            allowed.push(left);
        }
    }
    allowed.sort_unstable();
    assert_eq!(
        allowed,
        (0..LIMIT).collect::<Vec<_>>(),
        "exactly {LIMIT} of {REQUESTS} pass, each check seeing the one before, on either instance"
    );
    let half = REQUESTS / 2;
    assert!(
        denied_on.iter().all(|&d| d >= half - LIMIT as usize),
        "each instance got {half} requests and denied at least {} of them: {denied_on:?}",
        half - LIMIT as usize
    );

    // The shared counter, on the cluster. A fixed-window check counts
    // first and compares after: each denied check that reached Redis
    // (not answered by an instance's denial memo) added 1 to a counter
    // already at the limit, which changes no answer (what passed is exact,
    // above); at most one per request.
    let mut conn = cluster.raw_cluster().await;
    let counter = "ratelimit:api:ip:127.0.0.2";
    let used: u64 = redis::cmd("GET")
        .arg(counter)
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("GET {counter}: {e}"));
    assert!(
        (LIMIT..=REQUESTS as u64).contains(&used),
        "the counter: {used}"
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg(counter)
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("PTTL {counter}: {e}"));
    assert!(pttl > 0 && pttl <= 60_000, "the window's TTL: {pttl}");

    // Another client has a quota of its own, counted across both.
    let other = client_from(Ipv4Addr::new(127, 0, 0, 3));
    for (app, left) in [(&a, LIMIT - 1), (&b, LIMIT - 2)] {
        let response = other
            .get(app.url("/api/session"))
            .send()
            .await
            .expect("GET /api/session");
        assert_eq!(remaining(&response), left, "on {}", app.base);
        problem(response, 401).await;
    }

    b.stop().await;
    a.stop().await;
}
