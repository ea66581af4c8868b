//! The WAL on real files (`DmaFs`, O_DIRECT in a temporary directory): torn
//! tails, damage before the tail, segment rollover and release.

mod wal_util;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use cairn_engine::io::DmaFs;
use cairn_engine::wal::{self, HardState, Record, SnapshotMarker, WalError, WalOptions};
use wal_util::flip_byte;

const BLOCK: u64 = 4096;

fn small() -> WalOptions {
    WalOptions {
        segment_bytes: 64 * 1024,
        batch_bytes_max: 16 * 1024,
        batch_queue_max: 2,
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("value-{i}").into_bytes()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// Appends entry `i` (term 1) in a batch of its own and waits until it is
/// durable.
async fn append_durable(log: &wal::Wal<DmaFs>, i: u64) {
    let p = payload(i);
    let lsn = log
        .append(&[Record::Entry {
            index: i,
            term: 1,
            kind: 0,
            payload: &p,
        }])
        .await
        .unwrap();
    log.wait_durable(lsn).await.unwrap();
}

/// Appends entries 1..=n, one durable batch each (batch k at block k+1).
async fn write_entries(dir: &Path, opts: WalOptions, n: u64) {
    let fs = DmaFs::new(dir).await.unwrap();
    let (log, _) = wal::open(fs, dir, opts).await.unwrap();
    for i in 1..=n {
        append_durable(&log, i).await;
    }
}

async fn reopen(dir: &Path, opts: WalOptions) -> Result<wal::Recovered, WalError> {
    let fs = DmaFs::new(dir).await.unwrap();
    wal::open(fs, dir, opts).await.map(|(_, r)| r)
}

#[test]
fn truncated_tail_is_dropped_and_writing_resumes() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        write_entries(&dir, WalOptions::default(), 10).await;
        let seg = segments(&dir).pop().unwrap();
        // Cut the last batch (entry 10, block 10) in the middle of its record.
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(10 * BLOCK + 40).unwrap();
        drop(f);

        let rec = reopen(&dir, WalOptions::default()).await.unwrap();
        let idx: Vec<u64> = rec.entries.iter().map(|e| e.index).collect();
        assert_eq!(idx, (1..=9).collect::<Vec<_>>());

        // The writer continues where the valid log ends.
        let fs = DmaFs::new(&dir).await.unwrap();
        let (log, _) = wal::open(fs, &dir, WalOptions::default()).await.unwrap();
        let lsn = log
            .append(&[Record::Entry {
                index: 10,
                term: 2,
                kind: 0,
                payload: b"again",
            }])
            .await
            .unwrap();
        log.wait_durable(lsn).await.unwrap();
        drop(log);
        let rec = reopen(&dir, WalOptions::default()).await.unwrap();
        assert_eq!(rec.entries.len(), 10);
        assert_eq!(rec.entries[9].payload, b"again");
        assert_eq!(rec.entries[9].term, 2);
    });
}

#[test]
fn torn_sector_in_last_batch_is_dropped() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        write_entries(&dir, WalOptions::default(), 5).await;
        let seg = segments(&dir).pop().unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_at(&[0u8; 512], 5 * BLOCK).unwrap();
        drop(f);
        let rec = reopen(&dir, WalOptions::default()).await.unwrap();
        assert_eq!(rec.entries.len(), 4);
    });
}

#[test]
fn damage_before_the_tail_is_refused_naming_file_and_offset() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        write_entries(&dir, WalOptions::default(), 10).await;
        let seg = segments(&dir).pop().unwrap();
        // Flip a byte in the payload of entry 3 (batch at block 3).
        flip_byte(&seg, 3 * BLOCK + 36 + 12 + 17 + 2, 0x40);

        let err = reopen(&dir, WalOptions::default()).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, WalError::Corrupt { offset, .. } if offset == 3 * BLOCK),
            "{msg}"
        );
        assert!(msg.contains(&seg.display().to_string()), "{msg}");
        assert!(msg.contains("offset 12288"), "{msg}");
    });
}

