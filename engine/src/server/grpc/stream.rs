//! The bidirectional streams: Watch and LeaseKeepAlive.
//!
//! A watch stream's creates, cancels and progress requests become native
//! watch requests on the connection's session; their answers and the events
//! pushed under them come back on the stream's queue, are translated to
//! `WatchResponse`s and written in order. A push is reported to the shard
//! once HTTP/2 has room for it, so a client that reads slowly holds back
//! the shard's pushes (the shard then catches its watches up from history,
//! as for a native connection) instead of filling memory.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use crate::server::http2::{RecvStream, SendResponse, SendStream};
use bytes::Bytes;
use cairn_wire::etcdpb::{self as pb, path};
use cairn_wire::{decode_response, rpc, EventRef, ResponseBodyView, WatchCreateParams};
use glommio::channels::local_channel::{self, LocalReceiver};
use prost::Message;

use super::codec::CONTENT_TYPE;
use super::codec::{frame, MessageReader, Status};
use super::convert::header;
use super::session::{Delivered, Session};
use crate::limits;

/// Serve a streaming method; `path` is one that
/// [`is_streaming`](super::services::is_streaming) accepts.
pub async fn serve(
    session: Rc<Session>,
    p: &str,
    body: RecvStream,
    mut respond: SendResponse,
    message_max: usize,
    token: Option<String>,
) {
    let Ok(send) = respond.send_response(&[CONTENT_TYPE], false) else {
        return;
    };
    let reader = Requests {
        body,
        reader: MessageReader::new(message_max),
    };
    let result = match p {
        path::WATCH => watch(session, token, reader, send).await,
        path::SNAPSHOT => super::snapshot::serve(session, token, reader, send).await,
        path::OBSERVE => observe(session, token, reader, send).await,
        _ => keep_alive(session, token, reader, send).await,
    };
    if let Err((status, mut send)) = result {
        status.end(&mut send);
    }
}

pub(super) type StreamResult = Result<(), (Status, SendStream)>;

/// The messages a client sends on a stream.
pub(super) struct Requests {
    body: RecvStream,
    reader: MessageReader,
}

impl Requests {
    /// The next message, `Ok(None)` when the client ended its side.
    pub(super) async fn next<M: Message + Default>(&mut self) -> Result<Option<M>, Status> {
        loop {
            if let Some(m) = self.reader.next_message()? {
                return M::decode(m).map(Some).map_err(Status::malformed);
            }
            match self.body.data().await {
                Some(Ok(chunk)) => {
                    self.reader.feed(chunk);
                }
                Some(Err(e)) => {
                    return Err(Status::new(rpc::ErrorCode::Cancelled, e.to_string()));
                }
                None => return Ok(None),
            }
        }
    }
}

/// Write one message once HTTP/2 has some room for it.
pub(super) async fn write(send: &mut SendStream, msg: Bytes) -> Result<(), ()> {
    send.room().await.map_err(|_| ())?;
    send.send_data(msg, false).map_err(|_| ())
}

/// Election.Observe: one request, then the leader's changes until the
/// client goes.
async fn observe(
    session: Rc<Session>,
    token: Option<String>,
    mut reqs: Requests,
    mut send: SendStream,
) -> StreamResult {
    let r: pb::LeaderRequest = match reqs.next().await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let status = Status::internal("grpc: request stream ended without a whole message");
            return Err((status, send));
        }
        Err(status) => return Err((status, send)),
    };
    let caller = super::session::Caller {
        session: &session,
        token: token.as_deref(),
    };
    match super::election::observe(&caller, r, &mut send).await {
        Ok(()) => {
            let ok = Status {
                code: 0,
                message: String::new(),
            };
            ok.end(&mut send);
            Ok(())
        }
        Err(status) => Err((status, send)),
    }
}

