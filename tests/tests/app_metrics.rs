//! `/metrics` parsed as Prometheus text after a scripted run of the real
//! app on a real Redis: the counters move by exactly what the run did,
//! histograms have buckets, and the page stays valid while Redis is down.
//!
//! One test in this binary: the `metrics` recorder is per process, so no
//! other app may count in it at the same time.

use kv_module_tests::test_app::{Driver, TestApp};
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};

type Scrape = MetricsExposition<PrometheusType, PrometheusValue>;

/// The page, parsed (a strict parser: any malformed line fails).
async fn scrape(app: &TestApp) -> Scrape {
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    parse_prometheus(&text).unwrap_or_else(|e| panic!("invalid Prometheus text ({e:?}):\n{text}"))
}

/// The samples of `name` whose labels include `labels`.
fn samples<'a>(
    scrape: &'a Scrape,
    name: &str,
    labels: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a PrometheusValue> + 'a {
    scrape
        .families
        .get(name)
        .into_iter()
        .flat_map(|family| family.iter_samples())
        .filter(move |sample| {
            let set = sample.get_labelset().expect("a label set");
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|sample| &sample.value)
}

/// The sum of the counter or gauge samples of `name` whose labels include
/// `labels` (0 when there is none yet).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(scrape, name, labels)
        .map(|value| match value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            other => panic!("{name} is not a counter or gauge: {other:?}"),
        })
        .sum()
}

/// The bucket counts of the histogram samples of `name`.
fn histogram_buckets(scrape: &Scrape, name: &str) -> Vec<usize> {
    samples(scrape, name, &[])
        .map(|value| match value {
            PrometheusValue::Histogram(h) => h.buckets.len(),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_what_a_run_did_and_survive_redis_down() {
    let mut app = TestApp::spawn(Driver::Redis).await;
    let id = app.create_user("Ada", "ada@example.com").await;
    let before = scrape(&app).await;

    // N requests to one route.
    for _ in 0..7 {
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // One login: a code issued, verified, one session created.
    app.login(id).await;
    // 100 concurrent reads of a user nobody has read yet: one load.
    let cold = app.create_user("Bob", "bob@example.com").await;
    let mid = scrape(&app).await;
    let gets: Vec<_> = (0..100)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url(&format!("/api/users/{cold}")));
            tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for get in gets {
        assert_eq!(get.await.unwrap(), 200);
    }

    // The user is hot now: sequential reads are answered by the user
    // store's near cache (at most the first after the fill misses).
    let hot = scrape(&app).await;
    for _ in 0..5 {
        let url = app.url(&format!("/api/users/{cold}"));
        assert_eq!(app.client.get(url).send().await.unwrap().status(), 200);
    }

    let after = scrape(&app).await;
    let near = |result| [("store", "user_cache"), ("result", result)];
    let near_delta = |result| {
        value(&after, "kv_near_cache_requests_total", &near(result))
            - value(&hot, "kv_near_cache_requests_total", &near(result))
    };
    assert_eq!(
        near_delta("hit") + near_delta("miss"),
        5.0,
        "one near-cache lookup per read"
    );
    assert!(
        near_delta("hit") >= 4.0,
        "hot reads hit: {}",
        near_delta("hit")
    );
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let healthz = [("method", "GET"), ("route", "/healthz"), ("status", "2xx")];
    assert_eq!(delta("http_requests_total", &healthz), 7.0);
    let reads = [
        ("method", "GET"),
        ("route", "/api/users/{id}"),
        ("status", "2xx"),
    ];
    assert_eq!(delta("http_requests_total", &reads), 105.0);
    assert_eq!(
        delta("kv_sessions_created_total", &[("store", "session_cache")]),
        1.0
    );
    assert_eq!(delta("kv_otp_codes_total", &[("event", "issued")]), 1.0);
    assert_eq!(delta("kv_otp_codes_total", &[("event", "verified")]), 1.0);
    let since_mid = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&mid, name, labels)
    };
    let cache = |result| [("cache", "user_cache"), ("result", result)];
    assert_eq!(
        since_mid("kv_cache_requests_total", &cache("miss"))
            + since_mid("kv_cache_requests_total", &cache("hit")),
        105.0,
        "every read counted once"
    );
    assert_eq!(
        since_mid("kv_cache_loads_total", &[("cache", "user_cache")]),
        1.0,
        "100 concurrent cold reads, one load"
    );
    // Every /api request passed the API limiter once: 1 issue, 1 verify,
    // 1 create, 105 reads.
    assert_eq!(
        delta(
            "kv_ratelimit_decisions_total",
            &[("policy", "api"), ("outcome", "allowed")]
        ),
        108.0
    );
    assert!(delta("kv_store_commands_total", &[("store", "user_cache")]) >= 2.0);
    assert_eq!(
        value(&after, "http_requests_in_flight", &[]),
        1.0,
        "this scrape"
    );
    assert_eq!(
        value(&after, "kv_store_connection_up", &[("store", "user_cache")]),
        1.0
    );
    // Histograms, with buckets.
    for name in [
        "http_request_duration_seconds",
        "kv_store_command_duration_seconds",
    ] {
        let buckets = histogram_buckets(&after, name);
        assert!(!buckets.is_empty(), "{name} has samples");
        assert!(buckets.iter().all(|n| *n >= 10), "{name}: {buckets:?}");
    }

    // Redis down: the page still renders and parses, and the failures
    // are counted.
    let errors_before = value(
        &after,
        "kv_store_errors_total",
        &[("store", "session_cache")],
    );
    app.redis.as_mut().expect("a Redis driver").stop();
    let r = app
        .client
        .get(app.url("/api/session"))
        .header(
            "cookie",
            "session_id=AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "the session store is down");
    let down = scrape(&app).await;
    assert!(
        value(
            &down,
            "kv_store_errors_total",
            &[("store", "session_cache")]
        ) > errors_before
    );
    assert_eq!(
        value(
            &down,
            "kv_store_connection_up",
            &[("store", "session_cache")]
        ),
        0.0
    );
    app.stop().await;
}
