//! End-to-end tests of the real `cairn` binary (single member) on
//! loopback, driven over the native protocol.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cairn_wire::{
    rpc, CompareParams, DeleteRangeParams, PutParams, RangeParams, RequestOpParams, TxnParams,
    CLIENT_PREFACE,
};
use common::{Client, Server};

#[test]
fn kv_operations_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();

    let r1 = c.put(b"foo", b"bar").unwrap();
    let r2 = c.put(b"foo", b"baz").unwrap();
    assert_eq!(r2.revision, r1.revision + 1, "one revision per put");
    assert_eq!(c.get_key(b"foo").as_deref(), Some(&b"baz"[..]));

    // Reading at the older revision sees the older value.
    let old = c.get(RangeParams {
        key: b"foo",
        revision: r1.revision,
        ..Default::default()
    });
    assert_eq!(old.kvs[0].1, b"bar");
    assert_eq!(old.kvs[0].4, 1, "version 1 at the first put");

    // Prefix range, serializable, sorted, limited.
    for k in ["p/a", "p/b", "p/c"] {
        c.put(k.as_bytes(), b"v").unwrap();
    }
    let r = c.get(RangeParams {
        key: b"p/",
        range_end: b"p0",
        limit: 2,
        serializable: true,
        ..Default::default()
    });
    assert_eq!(r.kvs.len(), 2);
    assert_eq!(r.count, 3);

    // Delete with prev_kv.
    let id = c.id();
    let f = c
        .enc
        .delete_range_request(
            id,
            &DeleteRangeParams {
                key: b"p/",
                range_end: b"p0",
                prev_kv: true,
            },
        )
        .to_vec();
    let d = c.call(f).unwrap();
    assert_eq!((d.id, d.deleted, d.kvs.len()), (id, 3, 3));

    // Compare-and-swap txn: succeeds once, fails the second time.
    let cmp = [CompareParams {
        result: rpc::CompareResult::Equal,
        target: rpc::CompareTarget::Value,
        key: b"foo",
        value: b"baz",
        ..Default::default()
    }];
    let ops = [RequestOpParams::Put(PutParams {
        key: b"foo",
        value: b"qux",
        ..Default::default()
    })];
    let txn = TxnParams {
        compare: &cmp,
        success: &ops,
        failure: &[],
    };
    let id = c.id();
    let f = c.enc.txn_request(id, &txn).to_vec();
    assert!(c.call(f.clone()).unwrap().succeeded);
    assert!(!c.call(f).unwrap().succeeded);
    assert_eq!(c.get_key(b"foo").as_deref(), Some(&b"qux"[..]));

    // Compaction, then reading below it is refused with etcd's message.
    let rev = c
        .get(RangeParams {
            key: b"foo",
            ..Default::default()
        })
        .revision;
    let id = c.id();
    let f = c.enc.compaction_request(id, rev, false).to_vec();
    assert!(c.call(f).unwrap().error.is_none());
    let r = c.get(RangeParams {
        key: b"foo",
        revision: r1.revision,
        ..Default::default()
    });
    let (code, msg) = r.error.expect("compacted");
    assert_eq!(code, rpc::ErrorCode::OutOfRange);
    assert_eq!(
        msg,
        "etcdserver: mvcc: required revision has been compacted"
    );
    let r = c.get(RangeParams {
        key: b"foo",
        revision: rev + 100,
        ..Default::default()
    });
    assert_eq!(
        r.error.unwrap().1,
        "etcdserver: mvcc: required revision is a future revision"
    );

    // Empty key.
    let e = c.put(b"", b"x").unwrap_err();
    assert_eq!(e, "etcdserver: key is not provided");
}

#[test]
fn pipelined_requests_are_all_answered_with_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();
    let n = 500;
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("k{i}").into_bytes()).collect();
    c.put_many(&keys, n);
    let r = c.get(RangeParams {
        key: b"k",
        range_end: b"l",
        count_only: true,
        ..Default::default()
    });
    assert_eq!(r.count, n as i64);
}

