//! One run from start to summary: connect, optionally fill the key space,
//! drive the workload while watching the client's CPU, summarise.

use std::sync::Arc;
use std::time::Instant;

use crate::check::{verdict, CheckLoad};
use crate::config::{RunConfig, TargetKind};
use crate::cpu::{process_cpu_time, ClientCpu};
use crate::driver::{drive, LoadShape, Plan, Progress, Stop, Warmup};
use crate::error::PerfError;
use crate::keys::KeySpace;
use crate::progress::Indicator;
use crate::summary::Summary;
use crate::target::Target;
use crate::workload::Workload;

/// A run against a real system.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub target: TargetKind,
    pub endpoints: Vec<String>,
    pub conns: usize,
    pub plan: Plan,
    /// Write every key of the key space before measuring (for reads).
    pub prefill: bool,
    /// Judge the run as `check-perf` at this load.
    pub check: Option<CheckLoad>,
}

/// Connects to the target named in `spec` and runs it.
pub async fn run(spec: &RunSpec) -> Result<Summary, PerfError> {
    let mut summary = match spec.target {
        TargetKind::Etcd => {
            let conns = crate::etcd::connect(&spec.endpoints, spec.conns).await?;
            run_on(
                &conns,
                spec.target.name(),
                &spec.endpoints,
                &spec.plan,
                spec.prefill,
            )
            .await
        }
        TargetKind::Cairn => {
            let conns = crate::cairn::connect(&spec.endpoints, spec.conns).await?;
            run_on(
                &conns,
                spec.target.name(),
                &spec.endpoints,
                &spec.plan,
                spec.prefill,
            )
            .await
        }
    }?;
    summary.check = spec.check.map(|load| verdict(&summary, load));
    Ok(summary)
}

/// Runs `plan` over already open connections of any [`Target`].
/// `target_name` and `endpoints` only label the summary.
pub async fn run_on<T: Target>(
    conns: &[T],
    target_name: &str,
    endpoints: &[String],
    plan: &Plan,
    prefill: bool,
) -> Result<Summary, PerfError> {
    if prefill {
        fill_key_space(conns, plan).await?;
    }
    let progress = Arc::new(Progress::default());
    let indicator = Indicator::start(
        format!("{} against {target_name}", plan.workload.name()),
        Arc::clone(&progress),
        plan.shape.stop,
    );
    let cpu_before = process_cpu_time();
    let wall_start = Instant::now();
    let recording = drive(conns, plan, progress).await?;
    let wall = wall_start.elapsed();
    let cpu = match (cpu_before, process_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => std::time::Duration::ZERO,
    };
    indicator.finish();
    let client_cpu = ClientCpu::new(cpu, wall, recording.requests() + recording.warmup_requests);
    let config = RunConfig::describe(target_name, endpoints, conns.len(), plan, prefill);
    Ok(Summary::new(config, &recording, client_cpu))
}

/// Writes every key of the plan's key space once, with the plan's value, so
/// that reads find data. Not measured.
pub async fn fill_key_space<T: Target>(conns: &[T], plan: &Plan) -> Result<(), PerfError> {
    let keys = KeySpace::new(plan.keys.key_size, plan.keys.key_space_size, true)?;
    let fill = Plan {
        workload: Workload::Put,
        keys,
        value: plan.value.clone(),
        shape: LoadShape {
            clients: plan.shape.clients,
            stop: Stop::Total(keys.key_space_size),
            rate_per_sec: None,
            warmup: Warmup::None,
        },
    };
    let recording = drive(conns, &fill, Arc::new(Progress::default())).await?;
    let failures = recording.failures();
    if failures > 0 {
        let first = recording
            .errors
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "other errors".to_string());
        return Err(PerfError::Verify(format!(
            "filling the key space: {failures} of {} puts failed ({first})",
            keys.key_space_size
        )));
    }
    Ok(())
}
