//! Hand-made histories for the checkers' own tests: a store's history
//! built one revision at a time, and a small sample run recorded against it.

use std::collections::BTreeMap;

use super::{
    Change, Event, Kv, LeaseEnd, LeaseRecord, Outcome, WatchSegment, WriteOp, WriteRecord,
};

/// Builds a history the way a store would, one revision at a time.
pub struct Hist {
    pub rev: i64,
    pub state: BTreeMap<Vec<u8>, Kv>,
    pub events: Vec<Event>,
}

impl Hist {
    pub fn new() -> Hist {
        Hist {
            rev: 1,
            state: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// One revision: (key, value or None for a delete, lease).
    pub fn commit(&mut self, changes: &[(&str, Option<&str>, i64)]) -> i64 {
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

pub fn ch(key: &str, value: Option<&str>) -> Change {
    Change {
        key: key.as_bytes().to_vec(),
        value: value.map(|v| v.as_bytes().to_vec()),
    }
}

pub fn txn(
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

pub fn lease_put(key: &str, value: &str, lease: i64, revision: i64) -> WriteRecord {
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

pub const L: i64 = 0x10;

/// A small run: two txns (one per branch), an unknown txn that happened
/// (its delete of an absent key leaves no event), one that did not, two
/// lease puts and the lease's revoke; two watchers.
pub struct Sample {
    pub hist: Hist,
    pub writes: Vec<WriteRecord>,
    pub leases: Vec<LeaseRecord>,
}

pub fn sample() -> Sample {
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

pub fn segment(watcher: usize, start: i64, responses: Vec<Vec<Event>>) -> WatchSegment {
    WatchSegment {
        watcher,
        member: 0,
        start_revision: start,
        responses,
        ended: "test".into(),
        compacted: 0,
    }
}

/// The events of revisions `from..=to`, one response per revision.
pub fn by_revision(h: &Hist, from: i64, to: i64) -> Vec<Vec<Event>> {
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
