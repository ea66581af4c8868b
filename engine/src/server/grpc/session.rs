//! A gRPC connection's seat at the shard: one router connection, shared by
//! every HTTP/2 stream of the socket, exactly like a native connection's.
//!
//! A call encodes its native request under a fresh id and waits for the
//! answer with that id. Streams (watch) also receive the pushes sent under
//! the ids they opened. One task reads the connection's response queue and
//! hands each frame to whoever waits for its id.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use cairn_wire::{decode_verified_response, rpc, Encoder};
use glommio::channels::local_channel::{LocalReceiver, LocalSender};

use super::answer_slot;
use super::codec::Status;
use crate::limits;
use crate::server::http2::Fields;
use crate::server::id_map::IdMap;
use crate::server::route::{ConnId, Out, Router, ToShard};

/// A frame from the shard, length prefix included, and whether it was a
/// push (counted against a push window until reported with
/// [`Session::push_done`]).
pub struct Delivered {
    pub frame: Vec<u8>,
    pub push: bool,
    /// A watch push: its window is this executor's.
    watch: bool,
}

enum Waiter {
    /// A unary call: the one answer, then the entry goes.
    Once(answer_slot::Filler),
    /// A stream: every frame under the id until the stream forgets it.
    Stream(Rc<LocalSender<Delivered>>),
}

pub struct Session {
    router: Rc<Router>,
    conn: ConnId,
    next_id: Cell<u64>,
    waiting: RefCell<IdMap<u64, Waiter>>,
    /// The connection's in-flight slots: the shard's answers to this
    /// connection always fit its queue.
    slots: glommio::sync::Semaphore,
    encoder: RefCell<Encoder>,
    /// Requests of this turn's calls, sent to the shard together by the
    /// sending task (rung by `bell`): one message for every call an
    /// executor turn started, as a native connection sends one for every
    /// request one read brought.
    pending: RefCell<Vec<Bytes>>,
    bell: LocalSender<()>,
    /// The connection closed: the sending task ends.
    closed: Cell<bool>,
}

impl Session {
    /// Register with the router and start the task that sorts the answers.
    pub fn open(router: Rc<Router>) -> Rc<Session> {
        let (conn, out_rx) = router.register();
        let (bell, ring) = glommio::channels::local_channel::new_bounded(1);
        let session = Rc::new(Session {
            router,
            conn,
            next_id: Cell::new(1),
            waiting: RefCell::new(IdMap::default()),
            slots: glommio::sync::Semaphore::new(limits::CONN_INFLIGHT_MAX as u64),
            encoder: RefCell::new(Encoder::new()),
            pending: RefCell::new(Vec::new()),
            bell,
            closed: Cell::new(false),
        });
        glommio::spawn_local(session.clone().sort_answers(out_rx)).detach();
        glommio::spawn_local(session.clone().send_pending(ring)).detach();
        session
    }

    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Encode a native request under a fresh id: the id and the frame.
    pub fn encode(&self, build: impl FnOnce(&mut Encoder, u64) -> &[u8]) -> (u64, Bytes) {
        self.encode_as(None, build)
    }

    /// [`encode`](Self::encode) carrying the auth token of the call that
    /// sends the request.
    pub fn encode_as(
        &self,
        token: Option<&str>,
        build: impl FnOnce(&mut Encoder, u64) -> &[u8],
    ) -> (u64, Bytes) {
        let id = self.next_id();
        let mut enc = self.encoder.borrow_mut();
        let frame = with_token(&mut enc, token, |e| Ok(build(e, id)));
        (
            id,
            frame.unwrap_or_else(|_| unreachable!("the build is infallible")),
        )
    }

    /// [`encode`](Self::encode) for a build that can refuse the request.
    pub fn try_encode(
        &self,
        token: Option<&str>,
        build: impl FnOnce(&mut Encoder, u64) -> Result<&[u8], Status>,
    ) -> Result<(u64, Bytes), Status> {
        let id = self.next_id();
        let mut enc = self.encoder.borrow_mut();
        Ok((id, with_token(&mut enc, token, |e| build(e, id))?))
    }

