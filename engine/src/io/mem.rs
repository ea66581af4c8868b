//! An in-memory file system that can crash.
//!
//! [`MemFs`] remembers, for every file, what was written and what was made
//! durable by `fdatasync`, and for every directory which creations, renames
//! and removals were made durable by a directory fsync. [`MemFs::crash`]
//! throws away or tears everything not yet durable, the way a power cut
//! would: each pending write keeps an arbitrary subset of its 512-byte
//! sectors, pending size changes are kept or lost, and a prefix of the pending
//! directory operations survives (journaling file systems order metadata).
//!
//! A crash ends an epoch: every handle obtained before it (the `MemFs` clone
//! and its open files) fails all further operations, just as the old process
//! would be gone. [`MemFs::reopen`] gives a handle on the disk as it is now.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{AlignedBuf, File, Fs, IoError, IoOp, IoResult};
use crate::limits::IO_SECTOR_BYTES;

/// A crash-simulating in-memory file system. Clones share the same disk.
#[derive(Clone)]
pub struct MemFs {
    disk: Rc<RefCell<Disk>>,
    epoch: u64,
}

#[derive(Default)]
struct Disk {
    epoch: u64,
    next_id: u64,
    files: HashMap<u64, FileData>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    pending_dir: Vec<DirOp>,
    fail_fsyncs: u32,
    fail_writes: u32,
    ops: u64,
    crash_at: Option<(u64, u64)>,
    crashes: u64,
}

#[derive(Default, Clone)]
struct FileData {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Clone)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Clone)]
enum DirOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl DirOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            DirOp::Link(p, _) | DirOp::Unlink(p) | DirOp::Rename(_, p) => p.parent(),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            DirOp::Link(p, id) => {
                names.insert(p.clone(), *id);
            }
            DirOp::Unlink(p) => {
                names.remove(p);
            }
            DirOp::Rename(from, to) => {
                if let Some(id) = names.remove(from) {
                    names.insert(to.clone(), id);
                }
            }
        }
    }
}

