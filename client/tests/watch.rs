//! Watches against the fake server.

mod support;

use std::time::Duration;

use cairn_client::{
    Client, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions, WatchOptions,
};
use support::{Behaviour, FakeServer};

fn quick() -> ConnectOptions {
    ConnectOptions::default().with_request_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn events_arrive_in_order_with_previous_values() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    let mut watcher = client
        .watch("wk", WatchOptions::new().with_prefix().with_prev_kv())
        .await
        .unwrap();
    assert!(watcher.watch_id() > 0);
    client.put("wk1", "a", PutOptions::new()).await.unwrap();
    client.put("other", "x", PutOptions::new()).await.unwrap();
    client.put("wk1", "b", PutOptions::new()).await.unwrap();
    client.delete("wk1", DeleteOptions::new()).await.unwrap();

    let first = watcher.next().await.unwrap().unwrap();
    assert_eq!(first.watch_id, watcher.watch_id());
    let e = &first.events[0];
    assert_eq!(
        (e.kind, e.kv.value.as_slice(), e.prev_kv.is_none()),
        (EventType::Put, &b"a"[..], true)
    );
    let second = watcher.next().await.unwrap().unwrap();
    let e = &second.events[0];
    assert_eq!(e.prev_kv.as_ref().unwrap().value, b"a");
    assert_eq!((e.kv.version, e.kv.value.as_slice()), (2, &b"b"[..]));
    let third = watcher.next().await.unwrap().unwrap();
    let e = &third.events[0];
    assert_eq!(e.kind, EventType::Delete);
    assert_eq!(e.kv.key, b"wk1");
    assert_eq!(e.kv.mod_revision, third.header.revision);
    watcher.cancel().await.unwrap();

    // Requests keep flowing on the same connection beside the watch.
    assert!(client
        .get("wk1", GetOptions::new())
        .await
        .unwrap()
        .kvs
        .is_empty());
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_compacted_start_revision_ends_the_watch_with_the_compact_revision() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    for i in 0..3 {
        client
            .put("k", format!("{i}"), PutOptions::new())
            .await
            .unwrap();
    }
    client.compact(3, false).await.unwrap();
    let mut watcher = client
        .watch("k", WatchOptions::new().with_start_revision(2))
        .await
        .unwrap();
    let last = watcher.next().await.unwrap().unwrap();
    assert!(last.canceled);
    assert_eq!(last.compact_revision, 3);
    assert_eq!(watcher.next().await.unwrap(), None);
}

#[tokio::test]
async fn a_dropped_watcher_is_canceled_and_a_progress_request_answers() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    let watcher = client.watch("k", WatchOptions::new()).await.unwrap();
    drop(watcher);
    let progress = client.watch_progress().await.unwrap();
    assert_eq!(progress.watch_id, -1);
    assert!(progress.is_progress_notify());
    // The server got the cancel (it went out before the progress request).
    let mut again = client.watch("k", WatchOptions::new()).await.unwrap();
    client.put("k", "v", PutOptions::new()).await.unwrap();
    let r = again.next().await.unwrap().unwrap();
    assert_eq!(r.events.len(), 1);
    assert_eq!(server.watchers(), 1);
}

/// Puts `key` every few milliseconds until aborted: the fake server keeps
/// no history, so a re-created watch only sees writes made after it.
fn keep_putting(client: Client, key: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = client.put(key, "again", PutOptions::new()).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test]
async fn a_watcher_that_falls_too_far_behind_re_creates_its_watch() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    let mut watcher = client
        .watch("k", WatchOptions::new().with_prefix())
        .await
        .unwrap();
    let backlog = cairn_client::limits::WATCH_RESPONSES_QUEUED_MAX + 10;
    for i in 0..backlog {
        client
            .put(format!("k{i}"), "v", PutOptions::new())
            .await
            .unwrap();
    }
    // Meanwhile the connection kept serving requests.
    assert_eq!(
        client
            .get("k", GetOptions::new().with_prefix())
            .await
            .unwrap()
            .count,
        backlog as i64
    );
    let mut delivered = 0;
    while delivered < cairn_client::limits::WATCH_RESPONSES_QUEUED_MAX {
        watcher.next().await.unwrap().unwrap();
        delivered += 1;
    }
    assert_eq!(watcher.resumed(), 0);
    let resume_from = watcher.resume_revision();
    // The queue overflowed: the watch is re-created from the first revision
    // not delivered (this fake keeps no history to replay, so only what
    // happens next arrives).
    let putter = keep_putting(client.clone(), "k-after");
    let r = watcher.next().await.unwrap().unwrap();
    putter.abort();
    assert_eq!(watcher.resumed(), 1);
    assert_eq!(r.events[0].kv.key, b"k-after");
    assert!(resume_from <= r.events[0].kv.mod_revision);
}

#[tokio::test]
async fn a_watch_resumes_on_a_new_connection() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    let mut watcher = client.watch("k", WatchOptions::new()).await.unwrap();
    client.put("k", "1", PutOptions::new()).await.unwrap();
    assert_eq!(
        watcher.next().await.unwrap().unwrap().events[0].kv.value,
        b"1"
    );
    server.drop_connections();
    // Resumed from the revision after "1" — the fake cannot replay, so the
    // next event is whatever comes after the new watch.
    let putter = keep_putting(client.clone(), "k");
    let r = watcher.next().await.unwrap().unwrap();
    putter.abort();
    assert!(watcher.resumed() >= 1);
    assert!(r.events[0].kv.mod_revision > 1);
}

#[tokio::test]
async fn a_resume_past_a_compaction_ends_the_stream_with_the_compact_revision() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    let mut watcher = client.watch("k", WatchOptions::new()).await.unwrap();
    let first = client.put("k", "1", PutOptions::new()).await.unwrap();
    let r = watcher.next().await.unwrap().unwrap();
    assert_eq!(r.events[0].kv.mod_revision, first.header.revision);
    // The connection breaks; meanwhile history after "1" is compacted away.
    server.drop_connections();
    let other = Client::connect([&server.address], quick()).await.unwrap();
    other.put("k", "2", PutOptions::new()).await.unwrap();
    let third = other.put("k", "3", PutOptions::new()).await.unwrap();
    other.compact(third.header.revision, false).await.unwrap();
    let last = watcher.next().await.unwrap().unwrap();
    assert!(last.canceled);
    assert_eq!(last.compact_revision, third.header.revision);
    assert_eq!(watcher.next().await.unwrap(), None);
}

#[tokio::test]
async fn a_watch_whose_cluster_is_gone_ends_with_a_retriable_error() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let options = quick()
        .with_dial_timeout(Duration::from_millis(100))
        .with_watch_resume_timeout(Duration::from_millis(300));
    let client = Client::connect([&server.address], options).await.unwrap();
    let mut watcher = client.watch("k", WatchOptions::new()).await.unwrap();
    server.stop();
    let err = watcher.next().await.unwrap_err();
    assert!(err.is_retriable(), "{err:?}");
    assert_eq!(watcher.next().await.unwrap(), None);
}
