//! The state of one client connection: its streams, both directions' flow
//! control, and the output the writer task sends. Plain data, no I/O: the
//! calls, the reader and the writer each change it under the connection's
//! lock and act on the [`Signals`] it leaves for them once they let go.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::task::{Poll, Waker};

use bytes::{Buf, Bytes};

use super::frame::{self, Reason, DATA, END_HEADERS, END_STREAM, HEADERS, HEADER_BYTES};
use crate::etcd::grpc::{transport, Answer, Fields};
use crate::limits::{CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES};
use crate::target::OpError;

/// One call's request, framed before the connection's lock is taken: a
/// HEADERS frame with the whole header block, then one DATA frame with
/// the whole body. The frame headers are filled in (stream id, lengths)
/// once the stream is opened; if the peer's frame size or the windows do
/// not let the request go out as it is, it is framed again from its parts.
pub(in crate::etcd) struct Request {
    frames: Vec<u8>,
    /// Where the header block ends and the DATA frame header starts.
    block_end: usize,
}

impl Request {
    /// A request whose header block `block` writes and whose body `body`
    /// writes; `capacity` is a hint of their total size.
    pub(in crate::etcd) fn new(
        capacity: usize,
        block: impl FnOnce(&mut Vec<u8>),
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Request {
        let mut frames = Vec::with_capacity(2 * HEADER_BYTES + capacity);
        frames.resize(HEADER_BYTES, 0);
        block(&mut frames);
        let block_end = frames.len();
        frames.resize(block_end + HEADER_BYTES, 0);
        body(&mut frames);
        Request { frames, block_end }
    }

    fn block_len(&self) -> usize {
        self.block_end - HEADER_BYTES
    }

    fn body_start(&self) -> usize {
        self.block_end + HEADER_BYTES
    }

    fn body_len(&self) -> usize {
        self.frames.len() - self.body_start()
    }
}

/// Why a stream could not be opened.
pub(super) enum Refused {
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS are all in use: wait
    /// for one to close.
    Full,
    /// The connection takes no new calls.
    Closed(OpError),
}

/// What the holder of the lock must do once it has let go of it.
pub(super) struct Signals {
    /// The output went from empty to not: wake the writer.
    pub writer: bool,
    pub slots: Slots,
}

/// Calls waiting for a stream to close, and whom to wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Slots {
    None,
    /// A stream became free: wake one waiting call (which passes the turn
    /// on if more are free).
    One,
    /// The connection is gone: wake every waiting call to fail.
    All,
}

/// What the writer task is to do next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Writer {
    /// Write the bytes it was handed.
    Write,
    /// Nothing to write: wait to be woken.
    Wait,
    /// Every handle is gone: say GOAWAY, shut the socket down and end.
    Close,
    /// The connection failed: end.
    Stop,
}

/// Stream ids hash by a multiplication: they are small odd numbers, which
/// the standard hasher spends SipHash on.
#[derive(Default)]
pub(super) struct StreamIdHasher(u64);

impl Hasher for StreamIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type StreamMap = HashMap<u32, Stream, BuildHasherDefault<StreamIdHasher>>;

/// A call's stream, from its HEADERS until the call takes its outcome.
struct Stream {
    /// The call's task, woken when the outcome is in.
    waker: Option<Waker>,
    state: State,
}

enum State {
    Open(Open),
    /// Closed on the wire; the outcome waits for the call to take it.
    Done(Result<Bytes, OpError>),
}

struct Open {
    answer: Answer,
    /// Request bytes this stream may still send (the server's window).
    send_window: i64,
    /// Request body bytes the windows have held back.
    unsent: Option<Bytes>,
    /// Answer bytes received since the stream's window was last given
    /// back.
    recv_unacked: usize,
}

/// What to tell the server when a stream closes on our side.
enum Reply {
    /// Nothing: the server reset the stream, or the connection is gone.
    None,
    /// RST_STREAM with this code.
    Reset(Reason),
    /// RST_STREAM(CANCEL) unless both sides have ended the stream: the
    /// call is decided but the server is still sending, or its request is
    /// still held back by flow control.
    CancelUnlessEnded { remote_ended: bool },
}

/// Frames waiting for the writer.
#[derive(Default)]
struct Out {
    buf: Vec<u8>,
    /// The buffer went from empty to not since the writer was last told.
    due: bool,
    /// Bytes of frames queued on the client's own account (see
    /// [`crate::limits::HTTP2_CONTROL_OUT_BYTES_MAX`]).
    control_bytes: usize,
}

