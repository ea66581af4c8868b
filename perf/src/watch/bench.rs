//! The watch workloads: `watch` (many watchers, then puts: creation and
//! delivery), `watch-latency` (every watcher on one key, puts at a fixed
//! rate: delivery latency) and `watch-catchup` (watchers starting far back
//! in history: replay speed).
//!
//! A run has three phases:
//!
//! 1. **Creation.** `--streams` streams are opened round-robin over the
//!    connections and each creates its watchers one after the other; each
//!    creation's latency (request to confirmation) is recorded. Every
//!    watcher gets its own reader task at once.
//! 2. **Puts.** `--put-total` puts of keys from the key space, open loop at
//!    `--put-rate` (or closed loop over `--clients` without a rate). Each
//!    value begins with the put's start time ([`clock`](super::clock)): its
//!    scheduled time in an open loop, so a stalled server shows in the
//!    delivery latencies (coordinated-omission correction), or its send
//!    time in a closed loop.
//! 3. **Delivery.** Each reader records, per event, the time from the put's
//!    start to the event's arrival. When every acknowledged put has reached
//!    every watcher of its key, or after
//!    [`WATCH_DRAIN_TIMEOUT_MS`] without that, the run ends; events never
//!    delivered are counted as failures.
//!
//! The main summary is of event deliveries: a "request" is one event owed
//! to one watcher, so `requests = events owed` and the failures are events
//! lost. Creation and puts are summarised in sections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::clock::{stamp_of, stamped_value, STAMP_BYTES};
use super::{WatchSpec, WatchStream, WatchTarget, Watcher};
use crate::config::RunConfig;
use crate::cpu::{process_cpu_time, ClientCpu};
use crate::driver::{drive, LoadShape, Plan, Progress, Stop, Warmup};
use crate::error::PerfError;
use crate::keys::SplitMix64;
use crate::limits::{
    CATCHUP_REVISIONS_MAX, STREAMS_MAX, WATCHERS_MAX, WATCH_DRAIN_TIMEOUT_MS, WATCH_KEY_SPACE_MAX,
};
use crate::recorder::Recorder;
use crate::server_usage::ServerProbe;
use crate::summary::{Fact, Section, Summary};
use crate::workload::Workload;

/// Which of the watch workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    Watch,
    Latency,
    CatchUp,
}

impl WatchKind {
    pub fn name(self) -> &'static str {
        match self {
            WatchKind::Watch => "watch",
            WatchKind::Latency => "watch-latency",
            WatchKind::CatchUp => "watch-catchup",
        }
    }
}

/// The options of a watch workload (the key space, value size and put
/// clients come from the [`Plan`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WatchPlan {
    pub kind: WatchKind,
    /// Watch streams (gRPC streams for etcd; for cairn, the watches of one
    /// connection), spread round-robin over the connections.
    pub streams: usize,
    pub watchers_per_stream: usize,
    /// Every watcher watches the whole key space (one range watch) instead
    /// of one key.
    pub prefix: bool,
    pub prev_kv: bool,
    /// Puts after the watchers are created (`watch`, `watch-latency`).
    pub put_total: u64,
    /// Puts per second; `None` = closed loop over the plan's clients.
    pub put_rate: Option<f64>,
    /// `watch-catchup`: revisions written before the watchers start at the
    /// first of them.
    pub catch_up_revisions: u64,
}

impl WatchPlan {
    pub fn watchers(&self) -> usize {
        self.streams.saturating_mul(self.watchers_per_stream)
    }

