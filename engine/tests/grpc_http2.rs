//! The HTTP/2 layer under cairn's gRPC port (`engine/src/server/http2`),
//! driven frame by frame against the real `cairn` binary: a tiny raw
//! HTTP/2 client (its own frames, a minimal HPACK encoder and decoder)
//! checks the handshake, unary calls, flow control in both windows, stream
//! and connection errors, rapid reset, header limits and late half-close.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_wire::etcdpb as pb;
use common::Server;
use prost::Message;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const INITIAL_WINDOW_SIZE: u16 = 0x4;
const MAX_FRAME_SIZE: u16 = 0x5;
const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const FRAME_SIZE_ERROR: u32 = 0x6;
const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;
const COMPRESSION_ERROR: u32 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const FRAME_MAX: usize = 16_384;
/// Longest wait for a frame the server owes; how long "nothing more" lasts.
const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY.
    fn code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }
}

fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn settings(list: &[(u16, u32)]) -> Vec<u8> {
    let body: Vec<u8> = list
        .iter()
        .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
        .collect();
    frame_bytes(SETTINGS, 0, 0, &body)
}

// ---- HPACK: what requests need, and what the server's encoder emits ----

fn hpack_int(out: &mut Vec<u8>, first: u8, prefix_bits: u32, mut v: usize) {
    let max = (1usize << prefix_bits) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// Literal fields without indexing, new names, no Huffman.
fn block(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        hpack_string(&mut out, name.as_bytes());
        hpack_string(&mut out, value);
    }
    out
}

fn grpc_block(path: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut fields: Vec<(&str, &[u8])> = vec![
        (":method", b"POST"),
        (":scheme", b"http"),
        (":path", path.as_bytes()),
        (":authority", b"localhost"),
        ("content-type", b"application/grpc"),
        ("te", b"trailers"),
    ];
    fields.extend_from_slice(extra);
    block(&fields)
}

/// The HPACK static table's names (RFC 7541 Appendix A), index 1 first,
/// and the values of its first 14 entries.
const STATIC_NAMES: &str =
    ":authority :method :method :path :path :scheme :scheme :status :status :status :status \
     :status :status :status accept-charset accept-encoding accept-language accept-ranges \
     accept access-control-allow-origin age allow authorization cache-control \
     content-disposition content-encoding content-language content-length content-location \
     content-range content-type cookie date etag expect expires from host if-match \
     if-modified-since if-none-match if-range if-unmodified-since last-modified link \
     location max-forwards proxy-authenticate proxy-authorization range referer refresh \
     retry-after server set-cookie strict-transport-security transfer-encoding user-agent \
     vary via www-authenticate";
const STATIC_VALUES: &str = " GET POST / /index.html http https 200 204 206 304 400 404 500";

fn static_entry(table: &str, i: usize) -> String {
    table
        .split(' ')
        .nth(i - 1)
        .expect("static index")
        .to_owned()
}

fn read_int(b: &[u8], pos: &mut usize, prefix_bits: u32) -> usize {
    let max = (1usize << prefix_bits) - 1;
    let mut v = usize::from(b[*pos]) & max;
    *pos += 1;
    if v < max {
        return v;
    }
    let mut shift = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        v += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return v;
        }
    }
}

fn read_str(b: &[u8], pos: &mut usize) -> String {
    assert_eq!(b[*pos] & 0x80, 0, "the server Huffman-coded a string");
    let len = read_int(b, pos, 7);
    let s = String::from_utf8(b[*pos..*pos + len].to_vec()).unwrap();
    *pos += len;
    s
}

type Fields = Vec<(String, String)>;

fn decode_block(b: &[u8]) -> Fields {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let first = b[pos];
        if first & 0x80 != 0 {
            let i = read_int(b, &mut pos, 7);
            assert!((1..=14).contains(&i), "indexed field {i} from the server");
            fields.push((
                static_entry(STATIC_NAMES, i),
                static_entry(STATIC_VALUES, i),
            ));
        } else if first & 0xe0 == 0x20 {
            let size = read_int(b, &mut pos, 5);
            assert!(fields.is_empty() && size == 0, "size update {size}");
        } else {
            assert_eq!(first & 0xe0, 0, "the server indexed a field: {b:02x?}");
            let name = match read_int(b, &mut pos, 4) {
                0 => read_str(b, &mut pos),
                i => static_entry(STATIC_NAMES, i),
            };
            fields.push((name, read_str(b, &mut pos)));
        }
    }
    fields
}