impl Out {
    fn buf(&mut self) -> &mut Vec<u8> {
        if self.buf.is_empty() {
            self.due = true;
        }
        &mut self.buf
    }

    fn control(&mut self, put: impl FnOnce(&mut Vec<u8>)) {
        let before = self.buf.len();
        put(self.buf());
        self.control_bytes += self.buf.len() - before;
    }
}

pub(super) struct Conn {
    streams: StreamMap,
    next_stream_id: u32,
    /// Streams open on the wire, counted against the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    open: usize,
    peer_max_concurrent: usize,
    peer_initial_window: i64,
    peer_max_frame: usize,
    /// Request bytes the connection may still send (the server's window).
    send_window: i64,
    /// Streams whose request waits for window, oldest first. Later calls
    /// queue behind them, so a large request is not starved by small ones.
    blocked: VecDeque<u32>,
    /// Answer bytes received since the connection's window was last given
    /// back.
    recv_unacked: usize,
    out: Out,
    /// Why new calls are refused, once they are (GOAWAY, a failure).
    refused: Option<OpError>,
    /// The connection failed: the reader and writer end.
    dead: bool,
    /// Every handle is gone: the writer closes the connection.
    closing: bool,
    /// Calls whose outcome came in, to be woken.
    wakers: Vec<Waker>,
    slots: Slots,
}

impl Conn {
    /// A connection that has sent its preface and settings and received
    /// nothing yet.
    pub(super) fn new() -> Conn {
        Conn {
            streams: StreamMap::default(),
            next_stream_id: 1,
            open: 0,
            // No limit until the server's SETTINGS say one.
            peer_max_concurrent: usize::MAX,
            peer_initial_window: frame::DEFAULT_WINDOW,
            peer_max_frame: frame::DEFAULT_MAX_FRAME,
            send_window: frame::DEFAULT_WINDOW,
            blocked: VecDeque::new(),
            recv_unacked: 0,
            out: Out::default(),
            refused: None,
            dead: false,
            closing: false,
            wakers: Vec::new(),
            slots: Slots::None,
        }
    }

    /// Hands over what the lock holder must do: the wakers go into
    /// `wakers` (empty on entry).
    pub(super) fn take_signals(&mut self, wakers: &mut Vec<Waker>) -> Signals {
        if !self.wakers.is_empty() {
            std::mem::swap(&mut self.wakers, wakers);
        }
        Signals {
            writer: std::mem::take(&mut self.out.due),
            slots: std::mem::replace(&mut self.slots, Slots::None),
        }
    }

    /// Opens a stream for `request` and queues as much of it as the
    /// windows allow; the request's bytes are taken only on success.
    /// `waker`, when given, is woken once the outcome is in.
    pub(super) fn open_stream(
        &mut self,
        request: &mut Request,
        waker: Option<&Waker>,
    ) -> Result<u32, Refused> {
        if let Some(error) = &self.refused {
            return Err(Refused::Closed(error.clone()));
        }
        if self.open >= self.peer_max_concurrent {
            return Err(Refused::Full);
        }
        let id = self.next_stream_id;
        if id > frame::STREAM_ID_MAX {
            let error = transport("the connection has used up its stream ids");
            self.refused = Some(error.clone());
            return Err(Refused::Closed(error));
        }
        // At most 2^31 + 1: no overflow.
        self.next_stream_id += 2;
        let block_len = request.block_len();
        let body_len = request.body_len();
        let mut open = Open {
            answer: Answer::default(),
            send_window: self.peer_initial_window,
            unsent: None,
            recv_unacked: 0,
        };
        // The usual case: the whole request goes out as framed, behind the
        // requests already queued.
        let as_framed = self.blocked.is_empty()
            && block_len <= self.peer_max_frame
            && body_len <= self.peer_max_frame
            && body_len as i64 <= self.send_window
            && body_len as i64 <= open.send_window;
        if as_framed {
            let frames = &mut request.frames;
            frame::write_head(frames, block_len, HEADERS, END_HEADERS, id);
            frame::write_head(
                &mut frames[request.block_end..],
                body_len,
                DATA,
                END_STREAM,
                id,
            );
            self.out.buf().extend_from_slice(frames);
            self.send_window -= body_len as i64;
            open.send_window -= body_len as i64;
        } else {
            let frames = Bytes::from(std::mem::take(&mut request.frames));
            frame::put_header_block(
                self.out.buf(),
                id,
                &frames[HEADER_BYTES..request.block_end],
                self.peer_max_frame,
                false,
            );
            open.unsent = Some(frames.slice(request.body_start()..));
            self.blocked.push_back(id);
        }
        self.streams.insert(
            id,
            Stream {
                waker: waker.cloned(),
                state: State::Open(open),
            },
        );
        self.open += 1;
        if !as_framed {
            self.send_blocked();
        }
        Ok(id)
    }

