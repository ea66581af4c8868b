//! The part of the log not yet known to be durable: entries (and possibly a
//! snapshot) the caller has been, or will be, asked to persist.

use std::collections::VecDeque;

use crate::types::{Entry, Snapshot};

/// Entries and a snapshot awaiting persistence.
///
/// Entries below `offset_in_progress` have been handed to the caller in a
/// Ready; they stay here until the caller reports them persisted, so reads
/// of the log never depend on the caller's write having finished.
#[derive(Debug)]
pub(crate) struct Unstable {
    /// A snapshot received from the leader, to be installed.
    pub snapshot: Option<Snapshot>,
    /// The snapshot has been handed out.
    pub snapshot_in_progress: bool,
    /// Entries starting at `offset`.
    pub entries: VecDeque<Entry>,
    /// Index of `entries[0]`; also one past the last durable index.
    pub offset: u64,
    /// Entries before this index have been handed out.
    pub offset_in_progress: u64,
}

impl Unstable {
    pub fn new(offset: u64) -> Self {
        Unstable {
            snapshot: None,
            snapshot_in_progress: false,
            entries: VecDeque::new(),
            offset,
            offset_in_progress: offset,
        }
    }

    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.metadata.index + 1)
    }

    pub fn maybe_last_index(&self) -> Option<u64> {
        if !self.entries.is_empty() {
            return Some(self.offset + self.entries.len() as u64 - 1);
        }
        self.snapshot.as_ref().map(|s| s.metadata.index)
    }

    pub fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            let snap = self.snapshot.as_ref()?;
            return (snap.metadata.index == index).then_some(snap.metadata.term);
        }
        self.entries
            .get((index - self.offset) as usize)
            .map(|e| e.term)
    }

    /// Entries not yet handed out.
    pub fn next_entries(&self) -> impl Iterator<Item = &Entry> {
        let skip = (self.offset_in_progress - self.offset) as usize;
        self.entries.iter().skip(skip)
    }

    pub fn has_next_entries(&self) -> bool {
        self.offset_in_progress < self.offset + self.entries.len() as u64
    }

    pub fn next_snapshot(&self) -> Option<&Snapshot> {
        if self.snapshot_in_progress {
            return None;
        }
        self.snapshot.as_ref()
    }

    /// Marks everything present as handed out.
    pub fn accept_in_progress(&mut self) {
        self.offset_in_progress = self.offset + self.entries.len() as u64;
        if self.snapshot.is_some() {
            self.snapshot_in_progress = true;
        }
    }

    /// Entries up to `index` with term `term` are durable. Ignored if the
    /// entry there has since been replaced or is already durable.
    pub fn stable_to(&mut self, index: u64, term: u64) {
        if index < self.offset || self.maybe_term(index) != Some(term) {
            return;
        }
        assert!(
            index < self.offset_in_progress,
            "persisted entry {index} was never handed out"
        );
        let n = (index + 1 - self.offset) as usize;
        self.entries.drain(..n);
        self.offset = index + 1;
        self.offset_in_progress = self.offset_in_progress.max(self.offset);
    }

    /// The snapshot at `index` is durable.
    pub fn stable_snap_to(&mut self, index: u64) {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.metadata.index == index)
        {
            assert!(
                self.snapshot_in_progress,
                "persisted snapshot was never handed out"
            );
            self.snapshot = None;
            self.snapshot_in_progress = false;
        }
    }

    pub fn restore(&mut self, snap: Snapshot) {
        self.offset = snap.metadata.index + 1;
        self.offset_in_progress = self.offset;
        self.entries.clear();
        self.snapshot = Some(snap);
        self.snapshot_in_progress = false;
    }

    /// Appends `ents`, replacing any entries at or after their first index.
    pub fn truncate_and_append(&mut self, ents: Vec<Entry>) {
        let Some(first) = ents.first() else { return };
        let after = first.index;
        let end = self.offset + self.entries.len() as u64;
        if after == end {
            // Common case: a plain append.
        } else if after <= self.offset {
            // Everything unstable is replaced; the durable log is cut back at
            // `after` too (durable index becomes `after - 1`).
            self.offset = after;
            self.entries.clear();
        } else {
            self.entries.truncate((after - self.offset) as usize);
        }
        self.offset_in_progress = self.offset_in_progress.min(after).max(self.offset);
        self.entries.extend(ents);
    }

    /// Clones entries in `[lo, hi)`, which must lie within the unstable
    /// range, while they fit in `budget_bytes` (the first one regardless if
    /// `at_least_one`).
    pub fn slice(
        &self,
        lo: u64,
        hi: u64,
        budget_bytes: u64,
        at_least_one: bool,
        out: &mut Vec<Entry>,
    ) {
        assert!(lo >= self.offset && hi <= self.offset + self.entries.len() as u64 && lo <= hi);
        let a = (lo - self.offset) as usize;
        let b = (hi - self.offset) as usize;
        let mut used = 0u64;
        for (n, e) in self.entries.range(a..b).enumerate() {
            used = used.saturating_add(e.size_bytes());
            if used > budget_bytes && !(n == 0 && at_least_one) {
                break;
            }
            out.push(e.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::normal(Bytes::new())
        }
    }

    #[test]
    fn conflicting_append_moves_durable_point_back() {
        let mut u = Unstable::new(5);
        u.truncate_and_append(vec![ent(5, 1), ent(6, 1), ent(7, 1)]);
        u.accept_in_progress();
        u.stable_to(6, 1);
        assert_eq!(u.offset, 7);
        // A leader of term 2 overwrites from index 6: the durable prefix
        // shrinks to 5 and the new entries are not yet handed out.
        u.truncate_and_append(vec![ent(6, 2)]);
        assert_eq!(u.offset, 6);
        assert!(u.has_next_entries());
        // A late persist report for the replaced entry is ignored.
        u.stable_to(7, 1);
        assert_eq!(u.maybe_last_index(), Some(6));
        assert_eq!(u.maybe_term(6), Some(2));
    }
}
