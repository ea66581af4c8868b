//! Day-2 operations on real `cairn` processes: backups streamed with
//! `Maintenance.Snapshot`, `cairn snapshot restore` into new clusters
//! (single member and disaster recovery of three), the backup's integrity
//! checks, the quota cycle (NOSPACE → compact → defragment → disarm),
//! automatic compaction, and the CORRUPT alarm: raised by the corruption
//! check, kept across a snapshot and a restart.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_wire::{decode_response, rpc, RangeParams, ResponseBodyView};
use common::{free_port, Client, Server};
use sha2::{Digest, Sha256};

/// Streams a backup from `addr`; checks its SHA-256 and returns its bytes
/// and how many messages carried it.
fn fetch_backup(addr: std::net::SocketAddr) -> (Vec<u8>, usize) {
    let mut c = Client::connect(addr).expect("connect");
    let id = c.id();
    let f = c.enc.snapshot_request(id).to_vec();
    c.send(f).expect("send");
    let mut bytes = Vec::new();
    let mut messages = 0;
    loop {
        let r = c.recv().expect("snapshot message");
        assert_eq!(r.id, id);
        assert!(r.error.is_none(), "snapshot failed: {:?}", r.error);
        let view = decode_response(&c.frame).expect("decode");
        let Ok(ResponseBodyView::Snapshot(s)) = view.body else {
            panic!("not a snapshot message: {:?}", view.body);
        };
        bytes.extend_from_slice(s.blob().map(|b| b.bytes()).unwrap_or(&[]));
        messages += 1;
        if s.remaining_bytes() == 0 {
            break;
        }
    }
    let (body, sha) = bytes.split_at(bytes.len() - 32);
    assert_eq!(&Sha256::digest(body)[..], sha, "the stream's sha256");
    (bytes, messages)
}

/// `cairn snapshot restore <file> <args>`: (success, stdout + stderr).
fn restore(file: &Path, args: &[String]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["snapshot", "restore"])
        .arg(file)
        .args(args)
        .output()
        .expect("run cairn snapshot restore");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A member's flags, shared by its restore and its start.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
}

impl Member {
    fn new(name: &str, dir: &Path) -> Member {
        Member {
            name: name.into(),
            client_port: free_port(),
            peer_port: free_port(),
            data_dir: dir.join(name),
        }
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn restore_args(&self, initial: &str, token: &str) -> Vec<String> {
        vec![
            "--name".into(),
            self.name.clone(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--initial-cluster".into(),
            initial.into(),
            "--initial-cluster-token".into(),
            token.into(),
            "--initial-advertise-peer-urls".into(),
            self.peer_url(),
        ]
    }

    fn server(&self, initial: &str, token: &str) -> Server {
        let mut s = Server {
            child: None,
            addr: format!("127.0.0.1:{}", self.client_port).parse().unwrap(),
            data_dir: self.data_dir.clone(),
            peer_port: self.peer_port,
            extra: vec![
                "--initial-cluster".into(),
                initial.into(),
                "--initial-cluster-token".into(),
                token.into(),
                "--heartbeat-interval".into(),
                "50".into(),
                "--election-timeout".into(),
                "500".into(),
            ],
            name: self.name.clone(),
            wait_put: false,
        };
        s.spawn();
        s
    }
}

/// The index of the server every member agrees leads.
fn wait_leader(servers: &[Server]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (i, s) in servers.iter().enumerate() {
            if let Ok(mut c) = Client::connect(s.addr) {
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

fn initial_cluster(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",")
}

fn cluster_id(c: &mut Client) -> u64 {
    c.status().expect("status");
    decode_response(&c.frame).expect("decode").header.cluster_id
}

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("key/{i:05}").into_bytes()).collect()
}

/// Every key reads back with its own name as value.
fn assert_all_present(c: &mut Client, keys: &[Vec<u8>]) {
    let r = c.get(RangeParams {
        key: b"key/",
        range_end: b"key0",
        ..Default::default()
    });
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.kvs.len(), keys.len(), "every key of the backup is served");
    for (kv, k) in r.kvs.iter().zip(keys) {
        assert_eq!((&kv.0, &kv.1), (k, k));
    }
}

#[test]
fn backup_restores_into_a_new_single_member_cluster_with_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = Server::start(&dir.path().join("src"), &[]);
    let mut c = Client::connect(src.addr).unwrap();
    let all = keys(3000);
    c.put_many(&all, 200);
    // History and a tombstone travel too.
    c.put(b"key/00000", b"key/00000").unwrap();
    c.put(b"gone", b"x").unwrap();
    let id = c.id();
    let f = c
        .enc
        .delete_range_request(
            id,
            &cairn_wire::DeleteRangeParams {
                key: b"gone",
                ..Default::default()
            },
        )
        .to_vec();
    assert!(c.call(f).unwrap().error.is_none());
    let revision = c.status().unwrap().revision;
    let old_cluster = cluster_id(&mut c);

