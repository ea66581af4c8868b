//! One key's history: the revisions of the key that are still kept.
//!
//! etcd's `keyIndex` keeps a list of generations, each a run of puts ended by
//! a tombstone. Here the generations are flattened into one ascending list of
//! [`Stored`] versions; a tombstone entry ends a generation, and every put
//! carries its generation's create revision and its version number, so a read
//! at any revision is one search with no walking of generations. Most keys
//! have exactly one kept version, so [`History::One`] stores it inline in the
//! B-tree node, without a separate allocation.

use super::types::KeyValue;

/// Approximate bytes of bookkeeping per stored version that the size
/// accounting adds to the key and value bytes: the revision pair, create
/// revision, version and lease (five 8-byte integers), as etcd's backend
/// stores them beside each key-value pair.
pub const VERSION_META_BYTES: u64 = 40;

/// One stored revision of a key: a put or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Main revision of the change.
    pub main: i64,
    /// Sub revision of the change.
    pub sub: u32,
    /// True for a deletion (then create, version, lease are 0, value empty).
    pub tombstone: bool,
    /// Create revision of the generation this put belongs to.
    pub create: i64,
    /// Version of the key after this put.
    pub version: i64,
    /// Lease id, 0 for none.
    pub lease: i64,
    /// The value, stored once.
    pub value: Box<[u8]>,
}

impl Stored {
    /// A tombstone at (main, sub).
    pub fn tombstone(main: i64, sub: u32) -> Stored {
        Stored {
            main,
            sub,
            tombstone: true,
            create: 0,
            version: 0,
            lease: 0,
            value: Box::default(),
        }
    }

    /// The public form of this put, for `key`.
    pub fn to_kv(&self, key: &[u8], with_value: bool) -> KeyValue {
        debug_assert!(!self.tombstone);
        KeyValue {
            key: key.to_vec(),
            create_revision: self.create,
            mod_revision: self.main,
            version: self.version,
            value: if with_value {
                self.value.to_vec()
            } else {
                Vec::new()
            },
            lease: self.lease,
        }
    }

    /// Bytes this version counts for in [`super::Mvcc::size_bytes`].
    pub fn size_bytes(&self, key_len: usize) -> u64 {
        (key_len + self.value.len()) as u64 + VERSION_META_BYTES
    }

    /// (main, sub) as one comparable pair.
    pub fn rev(&self) -> (i64, u32) {
        (self.main, self.sub)
    }
}

/// A key's kept versions, ascending by (main, sub). Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// The common case: one kept version, stored inline.
    One(Stored),
    /// Two or more kept versions.
    Many(Vec<Stored>),
}

impl History {
    /// All kept versions, oldest first.
    pub fn versions(&self) -> &[Stored] {
        match self {
            History::One(s) => std::slice::from_ref(s),
            History::Many(v) => v,
        }
    }

    /// The newest version.
    pub fn latest(&self) -> &Stored {
        match self {
            History::One(s) => s,
            History::Many(v) => {
                assert!(!v.is_empty(), "a key history is never empty");
                &v[v.len() - 1]
            }
        }
    }

    /// The key's live version as of `rev`: the newest version at or below
    /// `rev`, unless that is a tombstone.
    pub fn at(&self, rev: i64) -> Option<&Stored> {
        let versions = self.versions();
        // Reads are mostly at the current revision: look from the newest end.
        let found = versions.iter().rev().find(|s| s.main <= rev)?;
        (!found.tombstone).then_some(found)
    }

    /// The key's live version now (after every write applied so far).
    pub fn live(&self) -> Option<&Stored> {
        let latest = self.latest();
        (!latest.tombstone).then_some(latest)
    }

    /// Appends a newer version.
    pub fn push(&mut self, stored: Stored) {
        assert!(
            stored.rev() > self.latest().rev(),
            "revisions of a key strictly increase"
        );
        match self {
            History::One(_) => {
                let History::One(first) = std::mem::replace(self, History::Many(Vec::new())) else {
                    unreachable!("matched One above")
                };
                *self = History::Many(vec![first, stored]);
            }
            History::Many(v) => v.push(stored),
        }
    }

    /// Index of the first version that a compaction at `compact_rev` keeps:
    /// the newest version at or below `compact_rev` survives unless it is a
    /// tombstone, and everything above `compact_rev` survives. Equals
    /// `versions().len()` when nothing survives.
    pub fn kept_from(&self, compact_rev: i64) -> usize {
        let versions = self.versions();
        match versions.iter().rposition(|s| s.main <= compact_rev) {
            None => 0,
            Some(i) if versions[i].tombstone => i + 1,
            Some(i) => i,
        }
    }

    /// Drops what a compaction at `compact_rev` does not keep. Returns the
    /// dropped versions' size in bytes and whether the history is now empty
    /// (then the caller removes the key).
    pub fn compact(&mut self, compact_rev: i64, key_len: usize) -> (u64, bool) {
        let from = self.kept_from(compact_rev);
        if from == 0 {
            return (0, false);
        }
        let freed: u64 = self.versions()[..from]
            .iter()
            .map(|s| s.size_bytes(key_len))
            .sum();
        let len = self.versions().len();
        if from == len {
            return (freed, true);
        }
        if let History::Many(v) = self {
            v.drain(..from);
            if v.len() == 1 {
                let only = v.pop().unwrap_or_else(|| unreachable!("length checked"));
                *self = History::One(only);
            } else {
                v.shrink_to_fit();
            }
        }
        (freed, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(main: i64, create: i64, version: i64) -> Stored {
        Stored {
            main,
            sub: 0,
            tombstone: false,
            create,
            version,
            lease: 0,
            value: vec![main as u8].into_boxed_slice(),
        }
    }

    #[test]
    fn history_stays_small() {
        // One B-tree slot per key holds the whole common-case history.
        assert!(std::mem::size_of::<History>() <= 64);
    }

    #[test]
    fn at_respects_tombstones_and_generations() {
        let mut h = History::One(put(2, 2, 1));
        h.push(put(3, 2, 2));
        h.push(Stored::tombstone(5, 0));
        h.push(put(7, 7, 1));
        assert!(h.at(1).is_none());
        assert_eq!(h.at(2).map(|s| s.version), Some(1));
        assert_eq!(h.at(4).map(|s| s.version), Some(2));
        assert!(h.at(5).is_none());
        assert!(h.at(6).is_none());
        assert_eq!(h.at(9).map(|s| s.create), Some(7));
    }

    #[test]
    fn compaction_keeps_latest_live_version_and_newer() {
        let mut h = History::One(put(2, 2, 1));
        h.push(put(3, 2, 2));
        h.push(Stored::tombstone(5, 0));
        h.push(put(7, 7, 1));
        assert_eq!(h.kept_from(1), 0);
        assert_eq!(h.kept_from(2), 0);
        assert_eq!(h.kept_from(4), 1);
        // A tombstone at or below the compaction point goes with its generation.
        assert_eq!(h.kept_from(5), 3);
        assert_eq!(h.kept_from(6), 3);
        let (_, empty) = h.compact(6, 1);
        assert!(!empty);
        assert_eq!(h, History::One(put(7, 7, 1)));

        let mut dead = History::One(put(2, 2, 1));
        dead.push(Stored::tombstone(3, 0));
        let (freed, empty) = dead.compact(3, 1);
        assert!(empty);
        assert_eq!(freed, 2 * VERSION_META_BYTES + 2 + 1);
    }
}
