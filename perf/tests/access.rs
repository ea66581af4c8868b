//! `--cacert`, `--cert`, `--key` and `--user` against real servers: cairn
//! (this build's binary) and etcd (when an `etcd` binary is on PATH; without
//! one its half prints a note and passes). Each server is started with TLS
//! on its client port; auth is switched on the way `compare` does it.

mod common;

use std::path::{Path, PathBuf};

use cairn_perf::access::{Access, TlsFiles, UserPassword};
use cairn_perf::cli::{Cli, Command};
use cairn_perf::compare::{compare, etcd_answers_with};
use cairn_perf::run::run;
use cairn_perf::server::{find_program, ClientPortTls, LocalServer, ServerKind};
use clap::Parser;
use common::{cairn_bin, spec_for};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as
/// PEM files in a temporary directory.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "perf-ca");
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        for (name, cn) in [("server", "member"), ("client", "perf-client")] {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                    .unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(
                dir.path().join(format!("{name}-key.pem")),
                key.serialize_pem(),
            )
            .unwrap();
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, flag: &str, name: &str) -> String {
        format!("--{flag}={}", self.path(name).display())
    }

    fn server_tls(&self, client_cert_auth: bool) -> ClientPortTls {
        ClientPortTls {
            cert: self.path("server.pem"),
            key: self.path("server-key.pem"),
            client_ca: client_cert_auth.then(|| self.path("ca.pem")),
        }
    }

    fn client_tls(&self, with_cert: bool) -> TlsFiles {
        TlsFiles {
            ca: self.path("ca.pem"),
            cert: with_cert.then(|| self.path("client.pem")),
            key: with_cert.then(|| self.path("client-key.pem")),
        }
    }
}

/// The servers this machine can start: cairn always, etcd if installed.
fn kinds() -> Vec<(ServerKind, PathBuf)> {
    let mut kinds = vec![(ServerKind::Cairn, cairn_bin())];
    match find_program(None, "etcd", &[]) {
        Some(etcd) => kinds.push((ServerKind::Etcd, etcd)),
        None => eprintln!("note: skipping etcd: no `etcd` on PATH"),
    }
    kinds
}

async fn start(
    kind: ServerKind,
    program: &Path,
    tls: &ClientPortTls,
    probe: &Access,
) -> LocalServer {
    let mut server = LocalServer::spawn_with(kind, program, None, Some(tls)).unwrap();
    match kind {
        ServerKind::Cairn => server
            .wait_ready(async |url: &str| cairn_perf::cairn::answers_with(url, probe).await)
            .await
            .unwrap(),
        ServerKind::Etcd => server
            .wait_ready(async |url: &str| etcd_answers_with(url, probe).await)
            .await
            .unwrap(),
    }
    server
}

