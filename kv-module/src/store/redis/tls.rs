//! [`TlsConfig`]: TLS towards Redis (rustls), and the loading of its
//! certificate files.
//!
//! Files are read and parsed when the configuration is checked, before any
//! connection: an unreadable file, a file without a PEM certificate, or a
//! client certificate without its key is a start-up error naming the field
//! and the path, not a handshake failure later.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// TLS settings of a Redis store (the `tls:` section of its `config`).
///
/// Every field is optional: `tls: {}` turns TLS on and trusts the webpki
/// root certificates. `ca_file` replaces those roots with the given CA
/// (for a private CA); `cert_file` and `key_file`, given together, present
/// a client certificate (mutual TLS, `tls-auth-clients yes`).
///
/// ```
/// use kv_module::store::redis::TlsConfig;
///
/// let tls = TlsConfig::new()
///     .with_ca_file("/etc/redis/ca.pem")
///     .with_client_cert("/etc/redis/client.pem", "/etc/redis/client.key");
/// assert!(tls.cert_file.is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA certificate(s) to trust. Default: the webpki
    /// root certificates.
    #[serde(deserialize_with = "deserialize_path")]
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate chain (mutual TLS). Default:
    /// none.
    #[serde(deserialize_with = "deserialize_path")]
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key. Default: none.
    #[serde(deserialize_with = "deserialize_path")]
    pub key_file: Option<PathBuf>,
}

/// A path that may be written empty or left to an unset `${VAR}`: absent.
fn deserialize_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|path| !path.trim().is_empty())
        .map(PathBuf::from))
}

impl TlsConfig {
    /// TLS with the default roots and no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificate(s) in `path` instead of the default roots.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents the client certificate in `cert` with its key in `key`.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(cert.into());
        self.key_file = Some(key.into());
        self
    }

    /// Reads and checks the files into the certificates redis-rs takes.
    #[cfg(feature = "tls")]
    pub(crate) fn load(&self) -> Result<redis::TlsCertificates, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let certificates = |field: &str, path: &std::path::Path| -> Result<Vec<u8>, String> {
            let pem = read(field, path)?;
            let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
            match parsed {
                Ok(certs) if !certs.is_empty() => Ok(pem),
                Ok(_) => Err(format!(
                    "tls.{field} `{}` holds no PEM certificate",
                    path.display()
                )),
                // The parser's message quotes raw bytes; the path and the
                // field are what the user needs.
                Err(_) => Err(format!(
                    "tls.{field} `{}` is not a valid PEM file",
                    path.display()
                )),
            }
        };
        let root_cert = match &self.ca_file {
            Some(path) => Some(certificates("ca_file", path)?),
            None => None,
        };
        let client_tls = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "tls.cert_file and tls.key_file go together: give both or neither".into(),
                );
            }
            (Some(cert), Some(key)) => {
                let client_cert = certificates("cert_file", cert)?;
                let client_key = read("key_file", key)?;
                PrivateKeyDer::from_pem_slice(&client_key).map_err(|_| {
                    format!(
                        "tls.key_file `{}` holds no valid PEM private key",
                        key.display()
                    )
                })?;
                Some(redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            }
        };
        Ok(redis::TlsCertificates {
            client_tls,
            root_cert,
        })
    }
}

#[cfg(feature = "tls")]
fn read(field: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("tls.{field} `{}`: cannot read: {e}", path.display()))
}

/// Installs rustls's `ring` crypto provider as the process default, once,
/// unless the application installed one already (then that one is used).
/// rustls 0.23 needs a process-wide provider before the first handshake;
/// doing it here spares every application the call.
#[cfg(feature = "tls")]
pub(crate) fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another installer is fine: a provider is
            // installed either way.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn missing_and_invalid_files_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");

        let err = TlsConfig::new()
            .with_ca_file(dir.path().join("missing.pem"))
            .load()
            .unwrap_err();
        assert!(
            err.contains("tls.ca_file") && err.contains("cannot read"),
            "{err}"
        );

        let err = TlsConfig::new().with_ca_file(&junk).load().unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");

        let half = TlsConfig {
            cert_file: Some(junk.clone()),
            ..TlsConfig::new()
        };
        assert!(half.load().unwrap_err().contains("go together"));

        assert!(TlsConfig::new().load().is_ok(), "defaults need no file");
    }
}
