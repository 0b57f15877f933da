//! [`KvOneTimeCodes`]: the [`OneTimeCodes`] component over a [`KvStore`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
#[cfg(feature = "shaku")]
use shaku::Component;

use super::claim::{Claim, ClaimOutcome};
use super::client_id::ClientId;
use super::code::OtpCode;
use super::config::{DAILY_WINDOW, OtpConfig};
use super::one_time_codes::OneTimeCodes;
use super::outcome::{IssueOutcome, IssuedCode, RefusalReason, RetryAfter, VerifyOutcome};
use super::scripts::{self, status};
use super::secret_mac::SecretMac;
use crate::config::{ConfigError, millis};
use crate::error::{KvError, Result};
#[cfg(feature = "yaml")]
use crate::registry::{RegistryError, ServiceRegistry};
use crate::store::{KvStore, Script, ScriptArgs, ScriptValue, SlotTag};

/// One-time codes in a [`KvStore`]: the [`OneTimeCodes`] component.
///
/// Codes are stored only as an HMAC-SHA256 under the configured secret;
/// issuing and verifying are one atomic script each, so a code verifies at
/// most once however many requests race, and guesses are counted per code
/// and per subject. See the [module documentation](super) for wiring.
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{MemoryStore, Secret};
/// use kv_module::otp::{IssueOutcome, OneTimeCodes, OtpConfig, KvOneTimeCodes, VerifyOutcome};
/// use kv_module::registry::StoreRef;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = OtpConfig::new(StoreRef::new("otp_cache"))
///     .with_secret(Secret::new("an example secret of at least 32 bytes"));
/// let otp = KvOneTimeCodes::new(Arc::new(MemoryStore::new("otp_cache", "app")), config)?;
///
/// let IssueOutcome::Issued(issued) = otp.issue("ada@example.com", "login").await? else {
///     panic!("a first code is never refused");
/// };
/// // ... send issued.code.expose() to the user ...
/// let wrong = otp.verify("ada@example.com", "login", "not the code").await?;
/// assert_eq!(wrong, VerifyOutcome::Invalid { attempts_left: 4 });
/// let right = otp.verify("ada@example.com", "login", issued.code.expose()).await?;
/// assert_eq!(right, VerifyOutcome::Verified);
/// let again = otp.verify("ada@example.com", "login", issued.code.expose()).await?;
/// assert_eq!(again, VerifyOutcome::ExpiredOrUnknown, "single use");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[cfg_attr(feature = "shaku", derive(Component))]
#[cfg_attr(feature = "shaku", shaku(interface = OneTimeCodes))]
pub struct KvOneTimeCodes {
    /// The store the codes and counters are kept in.
    store: Arc<dyn KvStore>,
    /// The validated configuration.
    config: OtpConfig,
    /// The HMAC key derived from its secret.
    mac: SecretMac,
}

impl std::fmt::Debug for KvOneTimeCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvOneTimeCodes")
            .field("store", &self.store.name())
            .field("config", &self.config)
            .finish()
    }
}

/// The keys of one (subject, purpose, client).
struct OtpKeys {
    code: String,
    cooldown: String,
    daily: String,
    failures: String,
    client_daily: String,
    client_failures: String,
}

