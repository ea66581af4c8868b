//! The member table: who is in the cluster, replicated through the log.
//!
//! The table changes only when a log entry is applied, so every member
//! holds the same table at the same applied index:
//!
//! - `MemberAdd` is logged as the client's request (a normal entry). When
//!   it applies, every member derives the same new id from the peer URLs,
//!   the cluster id and the entry's index (an index is never reused, so an
//!   id is never reused; an id that collides with a present or removed
//!   member is re-derived), and *stages* the member. The member that took
//!   the request then proposes the Raft conf change (`AddNode` or
//!   `AddLearner`); when that applies, the staged member joins the table.
//! - `MemberRemove` and `MemberPromote` are conf changes (`RemoveNode`,
//!   `AddNode` of a learner) and change the table when they apply.
//! - `MemberUpdate` is a normal entry that replaces the peer URLs.
//!
//! Raft's conf-change entries carry only ids; the staged record is what
//! gives an added id its name and peer URLs. The table (with the ids ever
//! removed) is saved in every snapshot (`super::snapshot::SnapMeta`) and
//! rebuilt on restart from the snapshot plus the WAL entries after it,
//! which replay these same steps.

use std::collections::{BTreeMap, BTreeSet};

use cairn_raft::{ConfChange, ConfChangeKind, ConfState};
use cairn_wire::rpc;

use crate::limits;

/// One member as the table knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    /// Empty for a member added at runtime until it is known by name.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
}

/// Why a membership request is refused; the strings are etcd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("etcdserver: peerURL exists")]
    PeerUrlExists,
    #[error("etcdserver: member not found")]
    NotFound,
    #[error("etcdserver: ID removed")]
    Removed,
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: member peer urls not provided")]
    NoPeerUrls,
    #[error("etcdserver: member peer urls too long")]
    PeerUrlsTooLong,
    #[error("etcdserver: too many members in cluster")]
    TooManyMembers,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStarted,
}

impl MemberError {
    /// The status code etcd's gRPC layer gives this error.
    pub fn code(&self) -> rpc::ErrorCode {
        match self {
            MemberError::PeerUrlExists => rpc::ErrorCode::FailedPrecondition,
            MemberError::NotFound | MemberError::Removed => rpc::ErrorCode::NotFound,
            MemberError::NotLearner
            | MemberError::LearnerNotReady
            | MemberError::TooManyLearners
            | MemberError::NotLeader
            | MemberError::NotEnoughStarted => rpc::ErrorCode::FailedPrecondition,
            MemberError::Unhealthy => rpc::ErrorCode::Unavailable,
            MemberError::NoPeerUrls | MemberError::PeerUrlsTooLong => {
                rpc::ErrorCode::InvalidArgument
            }
            MemberError::TooManyMembers => rpc::ErrorCode::FailedPrecondition,
        }
    }
}

/// The replicated member table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    table: BTreeMap<u64, Member>,
    /// Ids that were members once; never given out again.
    removed: BTreeSet<u64>,
    /// Added by a `MemberAdd` entry, waiting for their conf change.
    staged: BTreeMap<u64, Member>,
}

/// FNV-1a over the parts, as `super::meta` derives ids; 0 is "no member".
/// Peer URLs must fit the member table's bounds (`limits`).
fn check_urls(peer_urls: &[String]) -> Result<(), MemberError> {
    if peer_urls.is_empty() {
        return Err(MemberError::NoPeerUrls);
    }
    let bytes: usize = peer_urls.iter().map(String::len).sum();
    if peer_urls.len() > limits::MEMBER_PEER_URLS_MAX || bytes > limits::MEMBER_PEER_URLS_BYTES_MAX
    {
        return Err(MemberError::PeerUrlsTooLong);
    }
    Ok(())
}

