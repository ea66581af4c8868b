//! Message handling common to all roles, and the follower and candidate
//! roles.

use super::{CampaignKind, Raft};
use crate::error::{Error, Result};
use crate::quorum::VoteResult;
use crate::storage::Storage;
use crate::types::{Message, MessageKind, ReadState, Role, Snapshot};

impl<S: Storage> Raft<S> {
    /// Handles a message from a peer.
    pub fn step(&mut self, m: Message) -> Result<()> {
        if m.to != self.id {
            return Err(Error::InvalidMessage("addressed to another node"));
        }
        if m.from == 0 || m.from == self.id {
            return Err(Error::InvalidMessage("from self or from no one"));
        }
        if m.term == 0 {
            // Forwarded requests carry no term.
            if !matches!(
                m.kind,
                MessageKind::Propose | MessageKind::ReadIndex | MessageKind::TransferLeader
            ) {
                return Err(Error::InvalidMessage("without term"));
            }
        } else if m.term > self.term {
            let vote = matches!(m.kind, MessageKind::Vote | MessageKind::PreVote);
            if vote && !m.campaign_transfer && self.in_leader_lease() {
                // A leader may hold a lease on us: ignore the disruption
                // (leader stickiness, and what makes lease reads safe).
                return Ok(());
            }
            match m.kind {
                // A pre-vote uses a future term and changes nothing.
                MessageKind::PreVote => {}
                // A granted pre-vote carries our own future term.
                MessageKind::PreVoteResponse if !m.reject => {}
                MessageKind::Append | MessageKind::Heartbeat | MessageKind::Snapshot => {
                    self.become_follower(m.term, m.from);
                }
                _ => self.become_follower(m.term, 0),
            }
        } else if m.term < self.term {
            if (self.check_quorum || self.pre_vote)
                && matches!(m.kind, MessageKind::Heartbeat | MessageKind::Append)
            {
                // A stale leader (e.g. back from a partition) learns the new
                // term from this answer and steps down; without it, it could
                // stall a node that pre-votes or honours leases.
                let resp = Message::new(MessageKind::AppendResponse, self.id, m.from, self.term);
                self.send(resp);
            } else if m.kind == MessageKind::PreVote {
                let mut resp =
                    Message::new(MessageKind::PreVoteResponse, self.id, m.from, self.term);
                resp.reject = true;
                self.send(resp);
            }
            return Ok(());
        }

        if matches!(
            m.kind,
            MessageKind::Append | MessageKind::Heartbeat | MessageKind::Snapshot
        ) {
            // From the leader of our (possibly just adopted) term.
            self.leader_contact_tick = Some(self.tick_count());
        }
        match m.kind {
            MessageKind::Vote | MessageKind::PreVote => {
                self.handle_vote_request(m);
                Ok(())
            }
            _ => match self.role {
                Role::Leader => self.step_leader(m),
                Role::Candidate | Role::PreCandidate => {
                    self.step_candidate(m);
                    Ok(())
                }
                Role::Follower => {
                    self.step_follower(m);
                    Ok(())
                }
            },
        }
    }