async fn keep_alive(
    session: Rc<Session>,
    token: Option<String>,
    mut reqs: Requests,
    mut send: SendStream,
) -> StreamResult {
    loop {
        let r: pb::LeaseKeepAliveRequest = match reqs.next().await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(status) => return Err((status, send)),
        };
        let (id, f) = session.encode_as(token.as_deref(), |e, id| {
            e.lease_keep_alive_request(id, r.id)
        });
        let answer = match session.call(id, f).await {
            Ok(a) => a,
            Err(status) => return Err((status, send)),
        };
        let msg = match decode_response(&answer) {
            Ok(view) => match view.body {
                Ok(ResponseBodyView::LeaseKeepAlive(k)) => frame(&pb::LeaseKeepAliveResponse {
                    header: Some(header(&view.header)),
                    id: k.id(),
                    ttl: k.ttl(),
                }),
                Ok(_) => {
                    return Err((
                        Status::internal("etcdserver: unexpected response type"),
                        send,
                    ))
                }
                Err(e) => {
                    let status = Status {
                        code: e.code.0,
                        message: e.message.to_owned(),
                    };
                    return Err((status, send));
                }
            },
            Err(e) => return Err((Status::internal(e.to_string()), send)),
        };
        if write(&mut send, msg).await.is_err() {
            return Ok(());
        }
    }
    Status::ok().end(&mut send);
    Ok(())
}

/// What the reader and writer of one watch stream share.
#[derive(Default)]
struct WatchState {
    /// Ids of the native requests whose answers and pushes this stream
    /// takes.
    ids: HashSet<u64>,
    /// Native ids of the create requests (their pushes go on after the
    /// answer).
    creates: HashSet<u64>,
    /// Watches created and not canceled, by watch id.
    live: HashSet<i64>,
}

async fn watch(
    session: Rc<Session>,
    token: Option<String>,
    mut reqs: Requests,
    send: SendStream,
) -> StreamResult {
    let token = token.as_deref();
    let (tx, rx) = local_channel::new_bounded(limits::CONN_OUTBOUND_WITH_PUSHES);
    let tx = Rc::new(tx);
    let state = Rc::new(RefCell::new(WatchState::default()));
    let writer = glommio::spawn_local(watch_writer(session.clone(), state.clone(), rx, send));
    let ended = loop {
        let r: pb::WatchRequest = match reqs.next().await {
            Ok(Some(r)) => r,
            Ok(None) => break None,
            Err(status) => break Some(status),
        };
        let (id, f, create) = match &r.request_union {
            Some(pb::WatchRequestUnion::CreateRequest(c)) => {
                let mut filters = Vec::with_capacity(c.filters.len());
                for &f in &c.filters {
                    match super::convert::enum_i8(f, 1, "watch filter") {
                        Ok(v) => filters.push(rpc::FilterType(v)),
                        Err(status) => {
                            return finish_watch(&session, token, &state, tx, writer, Some(status))
                                .await
                        }
                    }
                }
                let params = WatchCreateParams {
                    key: &c.key,
                    range_end: &c.range_end,
                    start_revision: c.start_revision,
                    progress_notify: c.progress_notify,
                    filters: &filters,
                    prev_kv: c.prev_kv,
                    watch_id: c.watch_id,
                    fragment: c.fragment,
                };
                let (id, f) = session.encode_as(token, |e, id| e.watch_create_request(id, &params));
                (id, f, true)
            }
            Some(pb::WatchRequestUnion::CancelRequest(c)) => {
                let (id, f) =
                    session.encode_as(token, |e, id| e.watch_cancel_request(id, c.watch_id));
                (id, f, false)
            }
            Some(pb::WatchRequestUnion::ProgressRequest(_)) => {
                let (id, f) = session.encode_as(token, |e, id| e.watch_progress_request(id));
                (id, f, false)
            }
            // etcd ignores an empty request.
            None => continue,
        };
        {
            let mut st = state.borrow_mut();
            st.ids.insert(id);
            if create {
                st.creates.insert(id);
            }
        }
        if let Err(status) = session.open_stream(id, f, tx.clone()).await {
            break Some(status);
        }
    };
    finish_watch(&session, token, &state, tx, writer, ended).await
}

