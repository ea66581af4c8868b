//! Linearizability of a 3-member cluster under faults, checked on recorded
//! histories; plus the checker's own tests on hand-made histories.
//!
//! Several client threads read, write and compare-and-swap a few keys
//! through random members while a nemesis kills the leader with SIGKILL
//! (and restarts it) and isolates members behind the partition proxies.
//! Afterwards: the history must be linearizable (per key), every
//! acknowledged write must be in the MVCC history at the revision it was
//! acknowledged with, on every member, the members' `hash_kv` must agree at
//! one revision, and no connection may have seen the revision go back.
//!
//! `CAIRN_CHAOS_SECS` sets the workload's duration (default 12 s),
//! `CAIRN_CHAOS_SEED` the seed (default 1). A failure prints the seed.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_wire::{rpc, CompareParams, PutParams, RangeParams, RequestOpParams, TxnParams};
use common::lin::{self, Entry, KeyVerdict, Op, Outcome};
use common::proxy::Mode;
use common::{Client, Cluster, ProxiedCluster};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---- the checker on hand-made histories ----

fn at(base: Instant, ms: u64) -> Instant {
    base + Duration::from_millis(ms)
}

fn e(base: Instant, client: usize, op: Op, outcome: Outcome, from: u64, to: u64) -> Entry {
    Entry {
        client,
        key: b"k".to_vec(),
        op,
        outcome,
        invoke: at(base, from),
        ret: at(base, to),
    }
}

fn w(v: &str) -> Op {
    Op::Write {
        value: v.as_bytes().to_vec(),
    }
}

fn r(v: Option<&str>) -> Op {
    Op::Read {
        value: v.map(|v| v.as_bytes().to_vec()),
    }
}

fn cas(expected: Option<&str>, new: &str, succeeded: bool) -> Op {
    Op::Cas {
        expected: expected.map(|v| v.as_bytes().to_vec()),
        new: new.as_bytes().to_vec(),
        succeeded,
    }
}

fn verdict(h: &[Entry]) -> KeyVerdict {
    let v = lin::check(h, lin::STEPS_MAX);
    assert_eq!(v.len(), 1);
    v[0].1.clone()
}

#[test]
fn checker_accepts_a_linearizable_history_with_overlaps() {
    let b = Instant::now();
    use Outcome::Ok;
    let h = vec![
        e(b, 0, w("a"), Ok, 0, 10),
        // Concurrent with the write of "b": may see either.
        e(b, 1, w("b"), Ok, 20, 40),
        e(b, 2, r(Some("a")), Ok, 21, 25),
        e(b, 0, r(Some("b")), Ok, 30, 35),
        e(b, 2, cas(Some("b"), "c", true), Ok, 50, 60),
        e(b, 1, cas(Some("b"), "d", false), Ok, 55, 65),
        e(b, 0, r(Some("c")), Ok, 70, 71),
    ];
    assert_eq!(verdict(&h), KeyVerdict::Linearizable);
}

#[test]
fn checker_rejects_a_stale_read() {
    let b = Instant::now();
    let h = vec![
        e(b, 0, w("a"), Outcome::Ok, 0, 10),
        e(b, 1, w("b"), Outcome::Ok, 20, 30),
        // Invoked after "b" was acknowledged, yet sees "a".
        e(b, 2, r(Some("a")), Outcome::Ok, 40, 50),
    ];
    match verdict(&h) {
        KeyVerdict::Violation(window) => {
            assert!(window.contains("read -> \"a\""), "{window}");
        }
        v => panic!("a stale read passed: {v:?}"),
    }
}

#[test]
fn checker_rejects_a_read_of_a_value_never_written() {
    let b = Instant::now();
    let h = vec![
        e(b, 0, w("a"), Outcome::Ok, 0, 10),
        e(b, 1, r(Some("zzz")), Outcome::Ok, 20, 30),
    ];
    assert!(matches!(verdict(&h), KeyVerdict::Violation(_)));
}

#[test]
fn checker_accepts_an_unknown_write_that_must_have_happened() {
    let b = Instant::now();
    let h = vec![
        e(b, 0, w("a"), Outcome::Ok, 0, 10),
        // Timed out, but a later read sees it: it took effect.
        e(b, 1, w("b"), Outcome::Unknown, 20, 0),
        e(b, 2, r(Some("b")), Outcome::Ok, 500, 510),
        e(b, 2, r(Some("b")), Outcome::Ok, 520, 530),
    ];
    assert_eq!(verdict(&h), KeyVerdict::Linearizable);
}

