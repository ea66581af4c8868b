//! Process-level faults against real `cairn` processes: SIGKILL and restart
//! during a write stream, SIGSTOP/SIGCONT, a member cut off long enough to
//! need a snapshot, and damage to a stopped member's WAL on disk.
//!
//! The check after every run: each acknowledged write is present on every
//! member, and the members' `hash_kv` agree at one revision.
//!
//! `CAIRN_CHAOS_SECS` stretches the fault loop (default: one round of each
//! fault), `CAIRN_CHAOS_SEED` picks the seed (default 1).

mod common;

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_wire::{PutParams, RangeParams};
use common::{Client, Cluster, Server};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const WAIT: Duration = Duration::from_secs(20);
/// Snapshot often, so the cut-off member's catch-up needs one.
const SNAPSHOT_COUNT: &str = "1000";
/// Entries written while a member is cut off: more than the leader keeps
/// in memory behind its snapshot (`SNAPSHOT_CATCH_UP_ENTRIES`, 5 000) plus
/// one snapshot interval, so the member can only catch up from a snapshot.
const ENTRIES_WHILE_CUT_OFF: usize = 7_000;
/// A client gives up on an answer after this long (the write is then
/// unknown, and not counted as acknowledged).
const REPLY_TIMEOUT_MS: u64 = 3_000;

/// A stream of single puts of fresh keys through random members; returns
/// the keys whose put was acknowledged.
fn writer(id: usize, seed: u64, addrs: Vec<SocketAddr>, stop: Arc<AtomicBool>) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (id as u64 + 17));
    let mut acked = Vec::new();
    let mut conn: Option<Client> = None;
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        if conn.is_none() {
            let m = rng.gen_range(0..addrs.len());
            conn = Client::connect(addrs[m]).ok();
            match &conn {
                Some(c) => {
                    let _ = c
                        .stream
                        .set_read_timeout(Some(Duration::from_millis(REPLY_TIMEOUT_MS)));
                }
                None => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        i += 1;
        let key = format!("chaos/w{id}/{i:07}").into_bytes();
        match c.put(&key, &key) {
            Ok(_) => acked.push(key),
            Err(_) => conn = None,
        }
    }
    acked
}

/// Pipelined puts of fresh keys through one member; returns the acknowledged.
fn bulk(addr: SocketAddr, prefix: &str, n: usize) -> Vec<Vec<u8>> {
    const BATCH: usize = 200;
    let mut acked = Vec::new();
    let Ok(mut c) = Client::connect(addr) else {
        return acked;
    };
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("{prefix}/{i:07}").into_bytes())
        .collect();
    for chunk in keys.chunks(BATCH) {
        let mut frames = Vec::new();
        let mut ids = Vec::new();
        for k in chunk {
            let id = c.id();
            ids.push(id);
            frames.extend_from_slice(c.enc.put_request(
                id,
                &PutParams {
                    key: k,
                    value: k,
                    ..Default::default()
                },
            ));
        }
        if c.send(frames).is_err() {
            return acked;
        }
        for _ in chunk {
            let Ok(r) = c.recv() else { return acked };
            if r.error.is_none() {
                let pos = ids
                    .iter()
                    .position(|&id| id == r.id)
                    .expect("a reply to a request sent");
                acked.push(chunk[pos].clone());
            }
        }
    }
    acked
}

/// A member's keys under `chaos/`, read linearizably in pages (retried
/// through elections), and the revision of the first page.
fn keys_on(addr: SocketAddr) -> (HashSet<Vec<u8>>, i64) {
    /// Keys per page: keeps each response far below the frame limit.
    const PAGE_KEYS: i64 = 5_000;
    let deadline = Instant::now() + WAIT;
    let mut keys = HashSet::new();
    let mut from = b"chaos/".to_vec();
    let mut revision = 0;
    let mut c = Client::connect_retry(addr, WAIT);
    loop {
        let id = c.id();
        let p = RangeParams {
            key: &from,
            range_end: b"chaos0",
            keys_only: true,
            limit: PAGE_KEYS,
            revision,
            ..Default::default()
        };
        let f = c.enc.range_request(id, &p).to_vec();
        match c.call(f) {
            Ok(r) if r.error.is_none() => {
                if revision == 0 {
                    revision = r.revision;
                }
                let Some(last) = r.kvs.last().map(|kv| kv.0.clone()) else {
                    return (keys, revision);
                };
                let full = r.kvs.len() as i64 == PAGE_KEYS;
                keys.extend(r.kvs.into_iter().map(|kv| kv.0));
                if !full {
                    return (keys, revision);
                }
                from = last;
                from.push(0);
            }
            r => {
                assert!(Instant::now() < deadline, "cannot read from {addr}: {r:?}");
                std::thread::sleep(Duration::from_millis(100));
                c = Client::connect_retry(addr, WAIT);
            }
        }
    }
}

