//! [`read_body`]: reads a request's body within a deadline and a size
//! limit before any handler runs.
//!
//! A per-frame timeout (tower-http's `RequestBodyTimeoutLayer`) would let
//! a client trickle one byte just under the timeout forever; the deadline
//! here is for the whole body. Bodies are small JSON documents (at most
//! [`MAX_BODY`](crate::startup::MAX_BODY)), so buffering them costs little,
//! and a `Content-Length` above the limit is refused before a byte of the
//! body is awaited.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;
use kv_module::http::Problem;

/// The deadline and the size limit of a request body.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline {
    /// From the end of the headers to the end of the body.
    pub timeout: Duration,
    /// Largest body accepted (413 above).
    pub max_bytes: usize,
}

fn too_large(max_bytes: usize) -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {max_bytes} bytes"),
    )
    .into_response()
}

/// Closes the connection after this response: the rest of the body was
/// never read, so the connection cannot carry another request.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Middleware: 413 for a declared or actual body above the limit, 408 when
/// the body has not arrived within the deadline, 400 when the client
/// broke off; otherwise the handler gets the buffered body.
pub async fn read_body(
    State(limits): State<BodyDeadline>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return closing(too_large(limits.max_bytes));
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(limits.timeout, axum::body::to_bytes(body, limits.max_bytes)).await {
        Err(_) => {
            tracing::info!(timeout = ?limits.timeout, "request body not received in time");
            closing(
                Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                )
                .into_response(),
            )
        }
        Ok(Err(e)) => {
            let over_limit =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<LengthLimitError>());
            if over_limit {
                closing(too_large(limits.max_bytes))
            } else {
                closing(
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "the request body could not be read",
                    )
                    .into_response(),
                )
            }
        }
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}
