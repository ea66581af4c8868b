//! `cairn snapshot restore`: a new member's data dir from a backup.
//!
//! A backup (what `cairnctl snapshot save` writes) is a snapshot file
//! followed by the SHA-256 of its bytes (`docs/storage.md`). Restoring it
//! for one member of a new cluster:
//!
//! 1. checks the SHA-256 (unless `--skip-hash-check`, which also accepts a
//!    bare snapshot file copied out of a member's `member/snap`), then every
//!    chunk checksum and the whole-file checksum, and that the MVCC index
//!    rebuilds from it;
//! 2. writes the member's identity from the flags, exactly as a new member
//!    of a new cluster would on first start: the member and cluster ids are
//!    derived from the peer URLs and `--initial-cluster-token`, so a restore
//!    with a new token (as etcd's runbooks do) gets a new cluster id, and
//!    every member restored with the same flags derives the same one;
//! 3. writes the snapshot into `member/snap` at the Raft index and term it
//!    was taken at, with its member table dropped (the new cluster's members
//!    are the identity's), and a WAL holding only a snapshot marker and a
//!    hard state committed up to that index.
//!
//! `cairn` started with the same `--name`, `--data-dir`, `--initial-cluster`
//! and token then loads the snapshot and serves every key in it. Every
//! member of the new cluster must be restored from the same file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Parser;
use sha2::{Digest, Sha256};

use super::meta::Identity;
use super::snapshot::SnapMeta;
use crate::config::Config;
use crate::io::DmaFs;
use crate::mvcc::{Mvcc, MvccConfig};
use crate::snap::{self, SnapStore};
use crate::wal::{self, Record, WalOptions};

/// Bytes of the SHA-256 that ends a backup.
pub const BACKUP_HASH_BYTES: usize = 32;

/// Most zero bytes between a downloaded snapshot file and its hash (the
/// padding that gives etcdctl's layout: 512-byte blocks, then the hash).
const PADDING_BYTES_MAX: usize = 511;

/// Bytes copied at a time while checking and copying a backup.
const COPY_BUFFER_BYTES: usize = 1 << 20;

/// Flags of `cairn snapshot restore`, named as etcdctl's (etcdutl's).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cairn snapshot restore",
    about = "Restore a backup into a new member's data directory"
)]
pub struct RestoreArgs {
    /// The backup written by `cairnctl snapshot save`.
    pub file: PathBuf,
    /// Path to the new data directory (default: `<name>.cairn`); must not
    /// exist.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Human-readable name of the member being restored.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// The new cluster: `name=peer-url,...` (default: this member alone).
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Token of the new cluster; a new token gives a new cluster id.
    #[arg(long, default_value = "cairn-cluster")]
    pub initial_cluster_token: String,
    /// This member's peer URLs.
    #[arg(long, default_value = "http://127.0.0.1:2380")]
    pub initial_advertise_peer_urls: String,
    /// Do not check the SHA-256 (required for a snapshot file copied from a
    /// data dir, which has none).
    #[arg(long)]
    pub skip_hash_check: bool,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub data_dir: PathBuf,
    pub cluster_id: u64,
    pub member_id: u64,
    pub index: u64,
    pub term: u64,
    pub revision: i64,
}

