//! Runtime membership, end to end, with `cairn` processes: grow a cluster
//! from 1 to 5 members through learners while a writer runs, shrink it to
//! 3, replace a dead member with a new one on an empty data dir, remove the
//! leader. No acknowledged write is lost, every member ends with the same
//! hashkv, and a removed member exits with an error. A member added after
//! many writes installs one snapshot and catches up from the log.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_wire::{decode_response, RangeParams, ResponseBodyView};
use common::{free_port, Client, Cluster, Server};

const WITHIN: Duration = Duration::from_secs(20);

/// (id, name, first peer URL, is_learner) of every member.
type MemberRow = (u64, String, String, bool);

fn members_of(frame: &[u8]) -> Vec<MemberRow> {
    let view = decode_response(frame).expect("decode");
    let list = match view.body {
        Ok(ResponseBodyView::MemberList(r)) => r.members(),
        Ok(ResponseBodyView::MemberAdd(r)) => r.members(),
        Ok(ResponseBodyView::MemberRemove(r)) => r.members(),
        Ok(ResponseBodyView::MemberPromote(r)) => r.members(),
        other => panic!("not a member response: {:?}", other.err()),
    };
    list.into_iter()
        .flatten()
        .map(|m| {
            (
                m.id(),
                m.name().unwrap_or("").to_string(),
                m.peer_urls()
                    .and_then(|u| u.iter().next())
                    .unwrap_or("")
                    .to_string(),
                m.is_learner(),
            )
        })
        .collect()
}

fn member_list(c: &mut Client) -> Vec<MemberRow> {
    let id = c.id();
    let f = c.enc.member_list_request(id, true).to_vec();
    let r = c.call(f).expect("member list");
    assert!(r.error.is_none(), "{:?}", r.error);
    members_of(&c.frame)
}

/// Add a member; returns its id, or the error message.
fn member_add(c: &mut Client, peer_url: &str, learner: bool) -> Result<u64, String> {
    let id = c.id();
    let f = c.enc.member_add_request(id, &[peer_url], learner).to_vec();
    let r = c.call(f).map_err(|e| e.to_string())?;
    if let Some((_, m)) = r.error {
        return Err(m);
    }
    let view = decode_response(&c.frame).expect("decode");
    let Ok(ResponseBodyView::MemberAdd(a)) = view.body else {
        panic!("not a MemberAdd answer")
    };
    let added = a.member().expect("added member");
    assert_eq!(added.is_learner(), learner);
    Ok(added.id())
}

fn member_call(c: &mut Client, frame: Vec<u8>) -> Result<Vec<MemberRow>, String> {
    let r = c.call(frame).map_err(|e| e.to_string())?;
    match r.error {
        Some((_, m)) => Err(m),
        None => Ok(members_of(&c.frame)),
    }
}

fn member_remove(c: &mut Client, member: u64) -> Result<Vec<MemberRow>, String> {
    let id = c.id();
    let f = c.enc.member_remove_request(id, member).to_vec();
    member_call(c, f)
}

fn member_promote(c: &mut Client, member: u64) -> Result<Vec<MemberRow>, String> {
    let id = c.id();
    let f = c.enc.member_promote_request(id, member).to_vec();
    member_call(c, f)
}

fn leader_client(cluster: &Cluster) -> Client {
    let i = cluster.wait_leader(WITHIN);
    Client::connect_retry(cluster.members[i].addr, WITHIN)
}

