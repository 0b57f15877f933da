//! [`TestCerts`]: throwaway certificates for TLS servers and clients, and
//! [`TlsClientAuth`], whether a TLS server asks for a client certificate.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use redis::{ClientTlsConfig, TlsCertificates};
use tempfile::TempDir;

const CA_FILE: &str = "ca.crt";
const CERT_FILE: &str = "node.crt";
const KEY_FILE: &str = "node.key";
const CLIENT_CERT_FILE: &str = "client.crt";
const CLIENT_KEY_FILE: &str = "client.key";
const OTHER_CA_FILE: &str = "other-ca.crt";
const OTHER_CLIENT_CERT_FILE: &str = "other-client.crt";
const OTHER_CLIENT_KEY_FILE: &str = "other-client.key";

/// Whether a TLS server requires clients to present a certificate signed
/// by its CA (`tls-auth-clients yes`) or only accepts one
/// (`tls-auth-clients optional`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsClientAuth {
    /// Mutual TLS: a client without a certificate is refused.
    Required,
    /// A client may connect without a certificate; one it presents must
    /// still be signed by the server's CA.
    Optional,
}

impl TlsClientAuth {
    /// The value of redis-server's `tls-auth-clients`.
    pub(crate) fn config_value(self) -> &'static str {
        match self {
            TlsClientAuth::Required => "yes",
            TlsClientAuth::Optional => "optional",
        }
    }
}

/// A fresh set of PEM certificates and keys in a temporary directory:
///
/// * a CA ([`ca_file`](Self::ca_file));
/// * a server certificate signed by it, for `127.0.0.1` and `localhost`,
///   with both the serverAuth and the clientAuth extended key usage,
///   because cluster nodes and replicas present it as a client
///   certificate too ([`cert_file`](Self::cert_file),
///   [`key_file`](Self::key_file));
/// * a client certificate signed by the CA
///   ([`client_cert_file`](Self::client_cert_file),
///   [`client_key_file`](Self::client_key_file));
/// * an unrelated CA and a client certificate signed by it, for "unknown
///   CA" tests ([`other_ca_file`](Self::other_ca_file),
///   [`other_client_cert_file`](Self::other_client_cert_file)).
///
/// Cloning is cheap and shares the directory, which is removed when the
/// last clone is dropped; fixtures keep a clone so that a restarted server
/// still finds its files.
///
/// ```no_run
/// use kv_module_tests::{TestCerts, TestRedis, TlsClientAuth};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let certs = TestCerts::generate();
/// let redis = TestRedis::start_tls(&certs, TlsClientAuth::Required).await;
/// let client = redis::Client::build_with_tls(redis.url(0), certs.tls_certificates())
///     .expect("TLS client");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TestCerts {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    other_ca_pem: String,
    other_client_cert_pem: String,
    other_client_key_pem: String,
    /// Declared last: removed after everything else is dropped.
    dir: TempDir,
}

impl TestCerts {
    /// Generates every certificate and key (ECDSA P-256) and writes them,
    /// PEM encoded, to a new temporary directory.
    ///
    /// # Panics
    ///
    /// When a certificate cannot be generated or written.
    pub fn generate() -> TestCerts {
        let dir = tempfile::Builder::new()
            .prefix("kv-module-certs-")
            .tempdir()
            .unwrap_or_else(|err| panic!("cannot create a temporary directory for certs: {err}"));

        let (ca_pem, ca) = certificate_authority("kv-module test CA");
        let node_key = key_pair();
        let mut node = leaf_params("kv-module test node", &["127.0.0.1", "localhost"]);
        node.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let node_pem = sign(&node, &node_key, &ca);
        let (client_cert_pem, client_key_pem) = client_certificate("kv-module test client", &ca);
        let (other_ca_pem, other_ca) = certificate_authority("kv-module unrelated CA");
        let (other_client_cert_pem, other_client_key_pem) =
            client_certificate("kv-module unrelated client", &other_ca);

        let files = [
            (CA_FILE, ca_pem.as_str()),
            (CERT_FILE, node_pem.as_str()),
            (KEY_FILE, &node_key.serialize_pem()),
            (CLIENT_CERT_FILE, client_cert_pem.as_str()),
            (CLIENT_KEY_FILE, client_key_pem.as_str()),
            (OTHER_CA_FILE, other_ca_pem.as_str()),
            (OTHER_CLIENT_CERT_FILE, other_client_cert_pem.as_str()),
            (OTHER_CLIENT_KEY_FILE, other_client_key_pem.as_str()),
        ];
        for (name, pem) in files {
            let path = dir.path().join(name);
            fs::write(&path, pem)
                .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
        }
        TestCerts {
            inner: Arc::new(Inner {
                ca_pem,
                client_cert_pem,
                client_key_pem,
                other_ca_pem,
                other_client_cert_pem,
                other_client_key_pem,
                dir,
            }),
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.inner.dir.path()
    }

    /// The CA certificate (`tls-ca-cert-file`, a client's root).
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join(CA_FILE)
    }

