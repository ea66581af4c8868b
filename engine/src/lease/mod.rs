//! The lease table: which leases exist, their granted TTL, and — on the
//! leader — when each expires.
//!
//! A plain data structure, driven by the shard: no clock (every call that
//! needs the time takes `now`), no I/O. Which leases exist is replicated
//! state (grants and revokes are Raft log entries, applied in log order on
//! every member, and the table is part of the snapshot); deadlines are not:
//! they live only in memory, are meaningful only on the leader, and restart
//! at the full TTL whenever a member becomes leader or restarts (as etcd).
//! The keys attached to a lease are tracked by the MVCC index
//! (`Mvcc::keys_with_lease`), so this table never disagrees with it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cairn_engine::lease::{LeaseError, LeaseTable};
//!
//! let mut table = LeaseTable::new(2);
//! let now = Instant::now();
//! // A TTL below the minimum is raised to it.
//! assert_eq!(table.grant(7, 1, now), Ok(2));
//! assert_eq!(table.grant(7, 5, now), Err(LeaseError::Exists));
//! assert_eq!(table.remaining_s(7, now), Some(2));
//! assert!(table.expired(now + Duration::from_secs(3), 10).contains(&7));
//! assert!(table.revoke(7).is_ok());
//! assert_eq!(table.keep_alive(7, now), None);
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::limits;

/// What can go wrong with a lease request; the texts are etcd's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("etcdserver: requested lease not found")]
    NotFound,
    #[error("etcdserver: lease already exists")]
    Exists,
    #[error("etcdserver: too large lease TTL")]
    TtlTooLarge,
    #[error("etcdserver: too many leases")]
    TooMany,
}

/// One lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The TTL it was granted with, in seconds (after raising to the minimum).
    pub granted_ttl_s: i64,
    /// When it expires unless renewed (meaningful on the leader only).
    pub deadline: Instant,
}

/// Every lease of the shard, by id.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    leases: BTreeMap<i64, Lease>,
    ttl_min_s: i64,
}

impl LeaseTable {
    /// An empty table; shorter TTLs are raised to `ttl_min_s`.
    pub fn new(ttl_min_s: i64) -> LeaseTable {
        assert!(ttl_min_s > 0, "the minimum lease TTL is positive");
        LeaseTable {
            leases: BTreeMap::new(),
            ttl_min_s,
        }
    }

