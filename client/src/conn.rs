//! One connection to one endpoint, carrying many requests at once.
//!
//! ```text
//!  callers ──frame──▶ [write queue, bounded] ──▶ writer task: batch, write_all
//!     ▲                                                     │
//!     │ oneshot per request id                              ▼ socket
//!     └──────────── pending map ◀── reader task: frames ─▶ decode ─▶ route by id
//! ```
//!
//! A caller takes an in-flight slot (a semaphore permit, so at most
//! [`INFLIGHT_REQUESTS_MAX`] requests wait per connection), registers its id
//! in the pending map and queues its frame. The reader routes each response
//! to the waiter registered under its id, in whatever order the server
//! answers. When either task fails, the connection is *broken*: every waiter
//! gets [`Error::ConnectionLost`], and the client replaces the connection.
//!
//! A request's timeout is a deadline stored with its waiter, not a timer of
//! its own: a third task, the sweeper, fails every waiter whose deadline has
//! passed with [`Error::Timeout`]. It wakes every sixteenth of the shortest
//! timeout in use (at most every [`REQUEST_DEADLINE_SLACK_MAX`]), so a
//! request fails at most that much after its deadline. Registering and
//! cancelling a runtime timer for every request was 7–9% of a pipelining
//! caller's CPU. Only a caller that must wait for a slot or for room in the
//! write queue arms a timer, for that wait.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use cairn_wire::{FrameDecoder, CLIENT_PREFACE};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::Keepalive;
use crate::codec::{self, Reply};
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::limits::{
    INFLIGHT_REQUESTS_MAX, KEEPALIVE_PROBES, REQUEST_DEADLINE_SLACK_MAX,
    REQUEST_DEADLINE_SLACK_MIN, WATCH_RESPONSES_QUEUED_MAX, WRITE_BATCH_BYTES_MAX,
    WRITE_QUEUE_FRAMES_MAX,
};

type Outcome = Result<Reply, Error>;

/// Where the answers to one request id go.
enum Route {
    /// A unary request: the first answer, then the waiter is gone.
    Once(oneshot::Sender<Outcome>),
    /// A stream (watch): every answer until a terminal one.
    Stream(Stream),
}

struct Stream {
    answers: mpsc::Sender<Outcome>,
    /// Set when the consumer fell [`WATCH_RESPONSES_QUEUED_MAX`] answers
    /// behind and the stream was dropped.
    overflowed: Arc<AtomicBool>,
}

struct Waiter {
    route: Route,
    /// When the sweeper fails the request with [`Error::Timeout`]; streams
    /// and requests with no timeout have none.
    deadline: Option<Instant>,
    /// Held until the request is answered or abandoned: frees its slot.
    _slot: OwnedSemaphorePermit,
}

/// The receiving end of a stream opened with [`Connection::open_stream`].
pub(crate) struct StreamReceiver {
    pub(crate) answers: mpsc::Receiver<Outcome>,
    pub(crate) overflowed: Arc<AtomicBool>,
}

#[derive(Default)]
struct PendingState {
    waiters: HashMap<u64, Waiter>,
    /// Why the connection broke; set once, never cleared.
    broken: Option<String>,
}

/// State shared by the connection handle and its two tasks.
struct Shared {
    endpoint: Endpoint,
    pending: Mutex<PendingState>,
    slots: Arc<Semaphore>,
    /// How often the sweeper looks for expired deadlines, in microseconds:
    /// a sixteenth of the shortest timeout any request on this connection
    /// has used.
    sweep_every_us: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, PendingState> {
        // A panic while holding this lock is a bug elsewhere; the map itself
        // is still consistent, so keep going with it.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lost(&self, reason: &str) -> Error {
        Error::ConnectionLost {
            endpoint: self.endpoint.original.clone(),
            reason: reason.to_string(),
        }
    }

    /// The sweeper's period from now on: at most a sixteenth of `timeout`.
    fn note_timeout(&self, timeout: Duration) {
        let every = (timeout / 16).clamp(REQUEST_DEADLINE_SLACK_MIN, REQUEST_DEADLINE_SLACK_MAX);
        self.sweep_every_us
            .fetch_min(every.as_micros() as u64, Ordering::Relaxed);
    }