fn target_flag(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::Cairn => "--target=cairn",
        ServerKind::Etcd => "--target=etcd",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_auth_runs_send_the_token_and_runs_without_it_are_refused() {
    let certs = Certs::new();
    let user: UserPassword = "bench:bench-pw".parse().unwrap();
    let access = Access {
        tls: Some(certs.client_tls(false)),
        user: Some(user),
    };
    for (kind, program) in kinds() {
        let server = start(
            kind,
            &program,
            &certs.server_tls(false),
            &access.without_user(),
        )
        .await;
        let url = server.client_url();
        assert!(url.starts_with("https://"), "{url}");
        match kind {
            ServerKind::Cairn => cairn_perf::cairn::enable_auth(url, &access).await,
            ServerKind::Etcd => cairn_perf::etcd::auth::enable_auth(url, &access).await,
        }
        .unwrap();
        let cacert = certs.arg("cacert", "ca.pem");
        let load = [
            target_flag(kind),
            &cacert,
            "--conns=2",
            "--clients=4",
            "--total=200",
            "--key-space-size=50",
        ];

        // With the user: every put and every linearizable read succeeds,
        // inside the role's range.
        let mut args = load.to_vec();
        args.extend(["--user=bench:bench-pw", "put"]);
        let summary = run(&spec_for(url, &args)).await.unwrap();
        assert_eq!(
            (summary.successes, summary.failures),
            (200, 0),
            "{kind:?}: {:?}",
            summary.errors
        );
        let mut args = load.to_vec();
        args.extend(["--user=bench:bench-pw", "range", "--prefill"]);
        let summary = run(&spec_for(url, &args)).await.unwrap();
        assert_eq!(
            (summary.successes, summary.failures),
            (200, 0),
            "{kind:?}: {:?}",
            summary.errors
        );

        // TLS without the user: auth is on, so every request is refused.
        let mut args = load.to_vec();
        args.push("put");
        let summary = run(&spec_for(url, &args)).await.unwrap();
        assert_eq!(summary.failures, 200, "{kind:?}");
        assert!(
            summary
                .errors
                .keys()
                .all(|k| k.contains("user name is empty")),
            "{kind:?}: {:?}",
            summary.errors
        );

        // A wrong password fails at connect time, before any load.
        let mut args = load.to_vec();
        args.extend(["--user=bench:wrong", "put"]);
        let error = run(&spec_for(url, &args)).await.unwrap_err().to_string();
        assert!(error.contains("authentication failed"), "{kind:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_presented_when_given() {
    let certs = Certs::new();
    let with_cert = Access {
        tls: Some(certs.client_tls(true)),
        user: None,
    };
    for (kind, program) in kinds() {
        let server = start(kind, &program, &certs.server_tls(true), &with_cert).await;
        let url = server.client_url();
        let (cacert, cert, key) = (
            certs.arg("cacert", "ca.pem"),
            certs.arg("cert", "client.pem"),
            certs.arg("key", "client-key.pem"),
        );
        let load = [
            target_flag(kind),
            &cacert,
            "--total=50",
            "--key-space-size=10",
        ];
        let mut args = load.to_vec();
        args.extend([cert.as_str(), key.as_str(), "put"]);
        let summary = run(&spec_for(url, &args)).await.unwrap();
        assert_eq!(summary.successes, 50, "{kind:?}: {:?}", summary.errors);

        // Without the certificate the handshake is refused: the run cannot
        // start, or not one request gets through.
        let mut args = load.to_vec();
        args.push("put");
        if let Ok(summary) = run(&spec_for(url, &args)).await {
            assert_eq!(summary.successes, 0, "{kind:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_starts_both_servers_with_tls_and_auth() {
    if find_program(None, "etcd", &[]).is_none() {
        eprintln!("note: skipping: no `etcd` on PATH");
        return;
    }
    let certs = Certs::new();
    let cairn = format!("--cairn-bin={}", cairn_bin().display());
    let line = [
        "cairn-perf",
        "compare",
        "range",
        "--prefill",
        "--conns=2",
        "--clients=4",
        "--total=100",
        "--key-space-size=20",
        &certs.arg("cacert", "ca.pem"),
        &certs.arg("server-cert", "server.pem"),
        &certs.arg("server-key", "server-key.pem"),
        "--user=bench:bench-pw",
        &cairn,
    ];
    let cli = Cli::try_parse_from(line).unwrap();
    let Command::Compare(args) = &cli.command else {
        panic!("expected compare");
    };
    let spec = args.compare_spec(&cli.global).unwrap();
    assert!(spec.server_tls.is_some());
    assert_eq!(spec.run.access.label(), "TLS + auth");
    let comparison = compare(&spec, &|_| ()).await.unwrap();
    assert_eq!(
        comparison.etcd.successes, 100,
        "{:?}",
        comparison.etcd.errors
    );
    let cairn = comparison.cairn.expect("a cairn result");
    assert_eq!(cairn.successes, 100, "{:?}", cairn.errors);
    assert!(comparison.etcd.config.endpoints[0].starts_with("https://"));

    // TLS on one side only is refused before anything starts.
    let half = [
        "cairn-perf",
        "compare",
        "put",
        &certs.arg("cacert", "ca.pem"),
    ];
    let cli = Cli::try_parse_from(half).unwrap();
    let Command::Compare(args) = &cli.command else {
        panic!("expected compare");
    };
    assert!(args.compare_spec(&cli.global).is_err());
}
