//! The MVCC index: key → revision history with etcd's semantics.
//!
//! [`Mvcc`] is a plain data structure — no I/O, no clock, no async. The
//! shard executor applies committed Raft entries to it in log order (each
//! write gets the next revision) and serves reads from it. Everything it
//! does is deterministic: replicas that apply the same entries hold the same
//! index and return the same [`Mvcc::hash_kv`].
//!
//! # Revisions
//!
//! A fresh index is at revision 1 (as etcd). Every write request, or txn
//! that changes something, takes the next main revision; the changes inside
//! it are numbered by the sub revision. A delete that matches nothing, or a
//! txn that only reads, leaves the revision alone.
//!
//! ```
//! use cairn_engine::mvcc::{Mvcc, MvccConfig, PutRequest, RangeRequest};
//!
//! let mut mvcc = Mvcc::new(MvccConfig::default());
//! let put = mvcc.put(&PutRequest { key: b"foo", value: b"bar", ..Default::default() })?;
//! assert_eq!(put.response.revision, 2);
//! assert_eq!(put.events.len(), 1); // for the watch hub
//!
//! let got = mvcc.range(&RangeRequest { key: b"foo", ..Default::default() })?;
//! assert_eq!(got.kvs[0].value, b"bar");
//! assert_eq!((got.kvs[0].create_revision, got.kvs[0].version), (2, 1));
//! # Ok::<(), cairn_engine::mvcc::Error>(())
//! ```
//!
//! # Writes and events
//!
//! [`Mvcc::put`], [`Mvcc::delete_range`], [`Mvcc::txn`] and
//! [`Mvcc::delete_lease_keys`] validate first and change nothing when they
//! fail, so a failed request never consumes a revision. On success they
//! return the client's response together with the events the write produced,
//! in (main, sub) order. [`Mvcc::events`] replays history for a watcher that
//! starts in the past.
//!
//! # Compaction and snapshots
//!
//! [`Mvcc::compact`] moves the compaction point at once (reads below it fail
//! with [`Error::Compacted`]) and frees the old versions — unless a snapshot
//! holds compaction ([`Mvcc::snapshot_begin`]); then the freeing waits until
//! the last [`Snapshot`] is dropped. Snapshots are streamed in bounded chunks
//! while writes continue; [`Mvcc::restore`] rebuilds an index from them. The
//! chunk format is described in `docs/mvcc.md`.
//!
//! # What [`Mvcc::hash_kv`] hashes
//!
//! For every version kept at or below the hash revision (after compaction,
//! the newest live version of each key at or below the compaction point
//! counts as kept), the record `key_len u32 | key | main i64 | sub u32 |
//! kind u8 | create i64 | version i64 | lease i64 | value_len u32 | value`
//! (little-endian; kind 0 = put, 1 = tombstone) is hashed with CRC-32
//! (IEEE), each CRC is widened to 64 bits by the SplitMix64 finaliser, and
//! the results are added modulo 2⁶⁴; the reported 32-bit hash is the sum's
//! high half XOR its low half. Addition makes the digest independent of
//! the order in which keys were written and of how many compactions led to
//! the same kept state.

mod compact;
mod error;
mod events;
mod history;
mod key;
mod read;
mod snapshot;
mod span;
mod txn;
mod types;
mod write;

pub use error::Error;
pub use history::VERSION_META_BYTES;
pub use snapshot::{Snapshot, SNAPSHOT_FORMAT_VERSION};
pub use txn::validate_txn;
pub use types::*;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crate::limits;
use history::History;
use key::Key;

/// Settings of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MvccConfig {
    /// Most compares, success ops or failure ops in one txn (`--max-txn-ops`).
    pub txn_ops_max: usize,
    /// Whether write events carry `prev_kv`. Costs a copy of the previous
    /// value per change; the watch hub may turn it off while no watcher
    /// asked for previous values.
    pub event_prev_kv: bool,
    /// Whether writes produce events at all. Off while nobody watches: the
    /// events of a put cost two or three copies of its key and value, which
    /// are thrown away unread when there is no watcher to publish them to
    /// (a watcher created later reads the history instead).
    pub events: bool,
}

impl Default for MvccConfig {
    fn default() -> Self {
        MvccConfig {
            txn_ops_max: limits::MVCC_TXN_OPS_MAX_DEFAULT,
            event_prev_kv: true,
            events: true,
        }
    }
}

