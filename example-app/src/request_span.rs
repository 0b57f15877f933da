//! A `tracing` span per request: its id, method and matched route; its
//! last line (`response`) adds the status and the latency. The raw URI is not recorded (it could carry a token); the route
//! template (`/api/users/{id}`) is. The same labels count the request in
//! the metrics: `http_requests_total{method, route, status}` (`status` the
//! class: `2xx`, `4xx`, ...), `http_request_duration_seconds{method,
//! route}` and `http_requests_in_flight`.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::error::finish_error_response;
use crate::request_id::{REQUEST_ID_HEADER, RequestId};

/// Middleware: gives the request its [`RequestId`] (also a request
/// extension), wraps it in a span, makes error responses problem+json
/// without internals ([`finish_error_response`]), sets `X-Request-Id` and
/// logs the outcome.
pub async fn request_span(mut request: Request, next: Next) -> Response {
    let id = RequestId::for_request(request.headers());
    request.extensions_mut().insert(id.clone());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    // No `status` field recorded on the span at the end: the JSON
    // formatter re-encodes a span's fields on every `record` (about 2 % of
    // a cache hit's CPU under wrk), and the status is already in the
    // request's last line, the "response" event below.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
    );
    let started = std::time::Instant::now();
    // A bounded label: a client cannot mint series with made-up methods.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let in_flight = InFlight::start();
    async move {
        let response = next.run(request).await;
        let mut response = finish_error_response(response, &id).await;
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), id.header_value());
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        tracing::info!(status, elapsed_ms = elapsed.as_millis() as u64, "response");
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => class)
            .increment(1);
        metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
            .record(elapsed.as_secs_f64());
        drop(in_flight);
        response
    }
    .instrument(span)
    .await
}

/// Counts a request in `http_requests_in_flight` while it lives (a
/// request whose client went away is dropped, and counted out, too).
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!("http_requests_in_flight").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("http_requests_in_flight").decrement(1.0);
    }
}
