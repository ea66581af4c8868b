//! Three-member clusters of real `cairn` processes on loopback.

mod common;

use std::time::Duration;

use cairn_wire::RangeParams;
use common::{Client, Cluster};

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

#[test]
fn three_members_replicate_and_survive_a_leader_kill() {
    let mut cluster = Cluster::start(3, &[]);
    let wait = Duration::from_secs(10);

    // Writes through every member (followers forward to the leader).
    let mut clients: Vec<Client> = cluster
        .members
        .iter()
        .map(|m| Client::connect(m.addr).unwrap())
        .collect();
    for i in 0..90 {
        clients[i % 3].put_retry(&key(i), b"v1", wait).expect("put");
    }
    // Linearizable reads from every member see every write.
    for c in clients.iter_mut() {
        let r = c.get(RangeParams {
            key: b"key",
            range_end: b"kez",
            count_only: true,
            ..Default::default()
        });
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.count, 90);
    }

    // Kill the leader while a writer streams through a follower.
    let leader = cluster.wait_leader(wait);
    let via = (leader + 1) % 3;
    let addr = cluster.members[via].addr;
    let writer = std::thread::spawn(move || {
        let mut c = Client::connect(addr).unwrap();
        let mut acked = Vec::new();
        let start = std::time::Instant::now();
        let mut i = 1000;
        while start.elapsed() < Duration::from_secs(4) {
            if c.put(&key(i), b"v2").is_ok() {
                acked.push(i);
            }
            i += 1;
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(500));
    cluster.members[leader].kill9();
    let acked = writer.join().unwrap();
    assert!(!acked.is_empty());

    // A new leader exists, and the survivors accept writes.
    let new_leader = cluster.wait_leader(wait);
    assert_ne!(new_leader, leader);
    let mut c = Client::connect(cluster.members[via].addr).unwrap();
    c.put_retry(b"after-kill", b"ok", wait)
        .expect("writes after fail-over");

    // The old leader comes back and catches up from the log.
    cluster.members[leader].spawn();
    let mut revived = Client::connect_retry(cluster.members[leader].addr, wait);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let r = revived.get(RangeParams {
            key: b"after-kill",
            ..Default::default()
        });
        if r.error.is_none() && r.kvs.len() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "restarted member did not catch up: {:?}",
            r.error
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every acknowledged write is on every member, and their states hash equal.
    let mut hashes = Vec::new();
    let rev = revived
        .get(RangeParams {
            key: b"after-kill",
            ..Default::default()
        })
        .revision;
    for m in &cluster.members {
        let mut c = Client::connect(m.addr).unwrap();
        for i in acked.iter().copied().chain(0..90) {
            let r = c.get(RangeParams {
                key: &key(i),
                ..Default::default()
            });
            assert_eq!(
                r.kvs.len(),
                1,
                "acknowledged write key{i:05} missing on {}",
                m.name
            );
        }
        hashes.push(c.hash_kv(rev).hash);
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "members diverged: {hashes:?}"
    );
}

#[test]
fn a_minority_accepts_no_writes() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    // Stop two members: the last one alone must refuse (time out) writes.
    cluster.members[leader].kill9();
    cluster.members[other].kill9();
    let mut c = Client::connect(cluster.members[follower].addr).unwrap();
    let e = c
        .put(b"lonely", b"x")
        .expect_err("a minority must not accept writes");
    assert!(e.contains("timed out") || e.contains("no leader"), "{e}");
    let r = c.get(RangeParams {
        key: b"lonely",
        serializable: true,
        ..Default::default()
    });
    assert!(r.kvs.is_empty());
}

#[test]
fn a_member_far_behind_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start(3, &["--snapshot-count", "1000"]);
    let wait = Duration::from_secs(15);
    let leader = cluster.wait_leader(wait);
    let lagging = (leader + 1) % 3;
    cluster.members[lagging].kill9();

    // Far more entries than the leader keeps in memory behind a snapshot.
    let keys: Vec<Vec<u8>> = (0..8000).map(key).collect();
    let mut c = Client::connect(cluster.members[leader].addr).unwrap();
    c.put_many(&keys, 500);
    let snap_dir = cluster.members[leader].data_dir.join("member").join("snap");
    assert!(
        std::fs::read_dir(&snap_dir).unwrap().count() > 0,
        "the leader took a snapshot"
    );

    cluster.members[lagging].spawn();
    let mut m = Client::connect_retry(cluster.members[lagging].addr, wait);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let r = m.get(RangeParams {
            key: b"key",
            range_end: b"kez",
            count_only: true,
            ..Default::default()
        });
        if r.error.is_none() && r.count == 8000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lagging member did not catch up: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lag_snaps = cluster.members[lagging]
        .data_dir
        .join("member")
        .join("snap");
    assert!(
        std::fs::read_dir(&lag_snaps).unwrap().count() > 0,
        "the lagging member installed a snapshot"
    );
    // And it keeps up with new writes afterwards.
    c.put_retry(b"post-snapshot", b"x", wait).unwrap();
    let rev = c
        .get(RangeParams {
            key: b"post-snapshot",
            ..Default::default()
        })
        .revision;
    let mut hashes = Vec::new();
    for mem in &cluster.members {
        let mut c = Client::connect(mem.addr).unwrap();
        let r = c.get(RangeParams {
            key: b"post-snapshot",
            ..Default::default()
        });
        assert_eq!(r.kvs.len(), 1, "{} misses the newest write", mem.name);
        hashes.push(c.hash_kv(rev).hash);
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "members diverged: {hashes:?}"
    );
}