/// The key → history index of one shard.
#[derive(Debug)]
pub struct Mvcc {
    /// Every key with at least one kept version.
    tree: BTreeMap<Key, History>,
    /// The store's revision: the main revision of the last write.
    current_rev: i64,
    /// The compaction point reads are checked against (-1: never compacted).
    compact_rev: i64,
    /// The compaction point history has physically been trimmed to; behind
    /// `compact_rev` while a snapshot holds compaction, or while the trim
    /// runs in steps.
    trimmed_rev: i64,
    /// Where the trim to `compact_rev` goes on: the first key not trimmed
    /// yet (`None`: from the start).
    trim_from: Option<Key>,
    /// Number of live [`Snapshot`]s; shared with them so that dropping one
    /// releases its hold without a reference to the index.
    holds: Arc<AtomicUsize>,
    /// Lease id → keys currently attached to it (sorted, so that revoking a
    /// lease deletes its keys in the same order on every replica).
    leases: BTreeMap<i64, BTreeSet<Box<[u8]>>>,
    /// Sum of [`history::Stored::size_bytes`] over all stored versions.
    size_bytes: u64,
    config: MvccConfig,
}

impl Mvcc {
    /// The history of `key`. A key short enough to be inline is searched
    /// for as a [`Key`], which compares words rather than calling memcmp at
    /// every step of the search.
    fn find(&self, key: &[u8]) -> Option<(&Key, &History)> {
        match Key::probe(key) {
            Some(probe) => self.tree.get_key_value(&probe),
            None => self.tree.get_key_value(key),
        }
    }

    /// [`Mvcc::find`], for changing the history (a function of the tree
    /// alone, so that the rest of the index stays free to change).
    fn find_mut<'t>(tree: &'t mut BTreeMap<Key, History>, key: &[u8]) -> Option<&'t mut History> {
        match Key::probe(key) {
            Some(probe) => tree.get_mut(&probe),
            None => tree.get_mut(key),
        }
    }

    /// An empty index at revision 1.
    pub fn new(config: MvccConfig) -> Mvcc {
        Mvcc {
            tree: BTreeMap::new(),
            current_rev: 1,
            compact_rev: -1,
            trimmed_rev: -1,
            trim_from: None,
            holds: Arc::new(AtomicUsize::new(0)),
            leases: BTreeMap::new(),
            size_bytes: 0,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> MvccConfig {
        self.config
    }

    /// Changes whether write events carry `prev_kv`.
    pub fn set_event_prev_kv(&mut self, on: bool) {
        self.config.event_prev_kv = on;
    }

    /// Changes whether writes produce events (see [`MvccConfig::events`]).
    pub fn set_events(&mut self, on: bool) {
        self.config.events = on;
    }

    /// The current revision (the header revision of a read now).
    pub fn current_revision(&self) -> i64 {
        self.current_rev
    }

    /// The compaction point (-1 if never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.compact_rev
    }

    /// Approximate logical bytes of all stored history, for the quota:
    /// key + value + [`VERSION_META_BYTES`] per stored version. Maintained
    /// incrementally; drops when compaction frees versions.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Number of keys with stored history (live or not).
    pub fn key_count(&self) -> usize {
        self.tree.len()
    }

    /// The keys currently attached to lease `id`, in key order.
    pub fn keys_with_lease(&self, id: i64) -> impl Iterator<Item = &[u8]> + '_ {
        self.leases
            .get(&id)
            .into_iter()
            .flat_map(|keys| keys.iter().map(|k| &k[..]))
    }

    /// Number of keys currently attached to lease `id`.
    pub fn lease_key_count(&self, id: i64) -> usize {
        self.leases.get(&id).map_or(0, BTreeSet::len)
    }
}

/// Moves `key` from lease `old` to lease `new` in the side index (0 = none).
fn relink_lease(leases: &mut BTreeMap<i64, BTreeSet<Box<[u8]>>>, key: &[u8], old: i64, new: i64) {
    if old == new {
        return;
    }
    if old != 0 {
        if let Some(keys) = leases.get_mut(&old) {
            let removed = keys.remove(key);
            assert!(removed, "a leased key is in its lease's key set");
            if keys.is_empty() {
                leases.remove(&old);
            }
        }
    }
    if new != 0 {
        leases.entry(new).or_default().insert(Box::from(key));
    }
}