fn get<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

// ---- gRPC messages ----

fn grpc(msg: &impl Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn put_req(key: &str, value: &[u8]) -> pb::PutRequest {
    pb::PutRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value),
        ..Default::default()
    }
}

fn range_req(key: &str) -> pb::RangeRequest {
    pb::RangeRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        ..Default::default()
    }
}

/// What came back on one stream.
#[derive(Debug, Default)]
struct Answer {
    head: Fields,
    data: Vec<u8>,
    trailers: Option<Fields>,
    reset: Option<u32>,
    /// The frame type that carried END_STREAM.
    ended_by: Option<u8>,
}

impl Answer {
    /// A successful unary answer: 200, application/grpc, one message,
    /// trailers with grpc-status 0 ending the stream.
    fn ok<M: Message + Default>(&self) -> M {
        assert_eq!(get(&self.head, ":status"), Some("200"), "{self:?}");
        assert_eq!(get(&self.head, "content-type"), Some("application/grpc"));
        let trailers = self.trailers.as_ref().expect("trailers");
        assert_eq!(get(trailers, "grpc-status"), Some("0"), "{trailers:?}");
        assert_eq!(self.ended_by, Some(HEADERS), "trailers end the stream");
        assert_eq!(self.data[0], 0, "uncompressed");
        let len = u32::from_be_bytes(self.data[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, self.data.len() - 5, "one whole message");
        M::decode(&self.data[5..]).unwrap()
    }
}

enum Got {
    Frame(Frame),
    Quiet,
    Closed,
}

/// A raw HTTP/2 client connection.
struct H2 {
    sock: TcpStream,
    buf: Vec<u8>,
    answers: HashMap<u32, Answer>,
    /// A header block waiting for CONTINUATION: stream, END_STREAM, bytes.
    partial: Option<(u32, bool, Vec<u8>)>,
    /// Give every DATA byte back to both windows at once.
    grant: bool,
    /// The largest DATA payload seen.
    max_data: usize,
}

impl H2 {
    /// Connect and send only the preface.
    fn connect(addr: SocketAddr) -> H2 {
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_nodelay(true).unwrap();
        sock.write_all(PREFACE).unwrap();
        H2 {
            sock,
            buf: Vec::new(),
            answers: HashMap::new(),
            partial: None,
            grant: true,
            max_data: 0,
        }
    }

    /// Preface and SETTINGS, until the server's SETTINGS is ACKed (by the
    /// test) and ours is ACKed (by the server); also the frames seen.
    fn open(addr: SocketAddr, ours: &[(u16, u32)]) -> (H2, Vec<Frame>) {
        let mut c = H2::connect(addr);
        c.sock.write_all(&settings(ours)).unwrap();
        let mut seen: Vec<Frame> = Vec::new();
        let settings_with =
            |seen: &[Frame], flags| seen.iter().any(|f| f.kind == SETTINGS && f.flags == flags);
        while !settings_with(&seen, 0) || !settings_with(&seen, ACK) {
            seen.push(c.frame());
        }
        (c, seen)
    }

    fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.sock
            .write_all(&frame_bytes(kind, flags, stream, payload))
            .unwrap();
    }

    fn window_update(&mut self, stream: u32, n: u32) {
        self.send(WINDOW_UPDATE, 0, stream, &n.to_be_bytes());
    }

