//! The narrow, synchronous seam between Raft and the durable log.
//!
//! Raft reads the stable part of its log through [`Storage`]; it never
//! writes. The caller writes what a `Ready` tells it to (entries, hard state,
//! snapshots) and then reports progress back to the node. [`MemStorage`] is an
//! in-memory implementation for tests and simulations.

use bytes::Bytes;

use crate::error::StorageError;
use crate::types::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};

/// Result of storage reads.
pub type StorageResult<T> = std::result::Result<T, StorageError>;

/// Durable state a node restarts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftState {
    /// Term, vote and commit.
    pub hard_state: HardState,
    /// Membership as of the last applied conf change (or the snapshot).
    pub conf_state: ConfState,
}

/// Read access to the stable log. Implementations must return what the caller
/// persisted from earlier Readys.
pub trait Storage {
    /// Hard state and membership to start from.
    fn initial_state(&self) -> StorageResult<RaftState>;
    /// Entries in `[lo, hi)`, stopping once `max_bytes` is exceeded but always
    /// returning at least one entry if `lo < hi`. `Compacted` if `lo` is
    /// before the first index; `Unavailable` if `hi` is past the last.
    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> StorageResult<Vec<Entry>>;
    /// Term of the entry at `index`; valid for `first_index() - 1 ..=
    /// last_index()` (the term just before the first entry is the snapshot's).
    fn term(&self, index: u64) -> StorageResult<u64>;
    /// Index of the first entry still available (snapshot index + 1).
    fn first_index(&self) -> StorageResult<u64>;
    /// Index of the last entry (the snapshot index if there are none).
    fn last_index(&self) -> StorageResult<u64>;
    /// The most recent snapshot, for sending to a follower that is behind the
    /// first index. `SnapshotTemporarilyUnavailable` makes the leader retry.
    fn snapshot(&self) -> StorageResult<Snapshot>;
}

/// An in-memory [`Storage`].
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// The latest snapshot image (index 0 = none yet).
    snapshot: Snapshot,
    /// Index and term of the entry just before `entries[0]` (the compaction
    /// point).
    offset_index: u64,
    offset_term: u64,
    /// Entries after `offset_index`, contiguous.
    entries: Vec<Entry>,
}

impl MemStorage {
    /// Empty storage for a node of a cluster bootstrapped with `conf_state`.
    pub fn new_with_conf_state(conf_state: ConfState) -> Self {
        let mut s = MemStorage {
            conf_state: conf_state.clone(),
            ..MemStorage::default()
        };
        s.snapshot.metadata.conf_state = conf_state;
        s
    }