    let (bytes, messages) = fetch_backup(src.addr);
    assert!(
        messages > 1,
        "a backup of this size arrives in several chunks"
    );
    let file = dir.path().join("backup.db");
    std::fs::write(&file, &bytes).unwrap();
    src.stop();

    let m = Member::new("restored", dir.path());
    let initial = initial_cluster(std::slice::from_ref(&m));
    let (ok, out) = restore(&file, &m.restore_args(&initial, "restored-token"));
    assert!(ok, "restore failed: {out}");
    let (ok, out) = restore(&file, &m.restore_args(&initial, "restored-token"));
    assert!(
        !ok && out.contains("exists"),
        "restoring over a data dir is refused: {out}"
    );

    let s = m.server(&initial, "restored-token");
    s.wait_ready();
    let mut c = Client::connect(s.addr).unwrap();
    assert_ne!(
        cluster_id(&mut c),
        old_cluster,
        "a restored cluster has a new id"
    );
    assert_all_present(&mut c, &all);
    assert_eq!(c.get_key(b"gone"), None);
    let r = c.get(RangeParams {
        key: b"key/00000",
        ..Default::default()
    });
    assert_eq!(r.kvs[0].4, 2, "the version history came along");
    assert!(
        r.revision > revision,
        "revisions continue after the backup's"
    );
}

#[test]
fn restore_checks_the_hash_and_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let src = Server::start(&dir.path().join("src"), &[]);
    let mut c = Client::connect(src.addr).unwrap();
    c.put_many(&keys(50), 50);
    let (bytes, _) = fetch_backup(src.addr);
    drop(src);

    let write = |name: &str, b: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    let try_restore = |file: &Path, skip: bool| {
        let m = Member::new(&format!("m{}", free_port()), dir.path());
        let mut args = m.restore_args(&initial_cluster(std::slice::from_ref(&m)), "t");
        if skip {
            args.push("--skip-hash-check".into());
        }
        let (ok, out) = restore(file, &args);
        assert_eq!(
            ok,
            m.data_dir.exists(),
            "a failed restore leaves no data dir: {out}"
        );
        (ok, out)
    };

    // A wrong hash: refused, unless the check is skipped.
    let mut bad_hash = bytes.clone();
    let last = bad_hash.len() - 1;
    bad_hash[last] ^= 0xff;
    let f = write("bad-hash.db", &bad_hash);
    let (ok, out) = try_restore(&f, false);
    assert!(!ok && out.contains("integrity check failed"), "{out}");
    assert!(try_restore(&f, true).0);

    // A bare snapshot file (no hash) needs --skip-hash-check.
    let f = write("bare.snap", &bytes[..bytes.len() - 32]);
    let (ok, out) = try_restore(&f, false);
    assert!(!ok && out.contains("--skip-hash-check"), "{out}");
    assert!(try_restore(&f, true).0);

    // Damaged content is refused even without the hash check: the chunk
    // checksums catch it.
    let mut bad_body = bytes.clone();
    let mid = bad_body.len() / 2;
    bad_body[mid] ^= 0x01;
    let f = write("bad-body.db", &bad_body);
    let (ok, out) = try_restore(&f, false);
    assert!(!ok && out.contains("integrity check failed"), "{out}");
    let (ok, out) = try_restore(&f, true);
    assert!(!ok && out.contains("checksum"), "{out}");

    // Truncated: refused.
    let f = write("short.db", &bytes[..bytes.len() / 2]);
    assert!(!try_restore(&f, true).0);
}