    /// HEADERS, then CONTINUATIONs if the block is larger than a frame.
    fn headers_bytes(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
        let chunks: Vec<&[u8]> = block.chunks(FRAME_MAX).collect();
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let (kind, mut flags) = match i {
                0 => (HEADERS, if end_stream { END_STREAM } else { 0 }),
                _ => (CONTINUATION, 0),
            };
            if i + 1 == chunks.len() {
                flags |= END_HEADERS;
            }
            out.extend(frame_bytes(kind, flags, stream, chunk));
        }
        out
    }

    fn send_headers(&mut self, stream: u32, block: &[u8], end_stream: bool) {
        let bytes = H2::headers_bytes(stream, block, end_stream);
        self.sock.write_all(&bytes).unwrap();
    }

    fn send_data(&mut self, stream: u32, data: &[u8], end: bool) {
        let mut chunks: Vec<&[u8]> = data.chunks(FRAME_MAX).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for (i, chunk) in chunks.iter().enumerate() {
            let last = end && i + 1 == chunks.len();
            self.send(DATA, if last { END_STREAM } else { 0 }, stream, chunk);
        }
    }

    fn request(&mut self, stream: u32, path: &str, msg: &impl Message, extra: &[(&str, &[u8])]) {
        self.send_headers(stream, &grpc_block(path, extra), false);
        self.send_data(stream, &grpc(msg), true);
    }

    fn call<M: Message + Default>(&mut self, stream: u32, path: &str, msg: &impl Message) -> M {
        self.request(stream, path, msg, &[]);
        self.collect(stream).ok()
    }

    /// Read one frame (waiting up to `wait`) and account for it: answers
    /// per stream, ACKs for SETTINGS and PING, window grants.
    fn pump(&mut self, wait: Duration) -> Got {
        let deadline = Instant::now() + wait;
        let f = loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let b: Vec<u8> = self.buf.drain(..9 + len).collect();
                    break Frame {
                        kind: b[3],
                        flags: b[4],
                        stream: u32::from_be_bytes(b[5..9].try_into().unwrap()) & 0x7fff_ffff,
                        payload: b[9..].to_vec(),
                    };
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Quiet;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 32 * 1024];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Got::Closed,
                Err(e) => panic!("read: {e}"),
            }
        };
        // H2_TRACE=1 prints every frame received.
        if std::env::var_os("H2_TRACE").is_some() {
            eprintln!("<- {:?}", (f.kind, f.flags, f.stream, f.payload.len()));
        }
        let a = self.answers.entry(f.stream).or_default();
        match f.kind {
            SETTINGS if f.flags & ACK == 0 => self.send(SETTINGS, ACK, 0, &[]),
            PING if f.flags & ACK == 0 => self.send(PING, ACK, 0, &f.payload.clone()),
            DATA => {
                a.data.extend_from_slice(&f.payload);
                self.max_data = self.max_data.max(f.payload.len());
                if f.flags & END_STREAM != 0 {
                    a.ended_by = Some(DATA);
                }
                let n = f.payload.len() as u32;
                if self.grant && n > 0 {
                    self.window_update(0, n);
                    self.window_update(f.stream, n);
                }
            }
            RST_STREAM => a.reset = Some(f.code()),
            HEADERS | CONTINUATION => {
                let mut p = match self.partial.take() {
                    Some(p) => {
                        assert_eq!((f.kind, f.stream), (CONTINUATION, p.0), "interleaved");
                        p
                    }
                    None => (f.stream, f.flags & END_STREAM != 0, Vec::new()),
                };
                p.2.extend_from_slice(&f.payload);
                if f.flags & END_HEADERS == 0 {
                    self.partial = Some(p);
                } else {
                    let fields = decode_block(&p.2);
                    if a.head.is_empty() {
                        a.head = fields;
                    } else {
                        a.trailers = Some(fields);
                    }
                    if p.1 {
                        a.ended_by = Some(HEADERS);
                    }
                }
            }
            _ => {}
        }
        Got::Frame(f)
    }

    fn frame(&mut self) -> Frame {
        match self.pump(WAIT) {
            Got::Frame(f) => f,
            Got::Quiet => panic!("no frame from the server within {WAIT:?}"),
            Got::Closed => panic!("the server closed the connection"),
        }
    }

    fn done(&self, stream: u32) -> bool {
        self.answers
            .get(&stream)
            .is_some_and(|a| a.ended_by.is_some() || a.reset.is_some())
    }

    /// Read until the stream ends (END_STREAM or RST_STREAM).
    fn collect(&mut self, stream: u32) -> Answer {
        while !self.done(stream) {
            let f = self.frame();
            let why = String::from_utf8_lossy(&f.payload);
            assert_ne!(f.kind, GOAWAY, "GOAWAY {why:?}");
        }
        self.answers.remove(&stream).unwrap()
    }

    /// Read until GOAWAY, whose code must be `code`, and until the server
    /// closes the socket; GOAWAY's last stream id.
    fn expect_goaway(&mut self, code: u32, case: &str) -> u32 {
        let f = loop {
            match self.pump(WAIT) {
                Got::Frame(f) if f.kind == GOAWAY => break f,
                Got::Frame(_) => {}
                Got::Quiet => panic!("{case}: no GOAWAY within {WAIT:?}"),
                Got::Closed => panic!("{case}: closed without GOAWAY"),
            }
        };
        let why = String::from_utf8_lossy(&f.payload[8..]).into_owned();
        assert_eq!(f.code(), code, "{case}: GOAWAY code ({why})");
        let last = u32::from_be_bytes(f.payload[..4].try_into().unwrap());
        loop {
            match self.pump(WAIT) {
                Got::Closed => return last,
                Got::Frame(f) => assert_ne!(f.kind, HEADERS, "{case}: an answer after GOAWAY"),
                Got::Quiet => panic!("{case}: the socket stayed open after GOAWAY"),
            }
        }
    }
}

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    (dir, server)
}

