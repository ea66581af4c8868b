//! Unary gRPC calls over the connection's HTTP/2 client (`http2/`).
//!
//! A unary call is one HTTP/2 stream: a HEADERS frame (`POST`, the method's
//! path, `content-type: application/grpc`, `te: trailers`, and the auth
//! token when the run has a user), one DATA frame holding the message with
//! gRPC's 5-byte prefix (a compression flag, then the length as a
//! big-endian `u32`), and from the server response HEADERS, DATA with the
//! answer, and trailers carrying `grpc-status` and `grpc-message`. A
//! server that fails a call before answering may put the status in the
//! response HEADERS alone ("trailers-only").
//!
//! The load generator sends thousands of these per second from one thread,
//! so each call costs only what the protocol needs: the header block is
//! encoded once per connection but for the method's path, request headers
//! and message are framed into one buffer before the connection's lock is
//! taken, and the answer is decoded from the received bytes without
//! copying them when they arrive in one frame. [`Answer`] reads a stream's
//! response as it arrives and decides the call's outcome.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use cairn_wire::hpack;

use super::dial::Dialed;
use super::http2::{Connection, Request};
use super::op_error;
use crate::limits::RESPONSE_MESSAGE_BYTES_MAX;
use crate::target::OpError;

/// Bytes of gRPC's message prefix: a compression flag and a `u32` length.
const MESSAGE_PREFIX_BYTES: usize = 5;

/// Bytes the `:path` field takes beside the path (a capacity hint): one
/// for the name's index, up to three for the path's length.
const PATH_FIELD_OVERHEAD_BYTES: usize = 4;

/// One HTTP/2 connection for unary calls. Cloning shares the connection.
#[derive(Clone)]
pub(super) struct UnaryConn {
    conn: Arc<Connection>,
    template: Arc<Template>,
}

/// What every request on a connection carries, HPACK-encoded: the fields
/// before the method's `:path` and those after it (pseudo-header fields
/// come first). Every field is a literal the server does not index.
struct Template {
    authority: String,
    /// `:method POST`, `:scheme`, `:authority`.
    pseudo: Vec<u8>,
    /// `content-type`, `te` and, with a user, `token`.
    regular: Vec<u8>,
}

impl std::fmt::Debug for UnaryConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnaryConn")
            .field("authority", &self.template.authority)
            .finish_non_exhaustive()
    }
}

/// HPACK's static table entries `:method: POST`, `:scheme: http` and
/// `:scheme: https` (RFC 7541 Appendix A), as indexed fields.
const METHOD_POST: u8 = 0x80 | 3;
const SCHEME_HTTP: u8 = 0x80 | 6;
const SCHEME_HTTPS: u8 = 0x80 | 7;

impl UnaryConn {
    pub(super) fn new(dialed: Dialed) -> UnaryConn {
        let scheme = if dialed.https {
            SCHEME_HTTPS
        } else {
            SCHEME_HTTP
        };
        let mut pseudo = vec![METHOD_POST, scheme];
        hpack::encode_field(b":authority", dialed.authority.as_bytes(), &mut pseudo);
        let mut regular = Vec::new();
        hpack::encode_field(b"content-type", b"application/grpc", &mut regular);
        // gRPC servers refuse requests from clients that do not say they
        // read trailers.
        hpack::encode_field(b"te", b"trailers", &mut regular);
        UnaryConn {
            conn: Arc::new(dialed.conn),
            template: Arc::new(Template {
                authority: dialed.authority,
                pseudo,
                regular,
            }),
        }
    }

