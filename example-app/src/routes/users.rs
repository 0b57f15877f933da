//! `/api/users`: create, read (through the cache), update, delete.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kv_module::session::{CurrentSession, Sessions};
use shaku::HasComponent;

use crate::error::{ApiError, cache_error};
use crate::state::AppState;
use crate::users::{NewUser, User, UserPatch, UsersError, validate};

/// The `{id}` path parameter as an integer (400 otherwise).
pub type UserId = Result<Path<i64>, axum::extract::rejection::PathRejection>;

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    Ok(body?.0)
}

/// `POST /api/users`: 201 with the user; 409 duplicate email; 422 invalid.
pub async fn create(
    State(state): State<AppState>,
    new: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let new = body(new)?;
    validate(&new.name, &new.email).map_err(ApiError::Invalid)?;
    let (_, user) = state.users.create(new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `GET /api/users/{id}`: through the cache; the cache is never the reason
/// a read fails.
pub async fn get(State(state): State<AppState>, id: UserId) -> Result<Json<User>, ApiError> {
    let Path(id) = id?;
    match state.users.get(&id).await {
        Ok(Some(user)) => Ok(Json(user)),
        Ok(None) => Err(ApiError::NotFound(format!("no user {id}"))),
        Err(e) => Err(cache_error(e)),
    }
}

/// `PUT /api/users/{id}`: 200 with the updated user.
pub async fn update(
    State(state): State<AppState>,
    id: UserId,
    patch: Result<Json<UserPatch>, JsonRejection>,
) -> Result<Json<User>, ApiError> {
    let Path(id) = id?;
    let patch = body(patch)?;
    if let Some(name) = &patch.name {
        validate(name, "x@example.com").map_err(ApiError::Invalid)?;
    }
    if let Some(email) = &patch.email {
        validate("x", email).map_err(ApiError::Invalid)?;
    }
    Ok(Json(state.users.update(&id, patch).await?))
}

/// `DELETE /api/users/{id}`: 204; the cache entry and every session of
/// the user are gone.
pub async fn delete(State(state): State<AppState>, id: UserId) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    if !state.users.delete(&id).await? {
        return Err(UsersError::NotFound(id).into());
    }
    let sessions: &dyn Sessions = state.module.resolve_ref();
    if let Err(e) = sessions.delete_user_sessions(&id.to_string()).await {
        // The user is gone; their sessions end at their own TTL. Said loudly.
        tracing::warn!(user_id = id, error = %e, "user deleted but sessions not revoked");
        return Err(ApiError::Unavailable(
            "the user was deleted but the session store is unavailable".into(),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/users/{id}/sessions`: log the user out everywhere; needs a
/// session of that user (403 for another user's).
pub async fn delete_sessions(
    State(state): State<AppState>,
    current: CurrentSession,
    id: UserId,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    if current.session.data.user_id != id.to_string() {
        return Err(ApiError::Forbidden(
            "a session of this user is required".into(),
        ));
    }
    let sessions: &dyn Sessions = state.module.resolve_ref();
    sessions
        .delete_user_sessions(&id.to_string())
        .await
        .map_err(|e| ApiError::Unavailable(format!("session store: {e}")))?;
    Ok(StatusCode::NO_CONTENT)
}
