//! One HTTP/2 connection's state: its streams, both directions' flow
//! control, and the bytes waiting for the socket. The driver ([`super`])
//! feeds it the frames it reads and writes out what it queues; the call
//! tasks reach it through their stream handles. Everything runs on one
//! executor, so the state sits in a `RefCell` and nothing here waits.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;

use super::frame::{self, Head, Reason};
use super::Fields;
use crate::limits;
use crate::server::id_map::IdMap;
use cairn_wire::hpack;

/// A connection error: the GOAWAY's code and what went wrong.
#[derive(Debug)]
pub struct ConnError {
    pub reason: Reason,
    pub why: &'static str,
}

fn fail<T>(reason: Reason, why: &'static str) -> Result<T, ConnError> {
    Err(ConnError { reason, why })
}

/// A request whose headers arrived: the driver hands it to the server.
pub struct NewStream {
    pub id: u32,
    pub fields: Fields,
}

pub struct Stream {
    // ---- what the client sends ----
    /// Data received and not yet taken by the stream's reader.
    pub recv: VecDeque<Bytes>,
    /// The client ended its side (END_STREAM).
    pub recv_ended: bool,
    /// What the client may still send on this stream.
    recv_window: i64,
    /// Bytes taken by the reader and not yet granted back.
    recv_released: i64,
    pub recv_waker: Option<Waker>,
    /// A `RecvStream` holds the stream.
    pub receiver: bool,

    // ---- what the server sends ----
    /// `SendResponse` and `SendStream` handles alive.
    pub senders: u8,
    send_window: i64,
    /// Data handed over and not yet framed into the connection's output.
    queue: VecDeque<Bytes>,
    pub queued_bytes: usize,
    /// The last data carries END_STREAM (no trailers follow).
    end_with_data: bool,
    trailers: Option<Vec<u8>>,
    /// END_STREAM is queued (with data or trailers) or sent.
    pub end_queued: bool,
    pub sent_end: bool,
    pub send_waker: Option<Waker>,

    /// Reset by either side: nothing more is sent or delivered.
    pub reset: Option<Reason>,
    pub reset_waker: Option<Waker>,
    /// Listed in `Conn::blocked`.
    blocked: bool,
}

impl Stream {
    fn new(send_window: i64, recv_ended: bool) -> Stream {
        Stream {
            recv: VecDeque::new(),
            recv_ended,
            recv_window: limits::HTTP2_STREAM_WINDOW_BYTES as i64,
            recv_released: 0,
            recv_waker: None,
            receiver: true,
            senders: 1,
            send_window,
            queue: VecDeque::new(),
            queued_bytes: 0,
            end_with_data: false,
            trailers: None,
            end_queued: false,
            sent_end: false,
            send_waker: None,
            reset: None,
            reset_waker: None,
            blocked: false,
        }
    }

    fn wake_all(&mut self) {
        for w in [
            self.recv_waker.take(),
            self.send_waker.take(),
            self.reset_waker.take(),
        ]
        .into_iter()
        .flatten()
        {
            w.wake();
        }
    }

    /// Bytes the stream's writer may still hand over.
    pub fn send_room(&self) -> usize {
        limits::GRPC_STREAM_SEND_BUFFER_BYTES_MAX.saturating_sub(self.queued_bytes)
    }
}

/// A token bucket of the resets a client may send for streams the server
/// had not answered yet: a burst of [`HTTP2_RESETS_BURST`], refilled at
/// [`HTTP2_RESETS_PER_S`]. A client that cancels now and then (a watch it
/// no longer needs, a deadline) never runs dry; one that opens and resets
/// streams as fast as it can does, at once.
///
/// [`HTTP2_RESETS_BURST`]: limits::HTTP2_RESETS_BURST
/// [`HTTP2_RESETS_PER_S`]: limits::HTTP2_RESETS_PER_S
struct ResetBucket {
    tokens: f64,
    at: Instant,
}

