//! The txn-mixed, stm, lease, watch and leader workloads against a real
//! etcd, started by each test on free loopback ports when an `etcd` binary
//! is on PATH (Debian's etcd-server); without one the tests print a note
//! and pass. Small counts: the counts add up and the checks the workloads
//! make on cairn hold on etcd too.

mod common;

use cairn_perf::run::run;
use cairn_perf::summary::Summary;
use common::{spec_for, start_etcd};

fn assert_counts_add_up(summary: &Summary, requests: u64) {
    assert_eq!(summary.requests, requests);
    assert_eq!(summary.successes + summary.failures, summary.requests);
    assert_eq!(summary.failures, 0, "errors: {:?}", summary.errors);
}

fn fact(summary: &Summary, name: &str) -> u64 {
    summary
        .fact(name)
        .unwrap_or_else(|| panic!("no fact {name:?} in {:?}", summary.facts)) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_workloads_count_up_against_etcd() {
    let Some(server) = start_etcd().await else {
        return;
    };
    let url = server.client_url();
    let etcd = ["--target=etcd", "--conns=2", "--clients=4"];
    let with = |more: &[&str]| {
        let mut args = etcd.to_vec();
        args.extend_from_slice(more);
        spec_for(url, &args)
    };

    let mixed = run(&with(&[
        "--total=200",
        "--key-space-size=10",
        "txn-mixed",
        "--rw-ratio=1",
        "--consistency=s",
    ]))
    .await
    .unwrap();
    assert_counts_add_up(&mixed, 200);
    assert_eq!(
        mixed.sections[0].summary.requests + mixed.sections[1].summary.requests,
        200
    );

    let stm = run(&with(&[
        "--total=100",
        "stm",
        "--keys=2",
        "--keys-per-txn=2",
        "--txn-wr-percent=100",
    ]))
    .await
    .unwrap();
    assert_counts_add_up(&stm, 100);

    let leases = run(&with(&["--total=100", "lease-keepalive", "--leases=10"]))
        .await
        .unwrap();
    assert_counts_add_up(&leases, 100);
    assert_eq!(fact(&leases, "Leases alive after the run"), 10);

    let leader = run(&with(&["--target-leader", "--total=20", "put"]))
        .await
        .unwrap();
    assert_counts_add_up(&leader, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_workloads_deliver_every_event_from_etcd() {
    let Some(server) = start_etcd().await else {
        return;
    };
    let url = server.client_url();
    let watch = run(&spec_for(
        url,
        &[
            "--target=etcd",
            "--conns=2",
            "--clients=2",
            "--key-space-size=3",
            "watch",
            "--streams=2",
            "--watch-per-stream=3",
            "--put-total=30",
        ],
    ))
    .await
    .unwrap();
    // 6 watchers over 3 keys: 2 per key.
    assert_eq!(fact(&watch, "Events received"), 60);
    assert_eq!(fact(&watch, "Events repeated or out of order"), 0);
    assert_counts_add_up(&watch, 60);

    let latency = run(&spec_for(
        url,
        &[
            "--target=etcd",
            "watch-latency",
            "--streams=2",
            "--watchers-per-stream=2",
            "--put-total=20",
            "--put-rate=200",
        ],
    ))
    .await
    .unwrap();
    assert_counts_add_up(&latency, 80);

    let catchup = run(&spec_for(
        url,
        &[
            "--target=etcd",
            "--clients=4",
            "--key-space-size=10",
            "watch-catchup",
            "--revisions=200",
        ],
    ))
    .await
    .unwrap();
    assert_counts_add_up(&catchup, 200);
}