    /// The same connection, sending `token` as the `token` metadata of
    /// every call, as etcd's Go client sends the token from Authenticate.
    pub(super) fn with_token(&self, token: &str) -> Result<UnaryConn, OpError> {
        // What an HTTP field value may hold (visible ASCII, space, tab).
        if !token
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) || b == b'\t')
        {
            return Err(OpError::new("the token is not printable ASCII"));
        }
        let mut regular = self.template.regular.clone();
        hpack::encode_field(b"token", token.as_bytes(), &mut regular);
        Ok(UnaryConn {
            conn: Arc::clone(&self.conn),
            template: Arc::new(Template {
                authority: self.template.authority.clone(),
                pseudo: self.template.pseudo.clone(),
                regular,
            }),
        })
    }

    /// Calls the method at `path` with `request` and decodes its answer.
    /// A failed call is counted by kind: the server's `grpc-message` (e.g.
    /// `etcdserver: too many requests`), `grpc: <code>` when it sent none,
    /// or `transport: ...` when the connection failed.
    pub(super) async fn call<Req, Resp>(
        &self,
        path: &'static str,
        request: &Req,
    ) -> Result<Resp, OpError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let template = &*self.template;
        let len = request.encoded_len();
        let block_len =
            template.pseudo.len() + PATH_FIELD_OVERHEAD_BYTES + path.len() + template.regular.len();
        let framed = Request::new(
            block_len + MESSAGE_PREFIX_BYTES + len,
            |block| {
                block.extend_from_slice(&template.pseudo);
                hpack::encode_field(b":path", path.as_bytes(), block);
                block.extend_from_slice(&template.regular);
            },
            |body| encode_message(request, len, body),
        );
        let message = self.conn.call(framed).await?;
        Resp::decode(message).map_err(|e| op_error(format!("grpc: decoding the answer: {e}")))
    }
}

const GRPC_STATUS: &[u8] = b"grpc-status";
const GRPC_MESSAGE: &[u8] = b"grpc-message";

/// Appends `message` (of `len` bytes encoded) with gRPC's prefix
/// (uncompressed).
fn encode_message<M: prost::Message>(message: &M, len: usize, out: &mut Vec<u8>) {
    out.push(0);
    // etcd refuses requests far smaller than 4 GiB (--max-request-bytes),
    // and the harness bounds keys, values and txn ops below that.
    assert!(len <= u32::MAX as usize, "a request of {len} bytes");
    out.extend_from_slice(&(len as u32).to_be_bytes());
    // Cannot fail: a Vec grows to hold the message.
    message
        .encode(out)
        .expect("the buffer holds the encoded message");
}

/// The fields of a response header block (or trailers) that decide a
/// call's outcome; of a field sent twice, the first counts.
#[derive(Default, Debug, Clone)]
pub(super) struct Fields {
    /// `:status`, when it is a number.
    status: Option<u16>,
    /// `grpc-status`; one that is not a number counts as Unknown.
    grpc_status: Option<i32>,
    /// `grpc-message`, still percent-encoded.
    grpc_message: Option<Vec<u8>>,
}

impl Fields {
    pub(super) fn clear(&mut self) {
        *self = Fields::default();
    }

    /// Notes the field if it is one of those that count.
    pub(super) fn record(&mut self, name: &[u8], value: &[u8]) {
        let number = || std::str::from_utf8(value).ok()?.parse::<i32>().ok();
        match name {
            b":status" if self.status.is_none() => {
                self.status = number().and_then(|n| u16::try_from(n).ok());
            }
            GRPC_STATUS if self.grpc_status.is_none() => {
                self.grpc_status = Some(number().unwrap_or(tonic::Code::Unknown as i32));
            }
            GRPC_MESSAGE if self.grpc_message.is_none() => {
                self.grpc_message = Some(value.to_vec());
            }
            _ => {}
        }
    }
}

/// A stream's response as it arrives, until it decides the call: each
/// step returns the outcome (the answer's message, without gRPC's prefix,
/// or why the call failed) once there is one. Every end of the stream
/// decides it.
#[derive(Default)]
pub(super) enum Answer {
    /// No response headers yet.
    #[default]
    Head,
    /// The headers said 200: the message's bytes so far.
    Body(Received),
}

type Outcome = Option<Result<Bytes, OpError>>;

