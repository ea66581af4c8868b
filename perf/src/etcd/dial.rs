//! Opening the HTTP/2 connection that unary calls go over: TCP (with
//! `TCP_NODELAY`, as gRPC clients set it), TLS when the run asks for it
//! (ALPN `h2`, the server verified against the given CA, the client
//! certificate presented when one is given), then the HTTP/2 handshake.
//! The connection's frame loop runs as one task for the connection's life;
//! it ends when every handle to the connection is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::Uri;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::error_chain;
use crate::access::{Access, TlsFiles};
use crate::error::PerfError;
use crate::limits::{CONNECTION_WINDOW_BYTES, DIAL_TIMEOUT_MS, STREAM_WINDOW_BYTES};

/// Where a connection goes, as the request headers name it.
pub(super) struct Dialed {
    pub send: h2::client::SendRequest<Bytes>,
    pub scheme: Scheme,
    pub authority: Authority,
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
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
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
    let send = tokio::time::timeout(
        Duration::from_millis(DIAL_TIMEOUT_MS),
        open(host, port, tls),
    )
    .await
    .map_err(|_| connect_error(format!("no connection within {DIAL_TIMEOUT_MS} ms")))?
    .map_err(connect_error)?;
    Ok(Dialed {
        send,
        scheme,
        authority,
    })
}

/// TCP, then TLS when `tls` is given, then HTTP/2.
async fn open(
    host: &str,
    port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
) -> Result<h2::client::SendRequest<Bytes>, String> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    // A unary call is one small write; Nagle would hold it back waiting for
    // the previous call's acknowledgement.
    tcp.set_nodelay(true)
        .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
    match tls {
        None => handshake(Unvectored(tcp)).await,
        Some((config, name)) => {
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {}", error_chain(&e)))?;
            handshake(Unvectored(tls)).await
        }
    }
    .map_err(|e| format!("HTTP/2 handshake: {}", error_chain(&e)))
}

/// The HTTP/2 handshake over `io`; spawns the connection's frame loop.
async fn handshake<T>(io: T) -> Result<h2::client::SendRequest<Bytes>, h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .handshake::<T, Bytes>(io)
        .await?;
    // The loop's own error (a reset connection, a GOAWAY) also fails every
    // call in flight, and those are counted by kind; there is nothing more
    // to do with it here.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(send)
}

/// A connection that says it has no vectored writes. h2 then copies DATA
/// frames of up to 1 KiB into its write buffer, so the requests queued on
/// a connection go out in one write; with vectored writes it sends every
/// DATA frame of more than 256 bytes (a put of a 256-byte value) in a
/// write of its own, a system call per request.
struct Unvectored<T>(T);

impl<T: AsyncRead + Unpin> AsyncRead for Unvectored<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Unvectored<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
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