/// Every acknowledged key on every member, and equal hashes at one revision.
fn check_members(members: &[Server], acked: &[Vec<u8>]) {
    let mut top = 0;
    for m in members {
        let (keys, rev) = keys_on(m.addr);
        let missing: Vec<_> = acked.iter().filter(|k| !keys.contains(*k)).collect();
        assert!(
            missing.is_empty(),
            "{} misses {} acknowledged writes, e.g. {:?}",
            m.name,
            missing.len(),
            String::from_utf8_lossy(missing[0])
        );
        top = top.max(rev);
    }
    let hashes: Vec<_> = members
        .iter()
        .map(|m| {
            keys_on(m.addr);
            let mut c = Client::connect_retry(m.addr, WAIT);
            let h = c.hash_kv(top);
            assert!(
                h.error.is_none(),
                "{}: hash_kv({top}): {:?}",
                m.name,
                h.error
            );
            h.hash
        })
        .collect();
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "members diverged at revision {top}: {hashes:?}"
    );
}

fn wait_for_keys(addr: SocketAddr, want: &[Vec<u8>]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (keys, _) = keys_on(addr);
        if want.iter().all(|k| keys.contains(k)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member at {addr} did not catch up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn acknowledged_writes_survive_kills_pauses_and_a_long_partition() {
    let seed = env_u64("CAIRN_CHAOS_SEED", 1);
    let secs = env_u64("CAIRN_CHAOS_SECS", 0);
    println!("chaos: seed {seed}, {secs} s (CAIRN_CHAOS_SEED / CAIRN_CHAOS_SECS)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pc = Mutex::new(Cluster::start_with_proxies(
        3,
        &["--snapshot-count", SNAPSHOT_COUNT],
    ));
    let addrs: Vec<_> = pc
        .lock()
        .unwrap()
        .cluster
        .members
        .iter()
        .map(|m| m.addr)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|i| {
            let (addrs, stop) = (addrs.clone(), stop.clone());
            std::thread::spawn(move || writer(i, seed, addrs, stop))
        })
        .collect();
    let mut faults: Vec<String> = Vec::new();
    let mut bulk_acked = Vec::new();
    let until = Instant::now() + Duration::from_secs(secs);
    let mut round = 0;
    loop {
        let mut g = pc.lock().unwrap();
        // SIGKILL a random member, restart it.
        let k = rng.gen_range(0..3);
        g.cluster.members[k].kill9();
        faults.push(format!("kill -9 m{}", k + 1));
        std::thread::sleep(Duration::from_millis(rng.gen_range(500..1_500)));
        g.cluster.members[k].spawn();
        g.cluster.wait_leader(WAIT);
        // SIGSTOP a random member, then SIGCONT.
        let k = rng.gen_range(0..3);
        g.cluster.members[k].pause(true);
        faults.push(format!("SIGSTOP m{}", k + 1));
        std::thread::sleep(Duration::from_millis(rng.gen_range(1_000..2_000)));
        g.cluster.members[k].pause(false);
        g.cluster.wait_leader(WAIT);
        // Cut a follower off while the log moves past what the leader
        // keeps behind its snapshot; after healing it needs the snapshot.
        let leader = g.cluster.wait_leader(WAIT);
        let cut = (leader + 1 + rng.gen_range(0..2)) % 3;
        g.isolate(cut);
        faults.push(format!(
            "isolate m{} for {ENTRIES_WHILE_CUT_OFF} entries",
            cut + 1
        ));
        // The same keys every round: the key count stays bounded in long runs.
        let acked = bulk(
            g.cluster.members[leader].addr,
            "chaos/bulk",
            ENTRIES_WHILE_CUT_OFF,
        );
        g.heal();
        wait_for_keys(g.cluster.members[cut].addr, &acked);
        let snaps = g.cluster.members[cut].data_dir.join("member").join("snap");
        let n_snaps = std::fs::read_dir(&snaps).map(|d| d.count()).unwrap_or(0);
        assert!(n_snaps > 0, "m{} caught up without a snapshot", cut + 1);
        bulk_acked.extend(acked);
        drop(g);
        round += 1;
        if Instant::now() >= until {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut acked: Vec<Vec<u8>> = writers
        .into_iter()
        .flat_map(|h| h.join().expect("writer"))
        .collect();
    println!(
        "chaos: {round} rounds, {} streamed + {} bulk writes acknowledged; faults: {}",
        acked.len(),
        bulk_acked.len(),
        faults.join(", ")
    );
    acked.extend(bulk_acked);
    let g = pc.lock().unwrap();
    g.cluster.wait_leader(WAIT);
    check_members(&g.cluster.members, &acked);
}

// ---- damage to a stopped member's WAL ----

const BLOCK_BYTES: u64 = 4096;

/// The WAL segments of a member, in order.
fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let dir = data_dir.join("member").join("wal");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("wal dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no WAL segment in {}", dir.display());
    v
}

/// The end of a segment's written content: the end of its last 4 KiB block
/// that is not all zeros (batches start on block boundaries and are padded
/// to them; the preallocated rest is zeros).
fn content_end(path: &Path) -> u64 {
    let mut f = std::fs::File::open(path).expect("open segment");
    let mut buf = vec![0u8; BLOCK_BYTES as usize];
    let mut end = 0;
    let mut off = 0;
    while f.read_exact(&mut buf).is_ok() {
        off += BLOCK_BYTES;
        if buf.iter().any(|b| *b != 0) {
            end = off;
        }
    }
    end
}

fn put_keys(addr: SocketAddr, prefix: &str, n: usize) -> Vec<Vec<u8>> {
    let mut c = Client::connect_retry(addr, WAIT);
    (0..n)
        .map(|i| {
            let k = format!("chaos/{prefix}/{i:05}").into_bytes();
            c.put_retry(&k, &k, WAIT).expect("put");
            k
        })
        .collect()
}

/// Stop a follower, damage the tail of its last WAL segment with `damage`
/// (given the segment and the end of its written content), write more
/// through the leader, restart it: it must start, catch up and agree.
fn damage_tail_and_rejoin(damage: fn(&Path, u64)) {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(WAIT);
    let victim = (leader + 1) % 3;
    let mut acked = put_keys(cluster.members[leader].addr, "before", 200);
    wait_for_keys(cluster.members[victim].addr, &acked);
    cluster.members[victim].stop();
    let last = segments(&cluster.members[victim].data_dir)
        .pop()
        .expect("a segment");
    let end = content_end(&last);
    assert!(end > BLOCK_BYTES, "the last segment holds batches");
    damage(&last, end);
    acked.extend(put_keys(cluster.members[leader].addr, "while-down", 100));
    cluster.members[victim].spawn();
    wait_for_keys(cluster.members[victim].addr, &acked);
    acked.extend(put_keys(cluster.members[victim].addr, "after", 50));
    check_members(&cluster.members, &acked);
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("sync");
}

/// A crash in the middle of writing the next batch: its first bytes
/// reached the disk, the rest did not. Nothing acknowledged is lost.
#[test]
fn a_torn_write_after_the_last_batch_is_cut_off_and_the_member_rejoins() {
    damage_tail_and_rejoin(|seg, end| {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let torn: Vec<u8> = (0..1_500).map(|_| rng.gen()).collect();
        write_at(seg, end, &torn);
    });
}

/// The last batch itself cut mid-record (its second half reads as zeros).
/// Those entries were synced and acknowledged to the leader, so this is
/// lost data, not a crash: the member starts and drops the batch as a torn
/// tail. It then rejects appends at an index the leader believed it held;
/// the leader must probe it again from its new end (`maybe_decr_to` in
/// raft/src/progress.rs) rather than ignore the rejections as stale, which
/// left it behind for good before (docs/reliability.md, *Findings*).
#[test]
fn a_last_batch_cut_mid_record_is_dropped_and_the_member_rejoins() {
    damage_tail_and_rejoin(|seg, end| {
        let cut = end - BLOCK_BYTES + 100;
        write_at(seg, cut, &vec![0u8; (end - cut) as usize]);
    });
}

/// The same with the file itself truncated mid-record (shorter than its
/// preallocated size).
#[test]
fn a_wal_segment_truncated_mid_record_is_recovered() {
    damage_tail_and_rejoin(|seg, end| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(seg)
            .expect("open segment");
        f.set_len(end - BLOCK_BYTES + 100).expect("truncate");
    });
}