impl Answer {
    /// A header block: the response headers, then the trailers.
    pub(super) fn headers(&mut self, fields: &Fields, end_stream: bool) -> Outcome {
        match self {
            Answer::Head => {
                if let (Some(100..=199), false) = (fields.status, end_stream) {
                    // An informational response; the real one follows.
                    return None;
                }
                if fields.grpc_status.is_some() {
                    // Trailers-only: the status came without an answer.
                    return Some(check_status(fields).and_then(|()| Err(missing_message())));
                }
                match fields.status {
                    Some(200) => {}
                    Some(status) => {
                        return Some(Err(op_error(format!("grpc: HTTP status {status}"))));
                    }
                    None => return Some(Err(transport("response headers without a :status"))),
                }
                if end_stream {
                    return Some(Err(missing_status()));
                }
                *self = Answer::Body(Received::default());
                None
            }
            Answer::Body(received) => {
                if !end_stream {
                    return Some(Err(transport("trailers that do not end the stream")));
                }
                let received = std::mem::take(received);
                Some(check_status(fields).and_then(|()| received.into_message()))
            }
        }
    }

    /// A DATA frame's content.
    pub(super) fn data(&mut self, chunk: Bytes, end_stream: bool) -> Outcome {
        match self {
            Answer::Head => Some(Err(transport("DATA before the response headers"))),
            Answer::Body(received) => {
                if !chunk.is_empty() {
                    if let Err(error) = received.push(chunk) {
                        return Some(Err(error));
                    }
                }
                // The answer ended without trailers.
                end_stream.then(|| Err(missing_status()))
            }
        }
    }
}

fn missing_message() -> OpError {
    op_error("grpc: missing response message".to_string())
}

fn missing_status() -> OpError {
    op_error("grpc: missing grpc-status".to_string())
}

/// The answer's bytes as they arrive: one frame's bytes are kept as they
/// are; more than one are joined.
#[derive(Default)]
pub(super) struct Received {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
    len: usize,
}

impl Received {
    fn push(&mut self, chunk: Bytes) -> Result<(), OpError> {
        self.len = self.len.saturating_add(chunk.len());
        if self.len > MESSAGE_PREFIX_BYTES + RESPONSE_MESSAGE_BYTES_MAX {
            return Err(too_large(self.len - MESSAGE_PREFIX_BYTES));
        }
        match (&mut self.first, &mut self.joined) {
            (None, _) => self.first = Some(chunk),
            (Some(first), None) => {
                let mut joined = BytesMut::with_capacity(first.len() + chunk.len());
                joined.put_slice(first);
                joined.put_slice(&chunk);
                self.joined = Some(joined);
            }
            (Some(_), Some(joined)) => joined.put_slice(&chunk),
        }
        Ok(())
    }

    /// The one message of a unary answer, without its prefix.
    fn into_message(self) -> Result<Bytes, OpError> {
        let mut body = match (self.first, self.joined) {
            (_, Some(joined)) => joined.freeze(),
            (Some(first), None) => first,
            (None, None) => return Err(missing_message()),
        };
        if body.len() < MESSAGE_PREFIX_BYTES {
            return Err(op_error("grpc: truncated message prefix".to_string()));
        }
        let compressed = body.get_u8();
        let len = body.get_u32() as usize;
        if compressed != 0 {
            // No grpc-accept-encoding is sent, so a server must not compress.
            return Err(op_error(
                "grpc: compressed answer not asked for".to_string(),
            ));
        }
        if len > RESPONSE_MESSAGE_BYTES_MAX {
            return Err(too_large(len));
        }
        if body.len() != len {
            return Err(op_error(format!(
                "grpc: answer of {} bytes, its prefix says {len}",
                body.len()
            )));
        }
        Ok(body)
    }
}

fn too_large(len: usize) -> OpError {
    op_error(format!(
        "grpc: answer of {len} bytes is over the limit of {RESPONSE_MESSAGE_BYTES_MAX} bytes"
    ))
}

