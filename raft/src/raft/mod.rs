//! The Raft state machine proper: roles, terms, timers and elections. Message
//! handling is in `step`, the leader's replication and reads in `leader`,
//! membership in `membership`.

mod leader;
mod membership;
mod step;

use std::collections::VecDeque;

use crate::config::{Config, ReadOnlyOption};
use crate::error::Result;
use crate::limits;
use crate::log::RaftLog;
use crate::progress::Progress;
use crate::quorum::VoteResult;
use crate::read_only::ReadOnly;
use crate::rng::Rng;
use crate::storage::Storage;
use crate::tracker::ProgressTracker;
use crate::types::{EntryKind, HardState, Message, MessageKind, ReadState, Role, SoftState};

/// Which kind of election to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CampaignKind {
    PreElection,
    Election,
    Transfer,
}

pub(crate) struct Raft<S: Storage> {
    pub id: u64,
    pub term: u64,
    pub vote: u64,
    pub leader: u64,
    pub role: Role,
    pub log: RaftLog<S>,
    pub trk: ProgressTracker,
    /// Messages that may be sent at once.
    pub msgs: Vec<Message>,
    /// Messages that may only be sent once the current Ready is persisted.
    pub msgs_after_persist: Vec<Message>,
    pub read_states: Vec<ReadState>,
    pub read_only: ReadOnly,
    pub read_only_option: ReadOnlyOption,
    pub lead_transferee: u64,
    /// Index of the latest conf change entry the leader appended; no new one
    /// may be proposed until it is applied.
    pub pending_conf_index: u64,
    pub is_learner: bool,
    /// Ticks since this node started (the lease clock).
    tick_count: u64,
    /// Tick at which this node last accepted an Append, Heartbeat or
    /// Snapshot from a leader. With lease reads, acknowledging one promises
    /// that leader no vote for anyone else for an election timeout; the
    /// promise must survive learning a higher term from a message that
    /// names no leader (a vote response, say), which forgets `leader`.
    leader_contact_tick: Option<u64>,
    /// A TimeoutNow went out this term: its target may win an election past
    /// the followers' leases at any time, so this leader's lease is void.
    lease_disabled: bool,
    election_elapsed: usize,
    heartbeat_elapsed: usize,
    randomized_election_timeout: usize,
    election_tick: usize,
    heartbeat_tick: usize,
    check_quorum: bool,
    pre_vote: bool,
    max_msg_bytes: u64,
    max_uncommitted_bytes: u64,
    /// (last index, bytes) of each uncommitted batch the leader appended.
    uncommitted: VecDeque<(u64, u64)>,
    uncommitted_bytes: u64,
    pub max_committed_bytes_per_ready: u64,
    rng: Rng,
}