/// A batch header as found in a segment file: where it is, how long the
/// batch is, and the length of the batch before it if that one was still
/// being written when this one was issued.
#[derive(Debug, Clone, Copy)]
struct BatchAt {
    offset: u64,
    len: u64,
    records: u64,
    prev_in_flight: u64,
}

/// The batches of a segment, walked by their headers' lengths.
fn batches(seg: &Path) -> Vec<BatchAt> {
    let data = std::fs::read(seg).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as u64;
    let mut out = Vec::new();
    let mut off = BLOCK as usize;
    while off + BLOCK as usize <= data.len() {
        let len = u32_at(off + 12);
        let recorded = u64::from_le_bytes(data[off + 28..off + 36].try_into().unwrap());
        if len == 0 || recorded != off as u64 {
            break;
        }
        out.push(BatchAt {
            offset: off as u64,
            len,
            records: u32_at(off + 16),
            prev_in_flight: u32_at(off + 24),
        });
        off += len as usize;
    }
    out
}

/// Appends entries 1..=n (term 1) without waiting between them, so that
/// batches queue up and are issued while the one before is still being
/// written; then waits until the last is durable.
async fn append_pipelined(log: &wal::Wal<DmaFs>, n: u64, payload: impl Fn(u64) -> Vec<u8>) {
    let mut last = None;
    for i in 1..=n {
        let p = payload(i);
        let rec = [Record::Entry {
            index: i,
            term: 1,
            kind: 0,
            payload: &p,
        }];
        last = Some(log.append(&rec).await.unwrap());
    }
    log.wait_durable(last.unwrap()).await.unwrap();
}

/// A new log in `dir` holding entries 1..=n of `size` bytes, appended
/// pipelined; returns the payload.
async fn write_pipelined(dir: &Path, n: u64, size: usize) -> Vec<u8> {
    let fs = DmaFs::new(dir).await.unwrap();
    let (log, _) = wal::open(fs, dir, WalOptions::default()).await.unwrap();
    let p = vec![7u8; size];
    append_pipelined(&log, n, |_| p.clone()).await;
    assert!(log.stats().writes_overlapped > 0, "{:?}", log.stats());
    p
}

/// Makes the log end after `keep` (zeros over every later batch) and flips
/// a byte in the body of `torn`, as a crash would leave a torn write.
fn crash_leaving(seg: &Path, torn: BatchAt, keep: BatchAt, all: &[BatchAt]) {
    let last = all.last().unwrap();
    let from = keep.offset + keep.len;
    let to = last.offset + last.len;
    if to > from {
        let f = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
        f.write_at(&vec![0u8; (to - from) as usize], from).unwrap();
    }
    flip_byte(seg, torn.offset + torn.len - 100, 0x5a);
}

#[test]
fn a_batch_written_while_the_torn_one_was_in_flight_is_dropped_and_wiped() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        let p = write_pipelined(&dir, 1500, 3000).await;
        let seg = segments(&dir).pop().unwrap();
        let all = batches(&seg);
        // A pair in the middle of the log: `later` was issued while `torn`
        // was in flight.
        let i = (all.len() / 2..all.len())
            .find(|&i| all[i].prev_in_flight != 0)
            .expect("an overlapped batch");
        let (torn, later) = (all[i - 1], all[i]);
        assert_eq!(later.prev_in_flight, torn.len);
        crash_leaving(&seg, torn, later, &all);
        let before = {
            let fs = DmaFs::new(&dir).await.unwrap();
            let (log, rec) = wal::open(fs, &dir, WalOptions::default()).await.unwrap();
            assert_eq!(log.stats().dropped_at_open, 1);
            rec.last_index()
        };
        // Both are gone (one entry per record here), the later one's
        // header wiped on disk.
        let kept: u64 = all[..i - 1].iter().map(|b| b.records).sum();
        assert_eq!(before, kept);
        let header = std::fs::read(&seg).unwrap()[later.offset as usize..][..4096].to_vec();
        assert!(
            header.iter().all(|&b| b == 0),
            "the dropped batch's header was not wiped"
        );

        // Writing goes on over them; a later open finds only the new log.
        {
            let fs = DmaFs::new(&dir).await.unwrap();
            let (log, _) = wal::open(fs, &dir, WalOptions::default()).await.unwrap();
            assert_eq!(log.stats().dropped_at_open, 0);
            for i in before + 1..=before + 3 {
                append_durable(&log, i).await;
            }
        }
        let rec = reopen(&dir, WalOptions::default()).await.unwrap();
        assert_eq!(rec.last_index(), before + 3);
        for e in &rec.entries {
            let want = if e.index > before {
                payload(e.index)
            } else {
                p.clone()
            };
            assert_eq!(e.payload, want, "entry {}", e.index);
        }
    });
}