    /// Whether another stream may open now.
    pub(super) fn has_free_stream(&self) -> bool {
        self.refused.is_none() && self.open < self.peer_max_concurrent
    }

    /// The outcome of stream `id` if it is in (the call then forgets the
    /// stream), else registers `waker` to be woken when it is.
    pub(super) fn poll_outcome(&mut self, id: u32, waker: &Waker) -> Poll<Result<Bytes, OpError>> {
        let Some(stream) = self.streams.get_mut(&id) else {
            unreachable!("stream {id} is forgotten only by its call");
        };
        if let State::Open(_) = stream.state {
            match &stream.waker {
                Some(known) if known.will_wake(waker) => {}
                _ => stream.waker = Some(waker.clone()),
            }
            return Poll::Pending;
        }
        match self.streams.remove(&id).map(|stream| stream.state) {
            Some(State::Done(outcome)) => Poll::Ready(outcome),
            _ => unreachable!("stream {id} was done"),
        }
    }

    /// The call of stream `id` was dropped before taking its outcome.
    pub(super) fn cancel(&mut self, id: u32) {
        if let Some(Stream {
            state: State::Open(open),
            ..
        }) = self.streams.remove(&id)
        {
            if open.unsent.is_some() {
                self.blocked.retain(|&b| b != id);
            }
            if !self.dead {
                self.out
                    .control(|out| frame::put_rst_stream(out, id, Reason::CANCEL));
            }
            self.stream_closed();
        }
    }

    /// Every handle to the connection is gone.
    pub(super) fn close(&mut self) {
        self.closing = true;
        self.refused
            .get_or_insert_with(|| transport("the connection was closed"));
        self.out.due = true;
    }

    /// Hands the writer what to write (in `buf`, which it hands back
    /// empty), or tells it to wait or end.
    pub(super) fn take_output(&mut self, buf: &mut Vec<u8>) -> Writer {
        if self.dead {
            return Writer::Stop;
        }
        std::mem::swap(&mut self.out.buf, buf);
        self.out.control_bytes = 0;
        self.out.due = false;
        match (buf.is_empty(), self.closing) {
            (false, _) => Writer::Write,
            (true, true) => Writer::Close,
            (true, false) => Writer::Wait,
        }
    }

    /// Bytes of control frames waiting for the writer.
    pub(super) fn control_bytes(&self) -> usize {
        self.out.control_bytes
    }

    /// The connection failed (`error` says how): every open call fails
    /// with it and no new call is taken.
    pub(super) fn fail(&mut self, error: OpError) {
        if self.dead {
            return;
        }
        self.dead = true;
        self.refused.get_or_insert_with(|| error.clone());
        let open: Vec<u32> = self.open_ids(|_| true);
        for id in open {
            self.finish(id, Err(error.clone()), Reply::None);
        }
        self.blocked.clear();
        self.slots = Slots::All;
    }

    /// A response HEADERS (or trailers) block for stream `id`.
    pub(super) fn on_headers(&mut self, id: u32, fields: &Fields, end_stream: bool) {
        let Some(Stream {
            state: State::Open(open),
            ..
        }) = self.streams.get_mut(&id)
        else {
            return;
        };
        let outcome = open.answer.headers(fields, end_stream);
        assert!(
            outcome.is_some() || !end_stream,
            "every end of stream decides the call"
        );
        if let Some(outcome) = outcome {
            let reply = Reply::CancelUnlessEnded {
                remote_ended: end_stream,
            };
            self.finish(id, outcome, reply);
        }
    }

    /// A header block for stream `id` that could not be used (too large).
    pub(super) fn on_bad_headers(&mut self, id: u32, error: OpError, end_stream: bool) {
        let reply = Reply::CancelUnlessEnded {
            remote_ended: end_stream,
        };
        self.finish(id, Err(error), reply);
    }

