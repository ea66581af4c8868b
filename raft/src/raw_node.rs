//! The caller-facing node: inputs (ticks, messages, proposals) go in; a
//! [`Ready`] of work comes out.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::confchange::ConfChange;
use crate::config::Config;
use crate::error::Result;
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{
    ConfState, Entry, EntryKind, HardState, Message, ReadState, Role, Snapshot, SoftState,
};

/// Work for the caller, produced by [`RawNode::ready`]. Handle the fields in
/// this order:
///
/// 1. `soft_state`: observe (leader changed, role changed). Nothing to store.
/// 2. `messages`: send now, before persisting. They never depend on this
///    Ready's writes — chiefly the leader's Appends, so the leader's own
///    fsync overlaps with its followers'.
/// 3. Persist, in this order and before any later Ready's writes:
///    `snapshot` (install it in storage), then `entries` (append, replacing
///    any stored suffix from the first entry's index on), then `hard_state`.
///    Make them durable (fsync) if `must_sync`.
/// 4. `persisted_messages`: send only after step 3 is durable — and after
///    every earlier Ready's writes are durable too, even when this Ready has
///    nothing to write (an acknowledgement may cover entries of an earlier
///    Ready whose fsync is still running). These are vote responses, append
///    acknowledgements and vote requests.
/// 5. Report durability with [`RawNode::on_persisted`] (last entry's index
///    and term, or the snapshot's).
/// 6. `committed_entries`: apply in order (they are durable already; this
///    may run concurrently with steps 3–5). For `EntryKind::ConfChange`
///    entries, decode the payload and call [`RawNode::apply_conf_change`].
///    If a snapshot was handed out, restore the state machine from it first.
///    Then report with [`RawNode::on_applied`].
/// 7. `read_states`: serve each read once the applied index reaches its
///    `index`.
///
/// A synchronous caller does 1–4, 6, 7 and then calls [`RawNode::advance`],
/// which performs the reports of 5 and 6.
#[derive(Debug, Default)]
pub struct Ready {
    /// New leader/role, if changed since the last Ready.
    pub soft_state: Option<SoftState>,
    /// New term/vote/commit to persist, if changed.
    pub hard_state: Option<HardState>,
    /// A snapshot from the leader to install and persist.
    pub snapshot: Option<Snapshot>,
    /// Entries to append to stable storage.
    pub entries: Vec<Entry>,
    /// Messages that may be sent at once.
    pub messages: Vec<Message>,
    /// Messages that may be sent only after this Ready is persisted.
    pub persisted_messages: Vec<Message>,
    /// Committed, durable entries to apply (bounded in bytes).
    pub committed_entries: Vec<Entry>,
    /// Answers to ReadIndex requests.
    pub read_states: Vec<ReadState>,
    /// Whether step 3 must be fsynced (entries, snapshot, or term/vote
    /// changed; a commit change alone need not be).
    pub must_sync: bool,
}

/// Per-peer replication state in a [`Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressStatus {
    /// Highest index known replicated.
    pub matched: u64,
    /// Next index to send.
    pub next: u64,
    /// Flow-control state.
    pub state: ProgressState,
    /// Append messages in flight.
    pub inflight_msgs: usize,
    /// Whether the peer is a learner.
    pub is_learner: bool,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
}

/// A snapshot of the node's state for observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Node id.
    pub id: u64,
    /// Current term.
    pub term: u64,
    /// Vote in the current term.
    pub vote: u64,
    /// Known leader (0 = none).
    pub leader: u64,
    /// Role.
    pub role: Role,
    /// Commit index.
    pub commit: u64,
    /// Applied index reported by the caller.
    pub applied: u64,
    /// Last log index.
    pub last_index: u64,
    /// Transfer target while a leadership transfer runs.
    pub lead_transferee: u64,
    /// Membership.
    pub conf_state: ConfState,
    /// Per-peer progress (leader only).
    pub progress: BTreeMap<u64, ProgressStatus>,
}

/// A Raft node driven by its caller.
pub struct RawNode<S: Storage> {
    raft: Raft<S>,
    prev_soft: SoftState,
    prev_hard: HardState,
}

impl<S: Storage> RawNode<S> {
    /// A node restarting from `storage` (or starting from the membership it
    /// holds).
    pub fn new(config: &Config, storage: S) -> Result<Self> {
        let raft = Raft::new(config, storage)?;
        let prev_hard = raft.hard_state();
        let prev_soft = raft.soft_state();
        Ok(RawNode {
            raft,
            prev_soft,
            prev_hard,
        })
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Campaigns to become leader now (skipping the election timeout).
    pub fn campaign(&mut self) {
        self.raft.hup(false);
    }

    /// Handles a message from a peer.
    pub fn step(&mut self, m: Message) -> Result<()> {
        self.raft.step(m)
    }

    /// Proposes a batch of payloads; they are appended as consecutive
    /// entries. On a follower the batch is forwarded to the leader.
    /// `ProposalDropped` if there is no leader, a transfer is in progress, or
    /// the uncommitted tail is full.
    pub fn propose(&mut self, batch: Vec<Bytes>) -> Result<()> {
        let ents = batch.into_iter().map(Entry::normal).collect();
        self.raft.propose_entries(ents)
    }

    /// Proposes a membership change. Only one may be pending at a time.
    pub fn propose_conf_change(&mut self, cc: &ConfChange) -> Result<()> {
        let e = Entry {
            kind: EntryKind::ConfChange,
            ..Entry::normal(cc.encode())
        };
        self.raft.propose_entries(vec![e])
    }

    /// Applies a committed conf change and returns the new membership, which
    /// the caller persists with its applied state.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState> {
        self.raft.apply_conf_change(cc)
    }

