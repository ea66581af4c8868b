//! The Raft log: the durable prefix in [`Storage`] plus the [`Unstable`]
//! suffix, with the commit and apply cursors.

use crate::error::{Result, StorageError};
use crate::storage::Storage;
use crate::types::{Entry, Snapshot};
use crate::unstable::Unstable;

/// The longest prefix of `ents` within `max_bytes`, but at least one entry.
pub fn limit_size(ents: &[Entry], max_bytes: u64) -> &[Entry] {
    let mut size = 0u64;
    for (i, e) in ents.iter().enumerate() {
        size = size.saturating_add(e.size_bytes());
        if size > max_bytes && i > 0 {
            return &ents[..i];
        }
    }
    ents
}

/// Log state of one node.
#[derive(Debug)]
pub(crate) struct RaftLog<S: Storage> {
    pub storage: S,
    pub unstable: Unstable,
    /// Highest index known committed by a quorum.
    pub committed: u64,
    /// Highest index handed to the caller for applying.
    pub applying: u64,
    /// Highest index the caller reported applied.
    pub applied: u64,
}

impl<S: Storage> RaftLog<S> {
    pub fn new(storage: S, applied: u64) -> Result<Self> {
        let first = storage.first_index()?;
        let last = storage.last_index()?;
        let committed = storage.initial_state()?.hard_state.commit;
        let floor = first - 1;
        assert!(
            committed <= last,
            "commit {committed} is past the last index {last}"
        );
        // A snapshot-based start has applied at least the snapshot.
        let applied = applied.max(floor);
        assert!(
            applied <= last,
            "applied {applied} is past the last index {last}"
        );
        // Committed entries may be applied before the hard state recording
        // their commit is durable; whatever was applied was committed.
        let committed = committed.max(applied);
        Ok(RaftLog {
            storage,
            unstable: Unstable::new(last + 1),
            committed,
            applying: applied,
            applied,
        })
    }

    pub fn first_index(&self) -> u64 {
        match self.unstable.maybe_first_index() {
            Some(i) => i,
            None => self
                .storage
                .first_index()
                .unwrap_or_else(|e| panic!("storage first_index: {e}")),
        }
    }

    pub fn last_index(&self) -> u64 {
        match self.unstable.maybe_last_index() {
            Some(i) => i,
            None => self
                .storage
                .last_index()
                .unwrap_or_else(|e| panic!("storage last_index: {e}")),
        }
    }

    /// Last index known durable (entries after it await persistence).
    pub fn persisted_index(&self) -> u64 {
        self.unstable.offset - 1
    }