/// A Put on a new connection is answered.
fn put_on_fresh_connection(addr: SocketAddr, key: &str, value: &[u8]) {
    let (mut c, _) = H2::open(addr, &[]);
    let r: pb::PutResponse = c.call(1, pb::path::KV_PUT, &put_req(key, value));
    assert!(r.header.unwrap().revision > 0);
}

#[test]
fn a_unary_put_and_range_travel_over_raw_frames_with_settings_and_pings_acknowledged() {
    let (_dir, server) = start();
    let (mut c, hello) = H2::open(server.addr, &[]);
    // The server speaks first: its SETTINGS, then its connection window.
    let s = &hello[0];
    assert_eq!((s.kind, s.flags, s.stream), (SETTINGS, 0, 0), "{hello:?}");
    let pair = |c: &[u8]| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    };
    let listed: HashMap<u16, u32> = s.payload.chunks(6).map(pair).collect();
    let want = HashMap::from([(3, 1024), (4, 1 << 20), (6, 64 << 10)]);
    assert_eq!(
        listed, want,
        "MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_HEADER_LIST_SIZE"
    );
    let w = &hello[1];
    assert_eq!((w.kind, w.stream), (WINDOW_UPDATE, 0));
    assert_eq!(w.payload, ((4u32 << 20) - 65_535).to_be_bytes());
    let ack = hello.iter().find(|f| f.kind == SETTINGS && f.flags == ACK);
    assert!(ack.unwrap().payload.is_empty());

    c.send(PING, 0, 0, b"cairn-h2");
    let pong = loop {
        let f = c.frame();
        if f.kind == PING {
            break f;
        }
    };
    assert_eq!((pong.flags, pong.stream), (ACK, 0));
    assert_eq!(pong.payload, b"cairn-h2", "the same 8 bytes");

    c.request(1, pb::path::KV_PUT, &put_req("k1", b"v1"), &[]);
    let put = c.collect(1);
    assert_eq!(put.head[0].0, ":status", "status first");
    let r: pb::PutResponse = put.ok();
    let rev = r.header.unwrap().revision;
    assert!(rev > 0);

    let r: pb::RangeResponse = c.call(3, pb::path::KV_RANGE, &range_req("k1"));
    assert_eq!(r.count, 1);
    assert_eq!(&r.kvs[0].value[..], b"v1");
    assert_eq!(r.kvs[0].mod_revision, rev);
}

