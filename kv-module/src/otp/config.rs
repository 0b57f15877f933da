//! [`OtpConfig`]: the configuration of [`KvOneTimeCodes`](super::KvOneTimeCodes).

use std::time::Duration;

use serde::Deserialize;

use crate::config::{deserialize_validated, serde_duration};
use crate::registry::StoreRef;
use crate::secret::Secret;

/// Default code length: 6 digits.
pub const DEFAULT_CODE_LENGTH: u8 = 6;
/// Default code lifetime: 5 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// Longest code lifetime allowed: 10 minutes (NIST SP 800-63B, 5.1.3.1).
pub const MAX_TTL: Duration = Duration::from_secs(10 * 60);
/// Default wrong guesses before a code is burned: 5.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default time before a new code may be issued for the same subject and
/// purpose: 30 seconds.
pub const DEFAULT_RESEND_COOLDOWN: Duration = Duration::from_secs(30);
/// Default codes per subject per day, whatever the client: 20 (the
/// ceiling that many clients together cannot pass).
pub const DEFAULT_DAILY_CAP: u32 = 20;
/// Default codes per subject and client per day: 5 (so one client spends
/// only its own budget).
pub const DEFAULT_CLIENT_DAILY_CAP: u32 = 5;
/// Default failed verifications per subject and window before the subject
/// is locked: 100 (NIST SP 800-63B, 5.2.2, allows at most 100 consecutive
/// failures before a lock-out).
pub const DEFAULT_SUBJECT_FAILURE_LIMIT: u32 = 100;
/// Default failed verifications per subject and client and window before
/// that client is locked for the subject: 10.
pub const DEFAULT_CLIENT_FAILURE_LIMIT: u32 = 10;
/// Default time a right code stays claimed by one verifier while its
/// hand-over work runs (see
/// [`verify_and`](super::OneTimeCodesExt::verify_and)): 10 seconds.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(10);
/// Longest claim allowed: 1 minute.
pub const MAX_CLAIM_TTL: Duration = Duration::from_secs(60);
/// Default window of the per-subject failure count: 1 hour.
pub const DEFAULT_SUBJECT_FAILURE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// The window of the daily cap: a fixed 24 hours from the first code.
pub const DAILY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest secret accepted: 32 bytes (256 bits when random, as HMAC-SHA256
/// wants; `openssl rand -base64 32` makes one).
pub const MIN_SECRET_BYTES: usize = 32;

/// Configuration of an [`KvOneTimeCodes`](super::KvOneTimeCodes), as a YAML section
/// or built in code.
///
/// ```yaml
/// otp:
///   store: otp_cache               # the kvstore service (required)
///   secret: ${OTP_SECRET}          # HMAC key, >= 32 bytes (required...)
///   dev_secret: false              # ...unless true: without a secret, a random one per process (warning)
///   code_length: 6                 # digits, 4-10 (default 6)
///   ttl: 5m                        # code lifetime, at most 10m (default 5m)
///   max_attempts: 5                # wrong guesses before the code is burned, 1-20 (default 5)
///   resend_cooldown: 30s           # between codes for one subject and purpose, 0-1h (default 30s)
///   daily_cap: 20                  # codes per subject per 24 h, all clients together (default 20)
///   client_daily_cap: 5            # codes per subject and client per 24 h (default 5)
///   subject_failure_limit: 100     # failures per subject per window before it is locked (default 100)
///   client_failure_limit: 10       # failures per subject and client per window (default 10)
///   subject_failure_window: 1h     # the window of both failure counts, 1ms-24h (default 1h)
///   claim_ttl: 10s                 # how long a hand-over holds a right code, 1ms-1m (default 10s)
/// ```
///
/// Deserializing checks these rules, so a bad value fails at start-up with
/// its file position; [`KvOneTimeCodes::new`](super::KvOneTimeCodes::new) checks
/// them again for configurations built in code.
///
/// ```
/// use kv_module::Secret;
/// use kv_module::otp::OtpConfig;
/// use kv_module::registry::StoreRef;
///
/// let config = OtpConfig::new(StoreRef::new("otp_cache"))
///     .with_secret(Secret::new("0123456789abcdef0123456789abcdef"));
/// assert!(config.validate().is_ok());
/// assert!(OtpConfig::new(StoreRef::new("otp_cache")).validate().is_err(), "no secret");
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default = "OtpConfig::defaults")]
#[non_exhaustive]
pub struct OtpConfig {
    /// The store the codes are kept in (required).
    pub store: StoreRef,
    /// The HMAC secret, at least 32 bytes. Default: none, which is a
    /// start-up error unless [`dev_secret`](Self::dev_secret).
    pub secret: Secret,
    /// A random per-process secret, for development, used only when no
    /// secret is given: codes and counters do not survive a restart, and a
    /// warning is logged. With a secret as well, the secret is used (so
    /// several development instances sharing it accept each other's
    /// codes). Default: `false`.
    pub dev_secret: bool,
    /// The number of digits (4–10). Default: 6.
    pub code_length: u8,
    /// A code's lifetime (at most 10 minutes). Default: 5 minutes.
    #[serde(with = "serde_duration")]
    pub ttl: Duration,
    /// How many wrong guesses burn a code (1–20). Default: 5.
    pub max_attempts: u32,
    /// The time before another code may be issued for the same subject
    /// and purpose (0 disables it; at most 1 hour). Default: 30 s.
    #[serde(with = "serde_duration")]
    pub resend_cooldown: Duration,
    /// How many codes a subject may be issued per 24 hours, whatever the
    /// client: the ceiling many clients together cannot pass. Default: 20.
    pub daily_cap: u32,
    /// How many codes one client may be issued for one subject per 24
    /// hours (see [`ClientId`](super::ClientId)). Default: 5.
    pub client_daily_cap: u32,
    /// How many failed verifications of a subject, across codes, purposes
    /// and clients, lock it for the rest of the window. Default: 100 (the
    /// NIST SP 800-63B bound).
    pub subject_failure_limit: u32,
    /// How many failed verifications of a subject from one client lock that
    /// client (only) out of the subject for the rest of the window.
    /// Default: 10.
    pub client_failure_limit: u32,
    /// The fixed window of the per-subject and per-client failure counts
    /// (from the first failure; 1 ms to 24 hours). Default: 1 hour.
    #[serde(with = "serde_duration")]
    pub subject_failure_window: Duration,
    /// How long a right code stays claimed by the verifier running its
    /// hand-over (1 ms to 1 minute). A claim neither committed nor released
    /// (its holder died) expires after this, and the code verifies again.
    /// Default: 10 s.
    #[serde(with = "serde_duration")]
    pub claim_ttl: Duration,
}

