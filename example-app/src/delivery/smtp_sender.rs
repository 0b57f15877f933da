//! [`SmtpSender`]: one-time codes by mail, through an SMTP relay.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use kv_module::Secret;
use kv_module::otp::OtpCode;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::code_sender::CodeSender;
use super::error::{DeliveryError, DeliverySetupError};
use super::masked_address::MaskedAddress;

/// The subject line of a code mail.
const SUBJECT: &str = "Your sign-in code";

/// Sends each code as a plain-text mail from `SMTP_FROM` to the user's
/// address, through the relay `SMTP_URL` names (lettre's URL form:
/// `smtp://host:port` in the clear, `smtp://host?tls=required` with
/// STARTTLS, `smtps://user:password@host` over TLS; TLS by rustls with
/// the webpki roots).
///
/// Each delivery opens its own connection (no pool): codes are rare, and
/// a pooled connection that the relay has dropped would make the next
/// user wait for its failure. The whole delivery — connect, TLS, every
/// command — is bounded by the timeout, and every command also by lettre's
/// own per-command timeout set to the same value.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl fmt::Debug for SmtpSender {
    // The transport holds the relay's credentials: show none of it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender through the relay `url` (see the type's doc), from the
    /// mailbox `from` (`codes@example.com` or `Example <codes@example.com>`),
    /// each delivery bounded by `timeout`. Connects to nothing yet.
    ///
    /// # Errors
    ///
    /// [`DeliverySetupError`] for an empty or invalid `from`, a URL lettre
    /// cannot use, a password that would travel unencrypted, or a zero
    /// timeout. No message contains the URL.
    pub fn new(url: &Secret, from: &str, timeout: Duration) -> Result<Self, DeliverySetupError> {
        let from = from.trim();
        if from.is_empty() {
            return Err(DeliverySetupError::MissingFrom);
        }
        let from: Mailbox = from
            .parse()
            .map_err(|source| DeliverySetupError::InvalidFrom {
                from: from.to_owned(),
                source,
            })?;
        if timeout.is_zero() {
            return Err(DeliverySetupError::ZeroTimeout);
        }
        if sends_password_in_the_clear(url.expose()) {
            return Err(DeliverySetupError::PasswordInTheClear);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(DeliverySetupError::InvalidUrl)?
            .timeout(Some(timeout))
            .build();
        Ok(Self {
            transport,
            from,
            timeout,
        })
    }

    async fn deliver(&self, to: &str, code: &OtpCode) -> Result<(), DeliveryError> {
        let recipient: Mailbox = to.parse().map_err(|_| DeliveryError::InvalidRecipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject(SUBJECT)
            .header(ContentType::TEXT_PLAIN)
            .body(body(code))
            .map_err(DeliveryError::Message)?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_elapsed) => Err(DeliveryError::Timeout {
                after: self.timeout,
            }),
            Ok(Err(error)) => Err(DeliveryError::from_smtp(error, self.timeout)),
            Ok(Ok(_accepted)) => Ok(()),
        }
    }
}

/// Whether `url` has credentials but no required TLS: lettre would send
/// the password unencrypted (`smtp://` without `tls=required`; even
/// `tls=opportunistic` falls back to the clear when an attacker strips
/// STARTTLS).
fn sends_password_in_the_clear(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let (authority, query) = match rest.split_once('?') {
        Some((before, query)) => (before, query),
        None => (rest, ""),
    };
    let authority = authority.split('/').next().unwrap_or("");
    let has_credentials = authority.contains('@');
    // Schemes other than `smtp` are lettre's to accept (`smtps`) or refuse.
    let in_the_clear =
        scheme.eq_ignore_ascii_case("smtp") && !query.split('&').any(|pair| pair == "tls=required");
    has_credentials && in_the_clear
}

/// The mail's text: the code, what it is for, and what to do with an
/// unexpected one.
fn body(code: &OtpCode) -> String {
    format!(
        "Your sign-in code is {}.\r\n\
         \r\n\
         It works once and only for a few minutes.\r\n\
         If you did not ask for it, ignore this mail:\r\n\
         nobody can sign in without the code.\r\n",
        code.expose()
    )
}

#[async_trait]
impl CodeSender for SmtpSender {
    async fn send(&self, to: &str, code: &OtpCode) -> Result<(), DeliveryError> {
        let delivered = self.deliver(to, code).await;
        match &delivered {
            Ok(()) => tracing::info!(to = %MaskedAddress(to), "one-time code sent by mail"),
            Err(error) => tracing::warn!(
                to = %MaskedAddress(to),
                error = %error,
                cause = %Causes(error),
                "one-time code not delivered"
            ),
        }
        delivered
    }
}

/// The source chain of an error, `: `-separated (empty without sources).
/// Only [`DeliveryError`]'s own sources are walked, and it keeps none that
/// holds the recipient or the code.
struct Causes<'a>(&'a DeliveryError);

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut source = std::error::Error::source(self.0);
        let mut first = true;
        while let Some(cause) = source {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{cause}")?;
            first = false;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Secret {
        Secret::new(text)
    }

    #[test]
    fn settings_are_checked_and_the_url_never_shown() {
        let timeout = Duration::from_secs(5);
        let ok = SmtpSender::new(
            &url("smtps://user:hunter2@mail.example.com"),
            "Codes <codes@example.com>",
            timeout,
        )
        .unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"), "{ok:?}");

        let missing = SmtpSender::new(&url("smtp://127.0.0.1:2525"), " ", timeout);
        assert!(matches!(missing, Err(DeliverySetupError::MissingFrom)));
        let invalid = SmtpSender::new(&url("smtp://127.0.0.1:2525"), "not a mailbox", timeout);
        assert!(matches!(
            invalid,
            Err(DeliverySetupError::InvalidFrom { .. })
        ));
        let zero = SmtpSender::new(
            &url("smtp://127.0.0.1:2525"),
            "a@example.com",
            Duration::ZERO,
        );
        assert!(matches!(zero, Err(DeliverySetupError::ZeroTimeout)));

        for bad in [
            "http://user:hunter2@mail.example.com",
            "hunter2",
            "smtps://user:hunter2@ma il.example.com",
        ] {
            let Err(error) = SmtpSender::new(&url(bad), "a@example.com", timeout) else {
                panic!("{bad} must be refused");
            };
            assert!(
                matches!(error, DeliverySetupError::InvalidUrl(_)),
                "{bad}: {error}"
            );
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn a_password_never_travels_in_the_clear() {
        let timeout = Duration::from_secs(5);
        for clear in [
            "smtp://user:hunter2@mail.example.com",
            "smtp://user:hunter2@mail.example.com:587?tls=opportunistic",
            "SMTP://user:hunter2@mail.example.com/ehlo-name",
        ] {
            let refused = SmtpSender::new(&url(clear), "a@example.com", timeout);
            assert!(
                matches!(refused, Err(DeliverySetupError::PasswordInTheClear)),
                "{clear}"
            );
        }
        for fine in [
            "smtps://user:hunter2@mail.example.com",
            "smtp://user:hunter2@mail.example.com:587?tls=required",
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.com/name@host",
        ] {
            SmtpSender::new(&url(fine), "a@example.com", timeout)
                .unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }

    #[test]
    fn the_body_carries_the_code() {
        let code = OtpCode::generate(8).unwrap();
        assert!(body(&code).contains(code.expose()));
    }
}