    /// The server (and cluster node) certificate (`tls-cert-file`).
    pub fn cert_file(&self) -> PathBuf {
        self.dir().join(CERT_FILE)
    }

    /// The server certificate's private key (`tls-key-file`).
    pub fn key_file(&self) -> PathBuf {
        self.dir().join(KEY_FILE)
    }

    /// A client certificate signed by the CA.
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir().join(CLIENT_CERT_FILE)
    }

    /// The client certificate's private key.
    pub fn client_key_file(&self) -> PathBuf {
        self.dir().join(CLIENT_KEY_FILE)
    }

    /// A CA that signed none of the server or client certificates above.
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir().join(OTHER_CA_FILE)
    }

    /// A client certificate signed by the unrelated CA.
    pub fn other_client_cert_file(&self) -> PathBuf {
        self.dir().join(OTHER_CLIENT_CERT_FILE)
    }

    /// The private key of [`other_client_cert_file`](Self::other_client_cert_file).
    pub fn other_client_key_file(&self) -> PathBuf {
        self.dir().join(OTHER_CLIENT_KEY_FILE)
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.inner.ca_pem
    }

    /// The unrelated CA certificate, PEM.
    pub fn other_ca_pem(&self) -> &str {
        &self.inner.other_ca_pem
    }

    /// redis-rs settings trusting the CA and presenting the client
    /// certificate: what a client of a server started with these certs
    /// needs.
    pub fn tls_certificates(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: Some(ClientTlsConfig {
                client_cert: self.inner.client_cert_pem.clone().into_bytes(),
                client_key: self.inner.client_key_pem.clone().into_bytes(),
            }),
            root_cert: Some(self.inner.ca_pem.clone().into_bytes()),
        }
    }

    /// redis-rs settings trusting the CA without presenting a client
    /// certificate.
    pub fn tls_certificates_without_client_cert(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: None,
            root_cert: Some(self.inner.ca_pem.clone().into_bytes()),
        }
    }

    /// redis-rs settings trusting the unrelated CA and presenting the
    /// client certificate it signed: refused on both sides.
    pub fn tls_certificates_of_other_ca(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: Some(ClientTlsConfig {
                client_cert: self.inner.other_client_cert_pem.clone().into_bytes(),
                client_key: self.inner.other_client_key_pem.clone().into_bytes(),
            }),
            root_cert: Some(self.inner.other_ca_pem.clone().into_bytes()),
        }
    }
}

/// Installs ring as rustls' process-wide crypto provider, which rustls
/// 0.23 wants before the first TLS connection. Idempotent: a provider
/// already installed (by this or anyone else) is kept.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn key_pair() -> KeyPair {
    KeyPair::generate().unwrap_or_else(|err| panic!("cannot generate a key pair: {err}"))
}

/// A self-signed CA named `name`: its PEM and the issuer that signs with it.
fn certificate_authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = key_pair();
    let pem = params
        .self_signed(&key)
        .unwrap_or_else(|err| panic!("cannot self-sign the CA `{name}`: {err}"))
        .pem();
    (pem, Issuer::new(params, key))
}

/// End-entity parameters with a distinct subject (a leaf whose subject
/// equals its issuer's would look self-signed to OpenSSL).
fn leaf_params(name: &str, subject_alt_names: &[&str]) -> CertificateParams {
    let names: Vec<String> = subject_alt_names.iter().map(|&n| n.to_owned()).collect();
    let mut params = CertificateParams::new(names)
        .unwrap_or_else(|err| panic!("invalid subject alt names {subject_alt_names:?}: {err}"));
    params.distinguished_name.push(DnType::CommonName, name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params
}

fn sign(params: &CertificateParams, key: &KeyPair, issuer: &Issuer<'_, KeyPair>) -> String {
    params
        .signed_by(key, issuer)
        .unwrap_or_else(|err| panic!("cannot sign a test certificate: {err}"))
        .pem()
}

/// A client certificate (clientAuth) named `name`: certificate and key PEM.
fn client_certificate(name: &str, issuer: &Issuer<'_, KeyPair>) -> (String, String) {
    let mut params = leaf_params(name, &[]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = key_pair();
    (sign(&params, &key, issuer), key.serialize_pem())
}
