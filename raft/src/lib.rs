//! Raft consensus as a pure, deterministic state machine.
//!
//! The node never touches a disk, a socket or a clock. The caller feeds it
//! ticks ([`RawNode::tick`]), peer messages ([`RawNode::step`]) and requests
//! ([`RawNode::propose`], [`RawNode::read_index`], ...), and drains the
//! resulting work as a [`Ready`]: entries and state to persist, messages to
//! send (some at once, some only after persisting), entries to apply and
//! reads to serve. [`Ready`] documents the order of those obligations.
//!
//! Features: pre-vote, check-quorum with leader leases, batched proposals,
//! pipelined replication with per-follower windows bounded by count and
//! bytes, probe/replicate/snapshot flow control with fast backtracking,
//! ReadIndex (safe and lease-based), snapshots, learners, joint consensus,
//! and leadership transfer.
//!
//! A single-node cluster, driven synchronously:
//!
//! ```
//! use bytes::Bytes;
//! use cairn_raft::{Config, ConfState, MemStorage, RawNode, Role};
//!
//! let storage = MemStorage::new_with_conf_state(ConfState::with_voters(&[1]));
//! let mut node = RawNode::new(&Config::new(1, 10, 1), storage).unwrap();
//! node.campaign();
//! let mut applied = Vec::new();
//! for round in 0..4 {
//!     if round == 2 {
//!         node.propose(vec![Bytes::from_static(b"hello")]).unwrap();
//!     }
//!     while node.has_ready() {
//!         let rd = node.ready();
//!         // Single node: no messages to send. Persist, then apply.
//!         node.storage_mut().append(&rd.entries);
//!         if let Some(hs) = rd.hard_state {
//!             node.storage_mut().set_hard_state(hs);
//!         }
//!         applied.extend(rd.committed_entries.iter().map(|e| e.data.clone()));
//!         node.advance(&rd);
//!     }
//! }
//! assert_eq!(node.status().role, Role::Leader);
//! // The leader's empty entry, then the proposal.
//! assert_eq!(applied, vec![Bytes::new(), Bytes::from_static(b"hello")]);
//! ```

mod confchange;
mod config;
mod error;
pub mod limits;
mod log;
mod progress;
mod quorum;
mod raft;
mod raw_node;
mod read_only;
mod rng;
mod storage;
mod tracker;
mod types;
mod unstable;

pub use confchange::{ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition};
pub use config::{Config, ReadOnlyOption};
pub use error::{Error, Result, StorageError};
pub use log::limit_size;
pub use progress::{Inflights, ProgressState};
pub use raw_node::{ProgressStatus, RawNode, Ready, Status};
pub use rng::Rng;
pub use storage::{MemStorage, RaftState, Storage, StorageResult};
pub use types::{
    ConfState, Entry, EntryKind, HardState, Message, MessageKind, ReadState, Role, Snapshot,
    SnapshotMetadata, SoftState, ENTRY_OVERHEAD_BYTES,
};
