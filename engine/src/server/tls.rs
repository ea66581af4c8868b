//! TLS on the client and peer ports, configured with etcd's flags.
//!
//! A listener speaks TLS when its URL is `https://`, as in etcd. The client
//! port takes `--cert-file`/`--key-file` (or `--auto-tls`), and with
//! `--client-cert-auth` demands a client certificate signed by
//! `--trusted-ca-file`, refusing those that `--client-crl-file` revokes.
//! The peer port takes the `--peer-*` twins; when it
//! speaks TLS this member also dials its peers with TLS, presenting the same
//! certificate, and `--peer-cert-allowed-cn` limits which peers may connect
//! by their certificate's common name.
//!
//! The configuration is built once at start-up ([`install`]) and read by
//! the accept and dial paths ([`accept_client`], [`accept_peer`],
//! [`dial_peer`]), which hand back a [`MaybeTls`] stream: the plain socket
//! or the TLS session over it, so the code after the handshake is the same
//! for both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::{TlsAcceptor, TlsConnector};
use glommio::net::TcpStream;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::{Config, ConfigError};
use crate::limits;

#[path = "tls_suites.rs"]
mod suites;

/// The TLS flags of `cairn`, with etcd's names and meanings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsFlags {
    /// Path to the client server TLS cert file.
    #[arg(long, env = "CAIRN_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Path to the client server TLS key file.
    #[arg(long, env = "CAIRN_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Path to the client server TLS trusted CA cert file.
    #[arg(long, env = "CAIRN_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Enable client cert authentication.
    #[arg(long, default_value_t = false, env = "CAIRN_CLIENT_CERT_AUTH")]
    pub client_cert_auth: bool,
    /// Path to the client certificate revocation list file.
    #[arg(long, env = "CAIRN_CLIENT_CRL_FILE")]
    pub client_crl_file: Option<PathBuf>,
    /// Client TLS using generated certificates.
    #[arg(long, default_value_t = false, env = "CAIRN_AUTO_TLS")]
    pub auto_tls: bool,
    /// Path to the peer server TLS cert file.
    #[arg(long, env = "CAIRN_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,
    /// Path to the peer server TLS key file.
    #[arg(long, env = "CAIRN_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,
    /// Path to the peer server TLS trusted CA file.
    #[arg(long, env = "CAIRN_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Enable peer client cert authentication.
    #[arg(long, default_value_t = false, env = "CAIRN_PEER_CLIENT_CERT_AUTH")]
    pub peer_client_cert_auth: bool,
    /// Path to the peer certificate revocation list file.
    #[arg(long, env = "CAIRN_PEER_CRL_FILE")]
    pub peer_crl_file: Option<PathBuf>,
    /// Allowed CN for inter-peer authentication (comma-separated).
    #[arg(long, env = "CAIRN_PEER_CERT_ALLOWED_CN")]
    pub peer_cert_allowed_cn: Option<String>,
    /// Peer TLS using self-generated certificates.
    #[arg(long, default_value_t = false, env = "CAIRN_PEER_AUTO_TLS")]
    pub peer_auto_tls: bool,
    /// Minimum TLS version: TLS1.2 or TLS1.3.
    #[arg(long, default_value = "TLS1.2", env = "CAIRN_TLS_MIN_VERSION")]
    pub tls_min_version: String,
    /// Comma-separated list of supported TLS cipher suites between client
    /// and server, as Go names them (empty: the library's defaults).
    #[arg(long, default_value = "", env = "CAIRN_CIPHER_SUITES")]
    pub cipher_suites: String,
}

/// A TLS set-up that failed at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Flag(#[from] ConfigError),
    #[error("cannot {op} {path}: {source}")]
    File {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS configuration ({what}): {reason}")]
    Setup { what: &'static str, reason: String },
}

/// Which side of the member a TLS set-up is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Peer,
}

/// The listeners' and dialers' TLS, fixed at start-up.
struct Installed {
    /// Client listen addresses given as `https://`.
    client_tls_addrs: Vec<SocketAddr>,
    client: Option<TlsAcceptor>,
    peer: Option<PeerTls>,
}

struct PeerTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// `--peer-cert-allowed-cn`; empty = any peer the CA vouches for.
    allowed_cn: Vec<String>,
}

/// Set by [`install`] before any executor starts; replaced, not mutated,
/// so a process that runs the server twice (tests) gets the second set-up.
static INSTALLED: RwLock<Option<Arc<Installed>>> = RwLock::new(None);

fn installed() -> Option<Arc<Installed>> {
    INSTALLED.read().ok().and_then(|g| g.clone())
}

