//! [`OneTimeCodes`]: the one-time-code service's interface, as
//! applications see it (and as shaku injects it).

use async_trait::async_trait;
use shaku::Interface;

use super::config::OtpSettings;
use super::outcome::{IssueOutcome, VerifyOutcome};
use crate::error::Result;

/// One-time codes (e-mail or SMS verification, second factors) over a
/// [`KvStore`](crate::KvStore).
///
/// Implemented by [`OtpService`](super::OtpService); hold it as
/// `Arc<dyn OneTimeCodes>` (shaku resolves it as such). A *subject* is who
/// the code is for (a user id, an e-mail address); a *purpose* what it is
/// for (`login`, `reset-password`): a code verifies only for the subject
/// and purpose it was issued for.
#[async_trait]
pub trait OneTimeCodes: Interface {
    /// The validated settings.
    fn settings(&self) -> &OtpSettings;

    /// Issues a code for (`subject`, `purpose`), replacing any earlier one,
    /// or refuses with a [`RetryAfter`](super::RetryAfter) during the
    /// resend cooldown, past the subject's daily cap, or while the subject
    /// is locked. One atomic step.
    ///
    /// # Errors
    ///
    /// [`KvError::InvalidArgument`](crate::KvError::InvalidArgument) for an
    /// empty subject or purpose; any store error.
    async fn issue(&self, subject: &str, purpose: &str) -> Result<IssueOutcome>;

    /// Checks `code` for (`subject`, `purpose`) in one atomic step: a match
    /// consumes the code; a mismatch counts against the code (burned at
    /// `max_attempts`) and against the subject (locked at the failure
    /// limit, across codes and purposes).
    ///
    /// # Errors
    ///
    /// As [`issue`](Self::issue).
    async fn verify(&self, subject: &str, purpose: &str, code: &str) -> Result<VerifyOutcome>;
}
