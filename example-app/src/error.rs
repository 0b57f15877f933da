//! [`ApiError`]: every error a handler returns, as problem+json.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kv_module::http::Problem;

use crate::users::UsersError;

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
    /// 503: a dependency (Redis) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged, never shown in detail.
    #[error("internal error")]
    Internal(String),
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
            Self::Unavailable(d) => (StatusCode::SERVICE_UNAVAILABLE, d.clone()),
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

/// A failed read through the users cache: the repository (SQLite) failed,
/// since the cache itself never fails a read.
pub fn cache_error(e: kv_module::cache_aside::CacheError<UsersError>) -> ApiError {
    ApiError::Internal(format!("loading a user failed: {e}"))
}