/// Check the TLS flags that need no file access (run by
/// `Config::validate`), so a typo is reported before anything starts.
pub fn check_flags(config: &Config) -> Result<(), ConfigError> {
    let f = &config.tls;
    min_versions(f)?;
    suites::provider(&f.cipher_suites, &f.tls_min_version)?;
    let client_https = has_https(&config.listen_client_urls);
    if client_https && !f.auto_tls && (f.cert_file.is_none() || f.key_file.is_none()) {
        return Err(ConfigError {
            flag: "listen-client-urls",
            reason: "TLS key/cert (--cert-file, --key-file) must be provided for https:// \
                     client URLs (or use --auto-tls)"
                .into(),
        });
    }
    if f.client_cert_auth && f.trusted_ca_file.is_none() {
        return Err(ConfigError {
            flag: "client-cert-auth",
            reason: "needs --trusted-ca-file to verify client certificates".into(),
        });
    }
    let peer_https = has_https(&config.listen_peer_urls);
    if peer_https && !f.peer_auto_tls && (f.peer_cert_file.is_none() || f.peer_key_file.is_none()) {
        return Err(ConfigError {
            flag: "listen-peer-urls",
            reason: "TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for \
                     https:// peer URLs (or use --peer-auto-tls)"
                .into(),
        });
    }
    if f.peer_client_cert_auth && f.peer_trusted_ca_file.is_none() {
        return Err(ConfigError {
            flag: "peer-client-cert-auth",
            reason: "needs --peer-trusted-ca-file to verify peer certificates".into(),
        });
    }
    // A revocation list is consulted only for a certificate that is
    // verified; without cert auth none is asked for, and the list would
    // silently do nothing.
    if f.client_crl_file.is_some() && !f.client_cert_auth {
        return Err(ConfigError {
            flag: "client-crl-file",
            reason: "needs --client-cert-auth (only a verified client certificate can be \
                     checked against it)"
                .into(),
        });
    }
    if f.peer_crl_file.is_some() && !f.peer_client_cert_auth {
        return Err(ConfigError {
            flag: "peer-crl-file",
            reason: "needs --peer-client-cert-auth (only a verified peer certificate can be \
                     checked against it)"
                .into(),
        });
    }
    if f.peer_cert_allowed_cn.is_some() && !f.peer_client_cert_auth {
        return Err(ConfigError {
            flag: "peer-cert-allowed-cn",
            reason: "needs --peer-client-cert-auth (only a verified certificate has a CN \
                     worth checking)"
                .into(),
        });
    }
    Ok(())
}

fn has_https(urls: &str) -> bool {
    urls.split(',').any(|u| u.trim().starts_with("https://"))
}

static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn min_versions(f: &TlsFlags) -> Result<&'static [&'static SupportedProtocolVersion], ConfigError> {
    match f.tls_min_version.as_str() {
        "" | "TLS1.2" => Ok(rustls::ALL_VERSIONS),
        "TLS1.3" => Ok(TLS13_ONLY),
        other => Err(ConfigError {
            flag: "tls-min-version",
            reason: format!("unsupported TLS version {other:?} (want TLS1.2 or TLS1.3)"),
        }),
    }
}

/// Build the TLS configuration from the flags (reading the certificate
/// files, generating the `--auto-tls` ones) and make it the process's.
pub fn install(config: &Config) -> Result<(), TlsError> {
    let f = &config.tls;
    let versions = min_versions(f)?;
    let provider = Arc::new(suites::provider(&f.cipher_suites, &f.tls_min_version)?);
    let mut client_tls_addrs = Vec::new();
    for url in config.listen_client_urls.split(',').map(str::trim) {
        if url.starts_with("https://") {
            client_tls_addrs.push(crate::config::parse_url("listen-client-urls", url)?);
        }
    }
    let client = if client_tls_addrs.is_empty() {
        None
    } else {
        let (cert, key) = cert_and_key(config, Side::Client)?;
        let ca = if f.client_cert_auth {
            f.trusted_ca_file.as_deref()
        } else {
            None
        };
        let crl = f.client_crl_file.as_deref();
        let server = server_config(&provider, versions, &cert, &key, ca, crl)?;
        Some(TlsAcceptor::from(Arc::new(server)))
    };
    let peer = if has_https(&config.listen_peer_urls) {
        let (cert, key) = cert_and_key(config, Side::Peer)?;
        let ca = if f.peer_client_cert_auth {
            f.peer_trusted_ca_file.as_deref()
        } else {
            None
        };
        let crl = f.peer_crl_file.as_deref();
        let server = server_config(&provider, versions, &cert, &key, ca, crl)?;
        // Auto-generated peer certificates are signed by no one: like etcd,
        // peers using them encrypt but cannot verify each other.
        let verify_ca = if f.peer_auto_tls {
            f.peer_trusted_ca_file.as_deref()
        } else {
            Some(f.peer_trusted_ca_file.as_deref().ok_or(ConfigError {
                flag: "peer-trusted-ca-file",
                reason: "needed to verify the peers this member dials over https://".into(),
            })?)
        };
        let client = client_config(&provider, versions, &cert, &key, verify_ca)?;
        let allowed_cn = f
            .peer_cert_allowed_cn
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Some(PeerTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            allowed_cn,
        })
    } else {
        None
    };
    let set_up = Arc::new(Installed {
        client_tls_addrs,
        client,
        peer,
    });
    if let Ok(mut slot) = INSTALLED.write() {
        *slot = Some(set_up);
    }
    Ok(())
}

