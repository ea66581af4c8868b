//! Snapshot files: round trip, damage detection, fallback to the previous
//! snapshot, retention, and crashes while writing.

mod wal_util;

use std::path::{Path, PathBuf};

use cairn_engine::io::{DmaFs, Fs, MemFs};
use cairn_engine::limits::SNAP_FILES_KEPT;
use cairn_engine::snap::{SnapError, SnapStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn chunk(snap: u64, i: usize) -> Vec<u8> {
    let len = 1000 + (i * 7919) % 300_000;
    (0..len)
        .map(|b| (b as u64 ^ snap ^ i as u64) as u8)
        .collect()
}

async fn write_snap<F: Fs>(store: &SnapStore<F>, index: u64, chunks: usize) -> PathBuf {
    let meta = format!("meta-{index}");
    let mut w = store.create(index, 3, meta.as_bytes()).await.unwrap();
    for i in 0..chunks {
        w.write_chunk(&chunk(index, i)).await.unwrap();
    }
    w.finish().await.unwrap().path
}

async fn read_all<F: Fs>(
    store: &SnapStore<F>,
    usable: impl Fn(u64) -> bool,
) -> Result<(u64, Vec<u8>, usize), SnapError> {
    let mut r = store
        .open_newest_valid(usable)
        .await?
        .expect("a snapshot exists");
    let index = r.info.index;
    let mut n = 0;
    while let Some(c) = r.next_chunk().await? {
        assert_eq!(c, chunk(index, n));
        n += 1;
    }
    Ok((index, r.meta.clone(), n))
}

fn flip(path: &Path, at: u64) {
    wal_util::flip_byte(path, at, 0x10);
}

#[test]
fn round_trip_many_chunks() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cairn_engine::snap::dir(tmp.path());
        let store = SnapStore::open(DmaFs::new(&dir).await.unwrap(), &dir)
            .await
            .unwrap();
        assert!(store.open_newest_valid(|_| true).await.unwrap().is_none());
        let path = write_snap(&store, 100, 40).await;
        assert!(path.ends_with("0000000000000003-0000000000000064.snap"));
        let (index, meta, n) = read_all(&store, |_| true).await.unwrap();
        assert_eq!((index, meta, n), (100, b"meta-100".to_vec(), 40));
    });
}

#[test]
fn damaged_newest_falls_back_to_previous() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cairn_engine::snap::dir(tmp.path());
        let store = SnapStore::open(DmaFs::new(&dir).await.unwrap(), &dir)
            .await
            .unwrap();
        write_snap(&store, 100, 5).await;
        let newest = write_snap(&store, 200, 5).await;
        flip(&newest, 5000);
        let (index, _, n) = read_all(&store, |_| true).await.unwrap();
        assert_eq!((index, n), (100, 5));
    });
}

#[test]
fn newest_the_log_cannot_follow_is_skipped() {
    wal_util::run(|| async {
        let fs = MemFs::new();
        let dir = Path::new("/d/member/snap");
        let store = SnapStore::open(fs, dir).await.unwrap();
        write_snap(&store, 100, 2).await;
        write_snap(&store, 200, 2).await;
        let (index, _, _) = read_all(&store, |i| i < 150).await.unwrap();
        assert_eq!(index, 100);
    });
}

#[test]
fn damaged_only_snapshot_is_a_clear_error() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cairn_engine::snap::dir(tmp.path());
        let store = SnapStore::open(DmaFs::new(&dir).await.unwrap(), &dir)
            .await
            .unwrap();
        let only = write_snap(&store, 100, 3).await;
        flip(&only, 40);
        let err = read_all(&store, |_| true).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SnapError::NoneUsable { .. }), "{msg}");
        assert!(msg.contains(&only.display().to_string()), "{msg}");
        assert!(msg.contains("checksum"), "{msg}");
    });
}

#[test]
fn truncated_snapshot_is_detected() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cairn_engine::snap::dir(tmp.path());
        let store = SnapStore::open(DmaFs::new(&dir).await.unwrap(), &dir)
            .await
            .unwrap();
        let only = write_snap(&store, 100, 3).await;
        let len = std::fs::metadata(&only).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&only)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        let msg = read_all(&store, |_| true).await.unwrap_err().to_string();
        assert!(msg.contains("trailer"), "{msg}");
    });
}

#[test]
fn keeps_a_bounded_number_of_files() {
    wal_util::run(|| async {
        let fs = MemFs::new();
        let dir = Path::new("/d/member/snap");
        let store = SnapStore::open(fs, dir).await.unwrap();
        for i in 1..=5 {
            write_snap(&store, i * 10, 1).await;
        }
        let left: Vec<u64> = store
            .list()
            .await
            .unwrap()
            .iter()
            .map(|s| s.index)
            .collect();
        let want: Vec<u64> = (1..=5u64)
            .rev()
            .take(SNAP_FILES_KEPT)
            .map(|i| i * 10)
            .collect();
        assert_eq!(left, want);
        assert_eq!(
            store.oldest_kept_index().await.unwrap(),
            want.last().copied()
        );
    });
}

/// A crash while a snapshot is written never leaves a damaged file under a
/// snapshot name: after reopening, the newest valid snapshot is either the
/// new one, complete, or the previous one.
#[test]
fn crash_while_writing_leaves_old_or_new() {
    let seeds = wal_util::seeds(200);
    wal_util::run(move || async move {
        for seed in seeds {
            wal_util::set_seed(seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let fs = MemFs::new();
            let dir = Path::new("/d/member/snap");
            let store = SnapStore::open(fs.clone(), dir).await.unwrap();
            write_snap(&store, 100, 3).await;
            let crashes = fs.crashes();
            fs.crash_at_op(rng.gen_range(1..20), rng.gen());
            let finished = async {
                let mut w = store.create(200, 3, b"meta-200").await?;
                for i in 0..6 {
                    w.write_chunk(&chunk(200, i)).await?;
                }
                w.finish().await
            }
            .await
            .is_ok();
            if fs.crashes() == crashes {
                fs.crash(&mut rng);
            }
            let store = SnapStore::open(fs.reopen(), dir).await.unwrap();
            let mut r = store.open_newest_valid(|_| true).await.unwrap().unwrap();
            if finished {
                assert_eq!(r.info.index, 200, "a finished snapshot must survive");
            }
            let mut n = 0;
            while let Some(c) = r.next_chunk().await.unwrap() {
                assert_eq!(c, chunk(r.info.index, n));
                n += 1;
            }
            assert_eq!(n, if r.info.index == 200 { 6 } else { 3 });
        }
    });
}
