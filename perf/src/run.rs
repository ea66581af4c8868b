//! One run from start to summary: connect, optionally fill the key space,
//! drive the workload while watching the client's CPU, summarise.

use std::sync::Arc;
use std::time::Instant;

use crate::access::Access;
use crate::check::{verdict, CheckLoad};
use crate::config::{RunConfig, TargetKind};
use crate::cpu::{process_cpu_time, ClientCpu};
use crate::driver::{drive, LoadShape, Plan, Progress, Stop, Warmup};
use crate::error::PerfError;
use crate::keys::KeySpace;
use crate::leader;
pub use crate::leader::find_leader;
use crate::limits::PREFILL_CLIENTS_MIN;
use crate::progress::Indicator;
use crate::server_usage::ServerProbe;
use crate::summary::{Fact, Summary};
use crate::target::Target;
use crate::watch::bench::WatchPlan;
use crate::watch::WatchTarget;
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
    /// Send everything to the leader only (`--target-leader`): the
    /// endpoints are asked for their status and only the leader's is used.
    pub target_leader: bool,
    /// Server processes on this machine whose CPU and memory the summary
    /// reports (`--server-pid`; `compare` fills in its own servers).
    pub server_pids: Vec<u32>,
    /// A watch workload: the plan's puts are what the watchers see.
    pub watch: Option<WatchPlan>,
    /// TLS and the user every connection logs in as.
    pub access: Access,
}

/// Connects to the target named in `spec` and runs it.
///
/// With `--target-leader` every connection goes to the leader. When the
/// connections are spread over several endpoints, each endpoint is asked
/// for its status first, and the summary tells how many connections reached
/// the leader (`Connections to the leader`): with fewer connections than
/// members, which member a run reaches decides what it measures.
pub async fn run(spec: &RunSpec) -> Result<Summary, PerfError> {
    let (endpoints, at_leader) = if spec.target_leader {
        let leader = find_leader(spec.target, &spec.endpoints, &spec.access).await?;
        (vec![leader], Some(spec.conns))
    } else if spec.endpoints.len() > 1 {
        let roles = leader::roles(spec.target, &spec.endpoints, &spec.access).await;
        (
            spec.endpoints.clone(),
            leader::conns_at_leader(&roles, spec.conns),
        )
    } else {
        (spec.endpoints.clone(), None)
    };
    let mut summary = match spec.target {
        TargetKind::Etcd => {
            let conns = crate::etcd::connect_with(&endpoints, spec.conns, &spec.access).await?;
            run_any(&conns, spec, &endpoints).await
        }
        TargetKind::Cairn => {
            let conns = crate::cairn::connect_with(&endpoints, spec.conns, &spec.access).await?;
            run_any(&conns, spec, &endpoints).await
        }
    }?;
    summary.check = spec.check.map(|load| verdict(&summary, load));
    if let Some(at_leader) = at_leader {
        summary
            .facts
            .push(Fact::new(CONNS_AT_LEADER_FACT, at_leader as f64, ""));
    }
    Ok(summary)
}

/// The summary's fact counting the connections that reached the leader.
pub const CONNS_AT_LEADER_FACT: &str = "Connections to the leader";

async fn run_any<T: WatchTarget>(
    conns: &[T],
    spec: &RunSpec,
    endpoints: &[String],
) -> Result<Summary, PerfError> {
    let name = spec.target.name();
    match &spec.watch {
        Some(watch) => {
            crate::watch::bench::run_watch(
                conns,
                name,
                endpoints,
                &spec.plan,
                watch,
                &spec.server_pids,
            )
            .await
        }
        None => {
            run_on_with(
                conns,
                name,
                endpoints,
                &spec.plan,
                spec.prefill,
                &spec.server_pids,
            )
            .await
        }
    }
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
    run_on_with(conns, target_name, endpoints, plan, prefill, &[]).await
}

