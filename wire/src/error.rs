//! The one error type of this crate.

use flatbuffers::InvalidFlatbuffer;

use crate::limits::FRAME_BYTES_MIN;

/// Everything that can be wrong with bytes received from the network.
///
/// Framing errors ([`FrameTooLarge`](Self::FrameTooLarge),
/// [`FrameTooShort`](Self::FrameTooShort), preface errors) leave the byte
/// stream unusable: the connection must be closed. Errors in one frame's
/// content (verification, unknown types) concern that frame only: the
/// connection can answer with an error response and go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("frame length {length} exceeds the limit of {limit} bytes")]
    FrameTooLarge { length: usize, limit: usize },

    #[error("frame length {length} is below the smallest flatbuffer ({FRAME_BYTES_MIN} bytes)")]
    FrameTooShort { length: usize },

    #[error("frame length prefix says {prefix} bytes but {actual} bytes follow it")]
    FrameLengthMismatch { prefix: usize, actual: usize },

    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    TruncatedFrame { buffered: usize },

    #[error("bad preface: not a cairn connection (first bytes {found:02x?})")]
    BadPreface { found: [u8; 8] },

    #[error("bad preface: a {found} connection reached a {expected} port")]
    WrongChannel {
        expected: &'static str,
        found: &'static str,
    },

    #[error("unsupported protocol version {version} (this build speaks version {supported})")]
    UnsupportedVersion { version: u8, supported: u8 },

    #[error("frame failed verification: {0}")]
    Verification(#[from] InvalidFlatbuffer),

    #[error("request has no body")]
    MissingBody,

    #[error("unknown request type {0}")]
    UnknownRequestType(u8),

    #[error("unknown response type {0}")]
    UnknownResponseType(u8),

    #[error("unknown peer message type {0}")]
    UnknownPeerMessageType(u8),

    #[error("unknown txn operation type {0}")]
    UnknownTxnOpType(u8),

    #[error("txn operation has no body")]
    MissingTxnOp,

    #[error("unknown value {value} for field {field}")]
    UnknownEnumValue { field: &'static str, value: i64 },
}

impl WireError {
    /// True if the byte stream can no longer be trusted to be aligned on frame
    /// boundaries, so the connection must be closed rather than answered.
    pub fn is_fatal_to_connection(&self) -> bool {
        matches!(
            self,
            Self::FrameTooLarge { .. }
                | Self::FrameTooShort { .. }
                | Self::FrameLengthMismatch { .. }
                | Self::TruncatedFrame { .. }
                | Self::BadPreface { .. }
                | Self::WrongChannel { .. }
                | Self::UnsupportedVersion { .. }
        )
    }
}
