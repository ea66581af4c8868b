//! Fuzz targets of the storage engine: plain `fn(&[u8])`s that panic when a
//! property breaks. Each builds a fresh in-memory disk ([`MemFs`]), puts the
//! input there as a file, and runs the real recovery code on it. Run by
//! `engine/tests/fuzz_storage.rs` and by libFuzzer through `scripts/fuzz`.
//!
//! Random bytes rarely get past the checksums, so each file kind has two
//! targets: the raw bytes, and the bytes "resealed" — every checksum the
//! format has recomputed over the mutated content — which sends mutations
//! into the record, chunk and version parsers behind the checksums.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::path::Path;

use cairn_engine::io::{File, Fs, MemFs};
use cairn_engine::mvcc::{Mvcc, MvccConfig};
use cairn_engine::snap::SnapStore;
use cairn_engine::wal::{self, Record, WalOptions};

pub const WAL_DIR: &str = "/data/member/wal";
pub const SNAP_DIR: &str = "/data/member/snap";
const BLOCK: usize = 4096;

thread_local! {
    /// One executor per thread, reused for every input: making one costs
    /// far more than running a small recovery.
    static EXECUTOR: RefCell<Option<glommio::LocalExecutor>> = const { RefCell::new(None) };
}

/// Runs `fut` to completion on this thread's executor.
pub fn block_on<T>(fut: impl Future<Output = T>) -> T {
    EXECUTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let ex = slot.get_or_insert_with(|| {
            glommio::LocalExecutorBuilder::default()
                .make()
                .expect("make a glommio executor")
        });
        ex.run(fut)
    })
}

