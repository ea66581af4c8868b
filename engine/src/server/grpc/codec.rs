//! gRPC's framing over HTTP/2: each message is a 1-byte compressed flag, a
//! 4-byte big-endian length and the protobuf bytes; a call ends with the
//! `grpc-status` and `grpc-message` trailers.

use bytes::{Buf, Bytes, BytesMut};
use cairn_wire::rpc;

use crate::server::http2::{Field, SendStream};

/// The bytes in front of every gRPC message.
pub const PREFIX_BYTES: usize = 5;

/// The content type of every gRPC response.
pub const CONTENT_TYPE: Field<'static> = ("content-type", b"application/grpc");

/// A gRPC status: a code (the same numbers as `rpc::ErrorCode`) and a
/// message that reads like etcd's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u8,
    pub message: String,
}

impl Status {
    pub fn new(code: rpc::ErrorCode, message: impl Into<String>) -> Status {
        Status {
            code: code.0,
            message: message.into(),
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(rpc::ErrorCode::InvalidArgument, message)
    }

    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(rpc::ErrorCode::Unimplemented, message)
    }

    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(rpc::ErrorCode::Internal, message)
    }

    /// A request whose bytes are not the message the method takes (what
    /// grpc-go answers for undecodable input).
    pub fn malformed(e: prost::DecodeError) -> Status {
        Status::internal(format!("grpc: error unmarshalling request: {e}"))
    }

    /// The status that ends a successful call.
    pub fn ok() -> Status {
        Status {
            code: 0,
            message: String::new(),
        }
    }

    /// End a call with this status, after what it sent.
    pub fn end(&self, send: &mut SendStream) {
        // A stream already gone has no one to tell.
        let _ = self.with_fields(&[], |f| send.send_trailers(f));
    }

    /// Call `f` with `extra` and this status's fields: `grpc-status` and,
    /// for a message, `grpc-message` (a trailers-only response carries
    /// them with its headers).
    pub fn with_fields<R>(&self, extra: &[Field<'_>], f: impl FnOnce(&[Field<'_>]) -> R) -> R {
        let mut digits = [0u8; 3];
        let code = decimal(self.code, &mut digits);
        let message = percent_encode(&self.message);
        let mut fields: [Field<'_>; 4] = [("", b""); 4];
        fields[..extra.len()].copy_from_slice(extra);
        let mut n = extra.len();
        fields[n] = ("grpc-status", code);
        n += 1;
        if !message.is_empty() {
            fields[n] = ("grpc-message", message.as_bytes());
            n += 1;
        }
        f(&fields[..n])
    }
}

/// `n` in decimal.
fn decimal(n: u8, buf: &mut [u8; 3]) -> &[u8] {
    let digits = [n / 100, n / 10 % 10, n % 10];
    let skip = if n >= 100 {
        0
    } else if n >= 10 {
        1
    } else {
        2
    };
    for (b, d) in buf.iter_mut().zip(digits) {
        *b = b'0' + d;
    }
    &buf[skip..]
}

/// gRPC's percent-encoding of `grpc-message`: printable ASCII other than
/// `%` passes, everything else is `%XX` of its UTF-8 bytes.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One message in gRPC framing.
pub fn frame(msg: &impl prost::Message) -> Bytes {
    let len = msg.encoded_len();
    let mut buf = Vec::with_capacity(PREFIX_BYTES + len);
    buf.push(0);
    // A response is built from a request and the store's data, both far
    // below 4 GiB; saturating keeps the arithmetic total.
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    msg.encode(&mut buf)
        .unwrap_or_else(|_| unreachable!("a Vec grows to fit"));
    Bytes::from(buf)
}

/// Splits the bytes of a request stream into messages.
///
/// A message that arrives whole in one chunk (the usual case: a small
/// request in one DATA frame) is handed on as a slice of that chunk, not
/// copied; only a message split across chunks is assembled in a buffer.
pub struct MessageReader {
    /// Bytes of the last chunk not yet taken, while nothing is assembled.
    head: Bytes,
    /// Bytes being assembled across chunks (empty while `head` is used).
    buf: BytesMut,
    message_bytes_max: usize,
}

impl MessageReader {
    pub fn new(message_bytes_max: usize) -> MessageReader {
        MessageReader {
            head: Bytes::new(),
            buf: BytesMut::new(),
            message_bytes_max,
        }
    }

    /// Take the next chunk of the stream.
    pub fn feed(&mut self, data: Bytes) {
        if self.buf.is_empty() && self.head.is_empty() {
            self.head = data;
        } else {
            self.assemble();
            self.buf.extend_from_slice(&data);
        }
    }

