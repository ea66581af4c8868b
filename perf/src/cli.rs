//! The command line: etcd benchmark tool's flag names, plus `--target`,
//! `--duration`, `--warmup`, `--output` and `compare`.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::access::{Access, ServerTls, UserPassword};
use crate::check::{
    CheckLoad, CHECK_DURATION_SECS, CHECK_KEY_SIZE, CHECK_KEY_SPACE_SIZE, CHECK_VAL_SIZE,
};
use crate::compare::CompareSpec;
use crate::config::{parse_duration, parse_warmup, TargetKind};
use crate::driver::{LoadShape, Plan, Stop, Warmup};
use crate::error::PerfError;
use crate::keys::{value, KeySpace};
use crate::limits::{MEMBERS_MAX, TXN_OPS_MAX};
use crate::run::RunSpec;
use crate::target::{Consistency, RangeOptions};
use crate::watch::bench::WatchPlan;
use crate::workload::Workload;
pub use crate::workload_args::{
    LeaseKeepAliveArgs, StmArgs, TxnMixedArgs, WatchArgs, WatchCatchUpArgs, WatchLatencyArgs,
};

/// Requests sent when neither `--total` nor `--duration` is given (etcd's
/// benchmark tool's default).
pub const TOTAL_DEFAULT: u64 = 10_000;

/// Puts of `mvcc put` without `--total`: a run long enough to time, short
/// enough to finish in a few seconds at opt-level 1.
pub const MVCC_TOTAL_DEFAULT: u64 = 100_000;

