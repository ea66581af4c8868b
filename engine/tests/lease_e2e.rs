//! Leases through real `cairn` processes: grant, time-to-live, revoke,
//! expiry, keep-alive, restarts and leader fail-over.

mod common;

use std::time::{Duration, Instant};

use cairn_wire::RangeParams;
use common::{Client, Cluster, Server};

/// Fast elections so the minimum TTL is 1 s: ceil(1.5 × 500 ms).
const FAST: [&str; 4] = ["--heartbeat-interval", "50", "--election-timeout", "500"];

fn count_prefix(c: &mut Client, prefix: &[u8]) -> i64 {
    let mut end = prefix.to_vec();
    *end.last_mut().unwrap() += 1;
    let r = c.get(RangeParams {
        key: prefix,
        range_end: &end,
        count_only: true,
        ..Default::default()
    });
    assert!(r.error.is_none(), "{:?}", r.error);
    r.count
}

/// Poll until `cond` holds, failing after `within`.
fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn grant_ttl_and_revoke_delete_keys_in_one_revision() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr).unwrap();

    // The default election timeout (1 s) makes the minimum TTL 2 s.
    let (short, ttl) = c.lease_grant(1, 0).expect("grant");
    assert!(short > 0);
    assert_eq!(ttl, 2, "short TTLs are raised to the minimum");
    let (id, ttl) = c.lease_grant(60, 0x1234).expect("grant with an id");
    assert_eq!((id, ttl), (0x1234, 60));
    assert_eq!(
        c.lease_grant(60, 0x1234).unwrap_err(),
        "etcdserver: lease already exists"
    );
    let mut listed = c.lease_list().unwrap();
    listed.sort_unstable();
    let mut want = vec![short, id];
    want.sort_unstable();
    assert_eq!(listed, want);

    for k in ["lk/a", "lk/b", "lk/c"] {
        c.put_lease(k.as_bytes(), b"v", id).expect("put with lease");
    }
    c.put(b"lk/free", b"v").unwrap();
    assert_eq!(
        c.put_lease(b"lk/x", b"v", 777).unwrap_err(),
        "etcdserver: requested lease not found"
    );
    let t = c.lease_ttl(id, true).unwrap();
    assert_eq!(t.granted_ttl, 60);
    assert!((58..=60).contains(&t.ttl), "ttl {}", t.ttl);
    assert_eq!(
        t.keys,
        vec![b"lk/a".to_vec(), b"lk/b".to_vec(), b"lk/c".to_vec()]
    );

    let before = c
        .get(RangeParams {
            key: b"lk/free",
            ..Default::default()
        })
        .revision;
    let after = c.lease_revoke(id).expect("revoke");
    assert_eq!(
        after,
        before + 1,
        "revoking deletes every key in one revision"
    );
    assert_eq!(
        count_prefix(&mut c, b"lk/"),
        1,
        "only the key without a lease is left"
    );
    let t = c.lease_ttl(id, false).unwrap();
    assert_eq!((t.ttl, t.granted_ttl), (-1, 0));
    assert_eq!(
        c.lease_revoke(id).unwrap_err(),
        "etcdserver: requested lease not found"
    );
    assert_eq!(
        c.lease_keep_alive(id).unwrap(),
        0,
        "keep-alive of a missing lease"
    );
}

#[test]
fn expiry_deletes_keys_and_keep_alive_holds_a_lease() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &FAST);
    let mut c = Client::connect(server.addr).unwrap();

    let (kept, _) = c.lease_grant(1, 0).unwrap();
    let (dropped, ttl) = c.lease_grant(1, 0).unwrap();
    assert_eq!(ttl, 1);
    c.put_lease(b"ex/kept", b"v", kept).unwrap();
    c.put_lease(b"ex/dropped1", b"v", dropped).unwrap();
    c.put_lease(b"ex/dropped2", b"v", dropped).unwrap();

    // Keep one lease alive for three TTLs; the other expires meanwhile.
    let start = Instant::now();
    let mut dropped_gone = None;
    while start.elapsed() < Duration::from_secs(3) {
        assert_eq!(c.lease_keep_alive(kept).unwrap(), 1);
        if dropped_gone.is_none() && count_prefix(&mut c, b"ex/dropped") == 0 {
            dropped_gone = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        dropped_gone.is_some(),
        "an expired lease's keys are deleted"
    );
    assert_eq!(c.lease_keep_alive(dropped).unwrap(), 0);
    assert_eq!(
        c.get_key(b"ex/kept"),
        Some(b"v".to_vec()),
        "a renewed lease lives"
    );
    assert!(c.lease_list().unwrap().contains(&kept));

    // Without renewals it expires too.
    eventually(Duration::from_secs(10), "the kept lease expires", || {
        count_prefix(&mut c, b"ex/") == 0
    });
    assert!(c.lease_list().unwrap().is_empty());
}

