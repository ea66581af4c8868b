//! Leases in the shard: the lease table plus what only a server knows —
//! which member is leader, the clock, and the rate of expiry proposals.
//!
//! - Grant and revoke are Raft log entries (the client's frame), applied in
//!   log order on every member, so every member has the same leases. A
//!   grant with id 0 gets its id at apply time, derived from the cluster id
//!   and the entry's index: every member derives the same one without the
//!   proposer rewriting the client's frame.
//! - Keep-alives sent to the leader are answered by the leader at once,
//!   without a log entry: only the leader's deadlines matter. A keep-alive
//!   sent to a follower is proposed to the log like a write (the follower
//!   cannot reach the leader's table any other way); every member renews
//!   the lease when it applies the entry and the follower answers. That
//!   costs one small entry per renewal through a follower.
//! - Expiry: on each tick the leader proposes the revocation of expired
//!   leases, at most `LEASE_REVOKES_PER_S` per second, and looks at a lease
//!   again `LEASE_REVOKE_RETRY_MS` later if its revocation did not apply.
//! - A member that becomes leader renews every lease to its full TTL; a
//!   restarted member starts every deadline at the full TTL (as etcd).

use std::time::{Duration, Instant};

use crate::lease::{LeaseError, LeaseTable};
use crate::limits;
use cairn_wire::rpc;

/// The shard's leases.
pub struct Leases {
    pub table: LeaseTable,
    cluster_id: u64,
    /// Expiry proposals allowed per tick (`LEASE_REVOKES_PER_S` spread
    /// over the ticks of a second).
    revokes_per_tick: usize,
}

impl Leases {
    pub fn new(cluster_id: u64, election_timeout_ms: u64, heartbeat_interval_ms: u64) -> Leases {
        let ticks_per_s = (1000 / heartbeat_interval_ms.max(1)).max(1);
        let per_tick = limits::LEASE_REVOKES_PER_S / usize::try_from(ticks_per_s).unwrap_or(1);
        Leases {
            table: LeaseTable::new(LeaseTable::ttl_min_for_election_timeout(
                election_timeout_ms,
            )),
            cluster_id,
            revokes_per_tick: per_tick.max(1),
        }
    }

    /// Replace every lease with `entries` (id, granted TTL) from a
    /// snapshot, each due a full TTL from `now`.
    pub fn replace(&mut self, entries: &[(i64, i64)], now: Instant) {
        self.table.clear();
        for (id, ttl) in entries {
            self.table.restore(*id, *ttl, now);
        }
    }

    /// The id a grant asking for `id` gets, for the entry at `index`.
    pub fn resolve_id(&self, id: i64, index: u64) -> i64 {
        if id != 0 {
            return id;
        }
        let mut candidate = splitmix64(self.cluster_id ^ index) & (i64::MAX as u64);
        loop {
            let id = i64::try_from(candidate).unwrap_or(1);
            if id != 0 && !self.table.contains(id) {
                return id;
            }
            candidate = (candidate + 1) & (i64::MAX as u64);
        }
    }

    /// Leases whose revocation the leader should propose now; each is
    /// looked at again after the retry interval.
    pub fn due(&mut self, now: Instant) -> Vec<i64> {
        let due = self.table.expired(now, self.revokes_per_tick);
        let retry = now + Duration::from_millis(limits::LEASE_REVOKE_RETRY_MS);
        for id in &due {
            self.table.postpone(*id, retry);
        }
        due
    }
}

/// The wire code of a lease error.
pub fn error(e: LeaseError) -> (rpc::ErrorCode, String) {
    let code = match e {
        LeaseError::NotFound => rpc::ErrorCode::NotFound,
        LeaseError::Exists => rpc::ErrorCode::FailedPrecondition,
        LeaseError::TtlTooLarge => rpc::ErrorCode::OutOfRange,
        LeaseError::TooMany => rpc::ErrorCode::ResourceExhausted,
    };
    (code, e.to_string())
}

/// SplitMix64's finaliser: spreads consecutive indexes over the id space.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_ids_are_deterministic_unique_and_positive() {
        let mut l = Leases::new(42, 1000, 100);
        let a = l.resolve_id(0, 7);
        assert_eq!(a, Leases::new(42, 1000, 100).resolve_id(0, 7));
        assert!(a > 0);
        l.table.grant(a, 5, Instant::now()).unwrap();
        let b = l.resolve_id(0, 7);
        assert_ne!(a, b, "a taken id is skipped");
        assert_eq!(l.resolve_id(9, 7), 9);
    }

    #[test]
    fn expiry_is_rate_limited_and_retried_later() {
        let mut l = Leases::new(1, 1000, 100);
        let now = Instant::now();
        for id in 1..=300 {
            l.table.grant(id, 2, now).unwrap();
        }
        let later = now + Duration::from_secs(3);
        assert_eq!(l.due(later).len(), 100, "1000/s over 10 ticks per second");
        assert_eq!(l.due(later).len(), 100);
        assert_eq!(l.due(later).len(), 100);
        assert!(l.due(later).is_empty(), "proposed ones wait for the retry");
        let retry = later + Duration::from_millis(limits::LEASE_REVOKE_RETRY_MS);
        assert_eq!(l.due(retry).len(), 100);
    }
}
