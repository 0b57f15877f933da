//! [`DeliveryError`]: a code that could not be delivered; and
//! [`DeliverySetupError`]: settings that cannot deliver codes at all.

use std::time::Duration;

/// Why a code did not reach its recipient. The handler answers 503 without
/// any of this; it is for the logs.
///
/// No variant holds the recipient's address or the code, and the SMTP
/// server's reply text is dropped on purpose (servers often quote the
/// recipient in it: `550 <alice@example.com>: no such user`): only its
/// status code is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The user's stored address is not one a mail can be sent to.
    #[error("the recipient address is not a valid mailbox")]
    InvalidRecipient,
    /// The server answered with an error status.
    #[error(
        "the mail server refused the message with status {status} ({})",
        if *permanent { "permanent" } else { "transient" }
    )]
    Refused {
        /// The SMTP status code (`451`, `550`, ...).
        status: u16,
        /// A 5xx (retrying the same message will fail again) rather than a
        /// 4xx.
        permanent: bool,
    },
    /// The message could not be built (lettre refused its headers).
    #[error("the mail could not be built")]
    Message(#[source] lettre::error::Error),
    /// The server could not be reached or spoke something other than SMTP
    /// (connection refused or reset, TLS failure, malformed reply).
    #[error("the mail server is unreachable or misbehaved")]
    Transport(#[source] lettre::transport::smtp::Error),
    /// The whole delivery took longer than the configured timeout.
    #[error("the mail server did not accept the message within {} ms", after.as_millis())]
    Timeout {
        /// The timeout.
        after: Duration,
    },
}

impl DeliveryError {
    /// Classifies an SMTP error, keeping what is safe to log.
    pub(crate) fn from_smtp(error: lettre::transport::smtp::Error, timeout: Duration) -> Self {
        if error.is_timeout() {
            return Self::Timeout { after: timeout };
        }
        match error.status() {
            Some(code) if error.is_transient() || error.is_permanent() => Self::Refused {
                status: u16::from(code),
                permanent: error.is_permanent(),
            },
            _ => Self::Transport(error),
        }
    }
}

/// Settings with which codes cannot be delivered: a start-up error. None of
/// the messages contains `SMTP_URL` itself (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverySetupError {
    /// Neither SMTP nor the development echo is configured.
    #[error(
        "one-time codes cannot be delivered: set SMTP_URL and SMTP_FROM to send them by mail, \
         or OTP_DEV_ECHO=true to return them in the response (development only)"
    )]
    NoDelivery,
    /// `SMTP_URL` is set but `SMTP_FROM` is not.
    #[error("SMTP_URL is set but SMTP_FROM is empty: set the sender address of the code mails")]
    MissingFrom,
    /// `SMTP_FROM` is not a mailbox.
    #[error(
        "SMTP_FROM `{from}` is not a mailbox (`name@example.com` or `Name <name@example.com>`)"
    )]
    InvalidFrom {
        /// The value given.
        from: String,
        /// Why it does not parse.
        #[source]
        source: lettre::address::AddressError,
    },
    /// `SMTP_URL` is not an SMTP URL lettre can use.
    #[error(
        "SMTP_URL is not a usable SMTP URL (`smtp://host:port`, `smtp://host?tls=required`, \
         `smtps://user:password@host`)"
    )]
    InvalidUrl(#[source] lettre::transport::smtp::Error),
    /// `SMTP_URL` has a user and password but does not require TLS.
    #[error(
        "SMTP_URL has credentials but would send them unencrypted: use `smtps://` \
         or add `?tls=required`"
    )]
    PasswordInTheClear,
    /// `SMTP_TIMEOUT` is zero.
    #[error("SMTP_TIMEOUT must be longer than zero")]
    ZeroTimeout,
}