#[test]
fn a_valid_batch_after_a_damaged_one_not_in_flight_with_it_is_corruption() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        // One durable batch at a time: no batch says its predecessor was
        // in flight, so the last two can never both be incomplete.
        write_entries(&dir, WalOptions::default(), 10).await;
        let seg = segments(&dir).pop().unwrap();
        let all = batches(&seg);
        assert_eq!(all.len(), 10);
        assert!(all.iter().all(|b| b.prev_in_flight == 0), "{all:?}");
        crash_leaving(&seg, all[8], all[9], &all);
        let err = reopen(&dir, WalOptions::default()).await.unwrap_err();
        assert!(
            matches!(err, WalError::Corrupt { offset, .. } if offset == all[8].offset),
            "{err}"
        );
    });
}

#[test]
fn rollover_release_and_damage_in_an_older_segment() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        let fs = DmaFs::new(&dir).await.unwrap();
        let (log, _) = wal::open(fs, &dir, small()).await.unwrap();
        let big = vec![7u8; 3000];
        for i in 1..=200u64 {
            let lsn = log
                .append(&[
                    Record::Entry {
                        index: i,
                        term: 1,
                        kind: 0,
                        payload: &big,
                    },
                    Record::HardState(HardState {
                        term: 1,
                        vote: 1,
                        commit: i,
                    }),
                ])
                .await
                .unwrap();
            if i % 7 == 0 {
                log.wait_durable(lsn).await.unwrap();
            }
        }
        log.sync().await.unwrap();
        let before = log.segment_count();
        assert!(before >= 8, "only {before} segments");
        assert_eq!(segments(&dir).len(), before);

        let snap = SnapshotMarker {
            index: 150,
            term: 1,
        };
        let lsn = log.append(&[Record::Snapshot(snap)]).await.unwrap();
        log.wait_durable(lsn).await.unwrap();
        let removed = log.release_before(150).await.unwrap();
        assert!(removed > 0);
        assert_eq!(segments(&dir).len(), before - removed);
        drop(log);

        let rec = reopen(&dir, small()).await.unwrap();
        assert_eq!(rec.snapshot, snap);
        assert_eq!(rec.hard_state.commit, 200);
        // Entries of segments not yet released are still there (for a
        // fallback to an older snapshot); the ones after the snapshot are
        // complete.
        assert!(rec.entries[0].index <= 151);
        let idx: Vec<u64> = rec
            .entries_after(150)
            .unwrap()
            .iter()
            .map(|e| e.index)
            .collect();
        assert_eq!(idx, (151..=200).collect::<Vec<_>>());
        assert!(rec.entries_after(rec.entries[0].index - 2).is_none());

        // Damage in a segment that is not the last one is never a torn tail.
        let older = segments(&dir)[0].clone();
        flip_byte(&older, BLOCK + 100, 1);
        let err = reopen(&dir, small()).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&older.display().to_string()) && msg.contains("offset 4096"),
            "{msg}"
        );
    });
}

#[test]
fn damaged_segment_header_is_refused() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        write_entries(&dir, WalOptions::default(), 3).await;
        let seg = segments(&dir).pop().unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_at(b"X", 20).unwrap();
        drop(f);
        let err = reopen(&dir, WalOptions::default()).await.unwrap_err();
        assert!(err.to_string().contains("damaged segment header"), "{err}");
    });
}

