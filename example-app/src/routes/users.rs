//! `/api/users`: create, read (through the cache), update, delete.
//!
//! Sign-up (`POST`) is open. Reading a user shows its id and name to
//! anyone and its e-mail address only to the user; changing or deleting a
//! user takes a session of that user (401 without a session, 403 with
//! another user's).

use axum::Json;
use axum::extract::Path;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kv_module::session::{CurrentSession, SessionRejection, Sessions};

use crate::error::ApiError;
use crate::state::{Inject, UserCache};
use crate::users::{NewUser, PublicUser, User, UserPatch, UsersError};

/// The `{id}` path parameter as an integer (400 otherwise).
pub type UserId = Result<Path<i64>, axum::extract::rejection::PathRejection>;

/// 403 unless `current` is a session of the user `id`.
fn require_owner(current: &CurrentSession, id: i64) -> Result<(), ApiError> {
    if current.session.data.user_id == id.to_string() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "a session of this user is required".into(),
        ))
    }
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    Ok(body?.0)
}

/// `POST /api/users`: 201 with the user; 409 duplicate email; 422 invalid.
pub async fn create(
    users: Inject<UserCache>,
    new: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let new = body(new)?;
    new.validate().map_err(ApiError::Invalid)?;
    let (_, user) = users.create(new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `GET /api/users/{id}`: through the cache; the cache is never the reason
/// a read fails. `{"id","name"}`, and `"email"` too for the user's own
/// session; any other caller (no session, a bad one, or the session store
/// down) reads the public view.
pub async fn get(
    users: Inject<UserCache>,
    current: Result<CurrentSession, SessionRejection>,
    id: UserId,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let owner = current.is_ok_and(|current| require_owner(&current, id).is_ok());
    match users.get(&id).await? {
        Some(user) if owner => Ok(Json(user).into_response()),
        Some(user) => Ok(Json(PublicUser::from(user)).into_response()),
        None => Err(ApiError::NotFound(format!("no user {id}"))),
    }
}

/// `PUT /api/users/{id}`: 200 with the updated user; needs a session of
/// that user.
pub async fn update(
    users: Inject<UserCache>,
    current: CurrentSession,
    id: UserId,
    patch: Result<Json<UserPatch>, JsonRejection>,
) -> Result<Json<User>, ApiError> {
    let Path(id) = id?;
    require_owner(&current, id)?;
    let patch = body(patch)?;
    patch.validate().map_err(ApiError::Invalid)?;
    Ok(Json(users.update(&id, patch).await?))
}

/// `DELETE /api/users/{id}`: 204; the cache entry and every session of
/// the user are gone. Needs a session of that user.
pub async fn delete(
    users: Inject<UserCache>,
    sessions: Inject<dyn Sessions>,
    current: CurrentSession,
    id: UserId,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    require_owner(&current, id)?;
    if !users.delete(&id).await? {
        return Err(UsersError::NotFound(id).into());
    }
    if let Err(e) = sessions.delete_user_sessions(&id.to_string()).await {
        // The user is gone; their sessions end at their own TTL. Said loudly.
        tracing::warn!(user_id = id, error = %e, "user deleted but sessions not revoked");
        return Err(ApiError::UnavailablePartly(
            "the user was deleted but their sessions could not be revoked: they end at their timeouts",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/users/{id}/sessions`: log the user out everywhere; needs a
/// session of that user (403 for another user's).
pub async fn delete_sessions(
    sessions: Inject<dyn Sessions>,
    current: CurrentSession,
    id: UserId,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    require_owner(&current, id)?;
    sessions.delete_user_sessions(&id.to_string()).await?;
    Ok(StatusCode::NO_CONTENT)
}
