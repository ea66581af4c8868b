//! The flusher task: writes sealed batches in order, each with one durable
//! write (O_DSYNC, or write + fdatasync), and wakes the appenders whose
//! records became durable.

use std::future::poll_fn;
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
    let t = std::time::Instant::now();
    tail.file.write_durable(b.buf, b.offset).await?;
    let took = t.elapsed();
    // etcd's "fsync" histogram: the time to make a batch durable, here one
    // O_DSYNC write (or write + fdatasync where the backend has no such).
    crate::stats::WAL_FSYNC.observe(took);
    shared.state.borrow_mut().stats.durable_ns += took.as_nanos() as u64;
    Ok(())
}

/// The one task that writes batches, in order, one durable write each, and
/// after each batch keeps zeros written ahead of the log.
pub(super) async fn flusher<F: Fs>(shared: Rc<Shared<F>>, mut tail: Tail<F::File>) {
    while let Some(b) = next_batch(&shared).await {
        let lsn = b.lsn;
        let snap = b.snapshot_after;
        let bytes = b.buf.len() as u64;
        let end = b.offset + bytes;
        crate::steptrace::mark("wal-write", bytes);
        if let Err(e) = write_batch(&shared, &mut tail, b).await {
            fail(&shared, e);
            return;
        }
        crate::steptrace::mark("wal-durable", bytes);
        {
            let mut st = shared.state.borrow_mut();
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
        // The woken appenders run while this write is under way; a batch
        // sealed meanwhile waits for one write, not for a sync.
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