fn duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl KvOneTimeCodes {
    /// A service keeping its codes in `store` (`config.store` is not
    /// consulted: it is for [`from_registry`](Self::from_registry)). Logs a
    /// warning when the configuration opts into a development secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] when `config` breaks a rule of
    /// [`OtpConfig`] (a missing secret among them).
    pub fn new(store: Arc<dyn KvStore>, config: OtpConfig) -> Result<Self, ConfigError> {
        Self::checked(store, "otp", config)
    }

    /// A service for the component `component` (its configuration section
    /// name), on the store `config.store` names in `registry`.
    ///
    /// # Errors
    ///
    /// An unknown store or one that is not a key-value store, or an invalid
    /// configuration — each naming `component`.
    #[cfg(feature = "yaml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
    pub fn from_registry(
        registry: &ServiceRegistry,
        component: &str,
        config: OtpConfig,
    ) -> Result<Self, RegistryError> {
        let store = registry.store_for(component, &config.store)?;
        Ok(Self::checked(store, component, config)?)
    }

    /// The shaku parameters that build this service inside a module:
    /// `.with_component_parameters::<KvOneTimeCodes>(service.into_parameters())`.
    #[cfg(feature = "shaku")]
    #[cfg_attr(docsrs, doc(cfg(feature = "shaku")))]
    pub fn into_parameters(self) -> KvOneTimeCodesParameters {
        KvOneTimeCodesParameters {
            store: self.store,
            config: self.config,
            mac: self.mac,
        }
    }

    fn checked(
        store: Arc<dyn KvStore>,
        component: &str,
        config: OtpConfig,
    ) -> Result<Self, ConfigError> {
        config
            .validate()
            .map_err(|message| ConfigError::invalid_setting(component, message))?;
        let mac = SecretMac::new(component, &config)?;
        Ok(Self { store, config, mac })
    }

    /// The store the codes are kept in.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    fn check(&self, subject: &str, purpose: &str) -> Result<()> {
        if subject.is_empty() || purpose.is_empty() {
            return Err(KvError::InvalidArgument {
                store: Arc::from(self.store.name()),
                key: None,
                reason: "a one-time code needs a non-empty subject and purpose".into(),
            });
        }
        Ok(())
    }

    fn bad_status(&self, status: i64) -> KvError {
        KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "one-time code script",
            key: None,
            source: format!("unexpected script status {status}").into(),
        }
    }

    /// The keys of (subject, purpose, client), all under the subject's
    /// hash tag (see the [key layout](super::scripts)).
    fn keys(&self, subject: &str, purpose: &str, client: &ClientId) -> OtpKeys {
        let slot = self.mac.slot_key(subject, purpose);
        let subject_key = self.mac.subject_key(subject);
        let client_key = self.mac.client_key(client.expose());
        let tag = SlotTag::digest_prefix(&subject_key);
        OtpKeys {
            code: tag.key("otp:", &format!(":code:{slot}")),
            cooldown: tag.key("otp:", &format!(":cooldown:{slot}")),
            daily: tag.key("otp:", &format!(":daily:{subject_key}")),
            failures: tag.key("otp:", &format!(":failures:{subject_key}")),
            client_daily: tag.key("otp:", &format!(":client-daily:{subject_key}:{client_key}")),
            client_failures: tag.key(
                "otp:",
                &format!(":client-failures:{subject_key}:{client_key}"),
            ),
        }
    }

    fn random_error(&self, op: &'static str, e: getrandom::Error) -> KvError {
        KvError::Backend {
            store: Arc::from(self.store.name()),
            op,
            key: None,
            source: e.to_string().into(),
        }
    }

    /// Counts a code event through the [`metrics`] facade:
    /// `kv_otp_codes_total{store, event}`, `event` one of `issued`,
    /// `refused` (cooldown, caps, lock), `verified` (consumed or claimed),
    /// `failed` (a wrong code with attempts left), `burned` (the wrong
    /// code that used the last attempt), `expired_or_unknown`, `locked`,
    /// `in_progress`.
    fn count(&self, event: &'static str) {
        metrics::counter!("kv_otp_codes_total", "store" => self.store.name().to_owned(), "event" => event)
            .increment(1);
    }

    /// The verify script, consuming (`token` empty) or claiming.
    async fn check_code(
        &self,
        subject: &str,
        purpose: &str,
        code: &str,
        client: &ClientId,
        token: &str,
    ) -> Result<(VerifyOutcome, String, String)> {
        self.check(subject, purpose)?;
        let config = &self.config;
        let keys = self.keys(subject, purpose, client);
        let digest = self.mac.code_digest(subject, purpose, code);
        let script_keys = [keys.code.as_str(), &keys.failures, &keys.client_failures];
        let args = ScriptArgs::new()
            .str(&digest)
            .uint(u64::from(config.max_attempts))
            .uint(u64::from(config.subject_failure_limit))
            .uint(u64::from(config.client_failure_limit))
            .uint(millis(config.subject_failure_window))
            .str(token)
            .uint(millis(config.claim_ttl));
        let (status, n) = self.run(&scripts::VERIFY, &script_keys, &args).await?;
        let outcome = match status {
            status::OK => VerifyOutcome::Verified,
            status::RETRY_OR_INVALID => VerifyOutcome::Invalid {
                attempts_left: u32::try_from(n).unwrap_or(0),
            },
            status::CAP_OR_UNKNOWN => VerifyOutcome::ExpiredOrUnknown,
            status::LOCKED => VerifyOutcome::Locked {
                retry_after: duration(n),
            },
            status::IN_PROGRESS => VerifyOutcome::InProgress,
            other => return Err(self.bad_status(other)),
        };
        tracing::debug!(?outcome, "one-time code checked");
        self.count(match outcome {
            VerifyOutcome::Verified => "verified",
            VerifyOutcome::Invalid { attempts_left: 0 } => "burned",
            VerifyOutcome::Invalid { .. } => "failed",
            VerifyOutcome::ExpiredOrUnknown => "expired_or_unknown",
            VerifyOutcome::Locked { .. } => "locked",
            VerifyOutcome::InProgress => "in_progress",
        });
        Ok((outcome, keys.code, digest))
    }

    /// Runs a script whose reply is `{status, n}`.
    async fn run(&self, script: &Script, keys: &[&str], args: &[Vec<u8>]) -> Result<(i64, i64)> {
        let reply = self.store.run_script(script, keys, args).await?;
        match reply.as_array() {
            Some([ScriptValue::Int(status), ScriptValue::Int(n)]) => Ok((*status, *n)),
            _ => Err(KvError::Backend {
                store: Arc::from(self.store.name()),
                op: "one-time code script",
                key: keys.first().map(|k| (*k).to_owned()),
                source: format!("unexpected script reply {reply:?}").into(),
            }),
        }
    }
}

