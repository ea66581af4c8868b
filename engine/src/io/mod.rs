//! File access behind a narrow async trait: the io_uring (glommio `DmaFile`)
//! backend and an in-memory, crash-simulating backend for tests.
//!
//! The WAL and the snapshot files use only what [`Fs`] and [`File`] offer:
//! create, open, list, remove and rename files in a directory, preallocate,
//! aligned `write_at`, `read_at`, `fdatasync`, directory fsync, size and
//! truncate. Code above this seam is generic over the backend (`Wal<F: Fs>`),
//! so the same recovery logic runs on real disks ([`DmaFs`]) and on
//! [`MemFs`], which can lose or tear every write that was not yet synced.
//!
//! Writes go through [`AlignedBuf`], a buffer whose start and length are
//! multiples of [`IO_ALIGN_BYTES`](crate::limits::IO_ALIGN_BYTES), so the real
//! backend can hand it to the kernel with O_DIRECT without a copy.
//!
//! All futures are `!Send`: everything runs on one glommio executor.

mod dma;
mod mem;

pub use dma::{DmaFs, DmaFsFile, WriteMode};
pub use mem::{MemFile, MemFs};

use std::path::{Path, PathBuf};

use glommio::io::DmaBuffer;

use crate::limits::IO_ALIGN_BYTES;

/// What an I/O operation was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    Create,
    Open,
    List,
    Remove,
    Rename,
    Write,
    Read,
    Sync,
    SyncDir,
    Size,
    Truncate,
    Preallocate,
    CreateDir,
    Close,
}

impl std::fmt::Display for IoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            IoOp::Create => "create",
            IoOp::Open => "open",
            IoOp::List => "list",
            IoOp::Remove => "remove",
            IoOp::Rename => "rename",
            IoOp::Write => "write",
            IoOp::Read => "read",
            IoOp::Sync => "fdatasync",
            IoOp::SyncDir => "fsync directory",
            IoOp::Size => "stat",
            IoOp::Truncate => "truncate",
            IoOp::Preallocate => "preallocate",
            IoOp::CreateDir => "create directory",
            IoOp::Close => "close",
        };
        f.write_str(s)
    }
}

/// A failed file operation: which one, on which path, at which offset.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}{}: {source}", path.display(), offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
pub struct IoError {
    pub op: IoOp,
    pub path: PathBuf,
    pub offset: Option<u64>,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(op: IoOp, path: &Path, offset: Option<u64>, source: std::io::Error) -> Self {
        IoError {
            op,
            path: path.to_path_buf(),
            offset,
            source,
        }
    }
}

pub type IoResult<T> = Result<T, IoError>;

/// A write buffer aligned for O_DIRECT: its address and length are multiples
/// of [`IO_ALIGN_BYTES`].
pub struct AlignedBuf {
    buf: DmaBuffer,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes. `len` must be a multiple of
    /// [`IO_ALIGN_BYTES`]. Must be called on a glommio executor.
    pub fn zeroed(len: usize) -> Self {
        assert!(
            len > 0 && len % IO_ALIGN_BYTES == 0,
            "unaligned buffer length {len}"
        );
        let mut buf = glommio::allocate_dma_buffer(len);
        buf.as_bytes_mut().fill(0);
        AlignedBuf { buf }
    }

    /// A buffer of `len` bytes whose contents are unspecified (whatever the
    /// allocator held); for callers that overwrite every byte they write.
    pub fn new(len: usize) -> Self {
        assert!(
            len > 0 && len % IO_ALIGN_BYTES == 0,
            "unaligned buffer length {len}"
        );
        AlignedBuf {
            buf: glommio::allocate_dma_buffer(len),
        }
    }

    /// Shrinks the buffer to `len` bytes (a multiple of [`IO_ALIGN_BYTES`]).
    pub fn truncate(&mut self, len: usize) {
        assert!(len > 0 && len % IO_ALIGN_BYTES == 0 && len <= self.buf.len());
        self.buf.trim_to_size(len);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_slice(&self) -> &[u8] {
        self.buf.as_bytes()
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.buf.as_bytes_mut()
    }

    fn into_dma(self) -> DmaBuffer {
        self.buf
    }
}

/// A directory tree of files: the storage a WAL or snapshot store lives on.
///
/// Paths are absolute or relative to the process; the trait does not keep a
/// current directory. A file created or renamed is only guaranteed to exist
/// after a crash once [`Fs::sync_dir`] of its directory has returned.
#[allow(async_fn_in_trait)]
pub trait Fs: Clone + 'static {
    type File: File + 'static;

    /// Creates `dir` and its parents if missing.
    async fn create_dir_all(&self, dir: &Path) -> IoResult<()>;
    /// Names (not paths) of the regular files in `dir`, sorted.
    async fn list(&self, dir: &Path) -> IoResult<Vec<String>>;
    /// Creates `path` (truncating it if it exists), open for reading and
    /// writing.
    async fn create(&self, path: &Path) -> IoResult<Self::File>;
    /// Opens an existing file for reading and writing.
    async fn open(&self, path: &Path) -> IoResult<Self::File>;
    /// Like [`Fs::create`], for a file written with [`File::write_durable`]:
    /// where the backend can, it keeps a descriptor whose writes are
    /// durable when they complete (O_DSYNC), so that call is one operation.
    async fn create_synced(&self, path: &Path) -> IoResult<Self::File> {
        self.create(path).await
    }
    /// Like [`Fs::open`], with the writes of [`Fs::create_synced`].
    async fn open_synced(&self, path: &Path) -> IoResult<Self::File> {
        self.open(path).await
    }
    async fn remove(&self, path: &Path) -> IoResult<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()>;
    /// Makes creations, renames and removals in `dir` durable.
    async fn sync_dir(&self, dir: &Path) -> IoResult<()>;
}

/// An open file.
#[allow(async_fn_in_trait)]
pub trait File {
    fn path(&self) -> &Path;
    /// Writes all of `buf` at `offset`, a multiple of [`IO_ALIGN_BYTES`].
    async fn write_at(&self, buf: AlignedBuf, offset: u64) -> IoResult<()>;
    /// Reads up to `len` bytes at `offset` (fewer only at the end of the file).
    async fn read_at(&self, offset: u64, len: usize) -> IoResult<Vec<u8>>;
    /// Makes every completed write (and the size) durable.
    async fn fdatasync(&self) -> IoResult<()>;
    /// Writes all of `buf` at `offset` and makes it durable: `write_at`
    /// then `fdatasync`, or one O_DSYNC write on a file opened with
    /// [`Fs::create_synced`] or [`Fs::open_synced`] where the backend has
    /// it. Writes made earlier with `write_at` are durable only after an
    /// `fdatasync`.
    async fn write_durable(&self, buf: AlignedBuf, offset: u64) -> IoResult<()> {
        self.write_at(buf, offset).await?;
        self.fdatasync().await
    }
    async fn size(&self) -> IoResult<u64>;
    /// Reserves space so the file is `len` bytes long (reads of the new range
    /// return zeros) and later writes into it do not allocate.
    async fn preallocate(&self, len: u64) -> IoResult<()>;
    async fn truncate(&self, len: u64) -> IoResult<()>;
    async fn close(self) -> IoResult<()>;
}
