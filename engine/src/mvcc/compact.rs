//! Compaction and the history hash.
//!
//! A compaction at `rev` keeps, for every key, the newest version at or
//! below `rev` unless it is a tombstone, and every version above `rev`
//! (etcd's `keyIndex.compact`). The compaction point moves at once; the
//! versions are freed in steps that visit at most `COMPACTION_STEP_KEYS`
//! keys and free at most `COMPACTION_STEP_VERSIONS` versions, one step
//! before each write (so no write waits for a pass over millions of
//! versions, as etcd frees in batches), and not at all while a
//! [`super::Snapshot`] is being produced — it needs the history as of its
//! revision. A key with more dropped versions than a step frees is freed
//! over several steps, newest dropped versions first, its boundary version
//! (the newest at or below the compaction point) last. Nothing can observe
//! the difference: reads below the compaction point fail either way, and
//! the hash and snapshots select kept versions by the compaction point, not
//! by what happens to be stored.

use std::sync::atomic::Ordering;

use super::history::{History, Stored};
use super::key::Key;
use super::snapshot::len_u32;
use super::{Error, HashKv, Mvcc};
use crate::limits::{COMPACTION_STEP_KEYS, COMPACTION_STEP_VERSIONS};

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

    /// Frees the versions a compaction dropped, visiting at most
    /// `keys_max` keys and freeing at most `COMPACTION_STEP_VERSIONS`
    /// versions. Returns whether nothing is left to free (or a snapshot
    /// holds compaction, when there is nothing to do for now).
    pub fn compaction_step(&mut self, keys_max: usize) -> bool {
        self.compaction_step_within(keys_max, COMPACTION_STEP_VERSIONS)
    }

    /// [`Mvcc::compaction_step`] with an explicit bound on the versions
    /// freed (at least one). A key with more dropped versions than are left
    /// in the step is freed over several steps, see [`free_some`].
    pub fn compaction_step_within(&mut self, keys_max: usize, versions_max: usize) -> bool {
        assert!(versions_max > 0, "a step that frees nothing never ends");
        if !self.compaction_pending() || self.compaction_held() {
            return true;
        }
        let compact_rev = self.compact_rev;
        let mut freed = 0u64;
        let mut budget = versions_max;
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
            if i == keys_max || budget == 0 {
                next = Some(key.clone());
                break;
            }
            let dropped = history.kept_from(compact_rev);
            if dropped > budget {
                // Resume at this key next step: what is left of its
                // history still compacts to the same kept versions.
                freed += free_some(history, compact_rev, budget, key.len());
                next = Some(key.clone());
                break;
            }
            budget -= dropped;
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

/// Frees `count` of the versions a compaction at `compact_rev` drops from
/// `history`, fewer than all of them; returns their bytes. The versions
/// freed are the newest dropped ones short of the boundary version (the
/// newest at or below `compact_rev`), which stays until the key's last
/// step: with it in place, reads at or above the compaction point, the
/// hash, snapshots and a later compaction all see the same kept versions,
/// and a dropped tombstone still hides the older puts left below it.
/// Freeing next to the boundary rather than from the oldest end moves
/// only the kept versions in memory, not the rest of a long history.
fn free_some(history: &mut History, compact_rev: i64, count: usize, key_len: usize) -> u64 {
    let dropped = history.kept_from(compact_rev);
    assert!(count > 0 && count < dropped, "a partial step frees some");
    let History::Many(versions) = history else {
        unreachable!("a history with dropped versions to spare has many")
    };
    // The boundary: a kept put at `dropped`, or a dropped tombstone just
    // below it.
    let end = if versions[dropped - 1].tombstone {
        dropped - 1
    } else {
        dropped
    };
    let start = end.saturating_sub(count);
    versions
        .drain(start..end)
        .map(|s| s.size_bytes(key_len))
        .sum()
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
        // One dropped version per key: a step frees this many keys.
        let per_step = COMPACTION_STEP_KEYS.min(COMPACTION_STEP_VERSIONS);
        let n = per_step * 2 + 5;
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

    /// `keys` keys of `versions` versions each, every `tomb_every`-th
    /// round a deletion instead of a put (0: never), then one more put of
    /// every key so each has a live version.
    fn deep(keys: usize, versions: usize, tomb_every: usize) -> Mvcc {
        let mut m = Mvcc::new(MvccConfig::default());
        for v in 0..versions {
            for i in 0..keys {
                let key = format!("k{i:06}");
                if tomb_every > 0 && v % tomb_every == tomb_every - 1 {
                    m.delete_range(&crate::mvcc::DeleteRangeRequest {
                        key: key.as_bytes(),
                        range_end: b"",
                        prev_kv: false,
                    })
                    .unwrap();
                } else {
                    put(&mut m, key.as_bytes(), format!("v{v}").as_bytes());
                }
            }
        }
        m
    }

    /// Compacts `stepped` at `rev` in steps of `versions_max` versions and
    /// a copy of it whole, checking after every step that reads at and
    /// above the compaction point and the hash do not change; returns the
    /// number of steps.
    fn compare_stepped(mut stepped: Mvcc, whole: Mvcc, rev: i64, versions_max: usize) -> usize {
        let mut whole = whole;
        let current = stepped.current_revision();
        compact_unstepped(&mut stepped, rev);
        whole.compact(rev).unwrap();
        whole.finish_held_compaction();
        let reads = |m: &Mvcc| -> Vec<_> {
            [rev, (rev + current) / 2, current]
                .iter()
                .map(|&r| m.range_all_at(r))
                .collect()
        };
        let want_reads = reads(&whole);
        let want_hash = whole.hash_kv(0).unwrap();
        let mut steps = 0;
        while !stepped.compaction_step_within(usize::MAX, versions_max) {
            steps += 1;
            assert_eq!(reads(&stepped), want_reads, "after step {steps}");
            assert_eq!(stepped.hash_kv(0).unwrap(), want_hash);
        }
        assert!(!stepped.compaction_pending());
        assert_eq!(stepped.size_bytes(), whole.size_bytes());
        assert_eq!(stepped.hash_kv(0).unwrap(), want_hash);
        assert_eq!(reads(&stepped), want_reads);
        steps
    }

    /// Moves the compaction point without the step `compact` takes.
    fn compact_unstepped(m: &mut Mvcc, rev: i64) {
        let hold = m.snapshot_begin(0).unwrap();
        m.compact(rev).unwrap();
        drop(hold);
        assert!(m.compaction_pending());
    }

    /// The whole snapshot of `m` at its current revision.
    fn snapshot_bytes(m: &Mvcc) -> Vec<Vec<u8>> {
        let mut snap = m.snapshot_begin(0).unwrap();
        std::iter::from_fn(|| m.snapshot_chunk(&mut snap, 1 << 20)).collect()
    }

    impl Mvcc {
        /// Every live key-value at `rev`, for comparing states.
        fn range_all_at(&self, rev: i64) -> Vec<crate::mvcc::KeyValue> {
            self.tree
                .iter()
                .filter_map(|(k, h)| h.at(rev).map(|s| s.to_kv(k, true)))
                .collect()
        }
    }

    #[test]
    fn many_versions_per_key_are_freed_in_steps_bounded_by_versions() {
        // 40 keys × 50 versions with deletions among them; 2000 versions
        // dropped at the latest point, 37 a step.
        let m = deep(40, 50, 7);
        let rev = m.current_revision();
        let steps = compare_stepped(deep(40, 50, 7), m, rev, 37);
        assert!(steps >= 40 * 49 / 37, "{steps} steps");
        // And at a point in the middle of the history.
        let m = deep(40, 50, 7);
        let mid = m.current_revision() / 2 + 3;
        compare_stepped(deep(40, 50, 7), m, mid, 37);
    }

    #[test]
    fn one_key_with_more_versions_than_a_step_is_split_across_steps() {
        for tomb_every in [0, 2, 5] {
            let current = deep(1, 1000, tomb_every).current_revision();
            for rev in [current, current - 1, current - 2, current / 2] {
                let whole = deep(1, 1000, tomb_every);
                let steps = compare_stepped(deep(1, 1000, tomb_every), whole, rev, 64);
                assert!(steps >= 2, "a step frees at most 64 versions");
            }
        }
    }

    #[test]
    fn a_new_compaction_or_a_snapshot_during_a_split_key_keeps_history_right() {
        let mut m = deep(1, 500, 3);
        let first = m.current_revision() / 2;
        compact_unstepped(&mut m, first);
        assert!(!m.compaction_step_within(usize::MAX, 10));
        assert!(m.compaction_pending(), "one key, split mid-way");
        // A snapshot taken now carries exactly the kept history.
        let mut fresh = deep(1, 500, 3);
        fresh.compact(first).unwrap();
        fresh.finish_held_compaction();
        assert_eq!(snapshot_bytes(&m), snapshot_bytes(&fresh));
        assert_eq!(m.hash_kv(0).unwrap(), fresh.hash_kv(0).unwrap());
        // A later compaction over the half-freed key.
        let rev = m.current_revision() - 10;
        m.compact(rev).unwrap();
        fresh.compact(rev).unwrap();
        m.finish_held_compaction();
        fresh.finish_held_compaction();
        assert_eq!(m.size_bytes(), fresh.size_bytes());
        assert_eq!(m.hash_kv(0).unwrap(), fresh.hash_kv(0).unwrap());
        assert_eq!(m.range_all_at(rev), fresh.range_all_at(rev));
    }

    /// Per-step cost, printed (not asserted): `CAIRN_COMPACTION_TIMING=1
    /// cargo test -p cairn-engine --lib compaction_step_cost -- --nocapture`.
    #[test]
    fn compaction_step_cost() {
        if std::env::var_os("CAIRN_COMPACTION_TIMING").is_none() {
            return;
        }
        for (keys, versions) in [(10_000, 100), (1, 1_000_000)] {
            let mut m = deep(keys, versions, 0);
            let rev = m.current_revision();
            compact_unstepped(&mut m, rev);
            let mut took = Vec::new();
            loop {
                let t = std::time::Instant::now();
                let done = m.compaction_step(COMPACTION_STEP_KEYS);
                took.push(t.elapsed());
                if done {
                    break;
                }
            }
            took.sort();
            println!(
                "{keys} keys x {versions} versions: {} steps, median {:?}, slowest {:?}",
                took.len(),
                took[took.len() / 2],
                took[took.len() - 1]
            );
        }
    }
}