    /// A DATA frame for stream `id`: `chunk` is its content, `flow_len`
    /// its whole payload (padding counts against the windows too).
    pub(super) fn on_data(&mut self, id: u32, chunk: Bytes, flow_len: usize, end_stream: bool) {
        // The connection's window is given back for every frame, whether
        // its stream is still wanted or not, in increments of half the
        // window, as the bytes are taken off the socket.
        self.recv_unacked += flow_len;
        if self.recv_unacked >= CONNECTION_WINDOW_BYTES as usize / 2 {
            let increment = window_increment(self.recv_unacked);
            self.recv_unacked -= increment as usize;
            self.out
                .control(|out| frame::put_window_update(out, 0, increment));
        }
        let Some(Stream {
            state: State::Open(open),
            ..
        }) = self.streams.get_mut(&id)
        else {
            return;
        };
        open.recv_unacked += flow_len;
        let outcome = if chunk.is_empty() && !end_stream {
            None
        } else {
            open.answer.data(chunk, end_stream)
        };
        assert!(
            outcome.is_some() || !end_stream,
            "every end of stream decides the call"
        );
        match outcome {
            Some(outcome) => {
                let reply = Reply::CancelUnlessEnded {
                    remote_ended: end_stream,
                };
                self.finish(id, outcome, reply);
            }
            None if open.recv_unacked >= STREAM_WINDOW_BYTES as usize / 2 => {
                let increment = window_increment(open.recv_unacked);
                open.recv_unacked -= increment as usize;
                self.out
                    .control(|out| frame::put_window_update(out, id, increment));
            }
            None => {}
        }
    }

    /// The server reset stream `id`.
    pub(super) fn on_reset(&mut self, id: u32, reason: Reason) {
        let error = transport(format!("stream reset: {reason}"));
        self.finish(id, Err(error), Reply::None);
    }

    /// A PING from the server: answered at once.
    pub(super) fn on_ping(&mut self, payload: &[u8]) {
        self.out.control(|out| {
            frame::put_frame(out, frame::PING, frame::ACK, 0, payload);
        });
    }