    /// A fresh request id.
    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Send one encoded request (id from [`next_id`](Self::next_id)) and
    /// wait for its answer frame.
    pub async fn call(&self, id: u64, frame: Bytes) -> Result<Vec<u8>, Status> {
        let (fill, answer) = answer_slot::slot();
        self.waiting.borrow_mut().insert(id, Waiter::Once(fill));
        if let Err(status) = self.send(frame).await {
            self.waiting.borrow_mut().remove(&id);
            return Err(status);
        }
        answer.await.ok_or_else(closing)
    }

    /// Send a request whose answer and pushes go to a stream's queue.
    pub async fn open_stream(
        &self,
        id: u64,
        frame: Bytes,
        queue: Rc<LocalSender<Delivered>>,
    ) -> Result<(), Status> {
        self.waiting.borrow_mut().insert(id, Waiter::Stream(queue));
        let sent = self.send(frame).await;
        if sent.is_err() {
            self.waiting.borrow_mut().remove(&id);
        }
        sent
    }

    /// The stream is done with `id`: later pushes under it are dropped.
    pub fn forget(&self, id: u64) {
        self.waiting.borrow_mut().remove(&id);
    }

    /// The frame `d` left this connection's hands: if it was a push, its
    /// window has room again.
    pub async fn push_done(&self, d: &Delivered) {
        if d.watch {
            self.router.watch_pushes_written(self.conn, 1);
        } else if d.push {
            self.pushes_written(1).await;
        }
    }

    /// Tell the shard that `n` backup pushes left this connection's hands.
    async fn pushes_written(&self, n: usize) {
        let mut note = ToShard::requests(self.router.executor(), self.conn, Vec::new());
        note.pushes_written = n;
        let _ = self.router.send_to_shard(note).await;
    }

    /// The connection is gone: unregister and let the shard drop its
    /// watches.
    pub async fn close(&self) {
        self.closed.set(true);
        let _ = self.bell.try_send(());
        self.flush().await;
        self.router.unregister(self.conn);
        let mut closed = ToShard::requests(self.router.executor(), self.conn, Vec::new());
        closed.closed = true;
        let _ = self.router.send_to_shard(closed).await;
        self.waiting.borrow_mut().clear();
    }

    async fn send(&self, frame: Bytes) -> Result<(), Status> {
        // The slot is given back when the answer arrives.
        self.slots.acquire(1).await.map_err(|_| closing())?;
        let mut pending = self.pending.borrow_mut();
        pending.push(frame);
        if pending.len() == 1 {
            if let Err(glommio::GlommioError::Closed(_)) = self.bell.try_send(()) {
                pending.clear();
                self.slots.signal(1);
                return Err(closing());
            }
        }
        Ok(())
    }

    /// The task that sends the pending requests, once per ring of the bell
    /// (it runs after the calls that rang it, so it takes all of theirs).
    async fn send_pending(self: Rc<Self>, ring: LocalReceiver<()>) {
        while ring.recv().await.is_some() && !self.closed.get() {
            if !self.flush().await {
                // The shard is gone (the server stops): nobody will answer
                // the calls waiting.
                self.waiting.borrow_mut().clear();
                return;
            }
        }
    }

    /// Send what is pending; false if the shard is gone.
    async fn flush(&self) -> bool {
        let frames = std::mem::take(&mut *self.pending.borrow_mut());
        if frames.is_empty() {
            return true;
        }
        let msg = ToShard::requests(self.router.executor(), self.conn, frames);
        self.router.send_to_shard(msg).await.is_ok()
    }

