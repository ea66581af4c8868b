//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte frame header, the frame
//! types, flags, settings and error codes that the gRPC server and the
//! load generator's client read or write, and helpers that append frames
//! to an output buffer.
//!
//! ```text
//!   +-----------------------------------------------+
//!   |                 Length (24)                   |
//!   +---------------+---------------+---------------+
//!   |   Type (8)    |   Flags (8)   |
//!   +-+-------------+---------------+-------------------------------+
//!   |R|                 Stream Identifier (31)                      |
//!   +=+=============================================================+
//!   |                   Frame Payload (Length bytes)              ...
//!   +---------------------------------------------------------------+
//! ```

/// What a client sends first on an HTTP/2 connection.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length (3 bytes), type, flags, stream id (4 bytes, top bit reserved).
pub const HEADER_BYTES: usize = 9;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Bytes of one setting in a SETTINGS payload: a `u16` id, a `u32` value.
pub const SETTING_BYTES: usize = 6;
/// Bytes of a PING payload.
pub const PING_BYTES: usize = 8;
/// Bytes of the stream dependency and weight a HEADERS frame with the
/// PRIORITY flag carries before its header block.
pub const PRIORITY_BYTES: usize = 5;

/// The flow-control window every stream and the connection start with.
pub const DEFAULT_WINDOW: i64 = 65_535;
/// The frame size every peer must accept, and the largest the client
/// accepts: it advertises no SETTINGS_MAX_FRAME_SIZE.
pub const DEFAULT_MAX_FRAME: usize = 16_384;
/// The HPACK dynamic table size every peer starts with; the client
/// advertises no SETTINGS_HEADER_TABLE_SIZE, so the server's encoder uses
/// at most this.
pub const DEFAULT_HEADER_TABLE_BYTES: usize = 4_096;
/// The largest window the protocol allows.
pub const WINDOW_MAX: i64 = (1 << 31) - 1;
/// The largest frame payload the protocol allows.
pub const FRAME_MAX: usize = (1 << 24) - 1;
/// The largest stream id: ids are 31 bits.
pub const STREAM_ID_MAX: u32 = (1 << 31) - 1;

/// An HTTP/2 error code (RST_STREAM, GOAWAY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason(pub u32);

impl Reason {
    pub const NO_ERROR: Reason = Reason(0x0);
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    pub const CANCEL: Reason = Reason(0x8);
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            n => return write!(f, "error code {n:#x}"),
        };
        f.write_str(name)
    }
}

/// A frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// The header at the start of `b`, which holds at least
    /// [`HEADER_BYTES`].
    pub fn parse(b: &[u8]) -> Head {
        Head {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & STREAM_ID_MAX,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Writes a frame header into `out[..HEADER_BYTES]`. `len` is at most
/// [`FRAME_MAX`]: every caller splits its payloads by the peer's frame
/// size first.
pub fn write_head(out: &mut [u8], len: usize, kind: u8, flags: u8, stream: u32) {
    assert!(len <= FRAME_MAX, "frame payload of {len} bytes");
    out[..3].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
    out[3] = kind;
    out[4] = flags;
    out[5..HEADER_BYTES].copy_from_slice(&(stream & STREAM_ID_MAX).to_be_bytes());
}

/// Appends a frame header.
pub fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let at = out.len();
    out.resize(at + HEADER_BYTES, 0);
    write_head(&mut out[at..], len, kind, flags, stream);
}

/// Appends a frame with its payload.
pub fn put_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    put_head(out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
}

pub fn put_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * SETTING_BYTES, SETTINGS, 0, 0);
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_frame(out, WINDOW_UPDATE, 0, stream, &increment.to_be_bytes());
}

pub fn put_rst_stream(out: &mut Vec<u8>, stream: u32, reason: Reason) {
    put_frame(out, RST_STREAM, 0, stream, &reason.0.to_be_bytes());
}

/// GOAWAY, with `debug` (what went wrong, for the peer's logs).
pub fn put_goaway(out: &mut Vec<u8>, last_stream: u32, reason: Reason, debug: &[u8]) {
    put_head(out, 8 + debug.len(), GOAWAY, 0, 0);
    out.extend_from_slice(&last_stream.to_be_bytes());
    out.extend_from_slice(&reason.0.to_be_bytes());
    out.extend_from_slice(debug);
}