    /// The server's SETTINGS (`payload` holds whole settings): applied,
    /// then acknowledged.
    pub(super) fn on_settings(&mut self, payload: &[u8]) -> Result<(), OpError> {
        for setting in payload.chunks_exact(frame::SETTING_BYTES) {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
            match id {
                frame::SETTINGS_MAX_CONCURRENT_STREAMS => {
                    let max = value as usize;
                    if max > self.peer_max_concurrent && self.open >= self.peer_max_concurrent {
                        self.slots = self.slots.max(Slots::One);
                    }
                    self.peer_max_concurrent = max;
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let window = i64::from(value);
                    if window > frame::WINDOW_MAX {
                        return Err(transport(format!(
                            "{}: SETTINGS_INITIAL_WINDOW_SIZE of {value}",
                            Reason::FLOW_CONTROL_ERROR
                        )));
                    }
                    // RFC 9113 §6.9.2: the change applies to every open
                    // stream's window, which may go below zero.
                    let delta = window - self.peer_initial_window;
                    self.peer_initial_window = window;
                    for stream in self.streams.values_mut() {
                        if let State::Open(open) = &mut stream.state {
                            open.send_window += delta;
                            if open.send_window > frame::WINDOW_MAX {
                                return Err(transport(format!(
                                    "{}: a stream's window over 2^31-1",
                                    Reason::FLOW_CONTROL_ERROR
                                )));
                            }
                        }
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    let size = value as usize;
                    if !(frame::DEFAULT_MAX_FRAME..=frame::FRAME_MAX).contains(&size) {
                        return Err(transport(format!(
                            "{}: SETTINGS_MAX_FRAME_SIZE of {value}",
                            Reason::PROTOCOL_ERROR
                        )));
                    }
                    self.peer_max_frame = size;
                }
                // The header table size does not matter: the client's
                // encoder never indexes. Push is off; the rest is advice.
                _ => {}
            }
        }
        self.out
            .control(|out| frame::put_frame(out, frame::SETTINGS, frame::ACK, 0, &[]));
        self.send_blocked();
        Ok(())
    }

    /// A WINDOW_UPDATE: more request bytes may go.
    pub(super) fn on_window_update(&mut self, id: u32, increment: u32) -> Result<(), OpError> {
        let increment = i64::from(increment);
        if id == 0 {
            if increment == 0 {
                return Err(transport(format!(
                    "{}: connection WINDOW_UPDATE of 0",
                    Reason::PROTOCOL_ERROR
                )));
            }
            self.send_window += increment;
            if self.send_window > frame::WINDOW_MAX {
                return Err(transport(format!(
                    "{}: the connection's window over 2^31-1",
                    Reason::FLOW_CONTROL_ERROR
                )));
            }
        } else {
            let Some(Stream {
                state: State::Open(open),
                ..
            }) = self.streams.get_mut(&id)
            else {
                return Ok(());
            };
            open.send_window += increment;
            let bad = match (increment, open.send_window > frame::WINDOW_MAX) {
                (0, _) => Some(Reason::PROTOCOL_ERROR),
                (_, true) => Some(Reason::FLOW_CONTROL_ERROR),
                _ => None,
            };
            if let Some(reason) = bad {
                let error = transport(format!("{reason}: stream WINDOW_UPDATE"));
                self.finish(id, Err(error), Reply::Reset(reason));
            }
        }
        self.send_blocked();
        Ok(())
    }

    /// A GOAWAY: streams above `last_stream` were not and will not be
    /// processed and fail; the rest go on; no new call is taken.
    pub(super) fn on_goaway(&mut self, last_stream: u32, reason: Reason) {
        let error = transport(format!("the server is going away ({reason})"));
        self.refused.get_or_insert_with(|| error.clone());
        let refused = self.open_ids(|id| id > last_stream);
        for id in refused {
            self.finish(id, Err(error.clone()), Reply::None);
        }
    }

    fn open_ids(&self, pick: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .streams
            .iter()
            .filter(|(&id, stream)| matches!(stream.state, State::Open(_)) && pick(id))
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Sends what the windows now allow of the held-back requests, oldest
    /// first.
    fn send_blocked(&mut self) {
        let mut i = 0;
        while i < self.blocked.len() && self.send_window > 0 {
            let id = self.blocked[i];
            let sent = match self.streams.get_mut(&id) {
                Some(Stream {
                    state: State::Open(open),
                    ..
                }) => send_data(
                    id,
                    open,
                    &mut self.send_window,
                    self.peer_max_frame,
                    &mut self.out,
                ),
                _ => true,
            };
            if sent {
                self.blocked.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Closes stream `id` with `outcome` if it is open, telling the server
    /// what `reply` says.
    fn finish(&mut self, id: u32, outcome: Result<Bytes, OpError>, reply: Reply) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let State::Open(open) = &stream.state else {
            return;
        };
        let unsent = open.unsent.is_some();
        stream.state = State::Done(outcome);
        if let Some(waker) = stream.waker.take() {
            self.wakers.push(waker);
        }
        if unsent {
            self.blocked.retain(|&b| b != id);
        }
        let reset = match reply {
            Reply::None => None,
            Reply::Reset(reason) => Some(reason),
            Reply::CancelUnlessEnded { remote_ended } => {
                (!remote_ended || unsent).then_some(Reason::CANCEL)
            }
        };
        if let Some(reason) = reset {
            self.out
                .control(|out| frame::put_rst_stream(out, id, reason));
        }
        self.stream_closed();
    }

    fn stream_closed(&mut self) {
        assert!(self.open > 0, "a stream closes once");
        if self.open == self.peer_max_concurrent {
            self.slots = self.slots.max(Slots::One);
        }
        self.open -= 1;
    }
}

/// Sends as much of `open`'s held-back request as the windows and the
/// frame size allow; true once all of it is sent.
fn send_data(
    id: u32,
    open: &mut Open,
    conn_window: &mut i64,
    max_frame: usize,
    out: &mut Out,
) -> bool {
    let Some(unsent) = &mut open.unsent else {
        return true;
    };
    loop {
        let window = open.send_window.min(*conn_window).max(0) as usize;
        let len = unsent.len().min(window).min(max_frame);
        let last = len == unsent.len();
        if len == 0 && !last {
            return false;
        }
        let flags = if last { END_STREAM } else { 0 };
        frame::put_frame(out.buf(), DATA, flags, id, &unsent[..len]);
        unsent.advance(len);
        open.send_window -= len as i64;
        *conn_window -= len as i64;
        if last {
            open.unsent = None;
            return true;
        }
    }
}

/// A WINDOW_UPDATE increment for `bytes` received: at most what one frame
/// may carry (a server that overran the window is not owed more).
fn window_increment(bytes: usize) -> u32 {
    bytes.min(frame::WINDOW_MAX as usize) as u32
}
