//! The bytes of a snapshot file, produced in memory piece by piece.
//!
//! A backup streamed to a client (`Maintenance.Snapshot`) is a snapshot
//! file exactly as [`super::SnapWriter`] would write it, followed by a
//! SHA-256 of those bytes; the server produces it without touching the disk.
//! This encoder yields the same layout as the writer: a header with the
//! metadata, one framed piece per chunk, and a trailer whose CRC covers
//! everything before it.

use zerocopy::IntoBytes;

use super::format::{
    ChunkHeader, Header, Trailer, FORMAT_VERSION, SNAP_MAGIC, TRAILER_CRC_COVERS, TRAILER_MAGIC,
};
use super::SnapError;
use crate::limits::{SNAP_CHUNK_BYTES_MAX, SNAP_META_BYTES_MAX};

/// Bytes of the trailer that ends a snapshot file.
pub const TRAILER_BYTES: usize = super::format::TRAILER_BYTES;

/// An in-memory snapshot file in the making.
#[derive(Debug)]
pub struct SnapImage {
    crc: crc32fast::Hasher,
    len: u64,
    chunks: u64,
}

impl SnapImage {
    /// Starts a file for the snapshot at `index` of `term`; returns the
    /// encoder and the file's first bytes (header and metadata).
    pub fn begin(index: u64, term: u64, meta: &[u8]) -> Result<(SnapImage, Vec<u8>), SnapError> {
        if meta.len() > SNAP_META_BYTES_MAX {
            return Err(SnapError::TooLarge {
                what: "metadata",
                len: meta.len(),
                max: SNAP_META_BYTES_MAX,
            });
        }
        let h = Header {
            magic: SNAP_MAGIC,
            version: FORMAT_VERSION.into(),
            meta_len: u32::try_from(meta.len()).unwrap_or(u32::MAX).into(),
            index: index.into(),
            term: term.into(),
        };
        let mut out = Vec::with_capacity(h.as_bytes().len() + meta.len());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(meta);
        let mut image = SnapImage {
            crc: crc32fast::Hasher::new(),
            len: 0,
            chunks: 0,
        };
        image.account(&out);
        Ok((image, out))
    }

    /// The framed bytes of one chunk (at most [`SNAP_CHUNK_BYTES_MAX`]).
    pub fn chunk(&mut self, chunk: &[u8]) -> Result<Vec<u8>, SnapError> {
        if chunk.len() > SNAP_CHUNK_BYTES_MAX {
            return Err(SnapError::TooLarge {
                what: "chunk",
                len: chunk.len(),
                max: SNAP_CHUNK_BYTES_MAX,
            });
        }
        let h = ChunkHeader {
            len: u32::try_from(chunk.len()).unwrap_or(u32::MAX).into(),
            crc: crc32fast::hash(chunk).into(),
        };
        let mut out = Vec::with_capacity(h.as_bytes().len() + chunk.len());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(chunk);
        self.account(&out);
        self.chunks += 1;
        Ok(out)
    }

    /// The trailer: the last bytes of the file.
    pub fn finish(self) -> Vec<u8> {
        let mut t = Trailer {
            magic: TRAILER_MAGIC,
            chunks: self.chunks.into(),
            body_len: self.len.into(),
            crc: 0.into(),
            reserved: 0.into(),
        };
        let mut crc = self.crc;
        crc.update(&t.as_bytes()[..TRAILER_CRC_COVERS]);
        t.crc = crc.finalize().into();
        t.as_bytes().to_vec()
    }

    fn account(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
    }
}

/// Bytes of the header that starts a snapshot file.
pub const HEADER_BYTES: usize = super::format::HEADER_BYTES;

/// The `(index, term)` named by a snapshot file's first [`HEADER_BYTES`],
/// or `None` if they are not a snapshot header of a known version.
pub fn header_position(bytes: &[u8]) -> Option<(u64, u64)> {
    use zerocopy::FromBytes;
    let h = Header::read_from_bytes(bytes.get(..HEADER_BYTES)?).ok()?;
    (h.magic == SNAP_MAGIC && h.version.get() == FORMAT_VERSION)
        .then(|| (h.index.get(), h.term.get()))
}

/// Whether `bytes` (at least [`TRAILER_BYTES`]) start with a snapshot
/// trailer whose length field says it sits at `offset`.
pub fn is_trailer_at(bytes: &[u8], offset: u64) -> bool {
    use zerocopy::FromBytes;
    bytes
        .get(..TRAILER_BYTES)
        .and_then(|b| Trailer::read_from_bytes(b).ok())
        .is_some_and(|t| t.magic == TRAILER_MAGIC && t.body_len.get() == offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemFs;
    use crate::snap::SnapStore;

    #[test]
    fn image_bytes_equal_the_file_the_writer_makes() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let fs = MemFs::new();
                let store = SnapStore::open(fs.clone(), "/s".as_ref()).await.unwrap();
                let mut w = store.create(7, 3, b"meta").await.unwrap();
                w.write_chunk(b"one").await.unwrap();
                w.write_chunk(&[9u8; 5000]).await.unwrap();
                let info = w.finish().await.unwrap();
                use crate::io::{File, Fs};
                let f = fs.open(&info.path).await.unwrap();
                let size = f.size().await.unwrap();
                let on_disk = f.read_at(0, size as usize).await.unwrap();

                let (mut image, mut bytes) = SnapImage::begin(7, 3, b"meta").unwrap();
                bytes.extend(image.chunk(b"one").unwrap());
                bytes.extend(image.chunk(&[9u8; 5000]).unwrap());
                bytes.extend(image.finish());
                assert_eq!(bytes, on_disk);
                assert_eq!(header_position(&bytes), Some((7, 3)));
                let at = bytes.len() - TRAILER_BYTES;
                assert!(is_trailer_at(&bytes[at..], at as u64));
                assert!(!is_trailer_at(&bytes[at..], at as u64 + 1));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
