//! The real backend: glommio files on io_uring, O_DIRECT where the file
//! system allows it.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, DmaFile, OpenOptions};
use nix::fcntl::OFlag;
use nix::sys::statfs::{statfs, TMPFS_MAGIC};

use super::{AlignedBuf, File, Fs, IoError, IoOp, IoResult};

/// How files under a [`DmaFs`] are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// O_DIRECT through io_uring: writes bypass the page cache.
    Direct,
    /// The file system refuses O_DIRECT (tmpfs and some others): writes go
    /// through the page cache and durability comes from `fdatasync` alone.
    Buffered,
}

/// Files on a real file system through glommio's io_uring reactor.
#[derive(Debug, Clone)]
pub struct DmaFs {
    mode: WriteMode,
}

impl DmaFs {
    /// Prepares to store files under `dir` (created if missing) and finds out
    /// whether its file system accepts O_DIRECT. If not, logs a warning and
    /// uses buffered writes + `fdatasync`.
    pub async fn new(dir: &Path) -> IoResult<DmaFs> {
        std::fs::create_dir_all(dir).map_err(|e| IoError::new(IoOp::CreateDir, dir, None, e))?;
        let tmpfs = statfs(dir)
            .map(|s| s.filesystem_type() == TMPFS_MAGIC)
            .unwrap_or(false);
        let probe = dir.join(".o_direct_probe");
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(OFlag::O_DIRECT.bits())
            .open(&probe);
        let mode = match direct {
            Ok(_) if !tmpfs => WriteMode::Direct,
            Ok(_) => {
                tracing::warn!(
                    dir = %dir.display(),
                    "tmpfs does not do O_DIRECT: using buffered writes + fdatasync"
                );
                WriteMode::Buffered
            }
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                tracing::warn!(
                    dir = %dir.display(),
                    "file system refuses O_DIRECT: using buffered writes + fdatasync"
                );
                WriteMode::Buffered
            }
            Err(e) => return Err(IoError::new(IoOp::Create, &probe, None, e)),
        };
        if mode == WriteMode::Direct {
            settle_iopoll_probe(&probe).await;
        }
        // The probe may not exist if the open failed; nothing to clean then.
        let _ = std::fs::remove_file(&probe);
        Ok(DmaFs { mode })
    }

    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    async fn open_inner(&self, path: &Path, create: bool, dsync: bool) -> IoResult<Inner> {
        let op = if create { IoOp::Create } else { IoOp::Open };
        let mut opts = OpenOptions::new();
        opts.read(true).write(true);
        if create {
            opts.create(true).truncate(true);
        }
        if dsync {
            opts.custom_flags(OFlag::O_DSYNC.bits());
        }
        match self.mode {
            WriteMode::Direct => opts.dma_open(path).await.map(Inner::Direct),
            WriteMode::Buffered => opts.buffered_open(path).await.map(Inner::Buffered),
        }
        .map_err(|e| IoError::new(op, path, None, e.into()))
    }

    /// Opens (or creates) `path`; with `synced`, also a second, O_DSYNC
    /// descriptor on the same file for [`File::write_durable`].
    async fn open_opts(&self, path: &Path, create: bool, synced: bool) -> IoResult<DmaFsFile> {
        let inner = self.open_inner(path, create, false).await?;
        let synced = if synced {
            // Opened by path right after the first: the same file, before
            // anyone can rename it.
            Some(self.open_inner(path, false, true).await?)
        } else {
            None
        };
        Ok(DmaFsFile {
            path: path.to_path_buf(),
            inner,
            synced,
            reader: RefCell::new(None),
        })
    }
}

