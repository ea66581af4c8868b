//! Applying membership changes to the running node.

use std::collections::BTreeSet;

use super::Raft;
use crate::confchange::{next_config, ConfChange};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::storage::Storage;
use crate::tracker::TrackerConfig;
use crate::types::{ConfState, Entry, Role};

impl<S: Storage> Raft<S> {
    /// Rules checked when a conf change is proposed at the leader: one at a
    /// time, and only transitions the current configuration allows.
    pub(crate) fn check_conf_change_proposal(&self, e: &Entry) -> Result<()> {
        let cc = ConfChange::decode(&e.data)?;
        if self.pending_conf_index > self.log.applied {
            return Err(Error::ProposalDropped("possible unapplied conf change"));
        }
        let joint = self.trk.config.voters.is_joint();
        if joint && !cc.is_leave_joint() {
            return Err(Error::ProposalDropped(
                "must transition out of joint config first",
            ));
        }
        if !joint && cc.is_leave_joint() {
            return Err(Error::ProposalDropped(
                "not in joint state; refusing empty conf change",
            ));
        }
        // Reject now what would fail when applied.
        next_config(&self.trk.config, &cc)?;
        Ok(())
    }

    /// Applies a committed conf change; returns the new membership.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState> {
        let next = next_config(&self.trk.config, cc)?;
        Ok(self.switch_to_config(next))
    }

    /// Installs membership from a snapshot or from storage at start-up.
    pub(crate) fn restore_conf_state(&mut self, cs: &ConfState) {
        let cfg = TrackerConfig {
            voters: crate::quorum::JointConfig {
                incoming: cs.voters.iter().copied().collect(),
                outgoing: cs.voters_outgoing.iter().copied().collect(),
            },
            learners: cs.learners.iter().copied().collect(),
            learners_next: cs.learners_next.iter().copied().collect(),
            auto_leave: cs.auto_leave,
        };
        cfg.assert_invariants();
        self.trk.progress.clear();
        self.switch_to_config(cfg);
    }

    fn switch_to_config(&mut self, cfg: TrackerConfig) -> ConfState {
        let ids: BTreeSet<u64> = cfg.ids();
        let next = self.log.last_index() + 1;
        let (max_n, max_b) = (self.trk.max_inflight_msgs, self.trk.max_inflight_bytes);
        self.trk.progress.retain(|id, _| ids.contains(id));
        for id in &ids {
            let pr = self.trk.progress.entry(*id).or_insert_with(|| {
                let mut p = Progress::new(next, max_n, max_b);
                // A new member gets a full election timeout before it counts
                // against check-quorum.
                p.recent_active = true;
                p
            });
            pr.is_learner = cfg.learners.contains(id);
        }
        self.trk.config = cfg;
        let cs = self.trk.config.conf_state();
        let me = self.trk.progress.get(&self.id);
        self.is_learner = me.is_some_and(|p| p.is_learner);
        if me.is_none() || self.is_learner {
            if self.role == Role::Leader {
                // Removed or demoted: stop leading. The remaining voters
                // elect a new leader after an election timeout.
                self.become_follower(self.term, 0);
            }
            return cs;
        }
        if self.role != Role::Leader || cs.voters.is_empty() {
            return cs;
        }
        // The quorum changed: the commit index may move, and new members
        // need their first Append.
        if self.maybe_commit() {
            self.bcast_append();
        } else {
            let peers: Vec<u64> = self
                .trk
                .progress
                .keys()
                .copied()
                .filter(|&i| i != self.id)
                .collect();
            for id in peers {
                self.maybe_send_append(id, false);
            }
        }
        if self.lead_transferee != 0 && !self.trk.is_voter(self.lead_transferee) {
            self.lead_transferee = 0;
        }
        cs
    }
}
