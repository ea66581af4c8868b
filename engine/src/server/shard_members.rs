//! Membership on the shard's loop: admitting `Member*` requests, applying
//! conf-change entries, keeping the peer transport in step with the member
//! table, joining a running cluster, and handing leadership over on a
//! graceful stop. The table itself is `super::members`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_raft::{self as raft, ConfChange, ConfChangeKind};
use cairn_wire::{rpc, Header, MemberRef, RequestBodyView};

use super::super::members::{MemberError, Members};
use super::super::meta::Identity;
use super::super::peer::{self, PeerAddr};
use super::super::Shared;
use super::{Applied, Origin, Shard, ShardError};
use crate::config::{ClusterState, Config};
use crate::limits;

/// A membership request waiting for its conf change to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MemberOp {
    Add,
    Remove,
    Promote,
    /// Only for answers: updates apply as normal entries, lists are reads.
    Update,
    List,
}

pub(super) struct PendingMember {
    origin: Origin,
    request_id: u64,
    op: MemberOp,
    deadline: Instant,
}

/// What etcd tells a learner's client for anything but serializable reads
/// and status.
const LEARNER_REFUSAL: &str = "etcdserver: rpc not supported for learner";

/// The envelope sequence number of a name entry: a member publishing its
/// `--name` into the member table (etcd publishes its attributes through
/// its log the same way). Proposal sequence numbers count up from 1 and
/// never reach it. The frame after the envelope is `PUBLISH_MAGIC` then
/// the name, not a request flatbuffer.
pub(super) const PUBLISH_SEQ: u64 = u64::MAX;
const PUBLISH_MAGIC: &[u8] = b"cairn-member-name:";

/// What a removed member says before it exits.
pub(super) const REMOVED: &str = "the member has been permanently removed from the cluster";

fn urls_of(v: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<&str>>>) -> Vec<String> {
    v.into_iter().flatten().map(str::to_string).collect()
}

/// The identity of this member: read back, bootstrapped from the flags, or
/// (for `--initial-cluster-state existing` on an empty data dir) learned
/// from the running cluster. Returns it and whether it is new.
pub(super) async fn identity(
    shared: &Shared,
    member_dir: &std::path::Path,
) -> Result<(Identity, bool), ShardError> {
    let config = &shared.config;
    if let Some(identity) = Identity::load(member_dir)? {
        return Ok((identity, false));
    }
    let identity = if config.initial_cluster_state == ClusterState::Existing {
        join(shared, config).await?
    } else {
        Identity::from_config(config)?
    };
    identity.save(member_dir)?;
    Ok((identity, true))
}

/// Ask the members of `--initial-cluster` who this member is, until one
/// of them has the `MemberAdd` applied (or the server is stopped).
async fn join(shared: &Shared, config: &Config) -> Result<Identity, ShardError> {
    let initial = config
        .initial_members()
        .map_err(|e| ShardError::Recovery(e.to_string()))?;
    let own_urls: Vec<String> = initial
        .iter()
        .find(|m| m.name == config.name)
        .map(|m| m.peer_urls.clone())
        .unwrap_or_default();
    let others: Vec<(String, std::net::SocketAddr)> = initial
        .iter()
        .filter(|m| m.name != config.name)
        .filter_map(|m| {
            let url = m.peer_urls.first()?;
            let addr = crate::config::parse_url("initial-cluster", url).ok()?;
            Some((m.name.clone(), addr))
        })
        .collect();
    let addrs: Vec<std::net::SocketAddr> = others.iter().map(|o| o.1).collect();
    tracing::info!(
        peers = addrs.len(),
        "joining a running cluster; asking its members for this member's id"
    );
    loop {
        if shared.stopping() {
            return Err(ShardError::Recovery(
                "stopped before the cluster answered".into(),
            ));
        }
        if let Some(j) = peer::discover(&addrs, &own_urls).await {
            let mut members: Vec<(u64, String, Vec<String>)> = j
                .peers
                .iter()
                .filter_map(|p| {
                    let (name, _) = others.iter().find(|o| o.1 == p.addr)?;
                    let urls = initial.iter().find(|m| &m.name == name)?.peer_urls.clone();
                    Some((p.id, name.clone(), urls))
                })
                .collect();
            members.push((j.member_id, config.name.clone(), own_urls.clone()));
            tracing::info!(
                member_id = %format!("{:x}", j.member_id),
                cluster_id = %format!("{:x}", j.cluster_id),
                "the cluster knows this member; waiting for the leader's snapshot"
            );
            return Ok(Identity {
                cluster_id: j.cluster_id,
                member_id: j.member_id,
                members,
                joined: true,
            });
        }
        glommio::timer::sleep(Duration::from_millis(limits::JOIN_RETRY_MS)).await;
    }
}

