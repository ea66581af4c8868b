//! Safety properties checked while the simulation runs.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use cairn_raft::{Entry, Role};

#[derive(Default)]
pub struct Checker {
    /// Entries in commit order as first applied anywhere: index - 1 → (term,
    /// data). Every node must apply exactly these.
    pub committed: Vec<(u64, Bytes)>,
    /// Leader of each term.
    leaders: BTreeMap<u64, u64>,
    /// (index, term) → data of every entry any node wrote: one leader per
    /// term creates one entry per index.
    written: HashMap<(u64, u64), Bytes>,
    /// (node, read id) → highest commit index anywhere when the read began.
    reads: HashMap<(u64, u64), u64>,
    pub reads_served: u64,
    pub snapshots_installed: u64,
    pub conf_changes_applied: u64,
    pub restarts: u64,
    max_commit_seen: u64,
}

impl Checker {
    pub fn on_status(&mut self, id: u64, term: u64, role: Role, commit: u64) {
        if role == Role::Leader {
            let l = *self.leaders.entry(term).or_insert(id);
            assert_eq!(l, id, "two leaders in term {term}: {l} and {id}");
        }
        self.max_commit_seen = self.max_commit_seen.max(commit);
    }

    pub fn on_entries(&mut self, id: u64, ents: &[Entry]) {
        for e in ents {
            let d = self
                .written
                .entry((e.index, e.term))
                .or_insert_with(|| e.data.clone());
            assert_eq!(
                *d, e.data,
                "node {id}: two different entries at index {} term {}",
                e.index, e.term
            );
        }
    }

    pub fn on_apply(&mut self, id: u64, e: &Entry) {
        let i = e.index as usize;
        assert!(
            i >= 1 && i <= self.committed.len() + 1,
            "node {id} applies index {i} past the known prefix"
        );
        if i <= self.committed.len() {
            let (t, d) = &self.committed[i - 1];
            assert!(
                *t == e.term && *d == e.data,
                "state machine safety: node {id} applies {}/{i} {:?}, but {t}/{i} {:?} was applied before",
                e.term,
                e.data,
                d
            );
        } else {
            self.committed.push((e.term, e.data.clone()));
        }
    }

    pub fn on_snapshot(&mut self, id: u64, index: u64, term: u64) {
        self.snapshots_installed += 1;
        if let Some((t, _)) = self.committed.get(index as usize - 1) {
            assert_eq!(
                *t, term,
                "node {id} installs a snapshot at {index} with a term that was not committed there"
            );
        }
    }

    /// A node recorded a snapshot of its own applied state at (`index`,
    /// `term`): that position must hold the committed entry.
    pub fn on_local_snapshot(&mut self, id: u64, index: u64, term: u64) {
        if let Some((t, _)) = self.committed.get(index as usize - 1) {
            assert_eq!(
                *t, term,
                "node {id} records a snapshot at {index} with a term that was not committed there"
            );
        }
    }

    pub fn on_new_leader(&mut self, id: u64, term: u64, log: &BTreeMap<u64, Entry>) {
        let Some((&first, _)) = log.first_key_value() else {
            return;
        };
        for (n, (t, d)) in self.committed.iter().enumerate() {
            let i = n as u64 + 1;
            if i < first {
                continue; // covered by the leader's snapshot
            }
            let e = log.get(&i).unwrap_or_else(|| {
                panic!("leader completeness: leader {id} of term {term} lacks committed index {i}")
            });
            assert!(
                e.term == *t && e.data == *d,
                "leader completeness: leader {id} of term {term} has {}/{i}, committed was {t}/{i}",
                e.term
            );
        }
    }

    pub fn on_restart(&mut self, _id: u64) {
        self.restarts += 1;
    }

    pub fn terms(&self) -> usize {
        self.leaders.len()
    }

    pub fn on_read_issued(&mut self, id: u64, ctx: u64, max_commit: u64) {
        let m = max_commit.max(self.max_commit_seen);
        self.reads.insert((id, ctx), m);
    }

    pub fn on_read_state(&mut self, id: u64, ctx: u64, index: u64) {
        let Some(need) = self.reads.remove(&(id, ctx)) else {
            return; // answered twice (duplicated message): already checked
        };
        assert!(
            index >= need,
            "linearizability: read {ctx} at node {id} got index {index}, but {need} was committed before it began"
        );
        self.reads_served += 1;
    }

    /// Log matching: two logs holding an entry with the same index and term
    /// hold identical entries up to it.
    pub fn check_log_matching(views: &[(u64, &BTreeMap<u64, Entry>)]) {
        for (a, (ida, la)) in views.iter().enumerate() {
            for (idb, lb) in views.iter().skip(a + 1) {
                // Highest index where both logs hold the same term.
                let common = la
                    .iter()
                    .rev()
                    .find(|(i, e)| lb.get(i).is_some_and(|f| f.term == e.term))
                    .map(|(i, _)| *i);
                let Some(top) = common else { continue };
                for (i, e) in la.range(..=top) {
                    if let Some(f) = lb.get(i) {
                        assert!(
                            e.term == f.term && e.data == f.data,
                            "log matching: nodes {ida} and {idb} agree at {top} but differ at {i}"
                        );
                    }
                }
            }
        }
    }
}
