//! The flusher task: writes sealed batches in order, each with one durable
//! write (O_DSYNC, or write + fdatasync), and wakes the appenders whose
//! records became durable.

use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::Poll;

use super::super::error::WalError;
use super::segment::{create_segment, zero_ahead};
use super::{Sealed, Shared};
use crate::io::{File, Fs};

/// Takes the next batch to write: a queued one, or the filling one if the
/// disk would otherwise sit idle. `None` when the log failed, or was closed
/// and everything appended is written.
async fn next_batch<F: Fs>(shared: &Shared<F>) -> Option<Sealed> {
    poll_fn(|cx| {
        let mut st = shared.state.borrow_mut();
        if st.failed.is_some() {
            return Poll::Ready(None);
        }
        if st.sealed.is_empty() && st.filling.as_ref().is_some_and(|f| f.records > 0) {
            st.seal();
        }
        if let Some(b) = st.sealed.pop_front() {
            for w in st.space_waiters.drain(..) {
                w.wake();
            }
            return Poll::Ready(Some(b));
        }
        if st.closed {
            return Poll::Ready(None);
        }
        st.flusher = Some(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// The segment file the flusher writes, and where the zeros written ahead
/// of the log end in it.
pub(super) struct Tail<Fl> {
    pub file: Fl,
    pub zeroed_to: u64,
}

/// Writes one batch durably and, alongside it, the zeros the log needs
/// ahead of the batch's end. The batch's appenders are woken as soon as its
/// durable write completes; the function returns once the zeros are written
/// too, so the next batch never runs alongside a zero write that could
/// cover it.
async fn write_batch<F: Fs>(
    shared: &Shared<F>,
    tail: &mut Tail<F::File>,
    b: Sealed,
) -> Result<(), WalError> {
    if let Some(h) = &b.new_segment {
        let (fs, dir, segment_bytes) = {
            let st = shared.state.borrow();
            (st.fs.clone(), st.dir.clone(), st.opts.segment_bytes)
        };
        let seg = create_segment(&fs, &dir, h, segment_bytes).await?;
        let old = std::mem::replace(&mut tail.file, seg.file);
        tail.zeroed_to = seg.zeroed_to;
        old.close().await?;
        let mut st = shared.state.borrow_mut();
        st.segments.push(seg.info);
        st.stats.segments_created += 1;
    }
    let (lsn, snap, bytes) = (b.lsn, b.snapshot_after, b.buf.len() as u64);
    let end = b.offset + bytes;
    let segment_bytes = shared.state.borrow().opts.segment_bytes;
    let zeroed_before = tail.zeroed_to;
    // Zeros go only at or after this batch's end, and the next batch is
    // written once they are done: a zero write never covers a batch.
    let zeros = zero_ahead(&tail.file, zeroed_before, end, segment_bytes);
    let write = tail.file.write_durable(b.buf, b.offset);
    let mut zeros = std::pin::pin!(zeros);
    let mut write = std::pin::pin!(write);
    let mut zeroed = None;
    let t = std::time::Instant::now();
    poll_fn(|cx| {
        if zeroed.is_none() {
            if let Poll::Ready(z) = zeros.as_mut().poll(cx) {
                zeroed = Some(z);
            }
        }
        write.as_mut().poll(cx)
    })
    .await?;
    let took = t.elapsed();
    // etcd's "fsync" histogram: the time to make a batch durable, here one
    // O_DSYNC write (or write + fdatasync where the backend has no such).
    crate::stats::WAL_FSYNC.observe(took);
    crate::steptrace::mark("wal-durable", bytes);
    {
        let mut st = shared.state.borrow_mut();
        st.stats.durable_ns += took.as_nanos() as u64;
        st.stats.batches += 1;
        st.stats.bytes += bytes;
        st.durable_lsn = lsn;
        st.durable_snap = snap;
        while let Some(entry) = st.waiters.first_entry() {
            if *entry.key() > lsn {
                break;
            }
            for w in entry.remove() {
                w.wake();
            }
        }
    }
    let to = match zeroed {
        Some(z) => z?,
        None => zeros.await?,
    };
    tail.zeroed_to = to;
    let mut st = shared.state.borrow_mut();
    if to > zeroed_before.max(end) {
        st.stats.zeroed += to - zeroed_before.max(end);
        st.stats.zero_writes_alongside += 1;
    }
    Ok(())
}

/// The one task that writes batches, in order, one durable write each,
/// keeping zeros written ahead of the log: alongside a batch while the log
/// is busy, and right after it while the disk would otherwise be idle.
pub(super) async fn flusher<F: Fs>(shared: Rc<Shared<F>>, mut tail: Tail<F::File>) {
    while let Some(b) = next_batch(&shared).await {
        let end = b.offset + b.buf.len() as u64;
        crate::steptrace::mark("wal-write", b.buf.len() as u64);
        if let Err(e) = write_batch(&shared, &mut tail, b).await {
            fail(&shared, e);
            return;
        }
        // Nothing waits to be written: top the zeros up now rather than
        // alongside the next batch, which then starts on written blocks
        // with the disk to itself.
        let idle = {
            let st = shared.state.borrow();
            st.sealed.is_empty() && st.filling.as_ref().is_none_or(|f| f.records == 0)
        };
        if idle {
            let segment_bytes = shared.state.borrow().opts.segment_bytes;
            let before = tail.zeroed_to;
            match zero_ahead(&tail.file, before, end, segment_bytes).await {
                Ok(to) => {
                    tail.zeroed_to = to;
                    shared.state.borrow_mut().stats.zeroed += to - before.max(end);
                }
                Err(e) => {
                    fail(&shared, e);
                    return;
                }
            }
        }
    }
    let _ = tail.file.close().await;
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
