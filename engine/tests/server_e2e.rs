//! End-to-end tests of the real `cairn` binary on loopback, driven over the
//! native protocol with a small synchronous client written here (so these
//! tests depend only on the wire crate).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_wire::{
    decode_response, rpc, CompareParams, DeleteRangeParams, Encoder, FrameDecoder, KeyValueRef,
    PutParams, RangeParams, RequestOpParams, ResponseBodyView, ResponseView, TxnParams,
    CLIENT_PREFACE,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `cairn` process on free loopback ports, killed when dropped.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    data_dir: PathBuf,
    peer_port: u16,
    extra: Vec<String>,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let mut s = Server {
            child: None,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            data_dir: data_dir.to_path_buf(),
            peer_port: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let client_url = format!("http://{}", self.addr);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                "--name",
                "e2e",
                "--no-pin",
                "--cores",
                "2",
                "--log-level",
                "warn",
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cairn");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Ready = a put succeeds (a leader exists and the WAL is open).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = Client::connect(self.addr) {
                if c.put(b"__ready", b"1").is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "cairn did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let status = c.wait().expect("wait");
            assert!(status.success(), "cairn exited with {status}");
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal blocking client: one request at a time, or pipelined batches.
struct Client {
    stream: TcpStream,
    decoder: FrameDecoder,
    enc: Encoder,
    next_id: u64,
    frame: Vec<u8>,
}

/// A decoded response, owned.
#[derive(Debug)]
struct Reply {
    id: u64,
    revision: i64,
    error: Option<(rpc::ErrorCode, String)>,
    kvs: Vec<(Vec<u8>, Vec<u8>, i64, i64, i64)>,
    count: i64,
    deleted: i64,
    succeeded: bool,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(&CLIENT_PREFACE)?;
        Ok(Client {
            stream,
            decoder: FrameDecoder::for_responses(),
            enc: Encoder::new(),
            next_id: 1,
            frame: Vec::new(),
        })
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, frame: Vec<u8>) -> std::io::Result<()> {
        self.stream.write_all(&frame)
    }

    fn recv(&mut self) -> std::io::Result<Reply> {
        loop {
            if let Some(f) = self.decoder.next_frame().map_err(std::io::Error::other)? {
                self.frame = f.to_vec();
                let view = decode_response(&self.frame).map_err(std::io::Error::other)?;
                return Ok(reply(&view));
            }
            let buf = self.decoder.read_buf();
            let n = self.stream.read(buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.decoder.commit(n).map_err(std::io::Error::other)?;
        }
    }

    fn call(&mut self, frame: Vec<u8>) -> std::io::Result<Reply> {
        self.send(frame)?;
        self.recv()
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Reply, String> {
        let id = self.id();
        let f = self
            .enc
            .put_request(
                id,
                &PutParams {
                    key,
                    value,
                    ..Default::default()
                },
            )
            .to_vec();
        let r = self.call(f).map_err(|e| e.to_string())?;
        match &r.error {
            Some((_, m)) => Err(m.clone()),
            None => Ok(r),
        }
    }

    fn get(&mut self, p: RangeParams<'_>) -> Reply {
        let id = self.id();
        let f = self.enc.range_request(id, &p).to_vec();
        self.call(f).expect("range")
    }

    fn get_key(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let r = self.get(RangeParams {
            key,
            ..Default::default()
        });
        assert!(r.error.is_none(), "{:?}", r.error);
        r.kvs.first().map(|kv| kv.1.clone())
    }
}

fn reply(v: &ResponseView<'_>) -> Reply {
    let mut r = Reply {
        id: v.id,
        revision: v.header.revision,
        error: v.body.err().map(|e| (e.code, e.message.to_string())),
        kvs: Vec::new(),
        count: 0,
        deleted: 0,
        succeeded: false,
    };
    let own = |kv: KeyValueRef<'_>| {
        (
            kv.key.to_vec(),
            kv.value.to_vec(),
            kv.create_revision,
            kv.mod_revision,
            kv.version,
        )
    };
    match v.body {
        Ok(ResponseBodyView::Range(rr)) => {
            r.kvs = rr
                .kvs()
                .into_iter()
                .flatten()
                .map(|kv| own(kv.into()))
                .collect();
            r.count = rr.count();
        }
        Ok(ResponseBodyView::DeleteRange(d)) => {
            r.deleted = d.deleted();
            r.kvs = d
                .prev_kvs()
                .into_iter()
                .flatten()
                .map(|kv| own(kv.into()))
                .collect();
        }
        Ok(ResponseBodyView::Put(p)) => {
            r.kvs = p.prev_kv().into_iter().map(|kv| own(kv.into())).collect();
        }
        Ok(ResponseBodyView::Txn(t)) => r.succeeded = t.succeeded(),
        _ => {}
    }
    r
}

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
    let mut batch = Vec::new();
    for i in 0..n {
        let key = format!("k{i}");
        batch.extend_from_slice(c.enc.put_request(
            1000 + i,
            &PutParams {
                key: key.as_bytes(),
                value: b"v",
                ..Default::default()
            },
        ));
    }
    c.send(batch).unwrap();
    let mut ids: Vec<u64> = (0..n).map(|_| c.recv().unwrap().id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1000..1000 + n).collect::<Vec<_>>());
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

    // 1. Random bytes instead of a preface: the connection is closed.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
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
        c.put(format!("s{i:04}").as_bytes(), format!("v{i}").as_bytes()).unwrap();
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
    let r = c.get(RangeParams { key: b"s", range_end: b"t", count_only: true, ..Default::default() });
    assert_eq!(r.count, 1000);
    assert_eq!(c.get_key(b"s0999").as_deref(), Some(&b"v999"[..]));
    assert_eq!(c.get_key(b"s0000").as_deref(), Some(&b"again"[..]));
    let old = c.get(RangeParams { key: b"s0000", revision: before - 1, ..Default::default() });
    assert_eq!(old.kvs[0].1, b"v0", "history from before the snapshot survives a restart");
    let next = c.put(b"after", b"restart").unwrap().revision;
    assert_eq!(next, before + 2, "revisions continue where they were (one put for readiness)");
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
    assert_eq!(refused.as_deref(), Some("etcdserver: mvcc: database space exceeded"));
    // Reads and deletes still work.
    assert!(c.get_key(b"big").is_some());
    let id = c.id();
    let f = c.enc.alarm_request(id, rpc::AlarmAction::Get, 0, rpc::AlarmType::None).to_vec();
    let r = c.call(f).unwrap();
    assert!(r.error.is_none());
    // Compact away the history, disarm, write again.
    let rev = c.get(RangeParams { key: b"big", ..Default::default() }).revision;
    let id = c.id();
    let f = c.enc.compaction_request(id, rev, true).to_vec();
    assert!(c.call(f).unwrap().error.is_none());
    let id = c.id();
    let f = c.enc.alarm_request(id, rpc::AlarmAction::Deactivate, 0, rpc::AlarmType::NoSpace).to_vec();
    assert!(c.call(f).unwrap().error.is_none());
    c.put(b"small", b"ok").expect("writes accepted after compaction and disarm");
}