impl ResetBucket {
    fn new() -> ResetBucket {
        ResetBucket {
            tokens: f64::from(limits::HTTP2_RESETS_BURST),
            at: Instant::now(),
        }
    }

    /// Take one reset; false once the bucket is empty.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64()
            * f64::from(limits::HTTP2_RESETS_PER_S);
        self.tokens = (self.tokens + refill).min(f64::from(limits::HTTP2_RESETS_BURST));
        self.at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// A header block still arriving in CONTINUATION frames.
struct Continuing {
    stream: u32,
    end_stream: bool,
    block: Vec<u8>,
}

pub struct Conn {
    pub streams: IdMap<u32, Stream>,
    /// Frames waiting for the socket.
    pub out: Vec<u8>,
    /// The driver, to wake when `out` grows.
    pub driver: Option<Waker>,
    /// Set once the connection is over: every handle fails with it.
    pub closed: Option<String>,
    /// A GOAWAY went out: no new streams, stop reading once `out` drains.
    pub goaway_sent: bool,

    send_window: i64,
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE and SETTINGS_MAX_FRAME_SIZE.
    peer_stream_window: i64,
    peer_frame_max: usize,
    /// Streams with data or trailers waiting for window or for room in `out`.
    blocked: VecDeque<u32>,

    recv_window: i64,
    recv_released: i64,
    /// The highest stream id the client opened.
    last_stream: u32,
    saw_settings: bool,
    continuing: Option<Continuing>,
    decoder: hpack::Decoder,
    /// Our first header block starts with a table size update to 0: the
    /// server's encoder never indexes.
    first_block_sent: bool,
    /// Resets of unanswered streams the client may still send: a client
    /// that opens and resets streams makes the server work for nothing.
    resets: ResetBucket,
}

impl Conn {
    pub fn new() -> Conn {
        let mut out = Vec::with_capacity(4096);
        frame::put_settings(
            &mut out,
            &[
                (
                    frame::SETTINGS_MAX_CONCURRENT_STREAMS,
                    limits::GRPC_STREAMS_PER_CONN_MAX,
                ),
                (
                    frame::SETTINGS_INITIAL_WINDOW_SIZE,
                    limits::HTTP2_STREAM_WINDOW_BYTES,
                ),
                (
                    frame::SETTINGS_MAX_HEADER_LIST_SIZE,
                    limits::HTTP2_HEADER_LIST_BYTES_MAX as u32,
                ),
            ],
        );
        let conn_window = limits::HTTP2_CONN_WINDOW_BYTES as i64;
        frame::put_window_update(&mut out, 0, (conn_window - frame::DEFAULT_WINDOW) as u32);
        Conn {
            streams: IdMap::default(),
            out,
            driver: None,
            closed: None,
            goaway_sent: false,
            send_window: frame::DEFAULT_WINDOW,
            peer_stream_window: frame::DEFAULT_WINDOW,
            peer_frame_max: frame::DEFAULT_MAX_FRAME,
            blocked: VecDeque::new(),
            recv_window: conn_window,
            recv_released: 0,
            last_stream: 0,
            saw_settings: false,
            continuing: None,
            decoder: hpack::Decoder::new(limits::HTTP2_HEADER_TABLE_BYTES),
            first_block_sent: false,
            resets: ResetBucket::new(),
        }
    }

    pub fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }

    /// Whether the reader should take more frames: not while the output
    /// is backed up (a client that sends but never reads gets no further
    /// than this), nor after a GOAWAY.
    pub fn wants_input(&self) -> bool {
        !self.goaway_sent && self.out.len() < limits::HTTP2_OUT_BYTES_HIGH
    }

    /// The connection is over: fail every handle.
    pub fn close(&mut self, why: String) {
        if self.closed.is_none() {
            self.closed = Some(why);
        }
        for s in self.streams.values_mut() {
            if s.reset.is_none() && !s.sent_end {
                s.reset = Some(Reason::CANCEL);
            }
            s.wake_all();
        }
    }