/// Why a restore failed; the data dir is removed again in every case.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("data-dir {0:?} exists")]
    DataDirExists(PathBuf),
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot file integrity check failed: expected sha256 {expected}, got {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error(
        "{0} holds no integrity hash (a snapshot file copied from a data dir?); \
         use --skip-hash-check to restore it anyway"
    )]
    NoHash(PathBuf),
    #[error("{path} is not a cairn snapshot: {reason}")]
    NotSnapshot { path: PathBuf, reason: String },
    #[error("invalid flags: {0}")]
    Flags(String),
    #[error("{0}")]
    Store(String),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError {
    let path = path.to_path_buf();
    move |source| RestoreError::Io { op, path, source }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RestoreArgs {
    /// The server configuration these flags describe (how the restored
    /// member must later be started).
    fn config(&self) -> Result<Config, RestoreError> {
        let mut argv: Vec<String> = vec![
            "cairn".into(),
            "--name".into(),
            self.name.clone(),
            "--initial-cluster-token".into(),
            self.initial_cluster_token.clone(),
            "--initial-advertise-peer-urls".into(),
            self.initial_advertise_peer_urls.clone(),
        ];
        if let Some(d) = &self.data_dir {
            argv.push("--data-dir".into());
            argv.push(d.display().to_string());
        }
        if let Some(c) = &self.initial_cluster {
            argv.push("--initial-cluster".into());
            argv.push(c.clone());
        }
        let config =
            Config::try_parse_from(argv).map_err(|e| RestoreError::Flags(e.to_string()))?;
        config
            .initial_members()
            .map_err(|e| RestoreError::Flags(e.to_string()))?;
        Ok(config)
    }
}

/// Where the snapshot file ends inside a backup: its length, and whether a
/// SHA-256 follows it.
/// Where the snapshot file ends inside a backup of `len` bytes, and where
/// its SHA-256 is (the hash covers every byte before it). Three layouts:
/// the file then its hash (`cairnctl snapshot save`); the bare file; and
/// the file, up to 511 zero bytes, then the hash of all before it (a
/// download by `etcdctl snapshot save`, which wants a length of 32 more
/// than a multiple of 512).
fn locate(
    file: &mut std::fs::File,
    path: &Path,
    len: u64,
) -> Result<(u64, Option<u64>), RestoreError> {
    use std::io::{Seek, SeekFrom};
    let not_snap = |reason: &str| RestoreError::NotSnapshot {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let min = (snap::HEADER_BYTES + snap::TRAILER_BYTES) as u64;
    if len < min {
        return Err(not_snap("the file is too short"));
    }
    let mut tail = vec![0u8; snap::TRAILER_BYTES + BACKUP_HASH_BYTES];
    let tail_at = len.saturating_sub(tail.len() as u64);
    file.seek(SeekFrom::Start(tail_at))
        .map_err(io_err("seek", path))?;
    file.read_exact(&mut tail).map_err(io_err("read", path))?;
    let with_hash_at = len.saturating_sub(tail.len() as u64);
    let bare_at = len - snap::TRAILER_BYTES as u64;
    let hash_at = len.saturating_sub(BACKUP_HASH_BYTES as u64);
    if len >= min + BACKUP_HASH_BYTES as u64 && snap::is_trailer_at(&tail, with_hash_at) {
        return Ok((hash_at, Some(hash_at)));
    }
    let bare_tail = &tail[tail.len() - snap::TRAILER_BYTES..];
    if snap::is_trailer_at(bare_tail, bare_at) {
        return Ok((len, None));
    }
    // Padded: step back over the zero bytes before the hash.
    let window = (snap::TRAILER_BYTES + PADDING_BYTES_MAX + BACKUP_HASH_BYTES) as u64;
    let window_at = len.saturating_sub(window);
    let mut w = vec![0u8; usize::try_from(len - window_at).unwrap_or(0)];
    file.seek(SeekFrom::Start(window_at))
        .map_err(io_err("seek", path))?;
    file.read_exact(&mut w).map_err(io_err("read", path))?;
    let hash_in_w = w.len().saturating_sub(BACKUP_HASH_BYTES);
    for pad in 1..=PADDING_BYTES_MAX {
        // The file would end `pad` bytes before the hash; the bytes between
        // are padding, zeros only. (The trailer may itself end in zero
        // bytes, so every candidate end is tried.)
        let Some(end_in_w) = hash_in_w.checked_sub(pad) else {
            break;
        };
        let Some(trailer_in_w) = end_in_w.checked_sub(snap::TRAILER_BYTES) else {
            break;
        };
        if w[end_in_w] != 0 {
            break;
        }
        let trailer_at = window_at + trailer_in_w as u64;
        if snap::is_trailer_at(&w[trailer_in_w..], trailer_at) {
            return Ok((trailer_at + snap::TRAILER_BYTES as u64, Some(hash_at)));
        }
    }
    Err(not_snap("no snapshot trailer (truncated or damaged file?)"))
}

/// Copy the first `body_len` bytes of `src` to `dst` (synced), returning
/// their SHA-256 and the first header bytes.
fn copy_body(
    src: &mut std::fs::File,
    src_path: &Path,
    body_len: u64,
    hash_len: u64,
    dst_path: &Path,
) -> Result<([u8; 32], Vec<u8>), RestoreError> {
    use std::io::{Seek, SeekFrom};
    src.seek(SeekFrom::Start(0))
        .map_err(io_err("seek", src_path))?;
    let mut dst = std::fs::File::create(dst_path).map_err(io_err("create", dst_path))?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    let mut left = body_len;
    let mut head = Vec::new();
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        src.read_exact(&mut buf[..want])
            .map_err(io_err("read", src_path))?;
        if head.len() < snap::HEADER_BYTES {
            let n = (snap::HEADER_BYTES - head.len()).min(want);
            head.extend_from_slice(&buf[..n]);
        }
        sha.update(&buf[..want]);
        dst.write_all(&buf[..want])
            .map_err(io_err("write", dst_path))?;
        left -= want as u64;
    }
    // What follows the file up to the hash (padding) is hashed, not copied.
    let mut left = hash_len.saturating_sub(body_len);
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        src.read_exact(&mut buf[..want])
            .map_err(io_err("read", src_path))?;
        sha.update(&buf[..want]);
        left -= want as u64;
    }
    dst.sync_all().map_err(io_err("fsync", dst_path))?;
    Ok((sha.finalize().into(), head))
}

