//! The appending side: group commit, pipelining, segment rollover, release.
//!
//! Appenders copy their records into the *filling* buffer and get the batch's
//! log sequence number ([`Lsn`]). One flusher task writes batches in order:
//! when it has a free write slot and the filling buffer holds records, it
//! seals that buffer (CRCs, padding to 4 KiB, batch header) and writes it
//! with one durable write (through the segment's O_DSYNC descriptor; write +
//! fdatasync where that is not available); meanwhile new appends fill the
//! next buffer. Up to
//! [`WAL_WRITES_IN_FLIGHT`](crate::limits::WAL_WRITES_IN_FLIGHT) batches are written at once,
//! and a batch counts as durable only when every batch before it is too. A
//! filling buffer that reaches the batch limit is sealed at once and queued;
//! when the queue is full appenders wait. The next batch starts at the next
//! 4 KiB boundary, so a sector holding durable records is never written
//! again.

mod encode;
mod flusher;
mod segment;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::path::PathBuf;
use std::rc::Rc;
use std::task::{Poll, Waker};

use zerocopy::{FromBytes, IntoBytes};

use super::error::WalError;
use super::format::{
    align_up, body_crc, record_crc, segment_seed, BatchPayload, HardState, HardStatePayload,
    RecordHeader, SegmentHeader, SnapshotMarker, SnapshotPayload, BATCH_RECORD_BYTES,
    ENTRY_PREFIX_BYTES, KIND_BATCH, RECORD_HEADER_BYTES, SEGMENT_HEADER_BLOCK,
};
use super::reader::SegmentInfo;
use crate::io::{AlignedBuf, Fs};
use crate::limits::{
    IO_ALIGN_BYTES, WAL_BATCH_BYTES_MAX, WAL_BATCH_QUEUE_MAX, WAL_INDEX_TERM_MAX, WAL_SEGMENT_BYTES,
};
use encode::{encode, write_record};
use flusher::{flusher, Tail};
pub(crate) use segment::{create_segment, new_header};

/// Log sequence number: the number of the batch a record went into. Batches
/// become durable in order, so `durable ≥ lsn` says the record is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

/// One record to append.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// A Raft log entry; an entry with index `i` replaces all entries ≥ `i`.
    Entry {
        index: u64,
        term: u64,
        kind: u8,
        payload: &'a [u8],
    },
    HardState(HardState),
    /// A snapshot at this index is durable (write the snapshot file first).
    Snapshot(SnapshotMarker),
}

impl Record<'_> {
    /// The first index or term of this record that recovery would refuse.
    fn out_of_range(&self) -> Option<(&'static str, u64)> {
        let fields = match *self {
            Record::Entry { index, term, .. } => [("entry index", index), ("entry term", term)],
            Record::HardState(hs) => [("term", hs.term), ("commit index", hs.commit)],
            Record::Snapshot(m) => [("snapshot index", m.index), ("snapshot term", m.term)],
        };
        fields.into_iter().find(|&(_, v)| v > WAL_INDEX_TERM_MAX)
    }

    fn encoded_len(&self) -> usize {
        RECORD_HEADER_BYTES
            + match self {
                Record::Entry { payload, .. } => ENTRY_PREFIX_BYTES + payload.len(),
                Record::HardState(_) => std::mem::size_of::<HardStatePayload>(),
                Record::Snapshot(_) => std::mem::size_of::<SnapshotPayload>(),
            }
    }
}

/// Sizes of a WAL; the defaults are the limits in [`crate::limits`]. Tests
/// use small segments to exercise rollover.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    pub segment_bytes: u64,
    pub batch_bytes_max: usize,
    pub batch_queue_max: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: WAL_SEGMENT_BYTES,
            batch_bytes_max: WAL_BATCH_BYTES_MAX,
            batch_queue_max: WAL_BATCH_QUEUE_MAX,
        }
    }
}