#[test]
fn acknowledged_writes_survive_restart_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();
    for i in 0..50 {
        c.put(format!("a{i}").as_bytes(), format!("{i}").as_bytes())
            .unwrap();
    }
    server.restart();
    let mut c = Client::connect(server.addr).unwrap();
    for i in 0..50 {
        assert_eq!(
            c.get_key(format!("a{i}").as_bytes()),
            Some(format!("{i}").into_bytes())
        );
    }

    // A writer streams puts from another thread; kill -9 mid-stream.
    let addr = server.addr;
    let writer = std::thread::spawn(move || {
        let mut acked = Vec::new();
        let Ok(mut c) = Client::connect(addr) else {
            return acked;
        };
        for i in 0..100_000u32 {
            match c.put(format!("b{i}").as_bytes(), b"x") {
                Ok(_) => acked.push(i),
                Err(_) => break,
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(400));
    server.kill9();
    let acked = writer.join().unwrap();
    assert!(
        !acked.is_empty(),
        "the writer got some acknowledgements before the kill"
    );
    server.spawn();
    let mut c = Client::connect(server.addr).unwrap();
    for i in &acked {
        assert_eq!(
            c.get_key(format!("b{i}").as_bytes()).as_deref(),
            Some(&b"x"[..]),
            "acknowledged put b{i} lost"
        );
    }
}

#[test]
fn bad_input_gets_errors_and_other_clients_keep_being_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut good = Client::connect(server.addr).unwrap();
    good.put(b"k", b"v").unwrap();

    // 1. Random bytes instead of a preface (neither cairn's, nor HTTP/2's,
    // nor an HTTP/1 request line): the connection is closed.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"\x00\xffnot a preface\r\n\r\n").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "server closes a connection with a bad preface"
    );

    // 2. A length over the limit: closed without reading the body.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&CLIENT_PREFACE).unwrap();
    s.write_all(&(100u32 << 20).to_le_bytes()).unwrap();
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "server closes on an oversized frame"
    );

    // 3. A frame that fails verification: an error response, connection stays.
    let mut c = Client::connect(server.addr).unwrap();
    let mut junk = 64u32.to_le_bytes().to_vec();
    junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    c.send(junk).unwrap();
    let r = c.recv().unwrap();
    let (code, _) = r.error.expect("error response");
    assert_eq!(code, rpc::ErrorCode::InvalidArgument);
    c.put(b"still", b"works").unwrap();

    // 4. A txn over the op limit.
    let ops: Vec<RequestOpParams<'_>> = (0..200)
        .map(|_| {
            RequestOpParams::Range(RangeParams {
                key: b"k",
                ..Default::default()
            })
        })
        .collect();
    let id = c.id();
    let f = c
        .enc
        .txn_request(
            id,
            &TxnParams {
                compare: &[],
                success: &ops,
                failure: &[],
            },
        )
        .to_vec();
    let r = c.call(f).unwrap();
    assert_eq!(
        r.error.expect("too many ops").1,
        "etcdserver: too many operations in txn request"
    );

    // The first client never noticed any of it.
    assert_eq!(good.get_key(b"k").as_deref(), Some(&b"v"[..]));
    good.put(b"k2", b"v2").unwrap();
}

#[test]
fn snapshots_are_taken_and_restarts_load_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--snapshot-count", "200"]);
    let mut c = Client::connect(server.addr).unwrap();
    for i in 0..1000 {
        c.put(format!("s{i:04}").as_bytes(), format!("v{i}").as_bytes())
            .unwrap();
    }
    // Overwrite some keys so history (not just latest values) must survive.
    let before = c.put(b"s0000", b"again").unwrap().revision;
    let snap_dir = dir.path().join("member").join("snap");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&snap_dir).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no snapshot file appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.restart();
    let mut c = Client::connect(server.addr).unwrap();
    let r = c.get(RangeParams {
        key: b"s",
        range_end: b"t",
        count_only: true,
        ..Default::default()
    });
    assert_eq!(r.count, 1000);
    assert_eq!(c.get_key(b"s0999").as_deref(), Some(&b"v999"[..]));
    assert_eq!(c.get_key(b"s0000").as_deref(), Some(&b"again"[..]));
    let old = c.get(RangeParams {
        key: b"s0000",
        revision: before - 1,
        ..Default::default()
    });
    assert_eq!(
        old.kvs[0].1, b"v0",
        "history from before the snapshot survives a restart"
    );
    let next = c.put(b"after", b"restart").unwrap().revision;
    assert_eq!(
        next,
        before + 2,
        "revisions continue where they were (one put for readiness)"
    );
}

#[test]
fn quota_raises_nospace_and_compaction_plus_disarm_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--quota-backend-bytes", "65536"]);
    let mut c = Client::connect(server.addr).unwrap();
    let value = vec![b'x'; 1024];
    let mut refused = None;
    for _ in 0..200 {
        match c.put(b"big", &value) {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        refused.as_deref(),
        Some("etcdserver: mvcc: database space exceeded")
    );
    // Reads and deletes still work.
    assert!(c.get_key(b"big").is_some());
    let id = c.id();
    let f = c
        .enc
        .alarm_request(id, rpc::AlarmAction::Get, 0, rpc::AlarmType::None)
        .to_vec();
    let r = c.call(f).unwrap();
    assert!(r.error.is_none());
    // Compact away the history, disarm, write again.
    let rev = c
        .get(RangeParams {
            key: b"big",
            ..Default::default()
        })
        .revision;
    let id = c.id();
    let f = c.enc.compaction_request(id, rev, true).to_vec();
    assert!(c.call(f).unwrap().error.is_none());
    let id = c.id();
    let f = c
        .enc
        .alarm_request(id, rpc::AlarmAction::Deactivate, 0, rpc::AlarmType::NoSpace)
        .to_vec();
    assert!(c.call(f).unwrap().error.is_none());
    c.put(b"small", b"ok")
        .expect("writes accepted after compaction and disarm");
}

