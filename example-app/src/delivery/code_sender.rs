//! [`CodeSender`]: how a one-time code reaches its user; and
//! [`code_sender`], the choice of implementation from the settings.

use async_trait::async_trait;
use kv_module::otp::OtpCode;
use shaku::Interface;

use super::echo_sender::EchoSender;
use super::error::{DeliveryError, DeliverySetupError};
use super::smtp_sender::SmtpSender;
use crate::settings::Settings;

/// Delivers one-time codes: the shaku interface the issue handler
/// injects (`dyn CodeSender`). Object-safe: `send` returns a boxed future
/// (`async_trait`), so it can be held as `Arc<dyn CodeSender>`.
#[async_trait]
pub trait CodeSender: Interface {
    /// Delivers `code` to the mailbox `to` (the user's e-mail address), and
    /// returns once the delivery is accepted (by the mail server, for
    /// SMTP) or has failed.
    ///
    /// Implementations log the address masked ([`MaskedAddress`]) and
    /// never the code.
    ///
    /// # Errors
    ///
    /// [`DeliveryError`] when the code did not go out: the caller must
    /// treat the code as never delivered (withdraw it, answer 503).
    ///
    /// [`MaskedAddress`]: super::MaskedAddress
    async fn send(&self, to: &str, code: &OtpCode) -> Result<(), DeliveryError>;
}

/// The sender the settings ask for: SMTP when `SMTP_URL` is set (with
/// `OTP_DEV_ECHO=true` as well, codes go by mail *and* in the response),
/// else the development echo when `OTP_DEV_ECHO=true`.
///
/// # Errors
///
/// [`DeliverySetupError::NoDelivery`] when neither is configured; the
/// SMTP settings' errors (see [`SmtpSender::new`]).
pub fn code_sender(settings: &Settings) -> Result<Box<dyn CodeSender>, DeliverySetupError> {
    if !settings.smtp_url.is_empty() {
        let sender = SmtpSender::new(
            &settings.smtp_url,
            &settings.smtp_from,
            settings.smtp_timeout,
        )?;
        return Ok(Box::new(sender));
    }
    if settings.otp_dev_echo {
        return Ok(Box::new(EchoSender));
    }
    Err(DeliverySetupError::NoDelivery)
}