impl WalOptions {
    pub(crate) fn check(&self) {
        let align = IO_ALIGN_BYTES;
        assert!(self.batch_bytes_max % align == 0 && self.batch_bytes_max >= 2 * align);
        assert!(self.batch_bytes_max <= WAL_BATCH_BYTES_MAX);
        assert!(self.segment_bytes % align as u64 == 0);
        assert!(self.segment_bytes >= SEGMENT_HEADER_BLOCK + self.batch_bytes_max as u64);
        assert!(self.batch_queue_max >= 1);
    }

    /// Largest entry payload a batch of this size can hold.
    pub fn entry_payload_max(&self) -> usize {
        self.batch_bytes_max - BATCH_RECORD_BYTES - RECORD_HEADER_BYTES - ENTRY_PREFIX_BYTES
    }
}

struct Filling {
    buf: AlignedBuf,
    len: usize,
    records: u32,
}

struct Sealed {
    buf: AlignedBuf,
    lsn: u64,
    offset: u64,
    /// CRC seed of the segment the batch goes into.
    seed: u32,
    new_segment: Option<SegmentHeader>,
    snapshot_after: SnapshotMarker,
}

impl Sealed {
    /// Records in the batch header that the batch before it, `len` bytes
    /// long, is still being written as this one is issued.
    fn mark_prev_in_flight(&mut self, len: u32) {
        let bytes = self.buf.as_mut_slice();
        let rest = &bytes[RECORD_HEADER_BYTES..BATCH_RECORD_BYTES];
        let mut payload = BatchPayload::read_from_bytes(rest).expect("batch payload");
        payload.prev_in_flight = len.into();
        write_record(
            self.seed,
            KIND_BATCH,
            payload.as_bytes(),
            &mut bytes[..BATCH_RECORD_BYTES],
        );
    }
}

/// Where the next sealed batch goes.
struct Plan {
    seq: u64,
    seed: u32,
    offset: u64,
}

/// Log state after some prefix of the records.
#[derive(Clone, Copy)]
struct LogState {
    hs: HardState,
    snap: SnapshotMarker,
    last_index: u64,
}

pub(crate) struct State<F: Fs> {
    fs: F,
    dir: PathBuf,
    opts: WalOptions,
    failed: Option<String>,
    closed: bool,
    filling: Option<Filling>,
    sealed: VecDeque<Sealed>,
    next_lsn: u64,
    durable_lsn: u64,
    waiters: BTreeMap<u64, Vec<Waker>>,
    space_waiters: Vec<Waker>,
    flusher: Option<Waker>,
    plan: Plan,
    appended: LogState,
    sealed_state: LogState,
    durable_snap: SnapshotMarker,
    segments: Vec<SegmentInfo>,
    releasing: bool,
    stats: WalStats,
}

/// Counters of what the log has written since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended.
    pub records: u64,
    /// Batches written and made durable (one durable write each).
    pub batches: u64,
    /// Bytes written by those batches, padding included.
    pub bytes: u64,
    /// Segments started.
    pub segments_created: u64,
    /// Zeros written ahead of the log (see
    /// [`WAL_ZERO_AHEAD_BYTES`](crate::limits::WAL_ZERO_AHEAD_BYTES)), not
    /// counting the first stretch written with each segment's header.
    pub zeroed: u64,
    /// Zero writes made alongside a batch's durable write, because another
    /// batch was already waiting when the zeros ran short.
    pub zero_writes_alongside: u64,
    /// Batches issued while the durable write of the batch before them was
    /// still in flight.
    pub writes_overlapped: u64,
    /// Batches found at open after a torn one, issued while it was in
    /// flight: never acknowledged, so dropped, and their headers wiped.
    pub dropped_at_open: u64,
    /// Time spent making batches durable: one O_DSYNC write each, or a
    /// write and an fdatasync where the file system has no O_DSYNC; each
    /// batch from its issue to its completion, so with writes overlapping
    /// the sum can exceed the time that passed.
    pub durable_ns: u64,
}

pub(crate) struct Shared<F: Fs> {
    state: RefCell<State<F>>,
    handles: Cell<usize>,
}

