//! `GET /metrics`: Prometheus text.

use std::fmt::Write;

use axum::http::header;
use axum::response::IntoResponse;
use kv_module::rate_limit::RateLimiter;

use crate::state::{Inject, UserCache};

/// Cache and limiter counters in the Prometheus text format.
pub async fn metrics(
    users: Inject<UserCache>,
    limiter: Inject<dyn RateLimiter>,
) -> impl IntoResponse {
    let cache = users.metrics();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP kv_cache_requests_total Cache-aside reads by result."
    );
    let _ = writeln!(out, "# TYPE kv_cache_requests_total counter");
    for (result, n) in [
        ("hit", cache.hits),
        ("miss", cache.misses),
        ("negative_hit", cache.negative_hits),
    ] {
        let _ = writeln!(
            out,
            "kv_cache_requests_total{{cache=\"users\",result=\"{result}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP kv_cache_loads_total Loads from the system of record."
    );
    let _ = writeln!(out, "# TYPE kv_cache_loads_total counter");
    let _ = writeln!(
        out,
        "kv_cache_loads_total{{cache=\"users\"}} {}",
        cache.loads
    );
    let _ = writeln!(
        out,
        "# HELP kv_cache_store_errors_total Cache store failures."
    );
    let _ = writeln!(out, "# TYPE kv_cache_store_errors_total counter");
    let _ = writeln!(
        out,
        "kv_cache_store_errors_total{{cache=\"users\"}} {}",
        cache.store_errors
    );
    let _ = writeln!(
        out,
        "# HELP kv_ratelimit_failed_open_total Checks let through because the store failed."
    );
    let _ = writeln!(out, "# TYPE kv_ratelimit_failed_open_total counter");
    let _ = writeln!(
        out,
        "kv_ratelimit_failed_open_total{{policy=\"{}\"}} {}",
        limiter.policy().name(),
        limiter.failed_open()
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
