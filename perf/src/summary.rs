//! The figures of one run, computed from a [`Recording`]: what the text and
//! JSON outputs print.

use std::collections::BTreeMap;

use crate::check::Verdict;
use crate::config::RunConfig;
use crate::cpu::ClientCpu;
use crate::limits::SUMMARY_HISTOGRAM_BUCKETS;
use crate::recorder::Recording;
use crate::server_usage::ServerUsage;

/// Percentiles reported in the latency distribution (etcd's list plus the
/// finer tail).
pub const PERCENTILES: [f64; 9] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99];

/// One bar of the response-time histogram: requests whose latency is at most
/// `upper_secs` and above the previous bar's bound.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bucket {
    pub upper_secs: f64,
    pub count: u64,
}

/// A latency below which `percent` of successful requests completed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Percentile {
    pub percent: f64,
    pub secs: f64,
}

/// A part of a run summarised on its own.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Section {
    pub name: String,
    pub summary: Summary,
}

/// One named figure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fact {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

impl Fact {
    pub fn new(name: &str, value: f64, unit: &str) -> Fact {
        Fact {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Every figure of a run, plus the configuration that produced it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub config: RunConfig,
    /// Seconds from the start of the first measured request to the end of
    /// the last.
    pub total_secs: f64,
    /// Measured requests sent: `successes + failures`.
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    /// Failures by kind (etcd's error text, or the transport's).
    pub errors: BTreeMap<String, u64>,
    /// Failures of kinds beyond the number counted separately.
    pub errors_other: u64,
    pub slowest_secs: f64,
    pub fastest_secs: f64,
    pub average_secs: f64,
    pub stddev_secs: f64,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    pub histogram: Vec<Bucket>,
    pub percentiles: Vec<Percentile>,
    /// The whole latency percentile curve, for plotting.
    pub percentile_curve: Vec<Percentile>,
    /// Successful requests completed in each whole second of the measured
    /// part.
    pub completions_per_sec: Vec<u64>,
    pub warmup_requests: u64,
    /// Successful range requests that found no key.
    pub empty_ranges: u64,
    pub client_cpu: ClientCpu,
    /// Attempts beyond the first (`stm` conflicts).
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u64,
    /// The same figures per kind of request (`txn-mixed`: reads, writes),
    /// or per phase (`watch`: creation, puts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
    /// Workload-specific figures (events expected and received, leases
    /// alive, server memory per watcher).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<Fact>,
    /// The server's CPU and memory, when its processes are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerUsage>,
    /// The pass/fail verdict of a `check-perf` run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Verdict>,
}

impl Summary {
    pub fn new(config: RunConfig, recording: &Recording, client_cpu: ClientCpu) -> Summary {
        let total_secs = match (recording.first_start, recording.last_end) {
            (Some(first), Some(last)) => last.saturating_duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        let successes = recording.successes;
        let (fastest_ns, slowest_ns, average_ns, stddev_ns) = if successes > 0 {
            let n = successes as f64;
            let mean = recording.latency_sum_ns as f64 / n;
            let variance = (recording.latency_sum_sq_ns as f64 / n - mean * mean).max(0.0);
            (
                recording.latency_min_ns as f64,
                recording.latency_max_ns as f64,
                mean,
                variance.sqrt(),
            )
        } else {
            (0.0, 0.0, 0.0, 0.0)
        };
        let requests_per_sec = if total_secs > 0.0 {
            successes as f64 / total_secs
        } else {
            0.0
        };
        let percentiles = if successes > 0 {
            PERCENTILES
                .iter()
                .map(|&percent| Percentile {
                    percent,
                    secs: ns_to_secs(recording.latency_ns.value_at_percentile(percent) as f64),
                })
                .collect()
        } else {
            Vec::new()
        };
        // Seconds are counted from the run's start; the measured part starts
        // after the warm-up, so leading seconds of warm-up are dropped.
        let completions_per_sec = recording
            .completions_per_sec
            .iter()
            .copied()
            .skip_while(|&n| n == 0)
            .collect();
        Summary {
            config: config.clone(),
            total_secs,
            requests: recording.requests(),
            successes,
            failures: recording.failures(),
            errors: recording.errors.clone(),
            errors_other: recording.errors_other,
            slowest_secs: ns_to_secs(slowest_ns),
            fastest_secs: ns_to_secs(fastest_ns),
            average_secs: ns_to_secs(average_ns),
            stddev_secs: ns_to_secs(stddev_ns),
            requests_per_sec,
            histogram: histogram(recording, fastest_ns, slowest_ns),
            percentiles,
            percentile_curve: percentile_curve(recording),
            completions_per_sec,
            warmup_requests: recording.warmup_requests,
            empty_ranges: recording.empty_ranges,
            client_cpu,
            retries: recording.retries,
            sections: recording
                .sections
                .iter()
                .map(|(name, part)| Section {
                    name: name.clone(),
                    summary: Summary::new(config.clone(), part, client_cpu),
                })
                .collect(),
            facts: Vec::new(),
            server: None,
            check: None,
        }
    }

    /// The value of the fact called `name`.
    pub fn fact(&self, name: &str) -> Option<f64> {
        self.facts.iter().find(|f| f.name == name).map(|f| f.value)
    }

    /// The latency below which `percent` of requests completed, if reported.
    pub fn percentile_secs(&self, percent: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|p| (p.percent - percent).abs() < 1e-9)
            .map(|p| p.secs)
    }
}

fn ns_to_secs(ns: f64) -> f64 {
    ns / 1e9
}

/// Equal-width buckets from the fastest to the slowest latency.
fn histogram(recording: &Recording, fastest_ns: f64, slowest_ns: f64) -> Vec<Bucket> {
    if recording.successes == 0 {
        return Vec::new();
    }
    let width_ns = (slowest_ns - fastest_ns) / SUMMARY_HISTOGRAM_BUCKETS as f64;
    let mut buckets: Vec<Bucket> = (0..SUMMARY_HISTOGRAM_BUCKETS)
        .map(|i| Bucket {
            upper_secs: ns_to_secs(fastest_ns + width_ns * (i + 1) as f64),
            count: 0,
        })
        .collect();
    for value in recording.latency_ns.iter_recorded() {
        // The histogram stores values rounded to its precision; the exact
        // extremes were kept aside, so clamp into the first and last bucket.
        let ns = value.value_iterated_to() as f64;
        let index = if width_ns > 0.0 {
            (((ns - fastest_ns) / width_ns).ceil() as isize - 1)
                .clamp(0, SUMMARY_HISTOGRAM_BUCKETS as isize - 1) as usize
        } else {
            SUMMARY_HISTOGRAM_BUCKETS - 1
        };
        buckets[index].count += value.count_at_value();
    }
    buckets
}

/// Points of the percentile curve, denser towards the tail (hdrhistogram's
/// quantile iteration halves the remaining distance at each step).
fn percentile_curve(recording: &Recording) -> Vec<Percentile> {
    if recording.successes == 0 {
        return Vec::new();
    }
    const TICKS_PER_HALF_DISTANCE: u32 = 5;
    let mut curve: Vec<Percentile> = recording
        .latency_ns
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| Percentile {
            percent: v.quantile_iterated_to() * 100.0,
            secs: ns_to_secs(v.value_iterated_to() as f64),
        })
        .collect();
    curve.dedup_by(|b, a| (a.percent - b.percent).abs() < 1e-12);
    curve
}
