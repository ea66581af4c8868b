//! The scripted server's side of the pipe: frames read and checked
//! (the client's preface and settings, its header blocks decoded, its DATA
//! held to the windows the server gave), and answers written.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use cairn_wire::hpack;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::super::frame::{self, Head, HEADER_BYTES};
use super::super::handshake;
use crate::etcd::dial::Dialed;
use crate::etcd::grpc::UnaryConn;
use crate::limits::{CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES};

pub(super) const AUTHORITY: &str = "test:2379";

/// How long a test waits to be sure the client sends nothing more.
const QUIET_MS: u64 = 50;

/// The server's end of the pipe, keeping its receive windows to check
/// that the client never overruns them.
pub(super) struct Server {
    io: DuplexStream,
    buf: BytesMut,
    decoder: hpack::Decoder,
    /// What the client may still send on the connection, and per stream.
    conn_window: i64,
    stream_windows: HashMap<u32, i64>,
    initial_window: i64,
}

/// A frame the server received.
pub(super) struct Frame {
    pub(super) head: Head,
    pub(super) payload: Vec<u8>,
}

/// A request as the server decoded it.
pub(super) struct Received {
    pub(super) stream: u32,
    pub(super) fields: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

/// A connection whose server sent `settings`, and the server's end,
/// past the client's acknowledgement of them.
pub(super) async fn start(settings: &[(u16, u32)]) -> (UnaryConn, Server) {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let server = async {
        let mut server = Server {
            io: server_io,
            buf: BytesMut::new(),
            decoder: hpack::Decoder::new(frame::DEFAULT_HEADER_TABLE_BYTES),
            conn_window: frame::DEFAULT_WINDOW,
            stream_windows: HashMap::new(),
            initial_window: frame::DEFAULT_WINDOW,
        };
        server.expect_hello().await;
        server.send_settings(settings).await;
        server
    };
    let (conn, mut server) = tokio::join!(handshake(client_io), server);
    let conn = conn.expect("handshake");
    let ack = server.frame().await;
    assert_eq!(
        (ack.head.kind, ack.head.flags),
        (frame::SETTINGS, frame::ACK)
    );
    let dialed = Dialed {
        conn,
        https: false,
        authority: AUTHORITY.to_string(),
    };
    (UnaryConn::new(dialed), server)
}

impl Server {
    /// The preface, the client's SETTINGS and its connection
    /// WINDOW_UPDATE, as the harness always sent them.
    pub(super) async fn expect_hello(&mut self) {
        let mut preface = vec![0; frame::PREFACE.len()];
        self.io.read_exact(&mut preface).await.unwrap();
        assert_eq!(preface, frame::PREFACE);
        let settings = self.frame().await;
        assert_eq!(
            (settings.head.kind, settings.head.flags),
            (frame::SETTINGS, 0)
        );
        let mut expected = Vec::new();
        for (id, value) in [
            (frame::SETTINGS_ENABLE_PUSH, 0),
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW_BYTES),
        ] {
            expected.extend_from_slice(&u16::to_be_bytes(id));
            expected.extend_from_slice(&u32::to_be_bytes(value));
        }
        assert_eq!(settings.payload, expected);
        let update = self.frame().await;
        assert_eq!(
            (update.head.kind, update.head.stream),
            (frame::WINDOW_UPDATE, 0)
        );
        let increment = u32::from_be_bytes(update.payload[..].try_into().unwrap());
        assert_eq!(
            i64::from(increment),
            i64::from(CONNECTION_WINDOW_BYTES) - 65_535
        );
    }

    pub(super) async fn send_settings(&mut self, settings: &[(u16, u32)]) {
        for &(id, value) in settings {
            if id == frame::SETTINGS_INITIAL_WINDOW_SIZE {
                let delta = i64::from(value) - self.initial_window;
                self.initial_window = i64::from(value);
                for window in self.stream_windows.values_mut() {
                    *window += delta;
                }
            }
        }
        let mut out = Vec::new();
        frame::put_settings(&mut out, settings);
        self.send(&out).await;
    }

    pub(super) async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next frame; the pipe must not end first.
    pub(super) async fn frame(&mut self) -> Frame {
        loop {
            if self.buf.len() >= HEADER_BYTES {
                let head = Head::parse(&self.buf);
                if self.buf.len() >= HEADER_BYTES + head.len {
                    let frame = self.buf.split_to(HEADER_BYTES + head.len);
                    return Frame {
                        head,
                        payload: frame[HEADER_BYTES..].to_vec(),
                    };
                }
            }
            let n = self.io.read_buf(&mut self.buf).await.unwrap();
            assert!(n > 0, "the client closed the connection");
        }
    }