deserialize_validated!(OtpConfig);

impl OtpConfig {
    /// The defaults, with codes kept in the store named `store`, and no
    /// secret yet (set one with [`with_secret`](Self::with_secret), or opt
    /// into [`with_dev_secret`](Self::with_dev_secret)).
    pub fn new(store: StoreRef) -> Self {
        Self {
            store,
            secret: Secret::default(),
            dev_secret: false,
            code_length: DEFAULT_CODE_LENGTH,
            ttl: DEFAULT_TTL,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            resend_cooldown: DEFAULT_RESEND_COOLDOWN,
            daily_cap: DEFAULT_DAILY_CAP,
            client_daily_cap: DEFAULT_CLIENT_DAILY_CAP,
            subject_failure_limit: DEFAULT_SUBJECT_FAILURE_LIMIT,
            client_failure_limit: DEFAULT_CLIENT_FAILURE_LIMIT,
            subject_failure_window: DEFAULT_SUBJECT_FAILURE_WINDOW,
            claim_ttl: DEFAULT_CLAIM_TTL,
        }
    }

    /// What YAML leaves out (the store is required: its empty default
    /// fails validation).
    fn defaults() -> Self {
        Self::new(StoreRef::new(""))
    }

    /// Sets [`secret`](Self::secret).
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secret = secret;
        self
    }

    /// Sets [`dev_secret`](Self::dev_secret).
    pub fn with_dev_secret(mut self, dev_secret: bool) -> Self {
        self.dev_secret = dev_secret;
        self
    }

    /// Sets [`code_length`](Self::code_length).
    pub fn with_code_length(mut self, digits: u8) -> Self {
        self.code_length = digits;
        self
    }

    /// Sets [`ttl`](Self::ttl).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`resend_cooldown`](Self::resend_cooldown).
    pub fn with_resend_cooldown(mut self, cooldown: Duration) -> Self {
        self.resend_cooldown = cooldown;
        self
    }

    /// Sets [`daily_cap`](Self::daily_cap).
    pub fn with_daily_cap(mut self, cap: u32) -> Self {
        self.daily_cap = cap;
        self
    }

    /// Sets [`client_daily_cap`](Self::client_daily_cap).
    pub fn with_client_daily_cap(mut self, cap: u32) -> Self {
        self.client_daily_cap = cap;
        self
    }

    /// Sets [`subject_failure_limit`](Self::subject_failure_limit).
    pub fn with_subject_failure_limit(mut self, limit: u32) -> Self {
        self.subject_failure_limit = limit;
        self
    }

    /// Sets [`client_failure_limit`](Self::client_failure_limit).
    pub fn with_client_failure_limit(mut self, limit: u32) -> Self {
        self.client_failure_limit = limit;
        self
    }

    /// Sets [`subject_failure_window`](Self::subject_failure_window).
    pub fn with_subject_failure_window(mut self, window: Duration) -> Self {
        self.subject_failure_window = window;
        self
    }

    /// Sets [`claim_ttl`](Self::claim_ttl).
    pub fn with_claim_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl;
        self
    }

    /// Checks the rules listed on the type; the message names the field
    /// (never the secret's value).
    pub fn validate(&self) -> Result<(), String> {
        if self.store.name().is_empty() {
            return Err("store is required: the kvstore service holding the codes".to_owned());
        }
        match (self.dev_secret, self.secret.is_empty()) {
            (false, true) => {
                return Err(format!(
                    "secret is required (at least {MIN_SECRET_BYTES} bytes, e.g. \
                     `openssl rand -base64 32`), or set `dev_secret: true` for development"
                ));
            }
            (_, false) if self.secret.expose().len() < MIN_SECRET_BYTES => {
                return Err(format!(
                    "secret must be at least {MIN_SECRET_BYTES} bytes long, got {}",
                    self.secret.expose().len()
                ));
            }
            _ => {}
        }
        if !(4..=10).contains(&self.code_length) {
            return Err(format!(
                "code_length must be between 4 and 10 digits, got {}",
                self.code_length
            ));
        }
        if self.ttl < Duration::from_millis(1) || self.ttl > MAX_TTL {
            return Err(format!(
                "ttl must be between 1ms and 10m (NIST SP 800-63B), got {:?}",
                self.ttl
            ));
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err(format!(
                "max_attempts must be between 1 and 20, got {}",
                self.max_attempts
            ));
        }
        if self.resend_cooldown > Duration::from_secs(3600) {
            return Err(format!(
                "resend_cooldown must be at most 1h, got {:?}",
                self.resend_cooldown
            ));
        }
        if self.daily_cap == 0 {
            return Err("daily_cap must be at least 1".into());
        }
        if self.client_daily_cap == 0 {
            return Err("client_daily_cap must be at least 1".into());
        }
        if self.subject_failure_limit == 0 {
            return Err("subject_failure_limit must be at least 1".into());
        }
        if self.client_failure_limit == 0 {
            return Err("client_failure_limit must be at least 1".into());
        }
        if self.claim_ttl < Duration::from_millis(1) || self.claim_ttl > MAX_CLAIM_TTL {
            return Err(format!(
                "claim_ttl must be between 1ms and 1m, got {:?}",
                self.claim_ttl
            ));
        }
        if self.subject_failure_window < Duration::from_millis(1)
            || self.subject_failure_window > DAILY_WINDOW
        {
            return Err(format!(
                "subject_failure_window must be between 1ms and 24h, got {:?}",
                self.subject_failure_window
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config() -> OtpConfig {
        OtpConfig::new(StoreRef::new("otp")).with_secret(Secret::new(SECRET))
    }

    #[test]
    fn defaults_follow_the_documentation() {
        let c = config();
        assert_eq!(c.code_length, 6);
        assert_eq!(c.ttl, Duration::from_secs(300));
        assert_eq!(c.max_attempts, 5);
        assert_eq!(c.resend_cooldown, Duration::from_secs(30));
        assert_eq!(c.daily_cap, 20);
        assert_eq!(c.client_daily_cap, 5);
        assert_eq!(c.subject_failure_limit, 100);
        assert_eq!(c.client_failure_limit, 10);
        assert_eq!(c.subject_failure_window, Duration::from_secs(3600));
        assert_eq!(c.claim_ttl, Duration::from_secs(10));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn secrets_are_required_unless_dev_and_never_printed() {
        let none = OtpConfig::new(StoreRef::new("otp"));
        assert!(none.validate().unwrap_err().contains("secret is required"));
        let short = none.clone().with_secret(Secret::new("short"));
        assert!(short.validate().unwrap_err().contains("at least 32 bytes"));
        assert!(config().with_dev_secret(true).validate().is_ok());
        let short_with_dev = none
            .clone()
            .with_dev_secret(true)
            .with_secret(Secret::new("x"));
        assert!(
            short_with_dev.validate().is_err(),
            "a given secret is checked"
        );
        assert!(none.with_dev_secret(true).validate().is_ok());
        assert!(!format!("{:?}", config()).contains(SECRET));
    }

    #[test]
    fn bounds_are_enforced() {
        let cases = [
            (config().with_code_length(3), "code_length"),
            (config().with_code_length(11), "code_length"),
            (config().with_ttl(Duration::from_secs(601)), "ttl"),
            (config().with_ttl(Duration::ZERO), "ttl"),
            (config().with_max_attempts(0), "max_attempts"),
            (
                config().with_resend_cooldown(Duration::from_secs(3601)),
                "resend_cooldown",
            ),
            (config().with_daily_cap(0), "daily_cap"),
            (config().with_client_daily_cap(0), "client_daily_cap"),
            (
                config().with_client_failure_limit(0),
                "client_failure_limit",
            ),
            (config().with_claim_ttl(Duration::ZERO), "claim_ttl"),
            (
                config().with_claim_ttl(Duration::from_secs(61)),
                "claim_ttl",
            ),
            (
                config().with_subject_failure_limit(0),
                "subject_failure_limit",
            ),
            (
                config().with_subject_failure_window(Duration::ZERO),
                "subject_failure_window",
            ),
            (
                OtpConfig::defaults().with_secret(Secret::new(SECRET)),
                "store",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.contains(field), "{err}");
        }
        assert!(
            config()
                .with_code_length(10)
                .with_ttl(MAX_TTL)
                .with_resend_cooldown(Duration::ZERO)
                .validate()
                .is_ok()
        );
    }
}