/// The peers to dial at start-up: every member of the table but this one,
/// or, for a member that joined and has no snapshot yet, the members that
/// answered its join query.
pub(super) fn initial_peers(identity: &Identity, members: &Members) -> Vec<PeerAddr> {
    let list: Vec<(u64, Option<&String>)> = if members.is_empty() {
        identity
            .members
            .iter()
            .map(|m| (m.0, m.2.first()))
            .collect()
    } else {
        members
            .iter()
            .map(|m| (m.id, m.peer_urls.first()))
            .collect()
    };
    list.into_iter()
        .filter(|(id, _)| *id != identity.member_id)
        .filter_map(|(id, url)| {
            let addr = crate::config::parse_url("peer-urls", url?).ok()?;
            Some(PeerAddr { id, addr })
        })
        .collect()
}

impl Shard {
    /// Whether this member is a learner.
    pub(super) fn is_learner(&self) -> bool {
        self.members
            .borrow()
            .get(self.identity.member_id)
            .is_some_and(|m| m.is_learner)
    }

    /// Membership requests and the learner rule, before a request is
    /// classified. `None`: not for this module, classify as usual;
    /// `Some(None)`: answered or parked here; `Some(Some(class))`: go on
    /// as that class.
    pub(super) fn member_class(
        &mut self,
        origin: Origin,
        id: u64,
        body: &RequestBodyView<'_>,
        class: super::Class,
    ) -> Option<Option<super::Class>> {
        // etcd's rule: a learner serves status and serializable ranges.
        let learner_may = match body {
            RequestBodyView::Status(_) => true,
            RequestBodyView::Range(_) => class == super::Class::LocalRead,
            _ => false,
        };
        if !learner_may && self.is_learner() {
            self.reply_error(origin, id, rpc::ErrorCode::Unavailable, LEARNER_REFUSAL);
            return Some(None);
        }
        let result = match body {
            RequestBodyView::MemberAdd(a) => {
                let urls = urls_of(a.peer_urls());
                let started = self.started_voters(None);
                match self
                    .members
                    .borrow()
                    .check_add(&urls, a.is_learner(), started)
                {
                    // Logged as a write; the conf change follows when it applies.
                    Ok(()) => return Some(Some(super::Class::Write)),
                    Err(e) => Err(e),
                }
            }
            RequestBodyView::MemberUpdate(u) => {
                let urls = urls_of(u.peer_urls());
                if self.members.borrow().get(u.id()).is_none() {
                    Err(MemberError::NotFound)
                } else if urls.is_empty() {
                    Err(MemberError::NoPeerUrls)
                } else {
                    return Some(Some(super::Class::Write));
                }
            }
            RequestBodyView::MemberRemove(r) => {
                let started = self.started_voters(Some(r.id()));
                let checked = self.members.borrow().check_remove(r.id(), started);
                checked.and_then(|()| {
                    self.propose_member_change(
                        origin,
                        id,
                        MemberOp::Remove,
                        ConfChange::single(ConfChangeKind::RemoveNode, r.id()),
                    )
                })
            }
            RequestBodyView::MemberPromote(p) => {
                if self.is_leader() {
                    let status = self.node.status();
                    let matched = status.progress.get(&p.id()).map_or(0, |pr| pr.matched);
                    let checked =
                        self.members
                            .borrow()
                            .check_promote(p.id(), matched, status.last_index);
                    checked.and_then(|()| {
                        self.propose_member_change(
                            origin,
                            id,
                            MemberOp::Promote,
                            ConfChange::single(ConfChangeKind::AddNode, p.id()),
                        )
                    })
                } else {
                    // Only the leader knows how far the learner got.
                    Err(MemberError::NotLeader)
                }
            }
            _ => return None,
        };
        if let Err(e) = result {
            self.reply_error(origin, id, e.code(), &e.to_string());
        }
        Some(None)
    }

