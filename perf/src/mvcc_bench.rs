//! `cairn-perf mvcc put`: puts straight into cairn's MVCC index
//! ([`cairn_engine::mvcc::Mvcc`]), with no network, no Raft and no disk —
//! the engine-level figure etcd's `benchmark mvcc put` gives for its own
//! store. Keys are random bytes of `--key-size`, generated before timing
//! starts; each put (or txn of `--txn-ops` puts) is timed on its own.

use std::time::Instant;

use bytes::Bytes;
use cairn_engine::mvcc::{Mvcc, MvccConfig, PutRequest, RequestOp, TxnRequest};

use crate::config::RunConfig;
use crate::cpu::{process_cpu_time, ClientCpu};
use crate::driver::{LoadShape, Plan, Stop, Warmup};
use crate::error::PerfError;
use crate::keys::{value, KeySpace, SplitMix64};
use crate::limits::{KEY_SIZE_MAX, MVCC_PUTS_MAX};
use crate::recorder::Recorder;
use crate::summary::{Fact, Summary};
use crate::workload::Workload;

/// One `mvcc put` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MvccPutSpec {
    /// Puts, or txns with `txn_ops` set.
    pub total: u64,
    pub key_size: usize,
    pub val_size: usize,
    /// Puts per txn; `None` = plain puts.
    pub txn_ops: Option<usize>,
}

/// Runs the spec and summarises it (a "request" is one put or one txn).
pub fn run_mvcc_put(spec: MvccPutSpec) -> Result<Summary, PerfError> {
    let ops = spec.txn_ops.unwrap_or(1);
    let config_ops_max = MvccConfig::default().txn_ops_max;
    if ops == 0 || ops > config_ops_max {
        return Err(PerfError::config(format!(
            "--txn-ops must be between 1 and {config_ops_max}"
        )));
    }
    let puts = spec.total.saturating_mul(ops as u64);
    if spec.total == 0 || puts > MVCC_PUTS_MAX {
        return Err(PerfError::config(format!(
            "--total × --txn-ops must be between 1 and {MVCC_PUTS_MAX}"
        )));
    }
    if spec.key_size == 0 || spec.key_size > KEY_SIZE_MAX {
        return Err(PerfError::config(format!(
            "--key-size must be between 1 and {KEY_SIZE_MAX}"
        )));
    }
    let value = value(spec.val_size)?;
    let mut rng = SplitMix64::new(0x6d76_6363);
    let keys: Vec<Vec<u8>> = (0..puts)
        .map(|_| {
            (0..spec.key_size)
                .map(|_| (rng.next_u64() & 0xff) as u8)
                .collect()
        })
        .collect();

    let mut mvcc = Mvcc::new(MvccConfig::default());
    let cpu_before = process_cpu_time();
    let start = Instant::now();
    let recorder = Recorder::new(start);
    for chunk in keys.chunks(ops) {
        let begin = Instant::now();
        let result = match spec.txn_ops {
            None => mvcc
                .put(&put_request(&chunk[0], &value))
                .map(|applied| applied.events.len()),
            Some(_) => {
                let txn = TxnRequest {
                    compare: Vec::new(),
                    success: chunk
                        .iter()
                        .map(|key| RequestOp::Put(put_request(key, &value)))
                        .collect(),
                    failure: Vec::new(),
                };
                mvcc.txn(&txn).map(|applied| applied.events.len())
            }
        };
        let end = Instant::now();
        match result {
            Ok(_) => recorder.record(0, begin, end, None),
            Err(e) => recorder.record(0, begin, end, Some(&e.to_string())),
        }
    }
    let wall = start.elapsed();
    let cpu = match (cpu_before, process_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => wall,
    };
    let recording = recorder.finish();
    let plan = Plan {
        workload: match spec.txn_ops {
            None => Workload::Put,
            Some(ops) => Workload::TxnPut { ops },
        },
        keys: KeySpace::new(spec.key_size.max(20), 1, false)?,
        value,
        shape: LoadShape {
            clients: 1,
            stop: Stop::Total(spec.total),
            rate_per_sec: None,
            warmup: Warmup::None,
        },
    };
    let mut config = RunConfig::describe("cairn-engine mvcc", &[], 0, &plan, false);
    config.workload = "mvcc put".to_string();
    config.key_size = spec.key_size;
    config.key_space_size = puts;
    let client_cpu = ClientCpu::new(cpu, wall, recording.requests());
    let mut summary = Summary::new(config, &recording, client_cpu);
    // The harness is the engine here: its CPU is the figure, not a warning.
    summary.client_cpu.client_bound = false;
    let puts_per_sec = if summary.total_secs > 0.0 {
        (recording.successes * ops as u64) as f64 / summary.total_secs
    } else {
        0.0
    };
    summary.facts.push(Fact::new("Puts/sec", puts_per_sec, ""));
    summary.facts.push(Fact::new(
        "Revision after the run",
        mvcc_revision(&mvcc) as f64,
        "",
    ));
    Ok(summary)
}

fn put_request<'a>(key: &'a [u8], value: &'a Bytes) -> PutRequest<'a> {
    PutRequest {
        key,
        value,
        ..PutRequest::default()
    }
}

fn mvcc_revision(mvcc: &Mvcc) -> i64 {
    mvcc.current_revision()
}
