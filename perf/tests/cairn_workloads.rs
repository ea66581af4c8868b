//! Every workload against a cairn started by the test, with small counts:
//! the counts add up, and what the workload wrote is there afterwards.

mod common;

use cairn_client::GetOptions;
use cairn_perf::access::Access;
use cairn_perf::cairn::CairnConn;
use cairn_perf::config::TargetKind;
use cairn_perf::leader::{self, Role};
use cairn_perf::run::{run, CONNS_AT_LEADER_FACT};
use cairn_perf::server::{LocalServer, ServerKind};
use cairn_perf::summary::Summary;
use cairn_perf::watch::WatchTarget;
use common::{cairn_bin, spec_for, start_cairn};

/// Every key-value pair in the store.
async fn all_pairs(endpoint: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let conn = CairnConn::connect(endpoint).await.unwrap();
    let response = conn
        .client()
        .get(
            b"\0".to_vec(),
            GetOptions::new().with_range_end(b"\0".to_vec()),
        )
        .await
        .unwrap();
    response
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect()
}

async fn revision(endpoint: &str) -> i64 {
    CairnConn::connect(endpoint)
        .await
        .unwrap()
        .revision()
        .await
        .unwrap()
}

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
async fn txn_mixed_splits_reads_and_writes_and_writes_its_keys() {
    let server = start_cairn().await;
    let url = server.client_url();
    let spec = spec_for(
        url,
        &[
            "--conns=2",
            "--clients=4",
            "--total=300",
            "--key-space-size=20",
            "--sequential-keys",
            "--val-size=40",
            "txn-mixed",
            "--rw-ratio=2",
            "--limit=5",
        ],
    );
    let summary = run(&spec).await.unwrap();
    assert_counts_add_up(&summary, 300);
    let [reads, writes] = &summary.sections[..] else {
        panic!("expected reads and writes: {:?}", summary.sections);
    };
    assert_eq!(
        (reads.name.as_str(), writes.name.as_str()),
        ("reads", "writes")
    );
    assert_eq!(reads.summary.requests + writes.summary.requests, 300);
    // Two reads per write: far from all of one kind.
    assert!(reads.summary.requests > 120 && writes.summary.requests > 40);
    let pairs = all_pairs(url).await;
    assert!(!pairs.is_empty() && pairs.len() <= 20);
    for (key, value) in &pairs {
        assert_eq!(key.len(), 8);
        assert_eq!(value.len(), 40);
    }
}

