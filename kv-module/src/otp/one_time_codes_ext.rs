//! [`OneTimeCodesExt`]: the hand-over forms of [`OneTimeCodes`] — deliver
//! a code or withdraw it; consume a code only once the work it unlocks
//! succeeded — for every implementation, `dyn OneTimeCodes` included.

use std::future::Future;

use super::claim::ClaimOutcome;
use super::client_id::ClientId;
use super::one_time_codes::OneTimeCodes;
use super::outcome::{DeliveryOutcome, HandoverOutcome, IssueOutcome, IssuedCode, VerifyOutcome};
use crate::error::Result;

/// [`issue_and`](Self::issue_and) and [`verify_and`](Self::verify_and):
/// generic over the caller's work, so they live here rather than on the
/// object-safe [`OneTimeCodes`], for which they are implemented (call them
/// on an `Arc<dyn OneTimeCodes>` or an [`KvOneTimeCodes`](super::KvOneTimeCodes)).
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{MemoryStore, Secret};
/// use kv_module::otp::{
///     ClientId, DeliveryOutcome, HandoverOutcome, OneTimeCodes, OneTimeCodesExt, OtpConfig,
///     KvOneTimeCodes,
/// };
/// use kv_module::registry::StoreRef;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = OtpConfig::new(StoreRef::new("otp_cache"))
///     .with_secret(Secret::new("an example secret of at least 32 bytes"));
/// let otp: Arc<dyn OneTimeCodes> =
///     Arc::new(KvOneTimeCodes::new(Arc::new(MemoryStore::new("otp_cache", "app")), config)?);
/// let client = ClientId::from_ip([203, 0, 113, 9].into());
///
/// // A mailer that fails: the code is withdrawn, the cooldown not spent.
/// let sent = otp
///     .issue_and("ada", "login", &client, |_issued| async { Err::<(), _>("smtp down") })
///     .await?;
/// assert_eq!(sent, DeliveryOutcome::Failed("smtp down"));
/// let sent = otp
///     .issue_and("ada", "login", &client, |issued| async move {
///         Ok::<_, &str>(issued.code) // mailer.send(issued.code.expose())
///     })
///     .await?;
/// let DeliveryOutcome::Delivered(code) = sent else { panic!("no cooldown was spent") };
///
/// // The session store fails: the code stays usable.
/// let login = otp
///     .verify_and("ada", "login", code.expose(), &client, || async { Err::<u64, _>("store down") })
///     .await?;
/// assert_eq!(login, HandoverOutcome::Failed("store down"));
/// let login = otp
///     .verify_and("ada", "login", code.expose(), &client, || async { Ok::<_, &str>(42_u64) })
///     .await?;
/// assert_eq!(login, HandoverOutcome::Verified(42));
/// # Ok(())
/// # }
/// ```
pub trait OneTimeCodesExt: OneTimeCodes {
    /// Issues a code to `client` as [`issue_from`](OneTimeCodes::issue_from)
    /// does and runs `deliver` with it. When `deliver` fails, the code is
    /// [withdrawn](OneTimeCodes::withdraw): it no longer verifies, and
    /// neither the resend cooldown nor the daily caps are spent, so the
    /// user may ask again at once.
    ///
    /// # Errors
    ///
    /// As [`issue_from`](OneTimeCodes::issue_from). A store error while
    /// withdrawing is logged, not returned: the delivery's failure is the
    /// answer (the code then expires unused).
    fn issue_and<'a, T, E, F, Fut>(
        &'a self,
        subject: &'a str,
        purpose: &'a str,
        client: &'a ClientId,
        deliver: F,
    ) -> impl Future<Output = Result<DeliveryOutcome<T, E>>> + Send + 'a
    where
        F: FnOnce(IssuedCode) -> Fut + Send + 'a,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        async move {
            let issued = match self.issue_from(subject, purpose, client).await? {
                IssueOutcome::Issued(issued) => issued,
                IssueOutcome::Refused(refused) => return Ok(DeliveryOutcome::Refused(refused)),
            };
            let code = issued.code.clone();
            match deliver(issued).await {
                Ok(value) => Ok(DeliveryOutcome::Delivered(value)),
                Err(e) => {
                    match self.withdraw(subject, purpose, client, &code).await {
                        Ok(withdrawn) => {
                            tracing::debug!(withdrawn, "undelivered one-time code withdrawn");
                        }
                        Err(error) => tracing::warn!(
                            %error,
                            "an undelivered one-time code could not be withdrawn; it expires unused"
                        ),
                    }
                    Ok(DeliveryOutcome::Failed(e))
                }
            }
        }
    }

    /// Verifies `code` from `client` and, when it matches, runs `work`
    /// (create the session) while the code is claimed: if `work` succeeds
    /// the code is consumed ([`Verified`](HandoverOutcome::Verified)); if
    /// it fails the code is released and stays usable, no attempt spent
    /// ([`Failed`](HandoverOutcome::Failed)). Concurrent verifications of
    /// the code meanwhile are [`InProgress`](VerifyOutcome::InProgress),
    /// so of any number of racing calls at most one hands over.
    ///
    /// `work` should finish within `claim_ttl` (default 10 s): past it the
    /// claim lapses and another verifier may take the code; then this call
    /// answers [`Rejected`](HandoverOutcome::Rejected)`(`[`ExpiredOrUnknown`](VerifyOutcome::ExpiredOrUnknown)`)`
    /// and drops `work`'s value (a session whose id nobody learns, which
    /// expires). A holder that dies leaves a claim that lapses the same
    /// way, and the code verifies again.
    ///
    /// # Errors
    ///
    /// As [`verify_from`](OneTimeCodes::verify_from); a store error while
    /// committing is returned (`work`'s value dropped; the claim lapses and
    /// the code verifies again). A store error while releasing is logged:
    /// `work`'s failure is the answer, and the claim lapses.
    fn verify_and<'a, T, E, F, Fut>(
        &'a self,
        subject: &'a str,
        purpose: &'a str,
        code: &'a str,
        client: &'a ClientId,
        work: F,
    ) -> impl Future<Output = Result<HandoverOutcome<T, E>>> + Send + 'a
    where
        F: FnOnce() -> Fut + Send + 'a,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        async move {
            let claim = match self.claim(subject, purpose, code, client).await? {
                ClaimOutcome::Claimed(claim) => claim,
                ClaimOutcome::Rejected(outcome) => return Ok(HandoverOutcome::Rejected(outcome)),
            };
            match work().await {
                Ok(value) => {
                    if self.commit(&claim).await? {
                        Ok(HandoverOutcome::Verified(value))
                    } else {
                        Ok(HandoverOutcome::Rejected(VerifyOutcome::ExpiredOrUnknown))
                    }
                }
                Err(e) => {
                    if let Err(error) = self.release(&claim).await {
                        tracing::warn!(
                            %error,
                            "a one-time code claim could not be released; it lapses after claim_ttl"
                        );
                    }
                    Ok(HandoverOutcome::Failed(e))
                }
            }
        }
    }
}

impl<S: OneTimeCodes + ?Sized> OneTimeCodesExt for S {}