/// [`run_on`], also reporting the CPU and memory of the server processes
/// `server_pids` over the measured run.
pub async fn run_on_with<T: Target>(
    conns: &[T],
    target_name: &str,
    endpoints: &[String],
    plan: &Plan,
    prefill: bool,
    server_pids: &[u32],
) -> Result<Summary, PerfError> {
    if prefill {
        fill_key_space(conns, plan).await?;
    }
    let prepared = prepare(conns, plan).await?;
    let plan = &prepared;
    let probe = ServerProbe::start(server_pids);
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
    let mut summary = Summary::new(config, &recording, client_cpu);
    summary.server = probe.and_then(|p| p.finish(recording.requests()));
    if let Workload::LeaseKeepAlive { ids, .. } = &plan.workload {
        let alive = leases_alive(conns, ids).await?;
        summary
            .facts
            .push(Fact::new("Leases", ids.len() as f64, ""));
        summary
            .facts
            .push(Fact::new("Leases alive after the run", alive as f64, ""));
    }
    Ok(summary)
}

/// What must exist before the first request: the leases of
/// `lease-keepalive`, granted over all connections at once (not measured).
async fn prepare<T: Target>(conns: &[T], plan: &Plan) -> Result<Plan, PerfError> {
    let Workload::LeaseKeepAlive {
        leases, ttl_secs, ..
    } = &plan.workload
    else {
        return Ok(plan.clone());
    };
    let (leases, ttl_secs) = (*leases, *ttl_secs);
    let chunks = split(leases, conns.len());
    let mut tasks = tokio::task::JoinSet::new();
    for (conn, count) in conns.iter().zip(chunks) {
        let conn = conn.clone();
        tasks.spawn(async move {
            let mut ids = Vec::with_capacity(count as usize);
            for _ in 0..count {
                ids.push(conn.lease_grant(ttl_secs).await?);
            }
            Ok::<_, crate::target::OpError>(ids)
        });
    }
    let mut ids = Vec::with_capacity(leases as usize);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(granted)) => ids.extend(granted),
            Ok(Err(e)) => {
                return Err(PerfError::Verify(format!(
                    "granting {leases} leases: {}",
                    e.kind
                )))
            }
            Err(e) => panic!("a lease-granting task failed: {e}"),
        }
    }
    let mut plan = plan.clone();
    plan.workload = Workload::LeaseKeepAlive {
        leases,
        ttl_secs,
        ids: Arc::new(ids),
    };
    Ok(plan)
}

/// `total` split into `parts` nearly equal counts.
fn split(total: u64, parts: usize) -> Vec<u64> {
    let parts_u64 = parts as u64;
    (0..parts_u64)
        .map(|i| total / parts_u64 + u64::from(i < total % parts_u64))
        .collect()
}

/// How many of `ids` the server still holds with time left.
async fn leases_alive<T: Target>(conns: &[T], ids: &Arc<Vec<i64>>) -> Result<u64, PerfError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.iter().enumerate() {
        let conn = conn.clone();
        let ids = Arc::clone(ids);
        let stride = conns.len();
        tasks.spawn(async move {
            let mut alive = 0u64;
            for id in ids.iter().skip(i).step_by(stride) {
                if conn.lease_ttl(*id).await? > 0 {
                    alive += 1;
                }
            }
            Ok::<_, crate::target::OpError>(alive)
        });
    }
    let mut alive = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(n)) => alive += n,
            Ok(Err(e)) => {
                return Err(PerfError::Verify(format!(
                    "checking the leases after the run: {}",
                    e.kind
                )))
            }
            Err(e) => panic!("a lease-checking task failed: {e}"),
        }
    }
    Ok(alive)
}

/// Writes every key of the plan's key space once, with the plan's value, so
/// that reads find data, from at least [`PREFILL_CLIENTS_MIN`] clients over
/// the run's connections. Not measured.
pub async fn fill_key_space<T: Target>(conns: &[T], plan: &Plan) -> Result<(), PerfError> {
    let keys = KeySpace::new(plan.keys.key_size, plan.keys.key_space_size, true)?;
    let fill = Plan {
        workload: Workload::Put,
        keys,
        value: plan.value.clone(),
        shape: LoadShape {
            // Not measured, so not bound to the run's clients: a
            // single-client read row would otherwise spend minutes writing
            // its key space one durable put at a time.
            clients: plan.shape.clients.max(PREFILL_CLIENTS_MIN),
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
