//! [`RateLimitLayer`] over real HTTP on every backend (Redis, memory, the
//! shared Redis Cluster of this test binary): an axum app served
//! on 127.0.0.1:0 with `ConnectInfo`, driven by reqwest. Headers on
//! allowed responses, 429 with `Retry-After` and problem+json on denied
//! ones, client identity through trusted proxies, users, missing keys,
//! store failures, nested policies, and shaku wiring.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use kv_module::rate_limit::{
    Algorithm, KeyExtractor, KvRateLimiter, MissingKey, NamedPolicy, OnStoreError, RateLimitLayer,
    RateLimitPolicy, RateLimiter, TrustedProxies,
};
use kv_module::{KeyTtl, KvStore};
use kv_module_tests::conformance::Backend;
use shaku::module;
use shaku_axum::Inject;

const DB: u8 = 2;
const PREFIX: &str = "rl";

kv_module_tests::backend_suite! {
    components:
    allowed_responses_carry_the_headers_and_denied_ones_get_429,
    retry_after_is_enough_to_pass_again,
    a_trusted_proxy_forwards_the_client_address,
    a_spoofed_header_from_an_untrusted_peer_is_ignored,
    forwarded_header_from_a_trusted_proxy,
    the_user_is_the_key_else_the_ip_address,
    a_request_without_a_key_is_rejected_or_passed_as_configured,
    route_and_router_policies_nest,
    store_outage_fails_open_or_closed_as_configured,
    a_shaku_component_limits_a_layer_and_a_handler,
}

// ---------------------------------------------------------------------------
// Helpers

/// The app served on a free port of 127.0.0.1, with the peer address
/// available to extractors; aborted on drop.
struct TestApp {
    base: String,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl TestApp {
    async fn spawn(app: Router) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(err) = axum::serve(listener, service).await {
                panic!("test server failed: {err}");
            }
        });
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            server,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn store(b: &impl Backend) -> Arc<dyn KvStore> {
    b.store("limits", DB, PREFIX).await
}

fn limiter(store: &Arc<dyn KvStore>, name: &str, policy: RateLimitPolicy) -> Arc<dyn RateLimiter> {
    Arc::new(
        KvRateLimiter::new(store.clone(), name, policy)
            .unwrap_or_else(|e| panic!("policy `{name}` must be valid: {e}")),
    )
}

fn fixed(limit: u64, window: Duration) -> RateLimitPolicy {
    RateLimitPolicy::new(Algorithm::FixedWindow, limit, window)
}

fn ok_router() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
}

fn all_headers(response: &reqwest::Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ASCII header").to_owned())
        .collect()
}

/// `"name";r=<r>;t=<t>` split into `(r, t)` after checking the name.
fn parse_rate_limit(value: &str, name: &str) -> (u64, u64) {
    let rest = value
        .strip_prefix(&format!("\"{name}\";r="))
        .unwrap_or_else(|| panic!("RateLimiter `{value}` is not for `{name}`"));
    let (r, t) = rest
        .split_once(";t=")
        .unwrap_or_else(|| panic!("RateLimiter `{value}` has no t"));
    (
        r.parse().expect("r is an integer"),
        t.parse().expect("t is an integer"),
    )
}

