//! Watches, leases and multi-key txns on a 3-member cluster under faults,
//! checked on the recorded history; plus the checkers' own tests on
//! hand-made histories.
//!
//! Clients send multi-key txns (compare on mod revision, put and delete
//! several keys), put keys with leases and revoke them or let them expire;
//! watchers follow every key with `prev_kv` from "now" or from the start,
//! resuming on another member whenever their stream ends. Meanwhile the
//! leader is killed with SIGKILL, members are cut off, and random members
//! are killed. Afterwards the store's history is read with a watch from
//! the first revision on every member, and `history_util::check` holds
//! every recording against it (see there for the exact rules).
//!
//! `CAIRN_HISTORY_SECS` sets the workload's duration (default 8 s),
//! `CAIRN_HISTORY_SEED` the seed (default 1). A failure prints the seed.

mod common;
mod history_util;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Cluster};
use history_util::check::{self, Recorded, Report};
use history_util::workload::{self, Shared};
use history_util::{
    Change, Event, Kv, LeaseEnd, LeaseRecord, Outcome, WatchSegment, WriteOp, WriteRecord, PREFIX,
};

// ---- the checkers on hand-made histories ----

/// Builds a history the way a store would, one revision at a time.
struct Hist {
    rev: i64,
    state: BTreeMap<Vec<u8>, Kv>,
    events: Vec<Event>,
}

