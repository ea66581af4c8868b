//! A server-side HTTP/2 connection (RFC 9113), written for gRPC.
//!
//! gRPC over HTTP/2 needs less than HTTP/2 offers: requests are POSTs whose
//! bodies are read in order, responses are one header block, data and a
//! trailer block, and the server never pushes. This module does that much
//! and all the protocol asks of a server beside (settings, pings, both
//! directions' flow control, resets, GOAWAY, header compression), on the
//! executor that owns the socket, with no locks: the connection's state is
//! one `RefCell` shared by the driver and the stream handles of its calls.
//!
//! ```text
//!  socket ─read─▶ driver ─frames─▶ state ─▶ RecvStream (a call's request bytes)
//!                                    │   ─▶ on_request(Request, SendResponse)
//!  socket ◀─write─ driver ◀─ out ◀───┘◀── SendResponse / SendStream (answers)
//! ```
//!
//! What a call writes is framed into one output buffer as soon as both
//! flow-control windows allow, and the driver writes that buffer out when
//! it next runs: the answers of every call that finished in one executor
//! turn leave in one write. The buffer is bounded
//! ([`HTTP2_OUT_BYTES_HIGH`](crate::limits::HTTP2_OUT_BYTES_HIGH)): above
//! it the driver stops reading (so a client that sends but does not read
//! stalls only itself) and stream data waits in its stream's queue, itself
//! bounded by [`GRPC_STREAM_SEND_BUFFER_BYTES_MAX`](crate::limits::GRPC_STREAM_SEND_BUFFER_BYTES_MAX).

use cairn_wire::http2 as frame;
mod state;

use std::cell::RefCell;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use cairn_wire::hpack;
use futures_lite::io::{AsyncRead, AsyncWrite};

pub use frame::Reason;
use state::{Conn, ConnError, NewStream};

use crate::limits;

/// Why a stream handle cannot go on: the stream was reset, or the
/// connection is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A request's header fields in the order received, pseudo-headers
/// (`:method`, `:path`, ...) included, in one buffer.
#[derive(Default, Debug)]
pub struct Fields {
    buf: Vec<u8>,
    /// Name start, value start (= name end), value end.
    spans: Vec<[u32; 3]>,
}

impl Fields {
    pub(crate) fn push(&mut self, name: &[u8], value: &[u8]) {
        // A header list is bounded far below 4 GiB.
        let at = self.buf.len() as u32;
        self.buf.extend_from_slice(name);
        let mid = self.buf.len() as u32;
        self.buf.extend_from_slice(value);
        self.spans.push([at, mid, self.buf.len() as u32]);
    }

    /// The first field named `name` (lowercase, as HTTP/2 sends names).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.spans.iter().find_map(|&[a, m, e]| {
            (&self.buf[a as usize..m as usize] == name.as_bytes())
                .then(|| &self.buf[m as usize..e as usize])
        })
    }

    /// The field as text, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// One request: its header fields and its body.
pub struct Request {
    pub fields: Fields,
    pub body: RecvStream,
}

type Shared = Rc<RefCell<Conn>>;

/// Serve one HTTP/2 connection whose client preface is next on `io`,
/// handing each request to `on_request` as its headers arrive, until the
/// client goes or breaks the protocol.
pub async fn serve<S>(mut io: S, mut on_request: impl FnMut(Request, SendResponse))
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn: Shared = Rc::new(RefCell::new(Conn::new()));
    let why = match drive(&mut io, &conn, &mut on_request).await {
        Ok(()) => "the client closed the connection".to_owned(),
        Err(e) => e,
    };
    tracing::debug!("HTTP/2 connection over: {why}");
    conn.borrow_mut().close(why);
}

/// Read, handle and write until the connection ends.
async fn drive<S>(
    io: &mut S,
    conn: &Shared,
    on_request: &mut impl FnMut(Request, SendResponse),
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut preface = [0u8; frame::PREFACE.len()];
    read_exact(io, &mut preface).await?;
    if preface != frame::PREFACE {
        return Err("not the HTTP/2 client preface".to_owned());
    }
    let mut input = Input::new();
    let mut turns = 0u32;
    let mut written = 0usize;
    let mut flushed = true;
    let mut eof = false;
    let mut new = Vec::new();
    poll_fn(|cx| loop {
        // Other tasks (the calls) get their turn even while the client
        // keeps the socket busy.
        turns += 1;
        if turns > limits::HTTP2_DRIVER_TURNS_MAX {
            turns = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut progress = false;
        // Write what is queued.
        {
            let mut c = conn.borrow_mut();
            while written < c.out.len() {
                match Pin::new(&mut *io).poll_write(cx, &c.out[written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err("the socket closed".to_owned())),
                    Poll::Ready(Ok(n)) => {
                        written += n;
                        flushed = false;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("write: {e}"))),
                    Poll::Pending => break,
                }
            }
            if written > 0 && written == c.out.len() {
                c.out.clear();
                written = 0;
                // Room again: streams held back by a full buffer go on.
                c.flush_blocked();
                if !c.out.is_empty() {
                    continue;
                }
            }
            if !flushed && c.out.is_empty() {
                match Pin::new(&mut *io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => flushed = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("flush: {e}"))),
                    Poll::Pending => {}
                }
            }
            if c.goaway_sent && c.out.is_empty() && flushed {
                return Poll::Ready(Err(c.closed.clone().unwrap_or_default()));
            }
            if eof && c.out.is_empty() {
                return Poll::Ready(Ok(()));
            }
        }
        // Read and handle frames while the output has room.
        if !eof && conn.borrow().wants_input() {
            match input.poll_fill(io, cx) {
                Poll::Ready(Ok(0)) => {
                    eof = true;
                    progress = true;
                }
                Poll::Ready(Ok(_)) => {
                    progress = true;
                    let handled = {
                        let mut c = conn.borrow_mut();
                        let r = input.handle(&mut c, &mut new);
                        if let Err(e) = &r {
                            c.go_away(e);
                        }
                        r
                    };
                    // Calls start outside the borrow: they may touch the
                    // state as soon as they run.
                    for n in new.drain(..) {
                        start(conn, n, on_request);
                    }
                    if handled.is_err() {
                        continue;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("read: {e}"))),
                Poll::Pending => {}
            }
        }
        if !progress {
            turns = 0;
            conn.borrow_mut().driver = Some(cx.waker().clone());
            return Poll::Pending;
        }
    })
    .await
}