/// The certificate and key files for one side: the flags', or generated
/// ones under `<data-dir>/fixtures/{client,peer}` with auto-TLS.
fn cert_and_key(config: &Config, side: Side) -> Result<(PathBuf, PathBuf), TlsError> {
    let f = &config.tls;
    let (cert, key, auto, dir) = match side {
        Side::Client => (&f.cert_file, &f.key_file, f.auto_tls, "client"),
        Side::Peer => (&f.peer_cert_file, &f.peer_key_file, f.peer_auto_tls, "peer"),
    };
    if let (Some(c), Some(k)) = (cert, key) {
        return Ok((c.clone(), k.clone()));
    }
    assert!(
        auto,
        "check_flags lets https through only with a cert or auto-TLS"
    );
    let dir = config.data_dir().join("fixtures").join(dir);
    let urls = match side {
        Side::Client => &config.advertise_client_urls,
        Side::Peer => &config.initial_advertise_peer_urls,
    };
    self_signed(&dir, urls)
}

/// Write a self-signed certificate for the hosts of `urls` (and localhost)
/// into `dir`, or reuse the one a previous start wrote.
fn self_signed(dir: &Path, urls: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    for url in urls.split(',').map(str::trim) {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !host.is_empty() && !names.iter().any(|n| n == host) {
            names.push(host.to_string());
        }
    }
    let generated = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Setup {
        what: "auto-tls",
        reason: e.to_string(),
    })?;
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::File { op, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    std::fs::write(&cert_path, generated.cert.pem()).map_err(io("write", &cert_path))?;
    write_private(&key_path, generated.key_pair.serialize_pem().as_bytes())
        .map_err(io("write", &key_path))?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed certificate");
    Ok((cert_path, key_path))
}

/// A key file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |reason: String| TlsError::Pem {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no certificate in the file".into()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The revocation lists in a PEM file (`X509 CRL` blocks), at least one.
fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let pem = |reason: String| TlsError::Pem {
        path: path.to_path_buf(),
        reason,
    };
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if crls.is_empty() {
        return Err(pem("no certificate revocation list in the file".into()));
    }
    Ok(crls)
}

fn setup(what: &'static str) -> impl Fn(rustls::Error) -> TlsError {
    move |e| TlsError::Setup {
        what,
        reason: e.to_string(),
    }
}

/// A server side; with `client_ca`, every client must present a
/// certificate that CA signed, and none that `crl` revokes.
fn server_config(
    provider: &Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    crl: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(setup("server"))?;
    let builder = match client_ca {
        Some(ca) => {
            let roots = Arc::new(load_roots(ca)?);
            let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots,
                provider.clone(),
            );
            if let Some(crl) = crl {
                // As etcd: a certificate is refused when a list names its
                // serial; one that no list covers (another CA in the trusted
                // file) is accepted, and a list past its next-update date
                // still counts.
                verifier = verifier
                    .with_crls(load_crls(crl)?)
                    .allow_unknown_revocation_status();
            }
            let verifier = verifier.build().map_err(|e| TlsError::Setup {
                what: "client certificate verifier",
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(setup("server certificate"))?;
    // gRPC clients insist on negotiating HTTP/2; the native protocol and
    // plain HTTP/1 clients offer nothing and get nothing.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A dialing side presenting `cert`; without `ca` the server's certificate
/// is not verified (auto-TLS peers).
fn client_config(
    provider: &Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(setup("peer dialer"))?;
    let builder = match ca {
        Some(ca) => builder.with_root_certificates(load_roots(ca)?),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(suites::NoVerify(provider.clone()))),
    };
    builder
        .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
        .map_err(setup("peer certificate"))
}

/// A socket after its handshake: plain, or a TLS session over it.
pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<futures_rustls::TlsStream<TcpStream>>),
}

impl MaybeTls {
    fn socket(&self) -> &TcpStream {
        match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::Tls(t) => t.get_ref().0,
        }
    }

    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket()
            .peer_addr()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    pub fn set_nodelay(&self, on: bool) -> std::io::Result<()> {
        self.socket()
            .set_nodelay(on)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// The CN of the client's certificate, if it sent one (with
    /// `--client-cert-auth` and auth enabled, the user it acts as when it
    /// sends no token, as in etcd).
    pub fn client_cn(&self) -> Option<String> {
        match self {
            MaybeTls::Plain(_) => None,
            MaybeTls::Tls(t) => t
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|c| common_name(c)),
        }
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_close(cx),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_close(cx),
        }
    }
}

