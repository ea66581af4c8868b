//! The file seam: the crash semantics of `MemFs` that the WAL tests rely
//! on, and `DmaFs` on an O_DIRECT file system and on tmpfs (buffered
//! fallback).

mod wal_util;

use std::path::Path;

use cairn_engine::io::{AlignedBuf, DmaFs, File, Fs, MemFs, WriteMode};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn block(byte: u8, len: usize) -> AlignedBuf {
    let mut b = AlignedBuf::zeroed(len);
    b.as_mut_slice().fill(byte);
    b
}

#[test]
fn memfs_keeps_synced_and_loses_unsynced_on_crash() {
    wal_util::run(|| async {
        let fs = MemFs::new();
        let dir = Path::new("/d");
        let a = dir.join("a");
        let f = fs.create(&a).await.unwrap();
        f.write_at(block(1, 4096), 0).await.unwrap();
        f.fdatasync().await.unwrap();
        fs.sync_dir(dir).await.unwrap();
        f.write_at(block(2, 4096), 4096).await.unwrap();
        // Created but the directory is not synced: the name may vanish.
        let b = dir.join("b");
        let g = fs.create(&b).await.unwrap();
        g.write_at(block(3, 4096), 0).await.unwrap();
        g.fdatasync().await.unwrap();

        // Crash with a generator that drops every unsynced write (found by
        // trying seeds: the first where the second block of `a` is gone).
        let mut found = false;
        for seed in 0..64 {
            let trial = MemFs::new();
            let t = trial.create(&a).await.unwrap();
            t.write_at(block(1, 4096), 0).await.unwrap();
            t.fdatasync().await.unwrap();
            trial.sync_dir(dir).await.unwrap();
            t.write_at(block(2, 4096), 4096).await.unwrap();
            trial.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            let live = trial.reopen();
            let t = live.open(&a).await.unwrap();
            let data = t.read_at(0, 8192).await.unwrap();
            assert!(data[..4096].iter().all(|&x| x == 1), "synced data lost");
            if data.len() == 4096 {
                found = true;
            } else {
                // Torn at sector granularity: each sector all old or all new.
                for s in data[4096..].chunks(512) {
                    assert!(s.iter().all(|&x| x == 2) || s.iter().all(|&x| x == 0));
                }
            }
        }
        assert!(found, "some crash drops the unsynced write");

        fs.crash(&mut ChaCha8Rng::seed_from_u64(1));
        // Handles from before the crash are dead.
        assert!(f.read_at(0, 10).await.is_err());
        assert!(fs.list(dir).await.is_err());
        let live = fs.reopen();
        let names = live.list(dir).await.unwrap();
        assert!(names.contains(&"a".to_string()));
        let f = live.open(&a).await.unwrap();
        assert!(f.read_at(0, 4096).await.unwrap().iter().all(|&x| x == 1));
    });
}

#[test]
fn memfs_injected_failures_carry_operation_and_path() {
    wal_util::run(|| async {
        let fs = MemFs::new();
        let p = Path::new("/d/f");
        let f = fs.create(p).await.unwrap();
        fs.fail_next_write();
        let e = f.write_at(block(1, 4096), 8192).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "write /d/f at offset 8192: injected write failure"
        );
        fs.fail_next_fsync();
        let e = f.fdatasync().await.unwrap_err();
        assert!(e.to_string().starts_with("fdatasync /d/f"), "{e}");
        f.write_at(block(1, 4096), 0).await.unwrap();
        f.fdatasync().await.unwrap();
    });
}

async fn round_trip(dir: &Path) -> WriteMode {
    let fs = DmaFs::new(dir).await.unwrap();
    let p = dir.join("file");
    let f = fs.create(&p).await.unwrap();
    f.preallocate(64 * 1024).await.unwrap();
    f.write_at(block(7, 8192), 4096).await.unwrap();
    f.fdatasync().await.unwrap();
    fs.sync_dir(dir).await.unwrap();
    assert_eq!(f.size().await.unwrap(), 64 * 1024);
    let data = f.read_at(0, 64 * 1024).await.unwrap();
    assert!(data[..4096].iter().all(|&x| x == 0));
    assert!(data[4096..12288].iter().all(|&x| x == 7));
    f.truncate(12288).await.unwrap();
    assert_eq!(f.size().await.unwrap(), 12288);
    f.close().await.unwrap();
    fs.rename(&p, &dir.join("renamed")).await.unwrap();
    assert_eq!(fs.list(dir).await.unwrap(), vec!["renamed".to_string()]);
    fs.remove(&dir.join("renamed")).await.unwrap();
    let e = fs
        .open(&p)
        .await
        .err()
        .expect("opening a missing file fails");
    assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    fs.mode()
}

#[test]
fn dmafs_uses_o_direct_on_ext4() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(round_trip(tmp.path()).await, WriteMode::Direct);
    });
}

#[test]
fn dmafs_falls_back_to_buffered_on_tmpfs() {
    wal_util::run(|| async {
        let shm = Path::new("/dev/shm");
        let tmp = tempfile::tempdir_in(shm).unwrap();
        assert_eq!(round_trip(tmp.path()).await, WriteMode::Buffered);
    });
}
