//! A lone client's connection moves to the shard's executor and back as
//! other connections come and go and as it starts pipelining
//! (`engine/src/server/handoff.rs`). Clients must notice nothing: every
//! request answered once, in its connection, with its id, and the
//! connection open throughout.

mod common;

use std::time::Duration;

use cairn_wire::{PutParams, RangeParams};
use common::{Client, Server};

fn put_and_check(c: &mut Client, prefix: &str, n: usize) {
    for i in 0..n {
        let key = format!("{prefix}/{i}");
        c.put(key.as_bytes(), format!("v{i}").as_bytes())
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
        assert_eq!(
            c.get_key(key.as_bytes()),
            Some(format!("v{i}").into_bytes()),
            "{key} reads back"
        );
    }
}

/// Send `n` puts in one write; each is answered once, with its id.
fn pipeline(c: &mut Client, prefix: &str, n: usize) {
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("{prefix}/{i}").into_bytes())
        .collect();
    c.put_many(&keys, n);
}

fn count(c: &mut Client, prefix: &str) -> i64 {
    let start = format!("{prefix}/");
    let end = format!("{prefix}0");
    let r = c.get(RangeParams {
        key: start.as_bytes(),
        range_end: end.as_bytes(),
        count_only: true,
        ..Default::default()
    });
    r.count
}

#[test]
fn a_connection_that_moves_between_executors_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Two executors (the test servers' default): the shard's and one more.
    let server = Server::start(dir.path(), &[]);

    // Alone and sequential: after its first answer the connection moves to
    // the shard's executor.
    let mut a = Client::connect(server.addr).unwrap();
    put_and_check(&mut a, "alone", 30);

    // A second connection: the first moves back when it is next quiet,
    // while the second pipelines on the other executor.
    let mut b = Client::connect(server.addr).unwrap();
    for round in 0..5 {
        put_and_check(&mut a, &format!("shared{round}"), 5);
        pipeline(&mut b, &format!("b{round}"), 50);
    }
    drop(b);

    // Alone again: it moves to the shard's executor again (the server
    // notices the closed connection a moment later).
    std::thread::sleep(Duration::from_millis(100));
    put_and_check(&mut a, "again", 30);

    // Pipelining from there: back to the other executor, every answer
    // with its id.
    pipeline(&mut a, "piped", 200);
    put_and_check(&mut a, "after", 10);

    // A frame that arrives in two pieces, with a pause between them, on a
    // connection that may move: answered once, correctly.
    let mut c = Client::connect(server.addr).unwrap();
    put_and_check(&mut c, "split-before", 3);
    let frame = c
        .enc
        .put_request(
            77,
            &PutParams {
                key: b"split/0",
                value: b"whole",
                ..Default::default()
            },
        )
        .to_vec();
    let (head, tail) = frame.split_at(frame.len() / 2);
    c.send(head.to_vec()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.send(tail.to_vec()).unwrap();
    assert_eq!(c.recv().unwrap().id, 77);
    assert_eq!(c.get_key(b"split/0"), Some(b"whole".to_vec()));

    let mut check = Client::connect(server.addr).unwrap();
    assert_eq!(count(&mut check, "alone"), 30);
    for round in 0..5 {
        assert_eq!(count(&mut check, &format!("shared{round}")), 5);
        assert_eq!(count(&mut check, &format!("b{round}")), 50);
    }
    assert_eq!(count(&mut check, "again"), 30);
    assert_eq!(count(&mut check, "piped"), 200);
    assert_eq!(count(&mut check, "after"), 10);
}

#[test]
fn a_lone_watcher_keeps_its_events_whatever_its_puts_did_before() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // Puts first (the connection moves to the shard's executor), then a
    // watch on the same connection: it stays there, and its events arrive
    // when a second connection writes.
    let mut a = Client::connect(server.addr).unwrap();
    put_and_check(&mut a, "w", 5);
    let created = a.watch(&cairn_wire::WatchCreateParams {
        key: b"watched",
        ..Default::default()
    });
    assert!(created.created, "{created:?}");
    let mut b = Client::connect(server.addr).unwrap();
    for i in 0..3 {
        b.put(b"watched", format!("{i}").as_bytes()).unwrap();
    }
    drop(b);
    let mut values = Vec::new();
    while values.len() < 3 {
        let r = a.next_watch();
        values.extend(r.events.iter().map(|e| e.value.clone()));
    }
    assert_eq!(values, vec![b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]);
    // Alone again, with a watch: the connection stays where it is and is
    // served as before.
    std::thread::sleep(Duration::from_millis(100));
    put_and_check(&mut a, "w-after", 3);
}
