//! `--client-crl-file`: a client certificate that the revocation list names
//! is refused during the handshake, with a log line that says so, while
//! another certificate from the same CA is served.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_client::{Client, ConnectOptions, GetOptions, PutOptions, TlsOptions};
use common::free_port;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SerialNumber,
};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
}

impl Ca {
    fn new(dir: &Path) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.distinguished_name.push(DnType::CommonName, "crl-test-ca");
        let cert = p.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        Ca {
            cert,
            key,
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for 127.0.0.1 with common name `cn` and `serial`.
    fn issue(&self, cn: &str, serial: u64) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let cert_path = self.dir.join(format!("{cn}.pem"));
        let key_path = self.dir.join(format!("{cn}-key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    /// A revocation list naming `serials`, as a PEM file.
    fn revoke(&self, serials: &[u64]) -> PathBuf {
        let crl = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2100, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.cert, &self.key)
        .unwrap();
        let path = self.dir.join("revoked.crl.pem");
        std::fs::write(&path, crl.pem().unwrap()).unwrap();
        path
    }
}

/// The server process, killed when dropped; its log goes to a file.
struct Member {
    child: Child,
    log: PathBuf,
}

impl Member {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cairn(dir: &Path, url: &str, extra: &[String]) -> Command {
    let peer = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.args(["--name", "crl", "--no-pin", "--cores", "1"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen-client-urls", url, "--advertise-client-urls", url])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(extra);
    cmd
}

async fn round_trip(url: &str, tls: TlsOptions) -> Result<(), String> {
    let options = ConnectOptions::default()
        .with_dial_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(5));
    let client = Client::connect_with_tls([url], options, Some(tls))
        .await
        .map_err(|e| format!("{e:?}"))?;
    client
        .put("k", "v", PutOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    client
        .get("k", GetOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn a_revoked_client_certificate_is_refused_and_another_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (server_cert, server_key) = ca.issue("server", 1);
    let (good_cert, good_key) = ca.issue("alice", 2);
    let (revoked_cert, revoked_key) = ca.issue("mallory", 3);
    let crl = ca.revoke(&[3]);

    let url = format!("https://127.0.0.1:{}", free_port());
    let log = dir.path().join("cairn.log");
    let child = cairn(
        dir.path(),
        &url,
        &[
            format!("--cert-file={}", server_cert.display()),
            format!("--key-file={}", server_key.display()),
            format!("--trusted-ca-file={}", ca.path().display()),
            "--client-cert-auth".into(),
            format!("--client-crl-file={}", crl.display()),
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .expect("start cairn");
    let member = Member { child, log };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let trusted = TlsOptions::new().with_ca_file(ca.path());
    rt.block_on(async {
        let good = trusted.clone().with_client_cert(&good_cert, &good_key);
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Err(e) = round_trip(&url, good.clone()).await {
            assert!(Instant::now() < deadline, "never served alice: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let revoked = trusted
            .clone()
            .with_client_cert(&revoked_cert, &revoked_key);
        let r = round_trip(&url, revoked).await;
        assert!(r.is_err(), "a revoked certificate was served");
        // And the good one still is.
        round_trip(&url, good).await.unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let needle = "rejected client connection: its certificate is revoked (--client-crl-file)";
    while !member.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "log never said {needle:?}:\n{}",
            member.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_crl_without_client_cert_auth_or_with_no_list_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (server_cert, server_key) = ca.issue("server", 1);
    let crl = ca.revoke(&[2]);
    let url = format!("https://127.0.0.1:{}", free_port());
    let tls = [
        format!("--cert-file={}", server_cert.display()),
        format!("--key-file={}", server_key.display()),
        format!("--trusted-ca-file={}", ca.path().display()),
    ];

    // No --client-cert-auth: the list could never be consulted.
    let mut args = tls.to_vec();
    args.push(format!("--client-crl-file={}", crl.display()));
    let out = cairn(dir.path(), &url, &args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("invalid value for --client-crl-file: needs --client-cert-auth"),
        "{stderr}"
    );

    // A file with no revocation list in it (a certificate, by mistake).
    let mut args = tls.to_vec();
    args.push("--client-cert-auth".into());
    args.push(format!("--client-crl-file={}", ca.path().display()));
    let out = cairn(dir.path(), &url, &args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no certificate revocation list in the file"),
        "{stderr}"
    );
}
