//! The leader: proposals, replication and flow control, commitment,
//! heartbeats, linearizable reads and leadership transfer. Also the local
//! requests (propose, read, transfer) a follower forwards to the leader.

use super::Raft;
use crate::config::ReadOnlyOption;
use crate::error::{Error, Result, StorageError};
use crate::progress::ProgressState;
use crate::storage::Storage;
use crate::types::{Entry, Message, MessageKind, ReadState, Role};

impl<S: Storage> Raft<S> {
    pub(crate) fn step_leader(&mut self, m: Message) -> Result<()> {
        if !self.trk.progress.contains_key(&m.from) {
            return Err(Error::PeerNotFound);
        }
        match m.kind {
            MessageKind::AppendResponse => self.handle_append_response(m),
            MessageKind::HeartbeatResponse => self.handle_heartbeat_response(m),
            // A follower's forwarded proposal: dropped silently on error, the
            // follower's client times out as it would with a lost message.
            MessageKind::Propose => {
                let _ = self.propose_entries(m.entries);
            }
            MessageKind::ReadIndex => self.read_index_from(m.context, m.from),
            MessageKind::TransferLeader => self.transfer_leader(m.context),
            _ => {}
        }
        Ok(())
    }

    /// Appends a batch proposed locally (leader) or forwards it (follower).
    pub fn propose_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        match self.role {
            Role::Leader => {
                if self.lead_transferee != 0 {
                    return Err(Error::ProposalDropped("leadership transfer in progress"));
                }
                if !self.trk.progress.contains_key(&self.id) {
                    return Err(Error::ProposalDropped("node removed from the cluster"));
                }
                for e in &entries {
                    if e.kind == crate::types::EntryKind::ConfChange {
                        self.check_conf_change_proposal(e)?;
                    }
                }
                let has_cc = entries
                    .iter()
                    .any(|e| e.kind == crate::types::EntryKind::ConfChange);
                if !self.append_entries(entries) {
                    return Err(Error::ProposalDropped("too many uncommitted entries"));
                }
                if has_cc {
                    self.pending_conf_index = self.log.last_index();
                }
                self.bcast_append();
                Ok(())
            }
            _ if self.leader == 0 => Err(Error::ProposalDropped("no leader")),
            _ => {
                let mut m = Message::new(MessageKind::Propose, self.id, self.leader, 0);
                m.entries = entries;
                self.send(m);
                Ok(())
            }
        }
    }

    /// Assigns positions and appends to the leader's log, unless the
    /// uncommitted tail would grow past its limit. The first batch is always
    /// accepted so a single oversized batch cannot wedge the leader.
    pub(crate) fn append_entries(&mut self, mut entries: Vec<Entry>) -> bool {
        if entries.is_empty() {
            return true;
        }
        let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
        if self.uncommitted_bytes > 0
            && self.uncommitted_bytes.saturating_add(bytes) > self.max_uncommitted_bytes
        {
            return false;
        }
        let mut index = self.log.last_index();
        for e in entries.iter_mut() {
            index += 1;
            e.index = index;
            e.term = self.term;
        }
        self.log.append(entries);
        self.uncommitted.push_back((index, bytes));
        self.uncommitted_bytes += bytes;
        // The leader counts itself toward commit only once its own write is
        // durable (`on_persisted`); appending alone acknowledges nothing.
        if let Some(pr) = self.trk.progress.get_mut(&self.id) {
            pr.next = index + 1;
        }
        true
    }

    /// Commits what a quorum has acknowledged; true if the commit index grew.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let ci = self.trk.committed();
        let before_in_term = self.committed_entry_in_current_term();
        if !self.log.maybe_commit(ci, self.term) {
            return false;
        }
        let committed = self.log.committed;
        while let Some(&(idx, b)) = self.uncommitted.front() {
            if idx > committed {
                break;
            }
            self.uncommitted_bytes -= b;
            self.uncommitted.pop_front();
        }
        if !before_in_term {
            // Reads that arrived before this term's first commit can now be
            // given an index.
            let waiting: Vec<(u64, u64)> = self.read_only.waiting_commit.drain(..).collect();
            for (ctx, from) in waiting {
                self.read_index_from(ctx, from);
            }
        }
        true
    }

    /// Sends entries (or a snapshot) to `to` if flow control allows;
    /// `send_if_empty` also sends an empty Append (to carry the commit index
    /// or probe). Returns whether a message was sent.
    pub(crate) fn maybe_send_append(&mut self, to: u64, send_if_empty: bool) -> bool {
        let Some(pr) = self.trk.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let next = pr.next;
        let prev_term = self.log.term(next - 1);
        let ents = self.log.entries(next, self.max_msg_bytes);
        let (prev_term, ents) = match (prev_term, ents) {
            (Ok(t), Ok(e)) => (t, e),
            // The entries are compacted: only a snapshot can help.
            _ => return self.maybe_send_snapshot(to),
        };
        if ents.is_empty() && !send_if_empty {
            return false;
        }
        let count = ents.len();
        let last = ents.last().map_or(next - 1, |e| e.index);
        let bytes: u64 = ents.iter().map(Entry::size_bytes).sum();
        let mut m = Message::new(MessageKind::Append, self.id, to, self.term);
        m.index = next - 1;
        m.log_term = prev_term;
        m.entries = ents;
        m.commit = self.log.committed;
        if let Some(pr) = self.trk.progress.get_mut(&to) {
            pr.sent_entries(count, last, bytes);
        }
        self.send(m);
        true
    }

    fn send_empty_append(&mut self, to: u64) {
        let Some(pr) = self.trk.progress.get(&to) else {
            return;
        };
        let prev = pr.next - 1;
        let Ok(prev_term) = self.log.term(prev) else {
            self.maybe_send_snapshot(to);
            return;
        };
        let mut m = Message::new(MessageKind::Append, self.id, to, self.term);
        m.index = prev;
        m.log_term = prev_term;
        m.commit = self.log.committed;
        self.send(m);
    }

    fn maybe_send_snapshot(&mut self, to: u64) -> bool {
        let active = self.trk.progress.get(&to).is_some_and(|p| p.recent_active);
        if !active {
            // A node we have not heard from would likely drop it; wait.
            return false;
        }
        let snap = match self.log.snapshot() {
            Ok(s) => s,
            Err(StorageError::SnapshotTemporarilyUnavailable) => return false,
            Err(e) => panic!("log compacted past follower {to} but no snapshot: {e}"),
        };
        assert!(
            snap.metadata.index > 0,
            "log compacted past follower {to} but the snapshot is empty"
        );
        if let Some(pr) = self.trk.progress.get_mut(&to) {
            pr.become_snapshot(snap.metadata.index);
        }
        let mut m = Message::new(MessageKind::Snapshot, self.id, to, self.term);
        m.snapshot = Some(snap);
        self.send(m);
        true
    }

    pub(crate) fn bcast_append(&mut self) {
        let ids: Vec<u64> = self
            .trk
            .progress
            .keys()
            .copied()
            .filter(|&i| i != self.id)
            .collect();
        for id in ids {
            // In Replicate state keep sending until the window is full:
            // a large batch goes out as several pipelined Appends at once.
            if self.maybe_send_append(id, true) {
                while self.maybe_send_append(id, false) {}
            }
        }
    }

    pub(crate) fn bcast_heartbeat(&mut self, round: u64) {
        let ids: Vec<u64> = self
            .trk
            .progress
            .keys()
            .copied()
            .filter(|&i| i != self.id)
            .collect();
        for id in ids {
            let matched = self.trk.progress.get(&id).map_or(0, |p| p.matched);
            let mut m = Message::new(MessageKind::Heartbeat, self.id, id, self.term);
            // Never tell a follower to commit beyond what it is known to
            // hold: it may not have those entries yet.
            m.commit = matched.min(self.log.committed);
            m.context = round;
            self.send(m);
        }
    }

    fn handle_append_response(&mut self, m: Message) {
        let from = m.from;
        let last_index = self.log.last_index();
        let Some(pr) = self.trk.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if m.reject {
            let mut hint = m.reject_hint;
            if m.log_term > 0 {
                // Skip every leader entry whose term is above the
                // follower's hint term: they cannot match.
                hint = self.log.find_conflict_by_term(m.reject_hint, m.log_term).0;
            }
            let Some(pr) = self.trk.progress.get_mut(&from) else {
                return;
            };
            if pr.maybe_decr_to(m.index, hint) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.maybe_send_append(from, true);
            }
            return;
        }
        let old_paused = pr.is_paused();
        let updated = pr.maybe_update(m.index);
        if !(updated || (pr.matched == m.index && pr.state == ProgressState::Probe)) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot => {
                if pr.matched >= pr.pending_snapshot {
                    pr.become_probe();
                    pr.become_replicate();
                }
            }
            ProgressState::Replicate => pr.inflights.free_le(m.index),
        }
        let caught_up = pr.matched == last_index;
        if self.maybe_commit() {
            self.bcast_append();
        } else if old_paused {
            self.maybe_send_append(from, true);
        }
        // Pipelining: keep the window full.
        while self.maybe_send_append(from, false) {}
        if from == self.lead_transferee && caught_up {
            self.send_timeout_now(from);
        }
    }

    fn handle_heartbeat_response(&mut self, m: Message) {
        let last = self.log.last_index();
        let Some(pr) = self.trk.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.matched < last || pr.state == ProgressState::Probe {
            if pr.state == ProgressState::Replicate && pr.is_paused() {
                // The window is full. If everything in it was lost, nothing
                // would ever free it: an empty Append at the stream's end
                // makes the follower answer with where it really is.
                self.send_empty_append(m.from);
            } else {
                self.maybe_send_append(m.from, true);
            }
        }
        if m.context != 0 {
            self.read_only.ack(m.from, m.context);
            self.release_confirmed_reads();
        }
    }

    fn release_confirmed_reads(&mut self) {
        for r in self.read_only.confirmed(&self.trk.config.voters, self.id) {
            self.answer_read(r.context, r.from, r.index);
        }
    }

    fn answer_read(&mut self, context: u64, from: u64, index: u64) {
        if from == self.id {
            if self.read_states.len() < crate::limits::MAX_READ_STATES {
                self.read_states.push(ReadState { index, context });
            }
        } else {
            let mut m = Message::new(MessageKind::ReadIndexResponse, self.id, from, self.term);
            m.index = index;
            m.context = context;
            self.send(m);
        }
    }

    /// A read request from `from` (this node for local reads).
    pub(crate) fn read_index_from(&mut self, context: u64, from: u64) {
        if self.role != Role::Leader {
            if from == self.id && self.leader != 0 {
                let mut m = Message::new(MessageKind::ReadIndex, self.id, self.leader, 0);
                m.context = context;
                self.send(m);
            }
            return;
        }
        if !self.committed_entry_in_current_term() {
            // Our commit index may lag the previous leader's until an entry
            // of our term commits; wait for it.
            self.read_only.add_waiting(context, from);
            return;
        }
        let index = self.log.committed;
        let lease = self.read_only_option == ReadOnlyOption::LeaseBased && self.lease_valid();
        if self.trk.is_singleton(self.id) || lease {
            self.answer_read(context, from, index);
            return;
        }
        // Safe mode, or the lease lapsed: confirm with a round.
        if self.read_only.add(context, from, index) {
            // The round goes out with the next Ready so that reads issued
            // in between share it.
            self.release_confirmed_reads();
        }
    }

    /// Sends the heartbeat round that confirms queued reads, if any.
    pub(crate) fn flush_read_round(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(round) = self.read_only.take_round(self.tick_count()) {
            self.bcast_heartbeat(round);
        }
    }

    /// Starts handing leadership to `to` (leader), or asks the leader to
    /// (follower).
    pub fn transfer_leader(&mut self, to: u64) {
        if self.role != Role::Leader {
            if self.leader != 0 && self.leader != to {
                let mut m = Message::new(MessageKind::TransferLeader, self.id, self.leader, 0);
                m.context = to;
                self.send(m);
            }
            return;
        }
        if to == self.id || to == self.lead_transferee || !self.trk.is_voter(to) {
            return;
        }
        let Some(pr) = self.trk.progress.get(&to) else {
            return;
        };
        let caught_up = pr.matched == self.log.last_index();
        self.lead_transferee = to;
        // The transfer has one election timeout to finish.
        self.election_elapsed = 0;
        if caught_up {
            self.send_timeout_now(to);
        } else {
            self.maybe_send_append(to, true);
        }
    }

    fn send_timeout_now(&mut self, to: u64) {
        self.disable_lease();
        let m = Message::new(MessageKind::TimeoutNow, self.id, to, self.term);
        self.send(m);
    }

    /// The transport could not reach `id`: stop streaming optimistically.
    pub fn report_unreachable(&mut self, id: u64) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.trk.progress.get_mut(&id) {
            if pr.state == ProgressState::Replicate {
                pr.become_probe();
            }
        }
    }

    /// The transport finished (or failed) sending a snapshot to `id`.
    pub fn report_snapshot(&mut self, id: u64, success: bool) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.trk.progress.get_mut(&id) {
            if pr.state != ProgressState::Snapshot {
                return;
            }
            if !success {
                pr.pending_snapshot = 0;
            }
            pr.become_probe();
            // Wait for the follower's answer (or a heartbeat response) before
            // probing, so a slow install is not raced by Appends.
            pr.probe_sent = true;
        }
    }
}
