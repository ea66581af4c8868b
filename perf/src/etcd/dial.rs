//! Opening the HTTP/2 connection that unary calls go over: TCP (with
//! `TCP_NODELAY`, as gRPC clients set it), TLS when the run asks for it
//! (ALPN `h2`, the server verified against the given CA, the client
//! certificate presented when one is given), then the HTTP/2 handshake
//! (`http2::handshake`), which starts the connection's reader and writer
//! tasks; they end when every handle to the connection is dropped.

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use super::error_chain;
use super::http2::{self, Connection};
use crate::access::{Access, TlsFiles};
use crate::error::PerfError;
use crate::limits::DIAL_TIMEOUT_MS;

/// An open connection and where it goes, as the request headers name it.
pub(super) struct Dialed {
    pub conn: Connection,
    /// Whether the connection is TLS (`:scheme https`).
    pub https: bool,
    /// `host:port`, as `:authority`.
    pub authority: String,
}

/// Connects to `endpoint` (`host:port` or a URL) as `access` says.
pub(super) async fn dial(endpoint: &str, access: &Access) -> Result<Dialed, PerfError> {
    let connect_error = |reason: String| PerfError::Connect {
        endpoint: endpoint.to_string(),
        reason,
    };
    let uri: Uri = access
        .endpoint_url(endpoint)
        .parse()
        .map_err(|e: http::uri::InvalidUri| connect_error(e.to_string()))?;
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(connect_error("expected host:port".to_string()));
    };
    let Some(port) = authority.port_u16() else {
        return Err(connect_error("the endpoint names no port".to_string()));
    };
    // An IPv6 literal is bracketed in the authority, not in a socket address.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let tls = match &access.tls {
        None => None,
        Some(files) => {
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| connect_error(format!("server name {host}: {e}")))?;
            Some((tls_client_config(files)?, name))
        }
    };
    // The bound covers the whole set-up: a server that accepts the TCP
    // connection but never finishes the TLS handshake fails the run too.
    let conn = tokio::time::timeout(
        Duration::from_millis(DIAL_TIMEOUT_MS),
        open(host, port, tls),
    )
    .await
    .map_err(|_| connect_error(format!("no connection within {DIAL_TIMEOUT_MS} ms")))?
    .map_err(connect_error)?;
    Ok(Dialed {
        conn,
        https: scheme == &http::uri::Scheme::HTTPS,
        authority: authority.to_string(),
    })
}

/// TCP, then TLS when `tls` is given, then HTTP/2.
async fn open(
    host: &str,
    port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
) -> Result<Connection, String> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    // A unary call is one small write; Nagle would hold it back waiting for
    // the previous call's acknowledgement.
    tcp.set_nodelay(true)
        .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
    match tls {
        None => http2::handshake(tcp).await,
        Some((config, name)) => {
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {}", error_chain(&e)))?;
            http2::handshake(tls).await
        }
    }
    .map_err(|e| format!("HTTP/2 handshake: {e}"))
}

/// rustls settings from the files: trust only the given CA, present the
/// client certificate when one is given, and offer HTTP/2 by ALPN (gRPC
/// servers refuse TLS connections that did not negotiate it).
fn tls_client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, PerfError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| PerfError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })
    };
    let bad_file = |path: &std::path::Path, reason: String| {
        PerfError::Config(format!("{}: {reason}", path.display()))
    };
    let certificates = |path: &std::path::Path| -> Result<Vec<CertificateDer<'static>>, PerfError> {
        let pem = read(path)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_file(path, e.to_string()))?;
        if certs.is_empty() {
            return Err(bad_file(path, "no certificate in the file".to_string()));
        }
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(&files.ca)? {
        roots
            .add(cert)
            .map_err(|e| bad_file(&files.ca, e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PerfError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let mut config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
                .map_err(|e| bad_file(key, e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| bad_file(cert, e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
