//! A server stall must show in an open-loop run's tail (latency counted from
//! each request's scheduled time) and must not be multiplied in a closed
//! loop, where only the requests in flight during the stall wait.

mod common;

use std::time::Duration;

use cairn_perf::driver::{drive, LoadShape, Progress, Stop, Warmup};
use cairn_perf::keys::KeySpace;
use cairn_perf::recorder::Recording;
use cairn_perf::workload::Workload;
use common::{closed, plan, FakeTarget};

const STALL: Duration = Duration::from_millis(200);
const SLOW_NS: u64 = 50_000_000;

fn slow_requests(recording: &Recording) -> u64 {
    recording
        .latency_ns
        .count_between(SLOW_NS, recording.latency_ns.max())
}

async fn run(target: &FakeTarget, shape: LoadShape) -> Recording {
    let keys = KeySpace::new(8, 1000, false).unwrap();
    let plan = plan(Workload::Put, keys, 16, shape);
    drive(std::slice::from_ref(target), &plan, Default::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_counts_the_requests_a_stall_delayed() {
    let target = FakeTarget::stalling_once(100, STALL);
    let shape = LoadShape {
        clients: 2,
        stop: Stop::Total(1_000),
        rate_per_sec: Some(1_000.0),
        warmup: Warmup::None,
    };
    let recording = run(&target, shape).await;
    assert_eq!(recording.successes, 1_000);
    // Requests due during the first 150 ms of the stall waited at least
    // 50 ms from their scheduled start: about 150 of them.
    let slow = slow_requests(&recording);
    assert!(slow >= 100, "only {slow} slow requests in the open loop");
    let p99_ns = recording.latency_ns.value_at_percentile(99.0);
    assert!(p99_ns >= 100_000_000, "p99 {p99_ns} ns hides the stall");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_sees_only_the_stalled_requests() {
    let clients = 2;
    let target = FakeTarget::stalling_once(100, STALL);
    let recording = run(&target, closed(clients, 1_000)).await;
    assert_eq!(recording.successes, 1_000);
    let slow = slow_requests(&recording);
    assert!(slow >= 1, "the stall must be recorded");
    assert!(
        slow <= clients as u64,
        "{slow} slow requests, but only {clients} were in flight during the stall"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_requests_are_sent_but_not_counted() {
    let target = FakeTarget::default();
    let shape = LoadShape {
        warmup: Warmup::Requests(50),
        ..closed(3, 100)
    };
    let recording = run(&target, shape).await;
    assert_eq!(recording.successes, 100);
    assert_eq!(recording.warmup_requests, 50);
    assert_eq!(target.calls.load(std::sync::atomic::Ordering::SeqCst), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_kind_and_add_up() {
    let target = FakeTarget::failing_every(4);
    let recording = run(&target, closed(5, 400)).await;
    assert_eq!(recording.requests(), 400);
    assert_eq!(recording.successes + recording.failures(), 400);
    assert_eq!(recording.errors["etcdserver: too many requests"], 100);
    assert_eq!(
        recording.latency_ns.len(),
        300,
        "latencies are of successes only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_run_stops_by_itself() {
    let target = FakeTarget::default();
    let shape = LoadShape {
        clients: 2,
        stop: Stop::Duration(Duration::from_millis(300)),
        rate_per_sec: Some(500.0),
        warmup: Warmup::Duration(Duration::from_millis(100)),
    };
    let progress = std::sync::Arc::new(Progress::default());
    let keys = KeySpace::new(8, 10, true).unwrap();
    let recording = drive(
        std::slice::from_ref(&target),
        &plan(Workload::Put, keys, 8, shape),
        progress,
    )
    .await
    .unwrap();
    // 500/s over a 300 ms window after a 100 ms warm-up: 150 and 50 requests.
    assert_eq!(recording.successes, 150);
    assert_eq!(recording.warmup_requests, 50);
}
