//! [`OtpConfig`]: the one-time-code service's configuration, and
//! [`OtpSettings`], the same once validated, with its HMAC key.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::{ConfigError, serde_duration};
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
#[serde(try_from = "RawOtpConfig")]
pub struct OtpConfig {
    store: StoreRef,
    secret: Secret,
    dev_secret: bool,
    code_length: u8,
    ttl: Duration,
    max_attempts: u32,
    resend_cooldown: Duration,
    daily_cap: u32,
    client_daily_cap: u32,
    subject_failure_limit: u32,
    client_failure_limit: u32,
    subject_failure_window: Duration,
    claim_ttl: Duration,
}

/// The YAML shape; converted (and validated) into [`OtpConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtpConfig {
    store: StoreRef,
    #[serde(default)]
    secret: Secret,
    #[serde(default)]
    dev_secret: bool,
    #[serde(default = "default_code_length")]
    code_length: u8,
    #[serde(default = "default_ttl", with = "serde_duration")]
    ttl: Duration,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "default_resend_cooldown", with = "serde_duration")]
    resend_cooldown: Duration,
    #[serde(default = "default_daily_cap")]
    daily_cap: u32,
    #[serde(default = "default_client_daily_cap")]
    client_daily_cap: u32,
    #[serde(default = "default_subject_failure_limit")]
    subject_failure_limit: u32,
    #[serde(default = "default_client_failure_limit")]
    client_failure_limit: u32,
    #[serde(default = "default_subject_failure_window", with = "serde_duration")]
    subject_failure_window: Duration,
    #[serde(default = "default_claim_ttl", with = "serde_duration")]
    claim_ttl: Duration,
}

fn default_code_length() -> u8 {
    DEFAULT_CODE_LENGTH
}
fn default_ttl() -> Duration {
    DEFAULT_TTL
}
fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}
fn default_resend_cooldown() -> Duration {
    DEFAULT_RESEND_COOLDOWN
}
fn default_daily_cap() -> u32 {
    DEFAULT_DAILY_CAP
}
fn default_subject_failure_limit() -> u32 {
    DEFAULT_SUBJECT_FAILURE_LIMIT
}
fn default_subject_failure_window() -> Duration {
    DEFAULT_SUBJECT_FAILURE_WINDOW
}
fn default_client_daily_cap() -> u32 {
    DEFAULT_CLIENT_DAILY_CAP
}
fn default_client_failure_limit() -> u32 {
    DEFAULT_CLIENT_FAILURE_LIMIT
}
fn default_claim_ttl() -> Duration {
    DEFAULT_CLAIM_TTL
}

impl TryFrom<RawOtpConfig> for OtpConfig {
    type Error = String;

