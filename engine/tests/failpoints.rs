//! Crashes at the failpoints (see `src/failpoint.rs`): for each one, a
//! three-member cluster with the failpoint armed on one member takes
//! writes until that member dies there; it is restarted unarmed, and then
//! every acknowledged write is on every member and `hash_kv` agrees.
//!
//! Compiled only with the `failpoints` feature (`required-features` in
//! `Cargo.toml`); `scripts/test` runs it in a second nextest invocation:
//! `cargo nextest run -p cairn-engine --features failpoints --test failpoints`.

mod common;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_wire::RangeParams;
use common::{free_port, Client};

/// Entries between snapshots: small, so the snapshot failpoints are hit
/// after a few hundred writes.
const SNAPSHOT_COUNT: &str = "100";
/// Writes that make the leader send a cut-off member a snapshot: more than
/// it keeps in memory behind its latest snapshot.
const WRITES_FOR_INSTALL: usize = 6_500;
/// Most writes sent while waiting for the armed member to die.
const WRITES_MAX: usize = 3_000;

struct Member {
    name: String,
    client: SocketAddr,
    peer: u16,
    dir: PathBuf,
    child: Option<Child>,
    stderr: PathBuf,
}

struct Cluster {
    members: Vec<Member>,
    initial: String,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let members: Vec<Member> = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| Member {
                name: format!("m{}", i + 1),
                client: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
                peer: free_port(),
                dir: d.path().join("data"),
                child: None,
                stderr: d.path().join("stderr.log"),
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        Cluster {
            members,
            initial,
            _dirs: dirs,
        }
    }

    /// Starts member `i`, with `failpoints` in its environment if given.
    fn spawn(&mut self, i: usize, failpoints: Option<&str>) {
        let m = &mut self.members[i];
        let client_url = format!("http://{}", m.client);
        let peer_url = format!("http://127.0.0.1:{}", m.peer);
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&m.stderr)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.args([
            "--name",
            &m.name,
            "--no-pin",
            "--cores",
            "2",
            "--log-level",
            "warn",
        ])
        .arg("--data-dir")
        .arg(&m.dir)
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
        .args([
            "--initial-cluster",
            &self.initial,
            "--initial-cluster-token",
            "fp",
        ])
        .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
        .args(["--snapshot-count", SNAPSHOT_COUNT])
        .env_remove(cairn_engine::failpoint::ENV_VAR)
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
        if let Some(fp) = failpoints {
            cmd.env(cairn_engine::failpoint::ENV_VAR, fp);
        }
        m.child = Some(cmd.spawn().expect("start cairn"));
    }

    /// Restarts member `i` without failpoints. While it was down, one of
    /// the many loopback connections may have been given its port as a
    /// local (ephemeral) port; then it cannot listen yet, and is retried.
    fn respawn_unarmed(&mut self, i: usize) {
        for _ in 0..40 {
            let before = stderr_of(&self.members[i].stderr).len();
            self.spawn(i, None);
            std::thread::sleep(Duration::from_millis(300));
            if !self.exited(i) {
                return;
            }
            let log = stderr_of(&self.members[i].stderr);
            assert!(
                log[before..].contains("address already in use"),
                "{} did not restart:\n{}",
                self.members[i].name,
                &log[before..]
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("{}: its ports stayed taken", self.members[i].name);
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether member `i` has exited (and reaps it).
    fn exited(&mut self, i: usize) -> bool {
        match self.members[i].child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(_))) => {
                self.members[i].child = None;
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    fn client(&self, i: usize) -> Client {
        Client::connect_retry(self.members[i].client, Duration::from_secs(20))
    }

    /// Waits until a put through member `i` succeeds.
    fn wait_writable(&self, i: usize) {
        let mut c = self.client(i);
        c.put_retry(b"__ready", b"1", Duration::from_secs(30))
            .expect("the cluster takes writes");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for m in &self.members {
                let log = stderr_of(&m.stderr);
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                eprintln!("--- {} stderr (last lines, newest first):", m.name);
                for l in tail {
                    eprintln!("{l}");
                }
            }
        }
        for i in 0..self.members.len() {
            self.kill9(i);
        }
    }
}

fn stderr_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Puts `fp/<n>` through members 1 and 2 in turn until `done()` or
/// `max` writes; returns the acknowledged keys. A failed put (leader
/// change) is retried on the other member; one that still fails is not
/// acknowledged and not checked.
fn write_until(
    cl: &mut Cluster,
    first: usize,
    max: usize,
    mut done: impl FnMut(&mut Cluster) -> bool,
) -> Vec<Vec<u8>> {
    let mut clients = [cl.client(1), cl.client(2)];
    let mut acked = Vec::new();
    for n in first..first + max {
        if n % 20 == 0 && done(cl) {
            break;
        }
        let key = format!("fp/{n:06}").into_bytes();
        let c = &mut clients[n % 2];
        if c.put_retry(&key, &key, Duration::from_secs(10)).is_ok() {
            acked.push(key);
        } else {
            clients[n % 2] = cl.client(1 + n % 2);
        }
    }
    acked
}

/// Pipelines `n` puts of `bulk/<i>` through member 1 in batches; returns
/// the acknowledged keys (a put answered with an error, e.g. a timeout
/// while the cluster is busy, is simply not acknowledged).
fn bulk_puts(cl: &Cluster, n: usize) -> Vec<Vec<u8>> {
    let mut c = cl.client(1);
    let mut acked = Vec::new();
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("bulk/{i:06}").into_bytes())
        .collect();
    for chunk in keys.chunks(500) {
        let mut frames = Vec::new();
        let mut ids = std::collections::HashMap::new();
        for k in chunk {
            let id = c.id();
            ids.insert(id, k.clone());
            frames.extend_from_slice(c.enc.put_request(
                id,
                &cairn_wire::PutParams {
                    key: k,
                    value: k,
                    ..Default::default()
                },
            ));
        }
        c.send(frames).expect("send batch");
        for _ in chunk {
            let r = c.recv().expect("reply");
            if r.error.is_none() {
                acked.extend(ids.remove(&r.id));
            }
        }
    }
    assert!(acked.len() * 2 > n, "most bulk puts failed");
    acked
}

