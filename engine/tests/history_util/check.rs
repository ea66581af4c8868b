//! The checkers: the store's history, replayed revision by revision, held
//! against what the clients and watchers recorded.
//!
//! - **History**: revisions strictly increase, each revision's events are
//!   together, none is missing between the first and the last; every put
//!   event carries the right create revision, mod revision and version;
//!   every `prev_kv` is the key's previous version (none for a new key).
//! - **Serial order**: the events of each revision are exactly one
//!   operation's effect on the state before it: a put event's unique value
//!   names the operation; a txn's branch is the one its compares select in
//!   that state, and all of its puts and deletes are in that one revision
//!   (a delete of an absent key leaves no event, as in etcd). A revision of
//!   deletes only is a lease's end and deletes every key of that lease at
//!   once. No operation is applied twice.
//! - **Acknowledged writes**: an acknowledged write is in the history at
//!   the revision it was acknowledged with, with the branch its answer
//!   reported; no write that failed for certain is.
//! - **Leases**: no put with a lease after its keys were deleted; after a
//!   revoke or expiry was seen, none of the lease's keys is live at the
//!   acknowledged revision or readable afterwards.
//! - **Watches**: every stream equals the history from its start revision
//!   (same events, same order, `prev_kv` included): no gap, no repeat, no
//!   revision split across two responses. A stream may end canceled for
//!   compaction only with a compact revision some compaction asked for, at
//!   or above the next revision it needed (cairn refuses a watch from the
//!   compaction revision itself); its chain resumes right after it.
//! - **Compaction**: a read at a compaction point returns the replayed
//!   state at that revision.

use std::collections::{BTreeMap, HashMap};

use super::{Change, Event, Kv, LeaseRecord, Outcome, RevRead, WatchSegment, WriteOp, WriteRecord};

/// What the checkers found, and how much they looked at.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub revisions: usize,
    pub events: usize,
    pub txns_applied: usize,
    pub puts_applied: usize,
    pub lease_ends_applied: usize,
    pub acked_verified: usize,
    pub unknown_applied: usize,
    pub unknown_not_applied: usize,
    pub watch_events_checked: usize,
    /// Streams canceled for compaction, accepted.
    pub watches_compacted: usize,
    /// Reads at compaction points compared with the replayed state.
    pub rev_reads_checked: usize,
}

/// Everything recorded in one run.
pub struct Recorded<'a> {
    /// The store's history from `first_revision`, as a watch returned it.
    pub history: &'a [Event],
    /// The first revision a workload write can have (the cluster's
    /// revision when the workload started, + 1).
    pub first_revision: i64,
    /// The revision of the last write (a linearizable read after the run).
    pub final_revision: i64,
    pub writes: &'a [WriteRecord],
    pub leases: &'a [LeaseRecord],
    pub watches: &'a [WatchSegment],
    /// Every revision a compaction was asked for, whatever its outcome.
    pub compactions: &'a [i64],
    /// Reads at compaction points.
    pub rev_reads: &'a [RevRead],
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The events `op` would produce on `state` at `revision`, and the txn
/// branch taken (true for a put).
fn effect(op: &WriteOp, state: &BTreeMap<Vec<u8>, Kv>, revision: i64) -> (Vec<Event>, bool) {
    let apply = |changes: &[Change], lease: i64| -> Vec<Event> {
        changes
            .iter()
            .filter_map(|c| {
                let prev = state.get(&c.key).cloned();
                match &c.value {
                    Some(v) => Some(Event {
                        put: true,
                        kv: Kv {
                            key: c.key.clone(),
                            value: v.clone(),
                            create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
                            mod_revision: revision,
                            version: prev.as_ref().map_or(1, |p| p.version + 1),
                            lease,
                        },
                        prev,
                    }),
                    // Deleting an absent key changes nothing.
                    None => prev.map(|p| Event {
                        put: false,
                        kv: Kv {
                            key: c.key.clone(),
                            mod_revision: revision,
                            ..Kv::default()
                        },
                        prev: Some(p),
                    }),
                }
            })
            .collect()
    };
    match op {
        WriteOp::Txn {
            compares,
            success,
            failure,
        } => {
            let holds = compares
                .iter()
                .all(|(k, rev)| state.get(k).map_or(0, |kv| kv.mod_revision) == *rev);
            let branch = if holds { success } else { failure };
            (apply(branch, 0), holds)
        }
        WriteOp::Put { key, value, lease } => {
            let c = Change {
                key: key.clone(),
                value: Some(value.clone()),
            };
            (apply(&[c], *lease), true)
        }
    }
}

