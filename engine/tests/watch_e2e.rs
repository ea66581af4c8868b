//! Watches through real `cairn` processes: etcd's guarantees (ordered,
//! unique, reliable, atomic), history replay, compaction, filters, cancel,
//! progress, and a client that does not read.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cairn_wire::{
    rpc, DeleteRangeParams, PutParams, RequestOpParams, TxnParams, WatchCreateParams,
};
use common::{Client, Server, WatchEvent, WatchReply};

/// `(revision, key, is_put)` of every change, as the writers saw them.
type Change = (i64, Vec<u8>, bool);

fn prefix_end(p: &[u8]) -> Vec<u8> {
    let mut end = p.to_vec();
    *end.last_mut().unwrap() += 1;
    end
}

fn watch_prefix(c: &mut Client, prefix: &[u8], start_revision: i64, prev_kv: bool) -> WatchReply {
    let end = prefix_end(prefix);
    let created = c.watch(&WatchCreateParams {
        key: prefix,
        range_end: &end,
        start_revision,
        prev_kv,
        ..Default::default()
    });
    assert!(created.created && !created.canceled, "{created:?}");
    created
}

/// Read watch responses until one reaches `revision`; returns them all.
fn collect_until(c: &mut Client, revision: i64) -> Vec<WatchReply> {
    let mut out: Vec<WatchReply> = Vec::new();
    loop {
        let r = c.next_watch();
        assert!(!r.canceled, "watch canceled: {r:?}");
        let last = r.events.last().map_or(0, |e| e.mod_revision);
        out.push(r);
        if last >= revision {
            return out;
        }
    }
}

fn flatten(replies: &[WatchReply]) -> Vec<WatchEvent> {
    replies.iter().flat_map(|r| r.events.clone()).collect()
}

/// One writer: puts, 3-key txns and deletes of its own keys, one at a time.
fn writer(addr: SocketAddr, t: usize, ops: usize) -> Vec<Change> {
    let mut c = Client::connect(addr).unwrap();
    let mut log = Vec::new();
    let mut live: Vec<Vec<u8>> = Vec::new();
    for i in 0..ops {
        let id = c.id();
        let frame;
        let mut changes: Vec<(Vec<u8>, bool)> = Vec::new();
        if i % 7 == 6 && !live.is_empty() {
            let key = live.remove(0);
            frame = c
                .enc
                .delete_range_request(
                    id,
                    &DeleteRangeParams {
                        key: &key,
                        ..Default::default()
                    },
                )
                .to_vec();
            changes.push((key, false));
        } else if i % 5 == 4 {
            let keys: Vec<Vec<u8>> = ["a", "b", "c"]
                .iter()
                .map(|s| format!("w/{t}/{i:04}/{s}").into_bytes())
                .collect();
            let ops: Vec<RequestOpParams<'_>> = keys
                .iter()
                .map(|k| {
                    RequestOpParams::Put(PutParams {
                        key: k,
                        value: k,
                        ..Default::default()
                    })
                })
                .collect();
            frame = c
                .enc
                .txn_request(
                    id,
                    &TxnParams {
                        success: &ops,
                        ..Default::default()
                    },
                )
                .to_vec();
            for k in &keys {
                changes.push((k.clone(), true));
                live.push(k.clone());
            }
        } else {
            let key = format!("w/{t}/{i:04}").into_bytes();
            frame = c
                .enc
                .put_request(
                    id,
                    &PutParams {
                        key: &key,
                        value: &key,
                        ..Default::default()
                    },
                )
                .to_vec();
            changes.push((key.clone(), true));
            live.push(key);
        }
        let r = c.call(frame).expect("write");
        assert!(r.error.is_none(), "{:?}", r.error);
        log.extend(changes.into_iter().map(|(k, put)| (r.revision, k, put)));
    }
    log
}

#[test]
fn concurrent_writes_arrive_ordered_unique_reliable_and_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut w = Client::connect(server.addr).unwrap();
    watch_prefix(&mut w, b"w/", 0, false);
    check_concurrent_writes(&server, vec![w]);
}