/// Retry `f` against the current leader until it succeeds.
fn on_leader<T>(
    cluster: &Cluster,
    what: &str,
    mut f: impl FnMut(&mut Client) -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut c = leader_client(cluster);
        match f(&mut c) {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{what}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A new member process joining the running cluster.
fn joiner(cluster: &Cluster, name: &str, peer_port: u16, dir: &std::path::Path) -> Server {
    let mut s = joiner_unstarted(cluster, name, peer_port, dir);
    s.spawn();
    s
}

/// A joining member's settings, not started yet.
fn joiner_unstarted(
    cluster: &Cluster,
    name: &str,
    peer_port: u16,
    dir: &std::path::Path,
) -> Server {
    let mut initial: Vec<String> = cluster
        .members
        .iter()
        .filter(|m| m.child.is_some())
        .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
        .collect();
    initial.push(format!("{name}=http://127.0.0.1:{peer_port}"));
    Server {
        child: None,
        addr: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        data_dir: dir.to_path_buf(),
        peer_port,
        extra: vec![
            "--initial-cluster".into(),
            initial.join(","),
            "--initial-cluster-state".into(),
            "existing".into(),
            "--initial-cluster-token".into(),
            "e2e-cluster".into(),
            "--heartbeat-interval".into(),
            "50".into(),
            "--election-timeout".into(),
            "500".into(),
        ],
        name: name.into(),
        wait_put: false,
    }
}

/// Add a learner, show that promoting it early is refused, start it,
/// check it refuses a linearizable read, then promote it once caught up.
fn grow(cluster: &mut Cluster, name: &str, dirs: &mut Vec<tempfile::TempDir>) -> u64 {
    let peer_port = free_port();
    let url = format!("http://127.0.0.1:{peer_port}");
    let id = on_leader(cluster, "member add", |c| member_add(c, &url, true));
    let early = on_leader(cluster, "early promote", |c| match member_promote(c, id) {
        Err(e) if e.contains("not leader") => Err(e),
        other => Ok(other),
    });
    assert_eq!(
        early.err().as_deref(),
        Some("etcdserver: can only promote a learner member which is in sync with leader")
    );
    let dir = tempfile::tempdir().unwrap();
    let server = joiner(cluster, name, peer_port, dir.path());
    dirs.push(dir);

    // A learner serves serializable reads only.
    let mut lc = Client::connect_retry(server.addr, WITHIN);
    let deadline = Instant::now() + WITHIN;
    loop {
        let r = lc.get(RangeParams {
            key: b"__ready",
            serializable: true,
            ..Default::default()
        });
        if r.error.is_none() && !r.kvs.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "learner never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // It started from the leader's snapshot, not from the log's start.
    let snaps = std::fs::read_dir(server.data_dir.join("member").join("snap"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(snaps > 0, "a joining member installs a snapshot");
    let r = lc.get(RangeParams {
        key: b"__ready",
        ..Default::default()
    });
    assert_eq!(
        r.error.map(|e| e.1).as_deref(),
        Some("etcdserver: rpc not supported for learner")
    );
    cluster.members.push(server);

    let members = on_leader(cluster, "promote", |c| member_promote(c, id));
    assert!(members.iter().any(|m| m.0 == id && !m.3), "{members:?}");
    id
}

fn find_id(cluster: &Cluster, peer_port: u16) -> u64 {
    let mut c = leader_client(cluster);
    let url = format!("http://127.0.0.1:{peer_port}");
    member_list(&mut c)
        .into_iter()
        .find(|m| m.2 == url)
        .map(|m| m.0)
        .expect("member listed")
}

/// Wait for a removed member's process to exit; it must fail.
fn assert_exits_removed(server: &mut Server) {
    let mut child = server.child.take().expect("running");
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "a removed member exits with an error");
            return;
        }
        assert!(Instant::now() < deadline, "removed member kept running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn grow_shrink_replace_and_remove_the_leader_under_writes() {
    let mut cluster = Cluster::start(1, &[]);
    cluster.members[0].wait_ready();
    let mut dirs = Vec::new();

    // A writer on the first member, through every change below.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let writer = {
        let (stop, acked) = (stop.clone(), acked.clone());
        let addr = cluster.members[0].addr;
        std::thread::spawn(move || {
            let mut c = Client::connect_retry(addr, WITHIN);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w/{n:06}").into_bytes();
                match c.put(&key, b"v") {
                    Ok(_) => acked.lock().unwrap().push(key),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
                n += 1;
                // A reconnect after a transport error (timeouts are errors
                // too); the key is simply not counted as acknowledged.
                if n % 50 == 0 {
                    if let Ok(fresh) = Client::connect(addr) {
                        c = fresh;
                    }
                }
            }
        })
    };

    // 1 → 3 → 5, each through a learner.
    for name in ["m2", "m3", "m4", "m5"] {
        grow(&mut cluster, name, &mut dirs);
    }
    assert_eq!(member_list(&mut leader_client(&cluster)).len(), 5);

    // A duplicate peer URL is refused.
    let taken = format!("http://127.0.0.1:{}", cluster.members[1].peer_port);
    let err = member_add(&mut leader_client(&cluster), &taken, true).unwrap_err();
    assert_eq!(err, "etcdserver: peerURL exists");
    assert_eq!(
        member_remove(&mut leader_client(&cluster), 0x1234).unwrap_err(),
        "etcdserver: member not found"
    );

    // 5 → 3.
    for _ in 0..2 {
        let mut gone = cluster.members.pop().expect("member");
        let id = find_id(&cluster, gone.peer_port);
        on_leader(&cluster, "remove", |c| member_remove(c, id));
        assert_exits_removed(&mut gone);
    }

    // Replace a dead member: m3 dies; remove it, add a new one in its
    // place on an empty data dir.
    let mut dead = cluster.members.remove(2);
    let dead_id = find_id(&cluster, dead.peer_port);
    dead.kill9();
    on_leader(&cluster, "remove dead", |c| member_remove(c, dead_id));
    let new_id = grow(&mut cluster, "m6", &mut dirs);
    assert_ne!(new_id, dead_id, "ids are never reused");
    assert_eq!(member_list(&mut leader_client(&cluster)).len(), 3);

    // The membership survives restarts: a graceful stop of the leader
    // (which hands leadership over first) and of a joined member.
    let li = cluster.wait_leader(WITHIN);
    cluster.members[li].restart();
    let joined = cluster.members.len() - 1;
    cluster.members[joined].restart();
    let members = on_leader(&cluster, "list after restarts", |c| Ok(member_list(c)));
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members.iter().all(|m| !m.3), "{members:?}");
    // Every member, including those added at runtime, is listed by name.
    let mut names: Vec<String> = members.iter().map(|m| m.1.clone()).collect();
    names.sort();
    assert_eq!(names, ["m1", "m2", "m6"], "{members:?}");

    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty(), "the writer made progress");

    // Remove the leader: it steps down, the others go on, it exits.
    let li = cluster.wait_leader(WITHIN);
    let leader_id = find_id(&cluster, cluster.members[li].peer_port);
    on_leader(&cluster, "remove leader", |c| member_remove(c, leader_id));
    let mut old_leader = cluster.members.remove(li);
    assert_exits_removed(&mut old_leader);
    let mut c = leader_client(&cluster);
    c.put_retry(b"after", b"leader-removed", WITHIN).unwrap();

    // Every acknowledged write is there, on every member, with one hash.
    for key in &acked {
        assert_eq!(c.get_key(key).as_deref(), Some(&b"v"[..]), "lost {key:?}");
    }
    let rev = c
        .get(RangeParams {
            key: b"after",
            ..Default::default()
        })
        .revision;
    let deadline = Instant::now() + WITHIN;
    loop {
        let hashes: Vec<u32> = cluster
            .members
            .iter()
            .map(|m| Client::connect_retry(m.addr, WITHIN).hash_kv(rev).hash)
            .collect();
        if hashes.windows(2).all(|w| w[0] == w[1]) && hashes[0] != 0 {
            break;
        }
        assert!(Instant::now() < deadline, "hashkv differs: {hashes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A member removed while it was down learns it from its peers when it
/// comes back, and exits, instead of asking for votes forever.
#[test]
fn a_member_removed_while_down_exits_when_it_comes_back() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(WITHIN);
    let gone = (leader + 1) % 3;
    let gone_id = find_id(&cluster, cluster.members[gone].peer_port);
    cluster.members[gone].stop();
    on_leader(&cluster, "remove the stopped member", |c| {
        member_remove(c, gone_id)
    });
    let m = &mut cluster.members[gone];
    // Restart without waiting for it to serve: it must not.
    m.wait_put = false;
    m.spawn();
    assert_exits_removed(m);
    // The other two keep serving.
    on_leader(&cluster, "write after the removal", |c| {
        c.put(b"after", b"removal").map(|_| ())
    });
}

/// A member added after many writes is sent the leader's latest durable
/// snapshot, which may be older than the one its addition asks for (still
/// being written then). Once that newer one is durable the leader must
/// keep the log back to the snapshot in flight: the learner installs one
/// snapshot and catches up from the log, never a second one.
#[test]
fn a_joining_member_installs_one_snapshot_and_catches_up_from_the_log() {
    // More entries since the periodic snapshot than the log keeps behind
    // a new one (5,000), and enough bytes that the snapshot the addition
    // asks for takes a while to write.
    let cluster = Cluster::start(1, &["--snapshot-count", "12000"]);
    cluster.members[0].wait_ready();
    let mut c = leader_client(&cluster);
    let keys: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("{i:0>1000}").into_bytes())
        .collect();
    c.put_many(&keys, 500);
    let last = keys.last().unwrap().clone();

    let peer_port = free_port();
    let url = format!("http://127.0.0.1:{peer_port}");
    on_leader(&cluster, "member add", |c| member_add(c, &url, true));
    let dir = tempfile::tempdir().unwrap();
    let mut learner = joiner_unstarted(&cluster, "learner", peer_port, dir.path());
    let log = dir.path().join("learner.log");
    learner.spawn_logged(&log);

    let mut lc = Client::connect_retry(learner.addr, WITHIN);
    let deadline = Instant::now() + WITHIN * 3;
    loop {
        let r = lc.get(RangeParams {
            key: &last,
            serializable: true,
            ..Default::default()
        });
        if r.error.is_none() && !r.kvs.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "learner never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let installs = std::fs::read_to_string(&log)
        .unwrap()
        .matches("installed snapshot from the leader")
        .count();
    assert_eq!(installs, 1, "snapshots the learner installed");
}
