//! Client connections, on whichever executor accepted them.
//!
//! A connection starts with the protocol preface, then carries frames both
//! ways. The reader verifies each frame before anything else looks at it and
//! hands verified requests to the shard in one message per socket read; the
//! writer coalesces responses into few socket writes. Responses may come
//! back out of order; the request id ties them to their requests.
//!
//! Bad input is answered, not obeyed: a frame that fails verification gets
//! an error response (id 0 when its id cannot be trusted) and the
//! connection goes on; broken framing (a bad preface, a length over the
//! limit) closes the connection. Neither affects any other connection.
//!
//! A client that does not read its answers is pushed back on, not cut off:
//! the reader admits a request only while the connection has a free
//! in-flight slot (`CONN_INFLIGHT_MAX`) and room in its answer-byte budget
//! (`CONN_QUEUED_ANSWER_BYTES_MAX`, see [`budget`]); otherwise it stops
//! reading, and TCP stops the client. The connection stays open for as
//! long as that lasts: nothing admitted is dropped, and a client that
//! starts reading again gets every answer. Time spent waiting for room
//! does not count against the frame timeout.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_wire::{
    check_preface, decode_request, rpc, Channel, Encoder, FrameDecoder, RequestBodyView, WireError,
};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::LocalReceiver;
use glommio::task::JoinHandle;

use super::handoff::{Handoffs, Mobility};
use super::listen::{self, Listener};
use super::route::{ConnId, Out, Router, ToShard};
use super::sniff;
use super::tls::MaybeTls;
use super::{ServerError, Shared};
use crate::limits;

pub(super) mod budget;

use budget::AnswerBudget;

/// Accept loops for every client URL, on this executor's own listener.
pub struct Listeners {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.cancel();
        }
    }
}

/// Bind this executor's listeners (SO_REUSEPORT, so every executor binds
/// the same address and the kernel spreads connections) and start accepting.
/// Each accepted connection is registered to be shut when the server stops
/// (`listen.rs`).
pub fn listen(
    shared: Arc<Shared>,
    router: Rc<Router>,
    handoffs: Rc<Handoffs>,
) -> Result<Listeners, ServerError> {
    let addrs = shared.config.client_listen_addrs()?;
    let mut tasks = Vec::new();
    for addr in addrs {
        let listener = Listener::bind(addr)?;
        // One line per address, from the one executor that always listens.
        if router.executor() == shared.cores - 1 {
            tracing::info!(%addr, tls = super::tls::client_listener_is_tls(addr), "serving client requests");
        }
        let router = router.clone();
        let shared = shared.clone();
        let handoffs = handoffs.clone();
        let task = glommio::spawn_local(async move {
            while let Some(accepted) = listener.accept().await {
                match accepted {
                    Ok(stream) if !has_room(&shared) => {
                        tracing::warn!(
                            %addr,
                            limit = shared.config.max_client_conns_per_core,
                            "closing a new client connection: too many connections on this core"
                        );
                        drop(stream);
                    }
                    Ok(stream) => {
                        let router = router.clone();
                        let shared = shared.clone();
                        let handoffs = handoffs.clone();
                        let slot = ServedSlot::take();
                        shared.client_conns.fetch_add(1, Ordering::AcqRel);
                        let registration =
                            listen::register(std::os::fd::AsRawFd::as_raw_fd(&stream));
                        glommio::spawn_local(async move {
                            // https:// listeners complete the TLS handshake
                            // before anything is read.
                            let moved = match super::tls::accept_client(addr, stream).await {
                                Some(stream) => serve(&shared, router, handoffs, stream).await,
                                None => false,
                            };
                            // The stream is closed by now (every protocol's
                            // serve owns it and drops it when it returns);
                            // a moved one lives on in its copy.
                            drop(registration);
                            drop(slot);
                            if !moved {
                                shared.client_conns.fetch_sub(1, Ordering::AcqRel);
                            }
                        })
                        .detach();
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin, and keep serving existing clients.
                        tracing::warn!(%addr, "accept failed: {e}");
                        glommio::timer::sleep(Duration::from_millis(limits::ACCEPT_BACKOFF_MS))
                            .await;
                    }
                }
            }
        })
        .detach();
        tasks.push(task);
    }
    Ok(Listeners { tasks })
}

thread_local! {
    /// Client connections this executor serves.
    static SERVED: Cell<usize> = const { Cell::new(0) };
}

/// One client connection this executor serves, until dropped.
pub(super) struct ServedSlot(());

impl ServedSlot {
    pub(super) fn take() -> Self {
        SERVED.with(|n| n.set(n.get() + 1));
        ServedSlot(())
    }
}