    async fn sort_answers(self: Rc<Self>, out_rx: LocalReceiver<Out>) {
        while let Some(out) = out_rx.recv().await {
            let (frame, push, watch) = match out {
                Out::Answer(f) => {
                    self.slots.signal(1);
                    (f, false, false)
                }
                Out::Push(f) => (f, true, false),
                Out::WatchPush(f) => (f, true, true),
            };
            // SAFETY: every frame in a connection's outbox was built by
            // the server's own encoder (the shard's answers and pushes, the
            // watch fan-out's events). Only the id is read here; the call
            // that takes the answer verifies it in full.
            let id = match unsafe { decode_verified_response(&frame) } {
                Ok(r) => r.id,
                Err(e) => {
                    // The shard's own frames always decode.
                    tracing::warn!(conn = self.conn, "unreadable frame from the shard: {e}");
                    continue;
                }
            };
            let waiter = {
                let mut waiting = self.waiting.borrow_mut();
                match waiting.get(&id) {
                    Some(Waiter::Once(_)) if !push => waiting.remove(&id),
                    Some(Waiter::Stream(q)) => Some(Waiter::Stream(q.clone())),
                    _ => None,
                }
            };
            let delivered = match waiter {
                Some(Waiter::Once(fill)) => {
                    fill.fill(frame);
                    true
                }
                Some(Waiter::Stream(q)) => q.try_send(Delivered { frame, push, watch }).is_ok(),
                None => false,
            };
            if push && !delivered {
                // Nobody will write it: its room in the window is free now.
                if watch {
                    self.router.watch_pushes_written(self.conn, 1);
                } else {
                    self.pushes_written(1).await;
                }
            }
        }
    }
}

/// One call's seat: the connection's session and the auth token the call's
/// metadata carried, which every native request of the call carries too
/// (the shard checks it as it checks a native client's).
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub session: &'a Session,
    pub token: Option<&'a str>,
}

impl Caller<'_> {
    pub fn encode(&self, build: impl FnOnce(&mut Encoder, u64) -> &[u8]) -> (u64, Bytes) {
        self.session.encode_as(self.token, build)
    }

    pub fn try_encode(
        &self,
        build: impl FnOnce(&mut Encoder, u64) -> Result<&[u8], Status>,
    ) -> Result<(u64, Bytes), Status> {
        self.session.try_encode(self.token, build)
    }

    pub async fn call(&self, id: u64, frame: Bytes) -> Result<Vec<u8>, Status> {
        self.session.call(id, frame).await
    }
}

/// Build one request with `token` in its header. The encoder is shared by
/// the connection's calls, which may carry different tokens, so the token
/// is set for this request only.
pub fn with_token(
    enc: &mut Encoder,
    token: Option<&str>,
    build: impl FnOnce(&mut Encoder) -> Result<&[u8], Status>,
) -> Result<Bytes, Status> {
    if token.is_some() {
        enc.set_token(token);
    }
    // The one copy out of the shared encoder; the frame then travels to
    // the shard as it is.
    let frame = build(enc).map(Bytes::copy_from_slice);
    if token.is_some() {
        enc.set_token(None);
    }
    frame
}

/// The auth token of a call: etcd's clients send it as the `token`
/// metadata, its HTTP gateway as `authorization`.
pub fn token_of(fields: &Fields) -> Option<String> {
    let value = fields
        .get_str("token")
        .or_else(|| fields.get_str("authorization"))?;
    Some(value.to_owned())
}

fn closing() -> Status {
    Status::new(rpc::ErrorCode::Unavailable, "etcdserver: server stopped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_wire::decode_request;

    #[test]
    fn token_goes_into_this_request_only() {
        let mut enc = Encoder::new();
        let with = with_token(&mut enc, Some("tok.1"), |e| Ok(e.status_request(1))).unwrap();
        assert_eq!(decode_request(&with).unwrap().token, Some("tok.1"));
        let without = with_token(&mut enc, None, |e| Ok(e.status_request(2))).unwrap();
        assert_eq!(decode_request(&without).unwrap().token, None);
    }

    #[test]
    fn token_is_read_from_etcd_metadata_names() {
        let mut h = Fields::default();
        assert_eq!(token_of(&h), None);
        h.push(b"authorization", b"gw");
        assert_eq!(token_of(&h).as_deref(), Some("gw"));
        // clientv3's own name wins over the gateway's.
        h.push(b"token", b"cli");
        assert_eq!(token_of(&h).as_deref(), Some("cli"));
    }
}
