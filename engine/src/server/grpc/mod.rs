//! etcd's v3 gRPC API on the client port.
//!
//! A connection that opens with the HTTP/2 preface lands here. HTTP/2 is
//! `h2`'s, driven on the glommio executor that accepted the socket (h2
//! needs no runtime, only tokio's I/O traits, which tokio-util's compat
//! layer bridges from glommio's). Each call's protobuf request becomes the
//! native flatbuffers request the Rust client would send, enters the shard
//! through the same router as native requests (so it is batched into the
//! same log entries and applied by the same code), and the native answer is
//! translated back: the translation is the only cost gRPC adds.
//!
//! ```text
//!  etcd client ─HTTP/2─▶ h2 ─▶ gRPC message ─protobuf→flatbuffers─▶ router ─▶ shard
//!  etcd client ◀─HTTP/2── h2 ◀─ gRPC message ◀─flatbuffers→protobuf── router ◀┘
//! ```
//!
//! Errors keep the shard's gRPC code and etcd's message text; response
//! headers carry the shard's cluster id, member id, revision and term.
//!
//! A client that does not read its answers is held to the same answer-byte
//! budget as a native one (see [`answer`]).

mod answer;
mod answer_slot;
mod auth;
mod codec;
mod convert;
mod election;
mod kv;
mod kv_answer;
mod lock;
mod recipe;
mod services;
mod session;
mod snapshot;
mod stream;

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderValue, Response};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::conn::budget::AnswerBudget;
use super::route::Router;
use super::Shared;
use crate::limits;
use answer::{send_paced, Held, Ticket};
use codec::{MessageReader, Status};
pub use session::Session;

/// Serve one gRPC connection until the client closes it.
pub async fn serve<S>(shared: Arc<Shared>, router: Rc<Router>, io: S, cert_user: Option<String>)
where
    S: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin + 'static,
{
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(limits::GRPC_STREAMS_PER_CONN_MAX)
        .max_send_buffer_size(limits::GRPC_STREAM_SEND_BUFFER_BYTES_MAX);
    let mut conn = match builder.handshake::<_, Bytes>(io.compat()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("HTTP/2 handshake failed: {e}");
            return;
        }
    };
    let message_max =
        shared.config.max_request_bytes as usize + limits::GRPC_MESSAGE_OVERHEAD_BYTES;
    let session = Session::open(router.clone());
    router.set_cert_user(session.conn(), cert_user);
    let budget = Rc::new(AnswerBudget::new());
    while let Some(next) = conn.accept().await {
        match next {
            Ok((request, respond)) => {
                let call = call(
                    session.clone(),
                    budget.clone(),
                    request,
                    respond,
                    message_max,
                );
                glommio::spawn_local(call).detach();
            }
            Err(e) => {
                tracing::debug!(conn = session.conn(), "HTTP/2 connection failed: {e}");
                break;
            }
        }
    }
    // Calls still waiting for room end.
    budget.close();
    session.close().await;
}

// Request header names every call looks up, built once (a name given as
// `&str` is parsed on every lookup).
const GRPC_ENCODING: http::HeaderName = http::HeaderName::from_static("grpc-encoding");
const HAS_LEADER: http::HeaderName = http::HeaderName::from_static("hasleader");

/// One HTTP/2 stream: one gRPC call.
async fn call(
    session: Rc<Session>,
    budget: Rc<AnswerBudget>,
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    message_max: usize,
) {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let grpc = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if parts.method != http::Method::POST || !grpc {
        let mut resp = Response::new(());
        *resp.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        let _ = respond.send_response(resp, true);
        return;
    }
    if let Some(enc) = parts.headers.get(GRPC_ENCODING) {
        if enc.as_bytes() != b"identity" {
            let enc = String::from_utf8_lossy(enc.as_bytes()).into_owned();
            let status = Status::unimplemented(format!(
                "grpc: Decompressor is not installed for grpc-encoding \"{enc}\""
            ));
            finish(respond, Err(status), None).await;
            return;
        }
    }
    let streaming = services::is_streaming(path);
    let recipe = services::is_recipe(path);
    // A unary call's request is read only once its answer has room.
    let ticket = if streaming || recipe {
        None
    } else {
        match Ticket::take(&budget).await {
            Some(t) => Some(t),
            None => return,
        }
    };
    // clientv3's WithRequireLeader: fail fast while no leader is known.
    let require_leader = parts
        .headers
        .get(HAS_LEADER)
        .is_some_and(|v| v.as_bytes() == b"true");
    if require_leader && !services::has_leader(&session).await {
        let status = Status::new(
            cairn_wire::rpc::ErrorCode::Unavailable,
            "etcdserver: no leader",
        );
        finish(respond, Err(status), None).await;
        return;
    }
    let token = session::token_of(&parts.headers);
    // Streams and recipes live on the heap: every call's task is as large
    // as its largest path, and most calls are small unary ones.
    if streaming {
        Box::pin(stream::serve(
            session,
            path,
            body,
            respond,
            message_max,
            token,
        ))
        .await;
        return;
    }
    let caller = session::Caller {
        session: &session,
        token: token.as_deref(),
    };
    let result = match read_one(body, message_max).await {
        Ok(msg) if recipe => {
            let cancel = recipe::Cancel::new(&mut respond);
            Box::pin(services::recipe(&caller, &cancel, path, msg)).await
        }
        Ok(msg) => services::unary(&caller, path, msg).await,
        Err(status) => Err(status),
    };
    let held = match (&result, ticket) {
        (Ok(msg), Some(t)) => Some(t.answered(msg.len())),
        _ => None,
    };
    finish(respond, result, held).await;
}

/// The one message of a unary call's request stream.
async fn read_one(mut body: RecvStream, message_max: usize) -> Result<Bytes, Status> {
    let mut reader = MessageReader::new(message_max);
    let mut message = None;
    while let Some(chunk) = body.data().await {
        let chunk =
            chunk.map_err(|e| Status::new(cairn_wire::rpc::ErrorCode::Cancelled, e.to_string()))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        reader.feed(chunk);
        if let Some(m) = reader.next_message()? {
            if message.is_some() {
                return Err(Status::unimplemented(
                    "grpc: client streaming is not supported by this method",
                ));
            }
            message = Some(m);
        }
    }
    match message {
        Some(m) if reader.is_empty() => Ok(m),
        _ => Err(Status::internal(
            "grpc: request stream ended without a whole message",
        )),
    }
}

/// The response headers of a gRPC call.
fn grpc_response() -> Response<()> {
    let mut resp = Response::new(());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    resp
}

/// Answer a unary call: the message then status OK, or only the error
/// status (gRPC's "trailers-only" response). `held` is the message's
/// charge to the connection's answer budget, if it has one.
async fn finish(
    mut respond: SendResponse<Bytes>,
    result: Result<Bytes, Status>,
    held: Option<Held>,
) {
    match result {
        Ok(msg) => {
            let Ok(mut send) = respond.send_response(grpc_response(), false) else {
                return;
            };
            if send_paced(&mut send, msg, held).await.is_ok() {
                let _ = send.send_trailers(Status::ok().trailers());
            }
        }
        Err(status) => {
            let mut resp = grpc_response();
            status.add_to(resp.headers_mut());
            let _ = respond.send_response(resp, true);
        }
    }
}