#[test]
fn a_flipped_byte_inside_the_wal_is_refused_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    // Single puts: many small batches, so the middle of the log is far from
    // its tail.
    put_keys(server.addr, "flip", 300);
    server.stop();

    let seg = segments(dir.path()).remove(0);
    let end = content_end(&seg);
    let flip_at = BLOCK_BYTES + (end - BLOCK_BYTES) / 2 + 17;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .expect("open segment");
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(flip_at)).expect("seek");
    f.read_exact(&mut b).expect("read");
    f.seek(SeekFrom::Start(flip_at)).expect("seek");
    f.write_all(&[b[0] ^ 0x40]).expect("flip");
    f.sync_all().expect("sync");
    drop(f);

    // Start it by hand, to read its stderr.
    let url = format!("http://{}", server.addr);
    let peer = format!("http://127.0.0.1:{}", server.peer_port);
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "--name",
            &server.name,
            "--no-pin",
            "--cores",
            "2",
            "--log-level",
            "warn",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cairn");
    let pid = child.id();
    // A member that starts anyway would run forever: stop it after a while.
    let guard = std::thread::spawn(move || {
        std::thread::sleep(WAIT);
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().expect("wait");
    drop(guard);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "cairn started on a corrupt WAL: {stderr}"
    );
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        stderr.contains(&name),
        "the error names the segment {name}: {stderr}"
    );
    let offset: u64 = stderr
        .split("at offset ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the error names an offset: {stderr}"));
    assert!(
        offset <= flip_at && offset + 2 * 1024 * 1024 > flip_at,
        "offset {offset} is not at the damaged batch (byte {flip_at}): {stderr}"
    );
}