#[test]
fn checker_accepts_an_unknown_write_that_never_happened() {
    let b = Instant::now();
    let h = vec![
        e(b, 0, w("a"), Outcome::Ok, 0, 10),
        e(b, 1, w("b"), Outcome::Unknown, 20, 0),
        // Observed by a failed CAS only: keeps the unknown write in play.
        e(b, 2, cas(Some("a"), "c", false), Outcome::Ok, 25, 28),
        e(b, 2, r(Some("b")), Outcome::Ok, 30, 40),
        e(b, 0, w("d"), Outcome::Ok, 50, 60),
        e(b, 1, r(Some("d")), Outcome::Ok, 70, 80),
    ];
    assert_eq!(verdict(&h), KeyVerdict::Linearizable);
    // And one that nobody saw is simply allowed not to have happened.
    let h = vec![
        e(b, 0, w("a"), Outcome::Ok, 0, 10),
        e(b, 1, w("b"), Outcome::Unknown, 20, 0),
        e(b, 2, r(Some("a")), Outcome::Ok, 500, 510),
    ];
    assert_eq!(verdict(&h), KeyVerdict::Linearizable);
}

#[test]
fn checker_rejects_an_unknown_write_seen_before_it_was_sent() {
    let b = Instant::now();
    let h = vec![
        e(b, 0, r(Some("b")), Outcome::Ok, 0, 10),
        e(b, 1, w("b"), Outcome::Unknown, 20, 0),
    ];
    assert!(matches!(verdict(&h), KeyVerdict::Violation(_)));
}

#[test]
fn checker_rejects_a_cas_that_succeeded_against_the_wrong_value() {
    let b = Instant::now();
    let h = vec![
        e(b, 0, w("a"), Outcome::Ok, 0, 10),
        e(b, 1, cas(Some("x"), "y", true), Outcome::Ok, 20, 30),
    ];
    assert!(matches!(verdict(&h), KeyVerdict::Violation(_)));
    // A failed CAS whose guard held is just as wrong.
    let h = vec![
        e(b, 0, w("a"), Outcome::Ok, 0, 10),
        e(b, 1, cas(Some("a"), "y", false), Outcome::Ok, 20, 30),
    ];
    assert!(matches!(verdict(&h), KeyVerdict::Violation(_)));
}

#[test]
fn checker_ignores_failed_operations_and_checks_keys_apart() {
    let b = Instant::now();
    let mut h = vec![
        e(b, 0, w("a"), Outcome::Ok, 0, 10),
        e(b, 1, w("b"), Outcome::Failed, 20, 30),
        e(b, 2, r(Some("a")), Outcome::Ok, 40, 50),
    ];
    let mut other = e(b, 0, r(Some("a")), Outcome::Ok, 40, 50);
    other.key = b"other".to_vec();
    h.push(other);
    let v = lin::check(&h, lin::STEPS_MAX);
    assert_eq!(v[0].1, KeyVerdict::Linearizable, "key k");
    assert!(
        matches!(v[1].1, KeyVerdict::Violation(_)),
        "key other never had \"a\""
    );
}

/// A random history a real register produced: 5 clients with overlapping
/// operations, a few of them with unknown outcomes. It must pass, within
/// the step budget, at a few thousand operations.
#[test]
fn checker_handles_thousands_of_operations() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let b = Instant::now();
    let clients = 5;
    let mut free_at = vec![0u64; clients];
    let mut value: Option<Vec<u8>> = None;
    let mut h = Vec::new();
    // Each op takes effect at `t` (the register's order), inside its interval.
    for t in (0..4000u64).map(|i| i * 10 + 5) {
        let c = rng.gen_range(0..clients);
        if free_at[c] > t {
            continue; // that client is still busy
        }
        let invoke = free_at[c].max(t.saturating_sub(rng.gen_range(0..30)));
        let ret = t + rng.gen_range(1..30);
        free_at[c] = ret + 1;
        let (op, outcome) = match rng.gen_range(0..10) {
            0..=3 => (
                Op::Read {
                    value: value.clone(),
                },
                Outcome::Ok,
            ),
            4..=6 => {
                let v = format!("v{t}").into_bytes();
                value = Some(v.clone());
                let unknown = rng.gen_range(0..100) < 2;
                (
                    Op::Write { value: v },
                    if unknown {
                        Outcome::Unknown
                    } else {
                        Outcome::Ok
                    },
                )
            }
            _ => {
                let expected = if rng.gen_bool(0.5) {
                    value.clone()
                } else {
                    Some(b"nope".to_vec())
                };
                let new = format!("c{t}").into_bytes();
                let succeeded = expected == value;
                if succeeded {
                    value = Some(new.clone());
                }
                (
                    Op::Cas {
                        expected,
                        new,
                        succeeded,
                    },
                    Outcome::Ok,
                )
            }
        };
        h.push(Entry {
            client: c,
            key: b"k".to_vec(),
            op,
            outcome,
            invoke: at(b, invoke),
            ret: at(b, ret),
        });
    }
    // Unknown writes that never happened: sent, but no effect at all.
    for i in 0..20u64 {
        let invoke = at(b, i * 1000 + 3);
        let op = Op::Write {
            value: format!("lost{i}").into_bytes(),
        };
        h.push(Entry {
            client: 9,
            key: b"k".to_vec(),
            op,
            outcome: Outcome::Unknown,
            invoke,
            ret: invoke,
        });
    }
    assert_eq!(verdict(&h), KeyVerdict::Linearizable);
}

