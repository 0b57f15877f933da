//! [`SecretMac`]: HMAC-SHA256 under the configured secret, which digests
//! codes and names subjects, slots and clients in keys without revealing
//! them.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::OtpConfig;
use crate::config::ConfigError;

/// The HMAC key a [`KvOneTimeCodes`](super::KvOneTimeCodes) derives from
/// its configuration's secret (public only as a field of its shaku
/// parameters; it cannot be built outside this crate). `Debug` shows no key.
#[derive(Clone)]
pub struct SecretMac {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for SecretMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretMac").finish_non_exhaustive()
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

impl SecretMac {
    /// The key of `config` (validated by the caller); errors name
    /// `component`. With `dev_secret` and no secret, the process's
    /// development secret, and a warning.
    pub(crate) fn new(component: &str, config: &OtpConfig) -> Result<Self, ConfigError> {
        // A given secret wins over `dev_secret`: instances sharing it must
        // agree on every digest.
        let key: Vec<u8> = if config.dev_secret && config.secret.is_empty() {
            tracing::warn!(
                component,
                "one-time codes use a random per-process development secret \
                 (`dev_secret: true`): codes do not survive a restart; never use this in production"
            );
            dev_secret()
                .map_err(|e| {
                    ConfigError::invalid_setting(
                        component,
                        format!("cannot draw a dev secret: {e}"),
                    )
                })?
                .to_vec()
        } else {
            config.secret.expose().as_bytes().to_vec()
        };
        let mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| ConfigError::invalid_setting(component, "unusable secret"))?;
        Ok(Self { mac })
    }

    /// HMAC-SHA256 of a label and parts, each length-prefixed (u64
    /// big-endian), so no two inputs share an encoding.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::registry::StoreRef;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config() -> OtpConfig {
        OtpConfig::new(StoreRef::new("otp")).with_secret(Secret::new(SECRET))
    }

    #[test]
    fn a_given_secret_wins_and_the_dev_secret_is_one_per_process() {
        let with_dev = SecretMac::new("otp", &config().with_dev_secret(true)).unwrap();
        let plain = SecretMac::new("otp", &config()).unwrap();
        assert_eq!(
            with_dev.code_digest("s", "p", "1"),
            plain.code_digest("s", "p", "1")
        );
        let dev = OtpConfig::new(StoreRef::new("otp")).with_dev_secret(true);
        let a = SecretMac::new("otp", &dev).unwrap();
        let b = SecretMac::new("otp", &dev).unwrap();
        assert_eq!(
            a.code_digest("s", "p", "1"),
            b.code_digest("s", "p", "1"),
            "one dev secret per process"
        );
        assert_ne!(
            a.code_digest("s", "p", "1"),
            plain.code_digest("s", "p", "1")
        );
        assert!(!format!("{plain:?}").contains(SECRET));
    }

    #[test]
    fn digests_separate_their_inputs() {
        let s = SecretMac::new("otp", &config()).unwrap();
        assert_ne!(s.code_digest("ab", "c", "1"), s.code_digest("a", "bc", "1"));
        assert_ne!(s.code_digest("a", "b", "1"), s.code_digest("a", "c", "1"));
        assert_eq!(s.code_digest("a", "b", "1").len(), 64);
        assert_ne!(s.slot_key("a", "b"), s.slot_key("a", "c"));
        assert_ne!(s.subject_key("a"), s.subject_key("b"));
        let other =
            SecretMac::new("otp", &config().with_secret(Secret::new(SECRET.repeat(2)))).unwrap();
        assert_ne!(
            s.code_digest("a", "b", "1"),
            other.code_digest("a", "b", "1")
        );
    }
}
