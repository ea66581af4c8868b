//! TLS to the server: `https://` endpoints, or any endpoint once
//! [`TlsOptions`] are given (as etcdctl's `--cacert`, `--cert`, `--key`
//! and `--insecure-skip-tls-verify` do).
//!
//! ```
//! use cairn_client::TlsOptions;
//! let tls = TlsOptions::new()
//!     .with_ca_file("ca.pem")
//!     .with_client_cert("client.pem", "client-key.pem");
//! assert!(!tls.insecure_skip_verify);
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// How to set up TLS to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA(s) that sign the servers' certificates.
    pub ca_file: Option<PathBuf>,
    /// PEM files of the certificate (and its key) to present to servers
    /// that demand one (`--client-cert-auth`).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate: encryption without authentication,
    /// for servers with self-signed (`--auto-tls`) certificates.
    pub insecure_skip_verify: bool,
}

impl TlsOptions {
    pub fn new() -> TlsOptions {
        TlsOptions::default()
    }
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(cert.into());
        self.key_file = Some(key.into());
        self
    }
    pub fn with_insecure_skip_verify(mut self, skip: bool) -> Self {
        self.insecure_skip_verify = skip;
        self
    }

    /// The rustls configuration, reading the files now so a bad path is
    /// reported before any dial.
    pub(crate) fn build(&self) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidArgument(format!("TLS: {e}")))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            let Some(ca) = &self.ca_file else {
                return Err(Error::InvalidArgument(
                    "TLS needs a CA file to verify the server (--cacert), or \
                     --insecure-skip-tls-verify"
                        .into(),
                ));
            };
            let mut roots = RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots.add(cert).map_err(|e| bad_file(ca, &e.to_string()))?;
            }
            builder.with_root_certificates(roots)
        };
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let key_der =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| bad_file(key, &e.to_string()))?;
                builder
                    .with_client_auth_cert(load_certs(cert)?, key_der)
                    .map_err(|e| Error::InvalidArgument(format!("TLS client certificate: {e}")))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(Error::InvalidArgument(
                    "a client certificate needs both --cert and --key".into(),
                ))
            }
        };
        Ok(Arc::new(config))
    }
}

fn bad_file(path: &Path, reason: &str) -> Error {
    Error::InvalidArgument(format!("cannot read {}: {reason}", path.display()))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad_file(path, &e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_file(path, &e.to_string()))?;
    if certs.is_empty() {
        return Err(bad_file(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The name to verify the server's certificate against: the endpoint's
/// host (a DNS name or an IP address).
pub(crate) fn server_name(address: &str) -> std::result::Result<ServerName<'static>, String> {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("server name {host:?}: {e}"))
}

/// Accepts any certificate but still checks the handshake's signatures
/// (`--insecure-skip-tls-verify`).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_endpoint_host() {
        assert!(matches!(
            server_name("127.0.0.1:2379"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[::1]:2379"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("db.example:2379"),
            Ok(ServerName::DnsName(_))
        ));
    }

    #[test]
    fn verification_needs_a_ca_unless_skipped() {
        let e = TlsOptions::new().build().unwrap_err().to_string();
        assert!(e.contains("--cacert"), "{e}");
        assert!(TlsOptions::new()
            .with_insecure_skip_verify(true)
            .build()
            .is_ok());
        let e = TlsOptions::new()
            .with_ca_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
