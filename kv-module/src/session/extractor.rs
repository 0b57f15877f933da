//! [`CurrentSession`]: the axum extractor for the request's session, and
//! [`SessionRejection`], its 401 / 503 `application/problem+json`
//! responses.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookie::find_cookie;
use super::data::Session;
use super::id::SessionId;
use super::sessions::Sessions;
use crate::http::Problem;

/// The session of the request, from `Authorization: Bearer <id>` or, when
/// there is no bearer token, the session cookie (named by
/// [`SessionConfig::with_cookie_name`](super::SessionConfig::with_cookie_name)).
///
/// The extractor reaches the manager through the router's state: the state
/// `S` must give an `Arc<dyn Sessions>` by [`FromRef`]. It loads the
/// session with [`Sessions::load`], which refreshes the idle timeout at
/// most once per refresh interval. Missing, malformed, unknown and expired
/// ids are rejected with `401` and a problem document (the same one for
/// unknown and expired, which a client cannot tell apart anyway); a store
/// failure with `503`. `Option<CurrentSession>` gives `None` instead of a
/// 401, for pages that also serve anonymous users.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, extract::FromRef, routing::get};
/// use kv_module::session::{CurrentSession, Sessions};
///
/// #[derive(Clone)]
/// struct AppState {
///     sessions: Arc<dyn Sessions>,
/// }
///
/// impl FromRef<AppState> for Arc<dyn Sessions> {
///     fn from_ref(state: &AppState) -> Self {
///         state.sessions.clone()
///     }
/// }
///
/// async fn me(current: CurrentSession) -> String {
///     current.session.data.user_id
/// }
///
/// fn app(state: AppState) -> Router {
///     Router::new().route("/me", get(me)).with_state(state)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct CurrentSession {
    /// The id the client sent (redacted in `Debug`), for
    /// [`delete`](Sessions::delete) or [`cycle_id`](Sessions::cycle_id).
    pub id: SessionId,
    /// The session.
    pub session: Session,
}

/// Why [`CurrentSession`] refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// Neither a bearer token nor the session cookie.
    Missing,
    /// A bearer token or cookie that is not a well-formed session id.
    Malformed,
    /// A well-formed id with no live session: unknown, expired or deleted.
    Unknown,
    /// The store failed.
    Unavailable(crate::KvError),
}

impl SessionRejection {
    /// The problem document sent for this rejection.
    pub fn problem(&self) -> Problem {
        match self {
            Self::Missing => Problem::new(
                StatusCode::UNAUTHORIZED,
                "no session: send `Authorization: Bearer <session id>` or the session cookie",
            ),
            Self::Malformed => Problem::new(StatusCode::UNAUTHORIZED, "malformed session id"),
            Self::Unknown => Problem::new(StatusCode::UNAUTHORIZED, "unknown or expired session"),
            Self::Unavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the session store is unavailable",
            ),
        }
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        let challenge = match &self {
            Self::Missing => Some("Bearer"),
            Self::Malformed | Self::Unknown => Some("Bearer error=\"invalid_token\""),
            Self::Unavailable(_) => None,
        };
        let mut response = self.problem().into_response();
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// The id the request carries: a bearer token first, else the cookie.
/// `Ok(None)` when it carries neither. An `Authorization` header of another
/// scheme is left to other extractors.
fn credential(
    headers: &HeaderMap,
    cookie_name: &str,
) -> Result<Option<SessionId>, SessionRejection> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value.to_str().map_err(|_| SessionRejection::Malformed)?;
        if let Some((scheme, token)) = text.trim().split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return SessionId::parse(token.trim())
                .map(Some)
                .ok_or(SessionRejection::Malformed);
        }
    }
    match find_cookie(headers, cookie_name) {
        None => Ok(None),
        Some(value) => SessionId::parse(value)
            .map(Some)
            .ok_or(SessionRejection::Malformed),
    }
}

impl<S> FromRequestParts<S> for CurrentSession
where
    S: Send + Sync,
    Arc<dyn Sessions>: FromRef<S>,
{
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let sessions = Arc::<dyn Sessions>::from_ref(state);
        let cookie_name = sessions.config().cookie_name.as_str();
        let id = credential(&parts.headers, cookie_name)?.ok_or(SessionRejection::Missing)?;
        match sessions.load(&id).await {
            Ok(Some(session)) => Ok(Self { id, session }),
            Ok(None) => Err(SessionRejection::Unknown),
            Err(error) => Err(SessionRejection::Unavailable(error)),
        }
    }
}

impl<S> OptionalFromRequestParts<S> for CurrentSession
where
    S: Send + Sync,
    Arc<dyn Sessions>: FromRef<S>,
{
    type Rejection = SessionRejection;

    /// `None` for a request without a valid session; a store failure is
    /// still a rejection (503), never mistaken for "anonymous".
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(current) => Ok(Some(current)),
            Err(SessionRejection::Unavailable(error)) => Err(SessionRejection::Unavailable(error)),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::COOKIE;

    use super::*;

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn bearer_wins_then_cookie_and_other_schemes_are_ignored() {
        let a = SessionId::generate("user-1").unwrap();
        let b = SessionId::generate("user-1").unwrap();
        let both = headers(&[
            (AUTHORIZATION, &format!("Bearer {}", a.expose())),
            (COOKIE, &format!("sid={}", b.expose())),
        ]);
        assert_eq!(credential(&both, "sid").unwrap(), Some(a.clone()));
        let basic = headers(&[
            (AUTHORIZATION, "Basic dXNlcjpwYXNz"),
            (COOKIE, &format!("sid={}", b.expose())),
        ]);
        assert_eq!(credential(&basic, "sid").unwrap(), Some(b.clone()));
        let lower = headers(&[(AUTHORIZATION, &format!("bearer  {}", a.expose()))]);
        assert_eq!(credential(&lower, "sid").unwrap(), Some(a));
        assert_eq!(credential(&HeaderMap::new(), "sid").unwrap(), None);
        assert!(matches!(
            credential(&headers(&[(AUTHORIZATION, "Bearer nope")]), "sid"),
            Err(SessionRejection::Malformed)
        ));
        assert!(matches!(
            credential(&headers(&[(COOKIE, "sid=nope")]), "sid"),
            Err(SessionRejection::Malformed)
        ));
    }

    #[test]
    fn rejections_are_problems_with_a_challenge() {
        let response = SessionRejection::Unknown.into_response();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
    }
}
