//! One-time codes: [`OtpService`] (the [`OneTimeCodes`] component), its
//! configuration and its outcomes.
//!
//! # What it guarantees
//!
//! * Codes are decimal digits from the OS CSPRNG without modulo bias
//!   (default 6, 4–10 allowed), living at most 10 minutes (default 5,
//!   per NIST SP 800-63B).
//! * A code is stored only as HMAC-SHA256(secret, subject ‖ purpose ‖ code),
//!   each part length-prefixed; subjects and purposes appear in key names
//!   only as keyed HMACs. The secret is required: a missing one is a
//!   start-up error unless the configuration opts into a development
//!   secret (random per process, with a warning).
//! * Only the latest code of a (subject, purpose) verifies, and only for
//!   that purpose. Re-issuing within the resend cooldown (default 30 s)
//!   or past the subject's daily cap (default 10) is refused with a
//!   [`RetryAfter`].
//! * `verify` is one atomic step (a Lua script on Redis, one critical
//!   section in memory): a match consumes the code, so of any number of
//!   concurrent verifications exactly one succeeds; a mismatch is counted
//!   and the code burned at `max_attempts` (default 5).
//! * Failures also count per subject across codes and purposes in a fixed
//!   window (default 20 per hour): asking for a new code does not reset an
//!   attacker's budget; past it the subject is locked (no codes issued,
//!   none checked) until the window ends.
//! * Every key carries a TTL (see the key layout below); the code itself
//!   is never stored or logged.
//!
//! # Key layout
//!
//! Under the store's prefix, with `<slot>` = HMAC(subject, purpose) and
//! `<subject>` = HMAC(subject), both base64url, and `{tag}` the first 16
//! characters of `<subject>` — the subject's hash tag, so that all keys of
//! one subject share a slot on a Redis Cluster and each script (which is
//! given all of them in `KEYS`) runs there unchanged:
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `otp:{tag}:code:<slot>` | `{failed attempts}:{hex HMAC of the code}` | the code's lifetime |
//! | `otp:{tag}:cooldown:<slot>` | `1` | the resend cooldown |
//! | `otp:{tag}:daily:<subject>` | codes issued | 24 h from the first code |
//! | `otp:{tag}:failures:<subject>` | failed verifications | the failure window from the first failure |
//!
//! # Wiring with shaku and axum
//!
//! Build the service before the shaku module (so a missing secret or a bad
//! store name is a start-up error) and pass it as the component's
//! parameters. Handlers take it with
//! `shaku_axum::Inject<AppModule, dyn OneTimeCodes>`, or resolve it from
//! the module in the state, as below (which is what `Inject` does).
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, extract::{Path, State}, response::{IntoResponse, Response}, routing::post};
//! use kv_module::config::ConfigLoader;
//! use kv_module::otp::{IssueOutcome, OneTimeCodes, OtpConfig, OtpService};
//! use kv_module::registry::{ServiceRegistry, ServiceTypes};
//! use shaku::{HasComponent, module};
//!
//! module! {
//!     AppModule { components = [OtpService], providers = [] }
//! }
//!
//! async fn send_code(State(module): State<Arc<AppModule>>, Path(email): Path<String>) -> Response {
//!     let otp: Arc<dyn OneTimeCodes> = module.resolve();
//!     match otp.issue(&email, "login").await {
//!         Ok(IssueOutcome::Issued(issued)) => {
//!             // mailer.send(&email, issued.code.expose()).await;
//!             let _ = issued;
//!             "sent".into_response()
//!         }
//!         Ok(IssueOutcome::Refused(retry)) => retry.into_response(), // 429 + Retry-After
//!         Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = "
//! services:
//!   otp_cache:
//!     type: kvstore_memory
//!     config: { prefix: otp }
//! otp:
//!   store: otp_cache
//!   secret: an example secret of at least 32 bytes
//! ";
//! let config = ConfigLoader::new().load_str("app.yaml", yaml)?;
//! let registry = ServiceRegistry::build(&config, &ServiceTypes::builtin()).await?;
//! let otp_config: OtpConfig = config.required_section("otp")?;
//! let otp = OtpService::from_registry(&registry, "otp", otp_config)?;
//! let module = AppModule::builder()
//!     .with_component_parameters::<OtpService>(otp.into_parameters())
//!     .build();
//! let app: Router = Router::new()
//!     .route("/codes/{email}", post(send_code))
//!     .with_state(Arc::new(module));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod code;
mod config;
mod one_time_codes;
mod outcome;
mod scripts;
mod service;

pub use code::OtpCode;
pub use config::{
    DAILY_WINDOW, DEFAULT_CODE_LENGTH, DEFAULT_DAILY_CAP, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RESEND_COOLDOWN, DEFAULT_SUBJECT_FAILURE_LIMIT, DEFAULT_SUBJECT_FAILURE_WINDOW,
    DEFAULT_TTL, MAX_TTL, MIN_SECRET_BYTES, OtpConfig, OtpSettings,
};
pub use one_time_codes::OneTimeCodes;
pub use outcome::{IssueOutcome, IssuedCode, RefusalReason, RetryAfter, VerifyOutcome};
pub use service::{OtpService, OtpServiceParameters};