/// cairn's gRPC API through the etcd target's own HTTP/2 client, on one
/// connection with more clients than the server's 1024 concurrent streams
/// and more request bytes in flight than its 4 MiB connection window: the
/// calls wait for streams and window, and every one gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_target_drives_cairns_grpc_api_past_its_stream_and_window_limits() {
    let server = start_cairn().await;
    let url = server.client_url();
    let put = spec_for(
        url,
        &[
            "--target=etcd",
            "--conns=1",
            "--clients=1100",
            "--total=3000",
            "--key-space-size=3000",
            "--sequential-keys",
            "--val-size=4096",
            "put",
        ],
    );
    assert_counts_add_up(&run(&put).await.unwrap(), 3000);
    let pairs = all_pairs(url).await;
    assert_eq!(pairs.len(), 3000);
    assert!(pairs.iter().all(|(_, value)| value.len() == 4096));

    let range = spec_for(
        url,
        &[
            "--target=etcd",
            "--conns=2",
            "--clients=100",
            "--total=1000",
            "--key-space-size=3000",
            "range",
            "--consistency=l",
        ],
    );
    let summary = run(&range).await.unwrap();
    assert_counts_add_up(&summary, 1000);
    // Every read found the key it asked for.
    assert_eq!(summary.empty_ranges, 0);

    let before = revision(url).await;
    let txn = spec_for(
        url,
        &[
            "--target=etcd",
            "--conns=2",
            "--clients=20",
            "--total=200",
            "--key-space-size=3000",
            "txn-put",
            "--txn-ops=4",
        ],
    );
    assert_counts_add_up(&run(&txn).await.unwrap(), 200);
    // One revision per committed txn.
    assert_eq!(revision(url).await, before + 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stm_commits_each_txn_once_and_counts_retries() {
    let server = start_cairn().await;
    let url = server.client_url();
    let before = revision(url).await;
    let spec = spec_for(
        url,
        &[
            "--clients=6",
            "--total=120",
            "--val-size=16",
            "stm",
            "--keys=3",
            "--keys-per-txn=2",
            "--txn-wr-percent=100",
        ],
    );
    let summary = run(&spec).await.unwrap();
    assert_counts_add_up(&summary, 120);
    // Every committed txn wrote (one revision each) and nothing else did:
    // a txn that committed twice, or a conflict that slipped through as a
    // success, would change the count.
    assert_eq!(revision(url).await - before, 120);
    let pairs = all_pairs(url).await;
    assert_eq!(pairs.len(), 3);
    assert!(pairs.iter().all(|(_, v)| v.len() == 16));
    // Six clients on three keys conflict; each retry is counted.
    println!("stm retries: {}", summary.retries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_keepalive_renews_every_lease_and_leaves_them_alive() {
    let server = start_cairn().await;
    let spec = spec_for(
        server.client_url(),
        &[
            "--conns=2",
            "--clients=4",
            "--total=200",
            "lease-keepalive",
            "--leases=25",
        ],
    );
    let summary = run(&spec).await.unwrap();
    assert_counts_add_up(&summary, 200);
    assert_eq!(fact(&summary, "Leases"), 25);
    assert_eq!(fact(&summary, "Leases alive after the run"), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_every_put_to_every_watcher_of_its_key() {
    let server = start_cairn().await;
    let url = server.client_url();
    let spec = spec_for(
        url,
        &[
            "--conns=2",
            "--clients=3",
            "--key-space-size=4",
            "--val-size=24",
            "watch",
            "--streams=3",
            "--watch-per-stream=4",
            "--put-total=60",
        ],
    );
    let summary = run(&spec).await.unwrap();
    // 12 watchers over 4 keys: 3 per key, so every put is owed 3 times.
    assert_eq!(fact(&summary, "Watchers"), 12);
    assert_eq!(fact(&summary, "Puts acknowledged"), 60);
    assert_eq!(fact(&summary, "Events owed"), 180);
    assert_eq!(fact(&summary, "Events received"), 180);
    assert_eq!(fact(&summary, "Events repeated or out of order"), 0);
    assert_counts_add_up(&summary, 180);
    let creation = &summary.sections[0].summary;
    assert_eq!((creation.requests, creation.failures), (12, 0));
    let pairs = all_pairs(url).await;
    assert_eq!(pairs.len(), 4);
    assert!(pairs.iter().all(|(k, v)| k.len() == 8 && v.len() == 24));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_on_the_whole_key_space_sees_every_put() {
    let server = start_cairn().await;
    let spec = spec_for(
        server.client_url(),
        &[
            "--clients=2",
            "--key-space-size=50",
            "watch",
            "--prefix",
            "--streams=2",
            "--watch-per-stream=3",
            "--put-total=40",
            "--put-rate=400",
        ],
    );
    let summary = run(&spec).await.unwrap();
    assert_eq!(fact(&summary, "Events received"), 40 * 6);
    assert_counts_add_up(&summary, 240);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_latency_times_each_event_of_each_watcher() {
    let server = start_cairn().await;
    let spec = spec_for(
        server.client_url(),
        &[
            "--conns=2",
            "watch-latency",
            "--streams=2",
            "--watchers-per-stream=3",
            "--put-total=50",
            "--put-rate=200",
        ],
    );
    let summary = run(&spec).await.unwrap();
    assert_counts_add_up(&summary, 300);
    assert_eq!(summary.sections[1].summary.successes, 50, "puts");
    assert!(summary.fastest_secs > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_catchup_replays_the_whole_history() {
    let server = start_cairn().await;
    let spec = spec_for(
        server.client_url(),
        &[
            "--clients=4",
            "--key-space-size=30",
            "watch-catchup",
            "--revisions=400",
            "--watch-per-stream=2",
        ],
    );
    let summary = run(&spec).await.unwrap();
    assert_eq!(fact(&summary, "Events received"), 800);
    assert_counts_add_up(&summary, 800);
    assert!(summary.fact("Catch-up events/sec").unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_leader_finds_the_single_member_and_reports_its_usage() {
    let server = start_cairn().await;
    let mut spec = spec_for(
        server.client_url(),
        &["--target-leader", "--total=50", "put"],
    );
    spec.server_pids = vec![server.pid()];
    let summary = run(&spec).await.unwrap();
    assert_counts_add_up(&summary, 50);
    assert_eq!(
        summary.config.endpoints,
        vec![server.client_url().to_string()]
    );
    let usage = summary.server.expect("server usage");
    assert!(usage.rss_bytes_after > 0);
    let pairs = all_pairs(server.client_url()).await;
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].0, b"00000000".to_vec());
}

#[test]
fn mvcc_put_puts_every_key_into_the_index() {
    let summary = cairn_perf::mvcc_bench::run_mvcc_put(cairn_perf::mvcc_bench::MvccPutSpec {
        total: 500,
        key_size: 32,
        val_size: 64,
        txn_ops: Some(4),
    })
    .unwrap();
    assert_counts_add_up(&summary, 500);
    // 500 txns of 4 puts each: one revision per txn after the initial 1.
    assert_eq!(fact(&summary, "Revision after the run"), 501);
    assert!(summary.fact("Puts/sec").unwrap() > 0.0);
}

/// Three cairn members on free loopback ports, each answering reads.
async fn start_cairn_cluster() -> Vec<LocalServer> {
    let mut servers = LocalServer::spawn_cluster(ServerKind::Cairn, &cairn_bin(), None, 3)
        .expect("cluster starts");
    for server in &mut servers {
        server
            .wait_ready(cairn_perf::cairn::answers)
            .await
            .expect("member becomes ready");
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_leader_sends_every_connection_to_the_leader_of_three_even_with_a_member_down() {
    let mut servers = start_cairn_cluster().await;
    let urls: Vec<String> = servers.iter().map(|s| s.client_url().to_string()).collect();
    let roles = leader::roles(TargetKind::Cairn, &urls, &Access::default()).await;
    let leader = roles
        .iter()
        .position(|r| *r == Role::Leader)
        .unwrap_or_else(|| panic!("no leader among {roles:?}"));
    assert_eq!(
        roles.iter().filter(|r| **r == Role::Follower).count(),
        2,
        "{roles:?}"
    );

    // Spread over all three, one connection each: one reaches the leader.
    let spread = run(&spec_for(
        &urls.join(","),
        &["--conns=3", "--clients=6", "--total=60", "put"],
    ))
    .await
    .unwrap();
    assert_counts_add_up(&spread, 60);
    assert_eq!(spread.config.endpoints, urls);
    assert_eq!(fact(&spread, CONNS_AT_LEADER_FACT), 1);

    // A follower stops for good; the endpoints name it first and the
    // leader last, so a harness that took the first endpoint that answers,
    // or gave up at the first that does not, would be caught.
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (down, up) = (followers[0], followers[1]);
    let down_url = urls[down].clone();
    let leader_url = urls[leader].clone();
    let endpoints = [down_url, urls[up].clone(), leader_url.clone()].join(",");
    drop(servers.remove(down));
    let summary = run(&spec_for(
        &endpoints,
        &[
            "--target-leader",
            "--conns=3",
            "--clients=6",
            "--total=60",
            "--key-space-size=10",
            "put",
        ],
    ))
    .await
    .unwrap();
    assert_counts_add_up(&summary, 60);
    assert_eq!(summary.config.endpoints, vec![leader_url.clone()]);
    assert_eq!(summary.config.conns, 3);
    assert_eq!(fact(&summary, CONNS_AT_LEADER_FACT), 3);
    // The writes reached the cluster through the leader.
    let keys = all_pairs(&leader_url).await;
    assert_eq!(keys.len(), 10, "{keys:?}");
}