#[derive(Debug, Parser)]
#[command(
    name = "cairn-perf",
    version,
    about = "Load generator for cairn and etcd: the same workload code drives either",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Comma-separated client endpoints (host:port or http://host:port).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// System to drive.
    #[arg(long, global = true, value_enum, default_value = "cairn")]
    pub target: TargetKind,
    /// Connections shared by the clients.
    #[arg(long, global = true, default_value_t = 1)]
    pub conns: usize,
    /// Concurrent clients (each has one request in flight).
    #[arg(long, global = true, default_value_t = 1)]
    pub clients: usize,
    /// Measured requests to send [default: 10000 unless --duration is given].
    #[arg(long, global = true, conflicts_with = "duration")]
    pub total: Option<u64>,
    /// Measure for this long instead of a request count (e.g. 30s, 2m).
    #[arg(long, global = true)]
    pub duration: Option<String>,
    /// Requests per second over all clients, open loop with latency measured
    /// from each request's scheduled time; 0 = closed loop.
    #[arg(long, global = true, default_value_t = 0.0)]
    pub rate: f64,
    /// Warm-up excluded from the figures: a request count (1000) or a
    /// duration (5s).
    #[arg(long, global = true, default_value = "0")]
    pub warmup: String,
    /// Key size in bytes.
    #[arg(long, global = true, default_value_t = 8)]
    pub key_size: usize,
    /// Value size in bytes.
    #[arg(long, global = true, default_value_t = 8, alias = "value-size")]
    pub val_size: usize,
    /// Keys are drawn from [0, key-space-size).
    #[arg(long, global = true, default_value_t = 1)]
    pub key_space_size: u64,
    /// Use keys in order instead of at random.
    #[arg(long, global = true)]
    pub sequential_keys: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Send every request to the leader only (found from the endpoints'
    /// status).
    #[arg(long, global = true)]
    pub target_leader: bool,
    /// Server processes on this machine whose CPU and memory to report
    /// (comma-separated pids).
    #[arg(long, global = true, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Also write an HTML report (latency percentile curve, throughput over
    /// time) into this directory.
    #[arg(long, global = true)]
    pub report: Option<PathBuf>,
    /// Speak TLS to the endpoints, verifying them with this CA file.
    #[arg(long, global = true)]
    pub cacert: Option<PathBuf>,
    /// Client certificate to present (with --key; needs --cacert).
    #[arg(long, global = true)]
    pub cert: Option<PathBuf>,
    /// Key of the client certificate.
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// Authenticate each connection once as this user (name:password) and
    /// send the token with every request. With `compare`, the servers get
    /// `root` and this user, who may read and write only the harness's
    /// keys, and auth is enabled before the run.
    #[arg(long, global = true)]
    pub user: Option<UserPassword>,
    /// Threads of the load generator's async runtime. One thread (the
    /// default) drives every connection without cross-thread wake-ups, which
    /// costs the least CPU per request and leaves the most to the servers on
    /// a small machine; raise it only when the harness itself is the limit.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub client_threads: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Workload(WorkloadCommand),
    /// Run a workload against a local etcd and a local cairn and compare.
    Compare(CompareArgs),
    /// Engine-level benchmarks: cairn's MVCC index, no network, no Raft.
    #[command(subcommand)]
    Mvcc(MvccCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum MvccCommand {
    /// Puts into the MVCC index (--total puts, or txns of --txn-ops puts).
    Put(MvccPutArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MvccPutArgs {
    /// Put the keys in txns of --txn-ops puts.
    #[arg(long)]
    pub txn: bool,
    /// Puts per txn (with --txn).
    #[arg(long, default_value_t = 1)]
    pub txn_ops: usize,
}

#[derive(Debug, Clone, Subcommand)]
pub enum WorkloadCommand {
    /// Puts of keys from the key space.
    Put,
    /// Range requests of one key, or of keys drawn from the key space.
    Range(RangeArgs),
    /// Transactions of --txn-ops puts each.
    TxnPut(TxnPutArgs),
    /// `etcdctl check perf`: 60 s of rate-limited puts, pass or fail.
    CheckPerf(CheckPerfArgs),
    /// Txns of one read or one put, mixed by --rw-ratio.
    TxnMixed(TxnMixedArgs),
    /// Read-modify-write txns over --keys keys, retried on conflict.
    Stm(StmArgs),
    /// Keep-alives of leases granted before the run.
    LeaseKeepalive(LeaseKeepAliveArgs),
    /// Watchers over --streams, then puts: creation and event delivery.
    Watch(WatchArgs),
    /// Every watcher on one key; latency from each put to each event.
    WatchLatency(WatchLatencyArgs),
    /// Watchers starting --revisions back in history: replay speed.
    WatchCatchup(WatchCatchUpArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CheckPerfArgs {
    /// Load level: s (150 puts/s, 50 clients), m (1000, 200), l (8000, 500),
    /// xl (15000, 1000).
    #[arg(long, value_enum, default_value = "s")]
    pub load: CheckLoad,
}

#[derive(Debug, Clone, Args)]
pub struct RangeArgs {
    /// Key to read; without it each request reads a key from the key space.
    pub key: Option<String>,
    /// Read [key, end) instead of one key.
    pub end: Option<String>,
    /// l (linearizable) or s (serializable).
    #[arg(long, default_value = "l")]
    pub consistency: String,
    /// Most keys returned per request; 0 = no limit.
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Write every key of the key space before measuring (not measured).
    #[arg(long)]
    pub prefill: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TxnPutArgs {
    /// Puts per transaction.
    #[arg(long, default_value_t = 1)]
    pub txn_ops: usize,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(subcommand)]
    pub workload: WorkloadCommand,
    /// The cairn server binary [default: target/release/cairn of the
    /// workspace, else `cairn` on PATH].
    #[arg(long, global = true)]
    pub cairn_bin: Option<PathBuf>,
    /// The etcd server binary [default: `etcd` on PATH].
    #[arg(long, global = true)]
    pub etcd_bin: Option<PathBuf>,
    /// Directory for the servers' temporary data directories (must be on a
    /// real disk for write figures to mean anything) [default: the system
    /// temporary directory].
    #[arg(long, global = true)]
    pub data_dir_base: Option<PathBuf>,
    /// Members of each local cluster (connections are spread over all).
    #[arg(long, global = true, default_value_t = 1)]
    pub members: usize,
    /// Server certificate for the servers' client port (with --server-key
    /// and --cacert): both servers listen on https:// and, when --cert is
    /// given, demand client certificates signed by --cacert.
    #[arg(long, global = true)]
    pub server_cert: Option<PathBuf>,
    /// Key of --server-cert.
    #[arg(long, global = true)]
    pub server_key: Option<PathBuf>,
    /// Drive cairn through etcd's gRPC API as well (the etcd target against
    /// cairn's client port), so both servers see the same gRPC load
    /// generator.
    #[arg(long, global = true)]
    pub grpc: bool,
}

impl GlobalArgs {
    /// The run these flags and `workload` describe.
    pub fn run_spec(&self, workload: &WorkloadCommand) -> Result<RunSpec, PerfError> {
        let keys = KeySpace::new(self.key_size, self.key_space_size, self.sequential_keys)?;
        let stop = match &self.duration {
            Some(text) => {
                let d = parse_duration(text)?;
                if d.is_zero() {
                    return Err(PerfError::config("--duration must be positive"));
                }
                Stop::Duration(d)
            }
            None => Stop::Total(self.total.unwrap_or(TOTAL_DEFAULT)),
        };
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err(PerfError::config("--rate must be 0 or a positive number"));
        }
        let warmup: Warmup = parse_warmup(&self.warmup)?;
        let (workload_kind, prefill) = workload.to_workload(self.clients)?;
        let mut spec = RunSpec {
            target: self.target,
            endpoints: self.endpoints.clone(),
            conns: self.conns,
            plan: Plan {
                workload: workload_kind,
                keys,
                value: value(self.val_size)?,
                shape: LoadShape {
                    clients: self.clients,
                    stop,
                    rate_per_sec: (self.rate > 0.0).then_some(self.rate),
                    warmup,
                },
            },
            prefill,
            check: None,
            target_leader: self.target_leader,
            server_pids: self.server_pid.clone(),
            watch: workload.watch_plan()?,
            access: Access::from_flags(
                self.cacert.clone(),
                self.cert.clone(),
                self.key.clone(),
                self.user.clone(),
            )?,
        };
        if let WorkloadCommand::Stm(args) = workload {
            spec.plan.keys = KeySpace::new(self.key_size, args.keys, false)?;
        }
        if let WorkloadCommand::WatchCatchup(_) = workload {
            spec.plan.keys.sequential = true;
        }
        if let WorkloadCommand::WatchLatency(_) = workload {
            // etcd's watch-latency: every watcher and every put on one key.
            spec.plan.keys = KeySpace::new(self.key_size, 1, true)?;
        }
        if let Some(watch) = &spec.watch {
            watch.validate(&spec.plan)?;
        }
        if let WorkloadCommand::CheckPerf(args) = workload {
            // The check fixes its own shape; only the duration may be
            // shortened (or lengthened) with --duration.
            let shape = &mut spec.plan.shape;
            shape.clients = args.load.clients();
            shape.rate_per_sec = Some(args.load.rate_per_sec());
            if self.duration.is_none() {
                shape.stop = Stop::Duration(Duration::from_secs(CHECK_DURATION_SECS));
            }
            spec.plan.keys = KeySpace::new(CHECK_KEY_SIZE, CHECK_KEY_SPACE_SIZE, false)?;
            spec.plan.value = value(CHECK_VAL_SIZE)?;
            spec.check = Some(args.load);
        }
        Ok(spec)
    }
}

impl WorkloadCommand {
    /// The workload and whether to fill the key space first.
    pub fn to_workload(&self, clients: usize) -> Result<(Workload, bool), PerfError> {
        match self {
            WorkloadCommand::Put
            | WorkloadCommand::CheckPerf(_)
            | WorkloadCommand::Watch(_)
            | WorkloadCommand::WatchLatency(_)
            | WorkloadCommand::WatchCatchup(_) => Ok((Workload::Put, false)),
            WorkloadCommand::TxnMixed(args) => Ok((args.to_workload()?, false)),
            WorkloadCommand::Stm(args) => Ok((args.to_workload()?, false)),
            WorkloadCommand::LeaseKeepalive(args) => Ok((args.to_workload(clients)?, false)),
            WorkloadCommand::Range(args) => {
                let consistency = match args.consistency.as_str() {
                    "l" | "L" => Consistency::Linearizable,
                    "s" | "S" => Consistency::Serializable,
                    other => {
                        return Err(PerfError::config(format!(
                            "unknown consistency {other:?} (use l or s)"
                        )))
                    }
                };
                if args.limit < 0 {
                    return Err(PerfError::config("--limit must not be negative"));
                }
                if args.key.is_none() && args.end.is_some() {
                    return Err(PerfError::config("a range end needs a key"));
                }
                Ok((
                    Workload::Range {
                        key: args.key.clone().map(Bytes::from),
                        range_end: args.end.clone().map(Bytes::from).unwrap_or_default(),
                        options: RangeOptions {
                            consistency,
                            limit: args.limit,
                            count_only: false,
                        },
                    },
                    args.prefill,
                ))
            }
            WorkloadCommand::TxnPut(args) => {
                if args.txn_ops == 0 || args.txn_ops > TXN_OPS_MAX {
                    return Err(PerfError::config(format!(
                        "--txn-ops must be between 1 and {TXN_OPS_MAX}"
                    )));
                }
                Ok((Workload::TxnPut { ops: args.txn_ops }, false))
            }
        }
    }
}

impl WorkloadCommand {
    /// The watch options of a watch workload.
    pub fn watch_plan(&self) -> Result<Option<WatchPlan>, PerfError> {
        Ok(match self {
            WorkloadCommand::Watch(args) => Some(args.to_plan()?),
            WorkloadCommand::WatchLatency(args) => Some(args.to_plan()?),
            WorkloadCommand::WatchCatchup(args) => Some(args.to_plan()),
            _ => None,
        })
    }
}

impl CompareArgs {
    pub fn compare_spec(&self, global: &GlobalArgs) -> Result<CompareSpec, PerfError> {
        if self.members == 0 || self.members > MEMBERS_MAX {
            return Err(PerfError::config(format!(
                "--members must be between 1 and {MEMBERS_MAX}"
            )));
        }
        let run = global.run_spec(&self.workload)?;
        let server_tls = match (&self.server_cert, &self.server_key) {
            (Some(cert), Some(key)) => Some(ServerTls {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(PerfError::config(
                    "--server-cert and --server-key go together",
                ))
            }
        };
        if server_tls.is_some() != run.access.tls.is_some() {
            return Err(PerfError::config(
                "TLS in compare needs both the servers' --server-cert/--server-key and \
                 the clients' --cacert",
            ));
        }
        Ok(CompareSpec {
            server_tls,
            run,
            etcd_bin: self.etcd_bin.clone(),
            cairn_bin: self.cairn_bin.clone(),
            data_dir_base: self.data_dir_base.clone(),
            members: self.members,
            cairn_grpc: self.grpc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn etcd_benchmark_command_lines_parse() {
        let cli = parse(&[
            "cairn-perf",
            "--endpoints=127.0.0.1:2379",
            "--target=etcd",
            "--conns=100",
            "--clients=1000",
            "put",
            "--key-size=8",
            "--sequential-keys",
            "--total=100000",
            "--val-size=256",
        ]);
        let Command::Workload(workload) = &cli.command else {
            panic!("expected a workload");
        };
        let spec = cli.global.run_spec(workload).unwrap();
        assert_eq!(spec.conns, 100);
        assert_eq!(spec.plan.shape.clients, 1000);
        assert_eq!(spec.plan.shape.stop, Stop::Total(100_000));
        assert_eq!(spec.plan.value.len(), 256);
        assert!(spec.plan.keys.sequential);
        assert_eq!(spec.plan.shape.rate_per_sec, None);
    }

    #[test]
    fn range_flags_and_compare_parse() {
        let cli = parse(&[
            "cairn-perf",
            "compare",
            "range",
            "--consistency=s",
            "--prefill",
            "--clients=10",
            "--key-space-size=1000",
            "--duration=5s",
            "--warmup=1s",
            "--rate=500",
        ]);
        let Command::Compare(args) = &cli.command else {
            panic!("expected compare");
        };
        let spec = args.compare_spec(&cli.global).unwrap();
        assert!(spec.run.prefill);
        assert_eq!(spec.run.plan.shape.rate_per_sec, Some(500.0));
        assert!(matches!(spec.run.plan.shape.warmup, Warmup::Duration(_)));
        let Workload::Range { options, key, .. } = &spec.run.plan.workload else {
            panic!("expected range");
        };
        assert_eq!(options.consistency, Consistency::Serializable);
        assert_eq!(key, &None);
    }

    #[test]
    fn check_perf_fixes_its_shape() {
        let cli = parse(&["cairn-perf", "--target=etcd", "check-perf", "--load=l"]);
        let Command::Workload(workload) = &cli.command else {
            panic!("expected a workload");
        };
        let spec = cli.global.run_spec(workload).unwrap();
        assert_eq!(spec.check, Some(CheckLoad::L));
        assert_eq!(spec.plan.shape.clients, 500);
        assert_eq!(spec.plan.shape.rate_per_sec, Some(8_000.0));
        assert_eq!(
            spec.plan.shape.stop,
            Stop::Duration(Duration::from_secs(60))
        );
        assert_eq!(spec.plan.keys.key_size, 256);
        assert_eq!(spec.plan.value.len(), 1_024);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Cli::try_parse_from(["cairn-perf", "put", "--total=5", "--duration=1s"]).is_err());
        let cli = parse(&["cairn-perf", "range", "--consistency=x"]);
        let Command::Workload(workload) = &cli.command else {
            panic!("expected a workload");
        };
        assert!(cli.global.run_spec(workload).is_err());
        let cli = parse(&["cairn-perf", "txn-put", "--txn-ops=1000"]);
        let Command::Workload(workload) = &cli.command else {
            panic!("expected a workload");
        };
        assert!(cli.global.run_spec(workload).is_err());
    }
}