    /// Voters heard from recently, other than `except`, as the leader
    /// sees them; `None` on a follower (it cannot tell, and the leader
    /// checks again when the entry applies... for adds; see
    /// `Members::check_add`).
    fn started_voters(&self, except: Option<u64>) -> Option<usize> {
        if !self.is_leader() {
            return None;
        }
        let status = self.node.status();
        let n = status
            .progress
            .iter()
            .filter(|(id, p)| {
                Some(**id) != except
                    && !p.is_learner
                    && (p.recent_active || **id == self.identity.member_id)
            })
            .count();
        Some(n)
    }

    fn propose_member_change(
        &mut self,
        origin: Origin,
        request_id: u64,
        op: MemberOp,
        cc: ConfChange,
    ) -> Result<(), MemberError> {
        let member = cc.changes.first().map_or(0, |c| c.node_id);
        if let Err(e) = self.node.propose_conf_change(&cc) {
            let message = match e {
                raft::Error::ProposalDropped(_) if self.leader == 0 => "etcdserver: no leader",
                raft::Error::ProposalDropped(_) => {
                    "etcdserver: unhealthy cluster (another membership change is in progress)"
                }
                _ => "etcdserver: invalid membership change",
            };
            tracing::info!(member = %format!("{member:x}"), "membership change refused: {e}");
            self.reply_error(
                origin,
                request_id,
                rpc::ErrorCode::FailedPrecondition,
                message,
            );
            return Ok(());
        }
        tracing::info!(member = %format!("{member:x}"), ?op, "proposed membership change");
        self.pending_members.insert(
            member,
            PendingMember {
                origin,
                request_id,
                op,
                deadline: Instant::now() + self.request_timeout,
            },
        );
        Ok(())
    }

    /// Apply a logged `MemberAdd` or `MemberUpdate` (normal entries).
    pub(super) fn apply_member_write(
        &mut self,
        index: u64,
        body: &RequestBodyView<'_>,
    ) -> Option<Result<Applied, (rpc::ErrorCode, String)>> {
        let result = match body {
            RequestBodyView::MemberAdd(a) => self
                .members
                .borrow_mut()
                .stage_add(
                    self.identity.cluster_id,
                    index,
                    urls_of(a.peer_urls()),
                    a.is_learner(),
                )
                .map(|member| Applied::MemberAdd { member }),
            RequestBodyView::MemberUpdate(u) => {
                let r = self
                    .members
                    .borrow_mut()
                    .update(u.id(), urls_of(u.peer_urls()));
                if r.is_ok() {
                    self.sync_peers(&[]);
                }
                r.map(|()| Applied::MemberUpdate)
            }
            _ => return None,
        };
        Some(result.map_err(|e| (e.code(), e.to_string())))
    }

    /// The member that took a `MemberAdd` proposes its conf change once
    /// the add has applied (and the new id is known).
    pub(super) fn propose_member_add(&mut self, origin: Origin, request_id: u64, member: u64) {
        let Some(cc) = self.members.borrow().add_conf_change(member) else {
            return;
        };
        if let Err(e) = self.propose_member_change(origin, request_id, MemberOp::Add, cc) {
            self.reply_error(origin, request_id, e.code(), &e.to_string());
        }
    }

    /// Apply a committed conf-change entry: Raft's membership, the table,
    /// the peer transport, and the answer to whoever asked.
    pub(super) fn apply_conf_change_entry(&mut self, entry: &raft::Entry) {
        let cc = match ConfChange::decode(&entry.data) {
            Ok(cc) => cc,
            Err(e) => {
                tracing::error!(
                    index = entry.index,
                    "conf change does not decode; skipped: {e}"
                );
                return;
            }
        };
        let ids: Vec<u64> = cc.changes.iter().map(|c| c.node_id).collect();
        if let Err(e) = self.node.apply_conf_change(&cc) {
            // Every member refuses the same entry the same way.
            tracing::warn!(index = entry.index, "conf change refused: {e}");
            for id in ids {
                if let Some(p) = self.pending_members.remove(&id) {
                    self.reply_error(
                        p.origin,
                        p.request_id,
                        rpc::ErrorCode::FailedPrecondition,
                        &format!("etcdserver: {e}"),
                    );
                }
            }
            return;
        }
        let added = cc
            .changes
            .iter()
            .any(|c| c.kind != ConfChangeKind::RemoveNode);
        let removed = self.members.borrow_mut().apply_conf_change(&cc);
        tracing::info!(
            index = entry.index,
            members = self.members.borrow().len(),
            ?removed,
            "membership changed"
        );
        if added {
            // A member joining a running cluster starts from a snapshot:
            // take one now, so the leader has one to send.
            self.member_snapshot_wanted = true;
        }
        self.sync_peers(&removed);
        if removed.contains(&self.identity.member_id) && self.removed_at.is_none() {
            tracing::error!("{REMOVED}; stopping once the removal has reached the others");
            self.removed_at = Some(Instant::now());
        }
        for id in ids {
            if let Some(p) = self.pending_members.remove(&id) {
                let header = self.header();
                let frame = self.member_change_frame(p.request_id, &header, p.op, id);
                self.router.reply(p.origin.executor, p.origin.conn, frame);
            }
        }
    }

