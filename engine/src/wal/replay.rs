//! Raft semantics of a log being read back: the state the records add up to.

use super::format::{HardState, SnapshotMarker};

/// One Raft log entry. The payload is opaque to the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// What recovery returns: the latest hard state, the latest snapshot marker
/// and every entry the log still holds, in index order with no gaps.
///
/// Entries at or before `snapshot.index` are kept (until their segment is
/// released) so that recovery can start from an older snapshot file if the
/// newest one is damaged; [`Recovered::entries_after`] picks the ones to
/// apply on top of the snapshot actually loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: SnapshotMarker,
    pub entries: Vec<Entry>,
}

impl Recovered {
    /// Index of the last entry (or of the snapshot if it is newer).
    pub fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot.index, |e| e.index.max(self.snapshot.index))
    }

    /// The entries to apply after a snapshot at `index`, or `None` if the
    /// log no longer holds all of them (the snapshot is too old to use).
    pub fn entries_after(&self, index: u64) -> Option<&[Entry]> {
        let Some(first) = self.entries.first().map(|e| e.index) else {
            return (index >= self.snapshot.index).then_some(&[]);
        };
        if index + 1 < first {
            return None;
        }
        let skip = ((index + 1 - first) as usize).min(self.entries.len());
        Some(&self.entries[skip..])
    }
}

/// Applies records in log order with Raft's rules. Used by recovery and, as a
/// reference model, by tests.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    pub state: Recovered,
    /// Set when the first entry seen does not follow the snapshot (the log was
    /// released up to a snapshot marker that comes later in the log). A later
    /// marker at or past the gap heals it; otherwise entries are missing.
    gap_before: Option<u64>,
}

impl Replay {
    pub fn new(hard_state: HardState, snapshot: SnapshotMarker) -> Replay {
        Replay {
            state: Recovered {
                hard_state,
                snapshot,
                entries: Vec::new(),
            },
            gap_before: None,
        }
    }

    pub fn from_state(state: Recovered) -> Replay {
        Replay {
            state,
            gap_before: None,
        }
    }

    pub fn hard_state(&mut self, hs: HardState) {
        self.state.hard_state = hs;
    }

    /// An entry with index `i` replaces every entry with index ≥ `i`.
    pub fn entry(&mut self, e: Entry) -> Result<(), String> {
        let s = &mut self.state;
        match s.entries.first().map(|f| f.index) {
            Some(first) if e.index >= first => {
                let keep = (e.index - first) as usize;
                if keep > s.entries.len() {
                    let last = first + s.entries.len() as u64 - 1;
                    return Err(format!(
                        "entry {} follows entry {last}: entries are missing",
                        e.index
                    ));
                }
                s.entries.truncate(keep);
            }
            _ => {
                // The first entry, or one before everything held: it starts
                // the log afresh, and must follow the snapshot unless a later
                // snapshot marker covers the gap (the log was released).
                s.entries.clear();
                self.gap_before = (e.index > s.snapshot.index + 1).then_some(e.index);
            }
        }
        s.entries.push(e);
        Ok(())
    }

    /// A snapshot marker. Entries at or before it stay (see [`Recovered`]),
    /// unless the snapshot is beyond the last entry: then it replaced the
    /// log (a follower installing the leader's snapshot).
    pub fn snapshot(&mut self, m: SnapshotMarker) {
        let s = &mut self.state;
        if m.index < s.snapshot.index {
            return;
        }
        s.snapshot = m;
        if s.entries.last().is_some_and(|l| l.index < m.index) {
            s.entries.clear();
        }
        if self.gap_before.is_some_and(|g| m.index + 1 >= g) {
            self.gap_before = None;
        }
    }

    /// The final state, or why the log is incomplete.
    pub fn finish(self) -> Result<Recovered, String> {
        match self.gap_before {
            Some(g) => Err(format!(
                "entries {}..{} are missing (not covered by a snapshot)",
                self.state.snapshot.index + 1,
                g
            )),
            None => Ok(self.state),
        }
    }
}