#[test]
fn missing_segments_are_refused() {
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        let fs = DmaFs::new(&dir).await.unwrap();
        let (log, _) = wal::open(fs, &dir, small()).await.unwrap();
        let big = vec![1u8; 5000];
        for i in 1..=60u64 {
            let rec = Record::Entry {
                index: i,
                term: 1,
                kind: 0,
                payload: &big,
            };
            log.append(&[rec]).await.unwrap();
        }
        log.close().await.unwrap();
        let segs = segments(&dir);
        assert!(segs.len() >= 4, "{segs:?}");

        // A hole in the middle of the sequence.
        let middle = segs[2].clone();
        let saved = std::fs::read(&middle).unwrap();
        std::fs::remove_file(&middle).unwrap();
        let msg = reopen(&dir, small()).await.unwrap_err().to_string();
        assert!(msg.contains("segment 2 is missing"), "{msg}");
        std::fs::write(&middle, saved).unwrap();
        assert_eq!(reopen(&dir, small()).await.unwrap().entries.len(), 60);

        // The oldest segment gone without a snapshot covering its entries.
        std::fs::remove_file(&segs[0]).unwrap();
        let msg = reopen(&dir, small()).await.unwrap_err().to_string();
        assert!(
            msg.contains("are missing (not covered by a snapshot)"),
            "{msg}"
        );
    });
}

/// The extents of `path` that FIEMAP reports as allocated but unwritten, as
/// (offset, length) pairs.
fn unwritten_extents(path: &Path) -> Vec<(u64, u64)> {
    use std::os::fd::AsRawFd;

    const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
    const FIEMAP_FLAG_SYNC: u32 = 1;
    const FIEMAP_EXTENT_LAST: u32 = 0x1;
    const FIEMAP_EXTENT_UNWRITTEN: u32 = 0x800;
    const EXTENTS: usize = 64;

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Extent {
        logical: u64,
        physical: u64,
        length: u64,
        reserved64: [u64; 2],
        flags: u32,
        reserved: [u32; 3],
    }
    #[repr(C)]
    struct Fiemap {
        start: u64,
        length: u64,
        flags: u32,
        mapped: u32,
        count: u32,
        reserved: u32,
        extents: [Extent; EXTENTS],
    }

    let f = std::fs::File::open(path).unwrap();
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let mut m = Fiemap {
            start,
            length: u64::MAX - start,
            flags: FIEMAP_FLAG_SYNC,
            mapped: 0,
            count: EXTENTS as u32,
            reserved: 0,
            extents: [Extent::default(); EXTENTS],
        };
        // SAFETY: `m` is a valid, writable fiemap with room for `count`
        // extents, as FS_IOC_FIEMAP requires; it lives across the call.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FIEMAP, &mut m as *mut Fiemap) };
        assert_eq!(
            rc,
            0,
            "FIEMAP on {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        let got = &m.extents[..m.mapped as usize];
        for e in got {
            if e.flags & FIEMAP_EXTENT_UNWRITTEN != 0 {
                out.push((e.logical, e.length));
            }
        }
        match got.last() {
            Some(e) if e.flags & FIEMAP_EXTENT_LAST == 0 => start = e.logical + e.length,
            _ => return out,
        }
    }
}

#[test]
fn blocks_after_the_log_end_are_written_with_zeros_ahead_of_it() {
    use cairn_engine::limits::WAL_ZERO_AHEAD_BYTES;
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        // One 4 KiB batch per entry: the log ends at block n + 1.
        let n = 300;
        write_entries(&dir, WalOptions::default(), n).await;
        let seg = segments(&dir).pop().unwrap();
        let end = (n + 1) * BLOCK;
        let unwritten = unwritten_extents(&seg);
        // The segment is reserved, not written, beyond the zeros: the check
        // below can see an unwritten block.
        assert!(
            unwritten
                .iter()
                .any(|&(o, l)| o + l == WAL_SEGMENT_BYTES_DEFAULT),
            "the end of the segment should still be reserved only: {unwritten:?}"
        );
        let written_to = end + WAL_ZERO_AHEAD_BYTES / 2;
        for &(o, l) in &unwritten {
            assert!(
                o >= written_to,
                "unwritten extent at {o}+{l} before {written_to} (log ends at {end}): {unwritten:?}"
            );
        }
        // And the log reads back whole.
        let rec = reopen(&dir, WalOptions::default()).await.unwrap();
        assert_eq!(rec.last_index(), n);
    });
}

