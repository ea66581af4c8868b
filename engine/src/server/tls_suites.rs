//! `--cipher-suites` as Go spells the suites, mapped onto rustls's, and the
//! verifier auto-TLS peers use.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::cipher_suite as ring_suites;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme, SupportedCipherSuite};

use crate::config::ConfigError;

/// The TLS 1.2 suite Go calls `name`, if rustls implements it. Go also
/// accepts the `CHACHA20_POLY1305` names without `_SHA256`.
fn tls12_suite(name: &str) -> Option<SupportedCipherSuite> {
    let suite = match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
            ring_suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
            ring_suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            ring_suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
            ring_suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
            ring_suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            ring_suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    };
    Some(suite)
}

/// Go's names of suites it knows but rustls deliberately lacks (CBC modes,
/// RSA key exchange, RC4, 3DES): named so the error can say why.
const GO_ONLY: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// The crypto provider with the suites `--cipher-suites` names. As in Go,
/// the list governs TLS 1.2 only; TLS 1.3's suites are always offered.
pub(super) fn provider(names: &str, min_version: &str) -> Result<CryptoProvider, ConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    let names: Vec<&str> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(provider);
    }
    let bad = |reason: String| ConfigError {
        flag: "cipher-suites",
        reason,
    };
    if min_version == "TLS1.3" {
        return Err(bad(
            "cipher suites cannot be configured when only TLS1.3 is supported".into(),
        ));
    }
    let mut chosen: Vec<SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .collect();
    for name in names {
        match tls12_suite(name) {
            Some(s) if !chosen.contains(&s) => chosen.push(s),
            Some(_) => {}
            None if GO_ONLY.contains(&name) => {
                return Err(bad(format!(
                    "cipher suite {name} is not supported (only ECDHE suites with \
                     AES-GCM or ChaCha20-Poly1305 are)"
                )))
            }
            None => return Err(bad(format!("unknown cipher suite {name}"))),
        }
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// Accepts any server certificate while still checking the handshake's
/// signatures: auto-TLS peers sign their own certificates, so there is
/// nothing to verify them against (etcd skips verification the same way).
#[derive(Debug)]
pub(super) struct NoVerify(pub(super) Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    fn go_names_map_to_suites_and_bad_names_are_refused() {
        let p = provider("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS1.2").unwrap();
        let tls12: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .collect();
        assert_eq!(tls12.len(), 1);
        assert_eq!(
            tls12[0].suite(),
            rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        );
        let e = provider("TLS_NOPE", "TLS1.2").unwrap_err().to_string();
        assert!(e.contains("--cipher-suites") && e.contains("unknown cipher suite TLS_NOPE"));
        let e = provider("TLS_RSA_WITH_AES_128_CBC_SHA", "TLS1.2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not supported"), "{e}");
        assert!(provider("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS1.3").is_err());
        assert_eq!(
            provider("", "TLS1.2").unwrap().cipher_suites.len(),
            rustls::crypto::ring::default_provider().cipher_suites.len()
        );
    }
}
