//! The client's error type.
//!
//! Server errors arrive as a status code plus etcd's message text; the client
//! maps the message to a variant so callers can match on what went wrong
//! (`Error::Compacted`) while `Display` prints exactly the text etcd's tools
//! print ("etcdserver: mvcc: required revision has been compacted").

use std::fmt;

/// A status code, as gRPC defines them (etcd's errors carry one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Ok,
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    /// The code for gRPC's numeric value; unknown values map to `Unknown`.
    pub fn from_u8(value: u8) -> Code {
        match value {
            0 => Code::Ok,
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Everything a client call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// Auth is enabled and the request carried no token.
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    /// The request raced a change of users, roles or permissions:
    /// authenticate again and resend it.
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExists,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExists,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthManagement,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: request timed out")]
    ServerTimeout,
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    /// Any other error the server reported, with its code and message.
    #[error("{message}")]
    Server { code: Code, message: String },
    /// The request did not complete within the request timeout. The text is
    /// what etcdctl prints when its command timeout expires.
    #[error("context deadline exceeded")]
    Timeout,
    /// No endpoint accepted a connection within the dial timeout.
    #[error("no endpoint reachable within the dial timeout (last error: {last_error})")]
    DialTimeout { last_error: String },
    /// The connection a request was sent on broke before its answer came.
    /// The request may or may not have been applied.
    #[error("connection to {endpoint} lost: {reason}")]
    ConnectionLost { endpoint: String, reason: String },
    /// The server sent something that is not a valid response.
    #[error("protocol error from {endpoint}: {reason}")]
    Protocol { endpoint: String, reason: String },
    /// A watcher left too many responses unconsumed; its watch was dropped
    /// and must be re-created from the last revision seen.
    #[error("watcher fell more than {responses_max} responses behind; the watch was dropped")]
    WatchLagged { responses_max: usize },
    /// The caller passed something the client refuses before sending.
    #[error("{0}")]
    InvalidArgument(String),
    /// A lock or election session's lease expired or was revoked: whatever
    /// it held is no longer held.
    #[error("mutex: session is expired")]
    SessionExpired,
    /// [`Lock::try_lock`](crate::concurrency::Lock::try_lock) found the lock
    /// held by another session.
    #[error("mutex: Locked by another session")]
    Locked,
    /// The election has no leader.
    #[error("election: no leader")]
    ElectionNoLeader,
    /// A leader-only election call by a session that is not the leader.
    #[error("election: not leader")]
    ElectionNotLeader,
}

impl Error {
    /// Maps an error the server sent to a variant, by etcd's message text
    /// (which is how etcd's own clients recognise errors).
    pub fn from_server(code: Code, message: &str) -> Error {
        let known = [
            Error::EmptyKey,
            Error::KeyNotFound,
            Error::ValueProvided,
            Error::LeaseProvided,
            Error::TooManyOps,
            Error::DuplicateKey,
            Error::Compacted,
            Error::FutureRevision,
            Error::NoSpace,
            Error::LeaseNotFound,
            Error::LeaseExists,
            Error::LeaseTtlTooLarge,
            Error::RequestTooLarge,
            Error::TooManyRequests,
            Error::MemberNotFound,
            Error::PermissionDenied,
            Error::InvalidAuthToken,
            Error::AuthFailed,
            Error::UserEmpty,
            Error::AuthOldRevision,
            Error::AuthNotEnabled,
            Error::RootUserNotExist,
            Error::RootRoleNotExist,
            Error::UserAlreadyExists,
            Error::UserNotFound,
            Error::RoleAlreadyExists,
            Error::RoleNotFound,
            Error::RoleEmpty,
            Error::RoleNotGranted,
            Error::PermissionNotGranted,
            Error::InvalidAuthManagement,
            Error::NoLeader,
            Error::LeaderChanged,
            Error::Stopped,
            Error::ServerTimeout,
            Error::Corrupt,
        ];
        // Servers may send the message with or without etcd's
        // "etcdserver: " prefix (the mvcc errors exist in both forms).
        let full = if message.starts_with("etcdserver: ") {
            message.to_string()
        } else {
            format!("etcdserver: {message}")
        };
        known
            .into_iter()
            .find(|e| e.to_string() == full)
            .unwrap_or_else(|| Error::Server {
                code,
                message: message.to_string(),
            })
    }

    /// The status code this error corresponds to.
    pub fn code(&self) -> Code {
        match self {
            Error::EmptyKey
            | Error::KeyNotFound
            | Error::ValueProvided
            | Error::LeaseProvided
            | Error::TooManyOps
            | Error::DuplicateKey
            | Error::RequestTooLarge
            | Error::AuthFailed
            | Error::UserEmpty
            | Error::AuthOldRevision
            | Error::RoleEmpty
            | Error::InvalidAuthManagement
            | Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::AuthNotEnabled
            | Error::RootUserNotExist
            | Error::RootRoleNotExist
            | Error::UserAlreadyExists
            | Error::UserNotFound
            | Error::RoleAlreadyExists
            | Error::RoleNotFound
            | Error::RoleNotGranted
            | Error::PermissionNotGranted => Code::FailedPrecondition,
            Error::Compacted | Error::FutureRevision | Error::LeaseTtlTooLarge => Code::OutOfRange,
            Error::NoSpace | Error::TooManyRequests => Code::ResourceExhausted,
            Error::LeaseNotFound | Error::MemberNotFound => Code::NotFound,
            Error::LeaseExists => Code::FailedPrecondition,
            Error::PermissionDenied => Code::PermissionDenied,
            Error::InvalidAuthToken => Code::Unauthenticated,
            Error::NoLeader
            | Error::LeaderChanged
            | Error::Stopped
            | Error::ServerTimeout
            | Error::DialTimeout { .. }
            | Error::ConnectionLost { .. } => Code::Unavailable,
            Error::Corrupt => Code::DataLoss,
            Error::Server { code, .. } => *code,
            Error::Timeout => Code::DeadlineExceeded,
            Error::Protocol { .. } => Code::Internal,
            Error::WatchLagged { .. } => Code::ResourceExhausted,
            Error::SessionExpired | Error::Locked | Error::ElectionNotLeader => {
                Code::FailedPrecondition
            }
            Error::ElectionNoLeader => Code::NotFound,
        }
    }

    /// True when sending the same request again (possibly to another
    /// member) may succeed: the cluster or the connection was temporarily
    /// unable to serve it. A write that failed this way may still have been
    /// applied; only retry writes that are safe to apply twice.
    pub fn is_retriable(&self) -> bool {
        self.code() == Code::Unavailable
    }

    /// True when a client holding credentials should authenticate again
    /// and resend the request (what etcd's `clientv3` does on these).
    pub fn needs_new_token(&self) -> bool {
        matches!(
            self,
            Error::InvalidAuthToken | Error::AuthOldRevision | Error::UserEmpty
        )
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_map_to_variants_and_print_etcds_text() {
        let e = Error::from_server(
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted",
        );
        assert_eq!(e, Error::Compacted);
        assert_eq!(
            e.to_string(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        // The mvcc layer's bare text maps to the same variant.
        let e = Error::from_server(
            Code::OutOfRange,
            "mvcc: required revision is a future revision",
        );
        assert_eq!(e, Error::FutureRevision);
        assert_eq!(
            Error::from_server(Code::NotFound, "etcdserver: requested lease not found"),
            Error::LeaseNotFound
        );
    }

    #[test]
    fn unknown_server_messages_keep_code_and_text() {
        let e = Error::from_server(Code::FailedPrecondition, "etcdserver: something new");
        assert_eq!(e.to_string(), "etcdserver: something new");
        assert_eq!(e.code(), Code::FailedPrecondition);
        assert!(!e.is_retriable());
    }

    #[test]
    fn unavailability_is_retriable_and_semantic_errors_are_not() {
        assert!(Error::NoLeader.is_retriable());
        assert!(Error::ConnectionLost {
            endpoint: "a".into(),
            reason: "b".into()
        }
        .is_retriable());
        assert!(!Error::Compacted.is_retriable());
        assert!(!Error::Timeout.is_retriable());
        assert_eq!(Code::from_u8(14), Code::Unavailable);
        assert_eq!(Code::from_u8(200), Code::Unknown);
    }
}