    /// Asserts that the client sends nothing for a while.
    pub(super) async fn expect_quiet(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(QUIET_MS), self.frame()).await;
        if let Ok(frame) = next {
            panic!("unexpected frame {:?}", frame.head);
        }
    }

    /// The next DATA frame, checked against the windows.
    pub(super) async fn data(&mut self) -> Frame {
        let frame = self.frame().await;
        assert_eq!(frame.head.kind, frame::DATA, "{:?}", frame.head);
        assert!(
            frame.head.len <= frame::DEFAULT_MAX_FRAME,
            "{:?}",
            frame.head
        );
        let len = frame.head.len as i64;
        let stream = self.stream_windows.entry(frame.head.stream).or_insert(0);
        *stream -= len;
        self.conn_window -= len;
        assert!(*stream >= 0, "stream window overrun by {:?}", frame.head);
        assert!(
            self.conn_window >= 0,
            "connection window overrun by {:?}",
            frame.head
        );
        frame
    }

    /// The next request's HEADERS (with any CONTINUATION), decoded.
    pub(super) async fn headers(&mut self) -> Received {
        let first = self.frame().await;
        assert_eq!(first.head.kind, frame::HEADERS, "{:?}", first.head);
        let stream = first.head.stream;
        let mut block = first.payload;
        let mut end_headers = first.head.has(frame::END_HEADERS);
        while !end_headers {
            let next = self.frame().await;
            assert_eq!(
                (next.head.kind, next.head.stream),
                (frame::CONTINUATION, stream)
            );
            block.extend_from_slice(&next.payload);
            end_headers = next.head.has(frame::END_HEADERS);
        }
        let mut fields = Vec::new();
        self.decoder
            .decode(&block, 1 << 20, |name, value| {
                fields.push((
                    String::from_utf8(name.to_vec()).unwrap(),
                    String::from_utf8(value.to_vec()).unwrap(),
                ));
            })
            .unwrap();
        self.stream_windows.insert(stream, self.initial_window);
        Received {
            stream,
            fields,
            body: Vec::new(),
        }
    }

    /// The next whole request: headers, then DATA up to END_STREAM.
    pub(super) async fn request(&mut self) -> Received {
        let mut request = self.headers().await;
        loop {
            let data = self.data().await;
            assert_eq!(data.head.stream, request.stream);
            request.body.extend_from_slice(&data.payload);
            if data.head.has(frame::END_STREAM) {
                return request;
            }
        }
    }

    pub(super) async fn window_update(&mut self, stream: u32, increment: u32) {
        match stream {
            0 => self.conn_window += i64::from(increment),
            id => *self.stream_windows.entry(id).or_insert(0) += i64::from(increment),
        }
        let mut out = Vec::new();
        frame::put_window_update(&mut out, stream, increment);
        self.send(&out).await;
    }

    /// A whole successful answer: headers, `message`, trailers.
    pub(super) async fn answer(&mut self, stream: u32, message: &impl Message) {
        let mut out = Vec::new();
        put_block(&mut out, stream, frame::END_HEADERS, &ok_headers());
        frame::put_frame(&mut out, frame::DATA, 0, stream, &framed(message));
        put_block(
            &mut out,
            stream,
            frame::END_HEADERS | frame::END_STREAM,
            &trailers("0", None),
        );
        self.send(&out).await;
    }
}

pub(super) fn put_block(out: &mut Vec<u8>, stream: u32, flags: u8, block: &[u8]) {
    frame::put_frame(out, frame::HEADERS, flags, stream, block);
}

pub(super) fn ok_headers() -> Vec<u8> {
    let mut block = Vec::new();
    hpack::encode_status(200, &mut block);
    hpack::encode_field(b"content-type", b"application/grpc", &mut block);
    block
}

pub(super) fn trailers(status: &str, message: Option<&str>) -> Vec<u8> {
    let mut block = Vec::new();
    hpack::encode_field(b"grpc-status", status.as_bytes(), &mut block);
    if let Some(message) = message {
        hpack::encode_field(b"grpc-message", message.as_bytes(), &mut block);
    }
    block
}

/// `message` with gRPC's 5-byte prefix.
pub(super) fn framed(message: &impl Message) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.encoded_len() as u32).to_be_bytes());
    message.encode(&mut out).unwrap();
    out
}

/// HPACK literals that insert `name: value` into the dynamic table, the
/// name given by its static index or (0) as a string.
pub(super) fn inserting(name_index: u8, name: &[u8], value: &[u8]) -> Vec<u8> {
    assert!(name_index < 63 && name.len() < 127 && value.len() < 127);
    let mut block = vec![0x40 | name_index];
    if name_index == 0 {
        block.push(name.len() as u8);
        block.extend_from_slice(name);
    }
    block.push(value.len() as u8);
    block.extend_from_slice(value);
    block
}

/// An indexed field: 1-61 static, 62 on the dynamic table, newest first.
pub(super) fn indexed(index: u8) -> u8 {
    0x80 | index
}
