//! [`OneTimeCodes`]: the one-time-code service's interface, as
//! applications see it (and as shaku injects it).

use async_trait::async_trait;

use super::claim::{Claim, ClaimOutcome};
use super::client_id::ClientId;
use super::code::OtpCode;
use super::config::OtpConfig;
use super::outcome::{IssueOutcome, VerifyOutcome};
use crate::error::Result;

/// One-time codes (e-mail or SMS verification, second factors) over a
/// [`KvStore`](crate::KvStore).
///
/// Implemented by [`KvOneTimeCodes`](super::KvOneTimeCodes); hold it as
/// `Arc<dyn OneTimeCodes>` (shaku resolves it as such). A *subject* is who
/// the code is for (a user id, an e-mail address); a *purpose* what it is
/// for (`login`, `reset-password`): a code verifies only for the subject
/// and purpose it was issued for. A *client* ([`ClientId`]) is who asks:
/// each has its own budget of a subject's codes and guesses.
///
/// The hand-over forms — deliver a code or withdraw it, consume a code
/// only once the work it unlocks succeeded — are
/// [`issue_and`](super::OneTimeCodesExt::issue_and) and
/// [`verify_and`](super::OneTimeCodesExt::verify_and) on
/// [`OneTimeCodesExt`](super::OneTimeCodesExt), built on
/// [`withdraw`](Self::withdraw), [`claim`](Self::claim),
/// [`commit`](Self::commit) and [`release`](Self::release).
#[async_trait]
pub trait OneTimeCodes: crate::Interface {
    /// The validated configuration (its `Debug` redacts the secret).
    fn config(&self) -> &OtpConfig;

    /// [`issue_from`](Self::issue_from) an [unknown](ClientId::unknown)
    /// client: all such callers share one client budget.
    ///
    /// # Errors
    ///
    /// As [`issue_from`](Self::issue_from).
    async fn issue(&self, subject: &str, purpose: &str) -> Result<IssueOutcome> {
        self.issue_from(subject, purpose, &ClientId::unknown())
            .await
    }

    /// Issues a code for (`subject`, `purpose`) to `client`, replacing any
    /// earlier one, or refuses with a [`RetryAfter`](super::RetryAfter)
    /// while the subject or this client is locked, during the resend
    /// cooldown, past this client's daily cap for the subject, or past the
    /// subject's daily cap. One atomic step.
    ///
    /// # Errors
    ///
    /// [`KvError::InvalidArgument`](crate::KvError::InvalidArgument) for an
    /// empty subject or purpose; any store error.
    async fn issue_from(
        &self,
        subject: &str,
        purpose: &str,
        client: &ClientId,
    ) -> Result<IssueOutcome>;

    /// [`verify_from`](Self::verify_from) an [unknown](ClientId::unknown)
    /// client.
    ///
    /// # Errors
    ///
    /// As [`issue_from`](Self::issue_from).
    async fn verify(&self, subject: &str, purpose: &str, code: &str) -> Result<VerifyOutcome> {
        self.verify_from(subject, purpose, code, &ClientId::unknown())
            .await
    }

    /// Checks `code` for (`subject`, `purpose`) from `client` in one atomic
    /// step: a match consumes the code (unless another verifier holds it:
    /// [`InProgress`](VerifyOutcome::InProgress)); a mismatch counts
    /// against the code (burned at `max_attempts`), against the subject
    /// (locked at its failure limit, across codes, purposes and clients)
    /// and against this client (locked out of the subject at its own
    /// limit).
    ///
    /// # Errors
    ///
    /// As [`issue_from`](Self::issue_from).
    async fn verify_from(
        &self,
        subject: &str,
        purpose: &str,
        code: &str,
        client: &ClientId,
    ) -> Result<VerifyOutcome>;

    /// As [`verify_from`](Self::verify_from), but a match claims the code
    /// for `claim_ttl` instead of consuming it: end the claim with
    /// [`commit`](Self::commit) or [`release`](Self::release) (or use
    /// [`verify_and`](super::OneTimeCodesExt::verify_and), which does).
    ///
    /// # Errors
    ///
    /// As [`issue_from`](Self::issue_from).
    async fn claim(
        &self,
        subject: &str,
        purpose: &str,
        code: &str,
        client: &ClientId,
    ) -> Result<ClaimOutcome>;

    /// Consumes a claimed code: `true` when it was this claim's to consume
    /// (still held, or lapsed with nobody taking the code since); `false`
    /// when the claim lapsed and the code was consumed, re-issued or
    /// claimed by another verifier meanwhile.
    ///
    /// # Errors
    ///
    /// Any store error (the claim then lapses after `claim_ttl` and the
    /// code verifies again).
    async fn commit(&self, claim: &Claim) -> Result<bool>;

    /// Gives a claimed code back, usable again with its attempts as they
    /// were: `false` when the claim had already lapsed.
    ///
    /// # Errors
    ///
    /// Any store error (the claim then lapses after `claim_ttl`).
    async fn release(&self, claim: &Claim) -> Result<bool>;

    /// Withdraws `code`, issued to `client` for (`subject`, `purpose`),
    /// when it could not be delivered: only if it is still the current
    /// code, never tried and not claimed, it is removed and its cooldown
    /// and its counts toward both daily caps are given back (`true`). A
    /// newer code, a tried one, or none is left alone (`false`).
    ///
    /// # Errors
    ///
    /// As [`issue_from`](Self::issue_from).
    async fn withdraw(
        &self,
        subject: &str,
        purpose: &str,
        client: &ClientId,
        code: &OtpCode,
    ) -> Result<bool>;
}
