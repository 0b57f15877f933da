//! One-time codes: [`KvOneTimeCodes`] (the [`OneTimeCodes`] component), its
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
//!   secret (random per process, with a warning; a given secret is used
//!   even then, so development instances sharing one agree).
//! * Only the latest code of a (subject, purpose) verifies, and only for
//!   that purpose. Re-issuing within the resend cooldown (default 30 s),
//!   past the client's daily cap for the subject (default 5) or past the
//!   subject's daily cap (default 20, all clients together) is refused
//!   with a [`RetryAfter`].
//! * `verify` is one atomic step (a Lua script on Redis, one critical
//!   section in memory): a match consumes the code, so of any number of
//!   concurrent verifications exactly one succeeds; a mismatch is counted
//!   and the code burned at `max_attempts` (default 5).
//! * Failures also count per subject across codes, purposes and clients
//!   in a fixed window (default 100 per hour, the NIST SP 800-63B bound),
//!   and per (subject, client) (default 10): asking for a new code does not
//!   reset an attacker's budget; past the client's limit that client is
//!   locked out of the subject, past the subject's the subject is locked
//!   (no codes issued, none checked) until the window ends.
//! * **Hand-over** ([`OneTimeCodesExt::verify_and`]): a right code is
//!   claimed by one verifier (others get [`VerifyOutcome::InProgress`])
//!   while the work it unlocks runs; it is consumed only if the work
//!   succeeds, and released — usable, no attempt spent — if it fails. A
//!   claim whose holder died lapses after `claim_ttl` (default 10 s) and
//!   the code verifies again. So a right code either yields the session
//!   or stays usable, and never two sessions.
//! * **Delivery** ([`OneTimeCodesExt::issue_and`]): a code whose delivery
//!   fails is withdrawn — only if it is still that unused code — and gives
//!   back its cooldown and its counts toward the daily caps.
//! * Every key carries a TTL (see the key layout below); the code itself
//!   is never stored or logged, nor is a client's identity.
//!
//! # Abuse
//!
//! Code requests and guesses need no authentication, so the limits are
//! what stands between an attacker and a user's login:
//!
//! * **One client** (one IP address, one IPv6 /64; see [`ClientId`]) can
//!   spend only its own budget of a user's codes (5 a day) and guesses (10
//!   an hour). A user it targets still gets a code from their own client,
//!   at worst after the resend cooldown (a request from any client starts
//!   it), and logs in. Each re-issue replaces the user's pending code, so
//!   one client can make the user ask again at most 5 times a day.
//! * **Many clients** together are bounded by the subject's ceilings: 20
//!   codes a day and 100 failures an hour. An attacker holding 4 addresses
//!   can spend the day's 20 codes, and one holding 10 the hour's 100
//!   failures, and then lock the user out for the rest of the window. This
//!   residual risk is deliberate: without the ceilings, an attacker with
//!   many addresses could mail-bomb a user and guess without bound (100
//!   guesses of a 6-digit code already succeed once in 10,000); NIST SP
//!   800-63B 5.2.2 caps consecutive failures at 100 for that reason. Lower
//!   it further with more digits or a proof of work before issuing; raise
//!   the cost of an address with rate limits per network (an IPv4 /24) in
//!   front of the service; and identify clients better than by address
//!   where you can (a device cookie, [`ClientId::new`]).
//! * **Behind a reverse proxy** every client has the proxy's address:
//!   derive the [`ClientId`] from the forwarding header the trusted proxy
//!   sets, or all clients share one budget.
//!
//! # Key layout
//!
//! Under the store's prefix, with `<slot>` = HMAC(subject, purpose),
//! `<subject>` = HMAC(subject) and `<client>` = HMAC(client), all
//! base64url, and `{tag}` the first 16 characters of `<subject>` — the
//! subject's hash tag, so that all keys of one subject share a slot on a
//! Redis Cluster and each script (which is given all of them in `KEYS`)
//! runs there unchanged:
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `otp:{tag}:code:<slot>` | `{failed attempts}:{hex HMAC of the code}`, plus `:{claim token}:{claim deadline ms}` while claimed | the code's lifetime |
//! | `otp:{tag}:cooldown:<slot>` | `1` | the resend cooldown |
//! | `otp:{tag}:daily:<subject>` | codes issued | 24 h from the first code |
//! | `otp:{tag}:failures:<subject>` | failed verifications | the failure window from the first failure |
//! | `otp:{tag}:client-daily:<subject>:<client>` | codes issued to the client | 24 h from its first code |
//! | `otp:{tag}:client-failures:<subject>:<client>` | the client's failed verifications | the failure window from its first failure |
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
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use axum::extract::{ConnectInfo, Path, State};
//! use axum::{Router, response::{IntoResponse, Response}, routing::post};
//! use kv_module::config::ConfigLoader;
//! use kv_module::otp::{ClientId, DeliveryOutcome, OneTimeCodes, OneTimeCodesExt, OtpConfig, KvOneTimeCodes};
//! use kv_module::registry::{ServiceRegistry, ServiceTypes};
//! use shaku::{HasComponent, module};
//!
//! module! {
//!     AppModule { components = [KvOneTimeCodes], providers = [] }
//! }
//!
//! async fn send_code(
//!     State(module): State<Arc<AppModule>>,
//!     ConnectInfo(peer): ConnectInfo<SocketAddr>,
//!     Path(email): Path<String>,
//! ) -> Response {
//!     let otp: Arc<dyn OneTimeCodes> = module.resolve();
//!     // Behind a reverse proxy: the client address its header names.
//!     let client = ClientId::from_ip(peer.ip());
//!     let sent = otp
//!         .issue_and(&email, "login", &client, |issued| async move {
//!             // mailer.send(&email, issued.code.expose()).await
//!             let _ = issued;
//!             Ok::<_, std::io::Error>(())
//!         })
//!         .await;
//!     match sent {
//!         Ok(DeliveryOutcome::Delivered(())) => "sent".into_response(),
//!         Ok(DeliveryOutcome::Refused(retry)) => retry.into_response(), // 429 + Retry-After
//!         // A failed delivery spent neither the cooldown nor the caps.
//!         Ok(DeliveryOutcome::Failed(_)) | Err(_) => {
//!             axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
//!         }
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
//! let otp = KvOneTimeCodes::from_registry(&registry, "otp", otp_config)?;
//! let module = AppModule::builder()
//!     .with_component_parameters::<KvOneTimeCodes>(otp.into_parameters())
//!     .build();
//! // Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
//! let app: Router = Router::new()
//!     .route("/codes/{email}", post(send_code))
//!     .with_state(Arc::new(module));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod claim;
mod client_id;
mod code;
mod config;
mod kv_one_time_codes;
mod one_time_codes;
mod one_time_codes_ext;
mod outcome;
mod scripts;
mod secret_mac;