fn crashed(op: IoOp, path: &Path, offset: Option<u64>) -> IoError {
    IoError::new(
        op,
        path,
        offset,
        std::io::Error::other("simulated crash: disk is gone"),
    )
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MemFs {
    pub fn new() -> MemFs {
        MemFs {
            disk: Rc::new(RefCell::new(Disk::default())),
            epoch: 0,
        }
    }

    /// A handle on the disk as it is now (after any crash).
    pub fn reopen(&self) -> MemFs {
        MemFs {
            disk: self.disk.clone(),
            epoch: self.disk.borrow().epoch,
        }
    }

    /// Loses or tears everything not yet durable. Handles from before the
    /// crash stop working; use [`MemFs::reopen`].
    pub fn crash<R: Rng>(&self, rng: &mut R) {
        self.disk.borrow_mut().crash(rng);
    }

    /// Crashes the disk when the `n`th I/O operation from now starts (a write
    /// is applied as pending first, so it can be torn; any other operation
    /// fails before taking effect). The crash draws from a generator seeded
    /// with `seed`.
    pub fn crash_at_op(&self, n: u64, seed: u64) {
        let mut d = self.disk.borrow_mut();
        let at = d.ops + n.max(1);
        d.crash_at = Some((at, seed));
    }

    /// Number of crashes so far.
    pub fn crashes(&self) -> u64 {
        self.disk.borrow().crashes
    }

    /// I/O operations started so far.
    pub fn ops(&self) -> u64 {
        self.disk.borrow().ops
    }

    /// The next `fdatasync` fails (and makes nothing durable).
    pub fn fail_next_fsync(&self) {
        self.disk.borrow_mut().fail_fsyncs += 1;
    }

    /// The next write fails without writing anything.
    pub fn fail_next_write(&self) {
        self.disk.borrow_mut().fail_writes += 1;
    }

    /// The durable bytes of `path` (what a crash now would leave at least),
    /// for tests that damage files on purpose.
    pub fn durable_len(&self, path: &Path) -> Option<usize> {
        let d = self.disk.borrow();
        let id = d.names.get(path)?;
        Some(d.files.get(id)?.durable.len())
    }

    /// Overwrites bytes of `path` durably, bypassing everything: simulates
    /// media corruption.
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) {
        let mut d = self.disk.borrow_mut();
        let Some(id) = d.names.get(path).copied() else {
            panic!("corrupt: no file {}", path.display());
        };
        let f = d.files.get_mut(&id).expect("named file exists");
        for buf in [&mut f.data, &mut f.durable] {
            if buf.len() < offset + bytes.len() {
                buf.resize(offset + bytes.len(), 0);
            }
            buf[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
    }

    /// Starts an operation: yields once (so other tasks run while the
    /// "I/O" is in flight), then checks that this handle's epoch is alive and
    /// counts the operation toward a scheduled crash. Returns whether the
    /// scheduled crash is due now.
    async fn begin(
        &self,
        epoch: u64,
        op: IoOp,
        path: &Path,
        offset: Option<u64>,
    ) -> IoResult<bool> {
        futures_lite::future::yield_now().await;
        let mut d = self.disk.borrow_mut();
        if d.epoch != epoch {
            return Err(crashed(op, path, offset));
        }
        d.ops += 1;
        Ok(matches!(d.crash_at, Some((at, _)) if at == d.ops))
    }

    /// [`MemFs::begin`] for an operation that has no effect if the crash
    /// comes at it: crashes the disk then and fails.
    async fn step(&self, epoch: u64, op: IoOp, path: &Path, offset: Option<u64>) -> IoResult<()> {
        if self.begin(epoch, op, path, offset).await? {
            self.crash_now();
            return Err(crashed(op, path, offset));
        }
        Ok(())
    }

    fn crash_now(&self) {
        let mut d = self.disk.borrow_mut();
        let Some((_, seed)) = d.crash_at.take() else {
            return;
        };
        let mut rng = StdRng::seed_from_u64(seed);
        d.crash(&mut rng);
    }

    fn dir_op(&self, op: DirOp) {
        let mut d = self.disk.borrow_mut();
        op.apply(&mut d.names);
        d.pending_dir.push(op);
    }
}

impl Disk {
    fn crash<R: Rng>(&mut self, rng: &mut R) {
        self.epoch += 1;
        self.crashes += 1;
        self.fail_fsyncs = 0;
        self.fail_writes = 0;
        self.crash_at = None;
        let kept = rng.gen_range(0..=self.pending_dir.len());
        for op in self.pending_dir.drain(..kept) {
            op.apply(&mut self.durable_names);
        }
        self.pending_dir.clear();
        self.names = self.durable_names.clone();
        let live: std::collections::HashSet<u64> = self.names.values().copied().collect();
        self.files.retain(|id, _| live.contains(id));
        for f in self.files.values_mut() {
            let mut data = std::mem::take(&mut f.durable);
            for p in f.pending.drain(..) {
                match p {
                    Pending::SetLen(len) => {
                        if rng.gen_bool(0.5) {
                            data.resize(len as usize, 0);
                        }
                    }
                    Pending::Write {
                        offset,
                        data: bytes,
                    } => {
                        // A quarter of writes vanish, a quarter land whole,
                        // the rest keep an arbitrary subset of sectors.
                        let mode = rng.gen_range(0..4);
                        for (i, sector) in bytes.chunks(IO_SECTOR_BYTES).enumerate() {
                            let keep = match mode {
                                0 => false,
                                1 => true,
                                _ => rng.gen_bool(0.5),
                            };
                            if keep {
                                let at = offset as usize + i * IO_SECTOR_BYTES;
                                if data.len() < at + sector.len() {
                                    data.resize(at + sector.len(), 0);
                                }
                                data[at..at + sector.len()].copy_from_slice(sector);
                            }
                        }
                    }
                }
            }
            f.durable.clone_from(&data);
            f.data = data;
        }
    }
}

impl Fs for MemFs {
    type File = MemFile;

    async fn create_dir_all(&self, dir: &Path) -> IoResult<()> {
        // Directories are implicit: any path prefix is a directory.
        self.begin(self.epoch, IoOp::CreateDir, dir, None).await?;
        Ok(())
    }

    async fn list(&self, dir: &Path) -> IoResult<Vec<String>> {
        self.begin(self.epoch, IoOp::List, dir, None).await?;
        let d = self.disk.borrow();
        let names = d
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect();
        Ok(names)
    }

    async fn create(&self, path: &Path) -> IoResult<MemFile> {
        self.step(self.epoch, IoOp::Create, path, None).await?;
        let id = {
            let mut d = self.disk.borrow_mut();
            d.next_id += 1;
            let id = d.next_id;
            d.files.insert(id, FileData::default());
            id
        };
        self.dir_op(DirOp::Link(path.to_path_buf(), id));
        Ok(MemFile {
            fs: self.clone(),
            path: path.to_path_buf(),
            id,
        })
    }

    async fn open(&self, path: &Path) -> IoResult<MemFile> {
        self.begin(self.epoch, IoOp::Open, path, None).await?;
        let id = self.disk.borrow().names.get(path).copied();
        match id {
            Some(id) => Ok(MemFile {
                fs: self.clone(),
                path: path.to_path_buf(),
                id,
            }),
            None => Err(IoError::new(
                IoOp::Open,
                path,
                None,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )),
        }
    }

    async fn remove(&self, path: &Path) -> IoResult<()> {
        self.step(self.epoch, IoOp::Remove, path, None).await?;
        if !self.disk.borrow().names.contains_key(path) {
            let e = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(IoError::new(IoOp::Remove, path, None, e));
        }
        self.dir_op(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()> {
        self.step(self.epoch, IoOp::Rename, from, None).await?;
        assert_eq!(
            from.parent(),
            to.parent(),
            "renames stay within one directory"
        );
        if !self.disk.borrow().names.contains_key(from) {
            let e = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(IoError::new(IoOp::Rename, from, None, e));
        }
        self.dir_op(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> IoResult<()> {
        self.step(self.epoch, IoOp::SyncDir, dir, None).await?;
        let mut d = self.disk.borrow_mut();
        let d = &mut *d;
        let mut rest = Vec::new();
        for op in d.pending_dir.drain(..) {
            if op.dir() == Some(dir) {
                op.apply(&mut d.durable_names);
            } else {
                rest.push(op);
            }
        }
        d.pending_dir = rest;
        Ok(())
    }
}

/// Copies into `data` (written at `at`) the part of `new` (at `new_at`)
/// that overlaps it.
fn overlay(at: u64, data: &mut [u8], new_at: u64, new: &[u8]) {
    let start = at.max(new_at);
    let end = (at + data.len() as u64).min(new_at + new.len() as u64);
    if start < end {
        let (s, e) = ((start - at) as usize, (end - at) as usize);
        let n = (start - new_at) as usize;
        data[s..e].copy_from_slice(&new[n..n + (e - s)]);
    }
}

/// A file of a [`MemFs`].
pub struct MemFile {
    fs: MemFs,
    path: PathBuf,
    id: u64,
}

impl MemFile {
    /// Fails a sync if [`MemFs::fail_next_fsync`] asked for it.
    fn injected_sync_failure(&self, offset: Option<u64>, what: &str) -> IoResult<()> {
        let mut d = self.fs.disk.borrow_mut();
        if d.fail_fsyncs > 0 {
            d.fail_fsyncs -= 1;
            let e = std::io::Error::other(what.to_string());
            return Err(IoError::new(IoOp::Sync, &self.path, offset, e));
        }
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&mut FileData) -> T) -> T {
        let mut d = self.fs.disk.borrow_mut();
        let data = d
            .files
            .get_mut(&self.id)
            .expect("open file exists until a crash");
        f(data)
    }
}

impl File for MemFile {
    fn path(&self) -> &Path {
        &self.path
    }

    async fn write_at(&self, buf: AlignedBuf, offset: u64) -> IoResult<()> {
        let crash = self
            .fs
            .begin(self.fs.epoch, IoOp::Write, &self.path, Some(offset))
            .await?;
        if !crash {
            let mut d = self.fs.disk.borrow_mut();
            if d.fail_writes > 0 {
                d.fail_writes -= 1;
                let e = std::io::Error::other("injected write failure");
                return Err(IoError::new(IoOp::Write, &self.path, Some(offset), e));
            }
        }
        let bytes = buf.as_slice().to_vec();
        self.with(|f| {
            let end = offset as usize + bytes.len();
            if f.data.len() < end {
                f.data.resize(end, 0);
            }
            f.data[offset as usize..end].copy_from_slice(&bytes);
            f.pending.push(Pending::Write {
                offset,
                data: bytes,
            });
        });
        if crash {
            self.fs.crash_now();
            return Err(crashed(IoOp::Write, &self.path, Some(offset)));
        }
        Ok(())
    }

    async fn read_at(&self, offset: u64, len: usize) -> IoResult<Vec<u8>> {
        self.fs
            .begin(self.fs.epoch, IoOp::Read, &self.path, Some(offset))
            .await?;
        Ok(self.with(|f| {
            let start = (offset as usize).min(f.data.len());
            let end = (start + len).min(f.data.len());
            f.data[start..end].to_vec()
        }))
    }

    async fn fdatasync(&self) -> IoResult<()> {
        self.fs
            .step(self.fs.epoch, IoOp::Sync, &self.path, None)
            .await?;
        self.injected_sync_failure(None, "injected fdatasync failure")?;
        // Replays the pending operations onto the durable image instead of
        // copying the whole file: segments are large and syncs frequent.
        self.with(|f| {
            for p in f.pending.drain(..) {
                match p {
                    Pending::SetLen(len) => f.durable.resize(len as usize, 0),
                    Pending::Write { offset, data } => {
                        let end = offset as usize + data.len();
                        if f.durable.len() < end {
                            f.durable.resize(end, 0);
                        }
                        f.durable[offset as usize..end].copy_from_slice(&data);
                    }
                }
            }
        });
        Ok(())
    }

    /// Models one O_DSYNC write: two operations, the write and its
    /// completion. Until it completes a crash may drop or tear it; once it
    /// has, its bytes are durable, whatever other writes are still in
    /// flight (those stay pending).
    async fn write_durable(&self, buf: AlignedBuf, offset: u64) -> IoResult<()> {
        let bytes = buf.as_slice().to_vec();
        self.write_at(buf, offset).await?;
        // Writes take varying time, so that one issued later can complete,
        // or be caught by a crash, while an earlier one is still in flight.
        let extra = self.fs.disk.borrow().ops % 3;
        for _ in 0..extra {
            futures_lite::future::yield_now().await;
        }
        self.fs
            .step(self.fs.epoch, IoOp::Sync, &self.path, Some(offset))
            .await?;
        self.injected_sync_failure(Some(offset), "injected O_DSYNC write failure")?;
        self.with(|f| {
            // This write leaves the pending ones (an fdatasync may have
            // taken it already); its bytes join the durable image.
            let mine = f.pending.iter().rposition(
                |p| matches!(p, Pending::Write { offset: o, data } if *o == offset && *data == bytes),
            );
            if let Some(i) = mine {
                f.pending.remove(i);
                // Writes issued before this one lose what it overwrote: a
                // crash cannot bring their older bytes back over it.
                for p in &mut f.pending[..i] {
                    if let Pending::Write { offset: o, data } = p {
                        overlay(*o, data, offset, &bytes);
                    }
                }
            }
            let end = offset as usize + bytes.len();
            if f.durable.len() < end {
                f.durable.resize(end, 0);
            }
            f.durable[offset as usize..end].copy_from_slice(&bytes);
        });
        Ok(())
    }

    async fn size(&self) -> IoResult<u64> {
        self.fs
            .begin(self.fs.epoch, IoOp::Size, &self.path, None)
            .await?;
        Ok(self.with(|f| f.data.len() as u64))
    }

    async fn preallocate(&self, len: u64) -> IoResult<()> {
        self.fs
            .step(self.fs.epoch, IoOp::Preallocate, &self.path, Some(len))
            .await?;
        self.with(|f| {
            if (f.data.len() as u64) < len {
                f.data.resize(len as usize, 0);
                f.pending.push(Pending::SetLen(len));
            }
        });
        Ok(())
    }

    async fn truncate(&self, len: u64) -> IoResult<()> {
        self.fs
            .step(self.fs.epoch, IoOp::Truncate, &self.path, Some(len))
            .await?;
        self.with(|f| {
            f.data.resize(len as usize, 0);
            f.pending.push(Pending::SetLen(len));
        });
        Ok(())
    }

    async fn close(self) -> IoResult<()> {
        Ok(())
    }
}
