//! `check-perf`: the equivalent of `etcdctl check perf --load=s|m|l|xl`:
//! 60 s of puts at a fixed rate (256-byte keys, 1 KiB values), passing when
//! the achieved throughput is at least 90% of the target rate, the slowest
//! request took at most 0.5 s and the latency's standard deviation is at most
//! 0.1 s. Unlike etcdctl, latencies are measured from each request's
//! scheduled time (the run is an open loop), so a server that falls behind
//! cannot hide it by slowing the client down.

use std::fmt::Write;

use crate::summary::Summary;

/// Seconds a check runs (etcdctl's fixed duration).
pub const CHECK_DURATION_SECS: u64 = 60;
/// Key and value sizes of the check's puts (etcdctl's).
pub const CHECK_KEY_SIZE: usize = 256;
pub const CHECK_VAL_SIZE: usize = 1_024;
/// Keys the check's puts are spread over.
pub const CHECK_KEY_SPACE_SIZE: u64 = 100_000;
/// Pass thresholds (etcdctl's).
pub const CHECK_THROUGHPUT_FRACTION_MIN: f64 = 0.9;
pub const CHECK_SLOWEST_SECS_MAX: f64 = 0.5;
pub const CHECK_STDDEV_SECS_MAX: f64 = 0.1;

/// The load levels of `etcdctl check perf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckLoad {
    S,
    M,
    L,
    Xl,
}

impl CheckLoad {
    /// The name etcdctl's `--load` takes.
    pub fn name(self) -> &'static str {
        match self {
            CheckLoad::S => "s",
            CheckLoad::M => "m",
            CheckLoad::L => "l",
            CheckLoad::Xl => "xl",
        }
    }

    /// Target puts per second.
    pub fn rate_per_sec(self) -> f64 {
        match self {
            CheckLoad::S => 150.0,
            CheckLoad::M => 1_000.0,
            CheckLoad::L => 8_000.0,
            CheckLoad::Xl => 15_000.0,
        }
    }

    /// Concurrent clients.
    pub fn clients(self) -> usize {
        match self {
            CheckLoad::S => 50,
            CheckLoad::M => 200,
            CheckLoad::L => 500,
            CheckLoad::Xl => 1_000,
        }
    }
}

/// One criterion of the check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Criterion {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    pub load: CheckLoad,
    pub passed: bool,
    pub criteria: Vec<Criterion>,
}

/// Judges a finished check run.
pub fn verdict(summary: &Summary, load: CheckLoad) -> Verdict {
    let target = load.rate_per_sec();
    let criteria = vec![
        Criterion {
            name: "throughput".to_string(),
            passed: summary.requests_per_sec >= CHECK_THROUGHPUT_FRACTION_MIN * target,
            detail: format!(
                "{:.0} puts/s of a target {target:.0} (at least {:.0}% needed)",
                summary.requests_per_sec,
                CHECK_THROUGHPUT_FRACTION_MIN * 100.0
            ),
        },
        Criterion {
            name: "slowest request".to_string(),
            passed: summary.slowest_secs <= CHECK_SLOWEST_SECS_MAX,
            detail: format!(
                "{:.6} s (at most {CHECK_SLOWEST_SECS_MAX} s)",
                summary.slowest_secs
            ),
        },
        Criterion {
            name: "stddev".to_string(),
            passed: summary.stddev_secs <= CHECK_STDDEV_SECS_MAX,
            detail: format!(
                "{:.6} s (at most {CHECK_STDDEV_SECS_MAX} s)",
                summary.stddev_secs
            ),
        },
        Criterion {
            name: "errors".to_string(),
            passed: summary.failures == 0,
            detail: format!("{} failed requests", summary.failures),
        },
    ];
    Verdict {
        load,
        passed: criteria.iter().all(|c| c.passed),
        criteria,
    }
}

/// The verdict as text, one line per criterion, like etcdctl's.
pub fn render_verdict(verdict: &Verdict) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "check-perf --load {}:", verdict.load.name());
    for c in &verdict.criteria {
        let mark = if c.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "  {mark}: {}: {}", c.name, c.detail);
    }
    let _ = writeln!(out, "{}", if verdict.passed { "PASS" } else { "FAIL" });
    out
}