    fn try_from(raw: RawOtpConfig) -> Result<Self, String> {
        let config = Self {
            store: raw.store,
            secret: raw.secret,
            dev_secret: raw.dev_secret,
            code_length: raw.code_length,
            ttl: raw.ttl,
            max_attempts: raw.max_attempts,
            resend_cooldown: raw.resend_cooldown,
            daily_cap: raw.daily_cap,
            client_daily_cap: raw.client_daily_cap,
            subject_failure_limit: raw.subject_failure_limit,
            client_failure_limit: raw.client_failure_limit,
            subject_failure_window: raw.subject_failure_window,
            claim_ttl: raw.claim_ttl,
        };
        config.validate()?;
        Ok(config)
    }
}

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

    /// Sets the HMAC secret (at least 32 bytes). Default: none, which is a
    /// start-up error unless [`with_dev_secret`](Self::with_dev_secret).
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secret = secret;
        self
    }

    /// Opts into a random per-process secret, for development, used only
    /// when no secret is given: codes and counters do not survive a
    /// restart, and a warning is logged. With a secret as well, the secret
    /// is used (so several development instances sharing it accept each
    /// other's codes). Default: `false`.
    pub fn with_dev_secret(mut self, dev_secret: bool) -> Self {
        self.dev_secret = dev_secret;
        self
    }

    /// Sets the number of digits (4–10). Default: 6.
    pub fn with_code_length(mut self, digits: u8) -> Self {
        self.code_length = digits;
        self
    }

    /// Sets a code's lifetime (at most 10 minutes). Default: 5 minutes.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets how many wrong guesses burn a code (1–20). Default: 5.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the time before another code may be issued for the same
    /// subject and purpose (0 disables it; at most 1 hour). Default: 30 s.
    pub fn with_resend_cooldown(mut self, cooldown: Duration) -> Self {
        self.resend_cooldown = cooldown;
        self
    }

    /// Sets how many codes a subject may be issued per 24 hours, whatever
    /// the client: the ceiling many clients together cannot pass.
    /// Default: 20.
    pub fn with_daily_cap(mut self, cap: u32) -> Self {
        self.daily_cap = cap;
        self
    }

    /// Sets how many codes one client may be issued for one subject per 24
    /// hours (see [`ClientId`](super::ClientId)). Default: 5.
    pub fn with_client_daily_cap(mut self, cap: u32) -> Self {
        self.client_daily_cap = cap;
        self
    }

    /// Sets how many failed verifications of a subject, across codes,
    /// purposes and clients, lock it for the rest of the window.
    /// Default: 100 (the NIST SP 800-63B bound).
    pub fn with_subject_failure_limit(mut self, limit: u32) -> Self {
        self.subject_failure_limit = limit;
        self
    }

    /// Sets how many failed verifications of a subject from one client
    /// lock that client (only) out of the subject for the rest of the
    /// window. Default: 10.
    pub fn with_client_failure_limit(mut self, limit: u32) -> Self {
        self.client_failure_limit = limit;
        self
    }

    /// Sets how long a right code stays claimed by the verifier running its
    /// hand-over (1 ms to 1 minute). A claim neither committed nor released
    /// (its holder died) expires after this, and the code verifies again.
    /// Default: 10 s.
    pub fn with_claim_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl;
        self
    }

    /// Sets the fixed window of the per-subject and per-client failure
    /// counts (from the first failure). Default: 1 hour.
    pub fn with_subject_failure_window(mut self, window: Duration) -> Self {
        self.subject_failure_window = window;
        self
    }

    /// The store the codes are kept in.
    pub fn store(&self) -> &StoreRef {
        &self.store
    }

    /// The number of digits of a code.
    pub fn code_length(&self) -> u8 {
        self.code_length
    }

    /// A code's lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Wrong guesses that burn a code.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Time between codes for one subject and purpose.
    pub fn resend_cooldown(&self) -> Duration {
        self.resend_cooldown
    }

    /// Codes per subject per 24 hours, all clients together.
    pub fn daily_cap(&self) -> u32 {
        self.daily_cap
    }

    /// Codes per subject and client per 24 hours.
    pub fn client_daily_cap(&self) -> u32 {
        self.client_daily_cap
    }

    /// Failures per subject per window before it is locked.
    pub fn subject_failure_limit(&self) -> u32 {
        self.subject_failure_limit
    }

    /// Failures per subject and client per window before that client is
    /// locked out of the subject.
    pub fn client_failure_limit(&self) -> u32 {
        self.client_failure_limit
    }

    /// How long a hand-over holds a right code.
    pub fn claim_ttl(&self) -> Duration {
        self.claim_ttl
    }

    /// The window of the per-subject failure count.
    pub fn subject_failure_window(&self) -> Duration {
        self.subject_failure_window
    }

    /// Whether a development secret is used.
    pub fn dev_secret(&self) -> bool {
        self.dev_secret
    }

    /// Checks the rules listed on the type; the message names the field
    /// (never the secret's value).
    pub fn validate(&self) -> Result<(), String> {
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

/// An [`OtpConfig`] that passed validation, with its HMAC key ready: what
/// an [`KvOneTimeCodes`](super::KvOneTimeCodes) runs with. `Debug` shows no key.
#[derive(Clone)]
pub struct OtpSettings {
    config: OtpConfig,
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for OtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpSettings")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The per-process development secret, drawn once.
static DEV_SECRET: OnceLock<[u8; 32]> = OnceLock::new();

fn dev_secret() -> Result<[u8; 32], getrandom::Error> {
    if let Some(secret) = DEV_SECRET.get() {
        return Ok(*secret);
    }
    let mut fresh = [0_u8; 32];
    getrandom::fill(&mut fresh)?;
    // Another thread may have won the race: everyone uses the winner's.
    Ok(*DEV_SECRET.get_or_init(|| fresh))
}

impl OtpSettings {
    /// Validates `config` and prepares its key; an error names `component`.
    /// With `dev_secret`, logs a warning.
    pub fn new(component: &str, config: OtpConfig) -> Result<Self, ConfigError> {
        config
            .validate()
            .map_err(|message| invalid_config(component, message))?;
        // A given secret wins over `dev_secret`: instances sharing it must
        // agree on every digest.
        let key: Vec<u8> = if config.dev_secret && config.secret.is_empty() {
            tracing::warn!(
                component,
                "one-time codes use a random per-process development secret \
                 (`dev_secret: true`): codes do not survive a restart; never use this in production"
            );
            dev_secret()
                .map_err(|e| invalid_config(component, format!("cannot draw a dev secret: {e}")))?
                .to_vec()
        } else {
            config.secret.expose().as_bytes().to_vec()
        };
        let mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| invalid_config(component, "unusable secret".into()))?;
        Ok(Self { config, mac })
    }

    /// The configuration (its `Debug` redacts the secret).
    pub fn config(&self) -> &OtpConfig {
        &self.config
    }

    /// HMAC-SHA256 under the secret of a label and parts, each
    /// length-prefixed (u64 big-endian), so no two inputs share an encoding.
    fn mac(&self, label: &str, parts: &[&str]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for part in std::iter::once(label).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// What is stored for a code: hex HMAC of (subject, purpose, code).
    pub(crate) fn code_digest(&self, subject: &str, purpose: &str, code: &str) -> String {
        self.mac("kv-module/otp-code", &[subject, purpose, code])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Names the code slot of (subject, purpose) in keys, without revealing
    /// either.
    pub(crate) fn slot_key(&self, subject: &str, purpose: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac("kv-module/otp-slot", &[subject, purpose]))
    }

    /// Names a subject in keys, without revealing it.
    pub(crate) fn subject_key(&self, subject: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac("kv-module/otp-subject", &[subject]))
    }

    /// Names a client in keys, without revealing it (an IP address is
    /// guessable from an unkeyed hash; from a keyed one it is not). 128
    /// bits are plenty to keep clients apart.
    pub(crate) fn client_key(&self, client: &str) -> String {
        let mac = self.mac("kv-module/otp-client", &[client]);
        URL_SAFE_NO_PAD.encode(&mac[..16])
    }
}

fn invalid_config(component: &str, message: String) -> ConfigError {
    ConfigError::InvalidSetting {
        component: component.to_owned(),
        path: component.to_owned(),
        message,
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
        assert_eq!(c.code_length(), 6);
        assert_eq!(c.ttl(), Duration::from_secs(300));
        assert_eq!(c.max_attempts(), 5);
        assert_eq!(c.resend_cooldown(), Duration::from_secs(30));
        assert_eq!(c.daily_cap(), 20);
        assert_eq!(c.client_daily_cap(), 5);
        assert_eq!(c.subject_failure_limit(), 100);
        assert_eq!(c.client_failure_limit(), 10);
        assert_eq!(c.subject_failure_window(), Duration::from_secs(3600));
        assert_eq!(c.claim_ttl(), Duration::from_secs(10));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn secrets_are_required_unless_dev_and_never_printed() {
        let none = OtpConfig::new(StoreRef::new("otp"));
        assert!(none.validate().unwrap_err().contains("secret is required"));
        let short = none.clone().with_secret(Secret::new("short"));
        assert!(short.validate().unwrap_err().contains("at least 32 bytes"));
        // A secret with `dev_secret` is accepted, and the secret is used.
        let both = config().with_dev_secret(true);
        assert!(both.validate().is_ok());
        let with_dev = OtpSettings::new("otp", both).unwrap();
        let plain = OtpSettings::new("otp", config()).unwrap();
        assert_eq!(
            with_dev.code_digest("s", "p", "1"),
            plain.code_digest("s", "p", "1")
        );
        let short_with_dev = none
            .clone()
            .with_dev_secret(true)
            .with_secret(Secret::new("x"));
        assert!(
            short_with_dev.validate().is_err(),
            "a given secret is checked"
        );
        let dev = none.with_dev_secret(true);
        assert!(dev.validate().is_ok());
        let a = OtpSettings::new("otp", dev.clone()).unwrap();
        let b = OtpSettings::new("otp", dev).unwrap();
        assert_eq!(
            a.code_digest("s", "p", "1"),
            b.code_digest("s", "p", "1"),
            "one dev secret per process"
        );
        let settings = OtpSettings::new("otp", config()).unwrap();
        assert!(!format!("{settings:?}").contains(SECRET));
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
        ];
        for (config, field) in cases {
            let err = OtpSettings::new("otp", config).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
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

    #[test]
    fn digests_separate_their_inputs() {
        let s = OtpSettings::new("otp", config()).unwrap();
        assert_ne!(s.code_digest("ab", "c", "1"), s.code_digest("a", "bc", "1"));
        assert_ne!(s.code_digest("a", "b", "1"), s.code_digest("a", "c", "1"));
        assert_eq!(s.code_digest("a", "b", "1").len(), 64);
        assert_ne!(s.slot_key("a", "b"), s.slot_key("a", "c"));
        assert_ne!(s.subject_key("a"), s.subject_key("b"));
        let other = OtpSettings::new(
            "otp",
            OtpConfig::new(StoreRef::new("otp")).with_secret(Secret::new(SECRET.repeat(2))),
        )
        .unwrap();
        assert_ne!(
            s.code_digest("a", "b", "1"),
            other.code_digest("a", "b", "1")
        );
    }
}