    pub fn validate(&self, plan: &Plan) -> Result<(), PerfError> {
        if self.streams == 0 || self.streams > STREAMS_MAX {
            return Err(PerfError::config(format!(
                "--streams must be between 1 and {STREAMS_MAX}"
            )));
        }
        if self.watchers_per_stream == 0 || self.watchers() > WATCHERS_MAX {
            return Err(PerfError::config(format!(
                "watchers (--streams × watchers per stream) must be between 1 and {WATCHERS_MAX}"
            )));
        }
        if plan.keys.key_space_size > WATCH_KEY_SPACE_MAX {
            return Err(PerfError::config(format!(
                "--key-space-size must be at most {WATCH_KEY_SPACE_MAX} for watch workloads"
            )));
        }
        if plan.value.len() < STAMP_BYTES {
            return Err(PerfError::config(format!(
                "--val-size must be at least {STAMP_BYTES} for watch workloads (values carry \
                 the put's start time)"
            )));
        }
        match self.kind {
            WatchKind::CatchUp => {
                if self.catch_up_revisions == 0 || self.catch_up_revisions > CATCHUP_REVISIONS_MAX {
                    return Err(PerfError::config(format!(
                        "--revisions must be between 1 and {CATCHUP_REVISIONS_MAX}"
                    )));
                }
            }
            WatchKind::Watch | WatchKind::Latency => {
                if self.put_total == 0 {
                    return Err(PerfError::config("--put-total must be at least 1"));
                }
            }
        }
        if let Some(rate) = self.put_rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(PerfError::config("--put-rate must be a positive number"));
            }
        }
        Ok(())
    }

    /// What watcher `w` watches.
    fn spec(&self, plan: &Plan, w: usize, start_revision: i64) -> WatchSpec {
        let keys = &plan.keys;
        let (key, range_end) = if self.prefix {
            // [first key, the key right after the last one): the whole key
            // space, and nothing else.
            let mut end = keys.key(keys.key_space_size - 1).to_vec();
            end.push(0);
            (keys.key(0), Bytes::from(end))
        } else {
            (keys.key(w as u64 % keys.key_space_size), Bytes::new())
        };
        WatchSpec {
            key,
            range_end,
            start_revision,
            prev_kv: self.prev_kv,
        }
    }

    /// Watchers that see a put of key `index`.
    fn watchers_of(&self, index: u64, key_space_size: u64) -> u64 {
        let watchers = self.watchers() as u64;
        if self.prefix {
            watchers
        } else {
            watchers / key_space_size + u64::from(index < watchers % key_space_size)
        }
    }
}

/// Counts shared by the readers.
#[derive(Default)]
struct Delivery {
    received: AtomicU64,
    /// Events whose revision was not above the previous one of the same
    /// watcher: a repeated or reordered event.
    disordered: AtomicU64,
    /// Events whose value this run did not write.
    foreign: AtomicU64,
}

