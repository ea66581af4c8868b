//! Snapshot files in `<data-dir>/member/snap/`.
//!
//! A snapshot is the state machine at an applied index: a header (index,
//! term and a metadata blob of the caller's: revision, compact revision,
//! membership), then opaque chunks produced by the MVCC index, then a trailer
//! with the chunk count and a checksum of the whole file. Files are named
//! `{term:016x}-{index:016x}.snap`.
//!
//! Writing is incremental ([`SnapStore::create`] → [`SnapWriter::write_chunk`]
//! per chunk → [`SnapWriter::finish`]), so the server can stream its index
//! as of a revision while it keeps serving writes. The file appears under its
//! final name only once it is complete and durable.
//!
//! # Retention, together with the WAL
//!
//! The store keeps the newest [`SNAP_FILES_KEPT`] files. After a snapshot at
//! index `i` is finished, the server appends a snapshot marker for `i` to the
//! WAL and then releases WAL segments only up to the index of the *oldest*
//! snapshot kept. So if the newest file turns out damaged at start-up,
//! [`SnapStore::open_newest_valid`] falls back to the previous one and the WAL
//! still holds every entry after it.
//!
//! ```
//! use cairn_engine::io::MemFs;
//! use cairn_engine::snap::SnapStore;
//!
//! glommio::LocalExecutorBuilder::default()
//!     .spawn(|| async {
//!         let store = SnapStore::open(MemFs::new(), "/data/member/snap".as_ref()).await?;
//!         let mut w = store.create(1234, 2, b"revision=99").await?;
//!         w.write_chunk(b"first chunk").await?;
//!         w.write_chunk(b"second chunk").await?;
//!         w.finish().await?;
//!
//!         let mut r = store.open_newest_valid(|_index| true).await?.expect("a snapshot");
//!         assert_eq!((r.info.index, r.info.term), (1234, 2));
//!         assert_eq!(r.meta, b"revision=99");
//!         assert_eq!(r.next_chunk().await?.as_deref(), Some(&b"first chunk"[..]));
//!         assert_eq!(r.next_chunk().await?.as_deref(), Some(&b"second chunk"[..]));
//!         assert_eq!(r.next_chunk().await?, None);
//!         Ok::<_, cairn_engine::snap::SnapError>(())
//!     })
//!     .unwrap()
//!     .join()
//!     .unwrap()
//!     .unwrap();
//! ```

mod format;
mod image;
mod reader;
mod writer;

use std::path::{Path, PathBuf};

pub use image::{header_position, is_trailer_at, SnapImage, HEADER_BYTES, TRAILER_BYTES};
pub use reader::SnapReader;
pub use writer::SnapWriter;

use crate::io::{Fs, IoError};
use crate::limits::SNAP_FILES_KEPT;

#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("snap: {0}")]
    Io(#[from] IoError),
    #[error("snap: damaged snapshot {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Snapshot files exist but none can be used; `path` is the newest.
    #[error("snap: no usable snapshot; the newest, {}, is unusable: {reason}", path.display())]
    NoneUsable { path: PathBuf, reason: String },
    #[error("snap: {what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

/// Which snapshot a file holds, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapInfo {
    pub index: u64,
    pub term: u64,
    pub path: PathBuf,
}

/// The snapshot directory of a data directory: `<data-dir>/member/snap`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("snap")
}

/// The snapshot files of one member.
#[derive(Clone)]
pub struct SnapStore<F: Fs> {
    fs: F,
    dir: PathBuf,
}

impl<F: Fs> SnapStore<F> {
    /// Opens (creating) `dir` and removes leftovers of unfinished snapshots.
    pub async fn open(fs: F, dir: &Path) -> Result<SnapStore<F>, SnapError> {
        fs.create_dir_all(dir).await?;
        for name in fs.list(dir).await? {
            if name.ends_with(".snap.tmp") {
                let path = dir.join(&name);
                tracing::info!(file = %path.display(), "snap: removing unfinished snapshot");
                fs.remove(&path).await?;
            }
        }
        Ok(SnapStore {
            fs,
            dir: dir.to_path_buf(),
        })
    }

    /// The snapshot files, newest (highest index, then term) first.
    pub async fn list(&self) -> Result<Vec<SnapInfo>, SnapError> {
        let mut v: Vec<SnapInfo> = self
            .fs
            .list(&self.dir)
            .await?
            .into_iter()
            .filter_map(|name| {
                let (term, index) = format::parse_snap_name(&name)?;
                Some(SnapInfo {
                    index,
                    term,
                    path: self.dir.join(name),
                })
            })
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse((s.index, s.term)));
        Ok(v)
    }

    /// Starts writing the snapshot at `index` (of `term`) with the caller's
    /// metadata.
    pub async fn create(
        &self,
        index: u64,
        term: u64,
        meta: &[u8],
    ) -> Result<SnapWriter<F>, SnapError> {
        let info = SnapInfo {
            index,
            term,
            path: self.dir.join(format::snap_name(term, index)),
        };
        SnapWriter::begin(self.clone(), info, meta).await
    }

    /// The newest snapshot that verifies and that `usable` accepts (the
    /// caller passes whether the WAL still holds every entry after that
    /// index). Damaged or unusable ones are skipped with a warning. `Ok(None)`
    /// if there are no snapshot files; an error naming the newest file if
    /// there are some but none can be used.
    pub async fn open_newest_valid(
        &self,
        usable: impl Fn(u64) -> bool,
    ) -> Result<Option<SnapReader<F>>, SnapError> {
        let all = self.list().await?;
        let mut first_problem: Option<(PathBuf, String)> = None;
        for info in all {
            let path = info.path.clone();
            let problem = if !usable(info.index) {
                "the log no longer holds the entries after it".to_string()
            } else {
                match SnapReader::open(&self.fs, info).await {
                    Ok(r) => return Ok(Some(r)),
                    Err(SnapError::Corrupt { offset, reason, .. }) => {
                        format!("damaged at offset {offset}: {reason}")
                    }
                    Err(e) => return Err(e),
                }
            };
            tracing::warn!(file = %path.display(), %problem, "snap: skipping snapshot");
            first_problem.get_or_insert((path, problem));
        }
        match first_problem {
            None => Ok(None),
            Some((path, reason)) => Err(SnapError::NoneUsable { path, reason }),
        }
    }

    /// Removes all but the newest [`SNAP_FILES_KEPT`] snapshot files.
    pub async fn prune(&self) -> Result<usize, SnapError> {
        let all = self.list().await?;
        let mut removed = 0;
        for info in all.iter().skip(SNAP_FILES_KEPT) {
            self.fs.remove(&info.path).await?;
            removed += 1;
        }
        if removed > 0 {
            self.fs.sync_dir(&self.dir).await?;
        }
        Ok(removed)
    }

    /// Index of the oldest snapshot kept: the WAL may be released up to it.
    pub async fn oldest_kept_index(&self) -> Result<Option<u64>, SnapError> {
        Ok(self
            .list()
            .await?
            .iter()
            .take(SNAP_FILES_KEPT)
            .map(|i| i.index)
            .min())
    }
}