    /// etcd's minimum TTL: ceil(1.5 × election timeout), in seconds.
    pub fn ttl_min_for_election_timeout(election_timeout_ms: u64) -> i64 {
        let ms = election_timeout_ms.saturating_mul(3).div_ceil(2);
        i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX).max(1)
    }

    /// The TTL a grant of `ttl_s` gets.
    pub fn effective_ttl_s(&self, ttl_s: i64) -> i64 {
        ttl_s.max(self.ttl_min_s)
    }

    /// Adds lease `id` (not 0) with `ttl_s`; returns the granted TTL.
    pub fn grant(&mut self, id: i64, ttl_s: i64, now: Instant) -> Result<i64, LeaseError> {
        assert!(
            id != 0,
            "lease id 0 means \"pick one\" and is resolved first"
        );
        if ttl_s > limits::LEASE_TTL_MAX_S {
            return Err(LeaseError::TtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(LeaseError::Exists);
        }
        if self.leases.len() >= limits::LEASES_MAX {
            return Err(LeaseError::TooMany);
        }
        let ttl = self.effective_ttl_s(ttl_s);
        self.leases.insert(
            id,
            Lease {
                granted_ttl_s: ttl,
                deadline: deadline(now, ttl),
            },
        );
        Ok(ttl)
    }

    /// Adds a lease restored from a snapshot, due a full TTL from `now`.
    pub fn restore(&mut self, id: i64, granted_ttl_s: i64, now: Instant) {
        self.leases.insert(
            id,
            Lease {
                granted_ttl_s,
                deadline: deadline(now, granted_ttl_s),
            },
        );
    }

    /// Forgets every lease (the state is being replaced by a snapshot).
    pub fn clear(&mut self) {
        self.leases.clear();
    }

    /// Removes lease `id`. The caller deletes its keys.
    pub fn revoke(&mut self, id: i64) -> Result<Lease, LeaseError> {
        self.leases.remove(&id).ok_or(LeaseError::NotFound)
    }

    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Every lease id, ascending.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.leases.keys().copied()
    }

    /// Every lease as (id, granted TTL), ascending (for snapshots).
    pub fn entries(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.leases.iter().map(|(id, l)| (*id, l.granted_ttl_s))
    }

    /// Renews lease `id` to its full TTL; returns that TTL, or `None` if the
    /// lease does not exist or has already expired (its revocation is due).
    pub fn keep_alive(&mut self, id: i64, now: Instant) -> Option<i64> {
        let lease = self.leases.get_mut(&id)?;
        if lease.deadline <= now {
            return None;
        }
        lease.deadline = deadline(now, lease.granted_ttl_s);
        Some(lease.granted_ttl_s)
    }

    /// Renews lease `id` to its full TTL whether or not its deadline has
    /// passed (a member that is not the leader does not track deadlines:
    /// for it a lease lives until its revocation is applied).
    pub fn renew(&mut self, id: i64, now: Instant) -> Option<i64> {
        let lease = self.leases.get_mut(&id)?;
        lease.deadline = deadline(now, lease.granted_ttl_s);
        Some(lease.granted_ttl_s)
    }

    /// Renews every lease to its full TTL (a new leader, as etcd's `Promote`).
    pub fn renew_all(&mut self, now: Instant) {
        for lease in self.leases.values_mut() {
            lease.deadline = deadline(now, lease.granted_ttl_s);
        }
    }

    /// Remaining whole seconds of lease `id` (rounded up; -1 once expired),
    /// or `None` if it does not exist.
    pub fn remaining_s(&self, id: i64, now: Instant) -> Option<i64> {
        let lease = self.leases.get(&id)?;
        if lease.deadline <= now {
            // Expired, its revocation not applied yet: its keys are still
            // there, so it is not "gone" (-1) but has no time left.
            return Some(0);
        }
        let left = lease.deadline - now;
        let s = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(i64::try_from(s).unwrap_or(i64::MAX))
    }

    /// Up to `max` expired leases, earliest deadline first.
    pub fn expired(&self, now: Instant, max: usize) -> Vec<i64> {
        let mut due: Vec<(Instant, i64)> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, l)| (l.deadline, *id))
            .collect();
        due.sort_unstable();
        due.into_iter().take(max).map(|(_, id)| id).collect()
    }

    /// Postpones the next expiry check of lease `id` (its revocation was
    /// proposed; if the proposal is lost, it is proposed again after this).
    pub fn postpone(&mut self, id: i64, until: Instant) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.deadline = until;
        }
    }
}

/// `now + ttl_s`, saturating far in the future (TTLs reach 9e9 s).
fn deadline(now: Instant, ttl_s: i64) -> Instant {
    let secs = u64::try_from(ttl_s.max(0)).unwrap_or(0);
    now.checked_add(Duration::from_secs(secs))
        .unwrap_or_else(|| now + Duration::from_secs(limits::LEASE_DEADLINE_FAR_S))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_minimum_follows_the_election_timeout() {
        assert_eq!(LeaseTable::ttl_min_for_election_timeout(1000), 2);
        assert_eq!(LeaseTable::ttl_min_for_election_timeout(500), 1);
        assert_eq!(LeaseTable::ttl_min_for_election_timeout(3000), 5);
    }

    #[test]
    fn grant_revoke_and_expiry() {
        let now = Instant::now();
        let mut t = LeaseTable::new(2);
        assert_eq!(t.grant(1, 10, now), Ok(10));
        assert_eq!(t.grant(2, 1, now), Ok(2));
        assert_eq!(
            t.grant(3, limits::LEASE_TTL_MAX_S + 1, now),
            Err(LeaseError::TtlTooLarge)
        );
        assert_eq!(
            t.grant(4, limits::LEASE_TTL_MAX_S, now),
            Ok(limits::LEASE_TTL_MAX_S)
        );
        assert_eq!(t.ids().collect::<Vec<_>>(), vec![1, 2, 4]);
        let later = now + Duration::from_millis(2500);
        assert_eq!(t.expired(later, 10), vec![2]);
        assert_eq!(t.remaining_s(2, later), Some(0));
        assert_eq!(t.remaining_s(1, later), Some(8));
        assert_eq!(
            t.keep_alive(2, later),
            None,
            "an expired lease is not renewed"
        );
        assert_eq!(t.keep_alive(1, later), Some(10));
        assert_eq!(t.remaining_s(1, later), Some(10));
        t.renew_all(later);
        assert!(t.expired(later, 10).is_empty());
        assert!(t.revoke(2).is_ok());
        assert_eq!(t.revoke(2), Err(LeaseError::NotFound));
        assert_eq!(t.remaining_s(2, later), None);
    }
}
