//! A `tracing` span per request: its id, method, matched route and
//! status. The raw URI is not recorded (it could carry a token); the route
//! template (`/api/users/{id}`) is.

use axum::extract::{MatchedPath, Request};
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
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
        status = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    async move {
        let response = next.run(request).await;
        let mut response = finish_error_response(response, &id).await;
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), id.header_value());
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
