//! What the leader knows about each follower's log, and the flow control
//! that decides when it may send more.

use std::collections::VecDeque;

/// How the leader is currently replicating to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgressState {
    /// Where the follower's log ends is unknown: send one Append at a time
    /// and wait for the answer (or a heartbeat response) before the next.
    Probe,
    /// The follower is known to match up to `matched`: stream Appends
    /// optimistically, bounded by the in-flight window.
    Replicate,
    /// The follower needs a snapshot; nothing else is sent until it reports.
    Snapshot,
}

/// A bounded window of Append messages in flight to one follower, limited
/// both by count and by bytes.
#[derive(Clone, Debug)]
pub struct Inflights {
    /// (last index, bytes) of each message in flight, oldest first.
    window: VecDeque<(u64, u64)>,
    bytes: u64,
    max_count: usize,
    max_bytes: u64,
}

impl Inflights {
    /// A window of at most `max_count` messages and `max_bytes` bytes.
    pub fn new(max_count: usize, max_bytes: u64) -> Self {
        assert!(max_count > 0);
        Inflights {
            window: VecDeque::new(),
            bytes: 0,
            max_count,
            max_bytes,
        }
    }

    /// Records a message whose last entry is `index`.
    pub fn add(&mut self, index: u64, bytes: u64) {
        assert!(!self.full(), "inflight window overflow");
        if let Some(&(last, _)) = self.window.back() {
            assert!(index > last, "inflight index {index} not above {last}");
        }
        self.window.push_back((index, bytes));
        self.bytes += bytes;
    }

    /// Frees every message whose last index is ≤ `index` (acknowledged).
    pub fn free_le(&mut self, index: u64) {
        while let Some(&(i, b)) = self.window.front() {
            if i > index {
                break;
            }
            self.bytes -= b;
            self.window.pop_front();
        }
    }

    /// No more messages may be sent.
    pub fn full(&self) -> bool {
        self.window.len() >= self.max_count || self.bytes >= self.max_bytes
    }

    /// Messages in flight.
    pub fn count(&self) -> usize {
        self.window.len()
    }

    /// Bytes in flight.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Forgets everything (the follower's state is being re-learned).
    pub fn reset(&mut self) {
        self.window.clear();
        self.bytes = 0;
    }
}

/// The leader's view of one follower (or itself).
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to be in the follower's log.
    pub matched: u64,
    /// Next index to send.
    pub next: u64,
    /// Replication state.
    pub state: ProgressState,
    /// In Snapshot state: index of the snapshot sent.
    pub pending_snapshot: u64,
    /// Heard from the follower since the last check-quorum round.
    pub recent_active: bool,
    /// In Probe state: an Append was sent and not yet answered.
    pub probe_sent: bool,
    /// In-flight window (used in Replicate state).
    pub inflights: Inflights,
    /// A learner does not vote.
    pub is_learner: bool,
}

impl Progress {
    pub(crate) fn new(next: u64, max_count: usize, max_bytes: u64) -> Self {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            pending_snapshot: 0,
            recent_active: false,
            probe_sent: false,
            inflights: Inflights::new(max_count, max_bytes),
            is_learner: false,
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.inflights.reset();
    }

    pub(crate) fn become_probe(&mut self) {
        // After a snapshot, the follower has at least the snapshot.
        if self.state == ProgressState::Snapshot {
            let pending = self.pending_snapshot;
            self.reset_state(ProgressState::Probe);
            self.next = (self.matched + 1).max(pending + 1);
        } else {
            self.reset_state(ProgressState::Probe);
            self.next = self.matched + 1;
        }
    }

