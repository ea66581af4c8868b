//! cairnctl's failures and exit codes (etcdctl's, so scripts keep working).

use std::fmt;

/// etcdctl's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// A request failed (the server or the connection said no).
    Error = 1,
    BadConnection = 2,
    /// Unparsable txn or watch input.
    InvalidInput = 3,
    /// A valid flag with a value that is not supported (e.g. `-w table` for
    /// a command without a table form).
    BadFeature = 4,
    Interrupted = 5,
    Io = 6,
    /// Wrong arguments or flags.
    BadArgs = 128,
}

/// A failure that ends cairnctl: printed as `Error: <message>` on stderr,
/// then the process exits with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlError {
    pub code: ExitCode,
    pub message: String,
}

impl CtlError {
    pub fn new(code: ExitCode, message: impl Into<String>) -> CtlError {
        CtlError {
            code,
            message: message.into(),
        }
    }
    pub fn bad_args(message: impl Into<String>) -> CtlError {
        CtlError::new(ExitCode::BadArgs, message)
    }
    pub fn bad_feature(message: impl Into<String>) -> CtlError {
        CtlError::new(ExitCode::BadFeature, message)
    }
    pub fn invalid_input(message: impl Into<String>) -> CtlError {
        CtlError::new(ExitCode::InvalidInput, message)
    }
    /// Writing the output failed (e.g. stdout closed).
    pub fn io(error: std::io::Error) -> CtlError {
        CtlError::new(ExitCode::Io, error.to_string())
    }
}

impl From<crate::Error> for CtlError {
    /// A failed request. etcdctl reports an unreachable cluster as the
    /// expiry of its command timeout, so this does too.
    fn from(error: crate::Error) -> CtlError {
        let message = match &error {
            crate::Error::DialTimeout { .. } => "context deadline exceeded".to_string(),
            other => other.to_string(),
        };
        CtlError::new(ExitCode::Error, message)
    }
}

impl From<std::io::Error> for CtlError {
    fn from(error: std::io::Error) -> CtlError {
        CtlError::io(error)
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error: {}", self.message)
    }
}

impl std::error::Error for CtlError {}