    fn sweep_every(&self) -> Duration {
        Duration::from_micros(self.sweep_every_us.load(Ordering::Relaxed))
    }

    /// Fails every request whose deadline is at or before `now` with
    /// [`Error::Timeout`]. False once the connection is broken.
    fn expire(&self, now: Instant) -> bool {
        let expired: Vec<Waiter> = {
            let mut state = self.lock();
            if state.broken.is_some() {
                return false;
            }
            let ids: Vec<u64> = state
                .waiters
                .iter()
                .filter(|(_, w)| w.deadline.is_some_and(|d| d <= now))
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| state.waiters.remove(id))
                .collect()
        };
        for waiter in expired {
            if let Route::Once(reply) = waiter.route {
                let _ = reply.send(Err(Error::Timeout));
            }
        }
        true
    }

    /// Marks the connection broken and fails every waiting request.
    fn fail(&self, reason: String) {
        let waiters = {
            let mut state = self.lock();
            if state.broken.is_none() {
                state.broken = Some(reason.clone());
            }
            std::mem::take(&mut state.waiters)
        };
        self.slots.close();
        for (_, waiter) in waiters {
            // The caller may have given up already; nothing to tell it then.
            match waiter.route {
                Route::Once(reply) => {
                    let _ = reply.send(Err(self.lost(&reason)));
                }
                Route::Stream(stream) => {
                    let _ = stream.answers.try_send(Err(self.lost(&reason)));
                }
            }
        }
    }
}

/// A live connection to one endpoint.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Vec<u8>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        self.sweeper.abort();
        self.shared
            .fail("connection closed by the client".to_string());
    }
}