pub use claim::{Claim, ClaimOutcome};
pub use client_id::ClientId;
pub use code::OtpCode;
pub use config::{
    DAILY_WINDOW, DEFAULT_CLAIM_TTL, DEFAULT_CLIENT_DAILY_CAP, DEFAULT_CLIENT_FAILURE_LIMIT,
    DEFAULT_CODE_LENGTH, DEFAULT_DAILY_CAP, DEFAULT_MAX_ATTEMPTS, DEFAULT_RESEND_COOLDOWN,
    DEFAULT_SUBJECT_FAILURE_LIMIT, DEFAULT_SUBJECT_FAILURE_WINDOW, DEFAULT_TTL, MAX_CLAIM_TTL,
    MAX_TTL, MIN_SECRET_BYTES, OtpConfig,
};
pub use kv_one_time_codes::KvOneTimeCodes;
#[cfg(feature = "shaku")]
#[cfg_attr(docsrs, doc(cfg(feature = "shaku")))]
pub use kv_one_time_codes::KvOneTimeCodesParameters;
pub use one_time_codes::OneTimeCodes;
pub use one_time_codes_ext::OneTimeCodesExt;
pub use outcome::{
    DeliveryOutcome, HandoverOutcome, IssueOutcome, IssuedCode, RefusalReason, RetryAfter,
    VerifyOutcome,
};
pub use secret_mac::SecretMac;