/// glommio decides per device, at the first `DmaFile` opened on this
/// thread, whether to send that device's I/O to its polling ring, by trying
/// a polled read at offset 0. On an empty file (a new WAL segment) that read
/// succeeds trivially even where the device cannot poll, and later polled
/// I/O then fails with EOPNOTSUPP. Opening a file that holds a block first
/// makes the probe meaningful. Best effort: if this fails, reads still work
/// (they use a buffered handle) and writes report their own errors.
async fn settle_iopoll_probe(probe: &Path) {
    let block = vec![0x5au8; crate::limits::IO_ALIGN_BYTES];
    if std::fs::write(probe, &block).is_err() {
        return;
    }
    if let Ok(f) = DmaFile::open(probe).await {
        let _ = f.close().await;
    }
}

fn io_err(op: IoOp, path: &Path, offset: Option<u64>, e: glommio::GlommioError<()>) -> IoError {
    IoError::new(op, path, offset, e.into())
}

impl Fs for DmaFs {
    type File = DmaFsFile;

    async fn create_dir_all(&self, dir: &Path) -> IoResult<()> {
        std::fs::create_dir_all(dir).map_err(|e| IoError::new(IoOp::CreateDir, dir, None, e))
    }

    async fn list(&self, dir: &Path) -> IoResult<Vec<String>> {
        let err = |e| IoError::new(IoOp::List, dir, None, e);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(err)? {
            let entry = entry.map_err(err)?;
            if entry.file_type().map_err(err)?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    async fn create(&self, path: &Path) -> IoResult<DmaFsFile> {
        self.open_opts(path, true, false).await
    }

    async fn open(&self, path: &Path) -> IoResult<DmaFsFile> {
        self.open_opts(path, false, false).await
    }

    /// A second descriptor opened O_DSYNC carries `write_durable`: the kernel
    /// makes each such write durable before completing it (the write, then
    /// a cache flush, or one FUA write), which saves the separate
    /// fdatasync's trip through io_uring's worker threads.
    async fn create_synced(&self, path: &Path) -> IoResult<DmaFsFile> {
        self.open_opts(path, true, true).await
    }

    async fn open_synced(&self, path: &Path) -> IoResult<DmaFsFile> {
        self.open_opts(path, false, true).await
    }

    async fn remove(&self, path: &Path) -> IoResult<()> {
        glommio::io::remove(path)
            .await
            .map_err(|e| io_err(IoOp::Remove, path, None, e))
    }

    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()> {
        glommio::io::rename(from, to)
            .await
            .map_err(|e| io_err(IoOp::Rename, from, None, e))
    }

    async fn sync_dir(&self, dir: &Path) -> IoResult<()> {
        let d = glommio::io::Directory::open(dir)
            .await
            .map_err(|e| io_err(IoOp::SyncDir, dir, None, e))?;
        d.sync()
            .await
            .map_err(|e| io_err(IoOp::SyncDir, dir, None, e))?;
        d.close()
            .await
            .map_err(|e| io_err(IoOp::SyncDir, dir, None, e))
    }
}

enum Inner {
    Direct(DmaFile),
    Buffered(BufferedFile),
}

/// A file of a [`DmaFs`].
pub struct DmaFsFile {
    path: PathBuf,
    inner: Inner,
    /// A second descriptor on the same file, opened O_DSYNC, for
    /// [`File::write_durable`]: each write on it completes only once it is
    /// durable. Other writes (`write_at`) go through `inner` and wait for an
    /// fdatasync, so they do not each pay a cache flush.
    synced: Option<Inner>,
    /// Reads of a direct file go through a second, buffered handle: glommio
    /// sends O_DIRECT reads to its polling ring when a probe read succeeds,
    /// and on devices without polling support such reads of preallocated
    /// (unwritten) ranges fail with EOPNOTSUPP. Reads happen only during
    /// recovery, where the page cache costs nothing that matters.
    reader: RefCell<Option<Rc<BufferedFile>>>,
}

impl File for DmaFsFile {
    fn path(&self) -> &Path {
        &self.path
    }

    async fn write_at(&self, buf: AlignedBuf, offset: u64) -> IoResult<()> {
        write_inner(&self.inner, &self.path, buf, offset).await
    }

    async fn read_at(&self, offset: u64, len: usize) -> IoResult<Vec<u8>> {
        let err = |e| io_err(IoOp::Read, &self.path, Some(offset), e);
        let r = match &self.inner {
            Inner::Direct(_) => {
                let existing = self.reader.borrow().clone();
                let reader = match existing {
                    Some(r) => r,
                    None => {
                        let r = Rc::new(BufferedFile::open(&self.path).await.map_err(err)?);
                        *self.reader.borrow_mut() = Some(r.clone());
                        r
                    }
                };
                reader.read_at(offset, len).await
            }
            Inner::Buffered(f) => f.read_at(offset, len).await,
        }
        .map_err(err)?;
        Ok(r.to_vec())
    }

    async fn fdatasync(&self) -> IoResult<()> {
        match &self.inner {
            Inner::Direct(f) => f.fdatasync().await,
            Inner::Buffered(f) => f.fdatasync().await,
        }
        .map_err(|e| io_err(IoOp::Sync, &self.path, None, e))
    }

    async fn write_durable(&self, buf: AlignedBuf, offset: u64) -> IoResult<()> {
        match &self.synced {
            Some(synced) => write_inner(synced, &self.path, buf, offset).await,
            None => {
                self.write_at(buf, offset).await?;
                self.fdatasync().await
            }
        }
    }

    async fn size(&self) -> IoResult<u64> {
        match &self.inner {
            Inner::Direct(f) => f.file_size().await,
            Inner::Buffered(f) => f.file_size().await,
        }
        .map_err(|e| io_err(IoOp::Size, &self.path, None, e))
    }

    async fn preallocate(&self, len: u64) -> IoResult<()> {
        match &self.inner {
            Inner::Direct(f) => f.pre_allocate(len, false).await,
            Inner::Buffered(f) => f.pre_allocate(len, false).await,
        }
        .map_err(|e| io_err(IoOp::Preallocate, &self.path, Some(len), e))
    }

    async fn truncate(&self, len: u64) -> IoResult<()> {
        match &self.inner {
            Inner::Direct(f) => f.truncate(len).await,
            Inner::Buffered(f) => f.truncate(len).await,
        }
        .map_err(|e| io_err(IoOp::Truncate, &self.path, Some(len), e))
    }

    async fn close(self) -> IoResult<()> {
        let reader = self.reader.borrow_mut().take();
        if let Some(r) = reader.and_then(|r| Rc::try_unwrap(r).ok()) {
            r.close()
                .await
                .map_err(|e| io_err(IoOp::Close, &self.path, None, e))?;
        }
        if let Some(synced) = self.synced {
            close_inner(synced, &self.path).await?;
        }
        close_inner(self.inner, &self.path).await
    }
}

async fn close_inner(inner: Inner, path: &Path) -> IoResult<()> {
    match inner {
        Inner::Direct(f) => f.close().await,
        Inner::Buffered(f) => f.close().await,
    }
    .map_err(|e| io_err(IoOp::Close, path, None, e))
}

/// Writes all of `buf` at `offset` through one descriptor.
async fn write_inner(inner: &Inner, path: &Path, buf: AlignedBuf, offset: u64) -> IoResult<()> {
    let len = buf.len();
    let written = match inner {
        Inner::Direct(f) => f.write_at(buf.into_dma(), offset).await,
        Inner::Buffered(f) => f.write_at(buf.as_slice().to_vec(), offset).await,
    }
    .map_err(|e| io_err(IoOp::Write, path, Some(offset), e))?;
    if written != len {
        // A short write on a local file means the disk is full or failing;
        // the caller treats it like any other write error (fail-stop).
        let e = std::io::Error::new(
            ErrorKind::WriteZero,
            format!("short write: {written} of {len} bytes"),
        );
        return Err(IoError::new(IoOp::Write, path, Some(offset), e));
    }
    Ok(())
}
