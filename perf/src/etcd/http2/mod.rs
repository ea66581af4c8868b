//! A small HTTP/2 client (RFC 9113) for unary gRPC calls: each call is one
//! stream carrying one request and one answer.
//!
//! ```text
//!  call ──frames──▶ ┌──────────── Conn (one Mutex) ────────────┐
//!                   │ streams, windows, output buffer           │
//!  call ◀─outcome── └───────────────────────────────────────────┘
//!                      ▲ frames, decoded          │ output, swapped out
//!  socket ─read─▶ reader task            writer task ─write─▶ socket
//! ```
//!
//! A call frames its request (HEADERS and DATA) before taking the lock,
//! then under it takes a stream id, appends the frames to the output
//! buffer and wakes the writer if the buffer was empty. The writer swaps
//! the buffer out and writes it whole, so every call queued while it was
//! writing leaves in its next single write. The reader reads what the
//! socket has, and under one lock taking handles every whole frame in it:
//! an answer's bytes are kept by its stream, and a stream the server ends
//! gets its outcome and its call is woken once the lock is let go.
//!
//! The client does what the protocol asks of it beside: it answers PINGs
//! and SETTINGS, gives receive windows back as answers are read (in
//! steps of half the window), holds requests back within the server's
//! windows, frame size and concurrent-stream limit, and fails the calls a
//! RST_STREAM or GOAWAY names. Any protocol breach by the server, or the
//! connection's end, fails every call in flight as a transport error.
//!
//! The lock is a `std::sync::Mutex`: calls may run on several worker
//! threads, and no one holds it across an `.await`.

mod conn;
use cairn_wire::http2 as frame;
mod read;
mod recent;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

pub(super) use conn::Request;
use conn::{Conn, Refused, Slots, Writer};
use frame::{Head, Reason, HEADER_BYTES};
use read::FrameReader;

use super::grpc::transport;
use crate::limits::{
    CONNECTION_WINDOW_BYTES, HTTP2_OUT_BYTES_KEEP_MAX, HTTP2_READ_BYTES, STREAM_WINDOW_BYTES,
};
use crate::target::OpError;

/// One HTTP/2 connection. Dropping it closes the connection: the writer
/// sends GOAWAY and shuts the socket down, the reader stops.
pub(super) struct Connection {
    shared: Arc<Shared>,
    reader: AbortHandle,
}

/// What the calls and the two tasks share.
struct Shared {
    conn: Mutex<Conn>,
    /// The output buffer has something, or the connection is closing.
    writer_wake: Notify,
    /// A stream closed while the server's concurrent-stream limit was
    /// reached, or the connection failed.
    stream_freed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Conn> {
        // Every change to the state finishes before the lock is let go,
        // and none panics halfway: a poisoned lock's state is whole.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `change` under the lock, then does what it left to do: wakes
    /// the writer, waiting calls, and (through `wakers`, empty on entry
    /// and on return) the calls whose outcome came in.
    fn update<R>(&self, wakers: &mut Vec<Waker>, change: impl FnOnce(&mut Conn) -> R) -> R {
        let (result, signals) = {
            let mut conn = self.lock();
            let result = change(&mut conn);
            (result, conn.take_signals(wakers))
        };
        if signals.writer {
            self.writer_wake.notify_one();
        }
        match signals.slots {
            Slots::None => {}
            Slots::One => self.stream_freed.notify_one(),
            Slots::All => self.stream_freed.notify_waiters(),
        }
        for waker in wakers.drain(..) {
            waker.wake();
        }
        result
    }
}

/// Sends the connection preface and the client's settings over `io`,
/// reads the server's SETTINGS, and starts the reader and writer tasks.
///
/// The settings are those the harness has always offered, so the servers
/// see the same flow control as before: a 2 MiB window per stream
/// (SETTINGS_INITIAL_WINDOW_SIZE) and a WINDOW_UPDATE taking the
/// connection's window to 5 MiB; and no server push.
pub(super) async fn handshake<T>(mut io: T) -> Result<Connection, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut hello = frame::PREFACE.to_vec();
    frame::put_settings(
        &mut hello,
        &[
            (frame::SETTINGS_ENABLE_PUSH, 0),
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW_BYTES),
        ],
    );
    // At most 2^31 - 1 - 65,535: the limits keep the window below 2^31.
    let increment = i64::from(CONNECTION_WINDOW_BYTES) - frame::DEFAULT_WINDOW;
    frame::put_window_update(&mut hello, 0, increment as u32);
    io.write_all(&hello).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())?;

    // The server's first frame must be its SETTINGS (RFC 9113 §3.4).
    let mut buf = BytesMut::with_capacity(HTTP2_READ_BYTES);
    loop {
        if buf.len() >= HEADER_BYTES {
            let head = Head::parse(&buf);
            if head.kind != frame::SETTINGS || head.has(frame::ACK) {
                return Err("the server's first frame is not SETTINGS".to_string());
            }
            if buf.len() >= HEADER_BYTES + head.len {
                break;
            }
        }
        if io.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("the server closed the connection".to_string());
        }
    }
    let mut conn = Conn::new();
    let mut frames = FrameReader::new();
    frames
        .read_frames(&mut buf, &mut conn)
        .map_err(|e| e.kind)?;

    let (read_half, write_half) = tokio::io::split(io);
    let shared = Arc::new(Shared {
        conn: Mutex::new(conn),
        writer_wake: Notify::new(),
        stream_freed: Notify::new(),
    });
    // The writer starts with the SETTINGS acknowledgement to send.
    tokio::spawn(write_loop(write_half, Arc::clone(&shared)));
    let reader = tokio::spawn(read_loop(read_half, buf, frames, Arc::clone(&shared)));
    Ok(Connection {
        shared,
        reader: reader.abort_handle(),
    })
}

