//! etcd's v3 gRPC API on the client port.
//!
//! A connection that opens with the HTTP/2 preface lands here. HTTP/2 is
//! the server's own ([`super::http2`]), driven on the glommio executor
//! that accepted the socket. Each call's protobuf request becomes the
//! native flatbuffers request the Rust client would send, enters the shard
//! through the same router as native requests (so it is batched into the
//! same log entries and applied by the same code), and the native answer is
//! translated back: the translation is the only cost gRPC adds.
//!
//! ```text
//!  etcd client ─HTTP/2─▶ http2 ─▶ gRPC message ─protobuf→flatbuffers─▶ router ─▶ shard
//!  etcd client ◀─HTTP/2── http2 ◀─ gRPC message ◀─flatbuffers→protobuf── router ◀┘
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

use super::conn::budget::AnswerBudget;
use super::http2::{self, RecvStream, Request, SendResponse};
use super::route::Router;
use super::Shared;
use crate::limits;
use answer::{send_paced, Held, Ticket};
use codec::{MessageReader, Status, CONTENT_TYPE};
pub use session::Session;

/// Serve one gRPC connection until the client closes it.
pub async fn serve<S>(shared: Arc<Shared>, router: Rc<Router>, io: S, cert_user: Option<String>)
where
    S: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin + 'static,
{
    let message_max =
        shared.config.max_request_bytes as usize + limits::GRPC_MESSAGE_OVERHEAD_BYTES;
    let session = Session::open(router.clone());
    router.set_cert_user(session.conn(), cert_user);
    let budget = Rc::new(AnswerBudget::new());
    http2::serve(io, |request, respond| {
        let call = call(
            session.clone(),
            budget.clone(),
            request,
            respond,
            message_max,
        );
        glommio::spawn_local(call).detach();
    })
    .await;
    // Calls still waiting for room end.
    budget.close();
    session.close().await;
}

/// One HTTP/2 stream: one gRPC call.
async fn call(
    session: Rc<Session>,
    budget: Rc<AnswerBudget>,
    request: Request,
    mut respond: SendResponse,
    message_max: usize,
) {
    let Request { fields, body } = request;
    let path = fields.get_str(":path").unwrap_or_default();
    let grpc = fields
        .get("content-type")
        .is_some_and(|v| v.starts_with(b"application/grpc"));
    if fields.get(":method") != Some(b"POST") || !grpc {
        let _ = respond.send_status(415);
        return;
    }
    if let Some(enc) = fields.get("grpc-encoding") {
        if enc != b"identity" {
            let enc = String::from_utf8_lossy(enc).into_owned();
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
    let require_leader = fields.get("hasleader") == Some(b"true");
    if require_leader && !services::has_leader(&session).await {
        let status = Status::new(
            cairn_wire::rpc::ErrorCode::Unavailable,
            "etcdserver: no leader",
        );
        finish(respond, Err(status), None).await;
        return;
    }
    let token = session::token_of(&fields);
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

/// Answer a unary call: the message then status OK, or only the error
/// status (gRPC's "trailers-only" response). `held` is the message's
/// charge to the connection's answer budget, if it has one.
async fn finish(mut respond: SendResponse, result: Result<Bytes, Status>, held: Option<Held>) {
    match result {
        Ok(msg) => {
            let Ok(mut send) = respond.send_response(&[CONTENT_TYPE], false) else {
                return;
            };
            if send_paced(&mut send, msg, held).await.is_ok() {
                Status::ok().end(&mut send);
            }
        }
        Err(status) => {
            let _ = status.with_fields(&[CONTENT_TYPE], |f| respond.send_response(f, true));
        }
    }
}
