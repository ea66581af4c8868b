//! The command-line options of the workloads beyond `put`, `range` and
//! `txn-put`, with etcd's benchmark tool's flag names and defaults, and
//! their conversion into a [`Workload`] or a [`WatchPlan`].

use std::sync::Arc;

use bytes::Bytes;
use clap::Args;

use crate::error::PerfError;
use crate::limits::{LEASES_MAX, STM_KEYS_PER_TXN_MAX};
use crate::target::{Consistency, RangeOptions};
use crate::watch::bench::{WatchKind, WatchPlan};
use crate::workload::{Isolation, Workload};

/// Parses etcd's `--consistency l|s`.
pub fn parse_consistency(text: &str) -> Result<Consistency, PerfError> {
    match text {
        "l" | "L" => Ok(Consistency::Linearizable),
        "s" | "S" => Ok(Consistency::Serializable),
        other => Err(PerfError::config(format!(
            "unknown consistency {other:?} (use l or s)"
        ))),
    }
}

#[derive(Debug, Clone, Args)]
pub struct TxnMixedArgs {
    /// Reads per write (a request is a read with probability r / (1 + r)).
    #[arg(long, default_value_t = 1.0)]
    pub rw_ratio: f64,
    /// l (linearizable) or s (serializable) reads.
    #[arg(long, default_value = "l")]
    pub consistency: String,
    /// Most keys one read returns.
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    /// Reads cover [first key, END) instead of every key.
    #[arg(long)]
    pub end_key: Option<String>,
}

