//! [`Claim`]: a right code held by one verifier while its hand-over runs,
//! and [`ClaimOutcome`], what [`claim`](super::OneTimeCodes::claim)
//! answers.

use super::outcome::VerifyOutcome;

/// A right code claimed by one verifier: until it is
/// [committed](super::OneTimeCodes::commit) (consumed) or
/// [released](super::OneTimeCodes::release) (usable again, no attempt
/// spent), concurrent verifications of it are
/// [`InProgress`](VerifyOutcome::InProgress). A claim nobody ends expires
/// after `claim_ttl`, and the code verifies again.
///
/// Prefer [`verify_and`](super::OneTimeCodesExt::verify_and), which ends
/// the claim for you. `Debug` shows none of its parts.
#[must_use = "end a claim with `commit` or `release`, or it holds the code for `claim_ttl`"]
pub struct Claim {
    /// The code's key.
    pub(super) code_key: String,
    /// The hex HMAC of the claimed code.
    pub(super) digest: String,
    /// This claim's random token (hex), which commit and release present.
    pub(super) token: String,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").finish_non_exhaustive()
    }
}

/// The answer to [`claim`](super::OneTimeCodes::claim).
#[derive(Debug)]
pub enum ClaimOutcome {
    /// The code matched and is now held by this caller.
    Claimed(Claim),
    /// Nothing was claimed; why (never
    /// [`Verified`](VerifyOutcome::Verified)).
    Rejected(VerifyOutcome),
}