    /// Bytes of a message still incomplete.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.buf.is_empty()
    }

    /// The next whole message, `None` if more bytes are needed.
    ///
    /// Errors: a compressed message (only `identity` is accepted) or one
    /// larger than the limit, which is checked from the prefix before the
    /// message is buffered.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        let pending: &[u8] = if self.buf.is_empty() {
            &self.head
        } else {
            &self.buf
        };
        if pending.len() < PREFIX_BYTES {
            self.assemble();
            return Ok(None);
        }
        let compressed = pending[0];
        let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
        if compressed != 0 {
            return Err(Status::internal(
                "grpc: compressed flag set with identity or empty encoding",
            ));
        }
        if len > self.message_bytes_max {
            return Err(Status::new(
                rpc::ErrorCode::ResourceExhausted,
                format!(
                    "grpc: received message larger than max ({len} vs. {})",
                    self.message_bytes_max
                ),
            ));
        }
        if pending.len() < PREFIX_BYTES + len {
            self.assemble();
            return Ok(None);
        }
        if self.buf.is_empty() {
            self.head.advance(PREFIX_BYTES);
            return Ok(Some(self.head.split_to(len)));
        }
        self.buf.advance(PREFIX_BYTES);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Move what is left of the last chunk into the assembly buffer: the
    /// next chunk continues it.
    fn assemble(&mut self) {
        if !self.head.is_empty() {
            self.buf.extend_from_slice(&self.head);
            self.head = Bytes::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_wire::etcdpb::PutRequest;
    use prost::Message;

    #[test]
    fn framed_message_reads_back_across_pieces() {
        let msg = PutRequest {
            key: "k".into(),
            value: "v".into(),
            ..Default::default()
        };
        let framed = frame(&msg);
        let mut r = MessageReader::new(1024);
        r.feed(framed.slice(..3));
        assert_eq!(r.next_message(), Ok(None));
        r.feed(framed.slice(3..));
        let got = r.next_message().unwrap().unwrap();
        assert_eq!(PutRequest::decode(got).unwrap(), msg);
        assert!(r.is_empty());
    }

    #[test]
    fn messages_read_back_from_one_chunk_and_across_chunks() {
        let a = PutRequest {
            key: "a".into(),
            value: "1".into(),
            ..Default::default()
        };
        let b = PutRequest {
            key: "b".into(),
            value: "22".into(),
            ..Default::default()
        };
        let c = PutRequest {
            key: "c".into(),
            value: "333".into(),
            ..Default::default()
        };
        let mut stream = Vec::new();
        for m in [&a, &b, &c] {
            stream.extend_from_slice(&frame(m));
        }
        let stream = Bytes::from(stream);
        // The first chunk holds `a` whole and the start of `b`.
        let cut = frame(&a).len() + 2;
        let mut r = MessageReader::new(1024);
        r.feed(stream.slice(..cut));
        let got = r.next_message().unwrap().unwrap();
        assert_eq!(PutRequest::decode(got).unwrap(), a);
        assert_eq!(r.next_message(), Ok(None));
        assert!(!r.is_empty());
        r.feed(stream.slice(cut..));
        let got = r.next_message().unwrap().unwrap();
        assert_eq!(PutRequest::decode(got).unwrap(), b);
        let got = r.next_message().unwrap().unwrap();
        assert_eq!(PutRequest::decode(got).unwrap(), c);
        assert_eq!(r.next_message(), Ok(None));
        assert!(r.is_empty());
    }

    #[test]
    fn ok_and_error_trailers_read_like_grpc() {
        let owned = |s: &Status, extra: &[Field<'_>]| {
            s.with_fields(extra, |f| {
                f.iter()
                    .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
                    .collect::<Vec<_>>()
            })
        };
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(owned(&Status::ok(), &[]), [pair("grpc-status", "0")]);
        let err = Status::new(rpc::ErrorCode::NotFound, "no such key\n");
        assert_eq!(
            owned(&err, &[CONTENT_TYPE]),
            [
                pair("content-type", "application/grpc"),
                pair("grpc-status", "5"),
                pair("grpc-message", "no such key%0A")
            ]
        );
        let unauthenticated = Status::new(rpc::ErrorCode::Unauthenticated, "");
        assert_eq!(owned(&unauthenticated, &[]), [pair("grpc-status", "16")]);
        let mut digits = [0; 3];
        assert_eq!(decimal(200, &mut digits), b"200");
    }

    #[test]
    fn oversized_message_is_refused_from_its_prefix() {
        let mut r = MessageReader::new(10);
        r.feed(Bytes::from_static(&[0, 0, 0, 0, 11]));
        let e = r.next_message().unwrap_err();
        assert_eq!(e.code, rpc::ErrorCode::ResourceExhausted.0);
        assert_eq!(
            e.message,
            "grpc: received message larger than max (11 vs. 10)"
        );
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("a b%c\n"), "a b%25c%0A");
    }
}