/// Every acknowledged key is on every member (serializable reads, once
/// each member has applied everything), and `hash_kv` agrees.
fn check_all(cl: &Cluster, acked: &[Vec<u8>], what: &str) {
    // A last write through the leader's quorum, then wait for every member
    // to reach its revision.
    let mut c = cl.client(1);
    let last = c
        .put_retry(b"__last", b"1", Duration::from_secs(30))
        .expect("final write");
    let rev = last.revision;
    for (i, m) in cl.members.iter().enumerate() {
        let mut c = cl.client(i);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = c.get(RangeParams {
                key: b"__last",
                serializable: true,
                ..Default::default()
            });
            if r.error.is_none() && r.revision >= rev {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {} did not catch up to revision {rev}",
                m.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for key in acked {
            let r = c.get(RangeParams {
                key,
                serializable: true,
                ..Default::default()
            });
            assert!(
                r.kvs.iter().any(|kv| kv.0 == *key),
                "{what}: acknowledged {} missing on {}",
                String::from_utf8_lossy(key),
                m.name
            );
        }
    }
    let hashes: Vec<u32> = (0..cl.members.len())
        .map(|i| cl.client(i).hash_kv(rev).hash)
        .collect();
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "{what}: hash_kv differs at revision {rev}: {hashes:?}"
    );
}

/// Three-member clusters on two cores starve each other's election
/// timers: the tests of this binary (one process each under nextest) take
/// turns through a lock file.
fn cluster_lock() -> File {
    let path = std::env::temp_dir().join("cairn-failpoints-tests.lock");
    let f = File::create(&path).expect("create lock file");
    // Released when the file is closed, also if the test process dies.
    nix::fcntl::flock(
        std::os::fd::AsRawFd::as_raw_fd(&f),
        nix::fcntl::FlockArg::LockExclusive,
    )
    .expect("flock");
    f
}

/// Arms `point` on member 0, drives the cluster to it, restarts the member
/// unarmed and checks everything acknowledged.
fn crash_at(point: &str, spec: &str) {
    let install = point.contains("install");
    let _one_at_a_time = cluster_lock();
    let mut cl = Cluster::new(3);
    for i in 0..3 {
        let armed = i == 0 && !install;
        cl.spawn(i, armed.then_some(spec));
    }
    cl.wait_writable(1);
    let mut acked = Vec::new();
    if install {
        // Cut member 0 off until it can only catch up from a snapshot,
        // then bring it back armed.
        cl.kill9(0);
        acked.extend(bulk_puts(&cl, WRITES_FOR_INSTALL));
        cl.spawn(0, Some(spec));
    }
    if point == "compact-during" {
        acked.extend(write_until(&mut cl, 0, 50, |_| false));
        let mut c = cl.client(1);
        let rev = c.put(b"__compact", b"1").expect("put").revision;
        let id = c.id();
        let f = c.enc.compaction_request(id, rev, false).to_vec();
        let r = c.call(f).expect("compaction answered");
        assert!(r.error.is_none(), "compaction failed: {:?}", r.error);
    }
    let first = acked.len();
    acked.extend(write_until(&mut cl, first, WRITES_MAX, |cl| cl.exited(0)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cl.exited(0) {
        assert!(
            Instant::now() < deadline,
            "{point}: the armed member never reached the failpoint"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = stderr_of(&cl.members[0].stderr);
    assert!(
        log.contains(&format!("failpoint {point} hit")),
        "{point}: the member died, but not at the failpoint:\n{log}"
    );
    // Writes go on without it, then it comes back unarmed.
    let first = 1_000_000;
    acked.extend(write_until(&mut cl, first, 100, |_| false));
    cl.respawn_unarmed(0);
    check_all(&cl, &acked, point);
    eprintln!(
        "{point} ({spec}): member died at the failpoint; {} acknowledged writes present on all 3 members after its restart, hash_kv equal",
        acked.len()
    );
}

#[test]
fn crash_before_wal_save() {
    crash_at("wal-before-save", "wal-before-save=panic@200");
}

#[test]
fn crash_after_wal_save() {
    crash_at("wal-after-save", "wal-after-save=panic@200");
}

#[test]
fn crash_before_apply() {
    crash_at("apply-before", "apply-before=panic@200");
}

#[test]
fn crash_after_apply() {
    crash_at("apply-after", "apply-after=panic@200");
}

#[test]
fn crash_before_snapshot_save() {
    crash_at("snap-before-save", "snap-before-save=panic@2");
}

#[test]
fn crash_after_snapshot_save() {
    crash_at("snap-after-save", "snap-after-save=panic@2");
}

#[test]
fn crash_before_snapshot_install() {
    crash_at("snap-before-install", "snap-before-install=panic");
}

#[test]
fn crash_after_snapshot_install() {
    crash_at("snap-after-install", "snap-after-install=panic");
}

#[test]
fn crash_during_compaction() {
    crash_at("compact-during", "compact-during=panic");
}
