//! Unary gRPC calls sent straight over an HTTP/2 connection.
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
//! so each call costs only what the protocol needs: the request headers
//! are built once per connection and cloned, the message is encoded into
//! one buffer, the answer is decoded from the received bytes without
//! copying them when they arrive in one frame, and there is no channel,
//! task or timer between the caller and the HTTP/2 connection.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, TE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri, Version};

use super::dial::Dialed;
use super::op_error;
use crate::limits::RESPONSE_MESSAGE_BYTES_MAX;
use crate::target::OpError;

/// Bytes of gRPC's message prefix: a compression flag and a `u32` length.
const MESSAGE_PREFIX_BYTES: usize = 5;

/// One HTTP/2 connection for unary calls. Cloning shares the connection.
#[derive(Clone)]
pub(super) struct UnaryConn {
    send: h2::client::SendRequest<Bytes>,
    template: Arc<Template>,
}

/// What every request on a connection carries.
struct Template {
    scheme: Scheme,
    authority: Authority,
    headers: HeaderMap,
}

impl std::fmt::Debug for UnaryConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnaryConn")
            .field("authority", &self.template.authority)
            .finish_non_exhaustive()
    }
}

impl UnaryConn {
    pub(super) fn new(dialed: Dialed) -> UnaryConn {
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        // gRPC servers refuse requests from clients that do not say they
        // read trailers.
        headers.insert(TE, HeaderValue::from_static("trailers"));
        UnaryConn {
            send: dialed.send,
            template: Arc::new(Template {
                scheme: dialed.scheme,
                authority: dialed.authority,
                headers,
            }),
        }
    }

    /// The same connection, sending `token` as the `token` metadata of
    /// every call, as etcd's Go client sends the token from Authenticate.
    pub(super) fn with_token(&self, token: &str) -> Result<UnaryConn, OpError> {
        let value = HeaderValue::from_str(token)
            .map_err(|_| OpError::new("the token is not printable ASCII"))?;
        let mut headers = self.template.headers.clone();
        headers.insert(HeaderName::from_static("token"), value);
        Ok(UnaryConn {
            send: self.send.clone(),
            template: Arc::new(Template {
                scheme: self.template.scheme.clone(),
                authority: self.template.authority.clone(),
                headers,
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
        let body = encode(request);
        let mut send = self.send.clone().ready().await.map_err(transport)?;
        let (answer, mut stream) = send
            .send_request(self.request(path), false)
            .map_err(transport)?;
        stream.send_data(body, true).map_err(transport)?;
        let (head, mut body) = answer.await.map_err(transport)?.into_parts();
        if head.headers.contains_key(GRPC_STATUS) {
            // Trailers-only: the status came without an answer.
            check_status(&head.headers)?;
            return Err(op_error("grpc: missing response message".to_string()));
        }
        if head.status != StatusCode::OK {
            return Err(op_error(format!(
                "grpc: HTTP status {}",
                head.status.as_u16()
            )));
        }
        let mut received = Received::default();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(transport)?;
            // Hand the bytes back to flow control at once: the answer is
            // held here, and an unreleased window would stall every other
            // call on the connection once the server has used it up.
            body.flow_control()
                .release_capacity(chunk.len())
                .map_err(transport)?;
            received.push(chunk)?;
        }
        match body.trailers().await.map_err(transport)? {
            Some(trailers) => check_status(&trailers)?,
            None => return Err(op_error("grpc: missing grpc-status".to_string())),
        }
        let message = received.into_message()?;
        Resp::decode(message).map_err(|e| op_error(format!("grpc: decoding the answer: {e}")))
    }

    fn request(&self, path: &'static str) -> Request<()> {
        let template = &*self.template;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(template.scheme.clone());
        parts.authority = Some(template.authority.clone());
        parts.path_and_query = Some(PathAndQuery::from_static(path));
        // Scheme and authority were parsed when the connection was opened
        // and the paths are etcd's method names, so this cannot fail.
        let uri = Uri::from_parts(parts).expect("a scheme, an authority and a path make a URI");
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.version_mut() = Version::HTTP_2;
        *request.uri_mut() = uri;
        *request.headers_mut() = template.headers.clone();
        request
    }
}

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";

/// `message` with gRPC's prefix (uncompressed), in one buffer.
fn encode<M: prost::Message>(message: &M) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(MESSAGE_PREFIX_BYTES + len);
    buf.put_u8(0);
    // etcd refuses requests far smaller than 4 GiB (--max-request-bytes),
    // and the harness bounds keys, values and txn ops below that.
    assert!(len <= u32::MAX as usize, "a request of {len} bytes");
    buf.put_u32(len as u32);
    // Cannot fail: the buffer was sized to the encoded length.
    message
        .encode(&mut buf)
        .expect("the buffer holds the encoded message");
    buf.freeze()
}

/// The answer's bytes as they arrive: one frame's bytes are kept as they
/// are; more than one are joined.
#[derive(Default)]
struct Received {
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
            (None, None) => return Err(op_error("grpc: missing response message".to_string())),
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
fn check_status(headers: &HeaderMap) -> Result<(), OpError> {
    let Some(status) = headers.get(GRPC_STATUS) else {
        return Err(op_error("grpc: missing grpc-status".to_string()));
    };
    let code = std::str::from_utf8(status.as_bytes())
        .ok()
        .and_then(|text| text.parse::<i32>().ok());
    let code = match code {
        Some(0) => return Ok(()),
        Some(code) => tonic::Code::from(code),
        None => tonic::Code::Unknown,
    };
    let message = headers
        .get(GRPC_MESSAGE)
        .map(|value| percent_decode(value.as_bytes()))
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

fn transport(error: h2::Error) -> OpError {
    op_error(format!("transport: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &'static str, message: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_static(code));
        if let Some(message) = message {
            headers.insert(GRPC_MESSAGE, HeaderValue::from_static(message));
        }
        headers
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
            check_status(&HeaderMap::new()),
            Err(OpError::new("grpc: missing grpc-status"))
        );
        assert_eq!(
            check_status(&status("x", None)),
            Err(OpError::new("grpc: Unknown"))
        );
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
        let framed = encode(&message);
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
        let framed = encode(&pb_message());
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

    fn pb_message() -> cairn_wire::etcdpb::PutRequest {
        cairn_wire::etcdpb::PutRequest {
            key: Bytes::from_static(b"key"),
            value: Bytes::from(vec![7u8; 100]),
            ..Default::default()
        }
    }
}