    /// End the connection with `err`: GOAWAY, then nothing more is read.
    pub fn go_away(&mut self, err: &ConnError) {
        if !self.goaway_sent {
            frame::put_goaway(
                &mut self.out,
                self.last_stream,
                err.reason,
                err.why.as_bytes(),
            );
            self.goaway_sent = true;
        }
        self.close(format!(
            "HTTP/2 connection error {}: {}",
            err.reason, err.why
        ));
    }

    // ---- frames from the client ----

    /// Handle one frame; requests whose headers are complete go to `new`.
    pub fn on_frame(
        &mut self,
        head: Head,
        payload: &[u8],
        new: &mut Vec<NewStream>,
    ) -> Result<(), ConnError> {
        if !self.saw_settings && head.kind != frame::SETTINGS {
            return fail(Reason::PROTOCOL_ERROR, "the first frame must be SETTINGS");
        }
        if let Some(c) = &self.continuing {
            if head.kind != frame::CONTINUATION || head.stream != c.stream {
                return fail(Reason::PROTOCOL_ERROR, "a header block was interrupted");
            }
        }
        match head.kind {
            frame::DATA => self.on_data(head, payload),
            frame::HEADERS => self.on_headers(head, payload, new),
            frame::CONTINUATION => self.on_continuation(head, payload, new),
            frame::PRIORITY => Ok(()),
            frame::RST_STREAM => self.on_rst_stream(head, payload),
            frame::SETTINGS => self.on_settings(head, payload),
            frame::PUSH_PROMISE => fail(Reason::PROTOCOL_ERROR, "a client sent PUSH_PROMISE"),
            frame::PING => {
                if head.stream != 0 || payload.len() != 8 {
                    return fail(Reason::FRAME_SIZE_ERROR, "a malformed PING");
                }
                if !head.has(frame::ACK) {
                    frame::put_frame(&mut self.out, frame::PING, frame::ACK, 0, payload);
                }
                Ok(())
            }
            // The client is going: its open streams finish, and it closes
            // the socket when it is done with them.
            frame::GOAWAY => Ok(()),
            frame::WINDOW_UPDATE => self.on_window_update(head, payload),
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    fn on_data(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream == 0 {
            return fail(Reason::PROTOCOL_ERROR, "DATA on stream 0");
        }
        let len = payload.len() as i64;
        if len > self.recv_window {
            return fail(
                Reason::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            );
        }
        self.recv_window -= len;
        let Some((start, end)) = frame::content(&head, payload) else {
            return fail(Reason::PROTOCOL_ERROR, "DATA padding longer than the frame");
        };
        let data = &payload[start..end];
        let Some(s) = self.streams.get_mut(&head.stream) else {
            if head.stream > self.last_stream || head.stream % 2 == 0 {
                return fail(Reason::PROTOCOL_ERROR, "DATA on an idle stream");
            }
            // A stream already closed here: the bytes only count against
            // the connection's window.
            self.release(None, payload.len());
            return Ok(());
        };
        if s.recv_ended || s.reset.is_some() {
            let closed = s.reset.is_none();
            self.release(None, payload.len());
            if closed {
                self.reset_stream(head.stream, Reason::STREAM_CLOSED);
            }
            return Ok(());
        }
        if len > s.recv_window {
            self.release(None, payload.len());
            self.reset_stream(head.stream, Reason::FLOW_CONTROL_ERROR);
            return Ok(());
        }
        s.recv_window -= len;
        s.recv_ended = head.has(frame::END_STREAM);
        let deliver = s.receiver && !data.is_empty();
        if deliver {
            s.recv.push_back(Bytes::copy_from_slice(data));
        }
        if let Some(w) = s.recv_waker.take() {
            w.wake();
        }
        // Padding, and data nobody will read, are given back at once.
        let kept = if deliver { data.len() } else { 0 };
        self.release(Some(head.stream), payload.len() - kept);
        Ok(())
    }

    fn on_headers(
        &mut self,
        head: Head,
        payload: &[u8],
        new: &mut Vec<NewStream>,
    ) -> Result<(), ConnError> {
        if head.stream == 0 {
            return fail(Reason::PROTOCOL_ERROR, "HEADERS on stream 0");
        }
        let Some((start, end)) = frame::content(&head, payload) else {
            return fail(
                Reason::PROTOCOL_ERROR,
                "HEADERS padding or priority longer than the frame",
            );
        };
        let block = &payload[start..end];
        let end_stream = head.has(frame::END_STREAM);
        if head.has(frame::END_HEADERS) {
            return self.on_block(head.stream, end_stream, block, new);
        }
        self.continuing = Some(Continuing {
            stream: head.stream,
            end_stream,
            block: block.to_vec(),
        });
        Ok(())
    }

    fn on_continuation(
        &mut self,
        head: Head,
        payload: &[u8],
        new: &mut Vec<NewStream>,
    ) -> Result<(), ConnError> {
        let Some(c) = self.continuing.as_mut() else {
            return fail(Reason::PROTOCOL_ERROR, "CONTINUATION without HEADERS");
        };
        if c.block.len() + payload.len() > limits::HTTP2_HEADER_BLOCK_BYTES_MAX {
            return fail(Reason::ENHANCE_YOUR_CALM, "header block too large");
        }
        c.block.extend_from_slice(payload);
        if !head.has(frame::END_HEADERS) {
            return Ok(());
        }
        let Some(c) = self.continuing.take() else {
            unreachable!("checked above");
        };
        self.on_block(c.stream, c.end_stream, &c.block, new)
    }

    /// A whole header block: a new request, or the client's trailers.
    fn on_block(
        &mut self,
        id: u32,
        end_stream: bool,
        block: &[u8],
        new: &mut Vec<NewStream>,
    ) -> Result<(), ConnError> {
        // Decoded even when the stream is refused: the decoder's table must
        // follow the client's encoder.
        let mut fields = Fields::default();
        let mut upper = false;
        let decoded =
            self.decoder
                .decode(block, limits::HTTP2_HEADER_LIST_BYTES_MAX, |name, value| {
                    upper |= name.iter().any(u8::is_ascii_uppercase);
                    fields.push(name, value);
                });
        let too_large = match decoded {
            Ok(()) => false,
            Err(hpack::DecodeError::HeaderListTooLarge) => true,
            Err(hpack::DecodeError::Compression(why)) => {
                return fail(Reason::COMPRESSION_ERROR, why)
            }
        };
        if let Some(s) = self.streams.get_mut(&id) {
            // Trailers from the client: they must end its side.
            if !end_stream || s.recv_ended {
                self.reset_stream(id, Reason::PROTOCOL_ERROR);
                return Ok(());
            }
            s.recv_ended = true;
            if let Some(w) = s.recv_waker.take() {
                w.wake();
            }
            return Ok(());
        }
        if id % 2 == 0 {
            return fail(Reason::PROTOCOL_ERROR, "HEADERS on an even stream");
        }
        if id <= self.last_stream {
            // A closed stream. Trailers the client sent before it saw this
            // server reset or end the stream are ignored (RFC 9113 §5.1);
            // anything else reuses an old stream id.
            if end_stream {
                return Ok(());
            }
            return fail(Reason::PROTOCOL_ERROR, "HEADERS on a closed stream");
        }
        self.last_stream = id;
        if self.goaway_sent {
            return Ok(());
        }
        if self.streams.len() >= limits::GRPC_STREAMS_PER_CONN_MAX as usize {
            frame::put_rst_stream(&mut self.out, id, Reason::REFUSED_STREAM);
            return Ok(());
        }
        if too_large {
            // 431, as an HTTP server answers a head over its limit.
            let mut block = Vec::new();
            self.start_block(&mut block);
            hpack::encode_status(431, &mut block);
            self.put_headers(id, &block, true);
            return Ok(());
        }
        if upper || fields.get(":method").is_none() || fields.get(":path").is_none() {
            frame::put_rst_stream(&mut self.out, id, Reason::PROTOCOL_ERROR);
            return Ok(());
        }
        self.streams
            .insert(id, Stream::new(self.peer_stream_window, end_stream));
        new.push(NewStream { id, fields });
        Ok(())
    }

    fn on_rst_stream(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream == 0 {
            return fail(Reason::PROTOCOL_ERROR, "RST_STREAM on stream 0");
        }
        let Ok(code) = <[u8; 4]>::try_from(payload) else {
            return fail(Reason::FRAME_SIZE_ERROR, "a malformed RST_STREAM");
        };
        if head.stream > self.last_stream {
            return fail(Reason::PROTOCOL_ERROR, "RST_STREAM on an idle stream");
        }
        let Some(s) = self.streams.get_mut(&head.stream) else {
            return Ok(());
        };
        let mut calm = true;
        if s.reset.is_none() {
            if !s.sent_end {
                calm = self.resets.take(Instant::now());
            }
            s.reset = Some(Reason(u32::from_be_bytes(code)));
        }
        self.drop_stream_data(head.stream);
        if !calm {
            return fail(
                Reason::ENHANCE_YOUR_CALM,
                "too many streams reset unanswered",
            );
        }
        Ok(())
    }

    fn on_settings(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return fail(Reason::PROTOCOL_ERROR, "SETTINGS on a stream");
        }
        if head.has(frame::ACK) {
            if !payload.is_empty() {
                return fail(Reason::FRAME_SIZE_ERROR, "a SETTINGS ack with a payload");
            }
            return Ok(());
        }
        if payload.len() % 6 != 0 {
            return fail(Reason::FRAME_SIZE_ERROR, "a malformed SETTINGS");
        }
        self.saw_settings = true;
        for s in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                frame::SETTINGS_ENABLE_PUSH if value > 1 => {
                    return fail(Reason::PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH above 1");
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > frame::WINDOW_MAX {
                        return fail(Reason::FLOW_CONTROL_ERROR, "initial window too large");
                    }
                    let delta = value - self.peer_stream_window;
                    self.peer_stream_window = value;
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                        if s.send_window > frame::WINDOW_MAX {
                            return fail(Reason::FLOW_CONTROL_ERROR, "a stream window overflowed");
                        }
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    let value = value as usize;
                    if !(frame::DEFAULT_MAX_FRAME..=frame::FRAME_MAX).contains(&value) {
                        return fail(
                            Reason::PROTOCOL_ERROR,
                            "SETTINGS_MAX_FRAME_SIZE out of range",
                        );
                    }
                    self.peer_frame_max = value;
                }
                // The encoder never uses its table, so the table size the
                // client allows does not matter; the other settings bind
                // the client, not this server.
                _ => {}
            }
        }
        frame::put_frame(&mut self.out, frame::SETTINGS, frame::ACK, 0, &[]);
        self.flush_blocked();
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        let Ok(inc) = <[u8; 4]>::try_from(payload) else {
            return fail(Reason::FRAME_SIZE_ERROR, "a malformed WINDOW_UPDATE");
        };
        let inc = i64::from(u32::from_be_bytes(inc) & 0x7fff_ffff);
        if head.stream == 0 {
            if inc == 0 {
                return fail(Reason::PROTOCOL_ERROR, "a WINDOW_UPDATE of 0");
            }
            self.send_window += inc;
            if self.send_window > frame::WINDOW_MAX {
                return fail(
                    Reason::FLOW_CONTROL_ERROR,
                    "the connection window overflowed",
                );
            }
        } else if let Some(s) = self.streams.get_mut(&head.stream) {
            s.send_window += inc;
            if inc == 0 {
                self.reset_stream(head.stream, Reason::PROTOCOL_ERROR);
            } else if s.send_window > frame::WINDOW_MAX {
                self.reset_stream(head.stream, Reason::FLOW_CONTROL_ERROR);
            }
        } else if head.stream > self.last_stream {
            return fail(Reason::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
        }
        self.flush_blocked();
        Ok(())
    }

    // ---- the receiving side's flow control ----

    /// `n` bytes of the client's data are consumed (read, or thrown away):
    /// grant them back once half a window's worth has gathered.
    pub fn release(&mut self, stream: Option<u32>, n: usize) {
        if n == 0 {
            return;
        }
        let n = n as i64;
        self.recv_released += n;
        if self.recv_released >= limits::HTTP2_CONN_WINDOW_BYTES as i64 / 2 {
            frame::put_window_update(&mut self.out, 0, self.recv_released as u32);
            self.recv_window += self.recv_released;
            self.recv_released = 0;
        }
        let Some(s) = stream.and_then(|id| self.streams.get_mut(&id).map(|s| (id, s))) else {
            return;
        };
        let (id, s) = s;
        if s.recv_ended || s.reset.is_some() {
            return;
        }
        s.recv_released += n;
        if s.recv_released >= limits::HTTP2_STREAM_WINDOW_BYTES as i64 / 2 {
            frame::put_window_update(&mut self.out, id, s.recv_released as u32);
            s.recv_window += s.recv_released;
            s.recv_released = 0;
        }
    }

    /// Throw away what a stream received and will never be read.
    fn drop_stream_data(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let unread: usize = s.recv.drain(..).map(|b| b.len()).sum();
        s.queue.clear();
        s.queued_bytes = 0;
        s.trailers = None;
        s.wake_all();
        self.release(None, unread);
        self.maybe_remove(id);
    }

    // ---- the sending side ----

    /// Reset a stream from this side.
    pub fn reset_stream(&mut self, id: u32, reason: Reason) {
        if let Some(s) = self.streams.get_mut(&id) {
            if s.reset.is_some() || s.sent_end {
                return;
            }
            s.reset = Some(reason);
        }
        frame::put_rst_stream(&mut self.out, id, reason);
        self.drop_stream_data(id);
    }

    /// Forget a stream nobody holds once it is closed.
    pub fn maybe_remove(&mut self, id: u32) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        if s.senders == 0 && !s.receiver && (s.sent_end || s.reset.is_some()) {
            if let Some(s) = self.streams.remove(&id) {
                let unread: usize = s.recv.iter().map(|b| b.len()).sum();
                self.release(None, unread);
            }
        }
    }