/// End a watch stream: cancel its watches, stop taking their pushes, and
/// let the writer drain and end the call with `status` (OK if `None`).
async fn finish_watch(
    session: &Session,
    token: Option<&str>,
    state: &RefCell<WatchState>,
    tx: Rc<local_channel::LocalSender<Delivered>>,
    writer: glommio::Task<Option<SendStream>>,
    status: Option<Status>,
) -> StreamResult {
    let (ids, live) = {
        let mut st = state.borrow_mut();
        (std::mem::take(&mut st.ids), std::mem::take(&mut st.live))
    };
    for id in ids {
        session.forget(id);
    }
    for watch_id in live {
        let (id, f) = session.encode_as(token, |e, id| e.watch_cancel_request(id, watch_id));
        // The answer has no reader; the call only waits for it.
        let _ = session.call(id, f).await;
    }
    drop(tx);
    let Some(mut send) = writer.await else {
        return Ok(());
    };
    let status = status.unwrap_or(Status {
        code: 0,
        message: String::new(),
    });
    status.end(&mut send);
    Ok(())
}

/// Translate and write everything the stream's queue receives; gives the
/// send half back when the queue closes (or `None` if the client went).
async fn watch_writer(
    session: Rc<Session>,
    state: Rc<RefCell<WatchState>>,
    rx: LocalReceiver<Delivered>,
    mut send: SendStream,
) -> Option<SendStream> {
    let mut alive = true;
    while let Some(d) = rx.recv().await {
        if alive {
            if let Some(msg) = watch_message(&session, &state, &d) {
                alive = write(&mut send, msg).await.is_ok();
            }
        }
        session.push_done(&d).await;
    }
    alive.then_some(send)
}

fn watch_message(session: &Session, state: &RefCell<WatchState>, d: &Delivered) -> Option<Bytes> {
    let view = decode_response(&d.frame).ok()?;
    let mut st = state.borrow_mut();
    let is_create = st.creates.contains(&view.id);
    if !d.push && !is_create {
        // A cancel or progress request: its one answer is all there is.
        st.ids.remove(&view.id);
        session.forget(view.id);
    }
    let resp = match view.body {
        Ok(ResponseBodyView::Watch(w)) => {
            if w.created() && !w.canceled() {
                st.live.insert(w.watch_id());
            }
            if w.canceled() {
                st.live.remove(&w.watch_id());
            }
            pb::WatchResponse {
                header: Some(header(&view.header)),
                watch_id: w.watch_id(),
                created: w.created(),
                canceled: w.canceled(),
                compact_revision: w.compact_revision(),
                cancel_reason: w.cancel_reason().unwrap_or("").to_owned(),
                fragment: w.fragment(),
                events: w
                    .events()
                    .into_iter()
                    .flatten()
                    .map(|e| event(e.into()))
                    .collect(),
            }
        }
        Ok(_) => return None,
        // A create the shard refused: etcd reports it as a created and
        // canceled watch with the reason.
        Err(e) => pb::WatchResponse {
            header: Some(header(&view.header)),
            watch_id: -1,
            created: is_create,
            canceled: true,
            cancel_reason: e.message.to_owned(),
            ..Default::default()
        },
    };
    Some(frame(&resp))
}

fn event(e: EventRef<'_>) -> pb::Event {
    pb::Event {
        r#type: if e.kind == rpc::EventType::Delete {
            1
        } else {
            0
        },
        kv: Some(kv_ref(&e.kv)),
        prev_kv: e.prev_kv.as_ref().map(kv_ref),
    }
}

pub(super) fn kv_ref(k: &cairn_wire::KeyValueRef<'_>) -> pb::KeyValue {
    pb::KeyValue {
        key: Bytes::copy_from_slice(k.key),
        create_revision: k.create_revision,
        mod_revision: k.mod_revision,
        version: k.version,
        value: Bytes::copy_from_slice(k.value),
        lease: k.lease,
    }
}