/// The call's outcome from `grpc-status` and `grpc-message`: etcd puts its
/// error text (`etcdserver: too many requests`) in the message, and that
/// text is the kind; a failure without a message is counted by its code.
fn check_status(fields: &Fields) -> Result<(), OpError> {
    let code = match fields.grpc_status {
        None => return Err(missing_status()),
        Some(0) => return Ok(()),
        Some(code) => tonic::Code::from(code),
    };
    let message = fields
        .grpc_message
        .as_deref()
        .map(percent_decode)
        .unwrap_or_default();
    if message.is_empty() {
        Err(op_error(format!("grpc: {code:?}")))
    } else {
        Err(op_error(message))
    }
}

/// gRPC percent-encodes the bytes of `grpc-message` outside printable
/// ASCII, and `%` itself; a `%` not followed by two hex digits is kept.
fn percent_decode(text: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let escaped = match (text[i], text.get(i + 1), text.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)),
            _ => None,
        };
        match escaped {
            Some((hi, lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            None => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A failure of the connection or of the stream rather than of the call.
pub(super) fn transport(reason: impl std::fmt::Display) -> OpError {
    op_error(format!("transport: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &str, message: Option<&str>) -> Fields {
        let mut fields = Fields::default();
        fields.record(b":status", b"200");
        fields.record(GRPC_STATUS, code.as_bytes());
        if let Some(message) = message {
            fields.record(GRPC_MESSAGE, message.as_bytes());
        }
        fields
    }

    #[test]
    fn a_failed_call_is_counted_by_its_message_or_else_its_code() {
        assert_eq!(check_status(&status("0", None)), Ok(()));
        assert_eq!(
            check_status(&status("14", Some("etcdserver: too many requests"))),
            Err(OpError::new("etcdserver: too many requests"))
        );
        assert_eq!(
            check_status(&status("9", None)),
            Err(OpError::new("grpc: FailedPrecondition"))
        );
        assert_eq!(
            check_status(&Fields::default()),
            Err(OpError::new("grpc: missing grpc-status"))
        );
        assert_eq!(
            check_status(&status("x", None)),
            Err(OpError::new("grpc: Unknown"))
        );
        let mut twice = status("0", None);
        twice.record(GRPC_STATUS, b"14");
        assert_eq!(check_status(&twice), Ok(()), "the first grpc-status counts");
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            percent_decode(b"etcdserver: key not found %25 %E2%9C%93"),
            "etcdserver: key not found % \u{2713}"
        );
        assert_eq!(percent_decode(b"100% %zz %4"), "100% %zz %4");
    }

    #[test]
    fn an_answer_split_over_frames_is_joined() {
        let message = pb_message();
        let framed = framed(&message);
        let mut received = Received::default();
        for piece in framed.chunks(3) {
            received.push(Bytes::copy_from_slice(piece)).unwrap();
        }
        let decoded: cairn_wire::etcdpb::PutRequest =
            prost::Message::decode(received.into_message().unwrap()).unwrap();
        assert_eq!(decoded, message);
    }

    #[test]
    fn malformed_answers_are_errors() {
        let framed = framed(&pb_message());
        let one = |bytes: &[u8]| {
            let mut received = Received::default();
            received.push(Bytes::copy_from_slice(bytes)).unwrap();
            received.into_message()
        };
        assert!(one(&framed[..3]).is_err(), "short prefix");
        assert!(one(&framed[..framed.len() - 1]).is_err(), "short message");
        let mut compressed = framed.to_vec();
        compressed[0] = 1;
        assert!(one(&compressed).is_err(), "compressed");
        assert_eq!(
            Received::default().into_message(),
            Err(OpError::new("grpc: missing response message"))
        );
    }

    fn framed<M: prost::Message>(message: &M) -> Vec<u8> {
        let mut out = Vec::new();
        encode_message(message, message.encoded_len(), &mut out);
        out
    }

    fn pb_message() -> cairn_wire::etcdpb::PutRequest {
        cairn_wire::etcdpb::PutRequest {
            key: Bytes::from_static(b"key"),
            value: Bytes::from(vec![7u8; 100]),
            ..Default::default()
        }
    }
}
