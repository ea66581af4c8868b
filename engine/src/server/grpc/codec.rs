//! gRPC's framing over HTTP/2: each message is a 1-byte compressed flag, a
//! 4-byte big-endian length and the protobuf bytes; a call ends with the
//! `grpc-status` and `grpc-message` trailers.

use bytes::{Buf, Bytes, BytesMut};
use cairn_wire::rpc;
use http::{HeaderMap, HeaderValue};

/// The bytes in front of every gRPC message.
pub const PREFIX_BYTES: usize = 5;

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

    /// The trailers that end a call with this status.
    pub fn trailers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", HeaderValue::from(u16::from(self.code)));
        if !self.message.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&percent_encode(&self.message)) {
                map.insert("grpc-message", v);
            }
        }
        map
    }
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
pub struct MessageReader {
    buf: BytesMut,
    message_bytes_max: usize,
}

impl MessageReader {
    pub fn new(message_bytes_max: usize) -> MessageReader {
        MessageReader {
            buf: BytesMut::new(),
            message_bytes_max,
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes of a message still incomplete.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next whole message, `None` if more bytes are needed.
    ///
    /// Errors: a compressed message (only `identity` is accepted) or one
    /// larger than the limit, which is checked from the prefix before the
    /// message is buffered.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buf.len() < PREFIX_BYTES {
            return Ok(None);
        }
        let compressed = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
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
        if self.buf.len() < PREFIX_BYTES + len {
            return Ok(None);
        }
        self.buf.advance(PREFIX_BYTES);
        Ok(Some(self.buf.split_to(len).freeze()))
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
        r.feed(&framed[..3]);
        assert_eq!(r.next_message(), Ok(None));
        r.feed(&framed[3..]);
        let got = r.next_message().unwrap().unwrap();
        assert_eq!(PutRequest::decode(got).unwrap(), msg);
        assert!(r.is_empty());
    }

    #[test]
    fn oversized_message_is_refused_from_its_prefix() {
        let mut r = MessageReader::new(10);
        r.feed(&[0, 0, 0, 0, 11]);
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