impl Hist {
    fn new() -> Hist {
        Hist {
            rev: 1,
            state: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// One revision: (key, value or None for a delete, lease).
    fn commit(&mut self, changes: &[(&str, Option<&str>, i64)]) -> i64 {
        self.rev += 1;
        for (key, value, lease) in changes {
            let key = key.as_bytes().to_vec();
            let prev = self.state.get(&key).cloned();
            let e = match value {
                Some(v) => {
                    let kv = Kv {
                        key: key.clone(),
                        value: v.as_bytes().to_vec(),
                        create_revision: prev.as_ref().map_or(self.rev, |p| p.create_revision),
                        mod_revision: self.rev,
                        version: prev.as_ref().map_or(0, |p| p.version) + 1,
                        lease: *lease,
                    };
                    self.state.insert(key, kv.clone());
                    Event {
                        put: true,
                        kv,
                        prev,
                    }
                }
                None => {
                    if prev.is_none() {
                        continue;
                    }
                    self.state.remove(&key);
                    let kv = Kv {
                        key,
                        mod_revision: self.rev,
                        ..Kv::default()
                    };
                    Event {
                        put: false,
                        kv,
                        prev,
                    }
                }
            };
            self.events.push(e);
        }
        self.rev
    }
}

fn ch(key: &str, value: Option<&str>) -> Change {
    Change {
        key: key.as_bytes().to_vec(),
        value: value.map(|v| v.as_bytes().to_vec()),
    }
}

fn txn(
    client: usize,
    compares: &[(&str, i64)],
    success: Vec<Change>,
    failure: Vec<Change>,
    outcome: Outcome,
    revision: i64,
    succeeded: bool,
) -> WriteRecord {
    WriteRecord {
        client,
        op: WriteOp::Txn {
            compares: compares
                .iter()
                .map(|(k, r)| (k.as_bytes().to_vec(), *r))
                .collect(),
            success,
            failure,
        },
        outcome,
        revision,
        succeeded,
    }
}

fn lease_put(key: &str, value: &str, lease: i64, revision: i64) -> WriteRecord {
    WriteRecord {
        client: 2,
        op: WriteOp::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            lease,
        },
        outcome: Outcome::Ok,
        revision,
        succeeded: false,
    }
}

const L: i64 = 0x10;

/// A small run: two txns (one per branch), an unknown txn that happened
/// (its delete of an absent key leaves no event), one that did not, two
/// lease puts and the lease's revoke; two watchers.
struct Sample {
    hist: Hist,
    writes: Vec<WriteRecord>,
    leases: Vec<LeaseRecord>,
}

fn sample() -> Sample {
    let mut h = Hist::new();
    let r2 = h.commit(&[("h/k/0", Some("t0.1.0"), 0), ("h/k/1", Some("t0.1.1"), 0)]);
    let r3 = h.commit(&[("h/f/1", Some("t1.1.f"), 0)]);
    h.commit(&[
        ("h/k/0", None, 0),
        ("h/k/2", Some("t0.2.1"), 0),
        ("h/k/3", None, 0),
    ]);
    let r5 = h.commit(&[("h/l/10/0", Some("l2.1.0"), L)]);
    let r6 = h.commit(&[("h/l/10/1", Some("l2.1.1"), L)]);
    let r7 = h.commit(&[("h/l/10/0", None, 0), ("h/l/10/1", None, 0)]);
    let writes = vec![
        txn(
            0,
            &[("h/k/0", 0), ("h/k/1", 0)],
            vec![ch("h/k/0", Some("t0.1.0")), ch("h/k/1", Some("t0.1.1"))],
            vec![ch("h/f/0", Some("t0.1.f"))],
            Outcome::Ok,
            r2,
            true,
        ),
        txn(
            1,
            &[("h/k/0", 0)],
            vec![ch("h/k/0", Some("t1.1.0"))],
            vec![ch("h/f/1", Some("t1.1.f"))],
            Outcome::Ok,
            r3,
            false,
        ),
        txn(
            0,
            &[("h/k/0", r2), ("h/k/2", 0)],
            vec![
                ch("h/k/0", None),
                ch("h/k/2", Some("t0.2.1")),
                ch("h/k/3", None),
            ],
            vec![ch("h/f/0", Some("t0.2.f"))],
            Outcome::Unknown,
            0,
            false,
        ),
        txn(
            1,
            &[("h/k/1", 0)],
            vec![ch("h/k/1", Some("t1.2.0"))],
            vec![ch("h/f/1", Some("t1.2.f"))],
            Outcome::Unknown,
            0,
            false,
        ),
        lease_put("h/l/10/0", "l2.1.0", L, r5),
        lease_put("h/l/10/1", "l2.1.1", L, r6),
    ];
    let leases = vec![LeaseRecord {
        client: 2,
        lease: L,
        end: LeaseEnd::Revoked,
        revoke_revision: Some(r7),
        read_revision: r7,
        keys_left: Vec::new(),
    }];
    Sample {
        hist: h,
        writes,
        leases,
    }
}

fn segment(watcher: usize, start: i64, responses: Vec<Vec<Event>>) -> WatchSegment {
    WatchSegment {
        watcher,
        member: 0,
        start_revision: start,
        responses,
        ended: "test".into(),
    }
}

/// The events of revisions `from..=to`, one response per revision.
fn by_revision(h: &Hist, from: i64, to: i64) -> Vec<Vec<Event>> {
    (from..=to)
        .map(|r| {
            h.events
                .iter()
                .filter(|e| e.revision() == r)
                .cloned()
                .collect()
        })
        .filter(|v: &Vec<Event>| !v.is_empty())
        .collect()
}

fn run(s: &Sample, history: &[Event], watches: &[WatchSegment]) -> Report {
    check::check(&Recorded {
        history,
        first_revision: 2,
        final_revision: s.hist.rev,
        writes: &s.writes,
        leases: &s.leases,
        watches,
    })
}

fn assert_found(rep: &Report, what: &str) {
    assert!(
        rep.problems.iter().any(|p| p.contains(what)),
        "expected a problem containing {what:?}, got {:#?}",
        rep.problems
    );
}

#[test]
fn checker_accepts_a_consistent_history() {
    let s = sample();
    let watches = vec![
        segment(0, 2, by_revision(&s.hist, 2, 3)),
        segment(0, 4, by_revision(&s.hist, 4, 7)),
        segment(1, 5, by_revision(&s.hist, 5, 7)),
    ];
    let rep = run(&s, &s.hist.events, &watches);
    assert!(rep.problems.is_empty(), "{:#?}", rep.problems);
    assert_eq!(
        (rep.revisions, rep.txns_applied, rep.puts_applied),
        (6, 3, 2)
    );
    assert_eq!(
        (
            rep.acked_verified,
            rep.unknown_applied,
            rep.unknown_not_applied
        ),
        (4, 1, 1)
    );
    assert_eq!(rep.lease_ends_applied, 1);
    let segs: Vec<&WatchSegment> = watches.iter().filter(|w| w.watcher == 0).collect();
    assert!(check::check_watcher_chain(&segs, Some(7)).is_empty());
    let segs = [&watches[0]];
    assert!(check::check_watcher_chain(&segs, None).is_empty());
    let stopped = check::check_watcher_chain(&segs, Some(7));
    assert!(
        stopped[0].contains("stopped at revision 3 of 7"),
        "{stopped:?}"
    );
}

#[test]
fn checker_finds_a_lost_acknowledged_write() {
    let s = sample();
    let history: Vec<Event> = s
        .hist
        .events
        .iter()
        .filter(|e| e.revision() != 3)
        .cloned()
        .collect();
    let rep = run(&s, &history, &[]);
    assert_found(&rep, "lost acknowledged write: client 1's");
    assert_found(&rep, "revisions 3..3 are missing");
}

#[test]
fn checker_finds_a_txn_split_across_revisions_or_applied_twice() {
    let mut s = sample();
    let mut h = Hist::new();
    h.commit(&[("h/k/0", Some("t0.1.0"), 0)]);
    h.commit(&[("h/k/1", Some("t0.1.1"), 0)]);
    s.hist = h;
    let rep = run(&s, &s.hist.events, &[]);
    assert_found(&rep, "are not one operation's effect");
    assert_found(&rep, "was already applied at revision 2");

    let s = sample();
    let mut twice = s.hist.events.clone();
    let mut again: Vec<Event> = twice
        .iter()
        .filter(|e| e.revision() == 3)
        .cloned()
        .collect();
    for e in &mut again {
        e.prev = Some(e.kv.clone());
        e.kv.mod_revision = 8;
        e.kv.version += 1;
    }
    twice.extend(again);
    let rep = run(&s, &twice, &[]);
    assert_found(&rep, "was already applied at revision 3");
}

#[test]
fn checker_finds_a_txn_answer_that_contradicts_its_compares() {
    let mut s = sample();
    // Client 1's compare (h/k/0 absent) did not hold at revision 3.
    s.writes[1].succeeded = true;
    let rep = run(&s, &s.hist.events, &[]);
    assert_found(
        &rep,
        "answered succeeded=true but its compares did not hold",
    );
    // A write that failed for certain must not be in the history.
    let mut s = sample();
    s.writes[4].outcome = Outcome::Failed;
    let rep = run(&s, &s.hist.events, &[]);
    assert_found(&rep, "failed for certain but was applied at revision 5");
}

#[test]
fn checker_finds_watch_gaps_repeats_wrong_prev_kv_and_split_revisions() {
    let s = sample();
    let all = by_revision(&s.hist, 2, 7);
    let cases: Vec<(Vec<Vec<Event>>, &str)> = vec![
        (
            {
                let mut r = all.clone();
                r.remove(1);
                r
            },
            "a gap at event 2",
        ),
        (
            {
                let mut r = all.clone();
                r.insert(2, all[1].clone());
                r
            },
            "repeated or out of order",
        ),
        (
            {
                let mut r = all.clone();
                r[2][0].prev = None;
                r
            },
            "a different event at event 3",
        ),
        (
            {
                let mut r = all.clone();
                let second = r[0].split_off(1);
                r.insert(1, second);
                r
            },
            "revision 2 is split across two responses",
        ),
    ];
    for (responses, what) in cases {
        let rep = run(&s, &s.hist.events, &[segment(0, 2, responses)]);
        assert_found(&rep, what);
    }
    // Resuming with a hole between two streams.
    let a = segment(0, 2, by_revision(&s.hist, 2, 3));
    let b = segment(0, 5, by_revision(&s.hist, 5, 7));
    let chain = check::check_watcher_chain(&[&a, &b], None);
    assert!(
        chain[0].contains("resumed at revision 5 after receiving up to 3"),
        "{chain:?}"
    );
    // The history's own prev_kv is checked too.
    let mut bad = s.hist.events.clone();
    bad[3].prev = None;
    assert_found(&run(&s, &bad, &[]), "but the key was Some(");
}

#[test]
fn checker_finds_lease_keys_outliving_their_lease() {
    let mut s = sample();
    s.leases[0].keys_left = vec![b"h/l/10/1".to_vec()];
    assert_found(
        &run(&s, &s.hist.events, &[]),
        "a read at revision 7 after its end",
    );
    // The revoke acknowledged before the keys went.
    let mut s = sample();
    s.leases[0].revoke_revision = Some(6);
    s.leases[0].read_revision = 6;
    assert_found(
        &run(&s, &s.hist.events, &[]),
        "revoke acknowledged at revision 6",
    );
    // The lease's keys deleted over two revisions.
    let mut s = sample();
    let mut h = Hist::new();
    h.commit(&[("h/k/0", Some("t0.1.0"), 0), ("h/k/1", Some("t0.1.1"), 0)]);
    h.commit(&[("h/f/1", Some("t1.1.f"), 0)]);
    h.commit(&[("h/k/0", None, 0), ("h/k/2", Some("t0.2.1"), 0)]);
    h.commit(&[("h/l/10/0", Some("l2.1.0"), L)]);
    h.commit(&[("h/l/10/1", Some("l2.1.1"), L)]);
    h.commit(&[("h/l/10/0", None, 0)]);
    h.commit(&[("h/l/10/1", None, 0)]);
    s.hist = h;
    let rep = run(&s, &s.hist.events, &[]);
    assert_found(&rep, "are not one lease's end");
    assert_found(&rep, "deleted again (first at 7)");
}

// ---- findings ----

/// Finding 7 in docs/reliability.md (fixed): the leader answered
/// TimeToLive with TTL -1 (what it answers for a lease that does not
/// exist) as soon as a lease's deadline passed, before the revocation that
/// deletes its keys was even proposed; a linearizable read right after
/// still returned the keys. It now answers 0 until the revocation applies.
#[test]
fn a_time_to_live_of_minus_one_means_the_keys_are_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Fast elections make the minimum TTL 1 s.
    let fast = ["--heartbeat-interval", "50", "--election-timeout", "500"];
    let server = common::Server::start(dir.path(), &fast);
    let mut c = workload::connect(server.addr).expect("connect");
    let mut readable = Vec::new();
    for n in 0..5 {
        let (lease, _) = c.lease_grant(1, 0).expect("grant");
        let prefix = format!("x/{n}/");
        for j in 0..3 {
            let key = format!("{prefix}{j}");
            c.put_lease(key.as_bytes(), b"v", lease).expect("put");
        }
        let granted_ttl = loop {
            let t = c.lease_ttl(lease, false).expect("time to live");
            if t.ttl == -1 {
                break t.granted_ttl;
            }
        };
        let end = history_util::prefix_end(prefix.as_bytes());
        let r = c.get(cairn_wire::RangeParams {
            key: prefix.as_bytes(),
            range_end: &end,
            ..Default::default()
        });
        assert!(r.error.is_none(), "read: {:?}", r.error);
        let (rev, kvs) = (r.revision, r.kvs);
        if !kvs.is_empty() {
            readable.push(format!(
                "lease {lease:x}: TTL -1 (granted {granted_ttl}), then {} keys at revision {rev}",
                kvs.len()
            ));
        }
    }
    assert!(
        readable.is_empty(),
        "keys readable after TimeToLive said -1:\n{}",
        readable.join("\n")
    );
}

