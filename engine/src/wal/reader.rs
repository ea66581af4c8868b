//! Recovery: reads every segment, verifies it, replays it, and finds where
//! the writer continues.
//!
//! The rules that decide between a torn tail and corruption:
//! - At most two batches are being written at a time (see
//!   [`WAL_WRITES_IN_FLIGHT`](crate::limits::WAL_WRITES_IN_FLIGHT)), and a
//!   batch issued while the one before it is in flight says so in its header
//!   (`prev_in_flight`, the length of that batch). So after a crash the last
//!   batch of the last segment can be incomplete, and so can the one before
//!   it, but only if the last one says that one was in flight.
//! - A batch is all or nothing: its header carries a CRC of the whole batch.
//! - A batch that does not verify in the last segment is a torn tail if the
//!   only valid batch header at a later 4 KiB boundary, if any, is that of
//!   the batch right after it, issued while it was in flight. Both are
//!   dropped (neither was acknowledged: a batch counts as durable only when
//!   every batch before it is), the later one's header is wiped before
//!   anything new is written, and the writer overwrites them. Any other
//!   valid batch after a damaged one means the damage is in the middle of the
//!   log: corruption.
//! - A non-last segment must verify up to exactly the offset the next
//!   segment's header records as its end (`prev_tail`); anything else is
//!   corruption. Its last batch was durable before the next segment began.

use std::path::{Path, PathBuf};

use zerocopy::FromBytes;

use super::error::WalError;
use super::format::{
    parse_batch_header, parse_record, parse_segment_name, segment_seed, EntryPrefix,
    HardStatePayload, SegmentHeader, SnapshotPayload, BATCH_RECORD_BYTES, ENTRY_PREFIX_BYTES,
    KIND_ENTRY, KIND_HARD_STATE, KIND_SNAPSHOT, RECORD_HEADER_BYTES, SEGMENT_HEADER_BLOCK,
};
use super::replay::{Entry, Recovered, Replay};
use crate::io::{File, Fs};
use crate::limits::{IO_ALIGN_BYTES, WAL_INDEX_TERM_MAX};

/// Reads are issued in pieces of this size so a segment is read with a few
/// large requests, not one per batch.
const READ_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// A segment that exists on disk with a durable header.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    pub seq: u64,
    pub first_index: u64,
    pub path: PathBuf,
}

/// Where the writer continues: the last segment, open, and the offset after
/// its last valid batch.
pub(crate) struct Tail<Fl> {
    pub file: Fl,
    pub header: SegmentHeader,
    pub offset: u64,
    /// Offset of a batch found after the torn one, written while that one
    /// was in flight: dropped, and its header must be wiped before the
    /// writer writes anything.
    pub in_flight_after: Option<u64>,
}