/// 16 random bytes as hex: a claim's token.
fn claim_token() -> std::result::Result<String, getrandom::Error> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[async_trait]
impl OneTimeCodes for KvOneTimeCodes {
    fn config(&self) -> &OtpConfig {
        &self.config
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name(), %purpose), err)]
    async fn issue_from(
        &self,
        subject: &str,
        purpose: &str,
        client: &ClientId,
    ) -> Result<IssueOutcome> {
        self.check(subject, purpose)?;
        let config = &self.config;
        let code = OtpCode::generate(usize::from(config.code_length))
            .map_err(|e| self.random_error("generate one-time code", e))?;
        let keys = self.keys(subject, purpose, client);
        let keys = [
            keys.code.as_str(),
            &keys.cooldown,
            &keys.daily,
            &keys.failures,
            &keys.client_daily,
            &keys.client_failures,
        ];
        let args = ScriptArgs::new()
            .str(&self.mac.code_digest(subject, purpose, code.expose()))
            .uint(millis(config.ttl))
            .uint(millis(config.resend_cooldown))
            .uint(u64::from(config.daily_cap))
            .uint(millis(DAILY_WINDOW))
            .uint(u64::from(config.subject_failure_limit))
            .uint(millis(config.subject_failure_window))
            .uint(u64::from(config.client_daily_cap))
            .uint(u64::from(config.client_failure_limit));
        let (status, n) = self.run(&scripts::ISSUE, &keys, &args).await?;
        let refused = |reason| {
            tracing::debug!(?reason, "one-time code refused");
            self.count("refused");
            Ok(IssueOutcome::Refused(RetryAfter {
                reason,
                retry_after: duration(n),
            }))
        };
        match status {
            status::OK => {
                tracing::debug!("one-time code issued");
                self.count("issued");
                Ok(IssueOutcome::Issued(IssuedCode {
                    code,
                    lifetime: duration(n),
                }))
            }
            status::RETRY_OR_INVALID => refused(RefusalReason::Cooldown),
            status::CAP_OR_UNKNOWN => refused(RefusalReason::DailyCap),
            status::CLIENT_CAP => refused(RefusalReason::ClientDailyCap),
            status::LOCKED => refused(RefusalReason::Locked),
            other => Err(self.bad_status(other)),
        }
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name(), %purpose), err)]
    async fn verify_from(
        &self,
        subject: &str,
        purpose: &str,
        code: &str,
        client: &ClientId,
    ) -> Result<VerifyOutcome> {
        let (outcome, _, _) = self.check_code(subject, purpose, code, client, "").await?;
        Ok(outcome)
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name(), %purpose), err)]
    async fn claim(
        &self,
        subject: &str,
        purpose: &str,
        code: &str,
        client: &ClientId,
    ) -> Result<ClaimOutcome> {
        let token = claim_token().map_err(|e| self.random_error("draw a claim token", e))?;
        let (outcome, code_key, digest) = self
            .check_code(subject, purpose, code, client, &token)
            .await?;
        Ok(match outcome {
            VerifyOutcome::Verified => ClaimOutcome::Claimed(Claim {
                code_key,
                digest,
                token,
            }),
            other => ClaimOutcome::Rejected(other),
        })
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn commit(&self, claim: &Claim) -> Result<bool> {
        let args = ScriptArgs::new().str(&claim.digest).str(&claim.token);
        let (status, _) = self
            .run(&scripts::COMMIT, &[claim.code_key.as_str()], &args)
            .await?;
        match status {
            status::OK => Ok(true),
            status::CAP_OR_UNKNOWN => {
                tracing::warn!("a one-time code claim lapsed and the code was taken meanwhile");
                Ok(false)
            }
            other => Err(self.bad_status(other)),
        }
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn release(&self, claim: &Claim) -> Result<bool> {
        let args = ScriptArgs::new().str(&claim.token);
        let (status, _) = self
            .run(&scripts::RELEASE, &[claim.code_key.as_str()], &args)
            .await?;
        match status {
            status::OK => Ok(true),
            status::CAP_OR_UNKNOWN => Ok(false),
            other => Err(self.bad_status(other)),
        }
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name(), %purpose), err)]
    async fn withdraw(
        &self,
        subject: &str,
        purpose: &str,
        client: &ClientId,
        code: &OtpCode,
    ) -> Result<bool> {
        self.check(subject, purpose)?;
        let keys = self.keys(subject, purpose, client);
        let keys = [
            keys.code.as_str(),
            &keys.cooldown,
            &keys.daily,
            &keys.client_daily,
        ];
        let args = ScriptArgs::new().str(&self.mac.code_digest(subject, purpose, code.expose()));
        let (status, _) = self.run(&scripts::WITHDRAW, &keys, &args).await?;
        match status {
            status::OK => {
                tracing::debug!("one-time code withdrawn");
                Ok(true)
            }
            status::CAP_OR_UNKNOWN => Ok(false),
            other => Err(self.bad_status(other)),
        }
    }
}
