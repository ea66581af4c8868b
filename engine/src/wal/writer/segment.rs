//! Creating segment files.

use std::path::Path;

use zerocopy::IntoBytes;

use super::super::error::WalError;
use super::super::format::{
    segment_name, HardState, SegmentHeader, SnapshotMarker, FORMAT_VERSION, SEGMENT_MAGIC,
};
use super::super::reader::SegmentInfo;
use crate::io::{AlignedBuf, File, Fs};
use crate::limits::IO_ALIGN_BYTES;

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

/// Creates a segment durably: written under a temporary name, synced,
/// renamed, directory synced. A file with a segment name therefore always has
/// a valid header, and a damaged header is corruption.
pub(crate) async fn create_segment<F: Fs>(
    fs: &F,
    dir: &Path,
    h: &SegmentHeader,
    segment_bytes: u64,
) -> Result<(F::File, SegmentInfo), WalError> {
    let name = segment_name(h.seq.get(), h.first_index.get());
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let file = fs.create(&tmp).await?;
    file.preallocate(segment_bytes).await?;
    let mut block = AlignedBuf::zeroed(IO_ALIGN_BYTES);
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
    Ok((file, info))
}
