//! [`Problem`]: an RFC 9457 `application/problem+json` response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response body as RFC 9457 describes it (`type`, `title`,
/// `status`, `detail`), sent with `Content-Type: application/problem+json`.
///
/// ```
/// use axum::http::StatusCode;
/// use axum::response::IntoResponse;
/// use kv_module::http::Problem;
///
/// let response = Problem::new(StatusCode::UNAUTHORIZED, "no session").into_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI identifying the problem type (`about:blank` when the status
    /// says it all).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary: the status's reason phrase by default.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong for this request. Never a secret.
    pub detail: String,
}

impl Problem {
    /// A problem with `status`, its reason phrase as title, and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            type_uri: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// Sets the problem type URI. Default: `about:blank`.
    pub fn with_type(mut self, type_uri: impl Into<String>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Sets the title. Default: the status's reason phrase.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The status as a [`StatusCode`].
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
