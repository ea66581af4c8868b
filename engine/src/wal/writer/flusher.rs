//! The flusher task: writes sealed batches in order, one write and one
//! fdatasync each, and wakes the appenders whose records became durable.

use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use super::super::error::WalError;
use super::segment::create_segment;
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

async fn write_batch<F: Fs>(
    shared: &Shared<F>,
    file: &mut F::File,
    b: Sealed,
) -> Result<(), WalError> {
    if let Some(h) = &b.new_segment {
        let (fs, dir, segment_bytes) = {
            let st = shared.state.borrow();
            (st.fs.clone(), st.dir.clone(), st.opts.segment_bytes)
        };
        let (new_file, info) = create_segment(&fs, &dir, h, segment_bytes).await?;
        let old = std::mem::replace(file, new_file);
        old.close().await?;
        let mut st = shared.state.borrow_mut();
        st.segments.push(info);
        st.stats.segments_created += 1;
    }
    let t = std::time::Instant::now();
    file.write_at(b.buf, b.offset).await?;
    let written = std::time::Instant::now();
    file.fdatasync().await?;
    let synced = written.elapsed();
    crate::stats::WAL_FSYNC.observe(synced);
    let mut st = shared.state.borrow_mut();
    st.stats.write_ns += (written - t).as_nanos() as u64;
    st.stats.sync_ns += synced.as_nanos() as u64;
    Ok(())
}

/// The one task that writes batches, in order, one write + one fdatasync
/// each.
pub(super) async fn flusher<F: Fs>(shared: Rc<Shared<F>>, mut file: F::File) {
    while let Some(b) = next_batch(&shared).await {
        let lsn = b.lsn;
        let snap = b.snapshot_after;
        let bytes = b.buf.len() as u64;
        let res = write_batch(&shared, &mut file, b).await;
        let mut st = shared.state.borrow_mut();
        match res {
            Ok(()) => {
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
            Err(e) => {
                tracing::error!(error = %e, "wal: write failed; refusing further appends");
                st.failed = Some(e.to_string());
                for (_, ws) in std::mem::take(&mut st.waiters) {
                    for w in ws {
                        w.wake();
                    }
                }
                for w in st.space_waiters.drain(..) {
                    w.wake();
                }
                return;
            }
        }
    }
    let _ = file.close().await;
}
