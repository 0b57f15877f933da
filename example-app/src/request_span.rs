//! A `tracing` span per request: method, matched route and status. The
//! raw URI is not recorded (it could carry a token); the route template
//! (`/api/users/{id}`) is.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Middleware: wraps the request in a span and logs its outcome.
pub async fn request_span(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        status = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    async move {
        let response = next.run(request).await;
        let status = response.status().as_u16();
        tracing::Span::current().record("status", status);
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "response"
        );
        response
    }
    .instrument(span)
    .await
}