fn derive(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

impl Members {
    /// The table of a cluster bootstrapped from `--initial-cluster`.
    pub fn initial(members: &[(u64, String, Vec<String>)]) -> Members {
        let table = members
            .iter()
            .map(|(id, name, urls)| {
                (
                    *id,
                    Member {
                        id: *id,
                        name: name.clone(),
                        peer_urls: urls.clone(),
                        is_learner: false,
                    },
                )
            })
            .collect();
        Members {
            table,
            ..Members::default()
        }
    }

    pub fn get(&self, id: u64) -> Option<&Member> {
        self.table.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.table.values()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Raft's membership for this table.
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters().collect(),
            learners: self
                .table
                .values()
                .filter(|m| m.is_learner)
                .map(|m| m.id)
                .collect(),
            ..ConfState::default()
        }
    }

    pub fn voters(&self) -> impl Iterator<Item = u64> + '_ {
        self.table.values().filter(|m| !m.is_learner).map(|m| m.id)
    }

    /// The member whose peer URLs include one of `urls`.
    pub fn by_peer_url(&self, urls: &[String]) -> Option<&Member> {
        self.table
            .values()
            .chain(self.staged.values())
            .find(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    }

    /// Checks a `MemberAdd` against the table before it is proposed and
    /// again when it applies. `started` counts the voters heard from
    /// recently (the leader's view), for etcd's strict-reconfig check.
    pub fn check_add(
        &self,
        peer_urls: &[String],
        is_learner: bool,
        started: Option<usize>,
    ) -> Result<(), MemberError> {
        check_urls(peer_urls)?;
        if self.table.len() >= limits::MEMBERS_MAX {
            return Err(MemberError::TooManyMembers);
        }
        if self
            .table
            .values()
            .any(|m| m.peer_urls.iter().any(|u| peer_urls.contains(u)))
        {
            return Err(MemberError::PeerUrlExists);
        }
        if is_learner {
            let learners = self.table.values().filter(|m| m.is_learner).count();
            if learners >= limits::LEARNERS_MAX {
                return Err(MemberError::TooManyLearners);
            }
        } else if let Some(started) = started {
            // etcd refuses a voter whose addition would leave fewer started
            // voters than the new quorum needs.
            // Growing a lone member to two is allowed, as etcd allows it
            // (the way back from restoring a one-member cluster).
            let voters = self.voters().count() + 1;
            let lone = voters == 2 && started == 1;
            if !lone && started < voters / 2 + 1 {
                return Err(MemberError::Unhealthy);
            }
        }
        Ok(())
    }

    /// Whether `id` was removed from the cluster.
    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    /// Checks a `MemberRemove`. `started_others` counts the voters other
    /// than `id` heard from recently (the leader's view): removing a voter
    /// must leave a quorum of the remaining voters running.
    pub fn check_remove(&self, id: u64, started_others: Option<usize>) -> Result<(), MemberError> {
        let Some(m) = self.table.get(&id) else {
            return Err(if self.removed.contains(&id) {
                MemberError::Removed
            } else {
                MemberError::NotFound
            });
        };
        if let (false, Some(started)) = (m.is_learner, started_others) {
            let voters = self.voters().count() - 1;
            if voters > 0 && started < voters / 2 + 1 {
                return Err(MemberError::NotEnoughStarted);
            }
        }
        Ok(())
    }

    /// Checks a `MemberPromote` at the leader: `matched` is the learner's
    /// replicated index, `last` the leader's last index.
    pub fn check_promote(&self, id: u64, matched: u64, last: u64) -> Result<(), MemberError> {
        let m = self.table.get(&id).ok_or(MemberError::NotFound)?;
        if !m.is_learner {
            return Err(MemberError::NotLearner);
        }
        // etcd: in sync when the learner has 90% of the leader's log.
        if matched.saturating_mul(100) < last.saturating_mul(limits::LEARNER_READY_PERCENT) {
            return Err(MemberError::LearnerNotReady);
        }
        Ok(())
    }

    /// Applies a `MemberAdd` entry: derives the new id and stages the
    /// member. Deterministic on every member.
    pub fn stage_add(
        &mut self,
        cluster_id: u64,
        index: u64,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<u64, MemberError> {
        self.check_add(&peer_urls, is_learner, None)?;
        let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
        urls.sort_unstable();
        let mut salt = 0u64;
        let id = loop {
            let cluster = cluster_id.to_le_bytes();
            let at = index.to_le_bytes();
            let s = salt.to_le_bytes();
            let mut parts: Vec<&[u8]> = urls.iter().map(|u| u.as_bytes()).collect();
            parts.extend([&cluster[..], &at[..], &s[..]]);
            let id = derive(&parts);
            if !self.table.contains_key(&id)
                && !self.removed.contains(&id)
                && !self.staged.contains_key(&id)
            {
                break id;
            }
            salt += 1;
        };
        // Bounded: a stage whose conf change never came (refused, or the
        // proposer failed) is dropped once newer ones crowd it out.
        while self.staged.len() >= limits::STAGED_MEMBERS_MAX {
            self.staged.pop_first();
        }
        self.staged.insert(
            id,
            Member {
                id,
                name: String::new(),
                peer_urls,
                is_learner,
            },
        );
        Ok(id)
    }

    /// The conf change that completes a staged add.
    pub fn add_conf_change(&self, id: u64) -> Option<ConfChange> {
        let m = self.staged.get(&id)?;
        let kind = if m.is_learner {
            ConfChangeKind::AddLearner
        } else {
            ConfChangeKind::AddNode
        };
        Some(ConfChange::single(kind, id))
    }

    /// Applies a `MemberUpdate` entry.
    pub fn update(&mut self, id: u64, peer_urls: Vec<String>) -> Result<(), MemberError> {
        check_urls(&peer_urls)?;
        if self
            .table
            .values()
            .any(|m| m.id != id && m.peer_urls.iter().any(|u| peer_urls.contains(u)))
        {
            return Err(MemberError::PeerUrlExists);
        }
        let m = self.table.get_mut(&id).ok_or(MemberError::NotFound)?;
        m.peer_urls = peer_urls;
        Ok(())
    }

    /// Applies a committed conf change to the table (after Raft accepted
    /// it). Returns the ids removed by it.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Vec<u64> {
        let mut removed = Vec::new();
        for c in &cc.changes {
            let id = c.node_id;
            match c.kind {
                ConfChangeKind::AddNode | ConfChangeKind::AddLearner => {
                    let learner = c.kind == ConfChangeKind::AddLearner;
                    if let Some(m) = self.table.get_mut(&id) {
                        m.is_learner = learner;
                    } else {
                        let mut m = self.staged.remove(&id).unwrap_or(Member {
                            id,
                            name: String::new(),
                            peer_urls: Vec::new(),
                            is_learner: learner,
                        });
                        m.is_learner = learner;
                        self.table.insert(id, m);
                    }
                }
                ConfChangeKind::RemoveNode => {
                    self.table.remove(&id);
                    self.staged.remove(&id);
                    self.removed.insert(id);
                    while self.removed.len() > limits::REMOVED_MEMBER_IDS_MAX {
                        self.removed.pop_first();
                    }
                    removed.push(id);
                }
            }
        }
        removed
    }

    /// Names a member, from the entry it logs once it runs (until then
    /// it has the empty name etcd shows for a member not yet started).
    pub fn set_name(&mut self, id: u64, name: &str) {
        if name.len() > limits::MEMBER_NAME_BYTES_MAX {
            return;
        }
        if let Some(m) = self.table.get_mut(&id) {
            m.name = name.to_string();
        }
    }

    /// Encodes for a snapshot's metadata (little-endian):
    /// `n_members:u32 (id:u64 learner:u8 name urls)* n_removed:u32 id:u64*
    /// n_staged:u32 (member)*`, strings as `len:u16 bytes`, URL lists as
    /// `n:u16 string*`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn put_str(out: &mut Vec<u8>, s: &str) {
            let n = u16::try_from(s.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&s.as_bytes()[..usize::from(n)]);
        }
        fn put_member(out: &mut Vec<u8>, m: &Member) {
            out.extend_from_slice(&m.id.to_le_bytes());
            out.push(u8::from(m.is_learner));
            put_str(out, &m.name);
            let n = u16::try_from(m.peer_urls.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&n.to_le_bytes());
            for u in m.peer_urls.iter().take(usize::from(n)) {
                put_str(out, u);
            }
        }
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        out.extend_from_slice(&count(self.table.len()));
        for m in self.table.values() {
            put_member(out, m);
        }
        out.extend_from_slice(&count(self.removed.len()));
        for id in &self.removed {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out.extend_from_slice(&count(self.staged.len()));
        for m in self.staged.values() {
            put_member(out, m);
        }
    }

    /// Decodes what [`Members::encode`] wrote; `b` must hold exactly that.
    pub fn decode(b: &[u8]) -> Result<Members, String> {
        let mut r = Reader { b, at: 0 };
        let mut members = Members::default();
        for _ in 0..r.u32()? {
            let m = r.member()?;
            members.table.insert(m.id, m);
        }
        for _ in 0..r.u32()? {
            members.removed.insert(r.u64()?);
        }
        for _ in 0..r.u32()? {
            let m = r.member()?;
            members.staged.insert(m.id, m);
        }
        if r.at != b.len() {
            return Err("trailing bytes after the member table".into());
        }
        Ok(members)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| "member table is truncated".to_string())?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "member name is not UTF-8".into())
    }
    fn member(&mut self) -> Result<Member, String> {
        let id = self.u64()?;
        let is_learner = self.take(1)?[0] == 1;
        let name = self.string()?;
        let n = self.u16()?;
        let peer_urls = (0..n).map(|_| self.string()).collect::<Result<_, _>>()?;
        Ok(Member {
            id,
            name,
            peer_urls,
            is_learner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(u: &str) -> Vec<String> {
        vec![u.to_string()]
    }

    fn three() -> Members {
        Members::initial(&[
            (1, "a".into(), urls("http://a:2380")),
            (2, "b".into(), urls("http://b:2380")),
            (3, "c".into(), urls("http://c:2380")),
        ])
    }

    #[test]
    fn add_stages_then_conf_change_joins_with_a_fresh_id() {
        let mut m = three();
        assert_eq!(
            m.check_add(&urls("http://a:2380"), false, None),
            Err(MemberError::PeerUrlExists)
        );
        let id = m.stage_add(9, 40, urls("http://d:2380"), true).unwrap();
        assert!(m.get(id).is_none(), "staged, not yet a member");
        let cc = m.add_conf_change(id).unwrap();
        assert_eq!(cc, ConfChange::single(ConfChangeKind::AddLearner, id));
        m.apply_conf_change(&cc);
        assert!(m.get(id).unwrap().is_learner);
        assert_eq!(m.conf_state().learners, vec![id]);
        assert_eq!(m.conf_state().voters, vec![1, 2, 3]);

        // Promote: refused while behind, accepted when in sync.
        assert_eq!(
            m.check_promote(id, 10, 100),
            Err(MemberError::LearnerNotReady)
        );
        assert_eq!(m.check_promote(1, 100, 100), Err(MemberError::NotLearner));
        assert_eq!(m.check_promote(id, 95, 100), Ok(()));
        m.apply_conf_change(&ConfChange::single(ConfChangeKind::AddNode, id));
        assert_eq!(m.voters().count(), 4);

        // Removed ids are never handed out again, even for the same URLs
        // at the same index.
        m.apply_conf_change(&ConfChange::single(ConfChangeKind::RemoveNode, id));
        assert_eq!(m.check_remove(id, None), Err(MemberError::Removed));
        assert_eq!(m.check_remove(77, None), Err(MemberError::NotFound));
        let again = m.stage_add(9, 40, urls("http://d:2380"), true).unwrap();
        assert_ne!(again, id);
    }

    #[test]
    fn strict_reconfig_refuses_a_voter_the_cluster_cannot_carry() {
        let m = three();
        // 4 voters need 3 started; only 2 are.
        assert_eq!(
            m.check_add(&urls("http://d:2380"), false, Some(2)),
            Err(MemberError::Unhealthy)
        );
        assert_eq!(m.check_add(&urls("http://d:2380"), false, Some(3)), Ok(()));
        assert_eq!(m.check_add(&urls("http://d:2380"), true, Some(1)), Ok(()));
        let lone = Members::initial(&[(1, "a".into(), urls("http://a:2380"))]);
        assert_eq!(
            lone.check_add(&urls("http://d:2380"), false, Some(1)),
            Ok(())
        );
    }

    #[test]
    fn the_table_stays_within_its_bounds() {
        let m = three();
        let long = vec!["http://x/".to_string() + &"a".repeat(limits::MEMBER_PEER_URLS_BYTES_MAX)];
        assert_eq!(
            m.check_add(&long, true, None),
            Err(MemberError::PeerUrlsTooLong)
        );
        assert_eq!(m.check_add(&[], true, None), Err(MemberError::NoPeerUrls));
        let many: Vec<(u64, String, Vec<String>)> = (0..limits::MEMBERS_MAX as u64)
            .map(|i| (i + 1, format!("m{i}"), urls(&format!("http://h{i}:2380"))))
            .collect();
        assert_eq!(
            Members::initial(&many).check_add(&urls("http://new:2380"), true, None),
            Err(MemberError::TooManyMembers)
        );
        let mut named = three();
        named.set_name(1, &"n".repeat(limits::MEMBER_NAME_BYTES_MAX + 1));
        assert_eq!(
            named.get(1).unwrap().name,
            "a",
            "an overlong name is not kept"
        );
    }

    #[test]
    fn update_replaces_urls_but_not_onto_another_member() {
        let mut m = three();
        assert_eq!(
            m.update(1, urls("http://b:2380")),
            Err(MemberError::PeerUrlExists)
        );
        m.update(1, urls("http://a2:2380")).unwrap();
        assert_eq!(m.get(1).unwrap().peer_urls, urls("http://a2:2380"));
        assert_eq!(m.update(8, urls("http://x")), Err(MemberError::NotFound));
    }

    #[test]
    fn table_round_trips_and_rejects_damage() {
        let mut m = three();
        let id = m.stage_add(9, 5, urls("http://d:2380"), false).unwrap();
        m.apply_conf_change(&ConfChange::single(ConfChangeKind::RemoveNode, 2));
        m.stage_add(9, 6, urls("http://e:2380"), true).unwrap();
        let mut b = Vec::new();
        m.encode(&mut b);
        assert_eq!(Members::decode(&b).unwrap(), m);
        assert!(Members::decode(&b[..b.len() - 1]).is_err());
        assert!(m.add_conf_change(id).is_some());
    }
}