    pub(crate) fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next = self.matched + 1;
    }

    pub(crate) fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
    }

    /// The follower acknowledged `index`; returns whether `matched` grew.
    pub(crate) fn maybe_update(&mut self, index: u64) -> bool {
        let grew = index > self.matched;
        if grew {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next = self.next.max(index + 1);
        grew
    }

    /// The follower rejected an Append after `rejected`; `hint` is the
    /// highest index where it may match. Returns false for stale rejections.
    pub(crate) fn maybe_decr_to(&mut self, rejected: u64, hint: u64) -> bool {
        if rejected <= self.matched && hint < self.matched && self.state != ProgressState::Snapshot
        {
            // The follower rejects an index it acknowledged, and says its
            // log now ends before `matched`: it lost entries it had synced
            // (a disk that dropped writes, a restored file backup, a damaged
            // tail cut off by hand). Raft assumes this never happens, and
            // ignoring it would leave the follower stuck for good. Probe again
            // from where its log now ends. This is safe: the leader's commit
            // index never moves back, and if the rejection was only a stale
            // one from before the follower caught up, the cost is a resend of
            // entries it already holds.
            self.reset_state(ProgressState::Probe);
            self.matched = hint;
            self.next = hint + 1;
            return true;
        }
        if self.state == ProgressState::Replicate {
            // Stale if it rejects something already matched (and the
            // follower still holds `matched`, checked above); otherwise the
            // optimistic stream is wrong, restart just after `matched`.
            if rejected <= self.matched {
                return false;
            }
            self.next = self.matched + 1;
            return true;
        }
        // In Probe, only the answer to the latest probe counts.
        if self.next == 0 || self.next - 1 != rejected {
            return false;
        }
        self.next = (hint + 1).min(rejected).max(self.matched + 1);
        self.probe_sent = false;
        true
    }

    /// Whether sending more Appends must wait.
    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot => true,
        }
    }

    /// Records that an Append with `count` entries ending at `last` (of
    /// `bytes` bytes) was sent.
    pub(crate) fn sent_entries(&mut self, count: usize, last: u64, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if count > 0 {
                    self.next = last + 1;
                    self.inflights.add(last, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => panic!("sending entries in snapshot state"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflights_bounded_by_count_and_bytes() {
        let mut i = Inflights::new(3, 100);
        i.add(1, 10);
        i.add(2, 10);
        assert!(!i.full());
        i.add(5, 90);
        assert!(i.full());
        i.free_le(2);
        assert_eq!((i.count(), i.bytes()), (1, 90));
        assert!(!i.full());
        i.add(6, 10);
        assert!(i.full(), "bytes limit reached");
        i.free_le(10);
        assert_eq!((i.count(), i.bytes()), (0, 0));
    }

    #[test]
    fn probe_backs_off_to_hint_but_not_below_match() {
        let mut p = Progress::new(11, 4, 1000);
        p.matched = 3;
        // A stale rejection (not of the last probe) is ignored.
        assert!(!p.maybe_decr_to(5, 2));
        assert!(p.maybe_decr_to(10, 6));
        assert_eq!(p.next, 7);
        assert!(p.maybe_decr_to(6, 0));
        assert_eq!(p.next, 4);
    }

    #[test]
    fn replicate_rejection_restarts_after_match() {
        let mut p = Progress::new(5, 4, 1000);
        p.matched = 4;
        p.become_replicate();
        p.sent_entries(3, 7, 30);
        p.sent_entries(2, 9, 20);
        assert_eq!(p.next, 10);
        assert!(!p.maybe_decr_to(4, 4), "stale: at or below match");
        assert!(p.maybe_decr_to(7, 5));
        assert_eq!(p.next, 5);
    }

    #[test]
    fn a_follower_that_lost_acknowledged_entries_is_probed_again_from_its_end() {
        let mut p = Progress::new(5, 4, 1000);
        p.matched = 9;
        p.become_replicate();
        // It rejects index 9 and says its log ends at 6.
        assert!(p.maybe_decr_to(9, 6));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!((p.matched, p.next), (6, 7));
        // A stale rejection from a follower that still holds `matched` is
        // ignored, in either state.
        assert!(!p.maybe_decr_to(5, 6));
        p.become_replicate();
        assert!(!p.maybe_decr_to(6, 6));
    }
}