fn op_values(op: &WriteOp) -> Vec<Vec<u8>> {
    match op {
        WriteOp::Txn {
            success, failure, ..
        } => success
            .iter()
            .chain(failure)
            .filter_map(|c| c.value.clone())
            .collect(),
        WriteOp::Put { value, .. } => vec![value.clone()],
    }
}

/// The replayed history: per lease, the revisions of its puts and of the
/// deletion of its keys.
#[derive(Default)]
struct LeaseLife {
    puts: Vec<i64>,
    deleted: Option<i64>,
}

impl LeaseLife {
    /// Some key of the lease exists at `revision`.
    fn live_at(&self, revision: i64) -> bool {
        self.puts.iter().any(|&p| p <= revision) && self.deleted.is_none_or(|d| d > revision)
    }
}

/// Run every checker.
pub fn check(r: &Recorded<'_>) -> Report {
    let mut rep = Report::default();
    let mut by_value: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, w) in r.writes.iter().enumerate() {
        for v in op_values(&w.op) {
            let old = by_value.insert(v.clone(), i);
            assert!(old.is_none(), "the workload wrote {} twice", s(&v));
        }
    }
    let mut applied_at: Vec<Option<i64>> = vec![None; r.writes.len()];
    let mut state: BTreeMap<Vec<u8>, Kv> = BTreeMap::new();
    let mut leases: HashMap<i64, LeaseLife> = HashMap::new();
    let mut rev_reads: HashMap<i64, Vec<&RevRead>> = HashMap::new();
    for rr in r.rev_reads {
        rev_reads.entry(rr.revision).or_default().push(rr);
    }

    // The history, one revision at a time.
    let mut groups: Vec<&[Event]> = r
        .history
        .chunk_by(|a, b| a.revision() == b.revision())
        .collect();
    groups.retain(|g| !g.is_empty());
    let mut expected_rev = r.first_revision;
    for g in &groups {
        let rev = g[0].revision();
        rep.revisions += 1;
        rep.events += g.len();
        if rev < expected_rev {
            rep.problems.push(format!(
                "history: revision {rev} after revision {} (out of order or repeated)",
                expected_rev - 1
            ));
            continue;
        }
        if rev > expected_rev {
            rep.problems.push(format!(
                "history: revisions {expected_rev}..{} are missing",
                rev - 1
            ));
        }
        expected_rev = rev + 1;
        check_revision(
            r,
            g,
            rev,
            &mut state,
            &mut leases,
            &by_value,
            &mut applied_at,
            &mut rep,
        );
        for rr in rev_reads.remove(&rev).unwrap_or_default() {
            rep.rev_reads_checked += 1;
            if !rr.kvs.iter().eq(state.values()) {
                rep.problems.push(format!(
                    "a read at revision {rev} (a compaction point) returned {:?}, the history \
                     has {:?}",
                    rr.kvs,
                    state.values().collect::<Vec<_>>()
                ));
            }
        }
    }
    if expected_rev <= r.final_revision {
        rep.problems.push(format!(
            "history: ends at revision {} but the store is at {}",
            expected_rev - 1,
            r.final_revision
        ));
    }

    check_writes(r, &applied_at, &mut rep);
    check_leases(r, &leases, &mut rep);
    for seg in r.watches {
        check_watch(r.history, seg, &mut rep);
        if seg.compacted > 0 {
            rep.watches_compacted += 1;
            if !r.compactions.contains(&seg.compacted) || seg.last_revision() >= seg.compacted {
                rep.problems.push(format!(
                    "watcher {} on m{} from revision {}: canceled for a compaction at {} after \
                     receiving up to {} (compactions asked for: {:?})",
                    seg.watcher,
                    seg.member + 1,
                    seg.start_revision,
                    seg.compacted,
                    seg.last_revision(),
                    r.compactions
                ));
            }
        }
    }
    rep
}

