//! The flusher task: writes sealed batches in order, each with one durable
//! write (O_DSYNC, or write + fdatasync), up to [`WAL_WRITES_IN_FLIGHT`] at
//! once, and wakes the appenders whose records became durable.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use super::super::error::WalError;
use super::super::format::{align_up, SnapshotMarker};
use super::segment::{create_segment, zeros_needed};
use super::{Sealed, Shared};
use crate::io::{AlignedBuf, File, Fs};
use crate::limits::WAL_WRITES_IN_FLIGHT;

type Io = Pin<Box<dyn Future<Output = Result<(), WalError>>>>;

/// The segment file the flusher writes, where the zeros written ahead of the
/// log end in it, and where the log ends.
pub(super) struct Tail<Fl> {
    pub file: Fl,
    pub zeroed_to: u64,
    pub end: u64,
}

/// A batch whose durable write is in flight.
struct Writing {
    lsn: u64,
    snap: SnapshotMarker,
    len: u64,
    started: Instant,
    write: Io,
    done: bool,
}

/// A write of zeros over `from..to`, in flight.
struct Zeroing {
    from: u64,
    to: u64,
    write: Io,
}

enum Event {
    /// A write slot is free and this batch may go out.
    Issue(Sealed),
    /// The oldest write in flight completed: its batch is durable.
    Durable,
    /// The zero write completed.
    Zeroed,
    /// The log was closed and everything appended is written.
    Finished,
}

struct Flusher<F: Fs> {
    shared: Rc<Shared<F>>,
    file: Rc<F::File>,
    zeroed_to: u64,
    /// Where the last batch issued ends.
    end: u64,
    /// Oldest first; at most [`WAL_WRITES_IN_FLIGHT`].
    writing: VecDeque<Writing>,
    zeroing: Option<Zeroing>,
}

impl<F: Fs> Flusher<F> {
    /// Whether a batch of `len` bytes at `offset` may be issued now. A batch
    /// that starts a segment waits until nothing is in flight in the old
    /// one, so a segment is complete before the next one exists; a batch
    /// reaching into the zeros being written waits for them.
    fn may_issue(&self, offset: u64, len: u64, new_segment: bool) -> bool {
        if new_segment {
            return self.writing.is_empty() && self.zeroing.is_none();
        }
        self.zeroing.as_ref().is_none_or(|z| offset + len <= z.from)
    }

