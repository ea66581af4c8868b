//! `cairn-perf compare`: the same workload against a local etcd and a local
//! cairn, one after the other, on the same machine in the same session, and
//! the ratios between them.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::access::{Access, ServerTls};
use crate::config::TargetKind;
use crate::error::PerfError;
use crate::etcd::EtcdConn;
use crate::run::{run, RunSpec};
use crate::server::{find_program, is_on_tmpfs, ClientPortTls, LocalServer, ServerKind};
use crate::summary::Summary;
use crate::target::{Consistency, RangeOptions, Target};
use crate::text::ratio;

/// What to compare and where the servers come from.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    /// The run; its target and endpoints are replaced for each server.
    pub run: RunSpec,
    pub etcd_bin: Option<PathBuf>,
    pub cairn_bin: Option<PathBuf>,
    /// Where the servers' temporary data directories go.
    pub data_dir_base: Option<PathBuf>,
    /// Members of each local cluster; the clients' connections are spread
    /// over all of them.
    pub members: usize,
    /// TLS on the servers' client ports (the clients' side is
    /// `run.access.tls`).
    pub server_tls: Option<ServerTls>,
    /// Drive cairn through etcd's gRPC API too (the etcd target against
    /// cairn's client port), so both servers see the same gRPC load
    /// generator; cairn's summary is then labelled [`CAIRN_GRPC_LABEL`].
    pub cairn_grpc: bool,
}

/// The target named in cairn's summary when `compare --grpc` drove it
/// through etcd's gRPC API.
pub const CAIRN_GRPC_LABEL: &str = "cairn (gRPC)";

/// cairn's figures over etcd's.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ratios {
    pub throughput: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// Both results, or etcd's alone with the reason cairn is missing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub etcd: Summary,
    pub cairn: Option<Summary>,
    /// Why there is no cairn result, if there is none.
    pub cairn_missing: Option<String>,
    pub ratios: Option<Ratios>,
}

impl Comparison {
    pub fn new(etcd: Summary, cairn: Result<Summary, String>) -> Comparison {
        match cairn {
            Ok(cairn) => {
                let p = |s: &Summary, percent| s.percentile_secs(percent).unwrap_or(0.0);
                let ratios = Ratios {
                    throughput: ratio(cairn.requests_per_sec, etcd.requests_per_sec),
                    p50: ratio(p(&cairn, 50.0), p(&etcd, 50.0)),
                    p99: ratio(p(&cairn, 99.0), p(&etcd, 99.0)),
                };
                Comparison {
                    etcd,
                    cairn: Some(cairn),
                    cairn_missing: None,
                    ratios: Some(ratios),
                }
            }
            Err(reason) => Comparison {
                etcd,
                cairn: None,
                cairn_missing: Some(reason),
                ratios: None,
            },
        }
    }
}

/// The places a `cairn` binary is looked for when `--cairn-bin` is not
/// given: the workspace's release build, then the current directory's.
pub fn cairn_candidates() -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    vec![
        workspace.join("target/release/cairn"),
        PathBuf::from("target/release/cairn"),
    ]
}

