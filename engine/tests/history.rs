//! Watches, leases and multi-key txns on a 3-member cluster under faults,
//! checked on the recorded history; plus the checkers' own tests on
//! hand-made histories (`history_util::sample`).
//!
//! Clients send multi-key txns (compare on mod revision, put and delete
//! several keys), put keys with leases and revoke them or let them expire;
//! watchers follow every key with `prev_kv` from "now" or from an old
//! revision, resuming on another member whenever their stream ends.
//! Meanwhile the leader is killed with SIGKILL, members are cut off and
//! stopped, random members are killed, a member is replaced by a new one
//! (through a learner, or removed first), and a compactor compacts the
//! store behind the workload. A recorder watch follows every revision
//! (compaction never passes it); its stream is the history, and each
//! member's own history from its compaction point on must equal it.
//! `history_util::check` holds every recording against the history (see
//! there for the exact rules).
//!
//! `CAIRN_HISTORY_SECS` sets the workload's duration (default 8 s),
//! `CAIRN_HISTORY_SEED` the seed (default 1); `CAIRN_HISTORY_COMPACT=0`
//! and `CAIRN_HISTORY_MEMBERSHIP=0` turn compaction and membership
//! changes off. A failure prints the seed.

mod common;
mod history_util;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Cluster, ProxiedCluster};
use history_util::check::{self, Recorded, Report};
use history_util::compact::{self, CompactLog};
use history_util::nemesis::{self, Faults};
use history_util::sample::{by_revision, sample, segment, Hist, Sample, L};
use history_util::watch;
use history_util::workload::{self, Shared};
use history_util::{Event, LeaseEnd, Outcome, RevRead, WatchSegment, WriteRecord, PREFIX};

// ---- the checkers on hand-made histories ----