/// Creates `path` on `fs` holding exactly `data`, durably.
async fn put_file(fs: &MemFs, dir: &str, name: &str, data: &[u8]) {
    fs.create_dir_all(Path::new(dir)).await.expect("mkdir");
    let path = Path::new(dir).join(name);
    let f = fs.create(&path).await.expect("create");
    f.fdatasync().await.expect("sync");
    f.close().await.expect("close");
    fs.sync_dir(Path::new(dir)).await.expect("sync dir");
    if !data.is_empty() {
        fs.corrupt(&path, 0, data);
    }
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

// ---- WAL ----

/// The segment's file name as its header states it (seq at 16, first index
/// at 32), so that mutated headers are still looked at past the name check.
fn segment_name(data: &[u8]) -> String {
    let seq = le_u64(data, 16).unwrap_or(0);
    let first = le_u64(data, 32).unwrap_or(1);
    format!("{seq:016x}-{first:016x}.wal")
}

fn crc_seeded(seed: u32, parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Recomputes the checksums of a WAL segment (format in `docs/storage.md`):
/// the header CRC, and in each batch found at a block boundary the CRC of
/// every record (following their length fields while they stay inside the
/// batch), the batch record's own CRC and the body CRC.
pub fn reseal_wal_segment(data: &mut [u8]) {
    const HEADER_CRC_AT: usize = 88;
    if data.len() < HEADER_CRC_AT + 4 {
        return;
    }
    let crc = crc32fast::hash(&data[..HEADER_CRC_AT]);
    data[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    let (Some(seq), Some(salt)) = (le_u64(data, 16), le_u64(data, 24)) else {
        return;
    };
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&salt.to_le_bytes());
    let seed = h.finalize();
    let mut off = BLOCK;
    while off + BLOCK <= data.len() {
        // A batch record: header (crc, len = 24, kind 1) + payload.
        let Some(batch_len) = le_u32(data, off + 12) else {
            break;
        };
        let batch_len = batch_len as usize;
        let sane = data[off + 8] == 1
            && le_u32(data, off + 4) == Some(24)
            && batch_len >= BLOCK
            && batch_len % BLOCK == 0
            && off + batch_len <= data.len();
        if !sane {
            off += BLOCK;
            continue;
        }
        data[off + 28..off + 36].copy_from_slice(&(off as u64).to_le_bytes());
        let records = le_u32(data, off + 16).unwrap_or(0);
        let body_start = off + 36;
        let end = off + batch_len;
        let mut pos = body_start;
        for _ in 0..records {
            let Some(len) = le_u32(data, pos + 4) else {
                break;
            };
            let rec_end = pos + 12 + len as usize;
            if rec_end > end {
                break;
            }
            let crc = crc_seeded(seed, &[&data[pos + 4..rec_end]]);
            data[pos..pos + 4].copy_from_slice(&crc.to_le_bytes());
            pos = rec_end;
        }
        let body = crc_seeded(seed, &[&data[body_start..end]]);
        data[off + 20..off + 24].copy_from_slice(&body.to_le_bytes());
        let head = crc_seeded(seed, &[&data[off + 4..off + 36]]);
        data[off..off + 4].copy_from_slice(&head.to_le_bytes());
        off = end;
    }
}

/// Target `wal_segment`: `data` is the only segment of a WAL directory.
/// Opening never panics; when it succeeds, the recovered entries have
/// consecutive indexes, opening again recovers the same, and an entry
/// appended after recovery is recovered after it.
pub fn wal_segment(data: &[u8]) {
    block_on(wal_segment_async(data));
}

/// Target `wal_segment_resealed`: as `wal_segment`, checksums recomputed.
pub fn wal_segment_resealed(data: &[u8]) {
    let mut v = data.to_vec();
    reseal_wal_segment(&mut v);
    block_on(wal_segment_async(&v));
}

/// WAL options of the targets: small segments and batches, so that inputs
/// of a few KiB span several batches and a roll to a new segment.
pub fn wal_options() -> WalOptions {
    WalOptions {
        segment_bytes: 16 * 1024,
        batch_bytes_max: 8 * 1024,
        batch_queue_max: 2,
    }
}

async fn wal_segment_async(data: &[u8]) {
    let fs = MemFs::new();
    put_file(&fs, WAL_DIR, &segment_name(data), data).await;
    let dir = Path::new(WAL_DIR);
    let Ok((log, rec)) = wal::open(fs.clone(), dir, wal_options()).await else {
        return;
    };
    for w in rec.entries.windows(2) {
        assert_eq!(w[1].index, w[0].index + 1, "recovered entries have a gap");
    }
    drop(log);
    let (log, again) = wal::open(fs.reopen(), dir, wal_options())
        .await
        .expect("a log that opened once opens again");
    assert_eq!(again.entries, rec.entries, "recovery is not repeatable");
    assert_eq!(again.hard_state, rec.hard_state);
    assert_eq!(again.snapshot, rec.snapshot);

    // Finding (docs/reliability.md): recovery accepts a segment whose header
    // names a snapshot beyond every entry that follows it (only a header
    // with a valid checksum written that way produces this, no crash) and
    // keeps those older entries; the next entry then leaves a gap that the
    // following recovery refuses. Skip the append check for such a state.
    let consistent = rec
        .entries
        .last()
        .is_none_or(|l| l.index >= rec.snapshot.index);
    if !consistent {
        return;
    }
    let next = rec.last_index() + 1;
    let term = rec
        .hard_state
        .term
        .max(rec.entries.last().map_or(0, |e| e.term));
    let appended = log
        .append(&[Record::Entry {
            index: next,
            term,
            kind: 0,
            payload: b"after recovery",
        }])
        .await;
    let Ok(lsn) = appended else {
        return;
    };
    if log.wait_durable(lsn).await.is_err() {
        return;
    }
    drop(log);
    let (_log, after) = wal::open(fs.reopen(), dir, wal_options())
        .await
        .expect("the log reopens after an append");
    let last = after.entries.last().expect("the appended entry");
    assert_eq!(
        (last.index, &last.payload[..]),
        (next, &b"after recovery"[..])
    );
    assert_eq!(&after.entries[..after.entries.len() - 1], &rec.entries[..]);
}

/// Most bytes a WAL target may allocate for an input of `len` bytes: the
/// file on the in-memory disk and its copies (the durable image, what
/// recovery reads, the recovered payloads, the reseal copy), the writer's
/// batch buffers, and the executor's bookkeeping.
pub fn wal_budget_bytes(len: usize) -> usize {
    let opts = wal_options();
    8 * len
        + (opts.batch_queue_max + 2) * opts.batch_bytes_max
        + 4 * opts.segment_bytes as usize
        + 256 * 1024
}

/// Real segments: a few batches of entries, hard states and a snapshot
/// marker, cut after the last batch (the preallocated zeros add nothing).
pub fn wal_seeds() -> Vec<Vec<u8>> {
    block_on(async {
        let mut seeds = Vec::new();
        for batches in [1usize, 3, 6] {
            let fs = MemFs::new();
            let dir = Path::new(WAL_DIR);
            let (log, _) = wal::open(fs.clone(), dir, wal_options())
                .await
                .expect("open");
            let mut index = 1;
            for b in 0..batches {
                let payload = vec![b as u8; 100 * (b + 1)];
                let mut recs = vec![
                    Record::Entry {
                        index,
                        term: 1,
                        kind: 0,
                        payload: &payload,
                    },
                    Record::Entry {
                        index: index + 1,
                        term: 1,
                        kind: 1,
                        payload: b"conf",
                    },
                ];
                recs.push(Record::HardState(wal::HardState {
                    term: 1,
                    vote: 1,
                    commit: index,
                }));
                if b == 2 {
                    recs.push(Record::Snapshot(wal::SnapshotMarker { index, term: 1 }));
                }
                let lsn = log.append(&recs).await.expect("append");
                log.wait_durable(lsn).await.expect("durable");
                index += 2;
            }
            drop(log);
            let names = fs.list(dir).await.expect("list");
            let path = dir.join(&names[0]);
            let f = fs.open(&path).await.expect("open segment");
            let size = f.size().await.expect("size");
            let mut data = f.read_at(0, size as usize).await.expect("read");
            while data.len() > BLOCK && data[data.len() - BLOCK..].iter().all(|&b| b == 0) {
                data.truncate(data.len() - BLOCK);
            }
            seeds.push(data);
        }
        seeds
    })
}

// ---- snapshots ----

/// The snapshot's file name as its header states it (index at 16, term at
/// 24).
fn snap_name(data: &[u8]) -> String {
    let index = le_u64(data, 16).unwrap_or(0);
    let term = le_u64(data, 24).unwrap_or(0);
    format!("{term:016x}-{index:016x}.snap")
}

/// Recomputes the checksums of a snapshot file: each MVCC chunk's own CRC
/// (when its length fields are consistent), each file chunk's CRC, and the
/// trailer (chunk count, body length, whole-file CRC).
pub fn reseal_snap_file(data: &mut Vec<u8>) {
    const HEADER: usize = 32;
    const TRAILER: usize = 32;
    if data.len() < HEADER + TRAILER {
        return;
    }
    let body_len = data.len() - TRAILER;
    let meta_len = (le_u32(data, 12).unwrap_or(0) as usize).min(body_len - HEADER);
    data[12..16].copy_from_slice(&(meta_len as u32).to_le_bytes());
    let mut pos = HEADER + meta_len;
    let mut chunks = 0u64;
    while pos + 8 <= body_len {
        let len = le_u32(data, pos).unwrap_or(0) as usize;
        let start = pos + 8;
        if start + len > body_len {
            break;
        }
        let chunk = &mut data[start..start + len];
        // The MVCC chunk inside: 40-byte header with body_len at 36, CRC after.
        if len >= 44 {
            let inner = le_u32(chunk, 36).unwrap_or(0) as usize;
            if 40 + inner + 4 == len {
                let crc = crc32fast::hash(&chunk[..40 + inner]);
                chunk[40 + inner..].copy_from_slice(&crc.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&data[start..start + len]);
        data[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        chunks += 1;
        pos = start + len;
    }
    // What follows the last whole chunk becomes the trailer.
    data.truncate(pos);
    let mut trailer = Vec::with_capacity(TRAILER);
    trailer.extend_from_slice(b"CAIRNEND");
    trailer.extend_from_slice(&chunks.to_le_bytes());
    trailer.extend_from_slice(&(pos as u64).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    h.update(&trailer);
    trailer.extend_from_slice(&h.finalize().to_le_bytes());
    trailer.extend_from_slice(&[0; 4]);
    data.extend_from_slice(&trailer);
}

/// Target `snap_file`: `data` is the only snapshot file. Opening and
/// reading it never panics; when its chunks restore an index, that index
/// snapshotted again restores to the same hash, and writing those chunks
/// through the snapshot writer reads them back unchanged.
pub fn snap_file(data: &[u8]) {
    block_on(snap_file_async(data));
}

/// Target `snap_file_resealed`: as `snap_file`, checksums recomputed.
pub fn snap_file_resealed(data: &[u8]) {
    let mut v = data.to_vec();
    reseal_snap_file(&mut v);
    block_on(snap_file_async(&v));
}

async fn snap_file_async(data: &[u8]) {
    let fs = MemFs::new();
    put_file(&fs, SNAP_DIR, &snap_name(data), data).await;
    let Ok(store) = SnapStore::open(fs.clone(), Path::new(SNAP_DIR)).await else {
        return;
    };
    let Ok(Some(mut r)) = store.open_newest_valid(|_| true).await else {
        return;
    };
    let mut chunks = Vec::new();
    while let Ok(Some(c)) = r.next_chunk().await {
        chunks.push(c);
    }
    let (index, term, meta) = (r.info.index, r.info.term, r.meta.clone());
    let Ok(m) = Mvcc::restore(MvccConfig::default(), &chunks) else {
        return;
    };
    // Round trip through the index.
    let again = mvcc_chunks(&m);
    let m2 = Mvcc::restore(MvccConfig::default(), &again).expect("our own chunks restore");
    assert_eq!(m2.current_revision(), m.current_revision());
    assert_eq!(m2.compact_revision(), m.compact_revision());
    let rev = m.current_revision();
    assert_eq!(
        m2.hash_kv(rev).map(|h| h.hash).ok(),
        m.hash_kv(rev).map(|h| h.hash).ok(),
        "a restored index snapshotted again restores to another hash"
    );
    assert_eq!(mvcc_chunks(&m2), again, "snapshotting is not deterministic");
    // Round trip through the file writer.
    let mut w = store.create(index + 1, term, &meta).await.expect("create");
    for c in &chunks {
        w.write_chunk(c).await.expect("write chunk");
    }
    w.finish().await.expect("finish");
    let mut r = store
        .open_newest_valid(|i| i == index + 1)
        .await
        .expect("open")
        .expect("the snapshot just written");
    assert_eq!(r.meta, meta);
    for c in &chunks {
        assert_eq!(r.next_chunk().await.expect("chunk").as_ref(), Some(c));
    }
    assert_eq!(r.next_chunk().await.expect("end"), None);
}

/// An index's snapshot chunks, small ones so seeds span several.
fn mvcc_chunks(m: &Mvcc) -> Vec<Vec<u8>> {
    let mut s = m.snapshot_begin(0).expect("snapshot_begin");
    let mut out = Vec::new();
    while let Some(c) = m.snapshot_chunk(&mut s, 256) {
        out.push(c);
    }
    out
}

/// Most bytes a snapshot target may allocate for an input of `len` bytes:
/// copies of the file (disk image, reads, chunks, reseal), the restored
/// index and its re-encoded chunks (each a bounded multiple of the bytes
/// they came from), the snapshot writer's buffer, and bookkeeping.
pub fn snap_budget_bytes(len: usize) -> usize {
    16 * len + 2 * cairn_engine::limits::SNAP_WRITE_BUFFER_BYTES + 256 * 1024
}

/// Real snapshot files of small indexes with history, deletes, leases and a
/// compaction.
pub fn snap_seeds() -> Vec<Vec<u8>> {
    use cairn_engine::mvcc::{DeleteRangeRequest, PutRequest};
    block_on(async {
        let mut seeds = Vec::new();
        for (n, compact) in [(3usize, false), (20, true)] {
            let mut m = Mvcc::new(MvccConfig::default());
            for i in 0..n {
                let key = format!("key/{}", i % 7);
                let value = vec![b'v'; i * 3];
                m.put(&PutRequest {
                    key: key.as_bytes(),
                    value: &value,
                    lease: (i % 3) as i64,
                    ..Default::default()
                })
                .expect("put");
                if i % 5 == 4 {
                    m.delete_range(&DeleteRangeRequest {
                        key: key.as_bytes(),
                        range_end: b"",
                        prev_kv: false,
                    })
                    .expect("delete");
                }
            }
            if compact {
                m.compact(m.current_revision() - 3).expect("compact");
            }
            let fs = MemFs::new();
            let store = SnapStore::open(fs.clone(), Path::new(SNAP_DIR))
                .await
                .expect("open");
            let mut w = store
                .create(10 + n as u64, 2, b"meta")
                .await
                .expect("create");
            for c in mvcc_chunks(&m) {
                w.write_chunk(&c).await.expect("chunk");
            }
            w.finish().await.expect("finish");
            let info = store.list().await.expect("list").remove(0);
            let f = fs.open(&info.path).await.expect("open file");
            let size = f.size().await.expect("size");
            seeds.push(f.read_at(0, size as usize).await.expect("read"));
        }
        seeds
    })
}