/// One revision's events against the state before it.
#[allow(clippy::too_many_arguments)]
fn check_revision(
    r: &Recorded<'_>,
    g: &[Event],
    rev: i64,
    state: &mut BTreeMap<Vec<u8>, Kv>,
    leases: &mut HashMap<i64, LeaseLife>,
    by_value: &HashMap<Vec<u8>, usize>,
    applied_at: &mut [Option<i64>],
    rep: &mut Report,
) {
    // prev_kv is the previous version, whoever caused the event.
    for e in g {
        let before = state.get(&e.kv.key);
        if e.prev.as_ref() != before {
            rep.problems.push(format!(
                "revision {rev}: {e:?} but the key was {before:?} before it"
            ));
        }
    }
    let named = g.iter().find(|e| e.put).map(|e| e.kv.value.clone());
    match named {
        Some(value) => match by_value.get(&value) {
            None => rep.problems.push(format!(
                "revision {rev}: put of a value no client wrote: {}",
                s(&value)
            )),
            Some(&i) => {
                let w = &r.writes[i];
                let (want, branch) = effect(&w.op, state, rev);
                let same = want.len() == g.len() && want.iter().zip(g).all(|(a, b)| a.same(b));
                if !same {
                    rep.problems.push(format!(
                        "revision {rev}: events {g:?} are not one operation's effect; \
                         client {}'s {:?} on the state before would give {want:?}",
                        w.client, w.op
                    ));
                }
                if let Some(first) = applied_at[i] {
                    rep.problems.push(format!(
                        "revision {rev}: client {}'s {:?} was already applied at revision {first}",
                        w.client, w.op
                    ));
                } else {
                    applied_at[i] = Some(rev);
                }
                if w.outcome == Outcome::Ok
                    && matches!(w.op, WriteOp::Txn { .. })
                    && w.succeeded != branch
                {
                    rep.problems.push(format!(
                        "revision {rev}: client {}'s txn answered succeeded={} but its compares \
                         {} in the state before: {:?}",
                        w.client,
                        w.succeeded,
                        if branch { "held" } else { "did not hold" },
                        w.op
                    ));
                }
                match &w.op {
                    WriteOp::Txn { .. } => rep.txns_applied += 1,
                    WriteOp::Put { lease, .. } => {
                        rep.puts_applied += 1;
                        if *lease != 0 {
                            let life = leases.entry(*lease).or_default();
                            if let Some(d) = life.deleted {
                                rep.problems.push(format!(
                                    "revision {rev}: put with lease {lease:x}, whose keys were \
                                     deleted at revision {d}"
                                ));
                            }
                            life.puts.push(rev);
                        }
                    }
                }
            }
        },
        None => {
            // Deletes only: a lease's end, all of its keys at once.
            let lease = g[0].prev.as_ref().map_or(0, |p| p.lease);
            let held: Vec<&Vec<u8>> = state
                .values()
                .filter(|kv| lease != 0 && kv.lease == lease)
                .map(|kv| &kv.key)
                .collect();
            let deleted: Vec<&Vec<u8>> = g.iter().map(|e| &e.kv.key).collect();
            let mut sorted = deleted.clone();
            sorted.sort();
            if lease == 0 || sorted != held {
                rep.problems.push(format!(
                    "revision {rev}: deletes {:?} are not one lease's end (lease {lease:x} \
                     held {:?})",
                    deleted.iter().map(|k| s(k)).collect::<Vec<_>>(),
                    held.iter().map(|k| s(k)).collect::<Vec<_>>()
                ));
            }
            let life = leases.entry(lease).or_default();
            if let Some(d) = life.deleted {
                rep.problems.push(format!(
                    "revision {rev}: lease {lease:x}'s keys deleted again (first at {d})"
                ));
            } else {
                life.deleted = Some(rev);
            }
            rep.lease_ends_applied += 1;
        }
    }
    for e in g {
        if e.put {
            let want_create = state.get(&e.kv.key).map_or(rev, |p| p.create_revision);
            let want_version = state.get(&e.kv.key).map_or(1, |p| p.version + 1);
            if e.kv.create_revision != want_create || e.kv.version != want_version {
                rep.problems.push(format!(
                    "revision {rev}: {e:?}: want create revision {want_create}, version \
                     {want_version}"
                ));
            }
            state.insert(e.kv.key.clone(), e.kv.clone());
        } else {
            state.remove(&e.kv.key);
        }
    }
}

/// (a) Every acknowledged write is in the history where its answer said.
fn check_writes(r: &Recorded<'_>, applied_at: &[Option<i64>], rep: &mut Report) {
    for (w, at) in r.writes.iter().zip(applied_at) {
        match (w.outcome, at) {
            (Outcome::Ok, Some(at)) if *at == w.revision => rep.acked_verified += 1,
            (Outcome::Ok, Some(at)) => rep.problems.push(format!(
                "client {}'s {:?} was acknowledged at revision {} but applied at {at}",
                w.client, w.op, w.revision
            )),
            (Outcome::Ok, None) => rep.problems.push(format!(
                "lost acknowledged write: client {}'s {:?} (revision {}) is not in the history",
                w.client, w.op, w.revision
            )),
            (Outcome::Failed, Some(at)) => rep.problems.push(format!(
                "client {}'s {:?} failed for certain but was applied at revision {at}",
                w.client, w.op
            )),
            (Outcome::Failed, None) => {}
            (Outcome::Unknown, Some(_)) => rep.unknown_applied += 1,
            (Outcome::Unknown, None) => rep.unknown_not_applied += 1,
        }
    }
}