    /// Records the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Current hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Records membership as of the last applied conf change, so a restart
    /// knows it (real storage persists it with the applied state).
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
    }

    /// All entries held (after the compaction point).
    pub fn all_entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Like [`Self::append`], taking ownership (no payload reference counts
    /// are touched).
    pub fn append_owned(&mut self, mut ents: Vec<Entry>) {
        let Some(first) = ents.first() else { return };
        let offset = self.offset_index + 1;
        let last = offset + self.entries.len() as u64;
        assert!(
            first.index <= last,
            "append leaves a gap: {} > {last}",
            first.index
        );
        if first.index < offset {
            let skip = ((offset - first.index) as usize).min(ents.len());
            ents.drain(..skip);
            if ents.is_empty() {
                return;
            }
        }
        let from = ents[0].index;
        self.entries.truncate((from - offset) as usize);
        self.entries.append(&mut ents);
    }

    /// Appends entries, replacing any suffix they conflict with.
    pub fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else { return };
        let offset = self.offset_index + 1;
        let last = offset + self.entries.len() as u64;
        assert!(
            first.index <= last,
            "append leaves a gap: {} > {last}",
            first.index
        );
        if first.index < offset {
            // Entries already compacted are committed and cannot differ.
            let skip = (offset - first.index) as usize;
            if skip < ents.len() {
                self.append(&ents[skip..]);
            }
            return;
        }
        self.entries.truncate((first.index - offset) as usize);
        self.entries.extend_from_slice(ents);
    }

    /// Replaces the whole log with a snapshot received from a leader.
    pub fn apply_snapshot(&mut self, snap: Snapshot) {
        let m = &snap.metadata;
        assert!(
            m.index >= self.snapshot.metadata.index,
            "snapshot out of date"
        );
        self.hard_state.commit = self.hard_state.commit.max(m.index);
        if self.hard_state.term < m.term {
            self.hard_state.term = m.term;
            self.hard_state.vote = 0;
        }
        self.entries.clear();
        self.offset_index = m.index;
        self.offset_term = m.term;
        self.conf_state = m.conf_state.clone();
        self.snapshot = snap;
    }

    /// Records a snapshot of the applied state at `index` with the given
    /// membership and payload; compaction is separate ([`Self::compact`]).
    ///
    /// The term is read from this storage's log, so the entry held here at
    /// `index` must be the one the state machine applied. A state machine
    /// restored from a leader's snapshot (a `Ready` lets it restore while
    /// the snapshot is still being written) must wait until that snapshot
    /// is installed here: until then the log may hold, at `index`, an
    /// uncommitted entry the snapshot replaces.
    pub fn create_snapshot(&mut self, index: u64, cs: ConfState, data: Bytes) -> StorageResult<()> {
        if index <= self.snapshot.metadata.index {
            return Err(StorageError::Compacted);
        }
        let term = self.term(index)?;
        self.snapshot = Snapshot {
            metadata: SnapshotMetadata {
                index,
                term,
                conf_state: cs,
            },
            data,
        };
        Ok(())
    }

    /// Discards entries up to and including `index`. The caller compacts only
    /// what its snapshot covers, so a lagging follower can still be served.
    pub fn compact(&mut self, index: u64) -> StorageResult<()> {
        if index <= self.offset_index {
            return Err(StorageError::Compacted);
        }
        let term = self.term(index)?;
        let drop = (index - self.offset_index) as usize;
        self.entries.drain(..drop);
        self.offset_index = index;
        self.offset_term = term;
        Ok(())
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> StorageResult<RaftState> {
        Ok(RaftState {
            hard_state: self.hard_state,
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> StorageResult<Vec<Entry>> {
        let offset = self.offset_index + 1;
        if lo < offset {
            return Err(StorageError::Compacted);
        }
        if hi > offset + self.entries.len() as u64 {
            return Err(StorageError::Unavailable);
        }
        let slice = &self.entries[(lo - offset) as usize..(hi - offset) as usize];
        Ok(crate::log::limit_size(slice, max_bytes).to_vec())
    }

    fn term(&self, index: u64) -> StorageResult<u64> {
        if index == self.offset_index {
            return Ok(self.offset_term);
        }
        if index < self.offset_index {
            return Err(StorageError::Compacted);
        }
        match self.entries.get((index - self.offset_index - 1) as usize) {
            Some(e) => Ok(e.term),
            None => Err(StorageError::Unavailable),
        }
    }

    fn first_index(&self) -> StorageResult<u64> {
        Ok(self.offset_index + 1)
    }

    fn last_index(&self) -> StorageResult<u64> {
        Ok(self.offset_index + self.entries.len() as u64)
    }

    fn snapshot(&self) -> StorageResult<Snapshot> {
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::normal(Bytes::new())
        }
    }

    #[test]
    fn append_truncates_conflicts_and_compact_moves_first_index() {
        let mut s = MemStorage::new_with_conf_state(ConfState::with_voters(&[1]));
        s.append(&[ent(1, 1), ent(2, 1), ent(3, 1)]);
        s.append(&[ent(2, 2)]);
        assert_eq!(s.last_index(), Ok(2));
        assert_eq!(s.term(2), Ok(2));
        s.compact(1).unwrap();
        assert_eq!(s.first_index(), Ok(2));
        assert_eq!(s.term(1), Ok(1));
        assert_eq!(s.term(0), Err(StorageError::Compacted));
        assert_eq!(s.entries(1, 2, u64::MAX), Err(StorageError::Compacted));
        assert_eq!(s.entries(2, 4, u64::MAX), Err(StorageError::Unavailable));
    }
}