/// The DATA bytes the server sends, per stream: read until `expect` have
/// come (or 5 s passed), then until the server has been quiet for a while.
fn drain_data(c: &mut H2, expect: usize) -> HashMap<u32, usize> {
    let mut got: HashMap<u32, usize> = HashMap::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let wait = match got.values().sum::<usize>() < expect {
            true => deadline
                .saturating_duration_since(Instant::now())
                .max(QUIET),
            false => QUIET,
        };
        let Got::Frame(f) = c.pump(wait) else {
            return got;
        };
        assert_ne!(f.kind, GOAWAY);
        if f.kind == DATA {
            *got.entry(f.stream).or_default() += f.payload.len();
        }
    }
}

#[test]
fn responses_never_exceed_the_clients_stream_and_connection_windows() {
    let (_dir, server) = start();
    // A 16-byte stream window.
    let ours = [
        (INITIAL_WINDOW_SIZE, 16),
        (MAX_FRAME_SIZE, FRAME_MAX as u32),
    ];
    let (mut c, _) = H2::open(server.addr, &ours);
    let value: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let _: pb::PutResponse = c.call(1, pb::path::KV_PUT, &put_req("fc", &value));
    c.grant = false;
    c.request(3, pb::path::KV_RANGE, &range_req("fc"), &[]);
    let sent = drain_data(&mut c, 16);
    assert_eq!(sent.get(&3), Some(&16), "exactly the stream window");
    c.window_update(3, 100);
    let sent = drain_data(&mut c, 100);
    assert_eq!(sent.get(&3), Some(&100), "exactly the increment");
    assert!(!c.done(3));
    // A larger SETTINGS_INITIAL_WINDOW_SIZE widens the open stream too.
    c.sock
        .write_all(&settings(&[(INITIAL_WINDOW_SIZE, 1 << 20)]))
        .unwrap();
    let r: pb::RangeResponse = c.collect(3).ok();
    assert_eq!(r.kvs[0].value, value, "the message arrives intact");

    // The connection window left at 65,535, four streams of ~30 KB each.
    let big: Vec<u8> = (0..30_000u32).map(|i| (i % 241) as u8).collect();
    put_on_fresh_connection(server.addr, "big", &big);
    let (mut c, _) = H2::open(server.addr, &[]);
    c.grant = false;
    let ids = [1, 3, 5, 7];
    for id in ids {
        c.request(id, pb::path::KV_RANGE, &range_req("big"), &[]);
    }
    let got: usize = drain_data(&mut c, 65_535).values().sum();
    assert_eq!(got, 65_535, "exactly the connection window across streams");
    assert!(!ids.iter().all(|&id| c.done(id)));
    c.window_update(0, 1 << 20);
    for id in ids {
        let r: pb::RangeResponse = c.collect(id).ok();
        assert_eq!(r.kvs[0].value, big, "stream {id}");
    }
    assert!(c.max_data <= FRAME_MAX, "DATA of {} bytes", c.max_data);
}

