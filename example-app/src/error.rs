//! [`ApiError`]: every error a handler returns, as problem+json.

use axum::body::{Body, HttpBody};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kv_module::KvError;
use kv_module::cache_aside::CacheError;
use kv_module::http::Problem;

use crate::request_id::RequestId;
use crate::users::UsersError;

/// A 5xx body is read at most this far to log its detail.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A handler error; its `IntoResponse` is the only place errors become
/// HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 422: the body is well-formed but its values are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// 400/415/413/422 from the JSON or path extractor.
    #[error("{0}")]
    Json(#[from] JsonRejection),
    /// 400 for a bad path parameter.
    #[error("{0}")]
    Path(#[from] PathRejection),
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 429 with `Retry-After`.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// 503: a store failed (unreachable, too slow, or it refused the
    /// command). The error is logged, and the client gets a generic detail
    /// (it names stores and keys).
    #[error(transparent)]
    Store(#[from] KvError),
    /// 503: another dependency (the rate limiter's policy, the mail relay)
    /// is unavailable; logged, generic to the client, as [`Self::Store`].
    #[error("{0}")]
    Unavailable(String),
    /// 503 whose detail the client must see, because part of the request
    /// was done (the user was deleted, say) and a blind retry would not do
    /// the rest. Written here, so it names no internals.
    #[error("{0}")]
    UnavailablePartly(&'static str),
    /// 500: logged, never shown in detail.
    #[error("internal error")]
    Internal(String),
}

/// A failed read through the users cache: the repository (SQLite) failed,
/// since the cache itself never fails a read.
impl From<CacheError<UsersError>> for ApiError {
    fn from(e: CacheError<UsersError>) -> Self {
        Self::Internal(format!("loading a user failed: {e}"))
    }
}

impl From<UsersError> for ApiError {
    fn from(e: UsersError) -> Self {
        match e {
            UsersError::DuplicateEmail => Self::Conflict(e.to_string()),
            UsersError::NotFound(_) => Self::NotFound(e.to_string()),
            UsersError::Database(e) => Self::Internal(format!("database: {e}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, detail) = match &self {
            Self::NotFound(d) => (StatusCode::NOT_FOUND, d.clone()),
            Self::Conflict(d) => (StatusCode::CONFLICT, d.clone()),
            Self::Invalid(d) => (StatusCode::UNPROCESSABLE_ENTITY, d.clone()),
            Self::Json(r) => (r.status(), r.body_text()),
            Self::Path(r) => (StatusCode::BAD_REQUEST, r.body_text()),
            Self::Unauthorized(d) => (StatusCode::UNAUTHORIZED, d.clone()),
            Self::Forbidden(d) => (StatusCode::FORBIDDEN, d.clone()),
            Self::TooManyRequests { retry_after_secs } => {
                let mut response = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("retry after {retry_after_secs} s"),
                )
                .into_response();
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(*retry_after_secs),
                );
                return response;
            }
            Self::Store(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            Self::Unavailable(d) => (StatusCode::SERVICE_UNAVAILABLE, d.clone()),
            Self::UnavailablePartly(d) => {
                let mut response =
                    Problem::new(StatusCode::SERVICE_UNAVAILABLE, *d).into_response();
                response.extensions_mut().insert(PublicDetail);
                return response;
            }
            Self::Internal(d) => {
                tracing::error!(error = %d, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        Problem::new(status, detail).into_response()
    }
}

/// Marks an error response whose detail is meant for the client (see
/// [`ApiError::UnavailablePartly`]): [`finish_error_response`] keeps it.
#[derive(Clone, Copy, Debug)]
pub struct PublicDetail;

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/problem+json")
}

fn with_json_body(mut parts: axum::http::response::Parts, body: serde_json::Value) -> Response {
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// The last word on an error response, applied to every response by the
/// request middleware whatever produced it (a handler, an extractor's
/// rejection, a component's layer, axum's own 405):
///
/// * a 4xx or 5xx without a body becomes a problem document (axum answers
///   405 and some rejections with an empty body);
/// * a 5xx problem loses its detail, which can name stores, commands and
///   keys: the detail is logged here, inside the request's span, and the
///   client gets a generic one with the `request_id` to quote (unless the
///   response is marked [`PublicDetail`], whose detail stays).
///
/// Other bodies (such as `/readyz`'s own 503 document) pass unchanged.
pub async fn finish_error_response(response: Response, id: &RequestId) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let empty = response.body().size_hint().exact() == Some(0);
    if !status.is_server_error() {
        if !empty || is_problem(&response) {
            return response;
        }
        let detail = if status == StatusCode::METHOD_NOT_ALLOWED {
            "this method is not allowed here (see the Allow header)"
        } else {
            status.canonical_reason().unwrap_or("client error")
        };
        let (parts, _) = response.into_parts();
        let body = serde_json::to_value(Problem::new(status, detail)).unwrap_or_default();
        return with_json_body(parts, body);
    }
    if !(empty || is_problem(&response)) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    tracing::error!(status = status.as_u16(), detail = %detail, "server error");
    let public = if parts.extensions.get::<PublicDetail>().is_some() {
        detail.as_str()
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        "a service this request needs is unavailable: retry later"
    } else {
        "internal error"
    };
    let mut body = serde_json::to_value(Problem::new(status, public)).unwrap_or_default();
    body["request_id"] = serde_json::Value::from(id.as_str());
    with_json_body(parts, body)
}
