//! A simulated cluster: nodes with explicit persistence (writes become
//! durable only when the node's "fsync" completes), a lossy reordering
//! network, crashes that lose everything not durable, and restarts.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use cairn_raft::{
    ConfChange, ConfState, Config, Entry, EntryKind, HardState, MemStorage, Message, MessageKind,
    RawNode, ReadOnlyOption, Rng, Role, Snapshot, Storage,
};

use super::checker::Checker;

/// One Ready's writes, waiting for the node's fsync.
pub struct PendingWrite {
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
    after_persist: Vec<Message>,
}

pub struct SimNode {
    pub id: u64,
    /// None while crashed.
    pub raw: Option<RawNode<MemStorage>>,
    /// Durable storage of a crashed node.
    pub durable: Option<MemStorage>,
    pub pending: Vec<PendingWrite>,
    /// The node's log as written so far (durable plus pending), by index.
    pub log_view: BTreeMap<u64, Entry>,
    /// Membership as of the applied index.
    pub conf_state: ConfState,
    pub applied: u64,
}

pub struct Cluster {
    pub rng: Rng,
    pub nodes: BTreeMap<u64, SimNode>,
    pub net: Vec<Message>,
    /// Nodes cut off from everyone else.
    pub partitioned: BTreeSet<u64>,
    pub lossy: bool,
    /// Reads use leader leases (clocks tick in lockstep here).
    lease_reads: bool,
    pub checker: Checker,
    bootstrap: ConfState,
    next_payload: u64,
    next_read: u64,
}

/// Network capacity; beyond it the oldest message is lost, as a full socket
/// buffer would lose it.
const NET_MESSAGES_MAX: usize = 4096;

fn config(id: u64, seed: u64, applied: u64, lease_reads: bool) -> Config {
    let mut c = Config::new(id, 10, 2);
    c.seed = seed;
    if lease_reads {
        c.read_only_option = ReadOnlyOption::LeaseBased;
    }
    c.applied = applied;
    // Small limits so flow control, paging and batching paths run.
    c.max_size_per_msg_bytes = 256;
    c.max_inflight_msgs = 4;
    c.max_inflight_bytes = 1024;
    c.max_committed_bytes_per_ready = 512;
    c.max_uncommitted_entries_bytes = 4096;
    c
}

impl Cluster {
    pub fn new(seed: u64, voters: u64, spares: u64, lease_reads: bool) -> Self {
        let bootstrap = ConfState::with_voters(&(1..=voters).collect::<Vec<_>>());
        let mut nodes = BTreeMap::new();
        for id in 1..=voters + spares {
            let storage = MemStorage::new_with_conf_state(bootstrap.clone());
            let raw = RawNode::new(&config(id, seed, 0, lease_reads), storage).expect("config");
            let node = SimNode {
                id,
                raw: Some(raw),
                durable: None,
                pending: Vec::new(),
                log_view: BTreeMap::new(),
                conf_state: bootstrap.clone(),
                applied: 0,
            };
            nodes.insert(id, node);
        }
        Cluster {
            rng: Rng::new(seed),
            nodes,
            net: Vec::new(),
            partitioned: BTreeSet::new(),
            lossy: true,
            lease_reads,
            checker: Checker::default(),
            bootstrap,
            next_payload: 0,
            next_read: 0,
        }
    }

    pub fn chance(&mut self, percent_tenths: u64) -> bool {
        self.rng.below(1000) < percent_tenths
    }

    pub fn pick(&mut self, ids: &[u64]) -> Option<u64> {
        if ids.is_empty() {
            return None;
        }
        Some(ids[self.rng.below(ids.len() as u64) as usize])
    }