// ---- the cluster under faults ----

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `CAIRN_LIN_SERIALIZABLE_READS=1` makes the clients' reads serializable
/// (served from the member's local state). Those are allowed to be stale,
/// so the test is expected to FAIL then: a check that the harness and the
/// checker catch stale reads from a cut-off member.
fn serializable_reads() -> bool {
    std::env::var("CAIRN_LIN_SERIALIZABLE_READS").is_ok_and(|v| v == "1")
}

const KEYS: usize = 3;
const CLIENTS: usize = 5;
/// A client gives up on an answer after this long and records the
/// operation as unknown; longer than an election, so a healthy leader
/// change rarely produces unknowns.
const REPLY_TIMEOUT_MS: u64 = 3_000;

fn key_name(k: usize) -> Vec<u8> {
    format!("lin/{k}").into_bytes()
}

/// What one client thread brings back.
#[derive(Default)]
struct ClientLog {
    history: Vec<Entry>,
    /// Acknowledged writes: key, value, the revision they were acknowledged at.
    acked: Vec<(Vec<u8>, Vec<u8>, i64)>,
    /// Problems seen on the way (revision going back on a connection).
    problems: Vec<String>,
}

fn cas_frame(c: &mut Client, key: &[u8], expected: Option<&[u8]>, new: &[u8]) -> Vec<u8> {
    let compare = match expected {
        Some(v) => CompareParams {
            result: rpc::CompareResult::Equal,
            target: rpc::CompareTarget::Value,
            key,
            value: v,
            ..Default::default()
        },
        None => CompareParams {
            result: rpc::CompareResult::Equal,
            target: rpc::CompareTarget::Version,
            key,
            version: 0,
            ..Default::default()
        },
    };
    let success = [RequestOpParams::Put(PutParams {
        key,
        value: new,
        ..Default::default()
    })];
    let id = c.id();
    c.enc
        .txn_request(
            id,
            &TxnParams {
                compare: &[compare],
                success: &success,
                failure: &[],
            },
        )
        .to_vec()
}

fn connect(addr: std::net::SocketAddr) -> Option<Client> {
    let c = Client::connect(addr).ok()?;
    c.stream
        .set_read_timeout(Some(Duration::from_millis(REPLY_TIMEOUT_MS)))
        .ok()?;
    Some(c)
}