/// Whether the client listener on `addr` speaks TLS.
pub fn client_listener_is_tls(addr: SocketAddr) -> bool {
    installed().is_some_and(|i| i.client.is_some() && i.client_tls_addrs.contains(&addr))
}

/// Complete the server side of the handshake on a connection accepted by
/// the client listener on `listen`; `None` (logged) if it fails.
pub async fn accept_client(listen: SocketAddr, stream: TcpStream) -> Option<MaybeTls> {
    let set_up = installed();
    let acceptor = match set_up.as_deref() {
        Some(i) if i.client_tls_addrs.contains(&listen) => i.client.clone(),
        _ => None,
    };
    let Some(acceptor) = acceptor else {
        return Some(MaybeTls::Plain(stream));
    };
    let peer = stream.peer_addr().ok();
    match handshake(acceptor.accept(stream)).await {
        Ok(s) => Some(MaybeTls::Tls(Box::new(futures_rustls::TlsStream::Server(
            s,
        )))),
        Err(e) if is_revoked(&e) => {
            tracing::warn!(
                ?peer,
                "rejected client connection: its certificate is revoked (--client-crl-file)"
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                ?peer,
                "rejected client connection: TLS handshake failed: {e}"
            );
            None
        }
    }
}

/// Complete the server side of a peer's handshake and check its
/// certificate's CN; `None` (logged) if either fails.
pub async fn accept_peer(stream: TcpStream) -> Option<MaybeTls> {
    let Some(set_up) = installed().filter(|i| i.peer.is_some()) else {
        return Some(MaybeTls::Plain(stream));
    };
    let Some(p) = set_up.peer.as_ref() else {
        return Some(MaybeTls::Plain(stream));
    };
    let peer = stream.peer_addr().ok();
    let s = match handshake(p.acceptor.accept(stream)).await {
        Ok(s) => s,
        Err(e) if is_revoked(&e) => {
            tracing::warn!(
                ?peer,
                "rejected peer connection: its certificate is revoked (--peer-crl-file)"
            );
            return None;
        }
        Err(e) => {
            tracing::warn!(?peer, "rejected peer connection: TLS handshake failed: {e}");
            return None;
        }
    };
    if !p.allowed_cn.is_empty() {
        let cn = s
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|c| common_name(c));
        if !cn.as_ref().is_some_and(|cn| p.allowed_cn.contains(cn)) {
            tracing::warn!(
                ?peer,
                cn = cn.as_deref().unwrap_or(""),
                allowed = ?p.allowed_cn,
                "rejected peer connection: certificate CN is not in --peer-cert-allowed-cn"
            );
            return None;
        }
    }
    Some(MaybeTls::Tls(Box::new(futures_rustls::TlsStream::Server(
        s,
    ))))
}

/// Wrap a connection dialed to the peer at `addr` in TLS when the peer
/// port speaks TLS.
pub async fn dial_peer(stream: TcpStream, addr: SocketAddr) -> std::io::Result<MaybeTls> {
    let Some(set_up) = installed() else {
        return Ok(MaybeTls::Plain(stream));
    };
    let Some(p) = set_up.peer.as_ref() else {
        return Ok(MaybeTls::Plain(stream));
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let s = handshake(p.connector.connect(name, stream)).await?;
    Ok(MaybeTls::Tls(Box::new(futures_rustls::TlsStream::Client(
        s,
    ))))
}

/// Whether a failed handshake failed because the other side's certificate
/// is on a revocation list.
fn is_revoked(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
            )
        })
}

/// A handshake, bounded in time so a silent peer cannot hold a task.
async fn handshake<T>(
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    let bounded = glommio::timer::timeout(
        Duration::from_millis(limits::TLS_HANDSHAKE_TIMEOUT_MS),
        async { fut.await.map_err(glommio::GlommioError::IoError) },
    )
    .await;
    bounded.map_err(|e| match e {
        glommio::GlommioError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    })
}

/// The first common name in a certificate's subject.
fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}
