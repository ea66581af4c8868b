//! Compaction and the history hash.
//!
//! A compaction at `rev` keeps, for every key, the newest version at or
//! below `rev` unless it is a tombstone, and every version above `rev`
//! (etcd's `keyIndex.compact`). The compaction point moves at once; the
//! versions are freed at once too, unless a [`super::Snapshot`] is being
//! produced — it needs the history as of its revision — in which case the
//! freeing runs on the first write or compaction after the last snapshot is
//! dropped. Until then nothing can observe the difference: reads below the
//! compaction point fail either way, and the hash and snapshots select kept
//! versions by the compaction point, not by what happens to be stored.

use std::sync::atomic::Ordering;

use super::history::Stored;
use super::snapshot::len_u32;
use super::{Error, HashKv, Mvcc};

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
        self.finish_held_compaction();
        Ok(self.current_rev)
    }

    /// Whether a snapshot currently holds compaction.
    pub fn compaction_held(&self) -> bool {
        self.holds.load(Ordering::Acquire) > 0
    }

    /// Frees the versions a compaction dropped, if it had to wait for a
    /// snapshot and none holds it any more. Writes call this themselves; the
    /// executor may call it when idle to do the work off the write path.
    pub fn finish_held_compaction(&mut self) {
        if self.trimmed_rev == self.compact_rev || self.compaction_held() {
            return;
        }
        let compact_rev = self.compact_rev;
        let mut freed = 0u64;
        // A key whose whole history goes has no live version, so it is in
        // no lease's key set: the lease index needs no update here.
        self.tree.retain(|key, history| {
            let (bytes, empty) = history.compact(compact_rev, key.len());
            freed += bytes;
            !empty
        });
        assert!(
            freed <= self.size_bytes,
            "size accounting covers every version"
        );
        self.size_bytes -= freed;
        self.trimmed_rev = compact_rev;
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