/// Appends a header block as a HEADERS frame (with END_STREAM if
/// `end_stream`) and as many CONTINUATION frames as `max_frame` asks for.
pub fn put_header_block(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    max_frame: usize,
    end_stream: bool,
) {
    let mut chunks = block.chunks(max_frame).peekable();
    let mut kind = HEADERS;
    let end = if end_stream { END_STREAM } else { 0 };
    // An empty block is still one HEADERS frame.
    if chunks.peek().is_none() {
        put_head(out, 0, HEADERS, end | END_HEADERS, stream);
    }
    while let Some(chunk) = chunks.next() {
        let mut flags = if kind == HEADERS { end } else { 0 };
        if chunks.peek().is_none() {
            flags |= END_HEADERS;
        }
        put_frame(out, kind, flags, stream, chunk);
        kind = CONTINUATION;
    }
}

/// The bounds of the content of a DATA or HEADERS payload: without the pad
/// length byte and the padding when PADDED is set, and for HEADERS without
/// the priority fields when PRIORITY is set. `None` if those do not fit.
pub fn content(head: &Head, payload: &[u8]) -> Option<(usize, usize)> {
    let (mut start, mut end) = (0, payload.len());
    if head.has(PADDED) {
        let pad = usize::from(*payload.first()?);
        start = 1;
        end = end.checked_sub(pad)?;
    }
    if head.kind == HEADERS && head.has(PRIORITY_FLAG) {
        start += PRIORITY_BYTES;
    }
    (start <= end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_header_round_trips() {
        let mut out = Vec::new();
        put_head(
            &mut out,
            0x01_02_03,
            HEADERS,
            END_HEADERS | END_STREAM,
            0x8000_0007,
        );
        assert_eq!(out, [1, 2, 3, 1, 5, 0, 0, 0, 7], "reserved bit cleared");
        let head = Head::parse(&out);
        assert_eq!(
            head,
            Head {
                len: 0x01_02_03,
                kind: HEADERS,
                flags: END_HEADERS | END_STREAM,
                stream: 7
            }
        );
        assert!(head.has(END_STREAM) && !head.has(PADDED));
    }

    #[test]
    fn padding_and_priority_are_stripped_and_must_fit() {
        let data = |flags, len| Head {
            len,
            kind: DATA,
            flags,
            stream: 1,
        };
        assert_eq!(content(&data(0, 3), b"abc"), Some((0, 3)));
        assert_eq!(content(&data(PADDED, 4), &[2, b'a', 0, 0]), Some((1, 2)));
        assert_eq!(content(&data(PADDED, 4), &[3, b'a', 0, 0]), Some((1, 1)));
        assert_eq!(content(&data(PADDED, 4), &[4, 0, 0, 0]), None);
        assert_eq!(content(&data(PADDED, 0), &[]), None);
        let headers = Head {
            len: 8,
            kind: HEADERS,
            flags: PADDED | PRIORITY_FLAG,
            stream: 1,
        };
        assert_eq!(
            content(&headers, &[1, 0, 0, 0, 0, 9, 0x88, 0]),
            Some((6, 7))
        );
        assert_eq!(content(&headers, &[1, 0, 0, 0, 0]), None);
    }

    #[test]
    fn a_large_header_block_continues_in_continuation_frames() {
        let block: Vec<u8> = (0..10).collect();
        let mut out = Vec::new();
        put_header_block(&mut out, 3, &block, 4, true);
        let heads: Vec<Head> = [0, 13, 26]
            .iter()
            .map(|&at| Head::parse(&out[at..]))
            .collect();
        assert_eq!(out.len(), 3 * HEADER_BYTES + 10);
        assert_eq!(
            heads
                .iter()
                .map(|h| (h.kind, h.flags, h.len))
                .collect::<Vec<_>>(),
            [
                (HEADERS, END_STREAM, 4),
                (CONTINUATION, 0, 4),
                (CONTINUATION, END_HEADERS, 2)
            ]
        );
    }
}