#[test]
fn while_batches_queue_up_the_zeros_are_written_alongside_them() {
    use cairn_engine::limits::WAL_ZERO_AHEAD_BYTES;
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        let fs = DmaFs::new(&dir).await.unwrap();
        let (log, _) = wal::open(fs, &dir, WalOptions::default()).await.unwrap();
        // Appends that never wait for durability: the flusher always finds
        // the next batch waiting, so it never has an idle moment to zero in.
        let n = 1500u64;
        let big = |i: u64| {
            let mut p = payload(i);
            p.resize(3000, (i % 251) as u8);
            p
        };
        append_pipelined(&log, n, big).await;
        let stats = log.stats();
        assert!(
            stats.zero_writes_alongside > 0,
            "no zeros were written alongside a batch: {stats:?}"
        );
        assert!(
            stats.writes_overlapped > 0,
            "no batch was issued while another was in flight: {stats:?}"
        );
        let end = stats.bytes + 4096;
        drop(log);
        // Once the log is idle the flusher tops the zeros up after the last
        // batch; give it the moment that takes.
        glommio::timer::sleep(std::time::Duration::from_millis(200)).await;

        // The zeros kept ahead of every batch: no reserved-only block
        // right after the log's end.
        let seg = segments(&dir).pop().unwrap();
        let written_to = end + WAL_ZERO_AHEAD_BYTES / 2;
        for (o, l) in unwritten_extents(&seg) {
            assert!(
                o >= written_to,
                "unwritten extent at {o}+{l} before {written_to} (log ends at {end})"
            );
        }
        // And no zero write covered a batch: every entry reads back.
        let rec = reopen(&dir, WalOptions::default()).await.unwrap();
        assert_eq!(rec.last_index(), n);
        for e in &rec.entries {
            assert_eq!(e.payload, big(e.index), "entry {}", e.index);
        }
    });
}

const WAL_SEGMENT_BYTES_DEFAULT: u64 = cairn_engine::limits::WAL_SEGMENT_BYTES;

/// The open-file flags of every descriptor of this process open on `path`.
fn open_flags(path: &Path) -> Vec<u32> {
    let want = std::fs::canonicalize(path).unwrap();
    let mut flags = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap() {
        let e = e.unwrap();
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if target != want {
            continue;
        }
        let info =
            std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(e.file_name())).unwrap();
        let octal = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .unwrap()
            .trim();
        flags.push(u32::from_str_radix(octal, 8).unwrap());
    }
    flags
}

#[test]
fn the_writer_holds_its_segment_open_with_o_dsync_and_o_direct() {
    const O_DSYNC: u32 = libc::O_DSYNC as u32;
    const O_DIRECT: u32 = libc::O_DIRECT as u32;
    fn both(flags: &[u32]) -> bool {
        flags
            .iter()
            .any(|f| f & (O_DSYNC | O_DIRECT) == O_DSYNC | O_DIRECT)
    }
    wal_util::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("member/wal");
        for round in 0..2 {
            // A new log's first segment, then the same segment recovered.
            let fs = DmaFs::new(&dir).await.unwrap();
            let (log, _) = wal::open(fs, &dir, WalOptions::default()).await.unwrap();
            append_durable(&log, round + 1).await;
            let seg = segments(&dir).pop().unwrap();
            let flags = open_flags(&seg);
            assert!(
                both(&flags),
                "round {round}: no descriptor of {} has O_DSYNC and O_DIRECT: {:?}",
                seg.display(),
                flags.iter().map(|f| format!("{f:o}")).collect::<Vec<_>>()
            );
            // The zeros written ahead go through a plain O_DIRECT
            // descriptor, so they do not each pay a cache flush.
            assert!(
                flags.iter().any(|f| f & O_DIRECT != 0 && f & O_DSYNC == 0),
                "round {round}: no plain O_DIRECT descriptor of {}",
                seg.display()
            );
            log.close().await.unwrap();
            // The flusher lets go of the file once it sees the close; the
            // next round must find only its own descriptors.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !open_flags(&seg).is_empty() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "segment still open after close"
                );
                glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    });
}