fn run_client(
    me: usize,
    seed: u64,
    addrs: Vec<std::net::SocketAddr>,
    stop: Arc<AtomicBool>,
) -> ClientLog {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (me as u64 + 1).wrapping_mul(0x9e37_79b9));
    let mut log = ClientLog::default();
    let mut conn: Option<(Client, usize, i64)> = None;
    let mut last_read: Vec<Option<Vec<u8>>> = vec![None; KEYS];
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        if conn.is_none() || rng.gen_range(0..100) == 0 {
            let m = rng.gen_range(0..addrs.len());
            match connect(addrs[m]) {
                Some(c) => conn = Some((c, m, 0)),
                None => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
        }
        let Some((c, member, last_rev)) = conn.as_mut() else {
            continue;
        };
        let k = rng.gen_range(0..KEYS);
        let key = key_name(k);
        n += 1;
        let value = format!("c{me}-{n}").into_bytes();
        let (op, frame) = match rng.gen_range(0..10) {
            0..=3 => {
                let id = c.id();
                let p = RangeParams {
                    key: &key,
                    serializable: serializable_reads(),
                    ..Default::default()
                };
                let f = c.enc.range_request(id, &p).to_vec();
                (Op::Read { value: None }, f)
            }
            4..=6 => {
                let id = c.id();
                let f = c
                    .enc
                    .put_request(
                        id,
                        &PutParams {
                            key: &key,
                            value: &value,
                            ..Default::default()
                        },
                    )
                    .to_vec();
                (
                    Op::Write {
                        value: value.clone(),
                    },
                    f,
                )
            }
            _ => {
                let expected = last_read[k].clone();
                let f = cas_frame(c, &key, expected.as_deref(), &value);
                (
                    Op::Cas {
                        expected,
                        new: value.clone(),
                        succeeded: false,
                    },
                    f,
                )
            }
        };
        let invoke = Instant::now();
        let answer = c.call(frame);
        let ret = Instant::now();
        let mut entry = Entry {
            client: me,
            key: key.clone(),
            op,
            outcome: Outcome::Unknown,
            invoke,
            ret,
        };
        let mut drop_conn = false;
        match answer {
            Ok(reply) if reply.error.is_none() => {
                if reply.revision < *last_rev {
                    log.problems.push(format!(
                        "client {me} on member {member}: revision went back from {last_rev} to {}",
                        reply.revision
                    ));
                }
                *last_rev = reply.revision;
                entry.outcome = Outcome::Ok;
                match &mut entry.op {
                    Op::Read { value } => {
                        *value = reply.kvs.first().map(|kv| kv.1.clone());
                        last_read[k] = value.clone();
                    }
                    Op::Write { value } => {
                        log.acked.push((key.clone(), value.clone(), reply.revision))
                    }
                    Op::Cas { new, succeeded, .. } => {
                        *succeeded = reply.succeeded;
                        if reply.succeeded {
                            log.acked.push((key.clone(), new.clone(), reply.revision));
                        }
                    }
                }
            }
            Ok(_) => {
                // An error answer: a read had no effect; a write may still
                // commit (e.g. "request timed out"), so it stays unknown.
                if matches!(entry.op, Op::Read { .. }) {
                    entry.outcome = Outcome::Failed;
                }
                drop_conn = rng.gen_bool(0.5);
            }
            Err(_) => {
                if matches!(entry.op, Op::Read { .. }) {
                    entry.outcome = Outcome::Failed;
                }
                drop_conn = true;
            }
        }
        log.history.push(entry);
        if drop_conn {
            conn = None;
        }
    }
    log
}

/// The nemesis: in turn kills the leader (then restarts it), isolates a
/// random member (then heals) and slows a random member's links or drops a
/// share of their messages (then heals), until `until`. Returns the
/// faults it injected.
fn nemesis(pc: &Mutex<ProxiedCluster>, seed: u64, until: Instant) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut faults = Vec::new();
    let mut round = 0;
    std::thread::sleep(Duration::from_millis(1_000));
    while Instant::now() + Duration::from_millis(3_000) < until {
        let hold = Duration::from_millis(rng.gen_range(1_000..2_500));
        match round % 3 {
            0 => {
                let leader = pc
                    .lock()
                    .unwrap()
                    .cluster
                    .wait_leader(Duration::from_secs(20));
                pc.lock().unwrap().cluster.members[leader].kill9();
                faults.push(format!("kill -9 leader m{}", leader + 1));
                std::thread::sleep(hold);
                pc.lock().unwrap().cluster.members[leader].spawn();
            }
            1 => {
                let k = rng.gen_range(0..3);
                pc.lock().unwrap().isolate(k);
                faults.push(format!("isolate m{}", k + 1));
                std::thread::sleep(hold);
                pc.lock().unwrap().heal();
            }
            _ => {
                // Slow links to and from one member, with jitter of the
                // order of the heartbeat interval; every other time, lose a
                // share of the messages on them instead.
                let k = rng.gen_range(0..3);
                let mode = if (round / 3) % 2 == 0 {
                    Mode::Lossy {
                        per_mille: rng.gen_range(100..400),
                    }
                } else {
                    Mode::Delay {
                        ms: rng.gen_range(10..60),
                        jitter_ms: 50,
                    }
                };
                let g = pc.lock().unwrap();
                for j in (0..3).filter(|&j| j != k) {
                    g.set_link(k, j, mode);
                    g.set_link(j, k, mode);
                }
                drop(g);
                let what = match mode {
                    Mode::Lossy { .. } => "lossy links",
                    _ => "slow links",
                };
                faults.push(format!("{what} m{} {mode:?}", k + 1));
                std::thread::sleep(hold);
                pc.lock().unwrap().heal();
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(rng.gen_range(500..1_500)));
    }
    faults
}

