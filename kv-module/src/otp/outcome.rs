//! What [`issue`](super::OneTimeCodes::issue) and
//! [`verify`](super::OneTimeCodes::verify) answer: [`IssueOutcome`]
//! (an [`IssuedCode`] or a [`RetryAfter`]) and [`VerifyOutcome`]; and
//! what their hand-over forms answer: [`DeliveryOutcome`] and
//! [`HandoverOutcome`].

use std::time::Duration;

#[cfg(feature = "axum")]
use axum::http::header::RETRY_AFTER;
#[cfg(feature = "axum")]
use axum::http::{HeaderValue, StatusCode};
#[cfg(feature = "axum")]
use axum::response::{IntoResponse, Response};

use super::code::OtpCode;
#[cfg(feature = "axum")]
use crate::http::Problem;

/// The answer to [`issue`](super::OneTimeCodes::issue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueOutcome {
    /// A new code; any earlier code of the same subject and purpose no
    /// longer verifies.
    Issued(IssuedCode),
    /// No code now; try again after the delay.
    Refused(RetryAfter),
}

/// A freshly issued code and its lifetime. `Debug` redacts the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCode {
    /// The code, to send to the user.
    pub code: OtpCode,
    /// How long it verifies.
    pub lifetime: Duration,
}

/// Why a code was refused and when to ask again. As a response it is
/// `429 Too Many Requests` with `Retry-After` (whole seconds, rounded up)
/// and a problem document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter {
    /// Why.
    pub reason: RefusalReason,
    /// When a new request can succeed.
    pub retry_after: Duration,
}

/// Why [`issue`](super::OneTimeCodes::issue) refused a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// A code for this subject and purpose was issued less than the resend
    /// cooldown ago.
    Cooldown,
    /// The subject had its daily cap of codes (all clients together).
    DailyCap,
    /// This client had its daily cap of codes for the subject; other
    /// clients may still get one.
    ClientDailyCap,
    /// The subject failed too many verifications in the current window.
    Locked,
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl IntoResponse for RetryAfter {
    fn into_response(self) -> Response {
        let detail = match self.reason {
            RefusalReason::Cooldown => "a code was sent moments ago; wait before asking again",
            RefusalReason::DailyCap => "too many codes requested today",
            RefusalReason::ClientDailyCap => "too many codes requested from this client today",
            RefusalReason::Locked => "too many failed attempts; try again later",
        };
        let seconds = self.retry_after.as_millis().div_ceil(1000);
        let mut response = Problem::new(StatusCode::TOO_MANY_REQUESTS, detail).into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        response
    }
}

/// The answer to [`verify`](super::OneTimeCodes::verify).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The code matched and is now consumed: it will not verify again.
    Verified,
    /// The code did not match. At zero attempts left the code is burned
    /// (later verifications are [`ExpiredOrUnknown`](Self::ExpiredOrUnknown)).
    Invalid {
        /// Wrong guesses the code still tolerates.
        attempts_left: u32,
    },
    /// No code to check: none was issued for this subject and purpose, or
    /// it expired, was consumed, replaced by a newer one, or burned.
    ExpiredOrUnknown,
    /// The subject failed too many verifications in the current window
    /// (across codes, purposes and clients), or this client did for the
    /// subject; nothing is checked for it until the window passes.
    Locked {
        /// When the window ends.
        retry_after: Duration,
    },
    /// The code is right but another verifier holds it while its hand-over
    /// runs (see [`verify_and`](super::OneTimeCodesExt::verify_and)): it
    /// is either consumed in a moment or released. Not a failure; nothing
    /// was counted.
    InProgress,
}

impl VerifyOutcome {
    /// Whether the code was verified.
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified)
    }
}

/// The answer to [`issue_and`](super::OneTimeCodesExt::issue_and).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome<T, E> {
    /// A code was issued and the delivery closure succeeded with this.
    Delivered(T),
    /// No code now; try again after the delay.
    Refused(RetryAfter),
    /// The delivery closure failed with this; the code was withdrawn, so
    /// neither the cooldown nor the daily caps were spent.
    Failed(E),
}

/// The answer to [`verify_and`](super::OneTimeCodesExt::verify_and).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandoverOutcome<T, E> {
    /// The code matched, the hand-over closure succeeded with this, and
    /// the code is consumed.
    Verified(T),
    /// The code matched but the hand-over closure failed with this: the
    /// code was released and stays usable, no attempt spent.
    Failed(E),
    /// The code was not handed over; why (never
    /// [`Verified`](VerifyOutcome::Verified)).
    Rejected(VerifyOutcome),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_a_429_with_whole_seconds() {
        let response = RetryAfter {
            reason: RefusalReason::Cooldown,
            retry_after: Duration::from_millis(1_001),
        }
        .into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}
