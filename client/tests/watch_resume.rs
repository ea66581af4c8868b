//! Watches that outlive their connection, against real `cairn` members: a
//! watcher's stream, across a member restart or the kill -9 of the leader
//! it watched through, must equal the history the store recorded — no gap,
//! no duplicate, same order.

#[path = "support/process.rs"]
mod process;

use std::time::Duration;

use cairn_client::{Client, ConnectOptions, EventType, PutOptions, WatchOptions, Watcher};
use process::Cluster;

/// Puts written per test: enough to straddle the fault, few enough to keep
/// the test short.
const WRITES: usize = 300;
/// The fault is injected after this many acknowledged writes.
const FAULT_AFTER: usize = 100;

/// One event as the comparison sees it.
type Seen = (i64, EventType, Vec<u8>, Vec<u8>);

/// Writes `WRITES` puts under `w/`, retrying each until acknowledged;
/// returns the revision of the last.
async fn write_all(client: Client, progress: tokio::sync::mpsc::Sender<usize>) -> i64 {
    let mut last = 0;
    for i in 0..WRITES {
        let key = format!("w/{}", i % 7);
        loop {
            match client
                .put(key.clone(), i.to_string(), PutOptions::new())
                .await
            {
                Ok(r) => {
                    last = r.header.revision;
                    break;
                }
                Err(e) => {
                    assert!(e.is_retriable() || e == cairn_client::Error::Timeout, "{e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let _ = progress.send(i + 1).await;
    }
    last
}

/// Reads `watcher` until it has delivered revision `last`.
async fn collect_until(watcher: &mut Watcher, last: i64, seen: &mut Vec<Seen>) {
    while seen.last().map_or(0, |s| s.0) < last {
        let r = watcher
            .next()
            .await
            .expect("the watch failed")
            .expect("the watch ended");
        assert!(!r.canceled, "canceled: {}", r.cancel_reason);
        for e in r.events {
            seen.push((e.kv.mod_revision, e.kind, e.kv.key, e.kv.value));
        }
    }
}

/// The store's own record of revisions `from..=last` under `w/`, read by a
/// fresh watch from history on a healthy cluster.
async fn history(client: &Client, from: i64, last: i64) -> Vec<Seen> {
    let options = WatchOptions::new().with_prefix().with_start_revision(from);
    let mut watcher = client.watch("w/", options).await.unwrap();
    let mut seen = Vec::new();
    collect_until(&mut watcher, last, &mut seen).await;
    seen
}

/// Runs the writer, injects `fault` mid-way while the watcher is read
/// concurrently, and compares what the watcher delivered with history.
async fn watch_across(
    cluster: &mut Cluster,
    watch_endpoints: Vec<String>,
    fault: impl FnOnce(&mut Cluster),
) {
    let options = ConnectOptions::default()
        .with_dial_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(3));
    let watch_client = Client::connect(watch_endpoints, options).await.unwrap();
    let mut watcher = watch_client
        .watch("w/", WatchOptions::new().with_prefix())
        .await
        .unwrap();
    let first = watcher.resume_revision();
    let (progress_tx, mut progress) = tokio::sync::mpsc::channel(WRITES);
    let writer = tokio::spawn(write_all(cluster.client().await, progress_tx));

    // Read while writing, so that the fault cuts a stream in motion.
    let mut seen = Vec::new();
    let reader = async {
        loop {
            let r = watcher
                .next()
                .await
                .expect("the watch failed")
                .expect("ended");
            for e in r.events {
                seen.push((e.kv.mod_revision, e.kind, e.kv.key, e.kv.value));
            }
        }
    };
    let fault_point = async {
        while let Some(done) = progress.recv().await {
            if done >= FAULT_AFTER {
                break;
            }
        }
    };
    tokio::select! {
        _ = reader => unreachable!(),
        _ = fault_point => {}
    }
    fault(cluster);
    let last = tokio::time::timeout(Duration::from_secs(40), writer)
        .await
        .expect("the writer stalled")
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        collect_until(&mut watcher, last, &mut seen),
    )
    .await
    .expect("the watch stalled after the fault");

    assert!(
        watcher.resumed() >= 1,
        "the fault did not interrupt the watch"
    );
    let want = history(&cluster.client().await, first, last).await;
    assert!(want.len() >= WRITES, "history lost writes: {}", want.len());
    let revisions: Vec<i64> = seen.iter().map(|s| s.0).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "out of order or duplicated: {revisions:?}"
    );
    assert_eq!(seen.len(), want.len(), "events missed or repeated");
    assert_eq!(seen, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_across_a_member_restart() {
    let mut cluster = Cluster::start(1).await;
    let endpoints = cluster.endpoints();
    watch_across(&mut cluster, endpoints, |c| {
        c.members[0].stop();
        c.members[0].spawn();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_fails_over_when_its_leader_is_killed() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    // Watch through the leader first, then the others.
    let mut endpoints = cluster.endpoints();
    endpoints.rotate_left(leader);
    watch_across(&mut cluster, endpoints, move |c| c.members[leader].kill9()).await;
}
