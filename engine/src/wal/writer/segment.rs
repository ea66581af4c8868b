//! Creating segment files.

use std::path::Path;

use zerocopy::IntoBytes;

use super::super::error::WalError;
use super::super::format::{
    segment_name, HardState, SegmentHeader, SnapshotMarker, FORMAT_VERSION, SEGMENT_MAGIC,
};
use super::super::reader::SegmentInfo;
use crate::io::{AlignedBuf, File, Fs};
use crate::limits::{IO_ALIGN_BYTES, WAL_ZERO_AHEAD_BYTES};

pub(crate) fn new_header(
    seq: u64,
    first_index: u64,
    prev_tail: u64,
    hs: HardState,
    snap: SnapshotMarker,
) -> SegmentHeader {
    let mut h = SegmentHeader {
        magic: SEGMENT_MAGIC,
        version: FORMAT_VERSION.into(),
        reserved: 0.into(),
        seq: seq.into(),
        salt: rand::random::<u64>().into(),
        first_index: first_index.into(),
        prev_tail: prev_tail.into(),
        hs_term: hs.term.into(),
        hs_vote: hs.vote.into(),
        hs_commit: hs.commit.into(),
        snap_index: snap.index.into(),
        snap_term: snap.term.into(),
        crc: 0.into(),
        reserved2: 0.into(),
    };
    h.crc = h.compute_crc().into();
    h
}

/// A segment just created: its file, its place in the log, and where the
/// zeros written after its header end.
pub(crate) struct NewSegment<Fl> {
    pub file: Fl,
    pub info: SegmentInfo,
    pub zeroed_to: u64,
}

/// Creates a segment durably: written under a temporary name, synced,
/// renamed, directory synced. A file with a segment name therefore always has
/// a valid header, and a damaged header is corruption. The header goes out in
/// one write with the first [`WAL_ZERO_AHEAD_BYTES`] of zeros, so the first
/// batches overwrite written blocks (see [`zero_ahead`]).
pub(crate) async fn create_segment<F: Fs>(
    fs: &F,
    dir: &Path,
    h: &SegmentHeader,
    segment_bytes: u64,
) -> Result<NewSegment<F::File>, WalError> {
    let name = segment_name(h.seq.get(), h.first_index.get());
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let file = fs.create_synced(&tmp).await?;
    file.preallocate(segment_bytes).await?;
    let zeroed_to = segment_bytes.min(IO_ALIGN_BYTES as u64 + WAL_ZERO_AHEAD_BYTES);
    let mut block = AlignedBuf::zeroed(zeroed_to as usize);
    block.as_mut_slice()[..std::mem::size_of::<SegmentHeader>()].copy_from_slice(h.as_bytes());
    file.write_at(block, 0).await?;
    file.fdatasync().await?;
    fs.rename(&tmp, &path).await?;
    fs.sync_dir(dir).await?;
    let info = SegmentInfo {
        seq: h.seq.get(),
        first_index: h.first_index.get(),
        path,
    };
    Ok(NewSegment {
        file,
        info,
        zeroed_to,
    })
}

/// The zeros to write to keep the stretch of a segment after the log's
/// `end` written: when less than half of [`WAL_ZERO_AHEAD_BYTES`] is left
/// after `zeroed_to`, the range from there to that far past `end` (never
/// past `segment_bytes`).
///
/// Only the flusher writes them, from after the end of every batch it has
/// issued, and it issues a batch reaching into a zero write's range only
/// once that write is done: so a zero write never covers a byte a batch has
/// written. The zeros are written without O_DSYNC and need no sync of
/// their own: until they are durable a crash leaves zeros or the reserved
/// (zero-reading) blocks, which recovery reads alike as the end of the log;
/// and a durable batch written over them makes the file system commit those
/// blocks' change to written, after the zeros reached the disk.
pub(crate) fn zeros_needed(zeroed_to: u64, end: u64, segment_bytes: u64) -> Option<(u64, u64)> {
    let from = zeroed_to.max(end);
    if from - end >= WAL_ZERO_AHEAD_BYTES / 2 || from >= segment_bytes {
        return None;
    }
    Some((from, segment_bytes.min(end + WAL_ZERO_AHEAD_BYTES)))
}