fn start(conn: &Shared, n: NewStream, on_request: &mut impl FnMut(Request, SendResponse)) {
    let body = RecvStream {
        conn: conn.clone(),
        id: n.id,
    };
    let respond = SendResponse {
        conn: conn.clone(),
        id: n.id,
    };
    on_request(
        Request {
            fields: n.fields,
            body,
        },
        respond,
    );
}

async fn read_exact<S: AsyncRead + Unpin>(io: &mut S, buf: &mut [u8]) -> Result<(), String> {
    let mut at = 0;
    while at < buf.len() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_read(cx, &mut buf[at..]))
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the client closed the connection".to_owned());
        }
        at += n;
    }
    Ok(())
}

/// Bytes read from the socket and not yet handled as whole frames.
struct Input {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

// A whole frame of the largest size this server accepts always fits.
const _: () =
    assert!(limits::HTTP2_READ_BYTES >= 2 * (frame::HEADER_BYTES + frame::DEFAULT_MAX_FRAME));

impl Input {
    fn new() -> Input {
        Input {
            buf: vec![0; limits::HTTP2_READ_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn poll_fill<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < frame::HEADER_BYTES + frame::DEFAULT_MAX_FRAME {
            // Move the partial frame to the front so a whole one fits.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let r = Pin::new(io).poll_read(cx, &mut self.buf[self.end..]);
        if let Poll::Ready(Ok(n)) = r {
            self.end += n;
        }
        r
    }

    /// Handle every whole frame in the buffer.
    fn handle(&mut self, c: &mut Conn, new: &mut Vec<NewStream>) -> Result<(), ConnError> {
        loop {
            let rest = &self.buf[self.start..self.end];
            let Some(head) = rest.first_chunk::<{ frame::HEADER_BYTES }>() else {
                return Ok(());
            };
            let head = frame::Head::parse(head);
            if head.len > frame::DEFAULT_MAX_FRAME {
                return Err(ConnError {
                    reason: Reason::FRAME_SIZE_ERROR,
                    why: "a frame larger than SETTINGS_MAX_FRAME_SIZE",
                });
            }
            let end = frame::HEADER_BYTES + head.len;
            if rest.len() < end {
                return Ok(());
            }
            c.on_frame(head, &rest[frame::HEADER_BYTES..end], new)?;
            self.start += end;
        }
    }
}

/// The body of a request.
pub struct RecvStream {
    conn: Shared,
    id: u32,
}

impl RecvStream {
    /// The next piece of the body; `None` once the client ended it. Taking
    /// a piece gives its bytes back to the client's flow-control windows.
    pub async fn data(&mut self) -> Option<Result<Bytes, Error>> {
        poll_fn(|cx| {
            let mut c = self.conn.borrow_mut();
            let closed = c.closed.clone();
            let Some(s) = c.streams.get_mut(&self.id) else {
                return Poll::Ready(Some(Err(Error(closed.unwrap_or_default()))));
            };
            if let Some(chunk) = s.recv.pop_front() {
                let n = chunk.len();
                c.release(Some(self.id), n);
                c.wake_driver();
                return Poll::Ready(Some(Ok(chunk)));
            }
            if let Some(reason) = s.reset {
                return Poll::Ready(Some(Err(reset_error(reason))));
            }
            if s.recv_ended {
                return Poll::Ready(None);
            }
            s.recv_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        let mut c = self.conn.borrow_mut();
        let unread = match c.streams.get_mut(&self.id) {
            Some(s) => {
                s.receiver = false;
                s.recv.drain(..).map(|b| b.len()).sum()
            }
            None => 0,
        };
        c.release(None, unread);
        c.maybe_remove(self.id);
        c.wake_driver();
    }
}

fn reset_error(reason: Reason) -> Error {
    Error(format!("stream reset: {reason}"))
}

/// Where a request's response starts.
pub struct SendResponse {
    conn: Shared,
    id: u32,
}

/// Header fields to send: lowercase names.
pub type Field<'a> = (&'a str, &'a [u8]);

impl SendResponse {
    /// Send `:status 200` and `fields`; with `end`, that is the whole
    /// response (gRPC's trailers-only answer).
    pub fn send_response(&mut self, fields: &[Field<'_>], end: bool) -> Result<SendStream, Error> {
        let mut c = self.conn.borrow_mut();
        usable(&c, self.id)?;
        let mut block = Vec::with_capacity(64);
        c.start_block(&mut block);
        hpack::encode_status(200, &mut block);
        for (name, value) in fields {
            hpack::encode_field(name.as_bytes(), value, &mut block);
        }
        c.respond(self.id, &block, end);
        if let Some(s) = c.streams.get_mut(&self.id) {
            s.senders += 1;
        }
        c.wake_driver();
        Ok(SendStream {
            conn: self.conn.clone(),
            id: self.id,
        })
    }

    /// A whole response of only a status code (and no body).
    pub fn send_status(&mut self, code: u16) -> Result<(), Error> {
        let mut c = self.conn.borrow_mut();
        usable(&c, self.id)?;
        let mut block = Vec::with_capacity(8);
        c.start_block(&mut block);
        hpack::encode_status(code, &mut block);
        c.respond(self.id, &block, true);
        Ok(())
    }

    /// Ready once the client resets the stream (or the connection goes).
    pub fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<Reason> {
        poll_reset(&self.conn, self.id, cx)
    }
}

impl Drop for SendResponse {
    fn drop(&mut self) {
        drop_sender(&self.conn, self.id);
    }
}

/// A response's body and trailers.
pub struct SendStream {
    conn: Shared,
    id: u32,
}

impl SendStream {
    /// Ready with the room there is once there is some; an error once the
    /// stream is reset.
    pub fn poll_capacity(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, Error>> {
        let mut c = self.conn.borrow_mut();
        usable(&c, self.id)?;
        let Some(s) = c.streams.get_mut(&self.id) else {
            unreachable!("usable checked it");
        };
        match s.send_room() {
            0 => {
                s.send_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            room => Poll::Ready(Ok(room)),
        }
    }

    /// Wait until the stream's queue has room; the room there is.
    pub async fn room(&mut self) -> Result<usize, Error> {
        poll_fn(|cx| self.poll_capacity(cx)).await
    }

    /// Queue `data`; with `end`, the response ends after it.
    pub fn send_data(&mut self, data: Bytes, end: bool) -> Result<(), Error> {
        let mut c = self.conn.borrow_mut();
        usable(&c, self.id)?;
        c.send_data(self.id, data, end);
        Ok(())
    }

    /// End the response with trailers, after the data queued before them.
    pub fn send_trailers(&mut self, fields: &[Field<'_>]) -> Result<(), Error> {
        let mut c = self.conn.borrow_mut();
        usable(&c, self.id)?;
        let mut block = Vec::with_capacity(32);
        c.start_block(&mut block);
        for (name, value) in fields {
            hpack::encode_field(name.as_bytes(), value, &mut block);
        }
        c.send_trailers(self.id, block);
        Ok(())
    }

    /// Ready once the client resets the stream (or the connection goes).
    pub fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<Reason> {
        poll_reset(&self.conn, self.id, cx)
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        drop_sender(&self.conn, self.id);
    }
}

/// Err if nothing more may be sent on the stream.
fn usable(c: &Conn, id: u32) -> Result<(), Error> {
    if let Some(why) = &c.closed {
        return Err(Error(why.clone()));
    }
    match c.streams.get(&id) {
        Some(s) if s.end_queued => Err(Error("the response already ended".to_owned())),
        Some(s) => match s.reset {
            Some(reason) => Err(reset_error(reason)),
            None => Ok(()),
        },
        None => Err(Error("the stream is closed".to_owned())),
    }
}

fn poll_reset(conn: &Shared, id: u32, cx: &mut Context<'_>) -> Poll<Reason> {
    let mut c = conn.borrow_mut();
    if c.closed.is_some() {
        return Poll::Ready(Reason::CANCEL);
    }
    match c.streams.get_mut(&id) {
        Some(s) => match s.reset {
            Some(reason) => Poll::Ready(reason),
            None => {
                s.reset_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        },
        None => Poll::Ready(Reason::STREAM_CLOSED),
    }
}

/// A sending handle went: if the response never ended, the client is told
/// with a reset rather than left waiting.
fn drop_sender(conn: &Shared, id: u32) {
    let mut c = conn.borrow_mut();
    let Some(s) = c.streams.get_mut(&id) else {
        return;
    };
    s.senders -= 1;
    if s.senders == 0 && !s.end_queued && s.reset.is_none() && c.closed.is_none() {
        c.reset_stream(id, Reason::CANCEL);
    }
    c.maybe_remove(id);
    c.wake_driver();
}