impl Drop for ServedSlot {
    fn drop(&mut self) {
        SERVED.with(|n| n.set(n.get() - 1));
    }
}

/// Whether this executor may serve another connection. The few the
/// shard's executor serves were accepted by the others and count against
/// them, so `--max-client-conns-per-core` bounds what the executors that
/// accept serve between them, as before connections could move.
fn has_room(shared: &Shared) -> bool {
    let moved = shared.shard_conns.load(Ordering::Acquire);
    SERVED.with(|n| n.get()) + moved < shared.config.max_client_conns_per_core
}

/// Serve one connection until the client closes it or breaks the protocol,
/// or it moves to another executor (then true: it is open still).
async fn serve(
    shared: &Arc<Shared>,
    router: Rc<Router>,
    handoffs: Rc<Handoffs>,
    mut stream: MaybeTls,
) -> bool {
    let shared = shared.clone();
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    // With --client-cert-auth and auth on, the user of requests without a
    // token, on every protocol.
    let cert_user = stream.client_cn();

    let mut preface = [0u8; cairn_wire::limits::PREFACE_BYTES];
    let got = glommio::timer::timeout(Duration::from_millis(limits::PREFACE_TIMEOUT_MS), async {
        stream
            .read_exact(&mut preface)
            .await
            .map_err(glommio::GlommioError::IoError)
    })
    .await;
    if got.is_err() {
        tracing::debug!(?peer, "connection closed before a complete preface");
        return false;
    }
    if let Err(e) = check_preface(&preface, Channel::Client) {
        // Not native: the same port serves etcd's gRPC API and HTTP.
        match sniff::sniff(&preface) {
            Some(sniff::Protocol::Http2) => {
                let io = sniff::Replay::new(&preface, stream);
                super::grpc::serve(shared, router, io, cert_user).await;
            }
            Some(sniff::Protocol::Http1) => {
                super::http::serve(shared, router, sniff::Replay::new(&preface, stream)).await;
            }
            None => tracing::info!(?peer, "closing connection: {e}"),
        }
        return false;
    }
    let mobility = Mobility {
        movable: matches!(stream, MaybeTls::Plain(_)),
        pipelined: false,
    };
    serve_native(shared, router, handoffs, stream, cert_user, mobility).await
}

/// Serve a native connection that moved here from another executor, after
/// its preface; true if it moved on again.
pub(super) async fn serve_moved(
    shared: Arc<Shared>,
    router: Rc<Router>,
    handoffs: Rc<Handoffs>,
    stream: glommio::net::TcpStream,
    mobility: Mobility,
) -> bool {
    let _ = stream.set_nodelay(true);
    let stream = MaybeTls::Plain(stream);
    serve_native(shared, router, handoffs, stream, None, mobility).await
}

/// Serve the native protocol after the preface; true if the connection
/// moved to another executor.
async fn serve_native(
    shared: Arc<Shared>,
    router: Rc<Router>,
    handoffs: Rc<Handoffs>,
    stream: MaybeTls,
    cert_user: Option<String>,
    mut mobility: Mobility,
) -> bool {
    let peer = stream.peer_addr().ok();
    let plain_fd = match &stream {
        MaybeTls::Plain(s) => Some(std::os::fd::AsRawFd::as_raw_fd(s)),
        MaybeTls::Tls(_) => None,
    };
    let (mut rd, wr) = futures_lite::io::split(stream);

    let (conn, out_rx) = router.register();
    router.set_cert_user(conn, cert_user);
    let inflight = Rc::new(Inflight::new());
    let writer = glommio::spawn_local(write_loop(
        wr,
        out_rx,
        inflight.clone(),
        router.clone(),
        conn,
    ));
    let result = read_loop(
        &shared,
        &router,
        conn,
        &mut rd,
        &inflight,
        &handoffs,
        &mut mobility,
    )
    .await;
    let dest = match result {
        Ok(dest) => dest,
        Err(e) => {
            tracing::info!(?peer, "closing connection: {e}");
            None
        }
    };
    // Its watches end with it (a connection that moves has none). To the
    // shard, a connection that moves is one that closed and another that
    // opened: it has nothing in flight.
    router.unregister(conn);
    let mut closed = ToShard::requests(router.executor(), conn, Vec::new());
    closed.closed = true;
    let _ = router.send_to_shard(closed).await;
    // The writer ends when its queue is closed and drained.
    writer.await;
    match (dest, plain_fd) {
        (Some(dest), Some(fd)) => {
            // `rd` still holds the socket open for the copy to be made.
            handoffs.send(&shared, fd, dest, mobility).await
        }
        _ => false,
    }
}