    async fn next_event(&mut self) -> Result<Event, WalError> {
        poll_fn(|cx| {
            for w in self.writing.iter_mut().filter(|w| !w.done) {
                if let Poll::Ready(r) = w.write.as_mut().poll(cx) {
                    r?;
                    w.done = true;
                }
            }
            if self.writing.front().is_some_and(|w| w.done) {
                return Poll::Ready(Ok(Event::Durable));
            }
            if let Some(z) = &mut self.zeroing {
                if let Poll::Ready(r) = z.write.as_mut().poll(cx) {
                    r?;
                    return Poll::Ready(Ok(Event::Zeroed));
                }
            }
            let mut st = self.shared.state.borrow_mut();
            if st.failed.is_some() {
                return Poll::Ready(Ok(Event::Finished));
            }
            if self.writing.len() < WAL_WRITES_IN_FLIGHT {
                // Seal the filling batch only if it could go out at once;
                // otherwise let it keep filling.
                if st.sealed.is_empty() {
                    if let Some(f) = st.filling.as_ref().filter(|f| f.records > 0) {
                        let len = align_up(f.len) as u64;
                        let rolls = st.plan.offset + len > st.opts.segment_bytes;
                        if self.may_issue(st.plan.offset, len, rolls) {
                            st.seal();
                        }
                    }
                }
                if let Some(b) = st.sealed.front() {
                    if self.may_issue(b.offset, b.buf.len() as u64, b.new_segment.is_some()) {
                        let b = st.sealed.pop_front().expect("front exists");
                        for w in st.space_waiters.drain(..) {
                            w.wake();
                        }
                        return Poll::Ready(Ok(Event::Issue(b)));
                    }
                }
            }
            let idle = st.sealed.is_empty() && st.filling.as_ref().is_none_or(|f| f.records == 0);
            if st.closed && idle && self.writing.is_empty() && self.zeroing.is_none() {
                return Poll::Ready(Ok(Event::Finished));
            }
            st.flusher = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Whether appended records wait to be written.
    fn busy(&self) -> bool {
        let st = self.shared.state.borrow();
        !st.sealed.is_empty() || st.filling.as_ref().is_some_and(|f| f.records > 0)
    }

    /// Starts the batch's durable write.
    async fn issue(&mut self, mut b: Sealed) -> Result<(), WalError> {
        if let Some(h) = &b.new_segment {
            let (fs, dir, segment_bytes) = {
                let st = self.shared.state.borrow();
                (st.fs.clone(), st.dir.clone(), st.opts.segment_bytes)
            };
            let seg = create_segment(&fs, &dir, h, segment_bytes).await?;
            let old = std::mem::replace(&mut self.file, Rc::new(seg.file));
            self.zeroed_to = seg.zeroed_to;
            Rc::into_inner(old)
                .expect("nothing is in flight on a finished segment")
                .close()
                .await?;
            let mut st = self.shared.state.borrow_mut();
            st.segments.push(seg.info);
            st.stats.segments_created += 1;
        }
        let len = b.buf.len() as u64;
        if let Some(prev) = self.writing.back().filter(|w| !w.done) {
            debug_assert!(b.new_segment.is_none());
            b.mark_prev_in_flight(prev.len as u32);
            self.shared.state.borrow_mut().stats.writes_overlapped += 1;
        }
        crate::steptrace::mark("wal-write", len);
        let (file, buf, offset) = (self.file.clone(), b.buf, b.offset);
        self.writing.push_back(Writing {
            lsn: b.lsn,
            snap: b.snapshot_after,
            len,
            started: Instant::now(),
            write: Box::pin(async move { Ok(file.write_durable(buf, offset).await?) }),
            done: false,
        });
        self.end = offset + len;
        // More waits behind this batch: write the zeros alongside it rather
        // than in a gap the next batches would wait through.
        if self.busy() {
            self.start_zeros(true);
        }
        Ok(())
    }

    /// The oldest write completed: its batch, and every one before it, is
    /// durable.
    fn retire(&mut self) {
        let w = self.writing.pop_front().expect("a completed write");
        let took = w.started.elapsed();
        // etcd's "fsync" histogram: the time to make a batch durable, here
        // one O_DSYNC write (or write + fdatasync where the backend has no
        // such), counted from when it was issued.
        crate::stats::WAL_FSYNC.observe(took);
        crate::steptrace::mark("wal-durable", w.len);
        {
            let mut st = self.shared.state.borrow_mut();
            st.stats.durable_ns += took.as_nanos() as u64;
            st.stats.batches += 1;
            st.stats.bytes += w.len;
            st.durable_lsn = w.lsn;
            st.durable_snap = w.snap;
            while let Some(entry) = st.waiters.first_entry() {
                if *entry.key() > w.lsn {
                    break;
                }
                for waker in entry.remove() {
                    waker.wake();
                }
            }
        }
        // Nothing in flight and nothing waiting: top the zeros up now, so
        // the next batch finds written blocks and the disk to itself.
        if self.writing.is_empty() && !self.busy() {
            self.start_zeros(false);
        }
    }

    /// Starts writing zeros after the last batch issued, if they run short.
    fn start_zeros(&mut self, alongside: bool) {
        if self.zeroing.is_some() {
            return;
        }
        let segment_bytes = self.shared.state.borrow().opts.segment_bytes;
        let Some((from, to)) = zeros_needed(self.zeroed_to, self.end, segment_bytes) else {
            return;
        };
        let file = self.file.clone();
        let zeros = AlignedBuf::zeroed((to - from) as usize);
        self.zeroing = Some(Zeroing {
            from,
            to,
            write: Box::pin(async move { Ok(file.write_at(zeros, from).await?) }),
        });
        if alongside {
            self.shared.state.borrow_mut().stats.zero_writes_alongside += 1;
        }
    }

    /// The zero write completed. The log may have moved on meanwhile: top
    /// the zeros up again if it has.
    fn zeroed(&mut self) {
        let z = self.zeroing.take().expect("a completed zero write");
        self.zeroed_to = z.to;
        self.shared.state.borrow_mut().stats.zeroed += z.to - z.from;
        self.start_zeros(!self.writing.is_empty());
    }
}

/// The one task that writes batches: in order, one durable write each, up
/// to [`WAL_WRITES_IN_FLIGHT`] at once, keeping zeros written ahead of the
/// log: alongside the batches while the log is busy, right after them while
/// the disk would otherwise be idle.
pub(super) async fn flusher<F: Fs>(shared: Rc<Shared<F>>, tail: Tail<F::File>) {
    let mut f = Flusher {
        shared,
        file: Rc::new(tail.file),
        zeroed_to: tail.zeroed_to,
        end: tail.end,
        writing: VecDeque::with_capacity(WAL_WRITES_IN_FLIGHT),
        zeroing: None,
    };
    loop {
        let r = match f.next_event().await {
            Ok(Event::Issue(b)) => f.issue(b).await,
            Ok(Event::Durable) => {
                f.retire();
                Ok(())
            }
            Ok(Event::Zeroed) => {
                f.zeroed();
                Ok(())
            }
            Ok(Event::Finished) => break,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            fail(&f.shared, e);
            return;
        }
    }
    let Flusher { file, writing, .. } = f;
    drop(writing);
    if let Some(file) = Rc::into_inner(file) {
        let _ = file.close().await;
    }
}

/// Fail-stop: refuses further appends and wakes everyone waiting, who see
/// the error.
fn fail<F: Fs>(shared: &Shared<F>, e: WalError) {
    tracing::error!(error = %e, "wal: write failed; refusing further appends");
    let mut st = shared.state.borrow_mut();
    st.failed = Some(e.to_string());
    for (_, ws) in std::mem::take(&mut st.waiters) {
        for w in ws {
            w.wake();
        }
    }
    for w in st.space_waiters.drain(..) {
        w.wake();
    }
}