#[test]
fn every_member_lists_every_members_client_urls() {
    use cairn_wire::{decode_response, ResponseBodyView};
    let cluster = Cluster::start(3, &[]);
    let want: Vec<String> = cluster
        .members
        .iter()
        .map(|m| format!("http://{}", m.addr))
        .collect();
    for m in &cluster.members {
        let mut c = Client::connect(m.addr).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let id = c.id();
            let f = c.enc.member_list_request(id, false).to_vec();
            c.call(f).unwrap();
            let view = decode_response(&c.frame).unwrap();
            let Ok(ResponseBodyView::MemberList(list)) = view.body else {
                panic!("not a member list")
            };
            let mut got: Vec<String> = list
                .members()
                .into_iter()
                .flatten()
                .flat_map(|m| {
                    m.client_urls()
                        .into_iter()
                        .flatten()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
            got.sort();
            let mut w = want.clone();
            w.sort();
            if got == w {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} lists client URLs {got:?}, want {w:?}",
                m.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn move_leader_hands_leadership_to_the_target() {
    let cluster = Cluster::start(3, &[]);
    let wait = Duration::from_secs(10);
    let leader = cluster.wait_leader(wait);
    let target = (leader + 1) % 3;
    let target_id = Client::connect(cluster.members[target].addr)
        .unwrap()
        .status()
        .unwrap()
        .member_id;

    // A follower refuses, as etcd's does.
    let mut f = Client::connect(cluster.members[target].addr).unwrap();
    let id = f.id();
    let frame = f.enc.move_leader_request(id, target_id).to_vec();
    let r = f.call(frame).unwrap();
    assert_eq!(
        r.error.map(|e| e.1).as_deref(),
        Some("etcdserver: not leader")
    );

    let mut c = Client::connect(cluster.members[leader].addr).unwrap();
    let id = c.id();
    let frame = c.enc.move_leader_request(id, target_id).to_vec();
    let r = c.call(frame).unwrap();
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(cluster.wait_leader(wait), target);
    c.put_retry(b"after-move", b"ok", wait).unwrap();
}

#[test]
fn a_whole_cluster_restarts_from_its_data_dirs() {
    let mut cluster = Cluster::start(3, &[]);
    let wait = Duration::from_secs(15);
    let leader = cluster.wait_leader(wait);
    let keys: Vec<Vec<u8>> = (0..2000).map(key).collect();
    let mut c = Client::connect(cluster.members[leader].addr).unwrap();
    c.put_many(&keys, 200);
    let rev = c
        .get(RangeParams {
            key: b"key",
            range_end: b"kez",
            count_only: true,
            ..Default::default()
        })
        .revision;
    drop(c);
    for m in cluster.members.iter_mut() {
        m.stop();
    }
    for m in cluster.members.iter_mut() {
        m.spawn();
    }
    cluster.wait_leader(wait);
    let mut hashes = Vec::new();
    for m in &cluster.members {
        let mut c = Client::connect_retry(m.addr, wait);
        let deadline = std::time::Instant::now() + wait;
        let r = loop {
            let r = c.get(RangeParams {
                key: b"key",
                range_end: b"kez",
                count_only: true,
                ..Default::default()
            });
            if r.error.is_none() || std::time::Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(
            r.count, 2000,
            "{} lost acknowledged writes across a full restart: {:?}",
            m.name, r.error
        );
        hashes.push(c.hash_kv(rev).hash);
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "members diverged: {hashes:?}"
    );
}

#[test]
fn a_member_of_another_cluster_cannot_disturb_this_one() {
    let cluster = Cluster::start(3, &[]);
    let wait = Duration::from_secs(10);
    let leader = cluster.wait_leader(wait);
    let term_before = Client::connect(cluster.members[leader].addr)
        .unwrap()
        .status()
        .unwrap()
        .raft_term;

    // A member bootstrapped with another token lists one of this cluster's
    // peer URLs as its peer: it dials that member, which refuses its Hello.
    let dir = tempfile::tempdir().unwrap();
    let victim_peer = cluster.members[0].peer_port;
    let own_peer = common::free_port();
    let mut stranger = common::Server {
        child: None,
        addr: format!("127.0.0.1:{}", common::free_port())
            .parse()
            .unwrap(),
        data_dir: dir.path().to_path_buf(),
        peer_port: own_peer,
        extra: vec![
            "--initial-cluster".into(),
            format!("s1=http://127.0.0.1:{own_peer},m1=http://127.0.0.1:{victim_peer}"),
            "--initial-cluster-token".into(),
            "another-cluster".into(),
            "--heartbeat-interval".into(),
            "50".into(),
            "--election-timeout".into(),
            "250".into(),
        ],
        name: "s1".into(),
        wait_put: false,
    };
    stranger.spawn();
    // Long enough for the stranger to campaign many times.
    std::thread::sleep(Duration::from_secs(3));
    let mut c = Client::connect(cluster.members[leader].addr).unwrap();
    let st = c.status().unwrap();
    assert_eq!(st.leader, st.member_id, "the leader kept its leadership");
    assert_eq!(
        st.raft_term, term_before,
        "no election was triggered by the stranger"
    );
    c.put_retry(b"undisturbed", b"yes", wait).unwrap();
    stranger.kill9();
}