#[test]
fn protocol_violations_get_goaway_with_their_code_then_the_socket_closes() {
    let (_dir, server) = start();
    let put = grpc_block(pb::path::KV_PUT, &[]);
    let headers = |id, flags| frame_bytes(HEADERS, flags, id, &put);
    // What is written after the handshake (or instead of SETTINGS), the
    // GOAWAY code and its last stream id.
    #[rustfmt::skip]
    let cases: Vec<(&str, bool, Vec<u8>, u32, u32)> = vec![
        ("DATA on an idle stream", true, frame_bytes(DATA, 0, 1, b"x"), PROTOCOL_ERROR, 0),
        ("a frame over 16384", true, frame_bytes(HEADERS, END_HEADERS, 1, &[0; FRAME_MAX + 1]), FRAME_SIZE_ERROR, 0),
        ("WINDOW_UPDATE of 0 on stream 0", true, frame_bytes(WINDOW_UPDATE, 0, 0, &[0; 4]), PROTOCOL_ERROR, 0),
        ("HPACK index 0", true, frame_bytes(HEADERS, END_HEADERS | END_STREAM, 1, &[0x80]), COMPRESSION_ERROR, 0),
        ("first frame not SETTINGS", false, frame_bytes(PING, 0, 0, &[0; 8]), PROTOCOL_ERROR, 0),
        ("HEADERS on an even stream", true, headers(2, END_HEADERS), PROTOCOL_ERROR, 0),
        ("a reused stream id", true, [headers(3, END_HEADERS), headers(1, END_HEADERS)].concat(), PROTOCOL_ERROR, 3),
        ("CONTINUATION without HEADERS", true, frame_bytes(CONTINUATION, END_HEADERS, 1, &put), PROTOCOL_ERROR, 0),
        ("an interrupted header block", true, [headers(1, 0), frame_bytes(PING, 0, 0, &[0; 8])].concat(), PROTOCOL_ERROR, 0),
        ("a 7-byte PING", true, frame_bytes(PING, 0, 0, &[0; 7]), FRAME_SIZE_ERROR, 0),
        ("RST_STREAM on an idle stream", true, frame_bytes(RST_STREAM, 0, 1, &[0, 0, 0, 8]), PROTOCOL_ERROR, 0),
        ("a connection window over 2^31-1", true, frame_bytes(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()), FLOW_CONTROL_ERROR, 0),
        ("an initial window over 2^31-1", true, settings(&[(INITIAL_WINDOW_SIZE, 1 << 31)]), FLOW_CONTROL_ERROR, 0),
        ("a 3-byte RST_STREAM", true, [headers(1, END_HEADERS), frame_bytes(RST_STREAM, 0, 1, &[0; 3])].concat(), FRAME_SIZE_ERROR, 1),
    ];
    for (case, handshake, bytes, code, last) in cases {
        let mut c = if handshake {
            H2::open(server.addr, &[]).0
        } else {
            H2::connect(server.addr)
        };
        // The server may close before reading all of it.
        let _ = c.sock.write_all(&bytes);
        assert_eq!(c.expect_goaway(code, case), last, "{case}: last stream id");
    }
    put_on_fresh_connection(server.addr, "after", b"violations");
}

#[test]
fn a_malformed_request_resets_only_its_stream_and_non_grpc_requests_get_415() {
    let (_dir, server) = start();
    let (mut c, _) = H2::open(server.addr, &[]);
    let post: [(&str, &[u8]); 2] = [(":method", b"POST"), (":scheme", b"http")];
    let grpc_type: (&str, &[u8]) = ("content-type", b"application/grpc");
    let no_path = block(&[post[0], post[1], grpc_type]);
    c.send_headers(1, &no_path, true);
    let a = c.collect(1);
    assert_eq!((a.reset, a.head.len()), (Some(PROTOCOL_ERROR), 0), "{a:?}");
    c.send_headers(3, &grpc_block(pb::path::KV_PUT, &[("X-Upper", b"1")]), true);
    assert_eq!(c.collect(3).reset, Some(PROTOCOL_ERROR));

    let _: pb::PutResponse = c.call(5, pb::path::KV_PUT, &put_req("k", b"v"));
    let path = (":path", pb::path::KV_RANGE.as_bytes());
    let get_req = block(&[(":method", b"GET"), post[1], path, grpc_type]);
    let text = block(&[post[0], post[1], path, ("content-type", b"text/plain")]);
    for (id, b) in [(7, get_req), (9, text)] {
        c.send_headers(id, &b, true);
        let a = c.collect(id);
        assert_eq!(get(&a.head, ":status"), Some("415"), "stream {id}: {a:?}");
        let ended = (a.ended_by, a.reset, a.data.len());
        assert_eq!(
            ended,
            (Some(HEADERS), None, 0),
            "a whole answer in one HEADERS"
        );
    }
    // WINDOW_UPDATE of 0, or past 2^31-1, on an open stream.
    for (id, inc, code) in [
        (13, 0, PROTOCOL_ERROR),
        (15, 0x7fff_ffff, FLOW_CONTROL_ERROR),
    ] {
        c.send_headers(id, &grpc_block(pb::path::KV_PUT, &[]), false);
        c.window_update(id, inc);
        assert_eq!(c.collect(id).reset, Some(code), "stream {id}");
    }
    let r: pb::RangeResponse = c.call(17, pb::path::KV_RANGE, &range_req("k"));
    assert_eq!(&r.kvs[0].value[..], b"v", "the connection still serves");
}

