//! Delivering one-time codes to the users they are for.
//!
//! * [`CodeSender`] (`code_sender.rs`): the component's interface, one
//!   object-safe `send(address, code)`; [`code_sender()`] picks the
//!   implementation from the settings at start-up.
//! * [`SmtpSender`] (`smtp_sender.rs`): the code by mail, through an SMTP
//!   relay (`SMTP_URL`, `SMTP_FROM`, `SMTP_TIMEOUT`).
//! * [`EchoSender`] (`echo_sender.rs`): development only; sends nothing,
//!   because with `OTP_DEV_ECHO=true` the issue response carries the code.
//! * [`DeliveryError`], [`DeliverySetupError`] (`error.rs`): a failed
//!   delivery (the handler answers 503) and a configuration that cannot
//!   deliver (a start-up error).
//! * [`MaskedAddress`] (`masked_address.rs`): how a recipient appears in
//!   logs (`a***@example.com`), never in full.
//!
//! # Guarantees
//!
//! * The code leaves the process only in the mail body (or, in
//!   development, the issue response): [`OtpCode`](kv_module::otp::OtpCode)
//!   prints `[redacted]`, and nothing here logs it or the full address.
//! * A delivery is bounded by `SMTP_TIMEOUT` as a whole, not per command.
//! * A configuration that cannot deliver codes at all (neither SMTP nor
//!   the development echo) does not start.
//!
//! # Wiring with shaku
//!
//! `AppModule` lists [`EchoSender`] as the component of `dyn CodeSender`,
//! and start-up always overrides it with what [`code_sender()`] chose
//! (`with_component_override`), so the choice is made, and validated,
//! once, before the module is built. The issue handler injects
//! `dyn CodeSender` like every other component.

mod code_sender;
mod echo_sender;
mod error;
mod masked_address;
mod smtp_sender;

pub use code_sender::{CodeSender, code_sender};
pub use echo_sender::EchoSender;
pub use error::{DeliveryError, DeliverySetupError};
pub use masked_address::MaskedAddress;
pub use smtp_sender::SmtpSender;