impl Connection {
    /// Connects, sends the preface and starts the reader and writer tasks.
    pub(crate) async fn open(
        endpoint: &Endpoint,
        dial_timeout: Duration,
        keepalive: Option<Keepalive>,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Connection, String> {
        let stream = tokio::time::timeout(dial_timeout, TcpStream::connect(&endpoint.address))
            .await
            .map_err(|_| format!("dial {}: timed out", endpoint.address))?
            .map_err(|e| format!("dial {}: {e}", endpoint.address))?;
        // Requests are small and latency-bound; the writer batches them
        // itself, so Nagle's delay would only add latency.
        stream
            .set_nodelay(true)
            .map_err(|e| format!("set TCP_NODELAY on {}: {e}", endpoint.address))?;
        if let Some(k) = keepalive {
            set_keepalive(&stream, k)
                .map_err(|e| format!("set TCP keep-alive on {}: {e}", endpoint.address))?;
        }
        let shared = Arc::new(Shared {
            endpoint: endpoint.clone(),
            pending: Mutex::new(PendingState::default()),
            slots: Arc::new(Semaphore::new(INFLIGHT_REQUESTS_MAX)),
            sweep_every_us: AtomicU64::new(REQUEST_DEADLINE_SLACK_MAX.as_micros() as u64),
        });
        let (queue, queued) = mpsc::channel(WRITE_QUEUE_FRAMES_MAX);
        let preface_error = |e| format!("send preface to {}: {e}", endpoint.address);
        let (reader, writer) = match tls {
            None => {
                let (read_half, mut write_half) = stream.into_split();
                write_half
                    .write_all(&CLIENT_PREFACE)
                    .await
                    .map_err(preface_error)?;
                (
                    tokio::spawn(read_loop(shared.clone(), read_half)),
                    tokio::spawn(write_loop(shared.clone(), write_half, queued)),
                )
            }
            Some(config) => {
                let name = crate::tls::server_name(&endpoint.address)?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let handshake = tokio::time::timeout(dial_timeout, connector.connect(name, stream))
                    .await
                    .map_err(|_| format!("TLS handshake with {}: timed out", endpoint.address))?;
                let mut session = handshake
                    .map_err(|e| format!("TLS handshake with {}: {e}", endpoint.address))?;
                session
                    .write_all(&CLIENT_PREFACE)
                    .await
                    .map_err(preface_error)?;
                let (read_half, write_half) = tokio::io::split(session);
                (
                    tokio::spawn(read_loop(shared.clone(), read_half)),
                    tokio::spawn(write_loop(shared.clone(), write_half, queued)),
                )
            }
        };
        let sweeper = tokio::spawn(sweep_loop(Arc::downgrade(&shared)));
        Ok(Connection {
            shared,
            queue,
            reader,
            writer,
            sweeper,
        })
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.shared.lock().broken.is_some()
    }

    /// Takes a slot and registers `route` under `id`.
    async fn register(
        &self,
        id: u64,
        route: Route,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let slot = match self.shared.slots.clone().acquire_owned().await {
            Ok(slot) => slot,
            Err(_) => return Err(self.broken_error()),
        };
        self.insert(id, route, deadline, slot)
    }

    fn insert(
        &self,
        id: u64,
        route: Route,
        deadline: Option<Instant>,
        slot: OwnedSemaphorePermit,
    ) -> Result<(), Error> {
        let mut state = self.shared.lock();
        if let Some(reason) = &state.broken {
            return Err(self.shared.lost(reason));
        }
        let waiter = Waiter {
            route,
            deadline,
            _slot: slot,
        };
        let previous = state.waiters.insert(id, waiter);
        assert!(previous.is_none(), "request id {id} reused while in flight");
        Ok(())
    }

    /// Sends a request that opens a stream (a watch) and returns the
    /// receiver of its answers. The stream holds an in-flight slot until a
    /// terminal answer arrives or [`forget`](Self::forget) is called.
    pub(crate) async fn open_stream(
        &self,
        id: u64,
        frame: Vec<u8>,
    ) -> Result<StreamReceiver, Error> {
        let (answers, receiver) = mpsc::channel(WATCH_RESPONSES_QUEUED_MAX);
        let overflowed = Arc::new(AtomicBool::new(false));
        let stream = Stream {
            answers,
            overflowed: overflowed.clone(),
        };
        self.register(id, Route::Stream(stream), None).await?;
        // Unregisters the stream if this future is dropped before the
        // frame is queued; the receiver takes over afterwards.
        let mut forget = Forget {
            shared: &self.shared,
            id,
            armed: true,
        };
        if self.queue.send(frame).await.is_err() {
            return Err(self.broken_error());
        }
        forget.armed = false;
        Ok(StreamReceiver {
            answers: receiver,
            overflowed,
        })
    }

    /// Stops routing answers for `id` and frees its slot.
    pub(crate) fn forget(&self, id: u64) {
        self.shared.lock().waiters.remove(&id);
    }

    /// Queues a frame without waiting for room; false if the queue is full
    /// or the connection is gone. For best-effort messages sent from `Drop`.
    pub(crate) fn try_send(&self, frame: Vec<u8>) -> bool {
        self.queue.try_send(frame).is_ok()
    }

    /// Sends one request frame and waits for its answer, failing with
    /// [`Error::Timeout`] once `timeout` has passed (see the module's doc
    /// for how late). Dropping the returned future abandons the request
    /// (its slot is freed).
    pub(crate) async fn call(&self, id: u64, frame: Vec<u8>, timeout: Duration) -> Outcome {
        let deadline = Instant::now().checked_add(timeout);
        if deadline.is_some() {
            self.shared.note_timeout(timeout);
        }
        let (reply, answer) = oneshot::channel();
        let route = Route::Once(reply);
        match self.shared.slots.clone().try_acquire_owned() {
            Ok(slot) => self.insert(id, route, deadline, slot)?,
            Err(TryAcquireError::Closed) => return Err(self.broken_error()),
            Err(TryAcquireError::NoPermits) => {
                within(deadline, self.register(id, route, deadline)).await??;
            }
        }
        let _forget = Forget {
            shared: &self.shared,
            id,
            armed: true,
        };
        match self.queue.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(self.broken_error()),
            Err(mpsc::error::TrySendError::Full(frame)) => {
                if within(deadline, self.queue.send(frame)).await?.is_err() {
                    return Err(self.broken_error());
                }
            }
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.broken_error()),
        }
    }

    /// The error for a request or stream cut off by the connection's end.
    pub(crate) fn lost_error(&self) -> Error {
        self.broken_error()
    }

    fn broken_error(&self) -> Error {
        let reason = self
            .shared
            .lock()
            .broken
            .clone()
            .unwrap_or_else(|| "connection closed".to_string());
        self.shared.lost(&reason)
    }

    /// Requests registered and not yet answered (for tests of the bounds).
    #[cfg(test)]
    pub(crate) fn pending_count(&self) -> usize {
        self.shared.lock().waiters.len()
    }
}

