//! Test harness shared by the process-level tests: a `cairn` process on
//! free loopback ports, and a minimal blocking client over the native
//! protocol (so these tests depend only on the wire crate).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_wire::{
    decode_response, rpc, Encoder, FrameDecoder, KeyValueRef, PutParams, RangeParams,
    ResponseBodyView, ResponseView, CLIENT_PREFACE,
};

/// A loopback port nobody listens on now, never one this process was
/// handed before: the probe's socket is closed again at once, so the kernel
/// may offer the same port to the next call, and a member given one port
/// for both its client and its peer URLs serves neither properly.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A `cairn` process on free loopback ports, killed when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub peer_port: u16,
    pub extra: Vec<String>,
    pub name: String,
    /// Wait for a successful put before returning from start (single member).
    pub wait_put: bool,
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let mut s = Server {
            child: None,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            data_dir: data_dir.to_path_buf(),
            peer_port: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            name: "e2e".into(),
            wait_put: true,
        };
        s.spawn();
        s
    }

    pub fn spawn(&mut self) {
        // CAIRN_TEST_LOG_LEVEL=info shows the members' logs.
        let level = std::env::var("CAIRN_TEST_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
        let child = self
            .command(&level)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cairn");
        self.child = Some(child);
        if self.wait_put {
            self.wait_ready();
        }
    }

    /// Start the process with its log (info level) in `log`, without
    /// waiting for it to be ready.
    pub fn spawn_logged(&mut self, log: &Path) {
        let file = std::fs::File::create(log).unwrap();
        let child = self
            .command("info")
            .stderr(file)
            .spawn()
            .expect("start cairn");
        self.child = Some(child);
    }

    fn command(&self, log_level: &str) -> Command {
        let client_url = format!("http://{}", self.addr);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.args(["--name", &self.name, "--no-pin", "--cores", "2"])
            .args(["--log-level", log_level])
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
            .stdout(Stdio::null());
        cmd
    }

    /// Ready = a put succeeds (a leader exists and the WAL is open).
    pub fn wait_ready(&self) {
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

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let status = c.wait().expect("wait");
            assert!(status.success(), "cairn exited with {status}");
        }
    }

    pub fn restart(&mut self) {
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
pub struct Client {
    pub stream: TcpStream,
    pub decoder: FrameDecoder,
    pub enc: Encoder,
    pub next_id: u64,
    pub frame: Vec<u8>,
}

/// A key-value pair as the tests look at it: key, value, create revision,
/// mod revision, version.
pub type Kv = (Vec<u8>, Vec<u8>, i64, i64, i64);

/// A decoded response, owned.
#[derive(Debug)]
pub struct Reply {
    pub id: u64,
    pub revision: i64,
    pub member_id: u64,
    pub raft_term: u64,
    pub error: Option<(rpc::ErrorCode, String)>,
    pub kvs: Vec<Kv>,
    pub count: i64,
    pub deleted: i64,
    pub succeeded: bool,
    /// Status: the leader; HashKV: the hash.
    pub leader: u64,
    pub hash: u32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Client> {
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

    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn send(&mut self, frame: Vec<u8>) -> std::io::Result<()> {
        self.stream.write_all(&frame)
    }

    pub fn recv(&mut self) -> std::io::Result<Reply> {
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

    pub fn call(&mut self, frame: Vec<u8>) -> std::io::Result<Reply> {
        self.send(frame)?;
        self.recv()
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Reply, String> {
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

    pub fn get(&mut self, p: RangeParams<'_>) -> Reply {
        let id = self.id();
        let f = self.enc.range_request(id, &p).to_vec();
        self.call(f).expect("range")
    }

    pub fn get_key(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let r = self.get(RangeParams {
            key,
            ..Default::default()
        });
        assert!(r.error.is_none(), "{:?}", r.error);
        r.kvs.first().map(|kv| kv.1.clone())
    }
}

pub fn reply(v: &ResponseView<'_>) -> Reply {
    let mut r = Reply {
        id: v.id,
        revision: v.header.revision,
        member_id: v.header.member_id,
        raft_term: v.header.raft_term,
        leader: 0,
        hash: 0,
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
        Ok(ResponseBodyView::Status(st)) => r.leader = st.leader(),
        Ok(ResponseBodyView::HashKv(h)) => r.hash = h.hash(),
        _ => {}
    }
    r
}

/// A local cluster of `n` members on loopback, each a `cairn` process.
pub struct Cluster {
    pub members: Vec<Server>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let advertised: Vec<u16> = ports.iter().map(|p| p.1).collect();
        Cluster::launch(&ports, &advertised, "e2e-cluster", extra)
    }

    /// Start one member per (client port, peer port), with
    /// `--initial-cluster` naming `advertised` peer ports (the real ones, or
    /// proxies in front of them), and wait for a leader.
    fn launch(ports: &[(u16, u16)], advertised: &[u16], token: &str, extra: &[&str]) -> Cluster {
        let dirs: Vec<tempfile::TempDir> =
            ports.iter().map(|_| tempfile::tempdir().unwrap()).collect();
        let initial: Vec<String> = advertised
            .iter()
            .enumerate()
            .map(|(i, peer)| format!("m{}=http://127.0.0.1:{peer}", i + 1))
            .collect();
        let initial = initial.join(",");
        let mut members = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let mut args: Vec<String> = vec![
                "--initial-cluster".into(),
                initial.clone(),
                "--initial-cluster-token".into(),
                token.into(),
                "--heartbeat-interval".into(),
                "50".into(),
                "--election-timeout".into(),
                "500".into(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut s = Server {
                child: None,
                addr: format!("127.0.0.1:{}", ports[i].0).parse().unwrap(),
                data_dir: dir.path().to_path_buf(),
                peer_port: ports[i].1,
                extra: args,
                name: format!("m{}", i + 1),
                wait_put: false,
            };
            s.spawn();
            members.push(s);
        }
        let c = Cluster {
            members,
            _dirs: dirs,
        };
        c.wait_leader(Duration::from_secs(20));
        c
    }

    /// The index of the member that is leader, as the members agree.
    pub fn wait_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            for (i, m) in self.members.iter().enumerate() {
                if m.child.is_none() {
                    continue;
                }
                if let Ok(mut c) = Client::connect(m.addr) {
                    if let Ok(st) = c.status() {
                        if st.leader != 0 && st.leader == st.member_id {
                            return i;
                        }
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader elected");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Client {
    /// Connect, retrying while the server is still starting.
    pub fn connect_retry(addr: SocketAddr, within: Duration) -> Client {
        let deadline = Instant::now() + within;
        loop {
            match Client::connect(addr) {
                Ok(c) => return c,
                Err(e) => assert!(Instant::now() < deadline, "cannot connect to {addr}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn status(&mut self) -> std::io::Result<Reply> {
        let id = self.id();
        let f = self.enc.status_request(id).to_vec();
        self.call(f)
    }

    pub fn hash_kv(&mut self, revision: i64) -> Reply {
        let id = self.id();
        let f = self.enc.hash_kv_request(id, revision).to_vec();
        self.call(f).expect("hashkv")
    }

    /// Put, retrying through leader changes until `within` has passed.
    pub fn put_retry(
        &mut self,
        key: &[u8],
        value: &[u8],
        within: Duration,
    ) -> Result<Reply, String> {
        let deadline = Instant::now() + within;
        loop {
            match self.put(key, value) {
                Ok(r) => return Ok(r),
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Client {
    /// Pipeline puts of `keys` (value = key) in batches, each batch in one
    /// write; every put must succeed and be answered once, with its id.
    pub fn put_many(&mut self, keys: &[Vec<u8>], batch: usize) {
        for chunk in keys.chunks(batch) {
            let mut frames = Vec::new();
            let mut sent = Vec::new();
            for k in chunk {
                let id = self.id();
                sent.push(id);
                frames.extend_from_slice(self.enc.put_request(
                    id,
                    &PutParams {
                        key: k,
                        value: k,
                        ..Default::default()
                    },
                ));
            }
            self.send(frames).expect("send batch");
            let mut answered = Vec::new();
            for _ in chunk {
                let r = self.recv().expect("reply");
                assert!(r.error.is_none(), "pipelined put failed: {:?}", r.error);
                answered.push(r.id);
            }
            answered.sort_unstable();
            sent.sort_unstable();
            assert_eq!(
                answered, sent,
                "every pipelined put answered once, with its id"
            );
        }
    }
}

// ---- leases and watches ----

/// One watch event as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub put: bool,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub lease: i64,
    /// The previous value and mod revision, when sent.
    pub prev: Option<(Vec<u8>, i64)>,
}

/// A WatchResponse, owned.
#[derive(Debug, Clone, Default)]
pub struct WatchReply {
    pub id: u64,
    pub revision: i64,
    pub watch_id: i64,
    pub created: bool,
    pub canceled: bool,
    pub compact_revision: i64,
    pub cancel_reason: String,
    pub events: Vec<WatchEvent>,
}

/// A lease response, owned: (lease id, ttl, granted ttl, keys).
#[derive(Debug, Clone, Default)]
pub struct LeaseReply {
    pub id: i64,
    pub ttl: i64,
    pub granted_ttl: i64,
    pub keys: Vec<Vec<u8>>,
    pub leases: Vec<i64>,
}

impl Client {
    /// The body of the last received frame as a watch response, if it is one.
    pub fn last_watch(&self) -> Option<WatchReply> {
        let v = decode_response(&self.frame).ok()?;
        let Ok(ResponseBodyView::Watch(w)) = v.body else {
            return None;
        };
        let events = w
            .events()
            .into_iter()
            .flatten()
            .map(|e| {
                let kv = e.kv().map(KeyValueRef::from).unwrap_or_default();
                WatchEvent {
                    put: e.type_() == rpc::EventType::Put,
                    key: kv.key.to_vec(),
                    value: kv.value.to_vec(),
                    mod_revision: kv.mod_revision,
                    lease: kv.lease,
                    prev: e.prev_kv().map(|p| {
                        let p = KeyValueRef::from(p);
                        (p.value.to_vec(), p.mod_revision)
                    }),
                }
            })
            .collect();
        Some(WatchReply {
            id: v.id,
            revision: v.header.revision,
            watch_id: w.watch_id(),
            created: w.created(),
            canceled: w.canceled(),
            compact_revision: w.compact_revision(),
            cancel_reason: w.cancel_reason().unwrap_or("").to_string(),
            events,
        })
    }

    /// The body of the last received frame as a lease response.
    pub fn last_lease(&self) -> LeaseReply {
        let mut r = LeaseReply::default();
        let Ok(v) = decode_response(&self.frame) else {
            return r;
        };
        match v.body {
            Ok(ResponseBodyView::LeaseGrant(g)) => {
                r.id = g.id();
                r.ttl = g.ttl();
            }
            Ok(ResponseBodyView::LeaseKeepAlive(k)) => {
                r.id = k.id();
                r.ttl = k.ttl();
            }
            Ok(ResponseBodyView::LeaseTimeToLive(t)) => {
                r.id = t.id();
                r.ttl = t.ttl();
                r.granted_ttl = t.granted_ttl();
                r.keys = t
                    .keys()
                    .into_iter()
                    .flatten()
                    .map(|k| k.key().map(|b| b.bytes().to_vec()).unwrap_or_default())
                    .collect();
            }
            Ok(ResponseBodyView::LeaseLeases(l)) => {
                r.leases = l.leases().into_iter().flatten().collect();
            }
            _ => {}
        }
        r
    }

    fn lease_call(&mut self, frame: Vec<u8>) -> Result<LeaseReply, String> {
        let r = self.call(frame).map_err(|e| e.to_string())?;
        match r.error {
            Some((_, m)) => Err(m),
            None => Ok(self.last_lease()),
        }
    }

    /// Grant; `id` 0 lets the server pick. Returns (id, granted ttl).
    pub fn lease_grant(&mut self, ttl: i64, id: i64) -> Result<(i64, i64), String> {
        let rid = self.id();
        let f = self.enc.lease_grant_request(rid, ttl, id).to_vec();
        self.lease_call(f).map(|r| (r.id, r.ttl))
    }

    /// Revoke; returns the header revision.
    pub fn lease_revoke(&mut self, id: i64) -> Result<i64, String> {
        let rid = self.id();
        let f = self.enc.lease_revoke_request(rid, id).to_vec();
        let r = self.call(f).map_err(|e| e.to_string())?;
        match r.error {
            Some((_, m)) => Err(m),
            None => Ok(r.revision),
        }
    }

    /// Keep-alive once; returns the TTL (0: the lease is gone).
    pub fn lease_keep_alive(&mut self, id: i64) -> Result<i64, String> {
        let rid = self.id();
        let f = self.enc.lease_keep_alive_request(rid, id).to_vec();
        self.lease_call(f).map(|r| r.ttl)
    }

    pub fn lease_ttl(&mut self, id: i64, keys: bool) -> Result<LeaseReply, String> {
        let rid = self.id();
        let f = self.enc.lease_time_to_live_request(rid, id, keys).to_vec();
        self.lease_call(f)
    }

    pub fn lease_list(&mut self) -> Result<Vec<i64>, String> {
        let rid = self.id();
        let f = self.enc.lease_leases_request(rid).to_vec();
        self.lease_call(f).map(|r| r.leases)
    }

    pub fn put_lease(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<Reply, String> {
        let id = self.id();
        let f = self
            .enc
            .put_request(
                id,
                &PutParams {
                    key,
                    value,
                    lease,
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

    /// Create a watch and return its first response (the created notice,
    /// or a refusal).
    pub fn watch(&mut self, p: &cairn_wire::WatchCreateParams<'_>) -> WatchReply {
        let id = self.id();
        let f = self.enc.watch_create_request(id, p).to_vec();
        self.send(f).expect("send watch");
        let r = self.recv().expect("watch reply");
        assert_eq!(r.id, id, "the first answer is the created notice");
        assert!(r.error.is_none(), "{:?}", r.error);
        self.last_watch().expect("a watch response")
    }

    /// The next frame, which must be a watch response.
    pub fn next_watch(&mut self) -> WatchReply {
        let r = self.recv().expect("watch response");
        assert!(r.error.is_none(), "{:?}", r.error);
        self.last_watch().expect("a watch response")
    }
}

// ---- reliability: linearizability checking, partition proxy, faults ----

pub mod lin;
pub mod proxy;

/// A cluster whose inter-member traffic crosses one [`proxy::Proxy`] per
/// member: each member listens on its real peer port, and the peer URLs in
/// `--initial-cluster` name the proxies. See `proxy.rs` for how links are cut.
pub struct ProxiedCluster {
    pub cluster: Cluster,
    pub proxies: Vec<proxy::Proxy>,
    /// Member ids, by index (what the proxies key their rules on).
    pub ids: Vec<u64>,
}

impl Cluster {
    pub fn start_with_proxies(n: usize, extra: &[&str]) -> ProxiedCluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let proxies: Vec<proxy::Proxy> = ports
            .iter()
            .map(|(_, peer)| proxy::Proxy::start(format!("127.0.0.1:{peer}").parse().unwrap()))
            .collect();
        let advertised: Vec<u16> = proxies.iter().map(|p| p.port).collect();
        let cluster = Cluster::launch(&ports, &advertised, "e2e-proxied", extra);
        let ids = cluster
            .members
            .iter()
            .map(|m| {
                let mut c = Client::connect_retry(m.addr, Duration::from_secs(10));
                c.status().expect("status").member_id
            })
            .collect();
        ProxiedCluster {
            cluster,
            proxies,
            ids,
        }
    }
}

impl ProxiedCluster {
    /// Cut member `k` off from the others, both ways.
    pub fn isolate(&self, k: usize) {
        for (j, p) in self.proxies.iter().enumerate() {
            if j == k {
                p.set_default(proxy::Mode::Drop);
            } else {
                p.set_from(self.ids[k], proxy::Mode::Drop);
            }
        }
    }

    /// Set the rule of the one-way link `from -> to`.
    pub fn set_link(&self, from: usize, to: usize, mode: proxy::Mode) {
        self.proxies[to].set_from(self.ids[from], mode);
    }

    /// Every link passes again.
    pub fn heal(&self) {
        for p in &self.proxies {
            p.heal();
        }
    }
}

impl Server {
    /// SIGSTOP / SIGCONT: the process stays, but stops answering anyone.
    pub fn pause(&self, stopped: bool) {
        if let Some(c) = &self.child {
            let sig = if stopped { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }
}

impl Cluster {
    /// Keep `dir` (the data dir of a member added at run time) until the
    /// cluster is dropped, after its members.
    pub fn keep_dir(&mut self, dir: tempfile::TempDir) {
        self._dirs.push(dir);
    }
}