    fn handle_vote_request(&mut self, m: Message) {
        let pre = m.kind == MessageKind::PreVote;
        let can_vote = self.vote == m.from
            // Not voted yet and no leader known in this term.
            || (self.vote == 0 && self.leader == 0)
            // A pre-vote for a future term is judged on the log alone.
            || (pre && m.term > self.term);
        // Reaching this term may have made us forget a leader we promised
        // a lease to; the promise still holds (a transfer is the leader's
        // own wish and voids its lease).
        let can_vote =
            can_vote && (self.vote == m.from || m.campaign_transfer || !self.lease_promised());
        let resp_kind = if pre {
            MessageKind::PreVoteResponse
        } else {
            MessageKind::VoteResponse
        };
        if can_vote && self.log.is_up_to_date(m.index, m.log_term) {
            // The response carries the candidate's term so that it counts
            // toward that election (for a pre-vote, ours may be lower).
            let resp = Message::new(resp_kind, self.id, m.from, m.term);
            self.send(resp);
            if !pre {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            let mut resp = Message::new(resp_kind, self.id, m.from, self.term);
            resp.reject = true;
            self.send(resp);
        }
    }

    fn step_candidate(&mut self, m: Message) {
        let my_resp = if self.role == Role::PreCandidate {
            MessageKind::PreVoteResponse
        } else {
            MessageKind::VoteResponse
        };
        match m.kind {
            MessageKind::Propose => {}
            MessageKind::Append => {
                self.become_follower(m.term, m.from);
                self.handle_append(m);
            }
            MessageKind::Heartbeat => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(m);
            }
            MessageKind::Snapshot => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
            }
            k if k == my_resp => match self.poll(m.from, !m.reject) {
                VoteResult::Won => {
                    if self.role == Role::PreCandidate {
                        self.campaign(CampaignKind::Election);
                    } else {
                        self.become_leader();
                        self.bcast_append();
                    }
                }
                VoteResult::Lost => self.become_follower(self.term, 0),
                VoteResult::Pending => {}
            },
            // Stale answers, forwarded requests without a leader to forward
            // to, and TimeoutNow (we are already campaigning) are dropped.
            _ => {}
        }
    }

    fn step_follower(&mut self, m: Message) {
        match m.kind {
            // Requests forwarded by another follower are not forwarded
            // again: an answer must go back to the node that asked.
            MessageKind::Propose | MessageKind::ReadIndex | MessageKind::TransferLeader => {}
            MessageKind::Append => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_append(m);
            }
            MessageKind::Heartbeat => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_heartbeat(m);
            }
            MessageKind::Snapshot => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_snapshot(m);
            }
            MessageKind::TimeoutNow => self.hup(true),
            // Beyond the limit the read is dropped; its caller times out.
            MessageKind::ReadIndexResponse
                if self.read_states.len() < crate::limits::MAX_READ_STATES =>
            {
                self.read_states.push(ReadState {
                    index: m.index,
                    context: m.context,
                });
            }
            _ => {}
        }
    }

    fn handle_append(&mut self, m: Message) {
        let mut resp = Message::new(MessageKind::AppendResponse, self.id, m.from, self.term);
        if m.index < self.log.committed {
            // Everything up to our commit index matches the leader already.
            resp.index = self.log.committed;
            self.send(resp);
            return;
        }
        match self
            .log
            .maybe_append(m.index, m.log_term, m.commit, m.entries)
        {
            Some(last) => resp.index = last,
            None => {
                // Tell the leader where our log may match so it can skip a
                // whole term per round trip instead of one index.
                let probe = m.index.min(self.log.last_index());
                let (hint, hint_term) = self.log.find_conflict_by_term(probe, m.log_term);
                resp.index = m.index;
                resp.reject = true;
                resp.reject_hint = hint;
                resp.log_term = hint_term;
            }
        }
        self.send(resp);
    }

    fn handle_heartbeat(&mut self, m: Message) {
        self.log.commit_to(m.commit.min(self.log.last_index()));
        let mut resp = Message::new(MessageKind::HeartbeatResponse, self.id, m.from, self.term);
        resp.context = m.context;
        self.send(resp);
    }

    fn handle_snapshot(&mut self, m: Message) {
        let Some(snap) = m.snapshot else { return };
        let mut resp = Message::new(MessageKind::AppendResponse, self.id, m.from, self.term);
        resp.index = if self.restore(snap) {
            self.log.last_index()
        } else {
            self.log.committed
        };
        self.send(resp);
    }

    /// Installs a snapshot from the leader; false if it brings nothing new.
    fn restore(&mut self, snap: Snapshot) -> bool {
        let meta = &snap.metadata;
        if meta.index <= self.log.committed {
            return false;
        }
        // The snapshot's membership may not include us yet: a node added
        // after the snapshot was taken learns of its addition from the
        // entries that follow it.
        if self.log.match_term(meta.index, meta.term) {
            // We already have the entries: just learn that they commit.
            self.log.commit_to(meta.index);
            return false;
        }
        let cs = meta.conf_state.clone();
        self.log.restore(snap);
        self.restore_conf_state(&cs);
        true
    }
}
