//! `/api/auth/otp`: issue a one-time code for a user, and trade a correct
//! code for a session.
//!
//! Abuse (issue 11): every code request and guess counts against the
//! client's IP address twice — in the OTP service, per (user, client), so
//! one client hammering a user spends only its own budget and the user
//! still gets a code from elsewhere; and here, per client across users
//! ([`OtpRouteLimits`], the `otp_rate_limit:` section), so one client
//! cannot walk through every user. The client's address comes from one
//! extractor, [`ClientAddress`] (`TRUSTED_PROXIES` aware).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kv_module::otp::{
    ClientId, DeliveryOutcome, HandoverOutcome, OneTimeCodes, OneTimeCodesExt, VerifyOutcome,
};
use kv_module::rate_limit::RateLimiter;
use kv_module::session::{SessionData, Sessions};
use serde::Deserialize;
use serde_json::json;

use crate::client_address::ClientAddress;
use crate::delivery::CodeSender;
use crate::error::ApiError;
use crate::otp_route_limits::OtpRouteLimits;
use crate::settings::Settings;
use crate::state::{Inject, UserCache};

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

/// One check of `limiter` for `ip`: 429 with `Retry-After` when spent.
async fn within(limiter: &dyn RateLimiter, ip: IpAddr) -> Result<(), ApiError> {
    match limiter.check(&format!("ip:{ip}")).await {
        Ok(decision) if decision.allowed => Ok(()),
        Ok(decision) => Err(ApiError::TooManyRequests {
            retry_after_secs: decision.retry_after_secs().unwrap_or(1),
        }),
        Err(e) => Err(ApiError::Unavailable(format!(
            "the rate limiter is unavailable: {e}"
        ))),
    }
}

fn retry_after(d: std::time::Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: d.as_secs() + u64::from(d.subsec_nanos() > 0),
    }
}

/// 202 `{"expires_in"}` (+ `dev_code` when `OTP_DEV_ECHO=true`); 404 for
/// an unknown user; 429 within the resend cooldown or past a limit.
pub async fn issue(
    limits: Inject<dyn OtpRouteLimits>,
    users: Inject<UserCache>,
    codes: Inject<dyn OneTimeCodes>,
    sender: Inject<dyn CodeSender>,
    State(settings): State<Arc<Settings>>,
    ClientAddress(ip): ClientAddress,
    request: Result<Json<IssueRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    within(limits.issue(), ip).await?;
    let Json(request) = request?;
    let Some(user) = users.get(&request.user_id).await? else {
        return Err(ApiError::NotFound(format!("no user {}", request.user_id)));
    };
    let echo = settings.otp_dev_echo;
    let subject = request.user_id.to_string();
    let sender: &dyn CodeSender = &*sender;
    // The code is mailed (or, in development, only echoed) inside the
    // closure: a failed delivery withdraws it, so the user's cooldown and
    // caps are not spent.
    let delivered = codes
        .issue_and(
            &subject,
            LOGIN,
            &ClientId::from_ip(ip),
            |issued| async move {
                if sender.send(&user.email, &issued.code).await.is_err() {
                    // The sender logged why (masked); the client learns no more.
                    return Err(ApiError::Unavailable(
                        "the code could not be delivered: try again shortly".into(),
                    ));
                }
                let mut body = json!({ "expires_in": issued.lifetime.as_secs() });
                if echo {
                    body["dev_code"] = json!(issued.code.expose());
                }
                Ok::<_, ApiError>(body)
            },
        )
        .await?;
    match delivered {
        DeliveryOutcome::Delivered(body) => Ok((StatusCode::ACCEPTED, Json(body)).into_response()),
        DeliveryOutcome::Refused(refusal) => Err(retry_after(refusal.retry_after)),
        DeliveryOutcome::Failed(e) => Err(e),
    }
}

/// 200 `{"session_id","user_id","expires_in"}` with the session cookie;
/// 401 for a wrong, expired, used or burned code; 409 while another
/// request is logging in with the same code; 503 when no session can be
/// created (the code then stays usable).
pub async fn verify(
    limits: Inject<dyn OtpRouteLimits>,
    codes: Inject<dyn OneTimeCodes>,
    sessions: Inject<dyn Sessions>,
    ClientAddress(ip): ClientAddress,
    request: Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    within(limits.verify(), ip).await?;
    let Json(request) = request?;
    let subject = request.user_id.to_string();
    let sessions: &dyn Sessions = &*sessions;
    // The session is created while the code is claimed: it is consumed
    // only if the session exists, and stays usable otherwise.
    let owner = subject.clone();
    let outcome = codes
        .verify_and(
            &subject,
            LOGIN,
            &request.code,
            &ClientId::from_ip(ip),
            move || async move {
                sessions
                    .create(SessionData::new(owner))
                    .await
                    .map_err(ApiError::from)
            },
        )
        .await?;
    let id = match outcome {
        HandoverOutcome::Verified(id) => id,
        HandoverOutcome::Failed(e) => return Err(e),
        HandoverOutcome::Rejected(VerifyOutcome::InProgress) => {
            return Err(ApiError::Conflict(
                "this code is being used by another request".into(),
            ));
        }
        HandoverOutcome::Rejected(VerifyOutcome::Invalid { attempts_left }) => {
            return Err(ApiError::Unauthorized(format!(
                "wrong code ({attempts_left} attempts left)"
            )));
        }
        HandoverOutcome::Rejected(VerifyOutcome::Locked { .. }) => {
            return Err(ApiError::Unauthorized(
                "too many failed attempts: try later".into(),
            ));
        }
        HandoverOutcome::Rejected(_) => {
            return Err(ApiError::Unauthorized(
                "no valid code: ask for a new one".into(),
            ));
        }
    };
    let expires_in = sessions.config().idle_timeout.as_secs();
    let cookie = sessions.config().set_cookie(&id);
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, cookie)],
        Json(json!({
            "session_id": id.expose(),
            "user_id": request.user_id,
            "expires_in": expires_in,
        })),
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
