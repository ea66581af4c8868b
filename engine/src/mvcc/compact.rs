//! Compaction and the history hash.
//!
//! A compaction at `rev` keeps, for every key, the newest version at or
//! below `rev` unless it is a tombstone, and every version above `rev`
//! (etcd's `keyIndex.compact`). The compaction point moves at once; the
//! versions are freed in steps of at most `COMPACTION_STEP_KEYS` keys, one
//! step before each write (so no write waits for a pass over millions of
//! keys, as etcd frees in batches), and not at all while a
//! [`super::Snapshot`] is being produced — it needs the history as of its
//! revision. Nothing can observe the difference: reads below the
//! compaction point fail either way, and the hash and snapshots select kept
//! versions by the compaction point, not by what happens to be stored.

use std::sync::atomic::Ordering;

use super::history::Stored;
use super::key::Key;
use super::snapshot::len_u32;
use super::{Error, HashKv, Mvcc};
use crate::limits::COMPACTION_STEP_KEYS;

impl Mvcc {
    /// Compacts history at `rev` (etcd's `Compact`). Returns the revision
    /// of the response header (the current revision).
    pub fn compact(&mut self, rev: i64) -> Result<i64, Error> {
        if rev <= self.compact_rev {
            return Err(Error::Compacted);
        }
        if rev > self.current_rev {
            return Err(Error::FutureRev);
        }
        self.compact_rev = rev;
        // Keys already trimmed to an older point need the new one too.
        self.trim_from = None;
        self.compaction_step(COMPACTION_STEP_KEYS);
        Ok(self.current_rev)
    }

    /// Whether a snapshot currently holds compaction.
    pub fn compaction_held(&self) -> bool {
        self.holds.load(Ordering::Acquire) > 0
    }

    /// Frees every version a compaction dropped, unless a snapshot holds
    /// compaction (defragmentation and tests want it all at once).
    pub fn finish_held_compaction(&mut self) {
        while !self.compaction_step(usize::MAX) {}
    }

    /// Whether versions dropped by a compaction still wait to be freed.
    pub fn compaction_pending(&self) -> bool {
        self.trimmed_rev != self.compact_rev
    }

    /// Frees the versions a compaction dropped, from at most `keys_max`
    /// keys. Returns whether nothing is left to free (or a snapshot holds
    /// compaction, when there is nothing to do for now).
    pub fn compaction_step(&mut self, keys_max: usize) -> bool {
        if !self.compaction_pending() || self.compaction_held() {
            return true;
        }
        let compact_rev = self.compact_rev;
        let mut freed = 0u64;
        let mut emptied: Vec<Key> = Vec::new();
        let mut next: Option<Key> = None;
        let from = self.trim_from.take();
        let range = match &from {
            Some(k) => self.tree.range_mut::<[u8], _>((
                std::ops::Bound::Included(&k[..]),
                std::ops::Bound::Unbounded,
            )),
            None => self.tree.range_mut::<[u8], _>(..),
        };
        for (i, (key, history)) in range.enumerate() {
            if i == keys_max {
                next = Some(key.clone());
                break;
            }
            let (bytes, empty) = history.compact(compact_rev, key.len());
            freed += bytes;
            if empty {
                emptied.push(key.clone());
            }
        }
        // A key whose whole history goes has no live version, so it is in
        // no lease's key set: the lease index needs no update here.
        for key in &emptied {
            self.tree.remove(&key[..]);
        }
        assert!(
            freed <= self.size_bytes,
            "size accounting covers every version"
        );
        self.size_bytes -= freed;
        match next {
            Some(k) => {
                self.trim_from = Some(k);
                false
            }
            None => {
                self.trimmed_rev = compact_rev;
                true
            }
        }
    }

