//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_perf::compare::etcd_answers;
use cairn_perf::driver::{LoadShape, Plan, Stop, Warmup};
use cairn_perf::keys::{value, KeySpace};
use cairn_perf::server::{find_program, LocalServer, ServerKind};
use cairn_perf::target::{OpError, RangeOptions, RangeResult, Target};
use cairn_perf::workload::Workload;

/// A single-member etcd on free loopback ports, or `None` (with a note on
/// standard error) when no `etcd` binary is installed.
pub async fn start_etcd() -> Option<LocalServer> {
    let Some(program) = find_program(None, "etcd", &[]) else {
        eprintln!(
            "note: skipping: no `etcd` on PATH (install Debian's etcd-server to run this test)"
        );
        return None;
    };
    let mut server = LocalServer::spawn(ServerKind::Etcd, &program, None).expect("etcd starts");
    server
        .wait_ready(etcd_answers)
        .await
        .expect("etcd becomes ready");
    Some(server)
}

pub fn plan(workload: Workload, keys: KeySpace, val_size: usize, shape: LoadShape) -> Plan {
    Plan {
        workload,
        keys,
        value: value(val_size).unwrap(),
        shape,
    }
}

pub fn closed(clients: usize, total: u64) -> LoadShape {
    LoadShape {
        clients,
        stop: Stop::Total(total),
        rate_per_sec: None,
        warmup: Warmup::None,
    }
}

/// An in-process server: answers at once, except that it can stall every
/// request for a while (as a whole server pausing would) starting at one
/// chosen request, and can fail every n-th request.
#[derive(Clone, Default)]
pub struct FakeTarget {
    pub calls: Arc<AtomicU64>,
    /// The request number that starts the stall, and the stall's length.
    pub stall: Option<(u64, Duration)>,
    stalled_until: Arc<Mutex<Option<Instant>>>,
    /// Fail every request whose number is a multiple of this.
    pub fail_every: Option<u64>,
}

impl FakeTarget {
    pub fn stalling_once(at: u64, length: Duration) -> FakeTarget {
        FakeTarget {
            stall: Some((at, length)),
            ..FakeTarget::default()
        }
    }

    pub fn failing_every(n: u64) -> FakeTarget {
        FakeTarget {
            fail_every: Some(n),
            ..FakeTarget::default()
        }
    }

    async fn serve(&self) -> Result<(), OpError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let until = {
            let mut stalled_until = self.stalled_until.lock().unwrap();
            if let Some((at, length)) = self.stall {
                if n == at {
                    *stalled_until = Some(Instant::now() + length);
                }
            }
            *stalled_until
        };
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
        match self.fail_every {
            Some(every) if n % every == 0 => Err(OpError::new("etcdserver: too many requests")),
            _ => Ok(()),
        }
    }
}

impl Target for FakeTarget {
    async fn put(&self, _key: Bytes, _value: Bytes) -> Result<(), OpError> {
        self.serve().await
    }

    async fn range(&self, _: Bytes, _: Bytes, _: RangeOptions) -> Result<RangeResult, OpError> {
        self.serve().await.map(|()| RangeResult::default())
    }

    async fn txn_put(&self, _puts: Vec<(Bytes, Bytes)>) -> Result<(), OpError> {
        self.serve().await
    }
}

/// The `cairn` server binary of this build (`target/<profile>/cairn`).
pub fn cairn_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-… → target/<profile>/cairn
    let profile_dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let bin = profile_dir.join("cairn");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build --bin cairn`; scripts/test does)",
        bin.display()
    );
    bin
}

/// A single-member cairn on free loopback ports, answering reads.
pub async fn start_cairn() -> LocalServer {
    let mut server =
        LocalServer::spawn(ServerKind::Cairn, &cairn_bin(), None).expect("cairn starts");
    server
        .wait_ready(cairn_perf::cairn::answers)
        .await
        .expect("cairn becomes ready");
    server
}

/// Parses a `cairn-perf` command line into the run it describes, aimed at
/// `endpoint`.
pub fn spec_for(endpoint: &str, args: &[&str]) -> cairn_perf::run::RunSpec {
    use cairn_perf::cli::{Cli, Command};
    use clap::Parser;
    let mut line = vec!["cairn-perf".to_string(), format!("--endpoints={endpoint}")];
    line.extend(args.iter().map(|a| a.to_string()));
    let cli = Cli::try_parse_from(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let Command::Workload(workload) = &cli.command else {
        panic!("expected a workload: {line:?}");
    };
    cli.global.run_spec(workload).unwrap()
}
