//! Routing between executors: requests to the shard, responses back to the
//! executor that owns the connection. One place decides where a message
//! goes; everything else calls it.
//!
//! The shard must never wait on a slow connection, so it does not send
//! responses itself: it drops them into a per-executor outbox and a drain
//! task per executor carries them over the mesh. The outboxes are bounded by
//! the shard's own admission limit (every admitted request produces exactly
//! one response), and each connection's queue by its in-flight limit.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use super::watch::{WatchBacklog, WatchMsg, WatchReport};
use super::watch_conns::{ConnWatches, Effects};
use crate::limits;

/// The executor that owns the shard (milestone 1: one shard per node).
pub const SHARD_EXECUTOR: usize = 0;

/// A connection, unique within its executor.
pub type ConnId = u64;

/// Verified request frames from one connection, in the order they arrived,
/// and news about the connection and its executor's watches.
pub struct ToShard {
    pub origin: usize,
    pub conn: ConnId,
    /// Each frame is one verified request flatbuffer (no length prefix).
    pub frames: Vec<Bytes>,
    /// Pushed backup frames the connection's socket has taken since its
    /// last report (they free room in the backup's push window).
    pub pushes_written: usize,
    /// The connection is gone.
    pub closed: bool,
    /// The executor's watches ask for history (connection 0).
    pub watch: Option<WatchReport>,
    /// The CN of the connection's client certificate (filled in by the
    /// router from [`Router::set_cert_user`]).
    pub cert_user: Option<std::sync::Arc<str>>,
}

impl ToShard {
    pub fn requests(origin: usize, conn: ConnId, frames: Vec<Bytes>) -> ToShard {
        ToShard {
            origin,
            conn,
            frames,
            pushes_written: 0,
            closed: false,
            watch: None,
            cert_user: None,
        }
    }
}

/// A frame for a connection (length prefix included).
#[derive(Debug)]
pub enum Out {
    /// The one answer to a request: frees one of the connection's
    /// in-flight slots when written.
    Answer(Vec<u8>),
    /// A frame nobody asked for from the shard (backup chunks): counted
    /// against the backup's push window, reported to the shard.
    Push(Vec<u8>),
    /// A watch frame nobody asked for (events, server-side cancels,
    /// progress notices): counted against the connection's watch window on
    /// its own executor.
    WatchPush(Vec<u8>),
}

impl Out {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Out::Answer(b) | Out::Push(b) | Out::WatchPush(b) => b,
        }
    }
}

/// What the shard sends an executor: a frame for one connection, or news
/// for the executor's watches.
pub enum Item {
    Conn(ConnId, Out),
    Watch(WatchMsg),
}

/// Items in the shard's order.
pub type Outgoing = Vec<Item>;

/// Response frames and watch news for one executor.
pub struct FromShard {
    pub items: Outgoing,
}

pub struct Router {
    me: usize,
    to_shard: Senders<ToShard>,
    from_shard: Senders<FromShard>,
    /// On the shard's executor: the shard's inbox, fed by local connections
    /// and by the mesh.
    shard_inbox: Option<Rc<LocalSender<ToShard>>>,
    shard_inbox_rx: Cell<Option<LocalReceiver<ToShard>>>,
    conns: RefCell<HashMap<ConnId, LocalSender<Out>>>,
    /// Client-certificate CNs of this executor's connections that have one.
    cert_users: RefCell<HashMap<ConnId, std::sync::Arc<str>>>,
    next_conn: Cell<ConnId>,
    /// Responses waiting to be carried to each executor, and the doorbell
    /// of the task that carries them.
    outbox: RefCell<Vec<Outgoing>>,
    doorbells: RefCell<Vec<Option<LocalSender<()>>>>,
    /// The watches of this executor's connections.
    watches: RefCell<ConnWatches>,
    backlog: Arc<WatchBacklog>,
    /// Wakes the task that sends the watches' report to the shard.
    watch_bell: RefCell<Option<LocalSender<()>>>,
}

