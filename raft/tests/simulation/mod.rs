//! Seeded cluster simulation: random schedules of ticks, deliveries,
//! persistence, proposals, reads, crashes, partitions, compactions and
//! membership changes, with safety checked after every step and liveness
//! checked once the faults stop.

pub mod checker;
pub mod cluster;

use cairn_raft::{ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition};

use cluster::Cluster;

pub struct Params {
    pub voters: u64,
    pub spares: u64,
    pub steps: u64,
    pub crashes_max: usize,
}

/// Ticks the healed cluster gets to elect a leader and commit a proposal.
const LIVENESS_TICKS_MAX: u64 = 200;

#[derive(Default)]
pub struct Outcome {
    pub committed: usize,
    pub reads_served: u64,
    pub snapshots_installed: u64,
    pub conf_changes_applied: u64,
    pub restarts: u64,
    pub leader_terms: usize,
}

impl Outcome {
    pub fn add(&mut self, o: &Outcome) {
        self.committed += o.committed;
        self.reads_served += o.reads_served;
        self.snapshots_installed += o.snapshots_installed;
        self.conf_changes_applied += o.conf_changes_applied;
        self.restarts += o.restarts;
        self.leader_terms += o.leader_terms;
    }
}

pub fn run(seed: u64, p: &Params) -> Outcome {
    // Every other seed serves reads under leader leases.
    let mut c = Cluster::new(seed, p.voters, p.spares, seed % 2 == 1);
    for step in 0..p.steps {
        fault_step(&mut c, seed, p);
        c.check(step % 64 == 0);
    }
    heal_all(&mut c, seed);
    liveness(&mut c);
    c.check(true);
    let k = &c.checker;
    Outcome {
        committed: k.committed.len(),
        reads_served: k.reads_served,
        snapshots_installed: k.snapshots_installed,
        conf_changes_applied: k.conf_changes_applied,
        restarts: k.restarts,
        leader_terms: k.terms(),
    }
}

fn fault_step(c: &mut Cluster, seed: u64, p: &Params) {
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    let live = c.live_ids();
    let r = c.rng.below(1000);
    match r {
        0..=299 => {
            c.deliver_one();
        }
        300..=499 => {
            if let Some(id) = c.pick(&live) {
                c.process_ready(id);
            }
        }
        500..=679 => {
            if let Some(id) = c.pick(&live) {
                c.fsync_one(id);
            }
        }
        680..=739 => c.tick_all(),
        740..=829 => {
            // Mostly at the leader, sometimes at a follower (forwarded).
            let target = if c.chance(800) {
                c.leader()
            } else {
                c.pick(&live)
            };
            if let Some(id) = target {
                let _ = c.propose(id);
            }
        }
        830..=869 => {
            // Any node that believes it leads, stale leaders included.
            let leaders = c.self_declared_leaders();
            let target = if c.chance(700) {
                c.pick(&leaders)
            } else {
                c.pick(&live)
            };
            if let Some(id) = target {
                c.read(id);
            }
        }
        870..=874 => {
            let crashed = ids.len() - live.len();
            if crashed < p.crashes_max {
                if let Some(id) = c.pick(&live) {
                    c.crash(id);
                }
            }
        }
        875..=899 => {
            let down: Vec<u64> = ids.iter().copied().filter(|i| !live.contains(i)).collect();
            if let Some(id) = c.pick(&down) {
                c.restart(id, seed);
            }
        }
        900..=904 => {
            if c.partitioned.is_empty() {
                // Cut a minority (one node) or, rarely, the current leader.
                let target = if c.chance(500) {
                    c.leader()
                } else {
                    c.pick(&ids)
                };
                if let Some(id) = target {
                    c.partitioned.insert(id);
                }
            }
        }
        // Partitions last ~200 steps (a dozen ticks): long enough for the
        // majority side to elect a new leader while the old one still
        // believes it leads.
        905..=909 => c.partitioned.clear(),
        910..=929 => {
            if let Some(id) = c.pick(&live) {
                c.process_ready(id);
            }
        }
        930..=934 => change_membership(c, p),
        935..=944 => {
            if let Some(id) = c.pick(&live) {
                c.compact(id);
            }
        }
        _ => {
            if let Some(id) = c.leader() {
                if c.chance(200) {
                    let to = c.pick(&ids).unwrap_or(id);
                    if let Some(raw) = c.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
                        raw.transfer_leader(to);
                    }
                }
            }
        }
    }
}