impl TxnMixedArgs {
    pub fn to_workload(&self) -> Result<Workload, PerfError> {
        if !(self.rw_ratio.is_finite() && self.rw_ratio >= 0.0) {
            return Err(PerfError::config(
                "--rw-ratio must be 0 or a positive number",
            ));
        }
        if self.limit < 0 {
            return Err(PerfError::config("--limit must not be negative"));
        }
        Ok(Workload::TxnMixed {
            rw_ratio: self.rw_ratio,
            // "\0" to "\0": every key (etcd's tool reads the whole key
            // space with its limit).
            key: Bytes::from_static(b"\0"),
            range_end: self
                .end_key
                .clone()
                .map_or(Bytes::from_static(b"\0"), Bytes::from),
            options: RangeOptions {
                consistency: parse_consistency(&self.consistency)?,
                limit: self.limit,
                count_only: false,
            },
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct StmArgs {
    /// Distinct keys the transactions use (the key space).
    #[arg(long, default_value_t = 1)]
    pub keys: u64,
    /// Keys read by each transaction.
    #[arg(long, default_value_t = 1)]
    pub keys_per_txn: usize,
    /// Percentage of the keys read that each transaction overwrites.
    #[arg(long, default_value_t = 50)]
    pub txn_wr_percent: u32,
    /// c (read committed: no check at commit), or r, s, ss (the commit
    /// compares the revision of every key read).
    #[arg(long, default_value = "r")]
    pub isolation: String,
}

impl StmArgs {
    pub fn to_workload(&self) -> Result<Workload, PerfError> {
        if self.keys == 0 {
            return Err(PerfError::config("--keys must be at least 1"));
        }
        let most = STM_KEYS_PER_TXN_MAX.min(usize::try_from(self.keys).unwrap_or(usize::MAX));
        if self.keys_per_txn == 0 || self.keys_per_txn > most {
            return Err(PerfError::config(format!(
                "--keys-per-txn must be between 1 and {most} (at most --keys and {STM_KEYS_PER_TXN_MAX})"
            )));
        }
        if self.txn_wr_percent > 100 {
            return Err(PerfError::config(
                "--txn-wr-percent must be between 0 and 100",
            ));
        }
        let isolation = match self.isolation.as_str() {
            "c" => Isolation::ReadCommitted,
            "r" | "s" | "ss" => Isolation::Serializable,
            other => {
                return Err(PerfError::config(format!(
                    "unknown isolation {other:?} (use c, r, s or ss)"
                )))
            }
        };
        Ok(Workload::Stm {
            keys_per_txn: self.keys_per_txn,
            write_percent: self.txn_wr_percent,
            isolation,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct LeaseKeepAliveArgs {
    /// Leases kept alive; request n renews lease n mod N [default: one per
    /// client, as etcd's tool].
    #[arg(long)]
    pub leases: Option<u64>,
    /// TTL the leases are granted with, in seconds.
    #[arg(long, default_value_t = 100)]
    pub ttl: i64,
}

impl LeaseKeepAliveArgs {
    pub fn to_workload(&self, clients: usize) -> Result<Workload, PerfError> {
        let leases = self.leases.unwrap_or(clients as u64);
        if leases == 0 || leases > LEASES_MAX {
            return Err(PerfError::config(format!(
                "--leases must be between 1 and {LEASES_MAX}"
            )));
        }
        if self.ttl <= 0 {
            return Err(PerfError::config("--ttl must be positive"));
        }
        Ok(Workload::LeaseKeepAlive {
            leases,
            ttl_secs: self.ttl,
            ids: Arc::new(Vec::new()),
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Watch streams, spread round-robin over the connections.
    #[arg(long, default_value_t = 10)]
    pub streams: usize,
    /// Watchers created on each stream.
    #[arg(long, default_value_t = 100)]
    pub watch_per_stream: usize,
    /// Every watcher watches the whole key space instead of one key.
    #[arg(long)]
    pub prefix: bool,
    /// Watchers ask for the previous value with each event.
    #[arg(long)]
    pub prev_kv: bool,
    /// Puts after the watchers are created.
    #[arg(long, default_value_t = 1000)]
    pub put_total: u64,
    /// Puts per second (open loop); 0 = as fast as --clients go.
    #[arg(long, default_value_t = 0.0)]
    pub put_rate: f64,
}

#[derive(Debug, Clone, Args)]
pub struct WatchLatencyArgs {
    /// Watch streams, spread round-robin over the connections.
    #[arg(long, default_value_t = 10)]
    pub streams: usize,
    /// Watchers on each stream, all on the same key.
    #[arg(long, default_value_t = 10)]
    pub watchers_per_stream: usize,
    /// Watchers ask for the previous value with each event.
    #[arg(long)]
    pub prevkv: bool,
    /// Puts to the watched key.
    #[arg(long, default_value_t = 1000)]
    pub put_total: u64,
    /// Puts per second (open loop).
    #[arg(long, default_value_t = 100.0)]
    pub put_rate: f64,
}

#[derive(Debug, Clone, Args)]
pub struct WatchCatchUpArgs {
    /// Revisions written before the watchers start at the first of them.
    #[arg(long, default_value_t = 100_000)]
    pub revisions: u64,
    /// Watch streams.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Watchers on each stream, each over the whole key space.
    #[arg(long, default_value_t = 1)]
    pub watch_per_stream: usize,
}

fn put_rate(rate: f64) -> Result<Option<f64>, PerfError> {
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(PerfError::config(
            "--put-rate must be 0 or a positive number",
        ));
    }
    Ok((rate > 0.0).then_some(rate))
}

impl WatchArgs {
    pub fn to_plan(&self) -> Result<WatchPlan, PerfError> {
        Ok(WatchPlan {
            kind: WatchKind::Watch,
            streams: self.streams,
            watchers_per_stream: self.watch_per_stream,
            prefix: self.prefix,
            prev_kv: self.prev_kv,
            put_total: self.put_total,
            put_rate: put_rate(self.put_rate)?,
            catch_up_revisions: 0,
        })
    }
}

impl WatchLatencyArgs {
    pub fn to_plan(&self) -> Result<WatchPlan, PerfError> {
        Ok(WatchPlan {
            kind: WatchKind::Latency,
            streams: self.streams,
            watchers_per_stream: self.watchers_per_stream,
            prefix: false,
            prev_kv: self.prevkv,
            put_total: self.put_total,
            put_rate: put_rate(self.put_rate)?,
            catch_up_revisions: 0,
        })
    }
}

impl WatchCatchUpArgs {
    pub fn to_plan(&self) -> WatchPlan {
        WatchPlan {
            kind: WatchKind::CatchUp,
            streams: self.streams,
            watchers_per_stream: self.watch_per_stream,
            prefix: true,
            prev_kv: false,
            put_total: 0,
            put_rate: None,
            catch_up_revisions: self.revisions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stm_refuses_more_keys_per_txn_than_keys() {
        let args = StmArgs {
            keys: 2,
            keys_per_txn: 3,
            txn_wr_percent: 50,
            isolation: "s".to_string(),
        };
        assert!(args.to_workload().is_err());
        let args = StmArgs {
            keys_per_txn: 2,
            ..args
        };
        assert_eq!(
            args.to_workload().unwrap(),
            Workload::Stm {
                keys_per_txn: 2,
                write_percent: 50,
                isolation: Isolation::Serializable,
            }
        );
    }

    #[test]
    fn lease_keepalive_defaults_to_one_lease_per_client() {
        let args = LeaseKeepAliveArgs {
            leases: None,
            ttl: 100,
        };
        let Workload::LeaseKeepAlive { leases, .. } = args.to_workload(7).unwrap() else {
            panic!("expected lease-keepalive");
        };
        assert_eq!(leases, 7);
        assert!(parse_consistency("x").is_err());
    }
}