/// Requests of one connection whose answers have not been written yet,
/// and the bytes those answers hold.
struct Inflight {
    count: Cell<usize>,
    /// Answers written since the connection came to this executor.
    answered: Cell<u64>,
    /// The answers' bytes; also wakes the reader when the writer has made
    /// room.
    budget: AnswerBudget,
}

impl Inflight {
    fn new() -> Self {
        Inflight {
            count: Cell::new(0),
            answered: Cell::new(0),
            budget: AnswerBudget::new(),
        }
    }

    /// Whether the reader may admit another request (or should stop
    /// waiting: the connection can no longer write).
    fn has_room(&self) -> bool {
        self.budget.is_closed()
            || (self.count.get() < limits::CONN_INFLIGHT_MAX && self.budget.has_room())
    }

    /// Wait until the reader may admit another request; true if the
    /// connection can no longer write (the reader should end).
    async fn room(&self) -> bool {
        self.budget.until(|| self.has_room()).await;
        self.budget.is_closed()
    }

    fn add(&self, n: usize) {
        self.count.set(self.count.get() + n);
        self.budget.admitted(n);
    }

    /// Whether every request admitted has its answer written, and at least
    /// one was (see `handoff.rs` for why).
    fn is_quiet(&self) -> bool {
        self.count.get() == 0 && self.answered.get() > 0
    }

    /// `n` answers of `bytes` in all were written.
    fn done(&self, n: usize, bytes: usize) {
        self.count.set(self.count.get().saturating_sub(n));
        self.answered.set(self.answered.get() + n as u64);
        self.budget.written(bytes);
        if n > 0 && self.has_room() {
            self.budget.wake_all();
        }
    }
}

/// Read, verify and hand on requests until the connection ends (`None`)
/// or, quiet, should move to another executor (`Some(executor)`, which has
/// a slot for it).
async fn read_loop<R: futures_lite::io::AsyncRead + Unpin>(
    shared: &Shared,
    router: &Router,
    conn: ConnId,
    rd: &mut R,
    inflight: &Inflight,
    handoffs: &Handoffs,
    mobility: &mut Mobility,
) -> Result<Option<usize>, WireError> {
    let mut decoder = FrameDecoder::new(
        shared.config.max_request_bytes as usize + cairn_wire::limits::ENVELOPE_OVERHEAD_BYTES,
    );
    let mut encoder = Encoder::new();
    let frame_timeout = Duration::from_millis(shared.config.frame_timeout_ms);
    // When the first bytes of a frame not yet complete arrived.
    let mut partial_since: Option<std::time::Instant> = None;
    loop {
        if inflight.budget.is_closed() {
            return Ok(None);
        }
        if !inflight.has_room() {
            let began = std::time::Instant::now();
            if inflight.room().await {
                return Ok(None);
            }
            // The client's frame was not late while we did not read.
            partial_since = partial_since.map(|t| t + began.elapsed());
        }
        // Whether to move this connection once it is quiet: checked before
        // every read, as the member's connections come and go.
        let dest = if partial_since.is_none() {
            handoffs.wanted(shared, *mobility)
        } else {
            None
        };
        let read = rd.read(decoder.read_buf());
        let result = match (partial_since, dest) {
            (None, None) => read.await,
            (None, Some(dest)) => {
                // The client may send its next request before or after its
                // last answer is written; whichever comes first decides.
                // Dropping a read that has not completed loses nothing:
                // glommio takes bytes from the socket only when a read
                // completes.
                let quiet = async {
                    inflight.budget.until(|| inflight.is_quiet()).await;
                    None
                };
                match futures_lite::future::or(async { Some(read.await) }, quiet).await {
                    Some(r) => r,
                    None if handoffs.claim(shared, dest) => return Ok(Some(dest)),
                    // Another connection took the last slot: read on.
                    None => rd.read(decoder.read_buf()).await,
                }
            }
            (Some(t), _) => {
                let left = frame_timeout.saturating_sub(t.elapsed());
                match glommio::timer::timeout(left, async {
                    read.await.map_err(glommio::GlommioError::IoError)
                })
                .await
                {
                    Ok(n) => Ok(n),
                    Err(glommio::GlommioError::IoError(e)) => Err(e),
                    Err(_) => {
                        tracing::info!(
                            conn,
                            timeout_ms = shared.config.frame_timeout_ms,
                            "closing connection: a request frame was not completed in time"
                        );
                        return Ok(None);
                    }
                }
            }
        };
        let n = match result {
            Ok(0) => return decoder.finish().map(|()| None),
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(conn, "read failed: {e}");
                return Ok(None);
            }
        };
        decoder.commit(n)?;
        let mut frames = Vec::new();
        let mut completed = false;
        while let Some(frame) = decoder.next_frame()? {
            completed = true;
            // Every frame takes an in-flight slot and room in the answer
            // budget before it is admitted, even within one read, so at most
            // CONN_INFLIGHT_MAX answers can be queued for the connection (its
            // queue then always has room for them and for the push window),
            // and their bytes stay within the budget.
            if !inflight.has_room() {
                if !frames.is_empty() {
                    crate::steptrace::mark("read", frames.len() as u64);
                    let msg =
                        ToShard::requests(router.executor(), conn, std::mem::take(&mut frames));
                    if router.send_to_shard(msg).await.is_err() {
                        return Ok(None);
                    }
                }
                if inflight.room().await {
                    return Ok(None);
                }
            }
            match decode_request(frame) {
                Ok(request) => {
                    inflight.add(1);
                    note_request(mobility, &request.body, inflight.count.get());
                    frames.push(Bytes::copy_from_slice(frame));
                }
                Err(e) if e.is_fatal_to_connection() => return Err(e),
                Err(e) => {
                    let reply = encoder.error_response(
                        0,
                        None,
                        rpc::ErrorCode::InvalidArgument,
                        &e.to_string(),
                    );
                    inflight.add(1);
                    router.reply_local(conn, reply.to_vec());
                }
            }
        }
        partial_since = match (decoder.buffered_bytes(), partial_since) {
            (0, _) => None,
            (_, Some(t)) if !completed => Some(t),
            _ => Some(std::time::Instant::now()),
        };
        if frames.is_empty() {
            continue;
        }
        crate::steptrace::mark("read", frames.len() as u64);
        let msg = ToShard::requests(router.executor(), conn, frames);
        if router.send_to_shard(msg).await.is_err() {
            return Ok(None);
        }
    }
}