/// Proposes a random membership change at the leader, keeping at least
/// three voters so one crash never costs the quorum.
fn change_membership(c: &mut Cluster, p: &Params) {
    let Some(leader) = c.leader() else { return };
    let Some(st) = c
        .nodes
        .get(&leader)
        .and_then(|n| n.raw.as_ref())
        .map(|r| r.status())
    else {
        return;
    };
    let cs = st.conf_state;
    let all: Vec<u64> = (1..=p.voters + p.spares).collect();
    let outside: Vec<u64> = all.iter().copied().filter(|i| !cs.contains(*i)).collect();
    let single = |kind, node_id| ConfChangeSingle { kind, node_id };
    let cc = if !cs.voters_outgoing.is_empty() {
        ConfChange::leave_joint()
    } else {
        match c.rng.below(4) {
            0 => match c.pick(&outside) {
                Some(id) => ConfChange::single(ConfChangeKind::AddLearner, id),
                None => return,
            },
            1 => match c.pick(&cs.learners) {
                Some(id) => ConfChange::single(ConfChangeKind::AddNode, id),
                None => return,
            },
            2 if cs.voters.len() > 3 => {
                let id = c.pick(&cs.voters).unwrap_or(0);
                let kind = if c.chance(500) {
                    ConfChangeKind::RemoveNode
                } else {
                    ConfChangeKind::AddLearner
                };
                let transition = if kind == ConfChangeKind::AddLearner {
                    ConfChangeTransition::JointImplicit
                } else {
                    ConfChangeTransition::Auto
                };
                ConfChange {
                    transition,
                    changes: vec![single(kind, id)],
                }
            }
            _ => {
                // Swap a voter for an outsider or learner through joint
                // consensus.
                let mut candidates = outside.clone();
                candidates.extend(cs.learners.iter().copied());
                let (Some(add), Some(remove)) = (c.pick(&candidates), c.pick(&cs.voters)) else {
                    return;
                };
                let transition = match c.rng.below(3) {
                    0 => ConfChangeTransition::Auto,
                    1 => ConfChangeTransition::JointImplicit,
                    _ => ConfChangeTransition::JointExplicit,
                };
                ConfChange {
                    transition,
                    changes: vec![
                        single(ConfChangeKind::AddNode, add),
                        single(ConfChangeKind::RemoveNode, remove),
                    ],
                }
            }
        }
    };
    if let Some(raw) = c.nodes.get_mut(&leader).and_then(|n| n.raw.as_mut()) {
        let _ = raw.propose_conf_change(&cc);
    }
}

fn heal_all(c: &mut Cluster, seed: u64) {
    c.partitioned.clear();
    c.lossy = false;
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    for id in ids {
        c.restart(id, seed);
    }
}

/// Runs the healed cluster until everything is delivered and persisted.
fn drain(c: &mut Cluster) {
    for _ in 0..10_000 {
        let mut busy = false;
        let live = c.live_ids();
        for &id in &live {
            busy |= c.process_ready(id);
            while c.fsync_one(id) {
                busy = true;
            }
        }
        while c.deliver_one() {
            busy = true;
        }
        c.check(false);
        if !busy {
            return;
        }
    }
    for id in c.live_ids() {
        if let Some(raw) = c.nodes.get_mut(&id).and_then(|n| n.raw.as_mut()) {
            if raw.has_ready() {
                let st = raw.status();
                let rd = raw.ready();
                eprintln!("node {id} status {st:?}\nready {rd:?}");
            }
        }
    }
    let tail: Vec<String> = c.net.iter().take(20).map(|m| format!("{m:?}")).collect();
    panic!("cluster did not quiesce; in flight:\n{}", tail.join("\n"));
}

fn liveness(c: &mut Cluster) {
    // (payload, tick it was proposed at)
    let mut marker: Option<(bytes::Bytes, u64)> = None;
    for tick in 0..LIVENESS_TICKS_MAX {
        c.tick_all();
        drain(c);
        if let Some((m, _)) = &marker {
            if c.checker.committed.iter().any(|(_, d)| d == m) {
                return;
            }
        }
        // A proposal lost to a leader change is retried.
        let stale = marker.as_ref().is_some_and(|(_, t)| tick - t > 30);
        if marker.is_none() || stale {
            if let Some(leader) = c.leader() {
                let payloads = c.propose(leader);
                marker = payloads.last().map(|p| (p.clone(), tick));
                drain(c);
            }
        }
    }
    for n in c.nodes.values() {
        if let Some(raw) = &n.raw {
            eprintln!("{:?}", raw.status());
        }
    }
    panic!("liveness: no proposal committed within {LIVENESS_TICKS_MAX} ticks of healing");
}
