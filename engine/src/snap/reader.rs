//! Reading a snapshot file back, verifying everything.

use std::path::{Path, PathBuf};

use zerocopy::FromBytes;

use super::format::{
    ChunkHeader, Header, Trailer, CHUNK_HEADER_BYTES, FORMAT_VERSION, HEADER_BYTES, SNAP_MAGIC,
    TRAILER_BYTES, TRAILER_CRC_COVERS, TRAILER_MAGIC,
};
use super::{SnapError, SnapInfo};
use crate::io::{File, Fs};
use crate::limits::{SNAP_CHUNK_BYTES_MAX, SNAP_META_BYTES_MAX};

/// A verified snapshot: its index, term and metadata, and its chunks to
/// iterate with [`SnapReader::next_chunk`].
pub struct SnapReader<F: Fs> {
    file: F::File,
    pub info: SnapInfo,
    pub meta: Vec<u8>,
    first_chunk: u64,
    offset: u64,
    body_len: u64,
    chunks_left: u64,
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> SnapError {
    SnapError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

async fn read_exact<Fl: File>(file: &Fl, offset: u64, len: usize) -> Result<Vec<u8>, SnapError> {
    let b = file.read_at(offset, len).await?;
    if b.len() != len {
        return Err(corrupt(file.path(), offset, "file ends early"));
    }
    Ok(b)
}

impl<F: Fs> SnapReader<F> {
    /// Opens `info.path` and verifies every byte: header, metadata, each
    /// chunk's CRC, the chunk count and the whole-file CRC.
    pub(crate) async fn open(fs: &F, info: SnapInfo) -> Result<SnapReader<F>, SnapError> {
        let file = fs.open(&info.path).await?;
        let path: PathBuf = info.path.clone();
        let size = file.size().await?;
        if size < (HEADER_BYTES + TRAILER_BYTES) as u64 {
            return Err(corrupt(
                &path,
                0,
                format!("file of {size} bytes is too short"),
            ));
        }
        let body_len = size - TRAILER_BYTES as u64;
        let tb = read_exact(&file, body_len, TRAILER_BYTES).await?;
        let t = Trailer::read_from_bytes(&tb[..])
            .map_err(|_| corrupt(&path, body_len, "bad trailer"))?;
        if t.magic != TRAILER_MAGIC || t.body_len.get() != body_len {
            return Err(corrupt(
                &path,
                body_len,
                "missing or damaged trailer (incomplete file?)",
            ));
        }
        let hb = read_exact(&file, 0, HEADER_BYTES).await?;
        let h = Header::read_from_bytes(&hb[..]).map_err(|_| corrupt(&path, 0, "bad header"))?;
        if h.magic != SNAP_MAGIC || h.version.get() != FORMAT_VERSION {
            return Err(corrupt(&path, 0, "not a snapshot file of a known version"));
        }
        if h.index.get() != info.index || h.term.get() != info.term {
            return Err(corrupt(&path, 0, "header does not match the file name"));
        }
        let meta_len = h.meta_len.get() as usize;
        if meta_len > SNAP_META_BYTES_MAX || (HEADER_BYTES + meta_len) as u64 > body_len {
            return Err(corrupt(&path, 0, format!("bad metadata length {meta_len}")));
        }
        let meta = read_exact(&file, HEADER_BYTES as u64, meta_len).await?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&hb);
        crc.update(&meta);
        let first_chunk = (HEADER_BYTES + meta_len) as u64;
        let mut r = SnapReader {
            file,
            info,
            meta,
            first_chunk,
            offset: first_chunk,
            body_len,
            chunks_left: u64::MAX,
        };
        let mut chunks = 0u64;
        while r.offset < body_len {
            let (hdr, chunk) = r.read_chunk().await?;
            crc.update(&hdr);
            crc.update(&chunk);
            chunks += 1;
        }
        if chunks != t.chunks.get() {
            return Err(corrupt(
                &path,
                body_len,
                format!("{chunks} chunks found, trailer says {}", t.chunks.get()),
            ));
        }
        crc.update(&tb[..TRAILER_CRC_COVERS]);
        if crc.finalize() != t.crc.get() {
            return Err(corrupt(&path, 0, "file checksum mismatch"));
        }
        r.offset = r.first_chunk;
        r.chunks_left = chunks;
        Ok(r)
    }

    /// Reads and checks the chunk at the current offset, advancing past it.
    async fn read_chunk(&mut self) -> Result<(Vec<u8>, Vec<u8>), SnapError> {
        let at = self.offset;
        let path = self.info.path.clone();
        if at + CHUNK_HEADER_BYTES as u64 > self.body_len {
            return Err(corrupt(&path, at, "chunk header runs past the end"));
        }
        let hdr = read_exact(&self.file, at, CHUNK_HEADER_BYTES).await?;
        let h = ChunkHeader::read_from_bytes(&hdr[..])
            .map_err(|_| corrupt(&path, at, "bad chunk header"))?;
        let len = h.len.get() as usize;
        let data_at = at + CHUNK_HEADER_BYTES as u64;
        if len > SNAP_CHUNK_BYTES_MAX || data_at + len as u64 > self.body_len {
            return Err(corrupt(&path, at, format!("bad chunk length {len}")));
        }
        let chunk = read_exact(&self.file, data_at, len).await?;
        if crc32fast::hash(&chunk) != h.crc.get() {
            return Err(corrupt(&path, at, "chunk checksum mismatch"));
        }
        self.offset = data_at + len as u64;
        Ok((hdr, chunk))
    }

    /// The next chunk, in the order they were written; `None` after the last.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SnapError> {
        if self.chunks_left == 0 {
            return Ok(None);
        }
        let (_, chunk) = self.read_chunk().await?;
        self.chunks_left -= 1;
        Ok(Some(chunk))
    }

    /// Number of chunks not yet returned.
    pub fn chunks_left(&self) -> u64 {
        self.chunks_left
    }
}