/// Probes an idle connection after `time`, then every
/// [`KEEPALIVE_PROBES`]th of `timeout`: after `timeout` without an answer
/// the kernel fails the socket and the reader reports the connection lost.
fn set_keepalive(stream: &TcpStream, k: Keepalive) -> std::io::Result<()> {
    let interval = (k.timeout / KEEPALIVE_PROBES).max(Duration::from_secs(1));
    let settings = socket2::TcpKeepalive::new()
        .with_time(k.time.max(Duration::from_secs(1)))
        .with_interval(interval)
        .with_retries(KEEPALIVE_PROBES);
    socket2::SockRef::from(stream).set_tcp_keepalive(&settings)
}

/// Removes a request's waiter when its caller stops waiting (timeout or
/// cancellation), so abandoned ids do not accumulate.
struct Forget<'a> {
    shared: &'a Shared,
    id: u64,
    armed: bool,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.lock().waiters.remove(&self.id);
        }
    }
}

/// `work`, given up with [`Error::Timeout`] at `deadline` (if any).
async fn within<T>(deadline: Option<Instant>, work: impl Future<Output = T>) -> Result<T, Error> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, work)
            .await
            .map_err(|_| Error::Timeout),
        None => Ok(work.await),
    }
}

/// Fails requests past their deadline until the connection is gone.
async fn sweep_loop(shared: Weak<Shared>) {
    loop {
        let every = match shared.upgrade() {
            Some(s) => s.sweep_every(),
            None => return,
        };
        tokio::time::sleep(every).await;
        let Some(s) = shared.upgrade() else { return };
        if !s.expire(Instant::now()) {
            return;
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut socket: R) {
    let mut decoder = FrameDecoder::for_responses();
    let reason = loop {
        let read = socket.read(decoder.read_buf()).await;
        let n = match read {
            Ok(0) => {
                break match decoder.finish() {
                    Ok(()) => "closed by the server".to_string(),
                    Err(e) => e.to_string(),
                }
            }
            Ok(n) => n,
            Err(e) => break format!("read: {e}"),
        };
        if let Err(e) = decoder.commit(n) {
            break e.to_string();
        }
        if let Err(reason) = route_frames(&shared, &mut decoder) {
            break reason;
        }
    };
    shared.fail(reason);
}

/// Hands every complete frame to its waiter. An `Err` breaks the connection.
fn route_frames(shared: &Shared, decoder: &mut FrameDecoder) -> Result<(), String> {
    while let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
        let decoded = codec::decode(frame).map_err(|e| format!("bad response frame: {e}"))?;
        if decoded.id == 0 {
            // The server could not read one of our frames, so it cannot say
            // which; that request would never be answered.
            let message = match decoded.outcome {
                Err(e) => e.to_string(),
                Ok(reply) => format!("unsolicited {}", reply.type_name()),
            };
            return Err(format!("server rejected a request frame: {message}"));
        }
        let outcome = decoded.outcome.map_err(|e| match e {
            Error::Protocol { reason, .. } => Error::Protocol {
                endpoint: shared.endpoint.original.clone(),
                reason,
            },
            other => other,
        });
        deliver(shared, decoded.id, outcome);
    }
    Ok(())
}

/// Hands one answer to the waiter registered under `id`, if any (a caller
/// that timed out is gone; its late answer is dropped).
fn deliver(shared: &Shared, id: u64, outcome: Outcome) {
    let mut state = shared.lock();
    let Some(waiter) = state.waiters.remove(&id) else {
        return;
    };
    let stream = match &waiter.route {
        Route::Once(_) => {
            drop(state);
            if let Route::Once(reply) = waiter.route {
                let _ = reply.send(outcome);
            }
            return;
        }
        Route::Stream(stream) => stream,
    };
    let terminal = match &outcome {
        Ok(Reply::Watch(w)) => w.canceled,
        Ok(_) | Err(_) => true,
    };
    // Never wait here: a slow consumer must not stall the other requests on
    // this connection. Falling too far behind ends the stream instead.
    let (full, gone) = match stream.answers.try_send(outcome) {
        Ok(()) => (false, false),
        Err(mpsc::error::TrySendError::Full(_)) => (true, false),
        // The receiver was dropped (its watch creation was abandoned).
        Err(mpsc::error::TrySendError::Closed(_)) => (false, true),
    };
    if full {
        stream.overflowed.store(true, Ordering::Release);
    }
    if !terminal && !full && !gone {
        state.waiters.insert(id, waiter);
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut socket: W,
    mut queued: mpsc::Receiver<Vec<u8>>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH_BYTES_MAX);
    while let Some(first) = queued.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        // Gather what else is queued into the same write: under load many
        // requests leave in one syscall.
        while batch.len() < WRITE_BATCH_BYTES_MAX {
            match queued.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if let Err(e) = socket.write_all(&batch).await {
            shared.fail(format!("write: {e}"));
            return;
        }
        // One large request (up to the server's request limit) must not
        // pin that much memory for the connection's lifetime.
        if batch.capacity() > 2 * WRITE_BATCH_BYTES_MAX {
            batch = Vec::with_capacity(WRITE_BATCH_BYTES_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts and reads, but never answers.
    async fn mute_server() -> (Endpoint, JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut sink = vec![0u8; 64 * 1024];
            while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        (Endpoint::parse(&address).unwrap(), task)
    }

    /// A timeout no test waits for.
    const LONG: Duration = Duration::from_secs(600);

    async fn wait_for(mut condition: impl FnMut() -> bool) {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A connection to a server that never answers, and the server.
    async fn mute_connection() -> (Arc<Connection>, JoinHandle<()>) {
        let (endpoint, server) = mute_server().await;
        let connection = Connection::open(&endpoint, Duration::from_secs(2), None, None)
            .await
            .unwrap();
        (Arc::new(connection), server)
    }

    /// A status request under each id, each its own task, with `timeout`.
    fn spawn_calls(
        connection: &Arc<Connection>,
        ids: impl Iterator<Item = u64>,
        timeout: Duration,
    ) -> Vec<JoinHandle<Outcome>> {
        ids.map(|id| {
            let c = connection.clone();
            let frame = cairn_wire::Encoder::new().status_request(id).to_vec();
            tokio::spawn(async move { c.call(id, frame, timeout).await })
        })
        .collect()
    }

    #[tokio::test]
    async fn in_flight_requests_are_bounded_and_abandoned_ones_are_forgotten() {
        let (connection, server) = mute_connection().await;
        let extra = 16;
        let calls = spawn_calls(
            &connection,
            1..=(INFLIGHT_REQUESTS_MAX + extra) as u64,
            LONG,
        );
        wait_for(|| connection.pending_count() == INFLIGHT_REQUESTS_MAX).await;
        // The extra callers wait for a slot instead of registering.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(connection.pending_count(), INFLIGHT_REQUESTS_MAX);
        assert_eq!(connection.shared.slots.available_permits(), 0);
        for call in &calls {
            call.abort();
        }
        wait_for(|| connection.pending_count() == 0).await;
        wait_for(|| connection.shared.slots.available_permits() == INFLIGHT_REQUESTS_MAX).await;
        server.abort();
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_fails_with_timeout_and_frees_its_slot() {
        let (connection, server) = mute_connection().await;
        let timeout = Duration::from_millis(160);
        let began = Instant::now();
        let frame = cairn_wire::Encoder::new().status_request(1).to_vec();
        let err = tokio::time::timeout(Duration::from_secs(10), connection.call(1, frame, timeout))
            .await
            .expect("the request never failed")
            .unwrap_err();
        let took = began.elapsed();
        assert!(matches!(err, Error::Timeout), "{err:?}");
        // Not before the deadline; after it by at most the sweeper's period
        // (a sixteenth of the timeout) plus scheduling.
        assert!(took >= timeout, "failed early, after {took:?}");
        assert!(took < timeout * 3, "failed late, after {took:?}");
        assert_eq!(connection.pending_count(), 0);
        assert_eq!(
            connection.shared.slots.available_permits(),
            INFLIGHT_REQUESTS_MAX
        );
        // The connection itself is fine: a timeout is the request's alone.
        assert!(!connection.is_broken());
        server.abort();
    }

    #[tokio::test]
    async fn a_request_waiting_for_a_slot_times_out_too() {
        let (connection, server) = mute_connection().await;
        let holders = spawn_calls(&connection, 1..=INFLIGHT_REQUESTS_MAX as u64, LONG);
        wait_for(|| connection.pending_count() == INFLIGHT_REQUESTS_MAX).await;
        let id = INFLIGHT_REQUESTS_MAX as u64 + 1;
        let frame = cairn_wire::Encoder::new().status_request(id).to_vec();
        let err = connection
            .call(id, frame, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout), "{err:?}");
        // The holders, with a long timeout, are still waiting.
        assert_eq!(connection.pending_count(), INFLIGHT_REQUESTS_MAX);
        for h in holders {
            h.abort();
        }
        server.abort();
    }

    #[tokio::test]
    async fn a_broken_connection_fails_every_waiter() {
        let (connection, server) = mute_connection().await;
        let calls = spawn_calls(&connection, 1..=8, LONG);
        wait_for(|| connection.pending_count() == 8).await;
        server.abort();
        for call in calls {
            let err = call.await.unwrap().unwrap_err();
            assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
        }
        assert!(connection.is_broken());
        let err = connection
            .call(
                99,
                cairn_wire::Encoder::new().status_request(99).to_vec(),
                LONG,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConnectionLost { .. }));
    }

    /// A server that answers the first request with `reply`.
    async fn replying_server(reply: Vec<u8>) -> (Endpoint, JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut first = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut first).await;
            let _ = socket.write_all(&reply).await;
            while matches!(socket.read(&mut first).await, Ok(n) if n > 0) {}
        });
        (Endpoint::parse(&address).unwrap(), task)
    }

    async fn first_call_error(reply: Vec<u8>) -> Error {
        let (endpoint, server) = replying_server(reply).await;
        let connection = Connection::open(&endpoint, Duration::from_secs(2), None, None)
            .await
            .unwrap();
        let frame = cairn_wire::Encoder::new().status_request(1).to_vec();
        let err = connection.call(1, frame, LONG).await.unwrap_err();
        assert!(connection.is_broken());
        server.abort();
        err
    }

    #[tokio::test]
    async fn an_unreadable_response_breaks_the_connection() {
        let mut junk = 12u32.to_le_bytes().to_vec();
        junk.extend_from_slice(&[0xff; 12]);
        let Error::ConnectionLost { reason, .. } = first_call_error(junk).await else {
            panic!("expected ConnectionLost")
        };
        assert!(reason.starts_with("bad response frame"), "{reason}");
    }

    #[tokio::test]
    async fn an_error_for_request_id_zero_breaks_the_connection() {
        let reply = cairn_wire::Encoder::new()
            .error_response(
                0,
                None,
                cairn_wire::rpc::ErrorCode::InvalidArgument,
                "bad frame",
            )
            .to_vec();
        let Error::ConnectionLost { reason, .. } = first_call_error(reply).await else {
            panic!("expected ConnectionLost")
        };
        assert_eq!(reason, "server rejected a request frame: bad frame");
    }

    #[tokio::test]
    async fn keepalive_probes_follow_the_options() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let k = Keepalive {
            time: Duration::from_secs(2),
            timeout: Duration::from_secs(6),
        };
        set_keepalive(&stream, k).unwrap();
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(2));
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
    }
}
