//! Writing a snapshot file chunk by chunk.

use std::path::PathBuf;

use zerocopy::IntoBytes;

use super::format::{
    ChunkHeader, Header, Trailer, FORMAT_VERSION, SNAP_MAGIC, TRAILER_BYTES, TRAILER_CRC_COVERS,
    TRAILER_MAGIC,
};
use super::{SnapError, SnapInfo, SnapStore};
use crate::io::{AlignedBuf, File, Fs};
use crate::limits::{
    IO_ALIGN_BYTES, SNAP_CHUNK_BYTES_MAX, SNAP_META_BYTES_MAX, SNAP_WRITE_BUFFER_BYTES,
};

/// A snapshot being written. Feed it chunks with [`SnapWriter::write_chunk`]
/// (each await lets the server keep working between chunks), then
/// [`SnapWriter::finish`]. Until `finish` returns, the snapshot does not
/// exist: the data goes to a temporary file that is synced and then renamed.
/// Dropping the writer abandons the snapshot; the temporary file is removed
/// the next time the store is opened.
pub struct SnapWriter<F: Fs> {
    store: SnapStore<F>,
    info: SnapInfo,
    tmp: PathBuf,
    file: F::File,
    buf: AlignedBuf,
    buf_len: usize,
    /// Bytes already handed to the file (a multiple of the buffer size).
    flushed: u64,
    crc: crc32fast::Hasher,
    chunks: u64,
}

impl<F: Fs> SnapWriter<F> {
    pub(crate) async fn begin(
        store: SnapStore<F>,
        info: SnapInfo,
        meta: &[u8],
    ) -> Result<SnapWriter<F>, SnapError> {
        if meta.len() > SNAP_META_BYTES_MAX {
            return Err(SnapError::TooLarge {
                what: "metadata",
                len: meta.len(),
                max: SNAP_META_BYTES_MAX,
            });
        }
        crate::failpoint::hit("snap-before-save");
        let tmp = info.path.with_extension("snap.tmp");
        let file = store.fs.create(&tmp).await?;
        let mut w = SnapWriter {
            store,
            info,
            tmp,
            file,
            buf: AlignedBuf::new(SNAP_WRITE_BUFFER_BYTES),
            buf_len: 0,
            flushed: 0,
            crc: crc32fast::Hasher::new(),
            chunks: 0,
        };
        let h = Header {
            magic: SNAP_MAGIC,
            version: FORMAT_VERSION.into(),
            meta_len: (meta.len() as u32).into(),
            index: w.info.index.into(),
            term: w.info.term.into(),
        };
        w.push(h.as_bytes()).await?;
        w.push(meta).await?;
        Ok(w)
    }

    /// Appends one chunk (at most [`SNAP_CHUNK_BYTES_MAX`] bytes).
    pub async fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SnapError> {
        if chunk.len() > SNAP_CHUNK_BYTES_MAX {
            return Err(SnapError::TooLarge {
                what: "chunk",
                len: chunk.len(),
                max: SNAP_CHUNK_BYTES_MAX,
            });
        }
        let h = ChunkHeader {
            len: (chunk.len() as u32).into(),
            crc: crc32fast::hash(chunk).into(),
        };
        self.push(h.as_bytes()).await?;
        self.push(chunk).await?;
        self.chunks += 1;
        Ok(())
    }

    /// Writes the trailer, makes the file durable and gives it its final
    /// name; then removes snapshots beyond the number kept.
    pub async fn finish(mut self) -> Result<SnapInfo, SnapError> {
        let body_len = self.flushed + self.buf_len as u64;
        let mut t = Trailer {
            magic: TRAILER_MAGIC,
            chunks: self.chunks.into(),
            body_len: body_len.into(),
            crc: 0.into(),
            reserved: 0.into(),
        };
        let mut crc = self.crc.clone();
        crc.update(&t.as_bytes()[..TRAILER_CRC_COVERS]);
        t.crc = crc.finalize().into();
        self.push(t.as_bytes()).await?;
        let len = self.flushed + self.buf_len as u64;
        assert_eq!(len, body_len + TRAILER_BYTES as u64);
        if self.buf_len > 0 {
            // The last block is padded for O_DIRECT, then cut to the length.
            let padded = self.buf_len.div_ceil(IO_ALIGN_BYTES) * IO_ALIGN_BYTES;
            self.buf.as_mut_slice()[self.buf_len..padded].fill(0);
            let mut buf = std::mem::replace(&mut self.buf, AlignedBuf::new(IO_ALIGN_BYTES));
            buf.truncate(padded);
            self.file.write_at(buf, self.flushed).await?;
            self.file.truncate(len).await?;
        }
        self.file.fdatasync().await?;
        self.file.close().await?;
        let fs = &self.store.fs;
        fs.rename(&self.tmp, &self.info.path).await?;
        fs.sync_dir(&self.store.dir).await?;
        crate::failpoint::hit("snap-after-save");
        if let Err(e) = self.store.prune().await {
            // The new snapshot is durable; an old file left behind only
            // costs space and is retried at the next snapshot.
            tracing::warn!(error = %e, "snap: could not remove old snapshots");
        }
        Ok(self.info)
    }

    /// Appends bytes to the file image, writing full buffers as they fill.
    async fn push(&mut self, mut bytes: &[u8]) -> Result<(), SnapError> {
        self.crc.update(bytes);
        while !bytes.is_empty() {
            let room = SNAP_WRITE_BUFFER_BYTES - self.buf_len;
            let n = room.min(bytes.len());
            self.buf.as_mut_slice()[self.buf_len..self.buf_len + n].copy_from_slice(&bytes[..n]);
            self.buf_len += n;
            bytes = &bytes[n..];
            if self.buf_len == SNAP_WRITE_BUFFER_BYTES {
                let full =
                    std::mem::replace(&mut self.buf, AlignedBuf::new(SNAP_WRITE_BUFFER_BYTES));
                self.file.write_at(full, self.flushed).await?;
                self.flushed += SNAP_WRITE_BUFFER_BYTES as u64;
                self.buf_len = 0;
            }
        }
        Ok(())
    }
}