#[test]
fn a_stream_beyond_the_concurrency_limit_is_refused_and_a_finished_one_frees_its_slot() {
    let (_dir, server) = start();
    let (mut c, _) = H2::open(server.addr, &[]);
    // Small answers first: a new connection admits one unary call at a time
    // until its answer-size estimate has learned (see conn/budget.rs).
    for id in (1..128).step_by(2) {
        let _: pb::RangeResponse = c.call(id, pb::path::KV_RANGE, &range_req("none"));
    }
    // 1024 requests waiting for their bodies, and one more.
    let put = grpc_block(pb::path::KV_PUT, &[]);
    let held: Vec<u32> = (0..1024).map(|i| 129 + 2 * i).collect();
    let opened: Vec<u8> = held
        .iter()
        .chain([&2177])
        .flat_map(|&id| frame_bytes(HEADERS, END_HEADERS, id, &put))
        .collect();
    c.sock.write_all(&opened).unwrap();
    assert_eq!(c.collect(2177).reset, Some(REFUSED_STREAM));
    drain_data(&mut c, 0);
    let others: Vec<_> = held
        .iter()
        .filter(|id| c.answers.contains_key(id))
        .collect();
    assert!(others.is_empty(), "only the 1025th is refused: {others:?}");
    c.send_data(129, &grpc(&put_req("slot", b"1")), true);
    let _: pb::PutResponse = c.collect(129).ok();
    let _: pb::PutResponse = c.call(2179, pb::path::KV_PUT, &put_req("slot", b"2"));
}

#[test]
fn a_client_that_opens_and_resets_thousands_of_streams_gets_enhance_your_calm() {
    let (_dir, server) = start();
    let (mut other, _) = H2::open(server.addr, &[]);
    let (mut bad, _) = H2::open(server.addr, &[]);
    let put = grpc_block(pb::path::KV_PUT, &[]);
    let burst: Vec<u8> = (0..3000u32)
        .flat_map(|i| {
            let id = 2 * i + 1;
            let mut b = frame_bytes(HEADERS, END_HEADERS, id, &put);
            b.extend(frame_bytes(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
            b
        })
        .collect();
    let mut sock = bad.sock.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        // The server stops reading at its GOAWAY.
        let _ = sock.write_all(&burst);
    });
    // Another connection is served meanwhile.
    let _: pb::PutResponse = other.call(1, pb::path::KV_PUT, &put_req("calm", b"1"));
    let last = bad.expect_goaway(ENHANCE_YOUR_CALM, "rapid reset");
    assert!(last > 2 * 1024 && last < 6000, "last stream {last}");
    writer.join().unwrap();
    let _: pb::PutResponse = other.call(3, pb::path::KV_PUT, &put_req("calm", b"2"));
    put_on_fresh_connection(server.addr, "calm", b"3");
}