impl Router {
    pub fn new(
        me: usize,
        to_shard: Senders<ToShard>,
        from_shard: Senders<FromShard>,
        backlog: Arc<WatchBacklog>,
    ) -> Self {
        let peers = to_shard.nr_consumers();
        let (inbox, inbox_rx) = if me == SHARD_EXECUTOR {
            let (tx, rx) = local_channel::new_bounded(limits::SHARD_INBOX_CAPACITY);
            (Some(Rc::new(tx)), Some(rx))
        } else {
            (None, None)
        };
        Router {
            me,
            to_shard,
            from_shard,
            shard_inbox: inbox,
            shard_inbox_rx: Cell::new(inbox_rx),
            conns: RefCell::new(HashMap::new()),
            cert_users: RefCell::new(HashMap::new()),
            next_conn: Cell::new(1),
            outbox: RefCell::new((0..peers).map(|_| Vec::new()).collect()),
            doorbells: RefCell::new((0..peers).map(|_| None).collect()),
            watches: RefCell::new(ConnWatches::new()),
            backlog,
            watch_bell: RefCell::new(None),
        }
    }

    pub fn executor(&self) -> usize {
        self.me
    }

    /// Spawn the tasks that move messages between executors.
    pub fn start(
        self: Rc<Self>,
        mut to_shard_rx: Receivers<ToShard>,
        mut from_shard_rx: Receivers<FromShard>,
    ) {
        // Requests arriving over the mesh join the local ones in the inbox.
        if let Some(inbox) = &self.shard_inbox {
            for (_, rx) in to_shard_rx.streams() {
                let inbox = inbox.clone();
                glommio::spawn_local(async move {
                    while let Some(msg) = rx.recv().await {
                        if inbox.send(msg).await.is_err() {
                            break;
                        }
                    }
                })
                .detach();
            }
        }
        // Responses from the shard go to their connections.
        for (_, rx) in from_shard_rx.streams() {
            let router = self.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = rx.recv().await {
                    router.dispatch(msg.items);
                }
            })
            .detach();
        }
        // The watches' reports (history asks, idle) to the shard.
        let (bell, ring) = local_channel::new_bounded::<()>(1);
        *self.watch_bell.borrow_mut() = Some(bell);
        let router = self.clone();
        glommio::spawn_local(async move {
            while ring.recv().await.is_some() {
                let report = router.watches.borrow_mut().take_report();
                let mut msg = ToShard::requests(router.me, 0, Vec::new());
                msg.watch = Some(report);
                if router.send_to_shard(msg).await.is_err() {
                    break;
                }
            }
        })
        .detach();
        // Progress notices for watches that asked for them.
        let router = self.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_millis(limits::WATCH_PROGRESS_NOTIFY_MS))
                    .await;
                let mut fx = Effects::default();
                router.watches.borrow_mut().progress_notices(&mut fx);
                router.effects(fx);
            }
        })
        .detach();
        // One drain task per other executor, woken by its doorbell (this
        // executor's own items are dispatched by `flush`).
        if self.me == SHARD_EXECUTOR {
            for dest in (0..self.outbox.borrow().len()).filter(|&d| d != self.me) {
                let (bell, ring) = local_channel::new_bounded::<()>(1);
                self.doorbells.borrow_mut()[dest] = Some(bell);
                let router = self.clone();
                glommio::spawn_local(async move {
                    while ring.recv().await.is_some() {
                        let items = std::mem::take(&mut router.outbox.borrow_mut()[dest]);
                        if items.is_empty() {
                            continue;
                        }
                        if router
                            .from_shard
                            .send_to(dest, FromShard { items })
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                })
                .detach();
            }
        }
    }

    /// The shard's inbox; only the shard's executor has one, once.
    pub fn take_shard_inbox(&self) -> Option<LocalReceiver<ToShard>> {
        self.shard_inbox_rx.take()
    }

    /// Register a new connection; its responses arrive on the returned queue.
    pub fn register(&self) -> (ConnId, LocalReceiver<Out>) {
        let id = self.next_conn.get();
        self.next_conn.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(limits::CONN_OUTBOUND_WITH_PUSHES);
        self.conns.borrow_mut().insert(id, tx);
        (id, rx)
    }

    /// The connection is gone: forget it and end its watches.
    pub fn unregister(&self, conn: ConnId) {
        self.conns.borrow_mut().remove(&conn);
        self.cert_users.borrow_mut().remove(&conn);
        self.watches.borrow_mut().closed(conn);
        self.ring_watch_report();
    }

    /// The connection's socket took `n` watch pushes: room for more.
    pub fn watch_pushes_written(&self, conn: ConnId, n: usize) {
        if n > 0 {
            let mut fx = Effects::default();
            self.watches.borrow_mut().written(conn, n, &mut fx);
            self.effects(fx);
        }
    }

    /// Remember the CN of a connection's client certificate: it goes with
    /// every message of the connection to the shard.
    pub fn set_cert_user(&self, conn: ConnId, cn: Option<String>) {
        if let Some(cn) = cn {
            self.cert_users
                .borrow_mut()
                .insert(conn, std::sync::Arc::from(cn));
        }
    }

    /// Hand requests to the shard, waiting while its queues are full.
    pub async fn send_to_shard(&self, mut msg: ToShard) -> Result<(), ()> {
        // Without TLS client certificates the map is empty: no lookup.
        if msg.cert_user.is_none() && !self.cert_users.borrow().is_empty() {
            msg.cert_user = self.cert_users.borrow().get(&msg.conn).cloned();
        }
        match &self.shard_inbox {
            Some(inbox) => inbox.send(msg).await.map_err(|_| ()),
            None => self
                .to_shard
                .send_to(SHARD_EXECUTOR, msg)
                .await
                .map_err(|_| ()),
        }
    }

    /// Answer a connection of this executor directly (errors found before a
    /// request reached the shard). Never waits.
    pub fn reply_local(&self, conn: ConnId, frame: Vec<u8>) {
        self.deliver(conn, Out::Answer(frame));
    }

    /// Queue a response for a connection on executor `origin`. Never waits.
    pub fn reply(&self, origin: usize, conn: ConnId, frame: Vec<u8>) {
        self.outbox.borrow_mut()[origin].push(Item::Conn(conn, Out::Answer(frame)));
    }

    /// Queue a pushed frame (backup chunks) for a connection on executor
    /// `origin`. Never waits; the caller keeps within the push window.
    pub fn push(&self, origin: usize, conn: ConnId, frame: Vec<u8>) {
        self.outbox.borrow_mut()[origin].push(Item::Conn(conn, Out::Push(frame)));
    }

    /// Queue news for the watches of executor `dest`. Never waits.
    pub fn watch(&self, dest: usize, msg: WatchMsg) {
        self.outbox.borrow_mut()[dest].push(Item::Watch(msg));
    }

    /// Hand over everything queued: this executor's own connections get
    /// theirs now (their writers are woken before anything the caller does
    /// next, such as sending to peers), the other executors' drain tasks
    /// are woken.
    pub fn flush(&self) {
        let local = std::mem::take(&mut self.outbox.borrow_mut()[self.me]);
        if !local.is_empty() {
            self.dispatch(local);
        }
        let outbox = self.outbox.borrow();
        let bells = self.doorbells.borrow();
        for (dest, items) in outbox.iter().enumerate() {
            if dest != self.me && !items.is_empty() {
                if let Some(bell) = &bells[dest] {
                    // A full doorbell means the drain task is already due.
                    let _ = bell.try_send(());
                }
            }
        }
    }

    fn dispatch(&self, items: Outgoing) {
        let mut fx = Effects::default();
        for item in items {
            match item {
                Item::Conn(conn, out) => self.deliver(conn, out),
                Item::Watch(msg) => {
                    self.watches.borrow_mut().handle(msg, &mut fx);
                    // In order: a watch's frames go out before the next
                    // item's.
                    self.effects(std::mem::take(&mut fx));
                }
            }
        }
    }

    fn effects(&self, fx: Effects) {
        for (conn, out) in fx.frames {
            self.deliver(conn, out);
        }
        if fx.processed_bytes > 0 {
            self.backlog.processed(self.me, fx.processed_bytes);
        }
        self.ring_watch_report();
    }

    fn ring_watch_report(&self) {
        if self.watches.borrow().has_report() {
            if let Some(bell) = &*self.watch_bell.borrow() {
                // A full doorbell means the report task is already due.
                let _ = bell.try_send(());
            }
        }
    }

    fn deliver(&self, conn: ConnId, out: Out) {
        if let Some(tx) = self.conns.borrow().get(&conn) {
            // The connection admits at most CONN_INFLIGHT_MAX requests and
            // its watches at most WATCH_PUSH_WINDOW unwritten pushes (the
            // backup BACKUP_PUSH_WINDOW), so its queue cannot be full
            // unless it is closing.
            if tx.try_send(out).is_err() {
                tracing::debug!(conn, "dropping a frame for a closing connection");
            }
        }
    }
}