/// Restore `args.file` into a new data dir. On failure the partly written
/// data dir is removed.
pub fn restore(args: &RestoreArgs) -> Result<Restored, RestoreError> {
    let config = args.config()?;
    let data_dir = config.data_dir();
    if data_dir.exists() {
        return Err(RestoreError::DataDirExists(data_dir));
    }
    let result = restore_into(args, &config, &data_dir);
    if result.is_err() {
        // Nothing in it is of use; leaving it would make a retry fail with
        // "data-dir exists".
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

fn restore_into(
    args: &RestoreArgs,
    config: &Config,
    data_dir: &Path,
) -> Result<Restored, RestoreError> {
    let path = &args.file;
    let mut file = std::fs::File::open(path).map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    let (body_len, hash_at) = locate(&mut file, path, len)?;
    let has_hash = hash_at.is_some();
    if !has_hash && !args.skip_hash_check {
        return Err(RestoreError::NoHash(path.clone()));
    }

    let member_dir = data_dir.join("member");
    let snap_dir = snap::dir(data_dir);
    std::fs::create_dir_all(&snap_dir).map_err(io_err("create", &snap_dir))?;
    let staged = member_dir.join("restore.snap.part");
    let hash_len = hash_at.unwrap_or(body_len);
    let (actual, head) = copy_body(&mut file, path, body_len, hash_len, &staged)?;
    if has_hash && !args.skip_hash_check {
        let mut expected = [0u8; BACKUP_HASH_BYTES];
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(hash_len))
            .map_err(io_err("seek", path))?;
        file.read_exact(&mut expected)
            .map_err(io_err("read", path))?;
        if expected != actual {
            return Err(RestoreError::HashMismatch {
                expected: hex(&expected),
                actual: hex(&actual),
            });
        }
    }
    let (index, term) = snap::header_position(&head).ok_or_else(|| RestoreError::NotSnapshot {
        path: path.clone(),
        reason: "no snapshot header of a known version".into(),
    })?;

    let (identity, _) = Identity::load_or_create(&member_dir, config)
        .map_err(|e| RestoreError::Store(e.to_string()))?;
    let mvcc_config = MvccConfig {
        txn_ops_max: config.max_txn_ops,
        ..MvccConfig::default()
    };
    let (dir, member) = (data_dir.to_path_buf(), member_dir.clone());
    let revision =
        run_on_executor(move || finish_restore(member, dir, staged, index, term, mvcc_config))?;
    Ok(Restored {
        data_dir: data_dir.to_path_buf(),
        cluster_id: identity.cluster_id,
        member_id: identity.member_id,
        index,
        term,
        revision,
    })
}

/// The storage code runs on a glommio executor; a restore is one short
/// task on a fresh one. (glommio's files are not `Send`, so the task is
/// built on the executor's thread from `make`.)
fn run_on_executor<T, F, Fut>(make: F) -> Result<T, RestoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, RestoreError>> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .name("cairn-restore")
        .spawn(make)
        .map_err(|e| RestoreError::Store(format!("cannot start an executor: {e}")))?
        .join()
        .map_err(|e| RestoreError::Store(format!("the restore task failed: {e}")))?
}