/// Runs a watch workload over `conns`; see the module docs.
pub async fn run_watch<T: WatchTarget>(
    conns: &[T],
    target_name: &str,
    endpoints: &[String],
    plan: &Plan,
    watch: &WatchPlan,
    server_pids: &[u32],
) -> Result<Summary, PerfError> {
    watch.validate(plan)?;
    plan.shape.validate()?;
    if conns.is_empty() {
        return Err(PerfError::config("no connections to drive"));
    }
    let verify =
        |what: &str, e: crate::target::OpError| PerfError::Verify(format!("{what}: {}", e.kind));
    let cpu_before = process_cpu_time();
    let wall_start = Instant::now();

    // watch-catchup: write the history first (not measured).
    let start_revision = if watch.kind == WatchKind::CatchUp {
        let first = conns[0]
            .revision()
            .await
            .map_err(|e| verify("reading the revision", e))?
            + 1;
        write_history(conns, plan, watch.catch_up_revisions).await?;
        first
    } else {
        0
    };

    // Phase 1: creation.
    let probe = ServerProbe::start(server_pids);
    let rss_before = probe.as_ref().and_then(ServerProbe::rss_bytes_now);
    let run_start = Instant::now();
    let creation = Arc::new(Recorder::new(run_start));
    let events = Arc::new(Recorder::new(run_start));
    let delivery = Arc::new(Delivery::default());
    // In a catch-up run events flow as soon as a watcher exists, so each
    // reader starts with its watcher and times from the creation phase's
    // start; otherwise from each put's stamped start.
    let since = (watch.kind == WatchKind::CatchUp).then_some(run_start);
    let mut creators = tokio::task::JoinSet::new();
    for s in 0..watch.streams {
        let conn = conns[s % conns.len()].clone();
        let specs: Vec<WatchSpec> = (0..watch.watchers_per_stream)
            .map(|i| watch.spec(plan, s * watch.watchers_per_stream + i, start_revision))
            .collect();
        let creation = Arc::clone(&creation);
        let events = Arc::clone(&events);
        let delivery = Arc::clone(&delivery);
        let first_index = s * watch.watchers_per_stream;
        creators.spawn(async move {
            let mut readers = Vec::with_capacity(specs.len());
            let mut stream = match conn.open_watch_stream().await {
                Ok(stream) => stream,
                Err(e) => return (None, readers, Some(e)),
            };
            for (i, spec) in specs.into_iter().enumerate() {
                let start = Instant::now();
                match stream.watch(spec).await {
                    Ok(watcher) => {
                        creation.record(s, start, Instant::now(), None);
                        readers.push(tokio::spawn(read_events(
                            first_index + i,
                            watcher,
                            Arc::clone(&events),
                            Arc::clone(&delivery),
                            since,
                        )));
                    }
                    Err(e) => {
                        creation.record(s, start, Instant::now(), Some(&e.kind));
                        return (Some(stream), readers, Some(e));
                    }
                }
            }
            // The stream outlives its watchers: for etcd it holds the
            // request side of the gRPC stream.
            (Some(stream), readers, None)
        });
    }
    let mut streams_kept = Vec::with_capacity(watch.streams);
    let mut readers = Vec::with_capacity(watch.watchers());
    let mut create_error = None;
    while let Some(joined) = creators.join_next().await {
        let (stream, mut handles, error) = match joined {
            Ok(done) => done,
            Err(e) => panic!("a watch-creating task failed: {e}"),
        };
        streams_kept.extend(stream);
        readers.append(&mut handles);
        create_error = create_error.or(error);
    }
    let stop_readers = |readers: Vec<tokio::task::JoinHandle<()>>| {
        for reader in readers {
            reader.abort();
        }
    };
    if let Some(e) = create_error {
        stop_readers(readers);
        return Err(verify("creating the watchers", e));
    }
    let creation_done = Instant::now();
    let rss_after_creation = probe.as_ref().and_then(ServerProbe::rss_bytes_now);

    // Phase 2: puts (or, for catch-up, nothing: the history is there).
    let puts = Arc::new(Recorder::new(run_start));
    let expected = match watch.kind {
        WatchKind::CatchUp => watch.catch_up_revisions * watch.watchers() as u64,
        WatchKind::Watch | WatchKind::Latency => {
            let puts_per_key = put_phase(conns, plan, watch, Arc::clone(&puts)).await;
            puts_per_key
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    n.load(Ordering::Relaxed)
                        * watch.watchers_of(k as u64, plan.keys.key_space_size)
                })
                .sum()
        }
    };

    // Phase 3: wait for delivery.
    let deadline = Instant::now() + Duration::from_millis(WATCH_DRAIN_TIMEOUT_MS);
    while delivery.received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_by = Instant::now();
    stop_readers(readers);
    drop(streams_kept);

    let wall = wall_start.elapsed();
    let cpu = match (cpu_before, process_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => Duration::ZERO,
    };
    let received = delivery.received.load(Ordering::Relaxed);
    let mut recording = events.finish();
    if received < expected {
        recording.add_error("watch: event not delivered", expected - received);
    }
    let puts = puts.finish();
    let creation = creation.finish();
    let client_cpu = ClientCpu::new(
        cpu,
        wall,
        creation.requests() + puts.requests() + recording.requests(),
    );
    let mut config = RunConfig::describe(target_name, endpoints, conns.len(), plan, false);
    config.workload = watch.kind.name().to_string();
    describe_watch(&mut config, watch);
    let mut summary = Summary::new(config.clone(), &recording, client_cpu);
    summary.sections = vec![
        Section {
            name: "watch creation".to_string(),
            summary: Summary::new(config.clone(), &creation, client_cpu),
        },
        Section {
            name: "puts".to_string(),
            summary: Summary::new(config, &puts, client_cpu),
        },
    ];
    let facts = &mut summary.facts;
    facts.push(Fact::new("Watchers", watch.watchers() as f64, ""));
    facts.push(Fact::new("Puts acknowledged", puts.successes as f64, ""));
    facts.push(Fact::new("Events owed", expected as f64, ""));
    facts.push(Fact::new("Events received", received as f64, ""));
    facts.push(Fact::new(
        "Events repeated or out of order",
        delivery.disordered.load(Ordering::Relaxed) as f64,
        "",
    ));
    facts.push(Fact::new(
        "Events not written by this run",
        delivery.foreign.load(Ordering::Relaxed) as f64,
        "",
    ));
    if watch.kind == WatchKind::CatchUp {
        let secs = delivered_by.duration_since(creation_done).as_secs_f64();
        let last = recording.last_end.unwrap_or(delivered_by);
        let replay_secs = last.saturating_duration_since(run_start).as_secs_f64();
        facts.push(Fact::new(
            "Catch-up events/sec",
            if replay_secs > 0.0 {
                received as f64 / replay_secs
            } else {
                0.0
            },
            "",
        ));
        facts.push(Fact::new("Catch-up wait after creation", secs, "s"));
    }
    // In a catch-up run the replay starts during creation, so the memory
    // then is the replay's, not the watchers'.
    if let (Some(before), Some(after), false) = (
        rss_before,
        rss_after_creation,
        watch.kind == WatchKind::CatchUp,
    ) {
        let per_watcher = after.saturating_sub(before) as f64 / watch.watchers() as f64;
        facts.push(Fact::new("Server RSS per watcher", per_watcher, "bytes"));
    }
    summary.server = probe.and_then(|p| p.finish(received));
    Ok(summary)
}

