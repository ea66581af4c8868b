//! The harness's error type: everything that stops a run before or while it
//! starts. Failed requests during a run are not errors of this kind; they are
//! counted by kind in the summary.

use std::path::PathBuf;

/// Why a run could not be set up or completed.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// A flag or combination of flags that cannot describe a run.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An endpoint could not be reached.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },

    /// The target system cannot be driven by this build or on this machine.
    #[error("{0}")]
    TargetUnavailable(String),

    /// A server process could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    /// A server process started but did not answer in time.
    #[error("{name} did not become ready within {timeout_ms} ms{log}")]
    ServerNotReady {
        name: String,
        timeout_ms: u64,
        /// The tail of the server's log, to show why.
        log: String,
    },

    /// A file or directory operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A verification step after a run found the store in an unexpected state.
    #[error("verification failed: {0}")]
    Verify(String),
}

impl PerfError {
    pub(crate) fn config(message: impl Into<String>) -> PerfError {
        PerfError::Config(message.into())
    }
}
