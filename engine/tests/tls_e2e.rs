//! TLS on the client and peer ports, end to end: `cairn` processes with
//! certificates made at test time, driven through the client library and
//! cairnctl.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_client::{Client, ConnectOptions, GetOptions, PutOptions, TlsOptions};
use common::free_port;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA that signs test certificates, written as PEM files into a directory.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
    name: String,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        Ca {
            cert,
            key,
            dir: dir.to_path_buf(),
            name: name.into(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// A certificate for 127.0.0.1/localhost with common name `cn`, as
    /// (cert path, key path); `expired` dates it in the past.
    fn issue(&self, cn: &str, expired: bool) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let tag = format!(
            "{}-{cn}{}",
            self.name,
            if expired { "-expired" } else { "" }
        );
        let cert_path = self.dir.join(format!("{tag}.pem"));
        let key_path = self.dir.join(format!("{tag}-key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// A `cairn` process whose log goes to a file the test can read.
struct Member {
    child: Child,
    log: PathBuf,
}

impl Member {
    fn spawn(dir: &Path, name: &str, args: &[String]) -> Member {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                "--name",
                name,
                "--no-pin",
                "--cores",
                "1",
                "--log-level",
                "info",
            ])
            .arg("--data-dir")
            .arg(dir.join(name))
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start cairn");
        Member { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A single member serving `https://` on a free port.
fn tls_member(dir: &Path, extra: &[String]) -> (Member, String) {
    let url = format!("https://127.0.0.1:{}", free_port());
    let peer = format!("http://127.0.0.1:{}", free_port());
    let mut args: Vec<String> = [
        "--listen-client-urls",
        &url,
        "--advertise-client-urls",
        &url,
        "--listen-peer-urls",
        &peer,
        "--initial-advertise-peer-urls",
        &peer,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend_from_slice(extra);
    (Member::spawn(dir, "tls", &args), url)
}

fn quick() -> ConnectOptions {
    ConnectOptions::default()
        .with_dial_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(5))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Put then get `key` through the client library with `tls`.
async fn round_trip(url: &str, tls: TlsOptions, key: &str) -> Result<Vec<u8>, String> {
    // Debug, not Display: a dial timeout's Display hides the last error.
    let client = Client::connect_with_tls([url], quick(), Some(tls))
        .await
        .map_err(|e| format!("{e:?}"))?;
    client
        .put(key, "v", PutOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let r = client
        .get(key, GetOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(r.kvs.first().map(|kv| kv.value.clone()).unwrap_or_default())
}

/// Keep trying `round_trip` while the server starts.
async fn round_trip_ready(url: &str, tls: TlsOptions) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match round_trip(url, tls.clone(), "ready").await {
            Ok(v) if v == b"v" => return,
            other => assert!(Instant::now() < deadline, "never ready: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cairnctl(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["cairnctl".into()];
    all.extend(args.iter().map(std::ffi::OsString::from));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut stdin = std::io::empty();
    let mut stdin = std::io::BufReader::new(&mut stdin);
    let code = cairn_client::ctl::main_with(
        all,
        &mut cairn_client::ctl::Io {
            stdin: &mut stdin,
            stdout: &mut out,
            stderr: &mut err,
        },
    )
    .await;
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn client_tls_serves_clients_that_trust_the_ca_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other");
    let (cert, key) = ca.issue("server", false);
    let (member, url) = tls_member(
        dir.path(),
        &[
            "--cert-file".into(),
            cert.display().to_string(),
            "--key-file".into(),
            key.display().to_string(),
        ],
    );
    runtime().block_on(async {
        let trusted = TlsOptions::new().with_ca_file(ca.path());
        round_trip_ready(&url, trusted.clone()).await;
        assert_eq!(round_trip(&url, trusted, "k").await.unwrap(), b"v");

        let cacert = format!("--cacert={}", ca.path().display());
        let endpoints = format!("--endpoints={url}");
        let (code, out, err) = cairnctl(&[&endpoints, &cacert, "put", "ctl", "yes"]).await;
        assert_eq!((code, out.as_str()), (0, "OK\n"), "{err}");
        let (code, out, _) = cairnctl(&[&endpoints, &cacert, "get", "ctl"]).await;
        assert_eq!((code, out.as_str()), (0, "ctl\nyes\n"));

        // A client trusting another CA refuses the server's certificate.
        let wrong = TlsOptions::new().with_ca_file(other.path());
        // The dial retries until its deadline, so the last error may be a
        // handshake cut short; the member's log names the reason.
        let e = round_trip(&url, wrong, "k").await.unwrap_err();
        assert!(e.contains("TLS handshake"), "{e}");
        let wrong_ca = format!("--cacert={}", other.path().display());
        let (code, out, _) = cairnctl(&[&endpoints, &wrong_ca, "get", "ctl"]).await;
        assert_ne!(code, 0);
        assert_eq!(out, "");
    });
    // The client refused the member's certificate and told it so.
    member.wait_log(
        "rejected client connection: TLS handshake failed: received fatal alert: UnknownCA",
    );

    // A plaintext client on the TLS port gets nothing served.
    let addr = url.trim_start_matches("https://").parse().unwrap();
    if let Ok(mut plain) = common::Client::connect(addr) {
        assert!(plain.put(b"plain", b"v").is_err());
    }
}

#[test]
fn client_cert_auth_refuses_missing_foreign_and_expired_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other");
    let (cert, key) = ca.issue("server", false);
    let (member, url) = tls_member(
        dir.path(),
        &[
            "--cert-file".into(),
            cert.display().to_string(),
            "--key-file".into(),
            key.display().to_string(),
            "--trusted-ca-file".into(),
            ca.path().display().to_string(),
            "--client-cert-auth".into(),
        ],
    );
    let (good_cert, good_key) = ca.issue("alice", false);
    let (expired_cert, expired_key) = ca.issue("bob", true);
    let (foreign_cert, foreign_key) = other.issue("mallory", false);
    runtime().block_on(async {
        let trusted = TlsOptions::new().with_ca_file(ca.path());
        round_trip_ready(
            &url,
            trusted.clone().with_client_cert(&good_cert, &good_key),
        )
        .await;

        let refused = [
            ("no certificate", trusted.clone()),
            (
                "expired certificate",
                trusted
                    .clone()
                    .with_client_cert(&expired_cert, &expired_key),
            ),
            (
                "certificate from another CA",
                trusted
                    .clone()
                    .with_client_cert(&foreign_cert, &foreign_key),
            ),
        ];
        for (what, tls) in refused {
            let r = round_trip(&url, tls, "k").await;
            assert!(r.is_err(), "{what}: served: {r:?}");
        }

        let cacert = format!("--cacert={}", ca.path().display());
        let endpoints = format!("--endpoints={url}");
        let client_cert = format!("--cert={}", good_cert.display());
        let client_key = format!("--key={}", good_key.display());
        let (code, out, err) = cairnctl(&[
            &endpoints,
            &cacert,
            &client_cert,
            &client_key,
            "put",
            "ctl",
            "yes",
        ])
        .await;
        assert_eq!((code, out.as_str()), (0, "OK\n"), "{err}");
    });
    member.wait_log("rejected client connection: TLS handshake failed");
    let log = member.log();
    assert!(log.contains("expired") || log.contains("Expired"), "{log}");

    // etcd's own client speaks gRPC over the same TLS listener.
    if !on_path("etcdctl") {
        eprintln!("etcdctl is not installed; gRPC over TLS not checked");
        return;
    }
    let etcdctl = |args: &[&str]| {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={url}"))
            .arg(format!("--cacert={}", ca.path().display()))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let cert = format!("--cert={}", good_cert.display());
    let key = format!("--key={}", good_key.display());
    assert_eq!(
        etcdctl(&[&cert, &key, "put", "grpc", "tls"]),
        (true, "OK\n".into())
    );
    assert_eq!(
        etcdctl(&[&cert, &key, "get", "grpc"]),
        (true, "grpc\ntls\n".into())
    );
    // Without its certificate etcdctl is refused too.
    assert!(!etcdctl(&["--dial-timeout=1s", "--command-timeout=2s", "get", "grpc"]).0);
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

#[test]
fn auto_tls_serves_clients_that_skip_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, url) = tls_member(dir.path(), &["--auto-tls".into()]);
    runtime().block_on(async {
        round_trip_ready(&url, TlsOptions::new().with_insecure_skip_verify(true)).await;
        let endpoints = format!("--endpoints={url}");
        let (code, out, err) =
            cairnctl(&[&endpoints, "--insecure-skip-tls-verify", "get", "ready"]).await;
        assert_eq!((code, out.as_str()), (0, "ready\nv\n"), "{err}");
        // Without skipping, nothing vouches for the self-signed certificate.
        let ca = dir.path().join("tls/fixtures/client/cert.pem");
        assert!(ca.exists());
        let strict = TlsOptions::new().with_ca_file(dir.path().join("other.pem"));
        assert!(round_trip(&url, strict, "k").await.is_err());
    });
}

#[test]
fn https_without_a_certificate_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .args(["--listen-client-urls", "https://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cert-file") && err.contains("--auto-tls"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .args(["--cipher-suites", "TLS_BOGUS"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown cipher suite TLS_BOGUS"), "{err}");
}

#[test]
fn peer_tls_cluster_replicates_and_refuses_an_unlisted_cn() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("m{}=https://127.0.0.1:{}", i + 1, p.1))
        .collect();
    let initial = initial.join(",");
    let (cert, key) = ca.issue("member", false);
    let members: Vec<Member> = ports
        .iter()
        .enumerate()
        .map(|(i, (client, peer))| {
            let client = format!("http://127.0.0.1:{client}");
            let peer = format!("https://127.0.0.1:{peer}");
            let args: Vec<String> = [
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
                "--initial-cluster",
                &initial,
                "--heartbeat-interval",
                "50",
                "--election-timeout",
                "500",
                "--peer-cert-file",
                &cert.display().to_string(),
                "--peer-key-file",
                &key.display().to_string(),
                "--peer-trusted-ca-file",
                &ca.path().display().to_string(),
                "--peer-client-cert-auth",
                "--peer-cert-allowed-cn",
                "member",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            Member::spawn(dir.path(), &format!("m{}", i + 1), &args)
        })
        .collect();
    let addrs: Vec<std::net::SocketAddr> = ports
        .iter()
        .map(|p| format!("127.0.0.1:{}", p.0).parse().unwrap())
        .collect();
    let leader = wait_leader(&addrs);
    let mut c = common::Client::connect(addrs[leader]).unwrap();
    c.put_retry(b"k", b"v1", Duration::from_secs(10)).unwrap();
    let follower = (leader + 1) % 3;
    wait_value(addrs[follower], b"k", b"v1");

    // A peer with a certificate from the right CA but the wrong CN.
    let (bad_cert, bad_key) = ca.issue("intruder", false);
    let refused = intrude(ports[follower].1, &ca.path(), &bad_cert, &bad_key);
    assert!(refused, "the intruder was not disconnected");
    members[follower].wait_log("certificate CN is not in --peer-cert-allowed-cn");

    // The cluster keeps working.
    c.put_retry(b"k", b"v2", Duration::from_secs(10)).unwrap();
    wait_value(addrs[follower], b"k", b"v2");
    drop(members);
}

fn wait_leader(addrs: &[std::net::SocketAddr]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (i, a) in addrs.iter().enumerate() {
            if let Ok(mut c) = common::Client::connect(*a) {
                if let Ok(st) = c.status() {
                    if st.leader != 0 && st.leader == st.member_id {
                        return i;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader elected over peer TLS");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_value(addr: std::net::SocketAddr, key: &[u8], value: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = common::Client::connect(addr) {
            if c.get_key(key).as_deref() == Some(value) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "value never replicated");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Dial a peer port with TLS and a client certificate, send the peer
/// preface, and report whether the member then closed the connection.
fn intrude(peer_port: u16, ca: &Path, cert: &Path, key: &Path) -> bool {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, PrivateKeyDer::from_pem_file(key).unwrap())
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = std::net::TcpStream::connect(("127.0.0.1", peer_port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let _ = tls.write_all(&cairn_wire::PEER_PREFACE);
    let mut buf = [0u8; 64];
    // Closed (Ok(0)) or reset: refused. A timeout would mean it was kept.
    match tls.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut
        }
    }
}