    /// Start a header block: the first of the connection says the
    /// server's table is empty and stays so.
    pub fn start_block(&mut self, block: &mut Vec<u8>) {
        if !self.first_block_sent {
            hpack::encode_table_size_zero(block);
            self.first_block_sent = true;
        }
    }

    /// HEADERS (and CONTINUATION when the block is larger than a frame).
    pub fn put_headers(&mut self, id: u32, block: &[u8], end_stream: bool) {
        frame::put_header_block(&mut self.out, id, block, self.peer_frame_max, end_stream);
    }

    /// A response's header block; with `end`, the whole response.
    pub fn respond(&mut self, id: u32, block: &[u8], end: bool) {
        self.put_headers(id, block, end);
        if end {
            if let Some(s) = self.streams.get_mut(&id) {
                s.end_queued = true;
            }
            self.ended(id);
        }
        self.wake_driver();
    }

    /// The response's END_STREAM went out: the client's side, if still
    /// open, is told to stop (RFC 9113 §8.1).
    fn ended(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.sent_end = true;
        if !s.recv_ended && s.reset.is_none() {
            frame::put_rst_stream(&mut self.out, id, Reason::NO_ERROR);
            s.recv_ended = true;
            let unread: usize = s.recv.drain(..).map(|b| b.len()).sum();
            if let Some(w) = s.recv_waker.take() {
                w.wake();
            }
            self.release(None, unread);
        }
        self.maybe_remove(id);
    }