/// Asserts a problem+json response with `status`, returning its body.
async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/problem+json")
    );
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank", "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// Fails on a key without a TTL in the limiter's database; returns the
/// keys.
async fn assert_every_key_expires(b: &impl Backend) -> Vec<String> {
    let raw = b.store("raw", DB, "").await;
    let mut keys = raw.keys("*").await.expect("SCAN of the raw keyspace");
    for key in &keys {
        let ttl = raw.ttl(key).await.expect("TTL of a raw key");
        assert_ne!(ttl, KeyTtl::Persistent, "key `{key}` has no TTL");
    }
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------
// Cases

/// For every algorithm: each allowed response has `RateLimiter-Policy` and a
/// `RateLimiter` counting down; the request over the limit is a 429 with
/// `Retry-After` and a problem+json body.
async fn allowed_responses_carry_the_headers_and_denied_ones_get_429(b: &mut impl Backend) {
    let store = store(b).await;
    for algorithm in [
        Algorithm::FixedWindow,
        Algorithm::SlidingWindow,
        Algorithm::Gcra,
    ] {
        let name = algorithm.as_str();
        let policy = RateLimitPolicy::new(algorithm, 3, Duration::from_secs(60));
        let app = TestApp::spawn(ok_router().layer(RateLimitLayer::new(
            limiter(&store, name, policy),
            KeyExtractor::peer_ip(),
        )))
        .await;
        // Until the quota is whole again, and until a denied request may
        // pass: within the window, except for the sliding window, whose
        // count weighs until the end of the next window (the fourth
        // request fits once the next window is a third gone).
        let (horizon, retry_horizon) = if algorithm == Algorithm::SlidingWindow {
            (120, 80)
        } else {
            (60, 60)
        };
        for expected in (0..3).rev() {
            let response = app.get("/", &[]).await;
            assert_eq!(response.status(), 200, "{name}");
            assert_eq!(
                all_headers(&response, "ratelimit-policy"),
                [format!("\"{name}\";q=3;w=60")]
            );
            let value = header(&response, "ratelimit").expect("RateLimiter header");
            let (remaining, reset) = parse_rate_limit(&value, name);
            assert_eq!(remaining, expected, "{name}: {value}");
            assert!((1..=horizon).contains(&reset), "{name}: {value}");
            assert_eq!(header(&response, "retry-after"), None);
            assert_eq!(response.text().await.expect("body"), "ok");
        }
        let denied = app.get("/", &[]).await;
        let retry: u64 = header(&denied, "retry-after")
            .expect("Retry-After on 429")
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=retry_horizon).contains(&retry), "{name}: {retry}");
        assert_eq!(
            header(&denied, "ratelimit-policy"),
            Some(format!("\"{name}\";q=3;w=60"))
        );
        let value = header(&denied, "ratelimit").expect("RateLimiter on 429");
        assert_eq!(parse_rate_limit(&value, name).0, 0);
        let body = assert_problem(denied, 429).await;
        assert_eq!(body["title"], "Too Many Requests");
        let detail = body["detail"].as_str().expect("detail");
        assert!(detail.contains(name), "{detail}");
    }
    let keys = assert_every_key_expires(b).await;
    assert_eq!(
        keys,
        [
            "rl:fixed_window:ip:127.0.0.1",
            "rl:gcra:ip:127.0.0.1",
            "rl:sliding_window:ip:127.0.0.1"
        ]
    );
}