    /// A member whose table entry lacks its name (it was added at runtime)
    /// proposes it, at most once per election timeout until it applies.
    pub(super) fn maybe_publish_name(&mut self, now: Instant) {
        let name = &self.shared.config.name;
        let known = self
            .members
            .borrow()
            .get(self.identity.member_id)
            .map(|m| &m.name == name);
        if known != Some(false)
            || self.leader == 0
            || self.removed_at.is_some()
            || name.len() > limits::MEMBER_NAME_BYTES_MAX
        {
            return;
        }
        let retry = Duration::from_millis(self.shared.config.election_timeout_ms);
        if self.name_proposed_at.is_some_and(|at| now < at + retry) {
            return;
        }
        self.name_proposed_at = Some(now);
        let mut payload = Vec::with_capacity(16 + PUBLISH_MAGIC.len() + name.len());
        payload.extend_from_slice(&self.identity.member_id.to_le_bytes());
        payload.extend_from_slice(&PUBLISH_SEQ.to_le_bytes());
        payload.extend_from_slice(PUBLISH_MAGIC);
        payload.extend_from_slice(name.as_bytes());
        if let Err(e) = self.node.propose(vec![Bytes::from(payload)]) {
            tracing::debug!("could not publish this member's name yet: {e}");
        }
    }

    /// Apply a name entry (see [`PUBLISH_SEQ`]).
    pub(super) fn apply_publish(&mut self, member: u64, frame: &[u8]) {
        let Some(name) = frame
            .strip_prefix(PUBLISH_MAGIC)
            .and_then(|n| std::str::from_utf8(n).ok())
        else {
            tracing::error!("malformed member name entry; skipped");
            return;
        };
        self.members.borrow_mut().set_name(member, name);
    }

    /// Dial every member of the table; stop dialing removed ones.
    pub(super) fn sync_peers(&mut self, removed: &[u64]) {
        for id in removed {
            self.peers.remove(*id);
        }
        let wanted = initial_peers(&self.identity, &self.members.borrow());
        for p in wanted {
            self.peers.add(p);
        }
    }

    /// A peer refused this member as removed: leave as after applying
    /// one's own removal.
    pub(super) fn removed_by_peer(&mut self, by: u64) {
        if self.removed_at.is_none() {
            tracing::error!(peer = %format!("{by:x}"), "{REMOVED} (a peer says so); stopping");
            self.removed_at = Some(Instant::now());
        }
    }

    /// A removed member leaves once an election timeout has passed, so its
    /// last messages (the leader's commit of its own removal) go out.
    pub(super) fn check_removed(&mut self) {
        if let Some(at) = self.removed_at {
            let grace = Duration::from_millis(self.shared.config.election_timeout_ms);
            if at.elapsed() >= grace {
                self.shared.fail(REMOVED.to_string());
            }
        }
    }

