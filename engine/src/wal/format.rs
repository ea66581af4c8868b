//! The on-disk layout of WAL segments (see `docs/storage.md` for diagrams).
//!
//! A segment is a 4 KiB header block followed by batches. A batch starts on a
//! 4 KiB boundary with a batch-header record stating its length (a multiple
//! of 4 KiB), its record count, its own offset and a CRC of the rest of the
//! batch; then come the records; zeros pad it to its length. Every record has
//! a 12-byte header: CRC, payload length, kind. Record CRCs are seeded with
//! the segment's sequence number and a random salt, so bytes left over from
//! another segment or planted inside a payload never verify.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::limits::IO_ALIGN_BYTES;

pub const SEGMENT_MAGIC: [u8; 8] = *b"CAIRNWAL";
pub const FORMAT_VERSION: u32 = 1;
/// The segment header occupies the whole first block.
pub const SEGMENT_HEADER_BLOCK: u64 = IO_ALIGN_BYTES as u64;

pub const KIND_BATCH: u8 = 1;
pub const KIND_ENTRY: u8 = 2;
pub const KIND_HARD_STATE: u8 = 3;
pub const KIND_SNAPSHOT: u8 = 4;

/// Raft's persistent state: current term, vote (0 = none), commit index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

/// A snapshot at `index` (of `term`) is durable: entries up to `index` may be
/// released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotMarker {
    pub index: u64,
    pub term: u64,
}

#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SegmentHeader {
    pub magic: [u8; 8],
    pub version: U32,
    pub reserved: U32,
    pub seq: U64,
    pub salt: U64,
    /// Index the first entry written to this segment was expected to have
    /// (last index + 1 when the segment was started).
    pub first_index: U64,
    /// Where the valid content of the previous segment ends.
    pub prev_tail: U64,
    pub hs_term: U64,
    pub hs_vote: U64,
    pub hs_commit: U64,
    pub snap_index: U64,
    pub snap_term: U64,
    /// CRC32 of every byte above.
    pub crc: U32,
    pub reserved2: U32,
}

pub const SEGMENT_HEADER_BYTES: usize = std::mem::size_of::<SegmentHeader>();

impl SegmentHeader {
    pub fn compute_crc(&self) -> u32 {
        crc32fast::hash(&self.as_bytes()[..SEGMENT_HEADER_BYTES - 8])
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.hs_term.get(),
            vote: self.hs_vote.get(),
            commit: self.hs_commit.get(),
        }
    }

    pub fn snapshot(&self) -> SnapshotMarker {
        SnapshotMarker {
            index: self.snap_index.get(),
            term: self.snap_term.get(),
        }
    }

    /// Parses and verifies the header at the start of `block`.
    pub fn parse(block: &[u8]) -> Option<SegmentHeader> {
        let (h, _) = SegmentHeader::read_from_prefix(block).ok()?;
        let ok = h.magic == SEGMENT_MAGIC
            && h.version.get() == FORMAT_VERSION
            && h.crc.get() == h.compute_crc();
        ok.then_some(h)
    }
}

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RecordHeader {
    /// CRC32, seeded with the segment seed, of `len`, `kind`, `reserved` and
    /// the payload.
    pub crc: U32,
    pub len: U32,
    pub kind: u8,
    pub reserved: [u8; 3],
}

pub const RECORD_HEADER_BYTES: usize = std::mem::size_of::<RecordHeader>();

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BatchPayload {
    /// Bytes of the whole batch including this record and the padding.
    pub batch_len: U32,
    /// Records after this one.
    pub records: U32,
    /// CRC32 (segment seed) of the batch bytes after this record.
    pub body_crc: U32,
    /// Length of the batch before this one if that batch's durable write
    /// was still in flight when this one was issued; 0 otherwise. Recovery
    /// accepts a valid batch after a damaged one only where this says the
    /// damaged one may never have reached the disk. (Logs written before
    /// writes overlapped have 0 here.)
    pub prev_in_flight: U32,
    /// Byte offset of the batch in its segment.
    pub offset: U64,
}

pub const BATCH_RECORD_BYTES: usize = RECORD_HEADER_BYTES + std::mem::size_of::<BatchPayload>();

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EntryPrefix {
    pub index: U64,
    pub term: U64,
    pub kind: u8,
}

pub const ENTRY_PREFIX_BYTES: usize = std::mem::size_of::<EntryPrefix>();

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct HardStatePayload {
    pub term: U64,
    pub vote: U64,
    pub commit: U64,
}

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SnapshotPayload {
    pub index: U64,
    pub term: U64,
}

/// The CRC seed of every record in the segment `seq` with `salt`.
pub fn segment_seed(seq: u64, salt: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&salt.to_le_bytes());
    h.finalize()
}

/// CRC of a record: `header_tail` is the header without its CRC field.
pub fn record_crc(seed: u32, header_tail: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(header_tail);
    h.update(payload);
    h.finalize()
}

pub fn body_crc(seed: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(body);
    h.finalize()
}

/// Reads a record at the start of `bytes`, verifying its CRC. Returns kind
/// and payload, or `None` if the bytes are not a valid record.
pub fn parse_record(seed: u32, bytes: &[u8]) -> Option<(u8, &[u8])> {
    let (h, rest) = RecordHeader::read_from_prefix(bytes).ok()?;
    let len = h.len.get() as usize;
    if rest.len() < len || h.reserved != [0; 3] {
        return None;
    }
    let payload = &rest[..len];
    let crc = record_crc(seed, &bytes[4..RECORD_HEADER_BYTES], payload);
    (crc == h.crc.get()).then_some((h.kind, payload))
}

/// A verified batch header found at `offset` in a segment.
pub fn parse_batch_header(seed: u32, block: &[u8], offset: u64) -> Option<BatchPayload> {
    let (kind, payload) = parse_record(seed, block)?;
    if kind != KIND_BATCH {
        return None;
    }
    let b = BatchPayload::read_from_bytes(payload).ok()?;
    let len = b.batch_len.get() as usize;
    let sane = b.offset.get() == offset
        && len >= IO_ALIGN_BYTES
        && len % IO_ALIGN_BYTES == 0
        && len <= crate::limits::WAL_BATCH_BYTES_MAX;
    sane.then_some(b)
}

/// Rounds `n` up to the next multiple of [`IO_ALIGN_BYTES`].
pub fn align_up(n: usize) -> usize {
    n.div_ceil(IO_ALIGN_BYTES) * IO_ALIGN_BYTES
}

/// The file name of segment `seq` whose first entry index is `first_index`.
pub fn segment_name(seq: u64, first_index: u64) -> String {
    format!("{seq:016x}-{first_index:016x}.wal")
}

/// Parses a segment file name back into `(seq, first_index)`.
pub fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (a, b) = stem.split_once('-')?;
    if a.len() != 16 || b.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    ))
}

const _: () = assert!(SEGMENT_HEADER_BYTES <= IO_ALIGN_BYTES);
const _: () = assert!(RECORD_HEADER_BYTES == 12);
const _: () = assert!(BATCH_RECORD_BYTES == 36);