/// Waiting the `Retry-After` of a 429 is enough to be let through.
async fn retry_after_is_enough_to_pass_again(b: &mut impl Backend) {
    let store = store(b).await;
    let policy = RateLimitPolicy::new(Algorithm::Gcra, 2, Duration::from_secs(1)).with_burst(1);
    let app = TestApp::spawn(ok_router().layer(RateLimitLayer::new(
        limiter(&store, "short", policy),
        KeyExtractor::peer_ip(),
    )))
    .await;
    assert_eq!(app.get("/", &[]).await.status(), 200);
    let denied = app.get("/", &[]).await;
    assert_eq!(denied.status(), 429);
    let retry: u64 = header(&denied, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert_eq!(retry, 1, "500 ms rounded up");
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(app.get("/", &[]).await.status(), 200);
    assert_every_key_expires(b).await;
}

/// From a trusted proxy (127.0.0.0/8 here) the rightmost untrusted
/// `X-Forwarded-For` address is the client: whatever the client put to
/// its left changes nothing.
async fn a_trusted_proxy_forwards_the_client_address(b: &mut impl Backend) {
    let store = store(b).await;
    let proxies = TrustedProxies::parse(["127.0.0.0/8", "10.0.0.0/8"]).expect("CIDRs");
    let app = TestApp::spawn(ok_router().layer(RateLimitLayer::new(
        limiter(&store, "proxied", fixed(1, Duration::from_secs(60))),
        KeyExtractor::client_ip(proxies),
    )))
    .await;
    let xff = |value| [("x-forwarded-for", value)];
    assert_eq!(
        app.get("/", &xff("6.6.6.6, 198.51.100.1")).await.status(),
        200
    );
    assert_eq!(
        app.get("/", &xff("6.6.6.6, 198.51.100.1")).await.status(),
        429
    );
    // A client changing what it sends cannot get a fresh quota...
    assert_eq!(
        app.get("/", &xff("7.7.7.7, 198.51.100.1")).await.status(),
        429
    );
    // ...and hops through further trusted proxies are skipped.
    assert_eq!(
        app.get("/", &xff("8.8.8.8, 198.51.100.1, 10.0.0.5"))
            .await
            .status(),
        429
    );
    // Another client behind the proxy has its own.
    assert_eq!(app.get("/", &xff("198.51.100.2")).await.status(), 200);
    // No header: the proxy itself.
    assert_eq!(app.get("/", &[]).await.status(), 200);
    let keys = assert_every_key_expires(b).await;
    assert_eq!(
        keys,
        [
            "rl:proxied:ip:127.0.0.1",
            "rl:proxied:ip:198.51.100.1",
            "rl:proxied:ip:198.51.100.2"
        ]
    );
}

/// When the peer is not a trusted proxy its `X-Forwarded-For` is ignored:
/// a client rotating the header still counts as itself.
async fn a_spoofed_header_from_an_untrusted_peer_is_ignored(b: &mut impl Backend) {
    let store = store(b).await;
    let proxies = TrustedProxies::parse(["10.0.0.0/8"]).expect("CIDRs");
    let app = TestApp::spawn(ok_router().layer(RateLimitLayer::new(
        limiter(&store, "direct", fixed(2, Duration::from_secs(60))),
        KeyExtractor::client_ip(proxies),
    )))
    .await;
    let statuses: Vec<u16> = futures::future::join_all((1..=5).map(|i| {
        let spoofed = format!("203.0.113.{i}");
        let app = &app;
        async move {
            app.get("/", &[("x-forwarded-for", spoofed.as_str())])
                .await
                .status()
                .as_u16()
        }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        assert_every_key_expires(b).await,
        ["rl:direct:ip:127.0.0.1"]
    );
}

/// RFC 7239 `Forwarded` from a trusted proxy, with a quoted IPv6 address
/// and port; `X-Forwarded-For` is then ignored.
async fn forwarded_header_from_a_trusted_proxy(b: &mut impl Backend) {
    let store = store(b).await;
    let proxies = TrustedProxies::parse(["127.0.0.1"])
        .expect("CIDRs")
        .with_header(kv_module::rate_limit::ProxyHeader::Forwarded);
    let app = TestApp::spawn(ok_router().layer(RateLimitLayer::new(
        limiter(&store, "fwd", fixed(1, Duration::from_secs(60))),
        KeyExtractor::client_ip(proxies),
    )))
    .await;
    let forwarded = [(
        "forwarded",
        "for=6.6.6.6;proto=http, for=\"[2001:db8:cafe::17]:4711\";proto=https",
    )];
    assert_eq!(app.get("/", &forwarded).await.status(), 200);
    assert_eq!(app.get("/", &forwarded).await.status(), 429);
    // X-Forwarded-For is not the configured header: the peer is the key.
    let xff = [("x-forwarded-for", "198.51.100.1")];
    assert_eq!(app.get("/", &xff).await.status(), 200);
    assert_eq!(app.get("/", &xff).await.status(), 429);
    assert_eq!(
        assert_every_key_expires(b).await,
        ["rl:fwd:ip:127.0.0.1", "rl:fwd:ip:2001:db8:cafe::17"]
    );
}

/// The authenticated user, as an earlier middleware sets it.
#[derive(Clone)]
struct User(String);

/// Stands in for authentication: `x-user` becomes a [`User`] extension.
async fn authenticate(mut request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .map(|name| User(name.to_owned()));
    if let Some(user) = user {
        request.extensions_mut().insert(user);
    }
    next.run(request).await
}

fn user_key() -> KeyExtractor {
    KeyExtractor::extension(|user: &User| Some(format!("user:{}", user.0)))
}

/// Users count against their own quota; anonymous requests against their
/// IP address.
async fn the_user_is_the_key_else_the_ip_address(b: &mut impl Backend) {
    let store = store(b).await;
    let app = TestApp::spawn(
        ok_router()
            .layer(RateLimitLayer::new(
                limiter(&store, "users", fixed(1, Duration::from_secs(60))),
                user_key().or(KeyExtractor::peer_ip()),
            ))
            .layer(middleware::from_fn(authenticate)),
    )
    .await;
    let ada = [("x-user", "ada")];
    assert_eq!(app.get("/", &ada).await.status(), 200);
    assert_eq!(app.get("/", &ada).await.status(), 429);
    assert_eq!(app.get("/", &[("x-user", "bob")]).await.status(), 200);
    assert_eq!(app.get("/", &[]).await.status(), 200);
    assert_eq!(app.get("/", &[]).await.status(), 429);
    assert_eq!(
        assert_every_key_expires(b).await,
        [
            "rl:users:ip:127.0.0.1",
            "rl:users:user:ada",
            "rl:users:user:bob"
        ]
    );
}

/// With no key, the default is a 400 problem; `MissingKey::Allow` passes
/// the request uncounted and `MissingKey::Shared` counts it on one key.
async fn a_request_without_a_key_is_rejected_or_passed_as_configured(b: &mut impl Backend) {
    let store = store(b).await;
    let users = limiter(&store, "users", fixed(1, Duration::from_secs(60)));
    let app = TestApp::spawn(
        Router::new()
            .route(
                "/reject",
                get(|| async { "ok" }).route_layer(RateLimitLayer::new(users.clone(), user_key())),
            )
            .route(
                "/allow",
                get(|| async { "ok" }).route_layer(
                    RateLimitLayer::new(users.clone(), user_key())
                        .with_missing_key(MissingKey::Allow),
                ),
            )
            .route(
                "/shared",
                get(|| async { "ok" }).route_layer(
                    RateLimitLayer::new(users, user_key())
                        .with_missing_key(MissingKey::Shared("anonymous".into())),
                ),
            )
            .layer(middleware::from_fn(authenticate)),
    )
    .await;
    let rejected = app.get("/reject", &[]).await;
    assert_eq!(
        header(&rejected, "ratelimit-policy").as_deref(),
        Some("\"users\";q=1;w=60")
    );
    assert_eq!(header(&rejected, "ratelimit"), None);
    assert_problem(rejected, 400).await;
    assert_eq!(app.get("/reject", &[("x-user", "ada")]).await.status(), 200);
    for _ in 0..3 {
        let allowed = app.get("/allow", &[]).await;
        assert_eq!(allowed.status(), 200);
        assert!(header(&allowed, "ratelimit-policy").is_some());
        assert_eq!(header(&allowed, "ratelimit"), None);
    }
    assert_eq!(app.get("/shared", &[]).await.status(), 200);
    assert_eq!(app.get("/shared", &[]).await.status(), 429);
    assert_eq!(
        assert_every_key_expires(b).await,
        ["rl:users:anonymous", "rl:users:user:ada"]
    );
}

/// A route's own policy nests inside the router's: both are listed on the
/// route's responses; other routes only carry the router's.
async fn route_and_router_policies_nest(b: &mut impl Backend) {
    let store = store(b).await;
    let app = TestApp::spawn(
        Router::new()
            .route(
                "/login",
                get(|| async { "login" }).route_layer(RateLimitLayer::new(
                    limiter(&store, "login", fixed(1, Duration::from_secs(60))),
                    KeyExtractor::peer_ip(),
                )),
            )
            .route("/items", get(|| async { "items" }))
            .layer(RateLimitLayer::new(
                limiter(&store, "api", fixed(10, Duration::from_secs(60))),
                KeyExtractor::peer_ip(),
            )),
    )
    .await;
    let login = app.get("/login", &[]).await;
    assert_eq!(login.status(), 200);
    assert_eq!(
        all_headers(&login, "ratelimit-policy"),
        ["\"login\";q=1;w=60", "\"api\";q=10;w=60"]
    );
    let limits = all_headers(&login, "ratelimit");
    assert_eq!(limits.len(), 2, "{limits:?}");
    assert_eq!(parse_rate_limit(&limits[0], "login").0, 0);
    assert_eq!(parse_rate_limit(&limits[1], "api").0, 9);

    let denied = app.get("/login", &[]).await;
    assert_eq!(denied.status(), 429);
    assert_eq!(all_headers(&denied, "ratelimit-policy").len(), 2);

    let items = app.get("/items", &[]).await;
    assert_eq!(items.status(), 200);
    assert_eq!(
        all_headers(&items, "ratelimit-policy"),
        ["\"api\";q=10;w=60"]
    );
    let (remaining, _) =
        parse_rate_limit(&header(&items, "ratelimit").expect("RateLimiter"), "api");
    assert_eq!(
        remaining, 7,
        "the router's policy counted all three requests"
    );
    assert_eq!(
        assert_every_key_expires(b).await,
        ["rl:api:ip:127.0.0.1", "rl:login:ip:127.0.0.1"]
    );
}

/// With the store unreachable, a fail-open route keeps answering 200 and a
/// fail-closed route answers 503 problem+json.
async fn store_outage_fails_open_or_closed_as_configured(b: &mut impl Backend) {
    let store = store(b).await;
    let open = limiter(&store, "open", fixed(100, Duration::from_secs(60)));
    let closed = limiter(
        &store,
        "closed",
        fixed(100, Duration::from_secs(60)).with_on_store_error(OnStoreError::FailClosed),
    );
    let app = TestApp::spawn(
        Router::new()
            .route(
                "/open",
                get(|| async { "open" })
                    .route_layer(RateLimitLayer::new(open.clone(), KeyExtractor::peer_ip())),
            )
            .route(
                "/closed",
                get(|| async { "closed" })
                    .route_layer(RateLimitLayer::new(closed.clone(), KeyExtractor::peer_ip())),
            ),
    )
    .await;
    assert_eq!(app.get("/open", &[]).await.status(), 200);
    assert_eq!(app.get("/closed", &[]).await.status(), 200);
    assert_every_key_expires(b).await;

    b.outage(&store).await;
    for n in 1..=2 {
        let response = app.get("/open", &[]).await;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "ratelimit").is_some());
        assert_eq!(open.failed_open(), n);

        let response = app.get("/closed", &[]).await;
        assert_eq!(
            header(&response, "ratelimit-policy").as_deref(),
            Some("\"closed\";q=100;w=60")
        );
        assert_problem(response, 503).await;
        assert_eq!(closed.failed_closed(), n);
    }
}

module! {
    LimitModule {
        components = [KvRateLimiter],
        providers = []
    }
}

/// The limiter as a shaku component: resolved for a layer and injected
/// into a handler that charges a cost of its own.
async fn a_shaku_component_limits_a_layer_and_a_handler(b: &mut impl Backend) {
    let store = store(b).await;
    let policy = NamedPolicy::new("otp", fixed(5, Duration::from_secs(60))).expect("valid policy");
    let module = Arc::new(
        LimitModule::builder()
            .with_component_parameters::<KvRateLimiter>(
                KvRateLimiter::from_named(store.clone(), policy).into_parameters(),
            )
            .build(),
    );
    let resolved: Arc<dyn RateLimiter> = shaku::HasComponent::resolve(&*module);

    /// Sending a code costs 3 of the quota of 5 (on top of the layer's 1).
    async fn send_code(
        limiter: Inject<LimitModule, dyn RateLimiter>,
    ) -> (axum::http::StatusCode, String) {
        match limiter.check_cost("ip:127.0.0.1", 3).await {
            Ok(d) if d.allowed => (axum::http::StatusCode::OK, d.remaining.to_string()),
            Ok(_) => (axum::http::StatusCode::TOO_MANY_REQUESTS, String::new()),
            Err(_) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
        }
    }

    let app = TestApp::spawn(
        Router::new()
            .route("/send", get(send_code))
            .layer(RateLimitLayer::new(resolved, KeyExtractor::peer_ip()))
            .with_state(module),
    )
    .await;
    let first = app.get("/send", &[]).await;
    assert_eq!(first.status(), 200);
    let (remaining, _) =
        parse_rate_limit(&header(&first, "ratelimit").expect("RateLimiter"), "otp");
    assert_eq!(remaining, 4, "the layer's check");
    assert_eq!(
        first.text().await.expect("body"),
        "1",
        "the handler's 3 more"
    );
    // 1 left: the layer passes, the handler's cost of 3 does not fit.
    assert_eq!(app.get("/send", &[]).await.status(), 429);
    let keys = assert_every_key_expires(b).await;
    assert_eq!(keys, ["rl:otp:ip:127.0.0.1"]);
}