fn run(s: &Sample, history: &[Event], watches: &[WatchSegment]) -> Report {
    check::check(&Recorded {
        history,
        first_revision: 2,
        final_revision: s.hist.rev,
        writes: &s.writes,
        leases: &s.leases,
        watches,
        compactions: &[],
        rev_reads: &[],
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

#[test]
fn checker_accepts_watches_canceled_for_compaction_and_finds_wrong_cancels() {
    let s = sample();
    let compactions = [4];
    let mut canceled = segment(0, 2, by_revision(&s.hist, 2, 3));
    canceled.compacted = 4;
    // The chain resumes after the compact revision.
    let resumed = segment(0, 5, by_revision(&s.hist, 5, 7));
    let at_3: Vec<Event> = s
        .hist
        .events
        .iter()
        .filter(|e| e.revision() <= 3)
        .cloned()
        .collect();
    let reads = [RevRead {
        revision: 3,
        kvs: check::final_state(&at_3),
    }];
    let with = |watches: &[WatchSegment], reads: &[RevRead]| {
        check::check(&Recorded {
            history: &s.hist.events,
            first_revision: 2,
            final_revision: s.hist.rev,
            writes: &s.writes,
            leases: &s.leases,
            watches,
            compactions: &compactions,
            rev_reads: reads,
        })
    };
    let rep = with(&[canceled.clone(), resumed.clone()], &reads);
    assert!(rep.problems.is_empty(), "{:#?}", rep.problems);
    assert_eq!((rep.watches_compacted, rep.rev_reads_checked), (1, 1));
    assert!(check::check_watcher_chain(&[&canceled, &resumed], Some(7)).is_empty());

    // A compact revision no compaction asked for.
    let mut unknown = canceled.clone();
    unknown.compacted = 5;
    assert_found(&with(&[unknown], &[]), "canceled for a compaction at 5");
    // Canceled although the next revision it needed was kept.
    let mut early = segment(0, 2, by_revision(&s.hist, 2, 4));
    early.compacted = 4;
    assert_found(&with(&[early], &[]), "after receiving up to 4");
    // Resumed at the compact revision itself, or with a hole after it.
    for start in [4, 6] {
        let hole = segment(0, start, by_revision(&s.hist, start, 7));
        let chain = check::check_watcher_chain(&[&canceled, &hole], None);
        assert!(
            chain[0].contains(&format!(
                "resumed at revision {start} after receiving up to 3"
            )),
            "{chain:?}"
        );
    }
    // A read at a compaction point that is not the history's state there.
    let mut wrong = reads[0].clone();
    wrong.kvs.pop();
    assert_found(
        &with(&[], &[wrong]),
        "a read at revision 3 (a compaction point) returned",
    );
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
fn watches_leases_and_txns_under_kills_partitions_compaction_and_member_changes() {
    let secs = env_u64("CAIRN_HISTORY_SECS", 8);
    let seed = env_u64("CAIRN_HISTORY_SEED", 1);
    let compaction = env_u64("CAIRN_HISTORY_COMPACT", 1) != 0;
    let faults = Faults {
        membership: env_u64("CAIRN_HISTORY_MEMBERSHIP", 1) != 0,
    };
    println!(
        "history: seed {seed}, {secs} s, compaction {}, membership changes {} \
         (CAIRN_HISTORY_SEED / CAIRN_HISTORY_SECS / CAIRN_HISTORY_COMPACT / \
         CAIRN_HISTORY_MEMBERSHIP)",
        on_off(compaction),
        on_off(faults.membership)
    );
    let pc = Arc::new(Mutex::new(Cluster::start_with_proxies(3, &[])));
    let addrs = member_addrs(&pc.lock().unwrap());
    let (r0, _) = workload::read_prefix_retry(&addrs, PREFIX).expect("initial read");
    let first_revision = r0 + 1;
    let sh = Arc::new(Shared::new(addrs));
    let until = Instant::now() + Duration::from_secs(secs);

    let spawn = |f: Box<dyn FnOnce(&Shared) -> Out + Send>| {
        let sh = sh.clone();
        std::thread::spawn(move || f(&sh))
    };
    let recorder = spawn(Box::new(move |sh| {
        Out::Watch(watch::recorder(sh, first_revision))
    }));
    let mut threads = Vec::new();
    for i in 0..TXN_CLIENTS {
        threads.push(spawn(Box::new(move |sh| {
            Out::Writes(workload::txn_client(i, seed, sh))
        })));
    }
    for i in 0..LEASE_CLIENTS {
        threads.push(spawn(Box::new(move |sh| {
            Out::Leases(workload::lease_client(TXN_CLIENTS + i, seed, sh))
        })));
    }
    if compaction {
        threads.push(spawn(Box::new(move |sh| {
            Out::Compact(compact::compactor(seed, sh, first_revision))
        })));
    }
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|i| {
            spawn(Box::new(move |sh| {
                Out::Watch(watch::watcher(i, seed, sh, first_revision))
            }))
        })
        .collect();
    let nem = nemesis::nemesis(&pc, &sh, seed, until, faults);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    sh.stop.store(true, Ordering::SeqCst);
    let mut writes: Vec<WriteRecord> = Vec::new();
    let mut lease_records = Vec::new();
    let mut problems = nem.problems.clone();
    let (mut ttl_pending, mut ttl_pending_with_keys) = (0, 0);
    let mut clog = CompactLog::default();
    for h in threads {
        match h.join().expect("client thread") {
            Out::Writes(w) => writes.extend(w),
            Out::Leases(log) => {
                ttl_pending += log.ttl_pending_seen;
                ttl_pending_with_keys += log.ttl_pending_with_keys;
                writes.extend(log.writes);
                lease_records.extend(log.leases);
                problems.extend(log.problems);
            }
            Out::Compact(log) => clog = log,
            Out::Watch(_) => unreachable!("no watcher among the clients"),
        }
    }
    problems.extend(clog.problems.iter().cloned());

    // Nothing writes any more: every member's linearizable read gives the
    // final revision.
    let pc = pc.lock().unwrap();
    pc.cluster.wait_leader(Duration::from_secs(20));
    let addrs = member_addrs(&pc);
    let mut states = Vec::new();
    for a in &addrs {
        match workload::read_prefix_retry(&[*a], PREFIX) {
            Ok(st) => states.push(st),
            Err(e) => problems.push(e),
        }
    }
    let final_revision = states.iter().map(|s| s.0).max().unwrap_or(0);
    sh.final_revision.store(final_revision, Ordering::SeqCst);
    let watch_segments = |h: std::thread::JoinHandle<Out>| match h.join().expect("watcher") {
        Out::Watch(s) => s,
        _ => unreachable!("a watcher returns its streams"),
    };
    let segments: Vec<WatchSegment> = watchers.into_iter().flat_map(watch_segments).collect();

    // The recorder's streams are the history; each member's own, from its
    // compaction point on, must be the same.
    let recorded = watch_segments(recorder);
    let refs: Vec<&WatchSegment> = recorded.iter().collect();
    for p in check::check_watcher_chain(&refs, Some(final_revision)) {
        problems.push(format!("recorder: {p}"));
    }
    if let Some(s) = recorded.iter().find(|s| s.compacted > 0) {
        problems.push(format!("recorder: a stream was compacted: {}", s.ended));
    }
    let history: Vec<Event> = recorded
        .iter()
        .flat_map(WatchSegment::events)
        .filter(|e| e.revision() <= final_revision)
        .cloned()
        .collect();
    let mut read_from = Vec::new();
    for a in &addrs {
        match watch::read_history(*a, first_revision, final_revision) {
            Ok((from, h)) => {
                read_from.push(from);
                let at = history.partition_point(|e| e.revision() < from);
                if let Some(d) = check::compare_histories(&history[at..], &h) {
                    problems.push(format!(
                        "{a}'s history from revision {from} is not the recorded one: {d}"
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
    }
    let replayed = check::final_state(&history);
    for (a, (rev, kvs)) in addrs.iter().zip(&states) {
        if *rev != final_revision || *kvs != replayed {
            problems.push(format!(
                "{a}: state at revision {rev} is not the replayed history's (revision \
                 {final_revision}): {} keys against {}",
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
        history: &history,
        first_revision,
        final_revision,
        writes: &writes,
        leases: &lease_records,
        watches: &segments,
        compactions: &clog.attempts,
        rev_reads: &clog.reads,
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
        let thread = id / watch::WATCH_CHAINS_MAX;
        let last = chains
            .keys()
            .filter(|k| *k / watch::WATCH_CHAINS_MAX == thread)
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
        "history: compactions: {} asked, {} acknowledged ({} physical), last to {:?}; \
         {} reads below refused as compacted, {} reads at the compaction point checked; \
         members' histories read from revisions {read_from:?}; {} recorder streams",
        clog.attempts.len(),
        clog.acked,
        clog.physical,
        clog.attempts.last(),
        clog.refused_below,
        rep.rev_reads_checked,
        recorded.len(),
    );
    println!(
        "history: {} watch streams in {} chains ({} canceled for compaction), {} watch events \
         checked; {} acknowledged writes verified; {} membership changes; faults: {}",
        segments.len(),
        chains.len(),
        rep.watches_compacted,
        rep.watch_events_checked,
        rep.acked_verified,
        nem.membership_changes,
        nem.faults.join(", ")
    );
    assert!(
        problems.is_empty(),
        "seed {seed}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// What a workload thread returns.
enum Out {
    Writes(Vec<WriteRecord>),
    Leases(workload::LeaseLog),
    Compact(CompactLog),
    Watch(Vec<WatchSegment>),
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn member_addrs(pc: &ProxiedCluster) -> Vec<SocketAddr> {
    pc.cluster.members.iter().map(|m| m.addr).collect()
}
