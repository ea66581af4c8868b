//! Pending linearizable reads at the leader.
//!
//! A read is safe to serve at the commit index the leader had when the read
//! arrived, once the leader knows it was still leader at that moment. Under
//! `ReadOnlyOption::Safe` it learns this from a heartbeat round that a quorum
//! acknowledges. Rounds are numbered; every request records the first round
//! sent after it arrived, and a round acknowledged by a quorum confirms every
//! request queued at or before it. Many requests therefore share one round.
//!
//! Every heartbeat broadcast is a round, and the leader remembers the tick
//! at which it sent each one. When a quorum acknowledges round r, every
//! voter of that quorum received r no earlier than its send tick, and none of
//! them will vote for another candidate for an election timeout after
//! receiving it. So no other leader can exist before `send_tick(r) +
//! election_tick` on a clock running at the same rate: that is the lease
//! `ReadOnlyOption::LeaseBased` serves reads under (minus a drift margin).

use std::collections::{BTreeMap, VecDeque};

use crate::limits;
use crate::quorum::JointConfig;

/// One read awaiting confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadRequest {
    /// Caller's request id.
    pub context: u64,
    /// Node that asked (this node for local reads).
    pub from: u64,
    /// Commit index when the request arrived.
    pub index: u64,
    /// Round that confirms it.
    pub round: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    queue: VecDeque<ReadRequest>,
    /// Highest round each peer acknowledged.
    acks: BTreeMap<u64, u64>,
    /// Last round number sent.
    round: u64,
    /// Requests are queued for a round not yet sent.
    round_pending: bool,
    /// (round, tick sent) of rounds not yet acknowledged by a quorum.
    sent: VecDeque<(u64, u64)>,
    /// Send tick of the latest round a quorum acknowledged (lease start).
    pub quorum_ack_tick: Option<u64>,
    /// Requests received before the leader committed an entry of its term;
    /// (context, from).
    pub waiting_commit: VecDeque<(u64, u64)>,
}

impl ReadOnly {
    /// Queues a request; false if the queue is full (the read is dropped and
    /// the caller times out).
    pub fn add(&mut self, context: u64, from: u64, index: u64) -> bool {
        if self.queue.len() >= limits::MAX_PENDING_READ_INDEX {
            return false;
        }
        self.queue.push_back(ReadRequest {
            context,
            from,
            index,
            round: self.round + 1,
        });
        self.round_pending = true;
        true
    }

    /// Queues a request until the leader commits in its term.
    pub fn add_waiting(&mut self, context: u64, from: u64) -> bool {
        if self.waiting_commit.len() >= limits::MAX_PENDING_READ_INDEX {
            return false;
        }
        self.waiting_commit.push_back((context, from));
        true
    }

    /// Starts a round sent at `tick`; returns its number.
    pub fn new_round(&mut self, tick: u64) -> u64 {
        self.round += 1;
        self.round_pending = false;
        if self.sent.len() >= limits::MAX_UNACKED_READ_ROUNDS {
            // The oldest round cannot extend the lease beyond newer ones.
            self.sent.pop_front();
        }
        self.sent.push_back((self.round, tick));
        self.round
    }

    /// Starts a round if requests wait for one.
    pub fn take_round(&mut self, tick: u64) -> Option<u64> {
        self.round_pending.then(|| self.new_round(tick))
    }

    pub fn round_pending(&self) -> bool {
        self.round_pending
    }

    pub fn ack(&mut self, from: u64, round: u64) {
        let a = self.acks.entry(from).or_insert(0);
        *a = (*a).max(round);
    }

    /// Pops every request a quorum has confirmed, and advances the lease.
    pub fn confirmed(&mut self, voters: &JointConfig, me: u64) -> Vec<ReadRequest> {
        let acks = &self.acks;
        let quorum_round = voters.committed(|id| {
            if id == me {
                u64::MAX
            } else {
                acks.get(&id).copied().unwrap_or(0)
            }
        });
        while let Some(&(round, tick)) = self.sent.front() {
            if round > quorum_round {
                break;
            }
            self.quorum_ack_tick = Some(tick);
            self.sent.pop_front();
        }
        let n = self
            .queue
            .iter()
            .take_while(|r| r.round <= quorum_round)
            .count();
        self.queue.drain(..n).collect()
    }

    /// Forgets everything (leadership changed; pending reads are dropped and
    /// their callers retry). Round numbers keep growing so that a late
    /// acknowledgement of an old round cannot confirm a new request.
    pub fn reset(&mut self) {
        self.queue.clear();
        self.acks.clear();
        self.waiting_commit.clear();
        self.round_pending = false;
        self.sent.clear();
        self.quorum_ack_tick = None;
    }
}