    /// Requests a linearizable read identified by `context`; the answer
    /// arrives as a [`ReadState`] in a later Ready. Requests made between two
    /// Readys share one confirmation round. Without a leader the request is
    /// dropped and the caller retries after a timeout.
    pub fn read_index(&mut self, context: u64) {
        let id = self.raft.id;
        self.raft.read_index_from(context, id);
    }

    /// Hands leadership to `to` once it has caught up.
    pub fn transfer_leader(&mut self, to: u64) {
        self.raft.transfer_leader(to);
    }

    /// The transport failed to reach `id`.
    pub fn report_unreachable(&mut self, id: u64) {
        self.raft.report_unreachable(id);
    }

    /// The transport finished (or failed) sending a snapshot to `id`.
    pub fn report_snapshot(&mut self, id: u64, success: bool) {
        self.raft.report_snapshot(id, success);
    }

    /// Whether [`RawNode::ready`] has anything.
    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        r.soft_state() != self.prev_soft
            || r.hard_state() != self.prev_hard
            || r.log.unstable.has_next_entries()
            || r.log.unstable.next_snapshot().is_some()
            || !r.msgs.is_empty()
            || !r.msgs_after_persist.is_empty()
            || r.log.has_next_committed_entries()
            || !r.read_states.is_empty()
            || (r.role == Role::Leader && r.read_only.round_pending())
    }

    /// Takes the pending work. Everything returned is considered handed out:
    /// the next Ready holds only newer work.
    pub fn ready(&mut self) -> Ready {
        self.raft.flush_read_round();
        let r = &mut self.raft;
        let mut rd = Ready::default();
        let soft = r.soft_state();
        if soft != self.prev_soft {
            rd.soft_state = Some(soft);
            self.prev_soft = soft;
        }
        let hard = r.hard_state();
        if hard != self.prev_hard {
            rd.must_sync = hard.term != self.prev_hard.term || hard.vote != self.prev_hard.vote;
            rd.hard_state = Some(hard);
            self.prev_hard = hard;
        }
        rd.entries = r.log.unstable.next_entries().cloned().collect();
        rd.snapshot = r.log.unstable.next_snapshot().cloned();
        if let Some(s) = &rd.snapshot {
            r.log.applying_to(s.metadata.index.max(r.log.applying));
        }
        rd.must_sync |= !rd.entries.is_empty() || rd.snapshot.is_some();
        r.log.unstable.accept_in_progress();
        rd.committed_entries = r
            .log
            .next_committed_entries(r.max_committed_bytes_per_ready);
        if let Some(e) = rd.committed_entries.last() {
            r.log.applying_to(e.index);
        }
        rd.messages = std::mem::take(&mut r.msgs);
        rd.persisted_messages = std::mem::take(&mut r.msgs_after_persist);
        rd.read_states = std::mem::take(&mut r.read_states);
        rd
    }

    /// Reports that entries up to (`index`, `term`) — or the snapshot at
    /// that position — are durable. Stale reports (the entry was replaced
    /// meanwhile) are ignored.
    pub fn on_persisted(&mut self, index: u64, term: u64) {
        self.raft.on_persisted(index, term);
    }

    /// Reports that the application applied everything up to `index`.
    pub fn on_applied(&mut self, index: u64) {
        self.raft.on_applied(index);
    }

    /// For synchronous callers: reports `rd` fully persisted and applied.
    pub fn advance(&mut self, rd: &Ready) {
        if let Some(s) = &rd.snapshot {
            self.on_persisted(s.metadata.index, s.metadata.term);
        }
        if let Some(e) = rd.entries.last() {
            self.on_persisted(e.index, e.term);
        }
        let snap_index = rd.snapshot.as_ref().map_or(0, |s| s.metadata.index);
        let applied = rd
            .committed_entries
            .last()
            .map_or(0, |e| e.index)
            .max(snap_index);
        if applied > 0 {
            self.on_applied(applied);
        }
    }

    /// Leader and role, without building a [`Status`].
    pub fn soft_state(&self) -> SoftState {
        self.raft.soft_state()
    }

    /// Term, vote and commit index, without building a [`Status`].
    pub fn hard_state(&self) -> HardState {
        self.raft.hard_state()
    }

    /// The node's state (allocates the per-peer progress map on a leader).
    pub fn status(&self) -> Status {
        let r = &self.raft;
        let progress = if r.role == Role::Leader {
            r.trk
                .progress
                .iter()
                .map(|(id, p)| {
                    let s = ProgressStatus {
                        matched: p.matched,
                        next: p.next,
                        state: p.state,
                        inflight_msgs: p.inflights.count(),
                        is_learner: p.is_learner,
                        recent_active: p.recent_active,
                    };
                    (*id, s)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Status {
            id: r.id,
            term: r.term,
            vote: r.vote,
            leader: r.leader,
            role: r.role,
            commit: r.log.committed,
            applied: r.log.applied,
            last_index: r.log.last_index(),
            lead_transferee: r.lead_transferee,
            conf_state: r.trk.config.conf_state(),
            progress,
        }
    }

    /// The storage, for reading.
    pub fn storage(&self) -> &S {
        &self.raft.log.storage
    }

    /// The storage, for the caller's writes while handling a Ready.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.raft.log.storage
    }
}