    pub fn live_ids(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.raw.is_some())
            .map(|n| n.id)
            .collect()
    }

    pub fn leader(&self) -> Option<u64> {
        let mut best: Option<(u64, u64)> = None;
        for n in self.nodes.values() {
            let Some(raw) = &n.raw else { continue };
            let term = raw.hard_state().term;
            if raw.soft_state().role == Role::Leader && best.is_none_or(|(t, _)| term > t) {
                best = Some((term, n.id));
            }
        }
        best.map(|(_, id)| id)
    }

    /// Every live node whose role is leader (of any term).
    pub fn self_declared_leaders(&self) -> Vec<u64> {
        let is_leader = |n: &SimNode| {
            n.raw
                .as_ref()
                .is_some_and(|r| r.soft_state().role == Role::Leader)
        };
        self.nodes
            .values()
            .filter(|n| is_leader(n))
            .map(|n| n.id)
            .collect()
    }

    pub fn tick_all(&mut self) {
        for n in self.nodes.values_mut() {
            if let Some(raw) = &mut n.raw {
                raw.tick();
            }
        }
    }

    fn linked(&self, a: u64, b: u64) -> bool {
        self.partitioned.contains(&a) == self.partitioned.contains(&b)
    }

    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            if self.net.len() >= NET_MESSAGES_MAX {
                self.net.remove(0);
            }
            self.net.push(m);
        }
    }

    /// Delivers (or loses, or duplicates) one random in-flight message.
    pub fn deliver_one(&mut self) -> bool {
        if self.net.is_empty() {
            return false;
        }
        let i = self.rng.below(self.net.len() as u64) as usize;
        let m = self.net.swap_remove(i);
        let lost = !self.linked(m.from, m.to) || (self.lossy && self.chance(50));
        if self.lossy && !lost && self.chance(20) {
            self.net.push(m.clone());
        }
        let (from, to, kind) = (m.from, m.to, m.kind);
        if lost {
            if kind == MessageKind::Snapshot {
                self.report_snapshot(from, to, false);
            }
            // Sometimes the transport notices.
            if kind == MessageKind::Append && self.chance(500) {
                if let Some(raw) = self.nodes.get_mut(&from).and_then(|n| n.raw.as_mut()) {
                    raw.report_unreachable(to);
                }
            }
            return true;
        }
        if let Some(raw) = self.nodes.get_mut(&to).and_then(|n| n.raw.as_mut()) {
            // Errors (unknown peer, stale forward) are expected in a lossy,
            // reconfiguring cluster; the message is simply not acted on.
            let _ = raw.step(m);
        }
        if kind == MessageKind::Snapshot {
            self.report_snapshot(from, to, true);
        }
        true
    }

    fn report_snapshot(&mut self, from: u64, to: u64, ok: bool) {
        if let Some(raw) = self.nodes.get_mut(&from).and_then(|n| n.raw.as_mut()) {
            raw.report_snapshot(to, ok);
        }
    }

    /// Handles a node's Ready: send, queue the writes, apply.
    pub fn process_ready(&mut self, id: u64) -> bool {
        let Some(node) = self.nodes.get_mut(&id) else {
            return false;
        };
        let Some(raw) = node.raw.as_mut() else {
            return false;
        };
        if !raw.has_ready() {
            return false;
        }
        let rd = raw.ready();
        let term = raw.hard_state().term;
        if let Some(snap) = &rd.snapshot {
            node.log_view.clear();
            // The application restores its state from the snapshot now.
            node.applied = snap.metadata.index;
            node.conf_state = snap.metadata.conf_state.clone();
            self.checker
                .on_snapshot(id, snap.metadata.index, snap.metadata.term);
        }
        if let Some(first) = rd.entries.first() {
            let from = first.index;
            node.log_view.retain(|i, _| *i < from);
            for e in &rd.entries {
                node.log_view.insert(e.index, e.clone());
            }
        }
        self.checker.on_entries(id, &rd.entries);
        if rd.soft_state.is_some_and(|s| s.role == Role::Leader) {
            self.checker.on_new_leader(id, term, &node.log_view);
        }
        let mut applied_to = None;
        for e in &rd.committed_entries {
            assert_eq!(e.index, node.applied + 1, "node {id} applies out of order");
            self.checker.on_apply(id, e);
            if e.kind == EntryKind::ConfChange {
                let cc = ConfChange::decode(&e.data).expect("conf change entries are well formed");
                let raw = node.raw.as_mut().expect("live");
                // A change that does not fit the current configuration is
                // skipped identically on every node.
                if let Ok(cs) = raw.apply_conf_change(&cc) {
                    self.checker.conf_changes_applied += 1;
                    raw.storage_mut().set_conf_state(cs.clone());
                    node.conf_state = cs;
                }
            }
            node.applied = e.index;
            applied_to = Some(e.index);
        }
        let raw = node.raw.as_mut().expect("live");
        if let Some(s) = &rd.snapshot {
            raw.on_applied(s.metadata.index);
        }
        if let Some(i) = applied_to {
            raw.on_applied(i);
        }
        for rs in &rd.read_states {
            self.checker.on_read_state(id, rs.context, rs.index);
        }
        node.pending.push(PendingWrite {
            snapshot: rd.snapshot,
            entries: rd.entries,
            hard_state: rd.hard_state,
            after_persist: rd.persisted_messages,
        });
        self.send(rd.messages);
        true
    }

    /// Completes the node's oldest pending write.
    pub fn fsync_one(&mut self, id: u64) -> bool {
        let Some(node) = self.nodes.get_mut(&id) else {
            return false;
        };
        let Some(raw) = node.raw.as_mut() else {
            return false;
        };
        if node.pending.is_empty() {
            return false;
        }
        let w = node.pending.remove(0);
        let st = raw.storage_mut();
        if let Some(s) = &w.snapshot {
            st.apply_snapshot(s.clone());
        }
        st.append(&w.entries);
        if let Some(hs) = w.hard_state {
            st.set_hard_state(hs);
        }
        if let Some(s) = &w.snapshot {
            raw.on_persisted(s.metadata.index, s.metadata.term);
        }
        if let Some(e) = w.entries.last() {
            raw.on_persisted(e.index, e.term);
        }
        self.send(w.after_persist);
        true
    }

    pub fn crash(&mut self, id: u64) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(raw) = node.raw.take() else { return };
        node.pending.clear();
        let mut durable = raw.storage().clone();
        // The application state survives only as the storage snapshot.
        let snap = durable.snapshot().expect("mem snapshot");
        let cs = if snap.metadata.index == 0 {
            self.bootstrap.clone()
        } else {
            snap.metadata.conf_state.clone()
        };
        durable.set_conf_state(cs.clone());
        node.conf_state = cs;
        node.applied = snap.metadata.index;
        node.log_view = durable
            .all_entries()
            .iter()
            .map(|e| (e.index, e.clone()))
            .collect();
        node.durable = Some(durable);
    }

    pub fn restart(&mut self, id: u64, seed: u64) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(durable) = node.durable.take() else {
            return;
        };
        let cfg = config(
            id,
            seed.wrapping_add(node.applied),
            node.applied,
            self.lease_reads,
        );
        node.raw = Some(RawNode::new(&cfg, durable).expect("restart from durable state"));
        self.checker.on_restart(id);
    }

    /// Proposes a batch of unique payloads at `id`; returns them.
    pub fn propose(&mut self, id: u64) -> Vec<Bytes> {
        let n = 1 + self.rng.below(3);
        let mut batch = Vec::new();
        for _ in 0..n {
            self.next_payload += 1;
            batch.push(Bytes::from(format!("w{}", self.next_payload)));
        }
        if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
            let _ = raw.propose(batch.clone());
        }
        batch
    }

    pub fn read(&mut self, id: u64) {
        self.next_read += 1;
        let ctx = self.next_read;
        let max_commit = self.max_commit();
        self.checker.on_read_issued(id, ctx, max_commit);
        if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
            raw.read_index(ctx);
        }
    }

    fn max_commit(&self) -> u64 {
        self.nodes
            .values()
            .filter_map(|n| n.raw.as_ref())
            .map(|r| r.hard_state().commit)
            .max()
            .unwrap_or(0)
    }

    /// Compacts a node's storage up to a recent applied index.
    pub fn compact(&mut self, id: u64) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(raw) = node.raw.as_mut() else { return };
        let applied = node.applied;
        let keep = self.rng.below(8);
        // The state machine may already be restored from a leader's
        // snapshot whose write to storage is still pending (Ready allows
        // applying while persisting). Until that write lands, storage still
        // holds the old log, whose entry at `applied` may be a different,
        // never-committed one: a snapshot recorded now would carry its term
        // and, after a crash, resurrect that entry as committed.
        if node.pending.iter().any(|w| w.snapshot.is_some()) {
            return;
        }
        let st = raw.storage_mut();
        let durable_last = st.last_index().unwrap_or(0);
        if applied == 0 || applied > durable_last {
            return;
        }
        if st
            .create_snapshot(applied, node.conf_state.clone(), Bytes::new())
            .is_ok()
        {
            let term = st.snapshot().map_or(0, |s| s.metadata.term);
            self.checker.on_local_snapshot(id, applied, term);
            let _ = st.compact(applied.saturating_sub(keep).max(1));
        }
    }

    /// One invariant sweep over every node.
    pub fn check(&mut self, full: bool) {
        for n in self.nodes.values() {
            if let Some(raw) = &n.raw {
                let (hs, ss) = (raw.hard_state(), raw.soft_state());
                self.checker.on_status(n.id, hs.term, ss.role, hs.commit);
            }
        }
        if full {
            let views: Vec<(u64, &BTreeMap<u64, Entry>)> =
                self.nodes.values().map(|n| (n.id, &n.log_view)).collect();
            Checker::check_log_matching(&views);
        }
    }
}