    pub fn term(&self, index: u64) -> std::result::Result<u64, StorageError> {
        let dummy = self.first_index() - 1;
        if index < dummy {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        if let Some(t) = self.unstable.maybe_term(index) {
            return Ok(t);
        }
        self.storage.term(index)
    }

    /// Term at `index`, 0 when it is not available.
    pub fn term_or_zero(&self, index: u64) -> u64 {
        self.term(index).unwrap_or(0)
    }

    pub fn last_term(&self) -> u64 {
        let last = self.last_index();
        self.term(last)
            .unwrap_or_else(|e| panic!("term of last index {last}: {e}"))
    }

    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index).is_ok_and(|t| t == term)
    }

    /// Whether a log ending at (`last_index`, `term`) is at least as
    /// up-to-date as ours (Raft §5.4.1).
    pub fn is_up_to_date(&self, last_index: u64, term: u64) -> bool {
        let our_term = self.last_term();
        term > our_term || (term == our_term && last_index >= self.last_index())
    }

    /// First index in `ents` whose term differs from ours (or that is new);
    /// 0 if all of them are already in the log.
    pub fn find_conflict(&self, ents: &[Entry]) -> u64 {
        let last = self.last_index();
        for e in ents {
            // Past our last index every entry is new; no lookup needed.
            if e.index > last || !self.match_term(e.index, e.term) {
                return e.index;
            }
        }
        0
    }

    /// The largest index ≤ `index` whose term is ≤ `term`, with that term:
    /// where a rejecting follower's log may still match the leader's.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Ok(t) if t > term => i -= 1,
                Ok(t) => return (i, t),
                Err(_) => return (i, 0),
            }
        }
    }

    /// Appends leader entries after (`index`, `log_term`) if that entry
    /// matches; returns the last index now known to match the leader.
    pub fn maybe_append(
        &mut self,
        index: u64,
        log_term: u64,
        committed: u64,
        ents: Vec<Entry>,
    ) -> Option<u64> {
        if !self.match_term(index, log_term) {
            return None;
        }
        let last_new = index + ents.len() as u64;
        let conflict = self.find_conflict(&ents);
        if conflict != 0 {
            assert!(
                conflict > self.committed,
                "entry {conflict} conflicts with committed entry {}",
                self.committed
            );
            let skip = (conflict - index - 1) as usize;
            let mut ents = ents;
            ents.drain(..skip);
            self.append(ents);
        }
        self.commit_to(committed.min(last_new));
        Some(last_new)
    }

    /// Appends entries (replacing any conflicting suffix); returns the new
    /// last index.
    pub fn append(&mut self, ents: Vec<Entry>) -> u64 {
        if let Some(first) = ents.first() {
            assert!(
                first.index > self.committed,
                "append at {} would overwrite committed {}",
                first.index,
                self.committed
            );
            self.unstable.truncate_and_append(ents);
        }
        self.last_index()
    }

    pub fn commit_to(&mut self, commit: u64) {
        if commit > self.committed {
            let last = self.last_index();
            assert!(
                commit <= last,
                "commit {commit} is out of range [last index {last}]"
            );
            self.committed = commit;
        }
    }

    /// Commits up to `index` if it is from `term` (only the current term's
    /// entries are committed by counting; Raft §5.4.2).
    pub fn maybe_commit(&mut self, index: u64, term: u64) -> bool {
        if index > self.committed && self.term_or_zero(index) == term {
            self.commit_to(index);
            return true;
        }
        false
    }

    /// Entries in `[lo, hi)` within `max_bytes` (at least one).
    pub fn slice(
        &self,
        lo: u64,
        hi: u64,
        max_bytes: u64,
    ) -> std::result::Result<Vec<Entry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        if lo < self.first_index() {
            return Err(StorageError::Compacted);
        }
        assert!(
            hi <= self.last_index() + 1,
            "slice [{lo}, {hi}) out of bound"
        );
        let mut out = Vec::new();
        let uoff = self.unstable.offset;
        if lo < uoff {
            let stored = self.storage.entries(lo, hi.min(uoff), max_bytes)?;
            let full = stored.len() as u64 == hi.min(uoff) - lo;
            out = stored;
            if !full || hi <= uoff {
                return Ok(out);
            }
        }
        let ulo = lo.max(uoff);
        if ulo < hi {
            let used: u64 = out.iter().map(Entry::size_bytes).sum();
            self.unstable.slice(
                ulo,
                hi,
                max_bytes.saturating_sub(used),
                out.is_empty(),
                &mut out,
            );
        }
        Ok(out)
    }

    /// Entries from `lo` to the end, within `max_bytes`.
    pub fn entries(
        &self,
        lo: u64,
        max_bytes: u64,
    ) -> std::result::Result<Vec<Entry>, StorageError> {
        let last = self.last_index();
        if lo > last {
            return Ok(Vec::new());
        }
        self.slice(lo, last + 1, max_bytes)
    }

    /// Upper bound of entries that may be applied: committed and durable,
    /// and nothing while a snapshot is waiting to be installed.
    fn applicable_hi(&self) -> u64 {
        if self.unstable.snapshot.is_some() {
            return self.applying;
        }
        self.committed.min(self.persisted_index())
    }

    pub fn has_next_committed_entries(&self) -> bool {
        self.applicable_hi() > self.applying
    }

    pub fn next_committed_entries(&self, max_bytes: u64) -> Vec<Entry> {
        let hi = self.applicable_hi();
        if hi <= self.applying {
            return Vec::new();
        }
        self.slice(self.applying + 1, hi + 1, max_bytes)
            .unwrap_or_else(|e| {
                panic!("committed entries after {} unavailable: {e}", self.applying)
            })
    }

    pub fn applying_to(&mut self, index: u64) {
        assert!(
            index <= self.committed && index >= self.applying,
            "applying {index} out of range"
        );
        self.applying = index;
    }

    pub fn applied_to(&mut self, index: u64) {
        assert!(
            index <= self.applying,
            "applied {index} was never handed out (applying {})",
            self.applying
        );
        if index > self.applied {
            self.applied = index;
        }
    }

    pub fn snapshot(&self) -> std::result::Result<Snapshot, StorageError> {
        if let Some(s) = &self.unstable.snapshot {
            return Ok(s.clone());
        }
        self.storage.snapshot()
    }

    pub fn restore(&mut self, snap: Snapshot) {
        self.committed = snap.metadata.index;
        self.unstable.restore(snap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use crate::types::ConfState;
    use bytes::Bytes;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::normal(Bytes::from_static(b"x"))
        }
    }

    fn log_with(terms: &[u64]) -> RaftLog<MemStorage> {
        let mut s = MemStorage::new_with_conf_state(ConfState::with_voters(&[1]));
        let ents: Vec<Entry> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| ent(i as u64 + 1, *t))
            .collect();
        s.append(&ents);
        RaftLog::new(s, 0).unwrap()
    }

    #[test]
    fn maybe_append_truncates_only_the_conflicting_suffix() {
        let mut l = log_with(&[1, 1, 2, 2]);
        // Does not match at (3, 1): rejected.
        assert_eq!(l.maybe_append(3, 1, 0, vec![ent(4, 3)]), None);
        // Matches at (2, 1); index 3 conflicts.
        assert_eq!(l.maybe_append(2, 1, 3, vec![ent(3, 3), ent(4, 3)]), Some(4));
        assert_eq!(l.term(3), Ok(3));
        assert_eq!(l.committed, 3);
        assert_eq!(l.persisted_index(), 2);
        // Duplicate delivery changes nothing.
        assert_eq!(l.maybe_append(2, 1, 3, vec![ent(3, 3)]), Some(3));
        assert_eq!(l.last_index(), 4);
    }

    #[test]
    fn conflict_hint_skips_whole_terms() {
        let l = log_with(&[1, 1, 2, 2, 2, 4, 4]);
        // Leader's entry at 7 has term 3: our log can only match at or below
        // the last entry with term <= 3.
        assert_eq!(l.find_conflict_by_term(7, 3), (5, 2));
        assert_eq!(l.find_conflict_by_term(7, 1), (2, 1));
        assert_eq!(l.find_conflict_by_term(20, 4), (7, 4));
    }

    #[test]
    fn slice_spans_storage_and_unstable_and_respects_bytes() {
        let mut l = log_with(&[1, 1]);
        l.append(vec![ent(3, 1), ent(4, 1)]);
        let all = l.slice(1, 5, u64::MAX).unwrap();
        assert_eq!(
            all.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        let one = ent(1, 1).size_bytes();
        assert_eq!(l.slice(1, 5, one * 3).unwrap().len(), 3);
        assert_eq!(l.slice(1, 5, 1).unwrap().len(), 1);
        assert_eq!(l.slice(3, 5, 1).unwrap().len(), 1);
    }

    #[test]
    fn committed_entries_wait_for_persistence() {
        let mut l = log_with(&[1]);
        l.append(vec![ent(2, 1)]);
        l.commit_to(2);
        assert_eq!(l.next_committed_entries(u64::MAX).len(), 1);
        l.unstable.accept_in_progress();
        l.storage.append(&[ent(2, 1)]);
        l.unstable.stable_to(2, 1);
        assert_eq!(l.next_committed_entries(u64::MAX).len(), 2);
    }
}