#[test]
fn a_relative_data_dir_works() {
    // The default data dir (`./default.cairn`) is relative; so is any an
    // operator types. Run from a scratch working directory.
    let cwd = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let peer = common::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .current_dir(cwd.path())
        .args(["--no-pin", "--log-level", "warn", "--data-dir", "rel.cairn"])
        .args(["--listen-client-urls", &format!("http://127.0.0.1:{port}")])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ok = loop {
        if let Ok(mut c) = Client::connect(addr) {
            if c.put(b"k", b"v").is_ok() {
                break true;
            }
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "cairn with a relative --data-dir did not serve a put");
    assert!(cwd
        .path()
        .join("rel.cairn")
        .join("member")
        .join("wal")
        .is_dir());
}

/// Requests sent right after a restart, while the member re-applies its
/// log, get their own answers: none is answered with the reply of an
/// entry proposed before the restart, and none sees state older than what
/// was acknowledged before it.
#[test]
fn requests_during_the_start_up_replay_get_their_own_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();
    let keys: Vec<Vec<u8>> = (0..3000)
        .map(|i| format!("old/{i:05}").into_bytes())
        .collect();
    c.put_many(&keys, 500);
    let before = c.put(b"marker", b"1").unwrap().revision;
    drop(c);
    server.kill9();
    server.wait_put = false;
    server.spawn();
    // A pipelined burst the moment the port answers. A connection can
    // land on the killed process's socket in its last milliseconds (it is
    // then reset): the burst is sent again on a new one.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        let mut c = Client::connect_retry(server.addr, Duration::from_secs(20));
        let mut frames = Vec::new();
        let mut ids = Vec::new();
        for i in 0..50 {
            let id = c.id();
            ids.push(id);
            let key = format!("new/{i:02}");
            frames.extend_from_slice(c.enc.put_request(
                id,
                &cairn_wire::PutParams {
                    key: key.as_bytes(),
                    value: b"v",
                    ..Default::default()
                },
            ));
        }
        let answers: std::io::Result<Vec<common::Reply>> = c
            .send(frames)
            .and_then(|()| ids.iter().map(|_| c.recv()).collect());
        let Ok(answers) = answers else {
            assert!(std::time::Instant::now() < deadline, "no connection kept");
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        for (id, r) in ids.iter().zip(answers) {
            assert_eq!(r.id, *id);
            assert!(r.error.is_none(), "{:?}", r.error);
            assert!(
                r.revision > before,
                "a put after the restart answered at revision {} (before: {before})",
                r.revision
            );
        }
        break c;
    };
    assert_eq!(c.get_key(b"marker"), Some(b"1".to_vec()));
    assert_eq!(c.get_key(b"new/49"), Some(b"v".to_vec()));
}

/// The named connection limits: past `--max-client-conns-per-core` a new
/// connection is closed at once (the others keep being served, and a slot
/// frees when one closes); a frame left half-sent longer than
/// `--frame-timeout-ms` closes its connection, while an idle connection
/// between frames stays open.
#[test]
fn connection_limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    // Two executors: the shard's serves no clients, so the other's limit is
    // the server's.
    let server = Server::start(
        dir.path(),
        &[
            "--max-client-conns-per-core",
            "3",
            "--frame-timeout-ms",
            "300",
        ],
    );
    let refused = |addr| -> bool {
        match Client::connect(addr) {
            Err(_) => true,
            Ok(mut c) => c.put(b"k", b"v").is_err(),
        }
    };
    // A connection that is served (the start-up check's own connection
    // may hold a slot for a moment after it closed).
    let served = |addr| -> Client {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(mut c) = Client::connect(addr) {
                if c.put(b"k", b"v").is_ok() {
                    return c;
                }
            }
            assert!(Instant::now() < deadline, "no slot within the limit");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut held: Vec<Client> = (0..3).map(|_| served(server.addr)).collect();
    assert!(refused(server.addr), "a fourth connection is closed");
    held[0]
        .put(b"k", b"v")
        .expect("the others are still served");
    held.pop();
    held.push(served(server.addr));
    drop(held);
    std::thread::sleep(Duration::from_millis(200));

    // Half a frame, then nothing: closed after the frame timeout.
    let mut slow = Client::connect_retry(server.addr, Duration::from_secs(5));
    let id = slow.id();
    let frame = slow
        .enc
        .put_request(
            id,
            &cairn_wire::PutParams {
                key: b"slow",
                value: b"v",
                ..Default::default()
            },
        )
        .to_vec();
    slow.send(frame[..frame.len() / 2].to_vec()).unwrap();
    // An idle connection with no frame started is left alone.
    let mut idle = Client::connect_retry(server.addr, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(900));
    assert!(
        slow.recv().is_err(),
        "the stalled frame's connection is closed"
    );
    idle.put(b"idle", b"v")
        .expect("an idle connection stays open");
}