#[test]
fn header_blocks_and_lists_over_64_kib_are_refused_and_a_40_kib_header_is_served() {
    let (_dir, server) = start();
    let (mut c, _) = H2::open(server.addr, &[]);
    let _: pb::PutResponse = c.call(1, pb::path::KV_PUT, &put_req("hdr", b"v"));
    // A 40 KiB field: over one frame (HEADERS + CONTINUATIONs), under the limits.
    let pad = vec![b'p'; 40 << 10];
    c.request(3, pb::path::KV_RANGE, &range_req("hdr"), &[("x-pad", &pad)]);
    let r: pb::RangeResponse = c.collect(3).ok();
    assert_eq!(&r.kvs[0].value[..], b"v");

    // A list over 64 KiB from a 4 KB block: one 4,038-byte field entered in
    // the dynamic table, then named 20 more times by its index (62).
    let mut bomb = grpc_block(pb::path::KV_RANGE, &[]);
    bomb.push(0x40);
    hpack_string(&mut bomb, b"x-bomb");
    hpack_string(&mut bomb, &[b'b'; 4000]);
    bomb.extend([0x80 | 62; 20]);
    c.send_headers(5, &bomb, true);
    let a = c.collect(5);
    assert_eq!(get(&a.head, ":status"), Some("431"), "{a:?}");
    assert_eq!((a.ended_by, a.reset), (Some(HEADERS), None));
    // The connection goes on, its table in step: index 62 is still x-bomb.
    let mut again = grpc_block(pb::path::KV_RANGE, &[]);
    again.push(0x80 | 62);
    c.send_headers(7, &again, false);
    c.send_data(7, &grpc(&range_req("hdr")), true);
    let r: pb::RangeResponse = c.collect(7).ok();
    assert_eq!(&r.kvs[0].value[..], b"v");

    // A 70 KiB block: past the 64 KiB block limit before the list is decoded.
    let (mut c, _) = H2::open(server.addr, &[]);
    let huge = grpc_block(pb::path::KV_RANGE, &[("x-pad", &vec![b'p'; 70 << 10])]);
    let _ = c.sock.write_all(&H2::headers_bytes(1, &huge, true));
    let last = c.expect_goaway(ENHANCE_YOUR_CALM, "a 70 KiB header block");
    assert_eq!(last, 0, "the request was never taken");
    put_on_fresh_connection(server.addr, "hdr", b"after");
}

#[test]
fn a_request_body_split_over_delayed_frames_is_answered_once_the_client_half_closes() {
    let (_dir, server) = start();
    let (mut c, _) = H2::open(server.addr, &[]);
    // The message split in two DATA frames, END_STREAM on the second.
    let msg = grpc(&put_req("late", b"value in two frames"));
    c.send_headers(1, &grpc_block(pb::path::KV_PUT, &[]), false);
    c.send_data(1, &msg[..7], false);
    let early = matches!(c.pump(QUIET), Got::Frame(_));
    assert!(!early, "an answer before the whole message");
    c.send_data(1, &msg[7..], true);
    let _: pb::PutResponse = c.collect(1).ok();
    // The whole message, then END_STREAM alone in an empty DATA frame.
    c.send_headers(3, &grpc_block(pb::path::KV_PUT, &[]), false);
    c.send_data(3, &grpc(&put_req("late", b"ended later")), false);
    std::thread::sleep(QUIET);
    c.send_data(3, &[], true);
    let _: pb::PutResponse = c.collect(3).ok();
    let r: pb::RangeResponse = c.call(5, pb::path::KV_RANGE, &range_req("late"));
    assert_eq!(&r.kvs[0].value[..], b"ended later");
}

/// RFC 9113 §5.1: frames a client sent on a stream before it saw the
/// server reset it are ignored. Its trailers, in flight at the reset, do
/// not end the connection (and every other call on it).
#[test]
fn frames_in_flight_on_a_stream_the_server_reset_are_ignored() {
    let (_dir, server) = start();
    let (mut c, _) = H2::open(server.addr, &[]);
    let no_path = block(&[(":method", b"POST"), ("content-type", b"application/grpc")]);
    let mut bytes = H2::headers_bytes(1, &no_path, false);
    bytes.extend(frame_bytes(DATA, 0, 1, b"body"));
    bytes.extend(H2::headers_bytes(1, &block(&[("x-trailer", b"1")]), true));
    c.sock.write_all(&bytes).unwrap();
    assert_eq!(c.collect(1).reset, Some(PROTOCOL_ERROR));
    loop {
        match c.pump(QUIET) {
            Got::Frame(f) => {
                assert_ne!(f.kind, GOAWAY, "{:?}", String::from_utf8_lossy(&f.payload))
            }
            Got::Quiet => break,
            Got::Closed => panic!("the connection closed"),
        }
    }
    let _: pb::PutResponse = c.call(3, pb::path::KV_PUT, &put_req("k", b"v"));
}