/// The same guarantees when the shard drops most publications to the
/// watching executor (a backlog limit of one byte: nothing is published
/// while anything is pending), so the watches fill the gaps from history.
#[test]
fn dropped_publications_are_filled_from_history_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--experimental-watch-publish-backlog-bytes", "1"],
    );
    let watchers: Vec<Client> = (0..4)
        .map(|_| {
            let mut w = Client::connect(server.addr).unwrap();
            watch_prefix(&mut w, b"w/", 0, false);
            w
        })
        .collect();
    check_concurrent_writes(&server, watchers);
    let dropped = metric(&server, "cairn_watch_publications_dropped_total");
    let reads = metric(&server, "cairn_watch_history_reads_total");
    assert!(
        dropped > 0,
        "no publication was dropped: the test did not test"
    );
    assert!(reads > 0, "dropped revisions were not read from history");
}

fn metric(server: &Server, name: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// Three writers race; every watcher must see exactly their changes.
fn check_concurrent_writes(server: &Server, watchers: Vec<Client>) {
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let addr = server.addr;
            std::thread::spawn(move || writer(addr, t, 150))
        })
        .collect();
    let mut log: Vec<Change> = writers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    log.sort();
    let last = log.last().unwrap().0;

    for mut w in watchers {
        check_stream(&mut w, last, &log);
    }
}

fn check_stream(w: &mut Client, last: i64, log: &[Change]) {
    let replies = collect_until(w, last);
    // Atomic: every revision lies within one response.
    let mut seen_in: BTreeMap<i64, usize> = BTreeMap::new();
    for (n, r) in replies.iter().enumerate() {
        for e in &r.events {
            let first = *seen_in.entry(e.mod_revision).or_insert(n);
            assert_eq!(
                first, n,
                "revision {} split across responses",
                e.mod_revision
            );
        }
    }
    let events = flatten(&replies);
    // Ordered: revisions never go back.
    assert!(events
        .windows(2)
        .all(|p| p[0].mod_revision <= p[1].mod_revision));
    // Unique and reliable: exactly the writers' changes.
    let mut got: Vec<Change> = events
        .iter()
        .map(|e| (e.mod_revision, e.key.clone(), e.put))
        .collect();
    got.sort();
    assert_eq!(got.len(), log.len(), "every change once");
    assert_eq!(got, log);
}

#[test]
fn a_watch_from_an_old_revision_replays_then_goes_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();
    let mut revs = Vec::new();
    for i in 0..10 {
        revs.push(c.put(format!("h/{i}").as_bytes(), b"v1").unwrap().revision);
    }
    let mut w = Client::connect(server.addr).unwrap();
    watch_prefix(&mut w, b"h/", revs[3], true);
    for i in 0..5 {
        revs.push(c.put(format!("h/{i}").as_bytes(), b"v2").unwrap().revision);
    }
    let events = flatten(&collect_until(&mut w, *revs.last().unwrap()));
    let got: Vec<i64> = events.iter().map(|e| e.mod_revision).collect();
    assert_eq!(
        got,
        revs[3..].to_vec(),
        "history then live, no gap, no duplicate"
    );
    // Updates carry the previous value when asked.
    assert_eq!(events[7].prev, Some((b"v1".to_vec(), revs[0])));
    assert_eq!(events[0].prev, None, "a create has no previous value");
}

#[test]
fn a_watch_from_a_compacted_revision_is_canceled() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();
    let mut rev = 0;
    for i in 0..5 {
        rev = c.put(format!("c/{i}").as_bytes(), b"v").unwrap().revision;
    }
    let id = c.id();
    let f = c.enc.compaction_request(id, rev - 1, false).to_vec();
    assert!(c.call(f).unwrap().error.is_none());

    let mut w = Client::connect(server.addr).unwrap();
    let end = prefix_end(b"c/");
    let first = w.watch(&WatchCreateParams {
        key: b"c/",
        range_end: &end,
        start_revision: rev - 3,
        ..Default::default()
    });
    let canceled = if first.canceled {
        first
    } else {
        w.next_watch()
    };
    assert!(canceled.canceled, "{canceled:?}");
    assert_eq!(canceled.compact_revision, rev - 1);
}