pub(crate) struct Scanned<Fl> {
    pub recovered: Recovered,
    pub segments: Vec<SegmentInfo>,
    pub tail: Option<Tail<Fl>>,
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Lists the segments of `dir` in sequence order, removing leftovers of a
/// segment creation that did not finish (`*.wal.tmp`).
pub(crate) async fn list_segments<F: Fs>(fs: &F, dir: &Path) -> Result<Vec<SegmentInfo>, WalError> {
    let mut segs = Vec::new();
    for name in fs.list(dir).await? {
        let path = dir.join(&name);
        if name.ends_with(".wal.tmp") {
            tracing::info!(file = %path.display(), "removing unfinished segment");
            fs.remove(&path).await?;
            continue;
        }
        match parse_segment_name(&name) {
            Some((seq, first_index)) => segs.push(SegmentInfo {
                seq,
                first_index,
                path,
            }),
            None => {
                tracing::warn!(file = %path.display(), "ignoring unexpected file in wal directory")
            }
        }
    }
    segs.sort_by_key(|s| s.seq);
    for w in segs.windows(2) {
        if w[1].seq != w[0].seq + 1 {
            return Err(corrupt(
                &w[1].path,
                0,
                format!("segment {} is missing", w[0].seq + 1),
            ));
        }
    }
    Ok(segs)
}

async fn read_range<Fl: File>(file: &Fl, start: u64, end: u64) -> Result<Vec<u8>, WalError> {
    let mut data = Vec::with_capacity((end - start) as usize);
    let mut off = start;
    while off < end {
        let want = ((end - off) as usize).min(READ_CHUNK_BYTES);
        let got = file.read_at(off, want).await?;
        if got.is_empty() {
            break;
        }
        off += got.len() as u64;
        data.extend_from_slice(&got);
    }
    Ok(data)
}

async fn read_header<Fl: File>(file: &Fl, seg: &SegmentInfo) -> Result<SegmentHeader, WalError> {
    let block = file.read_at(0, IO_ALIGN_BYTES).await?;
    let h = SegmentHeader::parse(&block)
        .ok_or_else(|| corrupt(&seg.path, 0, "damaged segment header"))?;
    if h.seq.get() != seg.seq || h.first_index.get() != seg.first_index {
        return Err(corrupt(
            &seg.path,
            0,
            "segment header does not match the file name",
        ));
    }
    for (what, v) in [
        // A segment started after an entry at the largest index names
        // the index after it.
        (
            "index before the first",
            h.first_index.get().saturating_sub(1),
        ),
        ("commit index", h.hs_commit.get()),
        ("term", h.hs_term.get()),
        ("snapshot index", h.snap_index.get()),
        ("snapshot term", h.snap_term.get()),
    ] {
        in_range(what, v).map_err(|r| corrupt(&seg.path, 0, format!("segment header: {r}")))?;
    }
    Ok(h)
}

/// Refuses an index or term no log reaches (see [`WAL_INDEX_TERM_MAX`]).
fn in_range(what: &str, v: u64) -> Result<(), String> {
    if v > WAL_INDEX_TERM_MAX {
        return Err(format!("{what} {v} is out of range"));
    }
    Ok(())
}

/// Reads the whole log in `dir`.
pub(crate) async fn scan<F: Fs>(fs: &F, dir: &Path) -> Result<Scanned<F::File>, WalError> {
    let segs = list_segments(fs, dir).await?;
    let mut files = Vec::with_capacity(segs.len());
    let mut headers = Vec::with_capacity(segs.len());
    for seg in &segs {
        let file = fs.open(&seg.path).await?;
        headers.push(read_header(&file, seg).await?);
        files.push(file);
    }
    let Some(first) = headers.first() else {
        return Ok(Scanned {
            recovered: Recovered::default(),
            segments: segs,
            tail: None,
        });
    };
    let mut replay = Replay::new(first.hard_state(), first.snapshot());
    let mut tail = None;
    let last = segs.len() - 1;
    for (i, file) in files.into_iter().enumerate() {
        let seg = &segs[i];
        let h = &headers[i];
        if i > 0
            && (h.hard_state() != replay.state.hard_state || h.snapshot() != replay.state.snapshot)
        {
            return Err(corrupt(
                &seg.path,
                0,
                "segment header disagrees with the state of the previous segments",
            ));
        }
        let seed = segment_seed(h.seq.get(), h.salt.get());
        let limit = if i < last {
            Some(headers[i + 1].prev_tail.get())
        } else {
            None
        };
        let end = match limit {
            Some(l) => l,
            None => file.size().await?,
        };
        let data = read_range(&file, 0, end).await?;
        let valid_end = replay_batches(&mut replay, &data, seed, &seg.path)?;
        match limit {
            Some(l) if valid_end != l => {
                return Err(corrupt(
                    &seg.path,
                    valid_end,
                    format!("damaged batch before the end of the segment (it ends at {l})"),
                ));
            }
            Some(_) => {}
            None => {
                let in_flight_after = check_torn_tail(&data, seed, valid_end, &seg.path)?;
                tail = Some(Tail {
                    file,
                    header: h.clone(),
                    offset: valid_end,
                    in_flight_after,
                });
            }
        }
    }
    let recovered = replay
        .finish()
        .map_err(|reason| corrupt(&segs[0].path, 0, reason))?;
    Ok(Scanned {
        recovered,
        segments: segs,
        tail,
    })
}

/// Replays every valid batch from the first one; returns the offset where
/// the valid batches end.
fn replay_batches(
    replay: &mut Replay,
    data: &[u8],
    seed: u32,
    path: &Path,
) -> Result<u64, WalError> {
    let mut off = SEGMENT_HEADER_BLOCK as usize;
    while off + IO_ALIGN_BYTES <= data.len() {
        let Some(b) = parse_batch_header(seed, &data[off..], off as u64) else {
            break;
        };
        let len = b.batch_len.get() as usize;
        if off + len > data.len() {
            break;
        }
        let body = &data[off + BATCH_RECORD_BYTES..off + len];
        if super::format::body_crc(seed, body) != b.body_crc.get() {
            break;
        }
        // The batch verified as a whole: a bad record inside it was written
        // that way, which no crash explains.
        let mut pos = 0;
        for _ in 0..b.records.get() {
            let at = (off + BATCH_RECORD_BYTES + pos) as u64;
            let Some((kind, payload)) = parse_record(seed, &body[pos..]) else {
                return Err(corrupt(path, at, "bad record inside a verified batch"));
            };
            apply(replay, kind, payload).map_err(|r| corrupt(path, at, r))?;
            pos += RECORD_HEADER_BYTES + payload.len();
        }
        off += len;
    }
    Ok(off as u64)
}

fn apply(replay: &mut Replay, kind: u8, payload: &[u8]) -> Result<(), String> {
    match kind {
        KIND_ENTRY => {
            let (p, data) = EntryPrefix::read_from_prefix(payload)
                .map_err(|_| "entry record too short".to_string())?;
            debug_assert_eq!(payload.len() - data.len(), ENTRY_PREFIX_BYTES);
            in_range("entry index", p.index.get())?;
            in_range("entry term", p.term.get())?;
            replay.entry(Entry {
                index: p.index.get(),
                term: p.term.get(),
                kind: p.kind,
                payload: data.to_vec(),
            })
        }
        KIND_HARD_STATE => {
            let p = HardStatePayload::read_from_bytes(payload)
                .map_err(|_| "bad hard state record".to_string())?;
            in_range("term", p.term.get())?;
            in_range("commit index", p.commit.get())?;
            replay.hard_state(super::format::HardState {
                term: p.term.get(),
                vote: p.vote.get(),
                commit: p.commit.get(),
            });
            Ok(())
        }
        KIND_SNAPSHOT => {
            let p = SnapshotPayload::read_from_bytes(payload)
                .map_err(|_| "bad snapshot record".to_string())?;
            in_range("snapshot index", p.index.get())?;
            in_range("snapshot term", p.term.get())?;
            replay.snapshot(super::format::SnapshotMarker {
                index: p.index.get(),
                term: p.term.get(),
            });
            Ok(())
        }
        other => Err(format!("unknown record kind {other}")),
    }
}

/// At `end` the valid batches of the last segment stop; whatever is there
/// is the remains of an interrupted write. At most one valid batch header
/// may follow: that of the next batch, issued while the one at `end` was in
/// flight, as its header says (with that batch's length, which must lead
/// exactly to it). Any other valid batch header later in the segment means
/// the log is damaged in the middle. Returns the offset of that in-flight
/// batch, if there is one.
fn check_torn_tail(data: &[u8], seed: u32, end: u64, path: &Path) -> Result<Option<u64>, WalError> {
    let mut in_flight = None;
    let mut off = end as usize + IO_ALIGN_BYTES;
    while off + IO_ALIGN_BYTES <= data.len() {
        if let Some(b) = parse_batch_header(seed, &data[off..], off as u64) {
            let prev = u64::from(b.prev_in_flight.get());
            if in_flight.is_some() || prev == 0 || end + prev != off as u64 {
                return Err(corrupt(
                    path,
                    end,
                    format!("damaged batch followed by a valid batch at offset {off}"),
                ));
            }
            in_flight = Some(off as u64);
        }
        off += IO_ALIGN_BYTES;
    }
    let tail = &data[(end as usize).min(data.len())..];
    let probe = &tail[..tail.len().min(crate::limits::WAL_BATCH_BYTES_MAX)];
    if probe.iter().any(|&b| b != 0) {
        tracing::warn!(
            file = %path.display(),
            offset = end,
            "wal: dropping a torn write at the tail of the log"
        );
    }
    if let Some(at) = in_flight {
        tracing::warn!(
            file = %path.display(),
            offset = at,
            "wal: dropping the batch written while the torn one before it was in flight"
        );
    }
    Ok(in_flight)
}
