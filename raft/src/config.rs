//! Node configuration and its validation.

use crate::error::{Error, Result};
use crate::limits;

/// How the leader confirms it is still leader before answering a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOnlyOption {
    /// Confirm with a heartbeat round acknowledged by a quorum. Safe under
    /// any clock behaviour. Reads issued between two Readys share a round.
    Safe,
    /// Trust the leader lease that check-quorum maintains: answer at once.
    /// Assumes clocks on all nodes tick at roughly the same rate (bounded
    /// drift well below the election timeout); a paused or slow leader clock
    /// can otherwise serve a stale read. Requires `check_quorum`.
    LeaseBased,
}

/// Configuration of one Raft node.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id (non-zero).
    pub id: u64,
    /// Ticks without hearing from a leader before a follower campaigns. The
    /// actual timeout is randomized in `[election_tick, 2 * election_tick)`.
    pub election_tick: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_tick: usize,
    /// Bytes of entries per Append message (at least one entry is sent).
    pub max_size_per_msg_bytes: u64,
    /// Append messages in flight per follower while replicating.
    pub max_inflight_msgs: usize,
    /// Bytes of entries in flight per follower while replicating.
    pub max_inflight_bytes: u64,
    /// Bytes of uncommitted entries a leader accepts before dropping
    /// proposals.
    pub max_uncommitted_entries_bytes: u64,
    /// Bytes of committed entries per Ready (at least one entry).
    pub max_committed_bytes_per_ready: u64,
    /// Run a pre-vote round before raising the term, so a node rejoining from
    /// a partition cannot disrupt a working leader.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum within an
    /// election timeout; followers that hear from a leader ignore votes.
    pub check_quorum: bool,
    /// How reads are confirmed.
    pub read_only_option: ReadOnlyOption,
    /// Index the application has applied (on restart).
    pub applied: u64,
    /// Seed for the election-timeout randomization.
    pub seed: u64,
}

impl Config {
    /// A configuration with default limits and the given timing.
    pub fn new(id: u64, election_tick: usize, heartbeat_tick: usize) -> Self {
        Config {
            id,
            election_tick,
            heartbeat_tick,
            max_size_per_msg_bytes: limits::MAX_SIZE_PER_MSG_BYTES_DEFAULT,
            max_inflight_msgs: limits::MAX_INFLIGHT_MSGS_DEFAULT,
            max_inflight_bytes: limits::MAX_INFLIGHT_BYTES_DEFAULT,
            max_uncommitted_entries_bytes: limits::MAX_UNCOMMITTED_ENTRIES_BYTES_DEFAULT,
            max_committed_bytes_per_ready: limits::MAX_COMMITTED_BYTES_PER_READY_DEFAULT,
            pre_vote: true,
            check_quorum: true,
            read_only_option: ReadOnlyOption::Safe,
            applied: 0,
            seed: id,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        let invalid = |s: &str| Err(Error::ConfigInvalid(s.to_string()));
        if self.id == 0 {
            return invalid("id must not be 0");
        }
        if self.heartbeat_tick == 0 {
            return invalid("heartbeat_tick must be greater than 0");
        }
        if self.election_tick <= self.heartbeat_tick {
            return invalid("election_tick must be greater than heartbeat_tick");
        }
        if self.election_tick > limits::ELECTION_TICK_LIMIT {
            return invalid("election_tick is too large");
        }
        if self.max_inflight_msgs == 0 || self.max_inflight_msgs > limits::MAX_INFLIGHT_MSGS_LIMIT {
            return invalid("max_inflight_msgs must be in 1..=MAX_INFLIGHT_MSGS_LIMIT");
        }
        if self.max_size_per_msg_bytes == 0 {
            return invalid("max_size_per_msg_bytes must be greater than 0");
        }
        if self.max_inflight_bytes < self.max_size_per_msg_bytes {
            return invalid("max_inflight_bytes must be at least max_size_per_msg_bytes");
        }
        if self.max_uncommitted_entries_bytes == 0 || self.max_committed_bytes_per_ready == 0 {
            return invalid("byte limits must be greater than 0");
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && !self.check_quorum {
            return invalid("read_only_option LeaseBased requires check_quorum");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_timing_and_lease_without_check_quorum() {
        assert!(Config::new(1, 10, 1).validate().is_ok());
        assert!(Config::new(0, 10, 1).validate().is_err());
        assert!(Config::new(1, 2, 2).validate().is_err());
        let mut c = Config::new(1, 10, 1);
        c.check_quorum = false;
        c.read_only_option = ReadOnlyOption::LeaseBased;
        assert!(c.validate().is_err());
        let mut c = Config::new(1, 10, 1);
        c.max_inflight_bytes = 1;
        assert!(c.validate().is_err());
    }
}