#[test]
fn filters_prev_kv_cancel_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();
    let mut w = Client::connect(server.addr).unwrap();
    let created = w.watch(&WatchCreateParams {
        key: b"f",
        filters: &[rpc::FilterType::NoPut],
        prev_kv: true,
        watch_id: 7,
        ..Default::default()
    });
    assert_eq!(created.watch_id, 7);
    // A live id cannot be reused.
    let dup = w.watch(&WatchCreateParams {
        key: b"g",
        watch_id: 7,
        ..Default::default()
    });
    assert!(dup.canceled && dup.created, "{dup:?}");

    c.put(b"f", b"one").unwrap();
    let put_rev = c.put(b"f", b"two").unwrap().revision;
    let id = c.id();
    let f = c
        .enc
        .delete_range_request(
            id,
            &DeleteRangeParams {
                key: b"f",
                ..Default::default()
            },
        )
        .to_vec();
    let del_rev = c.call(f).unwrap().revision;
    let r = w.next_watch();
    assert_eq!(r.watch_id, 7);
    assert_eq!(r.events.len(), 1, "puts are filtered out: {r:?}");
    let e = &r.events[0];
    assert!(!e.put);
    assert_eq!((e.key.as_slice(), e.mod_revision), (&b"f"[..], del_rev));
    assert_eq!(e.prev, Some((b"two".to_vec(), put_rev)));

    // Cancel is answered under its own id; nothing follows for the watch.
    let cancel_id = w.id();
    let f = w.enc.watch_cancel_request(cancel_id, 7).to_vec();
    w.send(f).unwrap();
    let r = w.next_watch();
    assert_eq!((r.id, r.watch_id, r.canceled), (cancel_id, 7, true));
    c.put(b"f", b"three").unwrap();
    let now = c.put(b"other", b"x").unwrap().revision;
    let progress_id = w.id();
    let f = w.enc.watch_progress_request(progress_id).to_vec();
    w.send(f).unwrap();
    let r = w.next_watch();
    assert_eq!(
        (r.id, r.watch_id),
        (progress_id, -1),
        "no event after the cancel: {r:?}"
    );
    assert_eq!(r.revision, now, "progress reports the current revision");
}

#[test]
fn lease_revocation_arrives_as_one_response_of_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();
    let (lease, _) = c.lease_grant(60, 0).unwrap();
    for k in ["l/a", "l/b", "l/c"] {
        c.put_lease(k.as_bytes(), b"v", lease).unwrap();
    }
    let mut w = Client::connect(server.addr).unwrap();
    watch_prefix(&mut w, b"l/", 0, false);
    let rev = c.lease_revoke(lease).unwrap();
    let r = w.next_watch();
    let keys: Vec<&[u8]> = r.events.iter().map(|e| e.key.as_slice()).collect();
    assert_eq!(keys, vec![&b"l/a"[..], b"l/b", b"l/c"]);
    assert!(r.events.iter().all(|e| !e.put && e.mod_revision == rev));
}

#[test]
fn a_watcher_that_never_reads_stalls_nobody_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut lazy = Client::connect(server.addr).unwrap();
    watch_prefix(&mut lazy, b"s/", 0, true);

    // Far more event bytes than the socket buffers hold (about 40 MiB with
    // previous values), written while the watcher reads nothing.
    let value = vec![b'x'; 8 * 1024];
    let mut c = Client::connect(server.addr).unwrap();
    let mut last = 0;
    for _round in 0..2 {
        for chunk in 0..25 {
            let mut frames = Vec::new();
            for i in 0..100 {
                let id = c.id();
                let key = format!("s/{:04}", chunk * 100 + i).into_bytes();
                frames.extend_from_slice(c.enc.put_request(
                    id,
                    &PutParams {
                        key: &key,
                        value: &value,
                        ..Default::default()
                    },
                ));
            }
            c.send(frames).unwrap();
            for _ in 0..100 {
                let r = c
                    .recv()
                    .expect("writes go on while a watcher does not read");
                assert!(r.error.is_none(), "{:?}", r.error);
                last = last.max(r.revision);
            }
        }
    }
    // Another client is served as usual.
    let mut other = Client::connect(server.addr).unwrap();
    assert!(other.status().is_ok());

    // The watcher, reading at last, gets every revision once, in order.
    let events = flatten(&collect_until(&mut lazy, last));
    let got: Vec<i64> = events.iter().map(|e| e.mod_revision).collect();
    let first = got[0];
    assert_eq!(got, (first..=last).collect::<Vec<_>>());
    assert_eq!(got.len(), 5000);
    assert!(
        events[2500..].iter().all(|e| e.prev.is_some()),
        "second round updates"
    );
}