/// Reads one watcher's events until aborted.
async fn read_events<W: Watcher>(
    index: usize,
    mut watcher: W,
    events: Arc<Recorder>,
    delivery: Arc<Delivery>,
    since: Option<Instant>,
) {
    let mut last_revision = 0i64;
    loop {
        let batch = match watcher.next().await {
            Ok(Some(batch)) => batch,
            Ok(None) => return,
            Err(e) => {
                events.record_errors(index, &e.kind, 1);
                return;
            }
        };
        let now = Instant::now();
        for event in batch {
            if event.mod_revision <= last_revision {
                delivery.disordered.fetch_add(1, Ordering::Relaxed);
            }
            last_revision = last_revision.max(event.mod_revision);
            let start = match since {
                Some(since) => Some(since),
                None => stamp_of(&event.value),
            };
            match start {
                Some(start) => {
                    events.record(index, start, now, None);
                    delivery.received.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    delivery.foreign.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The puts of phase 2. Answers the acknowledged puts of each key.
async fn put_phase<T: WatchTarget>(
    conns: &[T],
    plan: &Plan,
    watch: &WatchPlan,
    results: Arc<Recorder>,
) -> Arc<Vec<AtomicU64>> {
    let per_key: Arc<Vec<AtomicU64>> = Arc::new(
        (0..plan.keys.key_space_size)
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    // In an open loop the clients bound the puts in flight: use enough
    // that none is the bottleneck.
    let clients = plan.shape.clients;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let conn = conns[client % conns.len()].clone();
        let next = Arc::clone(&next);
        let per_key = Arc::clone(&per_key);
        let results = Arc::clone(&results);
        let keys = plan.keys;
        let val_size = plan.value.len();
        let total = watch.put_total;
        let rate = watch.put_rate;
        tasks.spawn(async move {
            let mut rng = SplitMix64::new(0x5eed ^ (client as u64).wrapping_mul(0x9e37_79b9));
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let due = match rate {
                    Some(rate) => {
                        let due = start + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let index = if keys.sequential {
                    n % keys.key_space_size
                } else {
                    rng.below(keys.key_space_size)
                };
                let value = stamped_value(val_size, due);
                let result = conn.put(keys.key(index), value).await;
                let end = Instant::now();
                match result {
                    Ok(()) => {
                        per_key[index as usize].fetch_add(1, Ordering::Relaxed);
                        results.record(client, due, end, None);
                    }
                    Err(e) => results.record(client, due, end, Some(&e.kind)),
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            assert!(!e.is_panic(), "a put task panicked: {e}");
        }
    }
    per_key
}

/// Writes `revisions` puts over the key space (one revision each), as
/// fast as the plan's clients go; not measured.
async fn write_history<T: WatchTarget>(
    conns: &[T],
    plan: &Plan,
    revisions: u64,
) -> Result<(), PerfError> {
    let fill = Plan {
        workload: Workload::Put,
        keys: plan.keys,
        value: stamped_value(plan.value.len(), Instant::now()),
        shape: LoadShape {
            clients: plan.shape.clients,
            stop: Stop::Total(revisions),
            rate_per_sec: None,
            warmup: Warmup::None,
        },
    };
    let recording = drive(conns, &fill, Arc::new(Progress::default())).await?;
    if recording.failures() > 0 {
        return Err(PerfError::Verify(format!(
            "writing the history: {} of {revisions} puts failed",
            recording.failures()
        )));
    }
    Ok(())
}

fn describe_watch(config: &mut RunConfig, watch: &WatchPlan) {
    let options = &mut config.workload_options;
    options.insert("streams".into(), watch.streams.to_string());
    options.insert(
        "watchers_per_stream".into(),
        watch.watchers_per_stream.to_string(),
    );
    options.insert("prefix".into(), watch.prefix.to_string());
    options.insert("prev_kv".into(), watch.prev_kv.to_string());
    match watch.kind {
        WatchKind::CatchUp => {
            options.insert("revisions".into(), watch.catch_up_revisions.to_string());
        }
        WatchKind::Watch | WatchKind::Latency => {
            options.insert("put_total".into(), watch.put_total.to_string());
            options.insert(
                "put_rate".into(),
                watch
                    .put_rate
                    .map_or_else(|| "closed loop".to_string(), |r| r.to_string()),
            );
        }
    }
}
