//! Runs a workload: many clients over a few shared connections, in a closed
//! loop (each client sends its next request when the previous one returns)
//! or an open loop at a fixed rate.
//!
//! # Coordinated omission
//!
//! In a closed loop a server stall also stalls the load generator: during a
//! 200 ms pause no new requests are sent, so only the few in flight see the
//! pause and the percentiles hide it. With `--rate` the run has a schedule
//! instead: request *n* is due at `start + n / rate`, and its latency is
//! measured from that due time, not from when a client got round to sending
//! it. Requests that should have been sent during a stall are then recorded
//! with the time they would have waited, as a user of the server would have
//! experienced it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::PerfError;
use crate::keys::{KeySpace, SplitMix64};
use crate::limits::CLIENTS_MAX;
use crate::recorder::{Recorder, Recording};
use crate::target::Target;
use crate::workload::{OpClass, Workload};

/// When the measured part of a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many measured requests have been sent.
    Total(u64),
    /// Once this long has passed since the measured part started.
    Duration(Duration),
}

/// What is sent before measuring starts, to fill caches and connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Warmup {
    None,
    /// The first this many requests.
    Requests(u64),
    /// The requests started (or due) in the first this long.
    Duration(Duration),
}

/// The shape of the load: how many clients, how long, how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadShape {
    pub clients: usize,
    pub stop: Stop,
    /// Requests per second over all clients (open loop); `None` = closed loop.
    pub rate_per_sec: Option<f64>,
    pub warmup: Warmup,
}

impl LoadShape {
    pub fn validate(&self) -> Result<(), PerfError> {
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return Err(PerfError::config(format!(
                "--clients must be between 1 and {CLIENTS_MAX}"
            )));
        }
        if let Some(rate) = self.rate_per_sec {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(PerfError::config("--rate must be a positive number"));
            }
        }
        if self.stop == Stop::Total(0) {
            return Err(PerfError::config("--total must be at least 1"));
        }
        Ok(())
    }
}

/// Everything that defines a run's requests.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: Workload,
    pub keys: KeySpace,
    /// The value every write carries.
    pub value: Bytes,
    pub shape: LoadShape,
}

/// Counts visible while the run goes on (for the progress line).
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests completed, warm-up included.
    pub completed: AtomicU64,
    /// Measured requests sent so far.
    pub measured_sent: AtomicU64,
}

struct Shared {
    plan: Plan,
    start: Instant,
    /// Next request number, warm-up included; fixes the due time in an open
    /// loop.
    next_ticket: AtomicU64,
    progress: Arc<Progress>,
    /// When the measured part started (known once its first request starts).
    measure_start: OnceLock<Instant>,
    recorder: Recorder,
    /// For mixed workloads, one recorder per [`OpClass`](crate::workload::OpClass).
    classes: Vec<Recorder>,
}

/// What one request number turned out to be.
enum Phase {
    Warmup,
    Measured,
    Done,
}

impl Shared {
    fn phase(&self, ticket: u64, due: Instant) -> Phase {
        let warm = match self.plan.shape.warmup {
            Warmup::None => false,
            Warmup::Requests(n) => ticket < n,
            Warmup::Duration(d) => due < self.start + d,
        };
        if warm {
            return Phase::Warmup;
        }
        let measure_start = *self.measure_start.get_or_init(|| {
            // Where the schedule fixes it, the measured window starts exactly
            // at the end of the warm-up; otherwise at the first measured
            // request.
            match (self.plan.shape.warmup, self.plan.shape.rate_per_sec) {
                (Warmup::Duration(d), _) => self.start + d,
                (Warmup::Requests(n), Some(rate)) => {
                    self.start + Duration::from_secs_f64(n as f64 / rate)
                }
                (Warmup::None, Some(_)) => self.start,
                (_, None) => due,
            }
        });
        match self.plan.shape.stop {
            Stop::Total(total) => {
                if self.progress.measured_sent.fetch_add(1, Ordering::Relaxed) < total {
                    Phase::Measured
                } else {
                    Phase::Done
                }
            }
            Stop::Duration(d) => {
                if due < measure_start + d {
                    self.progress.measured_sent.fetch_add(1, Ordering::Relaxed);
                    Phase::Measured
                } else {
                    Phase::Done
                }
            }
        }
    }
}

/// Runs `plan` over `conns` (client *i* uses connection *i mod conns*) and
/// returns what was recorded. Must run inside a tokio runtime.
pub async fn drive<T: Target>(
    conns: &[T],
    plan: &Plan,
    progress: Arc<Progress>,
) -> Result<Recording, PerfError> {
    plan.shape.validate()?;
    if conns.is_empty() {
        return Err(PerfError::config("no connections to drive"));
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        start,
        next_ticket: AtomicU64::new(0),
        progress,
        measure_start: OnceLock::new(),
        recorder: Recorder::new(start),
        classes: if plan.workload.is_mixed() {
            vec![Recorder::new(start), Recorder::new(start)]
        } else {
            Vec::new()
        },
    });
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..plan.shape.clients {
        let conn = conns[client % conns.len()].clone();
        let shared = Arc::clone(&shared);
        clients.spawn(run_client(client, conn, shared));
    }
    while let Some(joined) = clients.join_next().await {
        if let Err(error) = joined {
            // A client task panicking is a bug in the harness.
            assert!(!error.is_panic(), "a client task panicked: {error}");
        }
    }
    let mut recording = shared.recorder.finish();
    if plan.workload.is_mixed() {
        for class in [OpClass::Read, OpClass::Write] {
            let part = shared.classes[class.index()].finish();
            recording.sections.push((class.name().to_string(), part));
        }
    }
    Ok(recording)
}

async fn run_client<T: Target>(client: usize, conn: T, shared: Arc<Shared>) {
    let mut rng = SplitMix64::new(0xcafe_f00d ^ (client as u64).wrapping_mul(0x9e37_79b9));
    let rate = shared.plan.shape.rate_per_sec;
    loop {
        let ticket = shared.next_ticket.fetch_add(1, Ordering::Relaxed);
        let due = match rate {
            Some(rate) => shared.start + Duration::from_secs_f64(ticket as f64 / rate),
            None => Instant::now(),
        };
        let measured = match shared.phase(ticket, due) {
            Phase::Done => break,
            Phase::Measured => true,
            Phase::Warmup => false,
        };
        if rate.is_some() {
            tokio::time::sleep_until(due.into()).await;
        }
        let plan = &shared.plan;
        let issued = plan
            .workload
            .issue(&conn, &plan.keys, &plan.value, ticket, &mut rng)
            .await;
        let end = Instant::now();
        if measured {
            let error = issued.result.as_ref().err().map(|e| e.kind.as_str());
            shared.recorder.record(client, due, end, error);
            if let Some(class) = issued.class {
                shared.classes[class.index()].record(client, due, end, error);
            }
            if let Ok(done) = &issued.result {
                if !done.found {
                    shared.recorder.record_empty(client);
                }
                if done.retries > 0 {
                    shared.recorder.record_retries(client, done.retries);
                }
            }
        } else {
            shared.recorder.record_warmup(client);
        }
        shared.progress.completed.fetch_add(1, Ordering::Relaxed);
    }
}
