//! Membership changes: the request type, its entry encoding, and the pure
//! function that computes the next configuration.
//!
//! A change with a single voter addition or removal is applied directly
//! ("simple"). Anything larger goes through joint consensus: the cluster
//! first moves to a joint configuration in which decisions need a majority of
//! both the old and the new voters, then leaves it for the new one.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::limits;
use crate::tracker::TrackerConfig;

/// One membership operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChangeKind {
    /// Make the node a voter (promotes a learner).
    AddNode,
    /// Make the node a learner (demotes a voter, via joint consensus).
    AddLearner,
    /// Remove the node.
    RemoveNode,
}

/// One operation on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfChangeSingle {
    /// What to do.
    pub kind: ConfChangeKind,
    /// To which node.
    pub node_id: u64,
}

/// How a change moves through joint consensus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChangeTransition {
    /// Simple if the change allows it; otherwise joint, left automatically.
    Auto,
    /// Always joint, left automatically once the entering entry applies.
    JointImplicit,
    /// Always joint; the application proposes an empty change to leave.
    JointExplicit,
}

/// A membership change request. An empty `changes` leaves a joint
/// configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfChange {
    /// Joint-consensus behaviour.
    pub transition: ConfChangeTransition,
    /// Operations, applied in order.
    pub changes: Vec<ConfChangeSingle>,
}

const ENCODING_VERSION: u8 = 1;
const SINGLE_BYTES: usize = 9;

impl ConfChange {
    /// A simple change of one node.
    pub fn single(kind: ConfChangeKind, node_id: u64) -> Self {
        ConfChange {
            transition: ConfChangeTransition::Auto,
            changes: vec![ConfChangeSingle { kind, node_id }],
        }
    }

    /// The request that leaves a joint configuration.
    pub fn leave_joint() -> Self {
        ConfChange {
            transition: ConfChangeTransition::Auto,
            changes: Vec::new(),
        }
    }