/// The write-ahead log. Cloning gives another handle on the same log (for
/// many concurrent appenders on one executor); the log flushes what is
/// appended and stops when the last handle is dropped.
pub struct Wal<F: Fs> {
    shared: Rc<Shared<F>>,
}

impl<F: Fs> Clone for Wal<F> {
    fn clone(&self) -> Self {
        self.shared.handles.set(self.shared.handles.get() + 1);
        Wal {
            shared: self.shared.clone(),
        }
    }
}

impl<F: Fs> Drop for Wal<F> {
    fn drop(&mut self) {
        let n = self.shared.handles.get() - 1;
        self.shared.handles.set(n);
        if n == 0 {
            let mut st = self.shared.state.borrow_mut();
            st.closed = true;
            if let Some(w) = st.flusher.take() {
                w.wake();
            }
        }
    }
}

/// Where a recovered or new log continues.
pub(crate) struct Start<Fl> {
    pub file: Fl,
    /// Where the zeros after the log's end end: the log's end itself for a
    /// recovered segment, whose stretch after the tail is not known.
    pub zeroed_to: u64,
    pub header: SegmentHeader,
    pub offset: u64,
    pub last_index: u64,
    pub hs: HardState,
    pub snap: SnapshotMarker,
    pub segments: Vec<SegmentInfo>,
    /// Batches recovery dropped after a torn one (see
    /// [`WalStats::dropped_at_open`]).
    pub dropped_at_open: u64,
}

impl<F: Fs> Wal<F> {
    pub(crate) fn start(fs: F, dir: PathBuf, opts: WalOptions, s: Start<F::File>) -> Wal<F> {
        let state = LogState {
            hs: s.hs,
            snap: s.snap,
            last_index: s.last_index,
        };
        let st = State {
            fs,
            dir,
            opts,
            failed: None,
            closed: false,
            filling: None,
            sealed: VecDeque::new(),
            next_lsn: 1,
            durable_lsn: 0,
            waiters: BTreeMap::new(),
            space_waiters: Vec::new(),
            flusher: None,
            plan: Plan {
                seq: s.header.seq.get(),
                seed: segment_seed(s.header.seq.get(), s.header.salt.get()),
                offset: s.offset,
            },
            appended: state,
            sealed_state: state,
            durable_snap: s.snap,
            segments: s.segments,
            releasing: false,
            stats: WalStats {
                dropped_at_open: s.dropped_at_open,
                ..WalStats::default()
            },
        };
        let shared = Rc::new(Shared {
            state: RefCell::new(st),
            handles: Cell::new(1),
        });
        let tail = Tail {
            file: s.file,
            zeroed_to: s.zeroed_to,
            end: s.offset,
        };
        glommio::spawn_local(flusher(shared.clone(), tail)).detach();
        Wal { shared }
    }