    /// Answer requests whose conf change never applied in time.
    pub(super) fn expire_member_requests(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .pending_members
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.pending_members.remove(&id) {
                self.reply_error(
                    p.origin,
                    p.request_id,
                    rpc::ErrorCode::Unavailable,
                    "etcdserver: request timed out",
                );
            }
        }
    }

    /// A joined member accepts the log only on top of the leader's
    /// snapshot: before it has one, an Append from the very start of the
    /// log would be applied under the wrong membership (the cluster's
    /// first membership is not in the log). Dropping it makes the leader
    /// fall back to the snapshot once its log no longer reaches back.
    pub(super) fn drops_before_snapshot(&self, m: &raft::Message) -> bool {
        self.identity.joined
            && self.snapshot_index == 0
            && m.kind == raft::MessageKind::Append
            && m.index == 0
    }

    pub(super) fn member_list_frame(&mut self, id: u64, header: &Header) -> Vec<u8> {
        self.member_change_frame(id, header, MemberOp::List, 0)
    }

    pub(super) fn member_update_frame(&mut self, id: u64, header: &Header) -> Vec<u8> {
        self.member_change_frame(id, header, MemberOp::Update, 0)
    }

    fn member_change_frame(
        &mut self,
        request_id: u64,
        header: &Header,
        op: MemberOp,
        member: u64,
    ) -> Vec<u8> {
        let members = self.members.borrow().clone();
        let list: Vec<&super::super::members::Member> = members.iter().collect();
        let urls: Vec<Vec<&str>> = list
            .iter()
            .map(|m| m.peer_urls.iter().map(String::as_str).collect())
            .collect();
        // A member's client URLs are known once it has connected (its
        // Hello carries them); until then the list is empty.
        let client_urls: Vec<Vec<&str>> = list
            .iter()
            .map(|m| {
                self.client_urls
                    .get(&m.id)
                    .map(|u| u.iter().map(String::as_str).collect())
                    .unwrap_or_default()
            })
            .collect();
        let refs: Vec<MemberRef<'_>> = list
            .iter()
            .zip(urls.iter().zip(&client_urls))
            .map(|(m, (peer_urls, client_urls))| MemberRef {
                id: m.id,
                name: &m.name,
                peer_urls,
                client_urls,
                is_learner: m.is_learner,
            })
            .collect();
        match op {
            MemberOp::Add => {
                let empty: [&str; 0] = [];
                let added = refs
                    .iter()
                    .find(|r| r.id == member)
                    .copied()
                    .unwrap_or(MemberRef {
                        id: member,
                        name: "",
                        peer_urls: &empty,
                        client_urls: &empty,
                        is_learner: false,
                    });
                self.enc
                    .member_add_response(request_id, header, &added, &refs)
                    .to_vec()
            }
            MemberOp::Remove => self
                .enc
                .member_remove_response(request_id, header, &refs)
                .to_vec(),
            MemberOp::Promote => self
                .enc
                .member_promote_response(request_id, header, &refs)
                .to_vec(),
            MemberOp::Update => self
                .enc
                .member_update_response(request_id, header, &refs)
                .to_vec(),
            MemberOp::List => self
                .enc
                .member_list_response(request_id, header, &refs)
                .to_vec(),
        }
    }

    /// On a graceful stop, a leader hands leadership to the most
    /// up-to-date voter first (as etcd does), waiting at most an election
    /// timeout, so the cluster does not sit out an election.
    pub(super) async fn hand_over(&mut self) {
        if !self.is_leader() || self.removed_at.is_some() {
            return;
        }
        let status = self.node.status();
        let me = self.identity.member_id;
        let Some(target) = status
            .progress
            .iter()
            .filter(|(id, p)| **id != me && !p.is_learner)
            .max_by_key(|(_, p)| p.matched)
            .map(|(id, _)| *id)
        else {
            return;
        };
        tracing::info!(target = %format!("{target:x}"), "stopping: handing leadership over first");
        self.node.transfer_leader(target);
        let deadline =
            Instant::now() + Duration::from_millis(self.shared.config.election_timeout_ms);
        let mut writes: Vec<Bytes> = Vec::new();
        let mut reads = Vec::new();
        while Instant::now() < deadline && self.is_leader() {
            if self.drain_ready().await.is_err() {
                return;
            }
            let next = futures_lite::future::or(self.persisted.recv(), self.peer_events.recv());
            let wait = Duration::from_millis(self.shared.config.heartbeat_interval_ms);
            if let Ok(Some(ev)) = glommio::timer::timeout(wait, async { Ok(next.await) }).await {
                self.handle(ev, &mut writes, &mut reads);
            }
            self.catch_up_ticks();
        }
        if self.is_leader() {
            tracing::warn!("leadership hand-over did not finish in time; stopping anyway");
        } else {
            tracing::info!(leader = %format!("{:x}", self.leader), "leadership handed over");
        }
    }
}