/// (d) After a lease's end was seen, none of its keys is live or readable.
fn check_leases(r: &Recorded<'_>, lives: &HashMap<i64, LeaseLife>, rep: &mut Report) {
    let none = LeaseLife::default();
    for l in r.leases {
        let life = lives.get(&l.lease).unwrap_or(&none);
        if let Some(at) = l.revoke_revision {
            if life.live_at(at) {
                rep.problems.push(format!(
                    "lease {:x}: revoke acknowledged at revision {at}, but its keys are live \
                     there (deleted at {:?})",
                    l.lease, life.deleted
                ));
            }
        }
        if life.live_at(l.read_revision) {
            rep.problems.push(format!(
                "lease {:x} ({:?}, client {}): keys still live at revision {} (deleted at {:?})",
                l.lease, l.end, l.client, l.read_revision, life.deleted
            ));
        }
        if !l.keys_left.is_empty() {
            rep.problems.push(format!(
                "lease {:x} ({:?}, client {}): a read at revision {} after its end still \
                 returned {:?}",
                l.lease,
                l.end,
                l.client,
                l.read_revision,
                l.keys_left.iter().map(|k| s(k)).collect::<Vec<_>>()
            ));
        }
    }
}

/// (c) A watch stream is the history from its start, in responses that
/// never split a revision.
fn check_watch(history: &[Event], seg: &WatchSegment, rep: &mut Report) {
    let from = history.partition_point(|e| e.revision() < seg.start_revision);
    let want = &history[from..];
    let who = format!(
        "watcher {} on m{} from revision {}",
        seg.watcher,
        seg.member + 1,
        seg.start_revision
    );
    for (i, got) in seg.events().enumerate() {
        rep.watch_events_checked += 1;
        let Some(w) = want.get(i) else {
            rep.problems.push(format!(
                "{who}: event {i} {got:?} is beyond the end of the history"
            ));
            return;
        };
        if !got.same(w) {
            let why = if got.revision() < w.revision() {
                "repeated or out of order"
            } else if got.revision() > w.revision() {
                "a gap"
            } else {
                "a different event"
            };
            rep.problems.push(format!(
                "{who}: {why} at event {i}: got {got:?}, the history has {w:?}"
            ));
            return;
        }
    }
    let nonempty: Vec<&Vec<Event>> = seg.responses.iter().filter(|r| !r.is_empty()).collect();
    for pair in nonempty.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let end = a.last().map_or(0, Event::revision);
        if b.first().is_some_and(|e| e.revision() == end) {
            rep.problems.push(format!(
                "{who}: revision {end} is split across two responses"
            ));
        }
    }
}

/// Two members' complete histories are the same; the first difference.
pub fn compare_histories(a: &[Event], b: &[Event]) -> Option<String> {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if !x.same(y) {
            return Some(format!("event {i}: {x:?} against {y:?}"));
        }
    }
    (a.len() != b.len()).then(|| format!("{} events against {}", a.len(), b.len()))
}

/// The replayed state at the end of `history` (for comparing with a final
/// range read).
pub fn final_state(history: &[Event]) -> Vec<Kv> {
    let mut state: BTreeMap<Vec<u8>, Kv> = BTreeMap::new();
    for e in history {
        if e.put {
            state.insert(e.kv.key.clone(), e.kv.clone());
        } else {
            state.remove(&e.kv.key);
        }
    }
    state.into_values().collect()
}

/// One chain of a watcher's streams: each resumes right after the previous
/// one (after its compact revision after a cancellation for compaction),
/// and, for the chain that was still running at the end, the last reached
/// `final_revision`.
pub fn check_watcher_chain(segs: &[&WatchSegment], final_revision: Option<i64>) -> Vec<String> {
    let mut problems = Vec::new();
    for pair in segs.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let next = if a.compacted > 0 {
            a.compacted + 1
        } else {
            a.last_revision() + 1
        };
        if b.start_revision != next {
            problems.push(format!(
                "watcher {}: resumed at revision {} after receiving up to {} ({})",
                b.watcher,
                b.start_revision,
                a.last_revision(),
                a.ended
            ));
        }
    }
    if let (Some(last), Some(final_revision)) = (segs.last(), final_revision) {
        if last.last_revision() < final_revision {
            problems.push(format!(
                "watcher {}: stopped at revision {} of {final_revision} ({})",
                last.watcher,
                last.last_revision(),
                last.ended
            ));
        }
    }
    problems
}
