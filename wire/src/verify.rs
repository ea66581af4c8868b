//! Running untrusted frames through the flatbuffers verifier.
//!
//! The verifier checks every offset, length, alignment and UTF-8 string the
//! generated accessors may follow, so reading a verified buffer cannot go out
//! of bounds. Its work is bounded by limits derived from the frame's actual
//! length (see `limits.rs`): table nesting depth, number of table visits and
//! "apparent size" (bytes checked, counting shared data once per use), which
//! defeats buffers whose offsets alias the same data to multiply work.

use flatbuffers::{Follow, Verifiable, VerifierOptions};

use crate::error::WireError;
use crate::frame::read_length_prefix;
use crate::limits::{
    FRAME_BYTES_MIN, FRAME_LENGTH_PREFIX_BYTES, VERIFY_APPARENT_SIZE_FACTOR,
    VERIFY_FRAME_BYTES_PER_TABLE_MIN,
};

/// Verifier limits for a frame of `frame_len` bytes.
pub(crate) fn verifier_options(frame_len: usize, depth_max: usize) -> VerifierOptions {
    VerifierOptions {
        max_depth: depth_max,
        max_tables: frame_len / VERIFY_FRAME_BYTES_PER_TABLE_MIN + 1,
        max_apparent_size: frame_len.saturating_mul(VERIFY_APPARENT_SIZE_FACTOR),
        ignore_missing_null_terminator: false,
    }
}

/// Verifies a whole frame (length prefix included) whose root table is `T`
/// and returns the root.
pub(crate) fn verified_root<'a, T>(frame: &'a [u8], depth_max: usize) -> Result<T::Inner, WireError>
where
    T: 'a + Follow<'a> + Verifiable,
{
    if frame.len() < FRAME_LENGTH_PREFIX_BYTES + FRAME_BYTES_MIN {
        return Err(WireError::FrameTooShort {
            length: frame.len().saturating_sub(FRAME_LENGTH_PREFIX_BYTES),
        });
    }
    let prefix = read_length_prefix(frame);
    let actual = frame.len() - FRAME_LENGTH_PREFIX_BYTES;
    if prefix != actual {
        return Err(WireError::FrameLengthMismatch { prefix, actual });
    }
    let opts = verifier_options(frame.len(), depth_max);
    Ok(flatbuffers::size_prefixed_root_with_opts::<T>(
        &opts, frame,
    )?)
}