    /// Appends `records` (in order, contiguous in the log) if the batch queue
    /// has room, returning the batch they went into; `Ok(None)` if the queue
    /// is full (wait with [`Wal::reserve`] and retry). Never waits, so a
    /// caller can pick entry indexes and append them without another task
    /// appending in between.
    pub fn try_append(&self, records: &[Record<'_>]) -> Result<Option<Lsn>, WalError> {
        let mut st = self.shared.state.borrow_mut();
        st.check_usable()?;
        let max = st.opts.entry_payload_max();
        for r in records {
            if let Some((what, value)) = r.out_of_range() {
                return Err(WalError::OutOfRange {
                    what,
                    value,
                    max: WAL_INDEX_TERM_MAX,
                });
            }
            if let Record::Entry { payload, .. } = r {
                if payload.len() > max {
                    return Err(WalError::EntryTooLarge {
                        len: payload.len(),
                        max,
                    });
                }
            }
        }
        if st.sealed.len() >= st.opts.batch_queue_max {
            return Ok(None);
        }
        for r in records {
            st.push_record(r);
        }
        let lsn = st.last_lsn();
        if let Some(w) = st.flusher.take() {
            w.wake();
        }
        Ok(Some(Lsn(lsn)))
    }

    /// Waits until [`Wal::try_append`] would accept records.
    pub async fn reserve(&self) -> Result<(), WalError> {
        poll_fn(|cx| {
            let mut st = self.shared.state.borrow_mut();
            if let Err(e) = st.check_usable() {
                return Poll::Ready(Err(e));
            }
            if st.sealed.len() < st.opts.batch_queue_max {
                return Poll::Ready(Ok(()));
            }
            st.space_waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Appends `records`, waiting for room in the batch queue if needed.
    /// Returns when they are in a batch, not when they are durable: await
    /// [`Wal::wait_durable`] with the returned [`Lsn`] for that.
    pub async fn append(&self, records: &[Record<'_>]) -> Result<Lsn, WalError> {
        loop {
            self.reserve().await?;
            if let Some(lsn) = self.try_append(records)? {
                return Ok(lsn);
            }
        }
    }

    /// Resolves when every record of batch `lsn` (and all before) is durable,
    /// or with an error if the WAL failed before that.
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), WalError> {
        poll_fn(|cx| {
            let mut st = self.shared.state.borrow_mut();
            if st.durable_lsn >= lsn.0 {
                return Poll::Ready(Ok(()));
            }
            if let Some(f) = &st.failed {
                return Poll::Ready(Err(WalError::FailStopped(f.clone())));
            }
            st.waiters
                .entry(lsn.0)
                .or_default()
                .push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Waits until everything appended so far is durable.
    pub async fn sync(&self) -> Result<(), WalError> {
        let lsn = self.shared.state.borrow().last_lsn();
        self.wait_durable(Lsn(lsn)).await
    }

    /// Waits until everything appended is durable, then lets go of this
    /// handle (the log stops when the last handle is gone).
    pub async fn close(self) -> Result<(), WalError> {
        self.sync().await
    }

    /// The newest batch known durable.
    pub fn durable_lsn(&self) -> Lsn {
        Lsn(self.shared.state.borrow().durable_lsn)
    }

    /// Index of the last entry appended (not necessarily durable).
    pub fn last_index(&self) -> u64 {
        self.shared.state.borrow().appended.last_index
    }

    pub fn stats(&self) -> WalStats {
        self.shared.state.borrow().stats
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.shared.state.borrow().segments.len()
    }

    /// Removes the segments whose entries are all at or before `index`,
    /// keeping the last one. `index` must not exceed a durable snapshot
    /// marker. Failures here do not stop the log (nothing acknowledged is at
    /// stake); the caller may retry.
    pub async fn release_before(&self, index: u64) -> Result<usize, WalError> {
        let (fs, dir, doomed) = {
            let mut st = self.shared.state.borrow_mut();
            if st.releasing {
                // Another release is removing the oldest segments; removals
                // must happen strictly oldest first, so leave it to that one.
                return Ok(0);
            }
            assert!(
                index <= st.durable_snap.index,
                "release_before({index}) beyond the durable snapshot marker {}",
                st.durable_snap.index
            );
            let mut n = 0;
            while n + 1 < st.segments.len() && st.segments[n + 1].first_index <= index + 1 {
                n += 1;
            }
            let doomed: Vec<SegmentInfo> = st.segments.drain(..n).collect();
            st.releasing = !doomed.is_empty();
            (st.fs.clone(), st.dir.clone(), doomed)
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        // Oldest first, each removal durable before the next: whatever a
        // crash leaves is still a contiguous run of segments.
        let res = async {
            for s in &doomed {
                fs.remove(&s.path).await?;
                fs.sync_dir(&dir).await?;
            }
            Ok(doomed.len())
        }
        .await;
        self.shared.state.borrow_mut().releasing = false;
        res
    }
}

impl<F: Fs> State<F> {
    /// The batch holding the newest record appended so far.
    fn last_lsn(&self) -> u64 {
        if self.filling.is_some() {
            self.next_lsn
        } else {
            self.next_lsn - 1
        }
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if let Some(f) = &self.failed {
            return Err(WalError::FailStopped(f.clone()));
        }
        if self.closed {
            return Err(WalError::Closed);
        }
        Ok(())
    }

    fn push_record(&mut self, r: &Record<'_>) {
        let need = r.encoded_len();
        let fits = self
            .filling
            .as_ref()
            .is_some_and(|f| f.len + need <= self.opts.batch_bytes_max);
        if !fits {
            // Sealed before `r` is applied to `appended`: the sealed batch's
            // state must not include it.
            self.seal();
            self.filling = Some(Filling {
                buf: new_buf(self.opts.batch_bytes_max),
                len: BATCH_RECORD_BYTES,
                records: 0,
            });
        }
        let a = &mut self.appended;
        match *r {
            Record::Entry { index, term, .. } => {
                assert!(
                    index > a.snap.index && index <= a.last_index + 1,
                    "entry {index} (term {term}) does not fit after entry {} / snapshot {}",
                    a.last_index,
                    a.snap.index
                );
                a.last_index = index;
            }
            Record::HardState(hs) => {
                assert!(
                    hs.term >= a.hs.term,
                    "term went back from {} to {}",
                    a.hs.term,
                    hs.term
                );
                a.hs = hs;
            }
            Record::Snapshot(m) => {
                assert!(m.index >= a.snap.index, "snapshot marker went back");
                a.snap = m;
                a.last_index = a.last_index.max(m.index);
            }
        }
        self.stats.records += 1;
        let f = self.filling.as_mut().expect("filling exists");
        encode(r, &mut f.buf.as_mut_slice()[f.len..f.len + need]);
        f.len += need;
        f.records += 1;
    }

    /// Closes the filling batch: fills in record CRCs, the batch header and
    /// the padding, assigns its place in the log, and queues it.
    fn seal(&mut self) {
        let Some(mut f) = self.filling.take() else {
            return;
        };
        let total = align_up(f.len);
        let mut new_segment = None;
        if self.plan.offset + total as u64 > self.opts.segment_bytes {
            let s = self.sealed_state;
            let h = new_header(
                self.plan.seq + 1,
                s.last_index + 1,
                self.plan.offset,
                s.hs,
                s.snap,
            );
            self.plan = Plan {
                seq: h.seq.get(),
                seed: segment_seed(h.seq.get(), h.salt.get()),
                offset: SEGMENT_HEADER_BLOCK,
            };
            new_segment = Some(h);
        }
        let offset = self.plan.offset;
        self.plan.offset += total as u64;
        let seed = self.plan.seed;
        let bytes = &mut f.buf.as_mut_slice()[..total];
        bytes[f.len..].fill(0);
        let mut pos = BATCH_RECORD_BYTES;
        while pos < f.len {
            let (h, _) = RecordHeader::read_from_prefix(&bytes[pos..]).expect("record header fits");
            let end = pos + RECORD_HEADER_BYTES + h.len.get() as usize;
            let crc = record_crc(
                seed,
                &bytes[pos + 4..pos + RECORD_HEADER_BYTES],
                &bytes[pos + RECORD_HEADER_BYTES..end],
            );
            bytes[pos..pos + 4].copy_from_slice(&crc.to_le_bytes());
            pos = end;
        }
        assert_eq!(pos, f.len, "records fill the batch exactly");
        let payload = BatchPayload {
            batch_len: (total as u32).into(),
            records: f.records.into(),
            body_crc: body_crc(seed, &bytes[BATCH_RECORD_BYTES..total]).into(),
            prev_in_flight: 0.into(),
            offset: offset.into(),
        };
        write_record(
            seed,
            KIND_BATCH,
            payload.as_bytes(),
            &mut bytes[..BATCH_RECORD_BYTES],
        );
        f.buf.truncate(total);
        self.sealed_state = self.appended;
        self.sealed.push_back(Sealed {
            buf: f.buf,
            lsn: self.next_lsn,
            offset,
            seed,
            new_segment,
            snapshot_after: self.appended.snap,
        });
        self.next_lsn += 1;
    }
}

fn new_buf(len: usize) -> AlignedBuf {
    AlignedBuf::new(len)
}
