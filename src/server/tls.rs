//! TLS for the webhook: rustls with the `ring` provider, certificates swapped without restart.
//!
//! `ring` rather than `aws-lc-rs`: it builds with a C compiler alone (aws-lc needs cmake and
//! NASM on some targets), it is what kube's default features use, and it offers everything the
//! API server negotiates (TLS 1.2 and 1.3, ECDSA and RSA). TLS 1.2 is the floor.
//!
//! The certificate lives behind an [`ArcSwap`]: a reload swaps the pointer, new handshakes see
//! the new certificate, and handshakes in flight keep the `Arc` they already hold.

use crate::files::{FileError, Snapshot, read_files};
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no certificate found in the PEM ({0})")]
    Certificate(String),
    #[error("no private key found in the PEM ({0})")]
    Key(String),
    #[error("the private key does not fit the certificate: {0}")]
    Mismatch(rustls::Error),
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
    #[error("cannot read the certificate's validity: {0}")]
    Unparseable(String),
    #[error("the certificate expired at {0} (notAfter)")]
    Expired(chrono::DateTime<chrono::Utc>),
    #[error("the certificate is not valid before {0} (notBefore)")]
    NotYetValid(chrono::DateTime<chrono::Utc>),
}

/// Why a PEM file (`--tls-cert`, `--tls-key`, `--client-ca`) could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}{}", .0, advice(.0))]
pub(crate) struct PemFileError(#[from] FileError);

/// What to do about a PEM file that cannot be read (an unreadable one: the OS error says).
fn advice(error: &FileError) -> &'static str {
    match error {
        FileError::Io { .. } | FileError::Changing { .. } => "",
        FileError::TooLarge { .. } | FileError::NotAFile { .. } => {
            ": give the PEM file itself (a certificate or key is a few KiB), such as a mounted \
             Secret's tls.crt, tls.key or ca.crt"
        }
    }
}

/// Reads PEM files: the serving certificate and key, or the client CA.
pub(crate) fn read_pem_files(files: &[std::path::PathBuf]) -> Result<Snapshot, PemFileError> {
    Ok(read_files(files)?)
}

/// How far a certificate's notBefore may be ahead of our clock: an issuer whose clock runs a
/// little ahead of this node's must not have its fresh certificate refused.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// When the serving certificate (the chain's first) stops being valid, or why it cannot be
/// served at `now`: expired, or not valid yet. Serving such a certificate fails every
/// handshake, so a reload refuses it and keeps the one in use.
pub(crate) fn check_validity(
    key: &CertifiedKey,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, TlsError> {
    let der = key.end_entity_cert().map_err(TlsError::Config)?;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::Unparseable(e.to_string()))?;
    let instant = |t: x509_parser::time::ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0)
            .ok_or_else(|| TlsError::Unparseable(format!("time {t} out of range")))
    };
    let validity = cert.validity();
    let (not_before, not_after) = (instant(validity.not_before)?, instant(validity.not_after)?);
    if now >= not_after {
        return Err(TlsError::Expired(not_after));
    }
    if now + CLOCK_SKEW < not_before {
        return Err(TlsError::NotYetValid(not_before));
    }
    Ok(not_after)
}

/// The subject of a client certificate (`CN=kube-apiserver,O=...`), for the audit log.
pub(crate) fn subject(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert.subject().to_string(),
        // rustls verified it, so it parses; should it not, the log still says it was verified.
        Err(_) => "verified certificate with an unreadable subject".to_owned(),
    }
}

/// The crypto provider every TLS object here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain and key into something rustls can serve.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate("empty".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Mismatch)
}

/// Serves whatever certificate is current.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl CertResolver {
    pub fn new(key: CertifiedKey) -> Self {
        CertResolver {
            current: ArcSwap::from_pointee(key),
        }
    }

    /// Replaces the certificate for every handshake from now on.
    pub(crate) fn replace(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The server's TLS configuration: TLS 1.2+, HTTP/2 and HTTP/1.1 by ALPN.
///
/// With `client_ca`, clients may present a certificate, which must then chain to that CA; a
/// client without one still completes the handshake (the kubelet's probes present none) and
/// `PeerIdentity` tells the handler which case it is, so `/validate` can insist.
pub fn server_config(
    resolver: Arc<CertResolver>,
    client_ca: Option<&[u8]>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| TlsError::Certificate(e.to_string()))?;
                roots.add(cert).map_err(TlsError::Config)?;
            }
            if roots.is_empty() {
                return Err(TlsError::Certificate(
                    "no CA certificate in --client-ca".into(),
                ));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Who is on the other end of a connection: whether it presented a certificate that chains to
/// `--client-ca` (and its subject), and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerIdentity {
    /// The verified client certificate's subject; `None` for a client without one.
    pub(crate) subject: Option<Arc<str>>,
    pub(crate) address: std::net::SocketAddr,
}

impl PeerIdentity {
    pub(crate) fn verified(&self) -> bool {
        self.subject.is_some()
    }

    /// As the audit log records it: the subject, or `unverified <address>`.
    pub(crate) fn caller(&self) -> String {
        match &self.subject {
            Some(subject) => subject.to_string(),
            None => format!("unverified {}", self.address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn key_valid(from: &str, to: &str) -> CertifiedKey {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let instant = |t: &str| {
            let t = DateTime::parse_from_rfc3339(t).unwrap().timestamp();
            rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(t as u64)
        };
        params.not_before = instant(from);
        params.not_after = instant(to);
        let signer = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&signer).unwrap();
        certified_key(cert.pem().as_bytes(), signer.serialize_pem().as_bytes()).unwrap()
    }

    fn utc(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    #[test]
    fn a_pem_file_that_cannot_be_read_names_it_and_says_what_to_give() {
        let dir = std::env::temp_dir().join(format!("fluxgate-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A folder where the certificate should be: the mount path instead of the file in it.
        let error = read_pem_files(std::slice::from_ref(&dir)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is not a regular file (a FIFO, socket or device): give the PEM file itself \
                 (a certificate or key is a few KiB), such as a mounted Secret's tls.crt, \
                 tls.key or ca.crt",
                dir.display()
            )
        );
        let missing = dir.join("tls.crt");
        let error = read_pem_files(std::slice::from_ref(&missing)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_expired_or_future_certificate_is_refused() {
        let key = key_valid("2026-01-01T00:00:00Z", "2026-12-01T00:00:00Z");
        assert_eq!(
            check_validity(&key, utc("2026-06-01T00:00:00Z")).unwrap(),
            utc("2026-12-01T00:00:00Z")
        );
        assert!(matches!(
            check_validity(&key, utc("2026-12-01T00:00:00Z")),
            Err(TlsError::Expired(_))
        ));
        assert!(matches!(
            check_validity(&key, utc("2025-12-31T00:00:00Z")),
            Err(TlsError::NotYetValid(_))
        ));
        // A notBefore a minute ahead of our clock is an issuer's clock, not a bad certificate.
        assert!(check_validity(&key, utc("2025-12-31T23:59:00Z")).is_ok());
    }
}