/// What a request tells about where its connection may be served
/// (`handoff.rs`).
fn note_request(mobility: &mut Mobility, body: &RequestBodyView<'_>, inflight: usize) {
    if inflight > 1 {
        mobility.pipelined = true;
    }
    if !matches!(
        body,
        RequestBodyView::Range(_)
            | RequestBodyView::Put(_)
            | RequestBodyView::DeleteRange(_)
            | RequestBodyView::Txn(_)
    ) {
        // Watches, keep-alives, backups and the like hold state on this
        // executor.
        mobility.movable = false;
    }
}

async fn write_loop<W: futures_lite::io::AsyncWrite + Unpin>(
    mut wr: W,
    out_rx: LocalReceiver<Out>,
    inflight: Rc<Inflight>,
    router: Rc<Router>,
    conn: ConnId,
) {
    let mut batch: Vec<u8> = Vec::with_capacity(limits::CONN_WRITE_BATCH_BYTES_MAX);
    while let Some(frame) = out_rx.recv().await {
        batch.clear();
        let (mut answers, mut pushes, mut watch_pushes) = (0, 0, 0);
        let mut answer_bytes = 0;
        let mut take = |frame: Out, batch: &mut Vec<u8>| {
            batch.extend_from_slice(frame.bytes());
            match frame {
                Out::Answer(b) => {
                    answers += 1;
                    answer_bytes += b.len();
                    inflight.budget.arrived(b.len());
                }
                Out::Push(_) => pushes += 1,
                Out::WatchPush(_) => watch_pushes += 1,
            }
        };
        take(frame, &mut batch);
        while batch.len() < limits::CONN_WRITE_BATCH_BYTES_MAX {
            match futures_lite::future::poll_once(out_rx.recv()).await {
                Some(Some(frame)) => take(frame, &mut batch),
                _ => break,
            }
        }
        crate::steptrace::mark("answer", answers as u64);
        if wr.write_all(&batch).await.is_err() {
            // The reader must not wait for room that will never come.
            inflight.budget.close();
            return;
        }
        inflight.done(answers, answer_bytes);
        // One huge answer grew the batch: give the memory back rather than
        // keep it for the connection's lifetime.
        if batch.capacity() > 2 * limits::CONN_WRITE_BATCH_BYTES_MAX {
            batch = Vec::with_capacity(limits::CONN_WRITE_BATCH_BYTES_MAX);
        }
        // Room in the watch window: this executor may push the
        // connection's watches more (or ask history for them).
        router.watch_pushes_written(conn, watch_pushes);
        if pushes > 0 {
            // Room in the backup's push window, on the shard.
            let mut note = ToShard::requests(router.executor(), conn, Vec::new());
            note.pushes_written = pushes;
            if router.send_to_shard(note).await.is_err() {
                return;
            }
        }
    }
    let _ = wr.flush().await;
}