    /// Hashes the kept history at or below `rev` (≤ 0: the current
    /// revision); see the module docs for exactly what is hashed. As in
    /// etcd 3.5, hashing at the compaction point itself is refused.
    pub fn hash_kv(&self, rev: i64) -> Result<HashKv, Error> {
        if rev > 0 && rev <= self.compact_rev {
            return Err(Error::Compacted);
        }
        if rev > self.current_rev {
            return Err(Error::FutureRev);
        }
        let rev = if rev <= 0 { self.current_rev } else { rev };
        let mut sum = 0u64;
        let mut record = Vec::new();
        for (key, history) in &self.tree {
            let versions = history.versions();
            let from = history.kept_from(self.compact_rev);
            for stored in versions[from..].iter().take_while(|s| s.main <= rev) {
                record.clear();
                encode_version(&mut record, key, stored);
                sum = sum.wrapping_add(mix64(u64::from(crc32fast::hash(&record))));
            }
        }
        Ok(HashKv {
            hash: ((sum >> 32) ^ (sum & 0xffff_ffff)) as u32,
            compact_revision: self.compact_rev,
            hash_revision: rev,
        })
    }
}

/// The hashed record of one version (also documented in the module docs).
fn encode_version(out: &mut Vec<u8>, key: &[u8], s: &Stored) {
    out.extend_from_slice(&len_u32(key.len()).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&s.main.to_le_bytes());
    out.extend_from_slice(&s.sub.to_le_bytes());
    out.push(u8::from(s.tombstone));
    out.extend_from_slice(&s.create.to_le_bytes());
    out.extend_from_slice(&s.version.to_le_bytes());
    out.extend_from_slice(&s.lease.to_le_bytes());
    out.extend_from_slice(&len_u32(s.value.len()).to_le_bytes());
    out.extend_from_slice(&s.value);
}

/// SplitMix64's finaliser: spreads a 32-bit CRC over 64 bits so that the
/// sum of many records does not collapse into the CRC's linear structure.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::{MvccConfig, PutRequest};

    fn put(m: &mut Mvcc, key: &[u8], value: &[u8]) {
        m.put(&PutRequest {
            key,
            value,
            lease: 0,
            prev_kv: false,
            ignore_value: false,
            ignore_lease: false,
        })
        .unwrap();
    }

    /// Two versions of `n` keys, compacted at the newest revision.
    fn compacted(n: usize) -> Mvcc {
        let mut m = Mvcc::new(MvccConfig::default());
        for v in [&b"old"[..], b"new"] {
            for i in 0..n {
                put(&mut m, format!("k{i:06}").as_bytes(), v);
            }
        }
        m
    }

    #[test]
    fn a_large_compaction_is_freed_in_bounded_steps_with_the_same_result() {
        let n = COMPACTION_STEP_KEYS * 2 + 5;
        let mut stepped = compacted(n);
        let mut whole = compacted(n);
        let rev = stepped.current_revision();
        stepped.compact(rev).unwrap();
        assert!(
            stepped.compaction_pending(),
            "one step cannot free 2N+5 keys"
        );
        whole.compact(rev).unwrap();
        whole.finish_held_compaction();
        assert!(!whole.compaction_pending());
        let size_after_one_step = stepped.size_bytes();
        assert!(size_after_one_step > whole.size_bytes());
        // Each write takes one more step; three steps finish.
        put(&mut stepped, b"x", b"1");
        assert!(stepped.compaction_pending());
        put(&mut stepped, b"y", b"1");
        assert!(!stepped.compaction_pending());
        put(&mut whole, b"x", b"1");
        put(&mut whole, b"y", b"1");
        assert_eq!(stepped.size_bytes(), whole.size_bytes());
        assert_eq!(stepped.hash_kv(0).unwrap(), whole.hash_kv(0).unwrap());
    }

    #[test]
    fn a_new_compaction_during_a_stepped_one_trims_every_key_again() {
        let n = COMPACTION_STEP_KEYS + 10;
        let mut m = compacted(n);
        let first = m.current_revision() - n as i64;
        m.compact(first).unwrap();
        assert!(m.compaction_pending());
        // Third versions, then a compaction past them all.
        for i in 0..n {
            put(&mut m, format!("k{i:06}").as_bytes(), b"third");
        }
        let rev = m.current_revision();
        m.compact(rev).unwrap();
        m.finish_held_compaction();
        let mut fresh = compacted(n);
        for i in 0..n {
            put(&mut fresh, format!("k{i:06}").as_bytes(), b"third");
        }
        fresh.compact(rev).unwrap();
        fresh.finish_held_compaction();
        assert_eq!(m.size_bytes(), fresh.size_bytes());
        assert_eq!(m.hash_kv(0).unwrap(), fresh.hash_kv(0).unwrap());
    }
}
