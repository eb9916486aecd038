//! TLS for the webhook: rustls with the `ring` provider, certificates swapped without restart.
//!
//! `ring` rather than `aws-lc-rs`: it builds with a C compiler alone (aws-lc needs cmake and
//! NASM on some targets), it is what kube's default features use, and it offers everything the
//! API server negotiates (TLS 1.2 and 1.3, ECDSA and RSA). TLS 1.2 is the floor.
//!
//! The certificate lives behind an [`ArcSwap`]: a reload swaps the pointer, new handshakes see
//! the new certificate, and handshakes in flight keep the `Arc` they already hold.

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
    pub fn replace(&self, key: CertifiedKey) {
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
/// [`PeerIdentity`] tells the handler which case it is, so `/validate` can insist.
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

/// Whether the client of a connection presented a certificate that chains to `--client-ca`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    pub verified_client: bool,
}
