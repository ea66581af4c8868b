//! The exact configuration of a run, as recorded in the JSON output, and the
//! parsing of durations given on the command line.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::driver::{Plan, Stop, Warmup};
use crate::error::PerfError;
use crate::target::Consistency;
use crate::workload::Workload;

/// Which system a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// cairn, through its native protocol (cairn-client).
    Cairn,
    /// Any etcd v3 endpoint, through gRPC.
    Etcd,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Cairn => "cairn",
            TargetKind::Etcd => "etcd",
        }
    }
}

/// Everything needed to repeat a run, flattened for the JSON output.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunConfig {
    /// `cairn-perf <version>`.
    pub harness: String,
    pub target: String,
    pub endpoints: Vec<String>,
    pub workload: String,
    pub conns: usize,
    pub clients: usize,
    pub total: Option<u64>,
    pub duration_secs: Option<f64>,
    /// Requests per second (open loop), or none for a closed loop.
    pub rate_per_sec: Option<f64>,
    pub warmup_requests: Option<u64>,
    pub warmup_secs: Option<f64>,
    pub key_size: usize,
    pub val_size: usize,
    pub key_space_size: u64,
    pub sequential_keys: bool,
    /// The fixed key a range workload reads, if one was given.
    pub range_key: Option<String>,
    pub range_end: Option<String>,
    pub consistency: Option<Consistency>,
    pub limit: Option<i64>,
    /// Whether the key space was written before a range run.
    pub prefill: bool,
    pub txn_ops: Option<usize>,
    /// Options of the workloads beyond etcd's `put`/`range`/`txn-put`
    /// (`rw_ratio`, `keys_per_txn`, `leases`, `streams`, ...), as given.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub workload_options: BTreeMap<String, String>,
    /// The command line that started the run.
    pub command_line: Vec<String>,
}

impl RunConfig {
    pub fn describe(
        target: &str,
        endpoints: &[String],
        conns: usize,
        plan: &Plan,
        prefill: bool,
    ) -> RunConfig {
        let shape = &plan.shape;
        let (total, duration_secs) = match shape.stop {
            Stop::Total(n) => (Some(n), None),
            Stop::Duration(d) => (None, Some(d.as_secs_f64())),
        };
        let (warmup_requests, warmup_secs) = match shape.warmup {
            Warmup::None => (None, None),
            Warmup::Requests(n) => (Some(n), None),
            Warmup::Duration(d) => (None, Some(d.as_secs_f64())),
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (range_key, range_end, consistency, limit) = match &plan.workload {
            Workload::Range {
                key,
                range_end,
                options,
            } => (
                key.as_deref().map(text),
                (!range_end.is_empty()).then(|| text(range_end)),
                Some(options.consistency),
                Some(options.limit),
            ),
            _ => (None, None, None, None),
        };
        let txn_ops = match plan.workload {
            Workload::TxnPut { ops } => Some(ops),
            _ => None,
        };
        let mut workload_options = BTreeMap::new();
        let mut option = |name: &str, value: String| {
            workload_options.insert(name.to_string(), value);
        };
        match &plan.workload {
            Workload::TxnMixed {
                rw_ratio,
                key,
                range_end,
                options,
            } => {
                option("rw_ratio", rw_ratio.to_string());
                option("read_key", text(key));
                option("read_range_end", text(range_end));
                option("limit", options.limit.to_string());
                option(
                    "consistency",
                    match options.consistency {
                        Consistency::Linearizable => "l".to_string(),
                        Consistency::Serializable => "s".to_string(),
                    },
                );
            }
            Workload::Stm {
                keys_per_txn,
                write_percent,
                isolation,
            } => {
                option("keys_per_txn", keys_per_txn.to_string());
                option("txn_wr_percent", write_percent.to_string());
                option("isolation", format!("{isolation:?}"));
            }
            Workload::LeaseKeepAlive {
                leases, ttl_secs, ..
            } => {
                option("leases", leases.to_string());
                option("lease_ttl_secs", ttl_secs.to_string());
            }
            Workload::Put | Workload::Range { .. } | Workload::TxnPut { .. } => {}
        }
        RunConfig {
            harness: format!("cairn-perf {}", env!("CARGO_PKG_VERSION")),
            target: target.to_string(),
            endpoints: endpoints.to_vec(),
            workload: plan.workload.name().to_string(),
            conns,
            clients: shape.clients,
            total,
            duration_secs,
            rate_per_sec: shape.rate_per_sec,
            warmup_requests,
            warmup_secs,
            key_size: plan.keys.key_size,
            val_size: plan.value.len(),
            key_space_size: plan.keys.key_space_size,
            sequential_keys: plan.keys.sequential,
            range_key,
            range_end,
            consistency,
            limit,
            prefill,
            txn_ops,
            workload_options,
            command_line: crate::access::redact_command_line(std::env::args()),
        }
    }
}

/// Parses `1.5s`, `250ms`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, PerfError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| PerfError::config(format!("invalid duration {text:?}")))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(PerfError::config(format!(
                "invalid duration {text:?} (use a unit of ms, s, m or h)"
            )))
        }
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| PerfError::config(format!("invalid duration {text:?}")))
}

/// Parses `--warmup`: a bare integer is a number of requests, anything with
/// a unit is a duration (`5s`).
pub fn parse_warmup(text: &str) -> Result<Warmup, PerfError> {
    let text = text.trim();
    if let Ok(requests) = text.parse::<u64>() {
        return Ok(if requests == 0 {
            Warmup::None
        } else {
            Warmup::Requests(requests)
        });
    }
    let duration = parse_duration(text)?;
    Ok(if duration.is_zero() {
        Warmup::None
    } else {
        Warmup::Duration(duration)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_etcd_style_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn warmup_is_requests_without_unit_and_time_with_one() {
        assert_eq!(parse_warmup("1000").unwrap(), Warmup::Requests(1000));
        assert_eq!(
            parse_warmup("2s").unwrap(),
            Warmup::Duration(Duration::from_secs(2))
        );
        assert_eq!(parse_warmup("0").unwrap(), Warmup::None);
    }
}
