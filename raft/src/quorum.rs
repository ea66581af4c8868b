//! Quorum arithmetic over majority and joint (two-majority) configurations.

use std::collections::{BTreeMap, BTreeSet};

/// Outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet: some voters have not answered.
    Pending,
    /// Lost: a quorum can no longer be reached.
    Lost,
    /// Won: a quorum granted.
    Won,
}

/// A set of voters deciding by simple majority.
pub type MajorityConfig = BTreeSet<u64>;

/// The highest index acknowledged by a majority of `voters`, given each
/// voter's acknowledged index. An empty configuration imposes no constraint
/// (`u64::MAX`) so that a joint configuration with an empty outgoing half
/// behaves like its incoming half.
pub fn majority_committed(voters: &MajorityConfig, acked: impl Fn(u64) -> u64) -> u64 {
    if voters.is_empty() {
        return u64::MAX;
    }
    let mut idx: Vec<u64> = voters.iter().map(|&id| acked(id)).collect();
    idx.sort_unstable();
    // Sorted ascending, the value at position n - (n/2 + 1) is acknowledged
    // by at least a majority (itself and everything above it).
    let n = idx.len();
    idx[n - (n / 2 + 1)]
}

/// Counts votes of a majority configuration. `votes` maps voters that
/// answered to whether they granted.
pub fn majority_vote(voters: &MajorityConfig, votes: &BTreeMap<u64, bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut missing) = (0, 0);
    for id in voters {
        match votes.get(id) {
            Some(true) => yes += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let q = voters.len() / 2 + 1;
    if yes >= q {
        VoteResult::Won
    } else if yes + missing >= q {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// Incoming and outgoing voter sets; outgoing is empty unless joint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JointConfig {
    /// The configuration being moved to (or the only one).
    pub incoming: MajorityConfig,
    /// The configuration being left (empty when not joint).
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// Committed index: what both halves agree on.
    pub fn committed(&self, acked: impl Fn(u64) -> u64 + Copy) -> u64 {
        let i = majority_committed(&self.incoming, acked);
        let o = majority_committed(&self.outgoing, acked);
        i.min(o)
    }

    /// Vote result: both halves must win.
    pub fn vote_result(&self, votes: &BTreeMap<u64, bool>) -> VoteResult {
        let i = majority_vote(&self.incoming, votes);
        let o = majority_vote(&self.outgoing, votes);
        match (i, o) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }

    /// Every voter of either half.
    pub fn ids(&self) -> BTreeSet<u64> {
        self.incoming.union(&self.outgoing).copied().collect()
    }

    /// Whether `id` votes in either half.
    pub fn contains(&self, id: u64) -> bool {
        self.incoming.contains(&id) || self.outgoing.contains(&id)
    }

    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> MajorityConfig {
        ids.iter().copied().collect()
    }

    #[test]
    fn majority_commit_index() {
        let acked = |id: u64| [0, 5, 3, 9, 1, 7][id as usize];
        assert_eq!(majority_committed(&set(&[1]), acked), 5);
        assert_eq!(majority_committed(&set(&[1, 2]), acked), 3);
        assert_eq!(majority_committed(&set(&[1, 2, 3]), acked), 5);
        assert_eq!(majority_committed(&set(&[1, 2, 3, 4]), acked), 3);
        assert_eq!(majority_committed(&set(&[1, 2, 3, 4, 5]), acked), 5);
    }

    #[test]
    fn joint_commit_needs_both_halves() {
        let acked = |id: u64| [0, 10, 10, 10, 1, 1][id as usize];
        let j = JointConfig {
            incoming: set(&[1, 4, 5]),
            outgoing: set(&[1, 2, 3]),
        };
        assert_eq!(j.committed(acked), 1);
        let j = JointConfig {
            incoming: set(&[1, 2, 5]),
            outgoing: set(&[1, 2, 3]),
        };
        assert_eq!(j.committed(acked), 10);
    }

    #[test]
    fn votes_pending_won_lost() {
        let c = set(&[1, 2, 3]);
        let mut v = BTreeMap::new();
        v.insert(1, true);
        assert_eq!(majority_vote(&c, &v), VoteResult::Pending);
        v.insert(2, false);
        assert_eq!(majority_vote(&c, &v), VoteResult::Pending);
        v.insert(3, false);
        assert_eq!(majority_vote(&c, &v), VoteResult::Lost);
        v.insert(3, true);
        assert_eq!(majority_vote(&c, &v), VoteResult::Won);
        let j = JointConfig {
            incoming: set(&[1, 2, 3]),
            outgoing: set(&[1, 4, 5]),
        };
        assert_eq!(j.vote_result(&v), VoteResult::Pending);
        v.insert(4, false);
        v.insert(5, false);
        assert_eq!(j.vote_result(&v), VoteResult::Lost);
    }
}