#[test]
fn disaster_recovery_restores_a_new_three_member_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = common::Cluster::start(3, &[]);
    let leader = old.wait_leader(Duration::from_secs(10));
    let mut c = Client::connect(old.members[leader].addr).unwrap();
    let all = keys(1500);
    c.put_many(&all, 100);
    let old_cluster = cluster_id(&mut c);
    // Any member can take the backup; a follower's applied state includes
    // every acknowledged write once it has caught up.
    let follower = (leader + 1) % 3;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut f = Client::connect(old.members[follower].addr).unwrap();
        let n = f
            .get(RangeParams {
                key: b"key/",
                range_end: b"key0",
                serializable: true,
                count_only: true,
                ..Default::default()
            })
            .count;
        if n == all.len() as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "follower did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (bytes, _) = fetch_backup(old.members[follower].addr);
    let file = dir.path().join("backup.db");
    std::fs::write(&file, &bytes).unwrap();
    // Quorum lost for good: every member dies, two data dirs are gone.
    for m in &mut old.members {
        m.kill9();
    }
    std::fs::remove_dir_all(&old.members[0].data_dir).unwrap();
    std::fs::remove_dir_all(&old.members[1].data_dir).unwrap();

    let members: Vec<Member> = (1..=3)
        .map(|i| Member::new(&format!("r{i}"), dir.path()))
        .collect();
    let initial = initial_cluster(&members);
    for m in &members {
        let (ok, out) = restore(&file, &m.restore_args(&initial, "recovered"));
        assert!(ok, "restore of {} failed: {out}", m.name);
    }
    let servers: Vec<Server> = members
        .iter()
        .map(|m| m.server(&initial, "recovered"))
        .collect();
    let leader = wait_leader(&servers);
    let mut c = Client::connect(servers[leader].addr).unwrap();
    assert_ne!(cluster_id(&mut c), old_cluster);
    assert_all_present(&mut c, &all);
    // The new cluster takes writes, and every member serves the backup.
    c.put_retry(b"after", b"restore", Duration::from_secs(10))
        .unwrap();
    for s in &servers {
        let mut m = Client::connect(s.addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while m.get_key(b"after").is_none() {
            assert!(Instant::now() < deadline, "member did not catch up");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_all_present(&mut m, &all);
    }
}

fn alarm(c: &mut Client, action: rpc::AlarmAction) -> common::Reply {
    let id = c.id();
    let f = c
        .enc
        .alarm_request(id, action, 0, rpc::AlarmType::NoSpace)
        .to_vec();
    c.call(f).unwrap()
}

fn alarm_count(c: &mut Client) -> usize {
    alarm(c, rpc::AlarmAction::Get);
    let view = decode_response(&c.frame).unwrap();
    match view.body {
        Ok(ResponseBodyView::Alarm(a)) => a.alarms().map_or(0, |v| v.len()),
        other => panic!("not an alarm response: {other:?}"),
    }
}

#[test]
fn quota_cycle_fill_refuse_compact_defrag_disarm() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("q"), &["--quota-backend-bytes", "200000"]);
    let mut c = Client::connect(s.addr).unwrap();
    // Overwrite a few keys: the history is what fills the quota, and what
    // compaction frees.
    let value = vec![b'v'; 1000];
    let mut refused = None;
    for i in 0..1000 {
        let key = format!("hot/{}", i % 8);
        match c.put(key.as_bytes(), &value) {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("the quota stops writes");
    assert_eq!(refused, "etcdserver: mvcc: database space exceeded");
    assert_eq!(alarm_count(&mut c), 1, "NOSPACE is raised");
    // Reads and deletes still work.
    assert!(c.get_key(b"hot/0").is_some());

    let rev = c.status().unwrap().revision;
    let id = c.id();
    let f = c.enc.compaction_request(id, rev, false).to_vec();
    let r = c.call(f).unwrap();
    assert!(r.error.is_none(), "{:?}", r.error);
    let id = c.id();
    let f = c.enc.defragment_request(id).to_vec();
    let r = c.call(f).unwrap();
    assert!(r.error.is_none(), "defragment: {:?}", r.error);
    assert_eq!(
        c.put(b"hot/0", b"still refused").unwrap_err(),
        "etcdserver: mvcc: database space exceeded",
        "the alarm holds until disarmed"
    );
    let r = alarm(&mut c, rpc::AlarmAction::Deactivate);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(alarm_count(&mut c), 0);
    c.put(b"hot/0", b"accepted again").unwrap();
    assert_eq!(c.get_key(b"hot/0").unwrap(), b"accepted again");
}

#[test]
fn revision_mode_auto_compaction_keeps_the_last_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("ac"),
        &[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "10",
            "--experimental-auto-compaction-revision-interval",
            "100ms",
        ],
    );
    let mut c = Client::connect(s.addr).unwrap();
    for i in 0..50 {
        c.put(b"k", format!("v{i}").as_bytes()).unwrap();
    }
    let current = c.status().unwrap().revision;
    let at = |c: &mut Client, revision: i64| {
        c.get(RangeParams {
            key: b"k",
            revision,
            ..Default::default()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = at(&mut c, 5);
        match r.error {
            Some((_, m)) if m.contains("required revision has been compacted") => break,
            other => {
                assert!(Instant::now() < deadline, "no auto compaction: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let r = at(&mut c, current - 9);
    assert!(
        r.error.is_none(),
        "the last 10 revisions stay: {:?}",
        r.error
    );
}

/// Every alarm the member reports: (member id, type).
fn alarms(c: &mut Client) -> Vec<(u64, rpc::AlarmType)> {
    alarm(c, rpc::AlarmAction::Get);
    listed(&c.frame)
}

/// The alarms in an alarm response.
fn listed(frame: &[u8]) -> Vec<(u64, rpc::AlarmType)> {
    let view = decode_response(frame).unwrap();
    match view.body {
        Ok(ResponseBodyView::Alarm(a)) => a
            .alarms()
            .into_iter()
            .flatten()
            .map(|m| (m.member_id(), m.alarm()))
            .collect(),
        other => panic!("not an alarm response: {other:?}"),
    }
}

#[test]
fn a_divergent_member_raises_corrupt_and_writes_stop() {
    let mut cluster = common::Cluster::start(3, &["--experimental-corrupt-check-time", "300ms"]);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let mut c = Client::connect(cluster.members[leader].addr).unwrap();
    c.put_many(&keys(100), 50);
    std::thread::sleep(Duration::from_millis(500));
    assert!(alarms(&mut c).is_empty(), "equal members raise nothing");

    // One follower's index diverges (test-only hook), outside the log.
    let bad = (leader + 1) % 3;
    let bad_id = {
        let mut b = Client::connect(cluster.members[bad].addr).unwrap();
        b.status().unwrap().member_id
    };
    let m = &mut cluster.members[bad];
    m.stop();
    m.extra
        .push("--experimental-test-inject-divergent-kv=key/00001=evil".into());
    m.spawn();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = cluster.wait_leader(Duration::from_secs(10));
        let mut c = Client::connect(cluster.members[leader].addr).unwrap();
        let list = alarms(&mut c);
        if !list.is_empty() {
            assert_eq!(
                list,
                vec![(bad_id, rpc::AlarmType::Corrupt)],
                "only the odd member is flagged"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no CORRUPT alarm raised");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The bad member (and, as in etcd, the cluster) refuses writes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut b = Client::connect_retry(cluster.members[bad].addr, Duration::from_secs(10));
    loop {
        match b.put(b"more", b"data") {
            Err(e) if e == "etcdserver: corrupt cluster" => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "writes still accepted: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    // With the start-up check, a divergent member refuses to start.
    let m = &mut cluster.members[bad];
    m.stop();
    m.extra.push("--experimental-initial-corrupt-check".into());
    m.spawn();
    let child = m.child.as_mut().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the divergent member kept running"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    m.child = None;
}

/// Polls `addr` until its alarm list is `want`.
fn wait_alarms(addr: std::net::SocketAddr, want: &[(u64, rpc::AlarmType)], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = Vec::new();
    while Instant::now() < deadline {
        if let Ok(mut c) = Client::connect(addr) {
            let id = c.id();
            let f = c
                .enc
                .alarm_request(id, rpc::AlarmAction::Get, 0, rpc::AlarmType::NoSpace)
                .to_vec();
            // A member still starting may answer with an error, or not at all.
            if let Ok(common::Reply { error: None, .. }) = c.call(f) {
                last = listed(&c.frame);
                if last == want {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: {addr} lists {last:?}, not {want:?}");
}

/// The CORRUPT alarm is replicated state kept in every snapshot: once the
/// log entry that raised it lies behind each member's snapshot it is never
/// replayed again, so after a restart only the snapshot can bring it back.
/// Every member snapshots after the alarm (a `Defragment` writes a
/// snapshot now), the whole cluster restarts with the corruption check
/// off (nothing could raise the alarm again), and the alarm must still be
/// listed and still stop writes.
#[test]
fn a_corrupt_alarm_survives_a_snapshot_and_a_restart() {
    let check = ["--experimental-corrupt-check-time", "300ms"];
    let mut cluster = common::Cluster::start(3, &check);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let mut c = Client::connect(cluster.members[leader].addr).unwrap();
    c.put_many(&keys(100), 50);

    let bad = (leader + 1) % 3;
    let bad_id = {
        let mut b = Client::connect(cluster.members[bad].addr).unwrap();
        b.status().unwrap().member_id
    };
    let m = &mut cluster.members[bad];
    m.stop();
    m.extra
        .push("--experimental-test-inject-divergent-kv=key/00001=evil".into());
    m.spawn();
    let want = vec![(bad_id, rpc::AlarmType::Corrupt)];
    for m in &cluster.members {
        wait_alarms(m.addr, &want, "the check raises CORRUPT");
    }

    // Every member writes a snapshot that holds the alarm.
    for m in &cluster.members {
        let mut c = Client::connect_retry(m.addr, Duration::from_secs(10));
        let id = c.id();
        let f = c.enc.defragment_request(id).to_vec();
        let r = c.call(f).unwrap();
        assert!(r.error.is_none(), "defragment {}: {:?}", m.name, r.error);
    }

    // Restart everyone without the check and without the divergent write.
    for m in &mut cluster.members {
        m.stop();
    }
    let logs = tempfile::tempdir().unwrap();
    for m in &mut cluster.members {
        m.extra.retain(|a| {
            !a.starts_with("--experimental-test-inject-divergent-kv")
                && !check.contains(&a.as_str())
        });
        m.spawn_logged(&logs.path().join(format!("{}.log", m.name)));
    }
    cluster.wait_leader(Duration::from_secs(20));
    for m in &cluster.members {
        wait_alarms(m.addr, &want, "the alarm after the restart");
        let log = std::fs::read_to_string(logs.path().join(format!("{}.log", m.name))).unwrap();
        assert!(
            log.contains("loaded snapshot"),
            "{} did not start from a snapshot; its log:\n{log}",
            m.name
        );
    }

    let mut b = Client::connect_retry(cluster.members[bad].addr, Duration::from_secs(10));
    assert_eq!(
        b.put(b"more", b"data").unwrap_err(),
        "etcdserver: corrupt cluster",
        "the restarted member still refuses writes"
    );
    // Disarming is still possible, and lifts the refusal.
    let id = b.id();
    let f = b
        .enc
        .alarm_request(
            id,
            rpc::AlarmAction::Deactivate,
            bad_id,
            rpc::AlarmType::Corrupt,
        )
        .to_vec();
    let r = b.call(f).unwrap();
    assert!(r.error.is_none(), "disarm: {:?}", r.error);
    for m in &cluster.members {
        wait_alarms(m.addr, &[], "disarmed");
    }
    b.put_retry(b"more", b"data", Duration::from_secs(10))
        .unwrap();
}
