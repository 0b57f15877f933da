//! `/api/auth/otp`: issue a one-time code for a user, and trade a correct
//! code for a session.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kv_module::otp::{IssueOutcome, OneTimeCodes, VerifyOutcome};
use kv_module::session::{SessionData, Sessions};
use serde::Deserialize;
use serde_json::json;
use shaku::HasComponent;

use crate::delivery::CodeSender;
use crate::error::{ApiError, cache_error};
use crate::state::AppState;

/// The OTP purpose of logging in.
const LOGIN: &str = "login";

/// `POST /api/auth/otp` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// The user asking for a code.
    pub user_id: i64,
}

/// `POST /api/auth/otp/verify` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The user.
    pub user_id: i64,
    /// The code they received.
    pub code: String,
}

fn retry_after(d: Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: d.as_secs() + u64::from(d.subsec_nanos() > 0),
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("the session store is unavailable: {e}"))
}

/// 202 `{"expires_in"}` (+ `dev_code` when `OTP_DEV_ECHO=true`); 404 for
/// an unknown user; 429 within the resend cooldown.
pub async fn issue(
    State(state): State<AppState>,
    request: Result<Json<IssueRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = request?;
    let user = match state.users.get(&request.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(ApiError::NotFound(format!("no user {}", request.user_id))),
        Err(e) => return Err(cache_error(e)),
    };
    let codes: &dyn OneTimeCodes = state.module.resolve_ref();
    match codes
        .issue(&request.user_id.to_string(), LOGIN)
        .await
        .map_err(unavailable)?
    {
        IssueOutcome::Issued(issued) => {
            // --- code delivery (hardening-delivery): mail it, or 503. ---
            let sender: &dyn CodeSender = state.module.resolve_ref();
            if sender.send(&user.email, &issued.code).await.is_err() {
                // The sender logged why (masked); the client learns nothing more.
                return Err(ApiError::Unavailable(
                    "the code could not be delivered: try again shortly".into(),
                ));
            }
            // --- end of code delivery ---
            let mut body = json!({ "expires_in": issued.lifetime.as_secs() });
            if state.settings.otp_dev_echo {
                body["dev_code"] = json!(issued.code.expose());
            }
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        IssueOutcome::Refused(refusal) => Err(retry_after(refusal.retry_after)),
    }
}

/// 200 `{"session_id","expires_in"}` with the session cookie; 401 for a
/// wrong, expired, used or burned code.
pub async fn verify(
    State(state): State<AppState>,
    request: Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = request?;
    let subject = request.user_id.to_string();
    let codes: &dyn OneTimeCodes = state.module.resolve_ref();
    match codes
        .verify(&subject, LOGIN, &request.code)
        .await
        .map_err(unavailable)?
    {
        VerifyOutcome::Verified => {}
        VerifyOutcome::Invalid { attempts_left } => {
            return Err(ApiError::Unauthorized(format!(
                "wrong code ({attempts_left} attempts left)"
            )));
        }
        VerifyOutcome::Locked { .. } => {
            return Err(ApiError::Unauthorized(
                "too many failed attempts: try later".into(),
            ));
        }
        _ => {
            return Err(ApiError::Unauthorized(
                "no valid code: ask for a new one".into(),
            ));
        }
    }
    let sessions: &dyn Sessions = state.module.resolve_ref();
    let id = sessions
        .create(SessionData::new(subject))
        .await
        .map_err(unavailable)?;
    let expires_in = sessions.settings().config().idle_timeout().as_secs();
    let cookie = sessions.settings().set_cookie(&id);
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "session_id": id.expose(), "expires_in": expires_in })),
    )
        .into_response())
}

/// Seconds from now until `deadline_ms` (Unix ms), at least 0.
pub fn seconds_until(deadline_ms: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    deadline_ms.saturating_sub(now) / 1000
}