    /// Whether this leaves a joint configuration.
    pub fn is_leave_joint(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether this enters a joint configuration (and whether it is left
    /// automatically).
    pub fn enters_joint(&self) -> Option<bool> {
        let joint = self.transition != ConfChangeTransition::Auto || self.changes.len() > 1;
        joint.then_some(self.transition != ConfChangeTransition::JointExplicit)
    }

    /// Encodes as an entry payload:
    /// `version:u8 transition:u8 count:u32le (kind:u8 node_id:u64le)*count`.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(6 + SINGLE_BYTES * self.changes.len());
        b.put_u8(ENCODING_VERSION);
        b.put_u8(match self.transition {
            ConfChangeTransition::Auto => 0,
            ConfChangeTransition::JointImplicit => 1,
            ConfChangeTransition::JointExplicit => 2,
        });
        b.put_u32_le(self.changes.len() as u32);
        for c in &self.changes {
            b.put_u8(match c.kind {
                ConfChangeKind::AddNode => 0,
                ConfChangeKind::AddLearner => 1,
                ConfChangeKind::RemoveNode => 2,
            });
            b.put_u64_le(c.node_id);
        }
        b.freeze()
    }

    /// Decodes an entry payload produced by [`ConfChange::encode`].
    pub fn decode(data: &[u8]) -> Result<Self> {
        let bad = Error::ConfChangeMalformed;
        if data.len() < 6 {
            return Err(bad("truncated header"));
        }
        if data[0] != ENCODING_VERSION {
            return Err(bad("unknown version"));
        }
        let transition = match data[1] {
            0 => ConfChangeTransition::Auto,
            1 => ConfChangeTransition::JointImplicit,
            2 => ConfChangeTransition::JointExplicit,
            _ => return Err(bad("unknown transition")),
        };
        let n = u32::from_le_bytes([data[2], data[3], data[4], data[5]]) as usize;
        if n > limits::MAX_CONF_CHANGES {
            return Err(bad("too many changes"));
        }
        let body = &data[6..];
        if body.len() != n * SINGLE_BYTES {
            return Err(bad("length does not match count"));
        }
        let mut changes = Vec::with_capacity(n);
        for c in body.chunks_exact(SINGLE_BYTES) {
            let kind = match c[0] {
                0 => ConfChangeKind::AddNode,
                1 => ConfChangeKind::AddLearner,
                2 => ConfChangeKind::RemoveNode,
                _ => return Err(bad("unknown change kind")),
            };
            let mut id = [0u8; 8];
            id.copy_from_slice(&c[1..]);
            changes.push(ConfChangeSingle {
                kind,
                node_id: u64::from_le_bytes(id),
            });
        }
        Ok(ConfChange {
            transition,
            changes,
        })
    }
}

fn invalid(s: &str) -> Error {
    Error::ConfChangeInvalid(s.to_string())
}

/// The configuration after applying `cc` to `cfg`.
pub(crate) fn next_config(cfg: &TrackerConfig, cc: &ConfChange) -> Result<TrackerConfig> {
    if cc.is_leave_joint() {
        return leave_joint(cfg);
    }
    if cfg.voters.is_joint() {
        return Err(invalid("config is already joint"));
    }
    let mut next = cfg.clone();
    match cc.enters_joint() {
        Some(auto_leave) => {
            next.voters.outgoing = next.voters.incoming.clone();
            apply_changes(&mut next, &cc.changes)?;
            next.auto_leave = auto_leave;
        }
        None => {
            apply_changes(&mut next, &cc.changes)?;
            let diff = cfg
                .voters
                .incoming
                .symmetric_difference(&next.voters.incoming)
                .count();
            if diff > 1 {
                return Err(invalid(
                    "more than one voter changed without entering joint config",
                ));
            }
        }
    }
    if next.ids().len() > limits::MAX_MEMBERS {
        return Err(invalid("too many members"));
    }
    next.assert_invariants();
    Ok(next)
}

fn leave_joint(cfg: &TrackerConfig) -> Result<TrackerConfig> {
    if !cfg.voters.is_joint() {
        return Err(invalid("can't leave a non-joint config"));
    }
    let mut next = cfg.clone();
    let learners_next = std::mem::take(&mut next.learners_next);
    next.learners.extend(learners_next);
    next.voters.outgoing.clear();
    next.auto_leave = false;
    next.assert_invariants();
    Ok(next)
}

fn apply_changes(cfg: &mut TrackerConfig, changes: &[ConfChangeSingle]) -> Result<()> {
    for c in changes {
        let id = c.node_id;
        if id == 0 {
            continue;
        }
        match c.kind {
            ConfChangeKind::AddNode => {
                cfg.learners.remove(&id);
                cfg.learners_next.remove(&id);
                cfg.voters.incoming.insert(id);
            }
            ConfChangeKind::AddLearner => {
                cfg.voters.incoming.remove(&id);
                cfg.learners.remove(&id);
                cfg.learners_next.remove(&id);
                // A node still voting in the outgoing half cannot be a learner
                // yet: it becomes one when the joint config is left.
                if cfg.voters.outgoing.contains(&id) {
                    cfg.learners_next.insert(id);
                } else {
                    cfg.learners.insert(id);
                }
            }
            ConfChangeKind::RemoveNode => {
                cfg.voters.incoming.remove(&id);
                cfg.learners.remove(&id);
                cfg.learners_next.remove(&id);
            }
        }
    }
    if cfg.voters.incoming.is_empty() {
        return Err(invalid("removed all voters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::JointConfig;

    fn cfg(voters: &[u64], learners: &[u64]) -> TrackerConfig {
        TrackerConfig {
            voters: JointConfig {
                incoming: voters.iter().copied().collect(),
                outgoing: Default::default(),
            },
            learners: learners.iter().copied().collect(),
            ..TrackerConfig::default()
        }
    }

    fn one(kind: ConfChangeKind, id: u64) -> ConfChangeSingle {
        ConfChangeSingle { kind, node_id: id }
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let cc = ConfChange {
            transition: ConfChangeTransition::JointExplicit,
            changes: vec![
                one(ConfChangeKind::AddNode, 4),
                one(ConfChangeKind::RemoveNode, 1),
            ],
        };
        assert_eq!(ConfChange::decode(&cc.encode()), Ok(cc.clone()));
        let bytes = cc.encode();
        assert!(ConfChange::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(ConfChange::decode(&[9, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn simple_change_allows_one_voter_only() {
        let c = cfg(&[1, 2, 3], &[]);
        let two = ConfChange {
            transition: ConfChangeTransition::Auto,
            changes: vec![
                one(ConfChangeKind::AddNode, 4),
                one(ConfChangeKind::AddNode, 5),
            ],
        };
        // Two voters at once with Auto enters joint instead.
        let j = next_config(&c, &two).unwrap();
        assert!(j.voters.is_joint() && j.auto_leave);
        let n = next_config(&c, &ConfChange::single(ConfChangeKind::AddLearner, 4)).unwrap();
        assert_eq!(n.learners.iter().copied().collect::<Vec<_>>(), vec![4]);
        let bad = ConfChange {
            transition: ConfChangeTransition::Auto,
            changes: vec![one(ConfChangeKind::AddNode, 4)],
        };
        assert!(next_config(&j, &bad).is_err(), "already joint");
    }

    #[test]
    fn demoting_a_voter_in_joint_goes_through_learners_next() {
        let c = cfg(&[1, 2, 3], &[]);
        let cc = ConfChange {
            transition: ConfChangeTransition::JointExplicit,
            changes: vec![
                one(ConfChangeKind::AddLearner, 3),
                one(ConfChangeKind::AddNode, 4),
            ],
        };
        let j = next_config(&c, &cc).unwrap();
        assert_eq!(j.learners_next.iter().copied().collect::<Vec<_>>(), vec![3]);
        assert!(!j.auto_leave);
        let out = next_config(&j, &ConfChange::leave_joint()).unwrap();
        assert_eq!(out.learners.iter().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(
            out.voters.incoming.iter().copied().collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        assert!(next_config(&out, &ConfChange::leave_joint()).is_err());
        let all = ConfChange::single(ConfChangeKind::RemoveNode, 1);
        assert!(next_config(&cfg(&[1], &[]), &all).is_err());
    }
}