#[test]
fn histories_under_leader_kills_and_partitions_are_linearizable() {
    let secs = env_u64("CAIRN_CHAOS_SECS", 12);
    let seed = env_u64("CAIRN_CHAOS_SEED", 1);
    println!("linearizability: seed {seed}, {secs} s (CAIRN_CHAOS_SEED / CAIRN_CHAOS_SECS)");
    let pc = Arc::new(Mutex::new(Cluster::start_with_proxies(3, &[])));
    let addrs: Vec<_> = pc
        .lock()
        .unwrap()
        .cluster
        .members
        .iter()
        .map(|m| m.addr)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(secs);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (addrs, stop) = (addrs.clone(), stop.clone());
            std::thread::spawn(move || run_client(i, seed, addrs, stop))
        })
        .collect();
    let faults = nemesis(&pc, seed, until);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    let logs: Vec<ClientLog> = clients
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    let pc = pc.lock().unwrap();
    let wait = Duration::from_secs(20);
    pc.cluster.wait_leader(wait);

    let mut history: Vec<Entry> = logs
        .iter()
        .flat_map(|l| l.history.iter().cloned())
        .collect();
    let mut problems: Vec<String> = logs
        .iter()
        .flat_map(|l| l.problems.iter().cloned())
        .collect();
    // Final reads through every member close the history.
    for m in &pc.cluster.members {
        let mut c = Client::connect_retry(m.addr, wait);
        for k in 0..KEYS {
            let key = key_name(k);
            let invoke = Instant::now();
            let r = read_retry(&mut c, &key, wait);
            let value = r.kvs.first().map(|kv| kv.1.clone());
            history.push(Entry {
                client: 99,
                key,
                op: Op::Read { value },
                outcome: Outcome::Ok,
                invoke,
                ret: Instant::now(),
            });
        }
    }
    let count = |o: Outcome| history.iter().filter(|e| e.outcome == o).count();
    println!(
        "linearizability: {} operations ({} ok, {} unknown, {} failed); faults: {}",
        history.len(),
        count(Outcome::Ok),
        count(Outcome::Unknown),
        count(Outcome::Failed),
        faults.join(", ")
    );
    let started = Instant::now();
    for (key, v, checked) in lin::check(&history, lin::STEPS_MAX) {
        let key = String::from_utf8_lossy(&key).into_owned();
        match v {
            KeyVerdict::Linearizable => println!("  {key}: {checked} operations linearizable"),
            KeyVerdict::GaveUp => {
                println!("  {key}: {checked} operations, search budget ran out (no verdict)")
            }
            KeyVerdict::Violation(w) => problems.push(format!("{key} is not linearizable: {w}")),
        }
    }
    println!("linearizability: checked in {:?}", started.elapsed());

    // Every acknowledged write is in every member's history at its revision.
    let acked: Vec<_> = logs.iter().flat_map(|l| l.acked.iter().cloned()).collect();
    let mut top = 0;
    for m in &pc.cluster.members {
        let mut c = Client::connect_retry(m.addr, wait);
        for (key, value, rev) in &acked {
            let r = c.get(RangeParams {
                key,
                revision: *rev,
                ..Default::default()
            });
            let got = r.kvs.first().map(|kv| (kv.1.clone(), kv.3));
            if r.error.is_some() || got != Some((value.clone(), *rev)) {
                problems.push(format!(
                    "{}: acknowledged write {}={} at revision {rev} reads back as {got:?} {:?}",
                    m.name,
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(value),
                    r.error
                ));
            }
        }
        top = top.max(read_retry(&mut c, &key_name(0), wait).revision);
    }
    // The members agree at one revision.
    let hashes: Vec<_> = pc
        .cluster
        .members
        .iter()
        .map(|m| {
            let mut c = Client::connect_retry(m.addr, wait);
            read_retry(&mut c, &key_name(0), wait);
            let h = c.hash_kv(top);
            (h.hash, h.error)
        })
        .collect();
    if hashes.windows(2).any(|w| w[0] != w[1]) || hashes[0].1.is_some() {
        problems.push(format!("members disagree at revision {top}: {hashes:?}"));
    }
    println!(
        "linearizability: {} acknowledged writes verified on every member",
        acked.len()
    );
    assert!(
        problems.is_empty(),
        "seed {seed}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A linearizable read, retried through elections.
fn read_retry(c: &mut Client, key: &[u8], within: Duration) -> common::Reply {
    let deadline = Instant::now() + within;
    loop {
        let r = c.get(RangeParams {
            key,
            ..Default::default()
        });
        if r.error.is_none() || Instant::now() > deadline {
            assert!(r.error.is_none(), "read {key:?}: {:?}", r.error);
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
