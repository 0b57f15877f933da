//! `/api/session`: the caller's session.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kv_module::session::{CurrentSession, Session, Sessions};
use serde_json::{Value, json};

use super::auth::seconds_until;
use crate::error::ApiError;
use crate::state::Inject;

fn expires_in(sessions: &dyn Sessions, session: &Session) -> u64 {
    let idle_ms = u64::try_from(sessions.config().idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let idle_deadline = session.last_seen.saturating_add(idle_ms);
    seconds_until(idle_deadline.min(session.absolute_expiry))
}

/// 200 `{"user_id","created_at","expires_in"}`, `user_id` an integer as
/// users' ids are everywhere else (the session stores it as text).
pub async fn get(
    sessions: Inject<dyn Sessions>,
    current: CurrentSession,
) -> Result<Json<Value>, ApiError> {
    let user_id: i64 = current.session.data.user_id.parse().map_err(|_| {
        ApiError::Internal(format!(
            "a session's user id is not an integer: {:?}",
            current.session.data.user_id
        ))
    })?;
    Ok(Json(json!({
        "user_id": user_id,
        "created_at": current.session.created_at,
        "expires_in": expires_in(&*sessions, &current.session),
    })))
}

/// 200 `{"expires_in"}` after extending the idle timeout.
pub async fn refresh(
    sessions: Inject<dyn Sessions>,
    current: CurrentSession,
) -> Result<Json<Value>, ApiError> {
    let gone = || ApiError::Unauthorized("unknown or expired session".into());
    if !sessions.refresh(&current.id).await? {
        return Err(gone());
    }
    let session = sessions.get(&current.id).await?.ok_or_else(gone)?;
    Ok(Json(
        json!({ "expires_in": expires_in(&*sessions, &session) }),
    ))
}

/// 204; the session no longer works, and the cookie is cleared.
pub async fn delete(
    sessions: Inject<dyn Sessions>,
    current: CurrentSession,
) -> Result<Response, ApiError> {
    sessions.delete(&current.id).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, sessions.config().clear_cookie())],
    )
        .into_response())
}