impl Connection {
    /// Sends `request` on a new stream and waits for its answer: the
    /// message's bytes (without gRPC's prefix), or why the call failed.
    pub(super) async fn call(&self, mut request: Request) -> Result<Bytes, OpError> {
        // The stream is opened with the task's waker already in place, so
        // the first poll of the outcome need not take the lock again: it
        // happens in the same poll of the task, and an outcome coming in
        // before it wakes the task for the next one.
        let opened = std::future::poll_fn(|cx| {
            Poll::Ready(self.shared.update(&mut Vec::new(), |conn| {
                conn.open_stream(&mut request, Some(cx.waker()))
            }))
        })
        .await;
        let (id, registered) = match opened {
            Ok(id) => (id, true),
            Err(Refused::Closed(error)) => return Err(error),
            Err(Refused::Full) => (self.open_when_free(&mut request).await?, false),
        };
        PendingCall {
            shared: &self.shared,
            id,
            registered,
            taken: false,
        }
        .await
    }

    /// Waits for the server's concurrent-stream limit to let a stream
    /// open, then opens it.
    async fn open_when_free(&self, request: &mut Request) -> Result<u32, OpError> {
        loop {
            let freed = self.shared.stream_freed.notified();
            tokio::pin!(freed);
            // Registered before the state is looked at, so a stream
            // closing in between is not missed.
            freed.as_mut().enable();
            let opened = self.shared.update(&mut Vec::new(), |conn| {
                conn.open_stream(request, None)
                    .map(|id| (id, conn.has_free_stream()))
            });
            match opened {
                Ok((id, more_free)) => {
                    // Whoever else waits may take the next free stream.
                    if more_free {
                        self.shared.stream_freed.notify_one();
                    }
                    return Ok(id);
                }
                Err(Refused::Closed(error)) => return Err(error),
                Err(Refused::Full) => freed.await,
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.shared.update(&mut Vec::new(), Conn::close);
    }
}

/// A call waiting for its outcome. Dropped before it has it, the call is
/// cancelled: the stream is reset and forgotten.
struct PendingCall<'a> {
    shared: &'a Shared,
    id: u32,
    /// The stream was opened with the waker of the poll that polls this
    /// first.
    registered: bool,
    taken: bool,
}

impl Future for PendingCall<'_> {
    type Output = Result<Bytes, OpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if std::mem::take(&mut self.registered) {
            return Poll::Pending;
        }
        let id = self.id;
        let outcome = self.shared.lock().poll_outcome(id, cx.waker());
        if outcome.is_ready() {
            self.taken = true;
        }
        outcome
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if !self.taken {
            let id = self.id;
            self.shared.update(&mut Vec::new(), |conn| conn.cancel(id));
        }
    }
}

/// Takes frames off the socket until it fails or the server breaks the
/// protocol, then fails the connection.
async fn read_loop<R>(mut io: R, mut buf: BytesMut, mut frames: FrameReader, shared: Arc<Shared>)
where
    R: AsyncRead + Unpin,
{
    let mut wakers = Vec::new();
    let error = loop {
        // A frame cut short is at most a header and 16 KiB: the room
        // reserved always takes the rest of it.
        if buf.capacity() - buf.len() < HTTP2_READ_BYTES / 2 {
            buf.reserve(HTTP2_READ_BYTES);
        }
        match io.read_buf(&mut buf).await {
            Ok(0) => break transport("the server closed the connection"),
            Ok(_) => {}
            Err(e) => break transport(e),
        }
        if let Err(error) = shared.update(&mut wakers, |conn| frames.read_frames(&mut buf, conn)) {
            break error;
        }
    };
    shared.update(&mut wakers, |conn| conn.fail(error));
}

/// Writes what the calls and the reader queue, each time all of it at
/// once, until the connection fails or closes.
async fn write_loop<W>(mut io: W, shared: Arc<Shared>)
where
    W: AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    loop {
        let next = shared.lock().take_output(&mut buf);
        match next {
            Writer::Write => {}
            Writer::Wait => {
                shared.writer_wake.notified().await;
                continue;
            }
            Writer::Close => {
                frame::put_goaway(&mut buf, 0, Reason::NO_ERROR, b"");
                // The connection is being dropped: nothing waits for the
                // outcome.
                let _ = io.write_all(&buf).await;
                let _ = io.shutdown().await;
                return;
            }
            Writer::Stop => return,
        }
        // TLS holds written bytes until flushed.
        let written = match io.write_all(&buf).await {
            Ok(()) => io.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            shared.update(&mut Vec::new(), |conn| conn.fail(transport(e)));
            return;
        }
        buf.clear();
        if buf.capacity() > HTTP2_OUT_BYTES_KEEP_MAX {
            buf = Vec::new();
        }
    }
}
