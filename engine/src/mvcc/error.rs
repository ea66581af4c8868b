//! The one error type of the MVCC index.
//!
//! The `Display` text of every variant a client can see is etcd's text, byte
//! for byte, so that tools written against etcd match on it unchanged. etcd's
//! gRPC layer prefixes the two `mvcc:` errors with `etcdserver: ` when it
//! sends them to a client; that prefix belongs to the server's encoding of
//! the error, not to this type.

/// Everything the MVCC index can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A read or hash at a revision below the compaction point, or a
    /// compaction at or below the previous one.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// A read or hash at a revision above the current one, or a compaction
    /// above the current revision.
    #[error("mvcc: required revision is a future revision")]
    FutureRev,
    /// A request (or a txn compare or op) with an empty key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// A put with `ignore_value` or `ignore_lease` on a key that does not
    /// exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// A put with `ignore_value` that also carries a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// A put with `ignore_lease` that also carries a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A txn with more compares, success ops or failure ops than allowed.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A txn that could write the same key twice.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A snapshot chunk that does not decode. Snapshot chunks come from disk
    /// or from a peer, so this is an error, never an assertion.
    #[error("mvcc: snapshot chunk {chunk_seq} is corrupt at byte {offset}: {reason}")]
    CorruptSnapshot {
        /// Position of the chunk in the sequence handed to restore (0-based).
        chunk_seq: u64,
        /// Byte offset inside that chunk where decoding failed.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
}
