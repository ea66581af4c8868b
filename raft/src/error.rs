//! Errors returned by the Raft core. Bugs (broken invariants) are asserts.

use thiserror::Error;

/// Errors a [`crate::Storage`] implementation reports.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StorageError {
    /// The requested index is older than the storage's first index.
    #[error("requested index is unavailable due to compaction")]
    Compacted,
    /// The requested index is beyond the storage's last index.
    #[error("requested entry at index is unavailable")]
    Unavailable,
    /// A snapshot is being produced; the leader retries later.
    #[error("snapshot is temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
}

/// Errors from the Raft core's API.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Error {
    /// The proposal was not appended: no leader, a leader transfer is in
    /// progress, too much uncommitted data, or a conf change is pending.
    #[error("raft proposal dropped: {0}")]
    ProposalDropped(&'static str),
    /// A message kind that only the local node may generate arrived from a
    /// peer, or a message was addressed to another node.
    #[error("raft: cannot step message {0}")]
    InvalidMessage(&'static str),
    /// A message came from a node that is not a member.
    #[error("raft: cannot step as peer not found")]
    PeerNotFound,
    /// The configuration is invalid.
    #[error("raft: invalid config: {0}")]
    ConfigInvalid(String),
    /// A membership change cannot be applied to the current configuration.
    #[error("raft: invalid conf change: {0}")]
    ConfChangeInvalid(String),
    /// A conf change entry could not be decoded.
    #[error("raft: malformed conf change entry: {0}")]
    ConfChangeMalformed(&'static str),
    /// Storage failed.
    #[error("raft: storage: {0}")]
    Storage(#[from] StorageError),
}

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, Error>;