impl<S: Storage> Raft<S> {
    pub fn new(c: &Config, storage: S) -> Result<Self> {
        c.validate()?;
        let rs = storage.initial_state()?;
        let log = RaftLog::new(storage, c.applied)?;
        let mut r = Raft {
            id: c.id,
            term: 0,
            vote: 0,
            leader: 0,
            role: Role::Follower,
            log,
            trk: ProgressTracker::new(c.max_inflight_msgs, c.max_inflight_bytes),
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            read_states: Vec::new(),
            read_only: ReadOnly::default(),
            read_only_option: c.read_only_option,
            lead_transferee: 0,
            pending_conf_index: 0,
            is_learner: false,
            tick_count: 0,
            leader_contact_tick: None,
            lease_disabled: false,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: c.election_tick,
            election_tick: c.election_tick,
            heartbeat_tick: c.heartbeat_tick,
            check_quorum: c.check_quorum,
            pre_vote: c.pre_vote,
            max_msg_bytes: c.max_size_per_msg_bytes,
            max_uncommitted_bytes: c.max_uncommitted_entries_bytes,
            uncommitted: VecDeque::new(),
            uncommitted_bytes: 0,
            max_committed_bytes_per_ready: c.max_committed_bytes_per_ready,
            // Mixing in the id keeps nodes given the same seed apart.
            rng: Rng::new(c.seed ^ c.id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        };
        r.restore_conf_state(&rs.conf_state);
        // The log already checked the commit index against the last index.
        r.term = rs.hard_state.term;
        r.vote = rs.hard_state.vote;
        r.become_follower(r.term, 0);
        Ok(r)
    }

    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader: self.leader,
            role: self.role,
        }
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }

    /// Queues a message, stamping sender and term. Messages whose meaning
    /// depends on state not yet durable (votes and acknowledgements) wait
    /// for the current Ready's persistence.
    pub(crate) fn send(&mut self, mut m: Message) {
        m.from = self.id;
        assert_ne!(m.to, self.id, "message to self");
        match m.kind {
            MessageKind::Vote
            | MessageKind::PreVote
            | MessageKind::VoteResponse
            | MessageKind::PreVoteResponse => {
                assert_ne!(m.term, 0, "vote message without term");
            }
            // Forwarded requests are not bound to a term.
            MessageKind::Propose | MessageKind::ReadIndex | MessageKind::TransferLeader => {
                m.term = 0
            }
            _ => m.term = self.term,
        }
        let after = matches!(
            m.kind,
            MessageKind::AppendResponse | MessageKind::VoteResponse | MessageKind::Vote
        );
        let q = if after {
            &mut self.msgs_after_persist
        } else {
            &mut self.msgs
        };
        assert!(
            q.len() < limits::MAX_MSGS_BUFFERED,
            "caller stopped draining Readys"
        );
        q.push(m);
    }

    fn reset_randomized_election_timeout(&mut self) {
        let jitter = self.rng.below(self.election_tick as u64) as usize;
        self.randomized_election_timeout = self.election_tick + jitter;
    }

    fn reset(&mut self, term: u64) {
        if self.term != term {
            assert!(
                term > self.term,
                "term went back from {} to {term}",
                self.term
            );
            self.term = term;
            self.vote = 0;
        }
        self.leader = 0;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reset_randomized_election_timeout();
        self.lead_transferee = 0;
        self.lease_disabled = false;
        self.trk.reset_votes();
        let next = self.log.last_index() + 1;
        let persisted = self.log.persisted_index();
        let (id, max_n, max_b) = (
            self.id,
            self.trk.max_inflight_msgs,
            self.trk.max_inflight_bytes,
        );
        for (pid, pr) in self.trk.progress.iter_mut() {
            let learner = pr.is_learner;
            *pr = Progress::new(next, max_n, max_b);
            pr.is_learner = learner;
            if *pid == id {
                // Only what is durable here counts toward commit.
                pr.matched = persisted;
                pr.recent_active = true;
            }
        }
        self.pending_conf_index = 0;
        self.uncommitted.clear();
        self.uncommitted_bytes = 0;
        self.read_only.reset();
    }

    pub(crate) fn become_follower(&mut self, term: u64, leader: u64) {
        self.reset(term);
        self.leader = leader;
        self.role = Role::Follower;
    }

    fn become_pre_candidate(&mut self) {
        assert_ne!(
            self.role,
            Role::Leader,
            "leader cannot become pre-candidate"
        );
        // The term and vote stay: a pre-election changes nothing durable.
        self.trk.reset_votes();
        self.leader = 0;
        self.role = Role::PreCandidate;
    }

    fn become_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader, "leader cannot become candidate");
        self.reset(self.term + 1);
        self.vote = self.id;
        self.role = Role::Candidate;
    }

    fn become_leader(&mut self) {
        assert_ne!(self.role, Role::Follower, "follower cannot become leader");
        self.reset(self.term);
        self.leader = self.id;
        self.role = Role::Leader;
        if let Some(pr) = self.trk.progress.get_mut(&self.id) {
            pr.become_replicate();
            pr.next = self.log.last_index() + 1;
        }
        // A conf change may sit in the uncommitted tail; be conservative.
        self.pending_conf_index = self.log.last_index();
        // An entry of this term lets earlier-term entries commit (§5.4.2) and
        // makes read-index safe.
        let empty = crate::types::Entry::normal(bytes::Bytes::new());
        let appended = self.append_entries(vec![empty]);
        assert!(appended, "a new leader always accepts its empty entry");
    }

    /// Whether this node may campaign.
    pub(crate) fn promotable(&self) -> bool {
        self.trk
            .progress
            .get(&self.id)
            .is_some_and(|p| !p.is_learner)
            && self.log.unstable.snapshot.is_none()
    }

    pub fn tick(&mut self) {
        self.tick_count += 1;
        match self.role {
            Role::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_tick {
            self.election_elapsed = 0;
            if self.check_quorum {
                if !self.trk.quorum_active(self.id) {
                    // Without quorum contact another leader may exist: stop
                    // serving lease reads and accepting proposals.
                    self.become_follower(self.term, 0);
                    return;
                }
                let id = self.id;
                for (pid, pr) in self.trk.progress.iter_mut() {
                    pr.recent_active = *pid == id;
                }
            }
            // A transfer that did not finish within an election timeout is
            // abandoned so proposals flow again.
            if self.lead_transferee != 0 {
                self.lead_transferee = 0;
            }
        }
        if self.heartbeat_elapsed >= self.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            let round = self.read_only.new_round(self.tick_count);
            self.bcast_heartbeat(round);
        }
    }

    /// Starts an election if allowed.
    pub(crate) fn hup(&mut self, transfer: bool) {
        if self.role == Role::Leader || !self.promotable() {
            return;
        }
        // A node that has committed but not applied a conf change does not
        // know its own membership yet.
        if self.has_unapplied_conf_changes() {
            return;
        }
        let kind = if transfer {
            CampaignKind::Transfer
        } else if self.pre_vote {
            CampaignKind::PreElection
        } else {
            CampaignKind::Election
        };
        self.campaign(kind);
    }

    fn has_unapplied_conf_changes(&self) -> bool {
        let mut lo = self.log.applied + 1;
        let hi = self.log.committed + 1;
        while lo < hi {
            let Ok(ents) = self.log.slice(lo, hi, self.max_msg_bytes) else {
                return false;
            };
            if ents.iter().any(|e| e.kind == EntryKind::ConfChange) {
                return true;
            }
            lo += ents.len() as u64;
        }
        false
    }

    fn campaign(&mut self, kind: CampaignKind) {
        let (msg_kind, term) = if kind == CampaignKind::PreElection {
            self.become_pre_candidate();
            (MessageKind::PreVote, self.term + 1)
        } else {
            self.become_candidate();
            (MessageKind::Vote, self.term)
        };
        if self.poll(self.id, true) == VoteResult::Won {
            // A single voter wins at once.
            if kind == CampaignKind::PreElection {
                self.campaign(CampaignKind::Election);
            } else {
                self.become_leader();
            }
            return;
        }
        let (index, log_term) = (self.log.last_index(), self.log.last_term());
        let voters: Vec<u64> = self
            .trk
            .config
            .voters
            .ids()
            .into_iter()
            .filter(|&v| v != self.id)
            .collect();
        for to in voters {
            let mut m = Message::new(msg_kind, self.id, to, term);
            m.index = index;
            m.log_term = log_term;
            m.campaign_transfer = kind == CampaignKind::Transfer;
            self.send(m);
        }
    }

    fn poll(&mut self, id: u64, granted: bool) -> VoteResult {
        self.trk.record_vote(id, granted);
        self.trk.vote_result()
    }

    /// Whether a vote request must be ignored because a leader may hold a
    /// lease on this node: it heard from one within the election timeout,
    /// or (with lease reads) it has not been up for an election timeout and
    /// cannot know whether it granted a lease before restarting.
    pub(crate) fn in_leader_lease(&self) -> bool {
        if !self.check_quorum {
            return false;
        }
        let heard = self.leader != 0 && self.election_elapsed < self.election_tick;
        let booting = self.read_only_option == ReadOnlyOption::LeaseBased
            && self.tick_count < self.election_tick as u64;
        heard || booting || self.lease_promised()
    }

    /// With lease reads: whether this node acknowledged a leader within the
    /// last election timeout, whatever term it has moved to since. Until
    /// then that leader may serve reads counting on this node's vote, so
    /// no one else may have it.
    pub(crate) fn lease_promised(&self) -> bool {
        self.check_quorum
            && self.read_only_option == ReadOnlyOption::LeaseBased
            && self
                .leader_contact_tick
                .is_some_and(|t| self.tick_count < t + self.election_tick as u64)
    }

    /// Whether the leader's lease covers the current tick.
    pub(crate) fn lease_valid(&self) -> bool {
        let lease_ticks = self.election_tick as u64 * limits::LEASE_ELECTION_TIMEOUT_PERCENT / 100;
        !self.lease_disabled
            && self
                .read_only
                .quorum_ack_tick
                .is_some_and(|t| self.tick_count < t + lease_ticks)
    }

    pub(crate) fn disable_lease(&mut self) {
        self.lease_disabled = true;
    }

    pub(crate) fn tick_count(&self) -> u64 {
        self.tick_count
    }

    pub(crate) fn committed_entry_in_current_term(&self) -> bool {
        self.log.term_or_zero(self.log.committed) == self.term
    }

    /// The entries up to `index` with `term` are durable.
    pub fn on_persisted(&mut self, index: u64, term: u64) {
        let snap_matches = self
            .log
            .unstable
            .snapshot
            .as_ref()
            .is_some_and(|s| s.metadata.index == index && s.metadata.term == term);
        if snap_matches {
            self.log.unstable.stable_snap_to(index);
        }
        self.log.unstable.stable_to(index, term);
        if self.role == Role::Leader {
            let persisted = self.log.persisted_index();
            let grew = self
                .trk
                .progress
                .get_mut(&self.id)
                .is_some_and(|pr| pr.maybe_update(persisted));
            if grew && self.maybe_commit() {
                self.bcast_append();
            }
        }
    }

    /// The application applied everything up to `index`.
    pub fn on_applied(&mut self, index: u64) {
        self.log.applied_to(index);
        let cfg = &self.trk.config;
        if self.role == Role::Leader
            && cfg.auto_leave
            && cfg.voters.is_joint()
            && index >= self.pending_conf_index
        {
            // Leave the joint configuration on the application's behalf.
            let cc = crate::confchange::ConfChange::leave_joint();
            let e = crate::types::Entry {
                kind: EntryKind::ConfChange,
                ..crate::types::Entry::normal(cc.encode())
            };
            if self.append_entries(vec![e]) {
                self.pending_conf_index = self.log.last_index();
                self.bcast_append();
            }
        }
    }
}
