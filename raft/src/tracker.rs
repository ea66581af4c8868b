//! The leader's bookkeeping: membership, per-member progress and votes.

use std::collections::{BTreeMap, BTreeSet};

use crate::progress::Progress;
use crate::quorum::{JointConfig, VoteResult};
use crate::types::ConfState;

/// Membership as the tracker sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Voters (joint while `voters.outgoing` is non-empty).
    pub voters: JointConfig,
    /// Learners; never overlaps any voter set.
    pub learners: BTreeSet<u64>,
    /// Outgoing voters that become learners when the joint config is left.
    pub learners_next: BTreeSet<u64>,
    /// Leave the joint configuration automatically.
    pub auto_leave: bool,
}

impl TrackerConfig {
    /// The membership as a [`ConfState`].
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.iter().copied().collect(),
            learners: self.learners.iter().copied().collect(),
            voters_outgoing: self.voters.outgoing.iter().copied().collect(),
            learners_next: self.learners_next.iter().copied().collect(),
            auto_leave: self.auto_leave,
        }
    }

    /// Every member id.
    pub fn ids(&self) -> BTreeSet<u64> {
        let mut ids = self.voters.ids();
        ids.extend(self.learners.iter().copied());
        ids.extend(self.learners_next.iter().copied());
        ids
    }

    pub(crate) fn assert_invariants(&self) {
        for id in &self.learners {
            assert!(!self.voters.contains(*id), "{id} is a learner and a voter");
        }
        for id in &self.learners_next {
            assert!(
                self.voters.outgoing.contains(id),
                "learner_next {id} is not an outgoing voter"
            );
            assert!(
                !self.voters.incoming.contains(id),
                "learner_next {id} is an incoming voter"
            );
        }
        assert!(self.voters.is_joint() || (self.learners_next.is_empty() && !self.auto_leave));
    }
}

/// Membership, progress of every member, and votes of the current election.
#[derive(Clone, Debug)]
pub(crate) struct ProgressTracker {
    pub config: TrackerConfig,
    pub progress: BTreeMap<u64, Progress>,
    pub votes: BTreeMap<u64, bool>,
    pub max_inflight_msgs: usize,
    pub max_inflight_bytes: u64,
}

impl ProgressTracker {
    pub fn new(max_inflight_msgs: usize, max_inflight_bytes: u64) -> Self {
        ProgressTracker {
            config: TrackerConfig::default(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            max_inflight_msgs,
            max_inflight_bytes,
        }
    }

    /// Highest index a quorum of voters has durably acknowledged.
    pub fn committed(&self) -> u64 {
        let p = &self.progress;
        self.config
            .voters
            .committed(|id| p.get(&id).map_or(0, |pr| pr.matched))
    }

    pub fn reset_votes(&mut self) {
        self.votes.clear();
    }

    pub fn record_vote(&mut self, id: u64, granted: bool) {
        self.votes.entry(id).or_insert(granted);
    }

    pub fn vote_result(&self) -> VoteResult {
        self.config.voters.vote_result(&self.votes)
    }

    /// Whether the voters marked recently active form a quorum. `me` always
    /// counts as active.
    pub fn quorum_active(&self, me: u64) -> bool {
        let votes: BTreeMap<u64, bool> = self
            .progress
            .iter()
            .filter(|(id, _)| self.config.voters.contains(**id))
            .map(|(id, pr)| (*id, *id == me || pr.recent_active))
            .collect();
        self.config.voters.vote_result(&votes) == VoteResult::Won
    }

    pub fn is_voter(&self, id: u64) -> bool {
        self.config.voters.contains(id)
    }

    /// A single voter that is `id`: it decides alone.
    pub fn is_singleton(&self, id: u64) -> bool {
        !self.config.voters.is_joint()
            && self.config.voters.incoming.len() == 1
            && self.config.voters.incoming.contains(&id)
    }
}