/// Runs the comparison. `note` receives messages for the user (a missing
/// cairn, a tmpfs data directory) as they happen.
pub async fn compare(spec: &CompareSpec, note: &dyn Fn(&str)) -> Result<Comparison, PerfError> {
    let base = spec
        .data_dir_base
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    if is_on_tmpfs(&base) {
        note(&format!(
            "warning: {} is on tmpfs, where fsync costs nothing; write figures will be \
             flattering (use --data-dir-base on a disk)",
            base.display()
        ));
    }
    let etcd_bin = find_program(spec.etcd_bin.as_deref(), "etcd", &[]).ok_or_else(|| {
        PerfError::TargetUnavailable(
            "etcd not found: install etcd (Debian: apt-get install etcd-server) \
             or pass --etcd-bin PATH"
                .to_string(),
        )
    })?;
    if spec.server_tls.is_some() || spec.run.access.user.is_some() {
        note(&format!(
            "both servers are reached with {}",
            spec.run.access.label()
        ));
    }
    let etcd = run_local(spec, ServerKind::Etcd, &etcd_bin, &base).await?;

    let cairn = match find_program(spec.cairn_bin.as_deref(), "cairn", &cairn_candidates()) {
        None => Err(match &spec.cairn_bin {
            Some(path) => format!(
                "cairn binary not found: {} does not exist; running etcd alone",
                path.display()
            ),
            None => format!(
                "cairn binary not found (looked in {}, and for `cairn` on PATH; build it \
                 with `cargo build --release --bin cairn` or pass --cairn-bin): running etcd \
                 alone",
                cairn_candidates()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        Some(cairn_bin) => run_local(spec, ServerKind::Cairn, &cairn_bin, &base)
            .await
            .map_err(|e| format!("cairn run failed: {e}")),
    };
    if let Err(reason) = &cairn {
        note(reason);
    }
    Ok(Comparison::new(etcd, cairn))
}

async fn run_local(
    spec: &CompareSpec,
    kind: ServerKind,
    program: &Path,
    base: &Path,
) -> Result<Summary, PerfError> {
    let access = &spec.run.access;
    let tls = spec.server_tls.as_ref().map(|server| ClientPortTls {
        cert: server.cert.clone(),
        key: server.key.clone(),
        // Clients that bring a certificate get a server that demands one.
        client_ca: access
            .tls
            .as_ref()
            .filter(|files| files.cert.is_some())
            .map(|files| files.ca.clone()),
    });
    let mut servers =
        LocalServer::spawn_cluster_with(kind, program, Some(base), spec.members, tls.as_ref())?;
    // Auth is not on yet: probe and prepare without the user.
    let setup = access.without_user();
    for server in &mut servers {
        match kind {
            ServerKind::Etcd => {
                server
                    .wait_ready(async |url: &str| etcd_answers_with(url, &setup).await)
                    .await?
            }
            ServerKind::Cairn => {
                server
                    .wait_ready(async |url: &str| crate::cairn::answers_with(url, &setup).await)
                    .await?
            }
        }
    }
    if let Some(first) = servers.first() {
        match kind {
            ServerKind::Etcd => crate::etcd::auth::enable_auth(first.client_url(), access).await?,
            ServerKind::Cairn => crate::cairn::enable_auth(first.client_url(), access).await?,
        }
    }
    let target = match kind {
        ServerKind::Etcd => TargetKind::Etcd,
        ServerKind::Cairn if spec.cairn_grpc => TargetKind::Etcd,
        ServerKind::Cairn => TargetKind::Cairn,
    };
    let mut run_spec = spec.run.clone();
    run_spec.target = target;
    run_spec.endpoints = servers.iter().map(|s| s.client_url().to_string()).collect();
    run_spec.server_pids = servers.iter().map(LocalServer::pid).collect();
    let summary = run(&run_spec).await;
    drop(servers);
    summary.map(|mut summary| {
        if kind == ServerKind::Cairn && spec.cairn_grpc {
            summary.config.target = CAIRN_GRPC_LABEL.to_string();
        }
        summary
    })
}

/// Whether an etcd at `url` answers a linearizable read (plaintext, no
/// user).
pub async fn etcd_answers(url: &str) -> bool {
    etcd_answers_with(url, &Access::default()).await
}

/// Whether an etcd at `url` answers a linearizable read made as `access`
/// says.
pub async fn etcd_answers_with(url: &str, access: &Access) -> bool {
    let Ok(conn) = EtcdConn::connect_with(url, access).await else {
        return false;
    };
    let options = RangeOptions {
        consistency: Consistency::Linearizable,
        limit: 1,
        count_only: true,
    };
    conn.range(
        Bytes::from_static(b"cairn-perf-probe"),
        Bytes::new(),
        options,
    )
    .await
    .is_ok()
}
