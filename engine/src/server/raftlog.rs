//! The Raft log as Raft reads it: the in-memory tail of the WAL.
//!
//! Raft's storage seam is synchronous, so the shard keeps the entries after
//! the latest snapshot in memory (the WAL holds them durably). The shard
//! appends to this log only once the WAL reports the entries durable, which
//! is exactly what Raft's storage contract asks for.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use cairn_raft::{
    ConfState, Entry, EntryKind, HardState, MemStorage, RaftState, Snapshot, SnapshotMetadata,
    Storage, StorageResult,
};

use crate::wal::Recovered;

/// Shared handle: the Raft node holds one, the shard another.
#[derive(Clone)]
pub struct RaftLog(Rc<RefCell<MemStorage>>);

/// The WAL's code for an entry kind (one byte in each entry record).
pub fn kind_code(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Normal => 0,
        EntryKind::ConfChange => 1,
    }
}

fn kind_from_code(code: u8) -> Option<EntryKind> {
    match code {
        0 => Some(EntryKind::Normal),
        1 => Some(EntryKind::ConfChange),
        _ => None,
    }
}

impl RaftLog {
    pub fn new(conf_state: ConfState) -> RaftLog {
        RaftLog(Rc::new(RefCell::new(MemStorage::new_with_conf_state(
            conf_state,
        ))))
    }

    /// Load the position of the snapshot the state machine was restored
    /// from, then what the WAL replayed after it: the hard state and the
    /// entries.
    pub fn restore(
        &self,
        snap_index: u64,
        snap_term: u64,
        recovered: &Recovered,
    ) -> Result<(), String> {
        let mut log = self.0.borrow_mut();
        if snap_index > 0 {
            let conf_state = log
                .initial_state()
                .map(|s| s.conf_state)
                .unwrap_or_default();
            log.apply_snapshot(Snapshot {
                metadata: SnapshotMetadata {
                    index: snap_index,
                    term: snap_term,
                    conf_state,
                },
                data: Bytes::new(),
            });
        }
        let mut entries = Vec::with_capacity(recovered.entries.len());
        let mut expected = snap_index + 1;
        for e in recovered.entries.iter().filter(|e| e.index > snap_index) {
            if e.index != expected {
                return Err(format!("entry {} follows entry {}", e.index, expected - 1));
            }
            let kind = kind_from_code(e.kind)
                .ok_or_else(|| format!("entry {} has unknown kind {}", e.index, e.kind))?;
            entries.push(Entry {
                index: e.index,
                term: e.term,
                kind,
                data: Bytes::copy_from_slice(&e.payload),
            });
            expected += 1;
        }
        log.append(&entries);
        let hs = recovered.hard_state;
        log.set_hard_state(HardState {
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit.min(expected - 1),
        });
        Ok(())
    }

    pub fn append(&self, entries: &[Entry]) {
        self.0.borrow_mut().append(entries);
    }

    /// Record that a snapshot of the applied state exists at `index`, so the
    /// leader offers it to followers that need entries before the log.
    pub fn set_snapshot(&self, index: u64, conf_state: ConfState) {
        // Already covered by a newer snapshot: nothing to record.
        let _ = self
            .0
            .borrow_mut()
            .create_snapshot(index, conf_state, Bytes::new());
    }

    /// Replace the log with a snapshot received from the leader.
    pub fn install_snapshot(&self, snapshot: Snapshot) {
        self.0.borrow_mut().apply_snapshot(snapshot);
    }

    /// Drop entries up to and including `index` (covered by a snapshot).
    pub fn compact(&self, index: u64) {
        // Compacting what is already gone is harmless.
        let _ = self.0.borrow_mut().compact(index);
    }

    pub fn set_hard_state(&self, hs: HardState) {
        self.0.borrow_mut().set_hard_state(hs);
    }
}

impl Storage for RaftLog {
    fn initial_state(&self) -> StorageResult<RaftState> {
        self.0.borrow().initial_state()
    }
    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> StorageResult<Vec<Entry>> {
        self.0.borrow().entries(lo, hi, max_bytes)
    }
    fn term(&self, index: u64) -> StorageResult<u64> {
        self.0.borrow().term(index)
    }
    fn first_index(&self) -> StorageResult<u64> {
        self.0.borrow().first_index()
    }
    fn last_index(&self) -> StorageResult<u64> {
        self.0.borrow().last_index()
    }
    fn snapshot(&self) -> StorageResult<Snapshot> {
        self.0.borrow().snapshot()
    }
}
