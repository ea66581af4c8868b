//! Errors of the WAL.

use std::path::PathBuf;

use crate::io::IoError;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file operation failed. If it was a write or a sync of the log, the
    /// WAL is now fail-stopped.
    #[error("wal: {0}")]
    Io(#[from] IoError),
    /// A damaged record before the tail of the log: the log cannot be trusted
    /// and the member refuses to start.
    #[error("wal: corrupt log in {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// An earlier write or fdatasync failed; the WAL accepts nothing more.
    #[error("wal: stopped after an earlier failure ({0}); restart the member")]
    FailStopped(String),
    /// The WAL was closed.
    #[error("wal: closed")]
    Closed,
    /// An entry's payload is larger than one batch can hold.
    #[error("wal: entry payload of {len} bytes exceeds the limit of {max} bytes")]
    EntryTooLarge { len: usize, max: usize },
    /// An index or term above `WAL_INDEX_TERM_MAX`: recovery would refuse
    /// the log, so it is not written.
    #[error("wal: {what} {value} exceeds the limit of {max}")]
    OutOfRange {
        what: &'static str,
        value: u64,
        max: u64,
    },
}