/// Verify the staged snapshot file, rewrite it into `member/snap` without
/// the old cluster's member table, and write the WAL.
async fn finish_restore(
    member_dir: PathBuf,
    data_dir: PathBuf,
    staged: PathBuf,
    index: u64,
    term: u64,
    mvcc_config: MvccConfig,
) -> Result<i64, RestoreError> {
    let store_err = |e: &dyn std::fmt::Display| RestoreError::Store(e.to_string());
    let fs = DmaFs::new(&member_dir).await.map_err(|e| store_err(&e))?;
    let mut reader = snap::SnapReader::open(
        &fs,
        snap::SnapInfo {
            index,
            term,
            path: staged.clone(),
        },
    )
    .await
    .map_err(|e| store_err(&e))?;
    let mut meta = SnapMeta::decode(&reader.meta).map_err(RestoreError::Store)?;
    // The new cluster's members are the identity's initial ones.
    meta.members = None;
    let mut chunks = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.map_err(|e| store_err(&e))? {
        chunks.push(chunk);
    }
    drop(reader);
    let mvcc = Mvcc::restore(mvcc_config, &chunks).map_err(|e| store_err(&e))?;
    let revision = mvcc.current_revision();
    drop(mvcc);

    let store = SnapStore::open(fs.clone(), &snap::dir(&data_dir))
        .await
        .map_err(|e| store_err(&e))?;
    let mut writer = store
        .create(index, term, &meta.encode())
        .await
        .map_err(|e| store_err(&e))?;
    for chunk in &chunks {
        writer.write_chunk(chunk).await.map_err(|e| store_err(&e))?;
    }
    writer.finish().await.map_err(|e| store_err(&e))?;
    std::fs::remove_file(&staged).map_err(io_err("remove", &staged))?;

    let (wal, _) = wal::open(fs, &wal::dir(&data_dir), WalOptions::default())
        .await
        .map_err(|e| store_err(&e))?;
    let lsn = wal
        .append(&[
            Record::Snapshot(wal::SnapshotMarker { index, term }),
            Record::HardState(wal::HardState {
                term,
                vote: 0,
                commit: index,
            }),
        ])
        .await
        .map_err(|e| store_err(&e))?;
    wal.wait_durable(lsn).await.map_err(|e| store_err(&e))?;
    wal.close().await.map_err(|e| store_err(&e))?;
    Ok(revision)
}

/// `cairn snapshot restore ...`: parse `argv` (starting with the words
/// `snapshot restore`), restore, print what was done. Returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    let mut words = argv.into_iter();
    let program = words.next().unwrap_or_else(|| "cairn".into());
    let rest: Vec<String> = words.collect();
    if rest.first().map(String::as_str) != Some("snapshot")
        || rest.get(1).map(String::as_str) != Some("restore")
    {
        eprintln!("usage: {program} snapshot restore <file> [flags]");
        return 2;
    }
    let args = match RestoreArgs::try_parse_from(
        std::iter::once("cairn snapshot restore".to_string()).chain(rest.into_iter().skip(2)),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match restore(&args) {
        Ok(r) => {
            println!(
                "restored snapshot (revision {}, raft index {}) into {} as member {:x} of cluster {:x}",
                r.revision,
                r.index,
                r.data_dir.display(),
                r.member_id,
                r.cluster_id
            );
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