    /// Queue data (and END_STREAM with it, if `end`).
    pub fn send_data(&mut self, id: u32, data: Bytes, end: bool) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.queued_bytes += data.len();
        if !data.is_empty() {
            s.queue.push_back(data);
        }
        if end {
            s.end_with_data = true;
            s.end_queued = true;
        }
        self.flush_stream(id);
    }

    /// Queue trailers: they go once the data before them has.
    pub fn send_trailers(&mut self, id: u32, block: Vec<u8>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.trailers = Some(block);
        s.end_queued = true;
        self.flush_stream(id);
    }

    /// Frame what a stream's and the connection's windows allow, while
    /// the output has room; what is left waits in the blocked list.
    fn flush_stream(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let before = s.queued_bytes;
        let mut end_framed = false;
        loop {
            let single = s.queue.len() == 1;
            let Some(front) = s.queue.front_mut() else {
                break;
            };
            if self.out.len() >= limits::HTTP2_OUT_BYTES_HIGH {
                break;
            }
            let n = (front.len() as i64)
                .min(s.send_window)
                .min(self.send_window)
                .min(self.peer_frame_max as i64);
            if n <= 0 {
                break;
            }
            let n = n as usize;
            let last = n == front.len() && single;
            end_framed = last && s.end_with_data;
            let flags = if end_framed { frame::END_STREAM } else { 0 };
            frame::put_frame(&mut self.out, frame::DATA, flags, id, &front[..n]);
            let _ = front.split_to(n);
            if front.is_empty() {
                s.queue.pop_front();
            }
            s.send_window -= n as i64;
            self.send_window -= n as i64;
            s.queued_bytes -= n;
        }
        let mut ended = false;
        if s.queue.is_empty() && !s.sent_end {
            if s.end_with_data {
                if !end_framed {
                    frame::put_frame(&mut self.out, frame::DATA, frame::END_STREAM, id, &[]);
                }
                ended = true;
            } else if let Some(block) = s.trailers.take() {
                self.put_headers(id, &block, true);
                ended = true;
            }
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.queued_bytes < before && s.send_room() > 0 {
            if let Some(w) = s.send_waker.take() {
                w.wake();
            }
        }
        let waiting = !s.queue.is_empty() || (s.trailers.is_some() && !ended);
        if waiting && !s.blocked {
            s.blocked = true;
            self.blocked.push_back(id);
        }
        if ended {
            self.ended(id);
        }
        self.wake_driver();
    }

    /// Give the blocked streams another turn (windows opened, or the
    /// output drained).
    pub fn flush_blocked(&mut self) {
        for _ in 0..self.blocked.len() {
            if self.out.len() >= limits::HTTP2_OUT_BYTES_HIGH {
                return;
            }
            let Some(id) = self.blocked.pop_front() else {
                return;
            };
            if let Some(s) = self.streams.get_mut(&id) {
                s.blocked = false;
                self.flush_stream(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn resets_run_dry_in_a_burst_and_refill_with_time() {
        let mut b = ResetBucket::new();
        let t0 = b.at;
        for _ in 0..limits::HTTP2_RESETS_BURST {
            assert!(b.take(t0));
        }
        assert!(!b.take(t0), "the burst is spent");
        // One second refills HTTP2_RESETS_PER_S of them, no more.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..limits::HTTP2_RESETS_PER_S {
            assert!(b.take(t1));
        }
        assert!(!b.take(t1));
        // A long quiet spell refills at most a burst.
        let t2 = t1 + Duration::from_secs(3600);
        let taken = (0..2 * limits::HTTP2_RESETS_BURST)
            .filter(|_| b.take(t2))
            .count();
        assert_eq!(taken, limits::HTTP2_RESETS_BURST as usize);
    }
}