#[test]
fn leases_survive_restarts_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--snapshot-count", "50"]);
    let mut c = Client::connect(server.addr).unwrap();
    let (id, _) = c.lease_grant(600, 0).unwrap();
    c.put_lease(b"rs/leased", b"v", id).unwrap();
    // Enough writes for a snapshot to hold the grant.
    let keys: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("rs/filler{i:04}").into_bytes())
        .collect();
    c.put_many(&keys, 50);
    let (late, _) = c.lease_grant(600, 0).unwrap();
    drop(c);
    let snap_dir = dir.path().join("member").join("snap");
    eventually(Duration::from_secs(10), "a snapshot file appears", || {
        std::fs::read_dir(&snap_dir).map(|d| d.count()).unwrap_or(0) > 0
    });

    server.restart();
    let mut c = Client::connect(server.addr).unwrap();
    let mut listed = c.lease_list().unwrap();
    listed.sort_unstable();
    let mut want = vec![id, late];
    want.sort_unstable();
    assert_eq!(listed, want, "grants before and after the snapshot survive");
    let t = c.lease_ttl(id, true).unwrap();
    assert_eq!(t.granted_ttl, 600);
    assert!(t.ttl > 590, "deadlines restart at the full TTL: {}", t.ttl);
    assert_eq!(t.keys, vec![b"rs/leased".to_vec()]);
    c.lease_revoke(id).unwrap();
    assert_eq!(c.get_key(b"rs/leased"), None);
}

#[test]
fn three_members_a_lease_survives_a_leader_kill() {
    let mut cluster = Cluster::start(3, &[]);
    let wait = Duration::from_secs(10);
    let leader = cluster.wait_leader(wait);
    let mut c = Client::connect(cluster.members[leader].addr).unwrap();
    let (id, ttl) = c.lease_grant(2, 0).unwrap();
    assert_eq!(ttl, 2);
    c.put_lease(b"ha/key", b"v", id).unwrap();
    drop(c);

    cluster.members[leader].kill9();
    let new_leader = cluster.wait_leader(wait);
    assert_ne!(new_leader, leader);
    // Renew through a member that is not the leader (forwarded through the
    // log) and through the new leader, for well over one TTL.
    let follower = (0..3).find(|i| *i != leader && *i != new_leader).unwrap();
    let mut via_follower = Client::connect(cluster.members[follower].addr).unwrap();
    let mut via_leader = Client::connect(cluster.members[new_leader].addr).unwrap();
    // Once the new leader is settled, both paths renew.
    eventually(wait, "a keep-alive through the follower succeeds", || {
        via_follower.lease_keep_alive(id) == Ok(2)
    });
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            via_follower.lease_keep_alive(id),
            Ok(2),
            "through the follower"
        );
        assert_eq!(via_leader.lease_keep_alive(id), Ok(2), "through the leader");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Renewed only through the leader for longer than the TTL (the follower
    // sees none of it), the lease still renews through the follower.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        assert_eq!(via_leader.lease_keep_alive(id), Ok(2));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(via_follower.lease_keep_alive(id), Ok(2));
    assert_eq!(via_follower.get_key(b"ha/key"), Some(b"v".to_vec()));
    let t = via_follower.lease_ttl(id, true).unwrap();
    assert_eq!((t.granted_ttl, t.keys.len()), (2, 1));

    // Revoking through a follower deletes the key on every member, and a
    // watch on the follower sees the delete as it applies it.
    let mut watcher = Client::connect(cluster.members[follower].addr).unwrap();
    let created = watcher.watch(&cairn_wire::WatchCreateParams {
        key: b"ha/key",
        ..Default::default()
    });
    assert!(created.created && !created.canceled);
    let rev = via_follower.lease_revoke(id).unwrap();
    let r = watcher.next_watch();
    assert_eq!(r.events.len(), 1);
    assert!(!r.events[0].put);
    assert_eq!(r.events[0].mod_revision, rev);
    assert_eq!(via_leader.get_key(b"ha/key"), None);
    assert_eq!(via_follower.get_key(b"ha/key"), None);
}