// ---- the cluster under faults ----

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const TXN_CLIENTS: usize = 2;
const LEASE_CLIENTS: usize = 2;
const WATCHERS: usize = 3;

#[test]
fn watches_leases_and_txns_under_kills_and_partitions() {
    let secs = env_u64("CAIRN_HISTORY_SECS", 8);
    let seed = env_u64("CAIRN_HISTORY_SEED", 1);
    println!("history: seed {seed}, {secs} s (CAIRN_HISTORY_SEED / CAIRN_HISTORY_SECS)");
    let pc = Arc::new(Mutex::new(Cluster::start_with_proxies(3, &[])));
    let addrs: Vec<_> = pc
        .lock()
        .unwrap()
        .cluster
        .members
        .iter()
        .map(|m| m.addr)
        .collect();
    let (r0, _) = workload::read_prefix_retry(&addrs, PREFIX).expect("initial read");
    let first_revision = r0 + 1;
    let sh = Arc::new(Shared::new(addrs.clone()));
    let until = Instant::now() + Duration::from_secs(secs);

    let txns: Vec<_> = (0..TXN_CLIENTS)
        .map(|i| {
            let sh = sh.clone();
            std::thread::spawn(move || workload::txn_client(i, seed, &sh))
        })
        .collect();
    let leases: Vec<_> = (0..LEASE_CLIENTS)
        .map(|i| {
            let sh = sh.clone();
            std::thread::spawn(move || workload::lease_client(TXN_CLIENTS + i, seed, &sh))
        })
        .collect();
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|i| {
            let sh = sh.clone();
            std::thread::spawn(move || workload::watcher(i, seed, &sh, first_revision))
        })
        .collect();
    let faults = workload::nemesis(&pc, seed, until);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    sh.stop.store(true, Ordering::SeqCst);
    let mut writes: Vec<WriteRecord> = txns
        .into_iter()
        .flat_map(|h| h.join().expect("txn client"))
        .collect();
    let mut lease_records = Vec::new();
    let mut problems = Vec::new();
    let (mut ttl_pending, mut ttl_pending_with_keys) = (0, 0);
    for h in leases {
        let log = h.join().expect("lease client");
        ttl_pending += log.ttl_pending_seen;
        ttl_pending_with_keys += log.ttl_pending_with_keys;
        writes.extend(log.writes);
        lease_records.extend(log.leases);
        problems.extend(log.problems);
    }

    // Nothing writes any more: every member's linearizable read gives the
    // final revision.
    let pc = pc.lock().unwrap();
    pc.cluster.wait_leader(Duration::from_secs(20));
    let mut states = Vec::new();
    for a in &addrs {
        match workload::read_prefix_retry(&[*a], PREFIX) {
            Ok(st) => states.push(st),
            Err(e) => problems.push(e),
        }
    }
    let final_revision = states.iter().map(|s| s.0).max().unwrap_or(0);
    sh.final_revision.store(final_revision, Ordering::SeqCst);
    let segments: Vec<WatchSegment> = watchers
        .into_iter()
        .flat_map(|h| h.join().expect("watcher"))
        .collect();

    let histories: Vec<Vec<Event>> = addrs
        .iter()
        .filter_map(
            |a| match workload::read_history(*a, first_revision, final_revision) {
                Ok(h) => Some(h),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        )
        .collect();
    assert!(
        !histories.is_empty(),
        "seed {seed}: no member returned its history: {problems:#?}"
    );
    let history = &histories[0];
    for h in histories.iter().skip(1) {
        if let Some(d) = check::compare_histories(history, h) {
            problems.push(format!("the members' histories differ: {d}"));
        }
    }
    let replayed = check::final_state(history);
    for (i, (rev, kvs)) in states.iter().enumerate() {
        if *rev != final_revision || *kvs != replayed {
            problems.push(format!(
                "m{}: state at revision {rev} is not the replayed history's (revision \
                 {final_revision}): {} keys against {}",
                i + 1,
                kvs.len(),
                replayed.len()
            ));
        }
    }
    let hashes: Vec<_> = addrs
        .iter()
        .map(|a| {
            let mut c = Client::connect_retry(*a, Duration::from_secs(10));
            let h = c.hash_kv(final_revision);
            (h.hash, h.error)
        })
        .collect();
    if hashes.windows(2).any(|w| w[0] != w[1]) || hashes[0].1.is_some() {
        problems.push(format!(
            "members disagree at revision {final_revision}: {hashes:?}"
        ));
    }

    let rep = check::check(&Recorded {
        history,
        first_revision,
        final_revision,
        writes: &writes,
        leases: &lease_records,
        watches: &segments,
    });
    problems.extend(rep.problems.iter().cloned());
    let mut chains: BTreeMap<usize, Vec<&WatchSegment>> = BTreeMap::new();
    for s in &segments {
        chains.entry(s.watcher).or_default().push(s);
        if s.ended.starts_with("canceled") || s.ended.starts_with("refused") {
            problems.push(format!(
                "watch {} on m{}: {}",
                s.watcher,
                s.member + 1,
                s.ended
            ));
        }
    }
    for (&id, segs) in &chains {
        // Only each thread's last chain was asked to reach the end.
        let thread = id / workload::WATCH_CHAINS_MAX;
        let last = chains
            .keys()
            .filter(|k| *k / workload::WATCH_CHAINS_MAX == thread)
            .max()
            == Some(&id);
        problems.extend(check::check_watcher_chain(
            segs,
            last.then_some(final_revision),
        ));
    }
    let count = |o: Outcome| writes.iter().filter(|w| w.outcome == o).count();
    let ends = |e: LeaseEnd| lease_records.iter().filter(|l| l.end == e).count();
    println!(
        "history: revisions {first_revision}..={final_revision}: {} revisions, {} events; \
         writes: {} ok, {} unknown ({} applied), {} failed; applied: {} txns, {} lease puts, \
         {} lease ends; leases: {} revoked, {} expired; TTL -1 while the revocation was \
         pending: {} polls, keys still readable after {}",
        rep.revisions,
        rep.events,
        count(Outcome::Ok),
        count(Outcome::Unknown),
        rep.unknown_applied,
        count(Outcome::Failed),
        rep.txns_applied,
        rep.puts_applied,
        rep.lease_ends_applied,
        ends(LeaseEnd::Revoked),
        ends(LeaseEnd::Expired),
        ttl_pending,
        ttl_pending_with_keys,
    );
    println!(
        "history: {} watch streams in {} chains, {} watch events checked; {} acknowledged writes verified; \
         faults: {}",
        segments.len(),
        chains.len(),
        rep.watch_events_checked,
        rep.acked_verified,
        faults.join(", ")
    );
    assert!(
        problems.is_empty(),
        "seed {seed}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
