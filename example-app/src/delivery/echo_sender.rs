//! [`EchoSender`]: the development "delivery" that sends nothing.

use async_trait::async_trait;
use kv_module::otp::OtpCode;
use shaku::Component;

use super::code_sender::CodeSender;
use super::error::DeliveryError;
use super::masked_address::MaskedAddress;

/// Sends nothing and always succeeds: with `OTP_DEV_ECHO=true` and no
/// SMTP relay, the issue response itself carries the code (`dev_code`),
/// which is the whole delivery. For development only; the app refuses to
/// start with neither this nor SMTP configured.
///
/// It is also the component `AppModule` lists for `dyn CodeSender`, which
/// start-up always overrides with the sender the settings chose.
#[derive(Clone, Copy, Debug, Default, Component)]
#[shaku(interface = CodeSender)]
pub struct EchoSender;

#[async_trait]
impl CodeSender for EchoSender {
    async fn send(&self, to: &str, _code: &OtpCode) -> Result<(), DeliveryError> {
        tracing::debug!(
            to = %MaskedAddress(to),
            "one-time code not sent: OTP_DEV_ECHO returns it in the response"
        );
        Ok(())
    }
}
