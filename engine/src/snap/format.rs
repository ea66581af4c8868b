//! The layout of a snapshot file (see `docs/storage.md` for the diagram).
//!
//! ```text
//! header (32 bytes) | meta (meta_len bytes) | chunk* | trailer (32 bytes)
//! chunk = len: u32 | crc32(bytes): u32 | bytes
//! ```
//! The trailer's CRC covers every byte before it plus its own first 24
//! bytes, so any damage anywhere is detected; chunk CRCs say where.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const SNAP_MAGIC: [u8; 8] = *b"CAIRNSNP";
pub const TRAILER_MAGIC: [u8; 8] = *b"CAIRNEND";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: U32,
    pub meta_len: U32,
    pub index: U64,
    pub term: U64,
}

#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ChunkHeader {
    pub len: U32,
    pub crc: U32,
}

#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Trailer {
    pub magic: [u8; 8],
    pub chunks: U64,
    /// Offset of the trailer: the length of everything before it.
    pub body_len: U64,
    pub crc: U32,
    pub reserved: U32,
}

pub const HEADER_BYTES: usize = std::mem::size_of::<Header>();
pub const CHUNK_HEADER_BYTES: usize = std::mem::size_of::<ChunkHeader>();
pub const TRAILER_BYTES: usize = std::mem::size_of::<Trailer>();
/// The part of the trailer its CRC covers.
pub const TRAILER_CRC_COVERS: usize = 24;

/// `{term:016x}-{index:016x}.snap`, like etcd's snapshot names.
pub fn snap_name(term: u64, index: u64) -> String {
    format!("{term:016x}-{index:016x}.snap")
}

/// Parses a snapshot file name into `(term, index)`.
pub fn parse_snap_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".snap")?;
    let (a, b) = stem.split_once('-')?;
    if a.len() != 16 || b.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    ))
}

const _: () = assert!(HEADER_BYTES == 32);
const _: () = assert!(TRAILER_BYTES == 32);
const _: () = assert!(TRAILER_CRC_COVERS == TRAILER_BYTES - 8);
