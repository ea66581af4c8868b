//! Watches, the shard's side: it serves watch requests by handing them to
//! the executor that owns the connection, publishes the events of every
//! applied revision once to each executor that holds watches, and answers
//! those executors' requests for history. Filtering, encoding and pushing
//! events to connections happen on the connections' own executors
//! (`super::watch_conns`), so ten thousand watchers cost the shard one
//! message per executor per revision, not ten thousand frames.
//!
//! Everything the shard sends an executor — answers, watch commands,
//! publications and history — travels in one ordered queue
//! ([`super::route::Router`]), so an executor sees a watch created, the
//! publications after it, and a history answer computed at revision `C`
//! exactly in the shard's order (see `crate::watch` for why that gives
//! every watch each revision once, in order).
//!
//! # Bounded memory
//!
//! Publications an executor has not processed yet are counted in bytes
//! ([`WatchBacklog`]). Past [`limits::WATCH_PUBLISH_BACKLOG_BYTES_MAX`]
//! (`--experimental-watch-publish-backlog-bytes`) the shard stops
//! publishing to that executor: its watches notice the missing
//! revisions (at the next publication, or at a [`WatchMsg::Sync`] on a
//! later tick) and read them from the MVCC history instead. The shard never
//! waits for an executor.
//!
//! Framing (docs/wire.md): the create request is answered with a `created`
//! notice under its id, before any event; events, progress notices and a
//! server-side cancel (compaction) follow under the same id; a cancel
//! request is answered under its own id; a progress request under its own
//! id with watch id -1.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cairn_wire::{bytes, rpc, Header, RequestBodyView};

use super::route::{ConnId, Router};
use crate::limits;
use crate::mvcc::{Event, Mvcc};
use crate::watch::{read_history, Answer, Ask, WatchSpec};

/// A connection: its executor and its id there.
pub type Conn = (usize, ConnId);

/// What the shard tells an executor about its connections' watches.
#[derive(Debug)]
pub enum WatchMsg {
    /// Create a watch for the request `id` of `conn`; `header.revision` is
    /// the shard's revision when the request was served.
    Create {
        conn: ConnId,
        id: u64,
        spec: WatchSpec,
        watch_id: i64,
        start_rev: i64,
        header: Header,
    },
    /// Cancel a watch; answer the request `id`.
    Cancel {
        conn: ConnId,
        id: u64,
        watch_id: i64,
        header: Header,
    },
    /// Answer a progress request `id`.
    Progress {
        conn: ConnId,
        id: u64,
        header: Header,
    },
    /// The events of one revision (`header.revision`).
    Events(Arc<Published>),
    /// The answer to an [`Ask`].
    History {
        conn: ConnId,
        watch_id: i64,
        token: u64,
        header: Header,
        answer: Answer,
    },
    /// The shard is at `header.revision`; publications before it may have
    /// been dropped.
    Sync { header: Header },
    /// The index was replaced by a snapshot: watches continue from history
    /// at `next_rev` at the latest.
    Reset { next_rev: i64, header: Header },
}

/// One applied revision, shared by every executor it is published to.
#[derive(Debug)]
pub struct Published {
    pub header: Header,
    pub events: Vec<Event>,
    /// What it counts against [`WatchBacklog`].
    pub bytes: usize,
}

/// Bytes of publications each executor has not processed yet.
#[derive(Debug)]
pub struct WatchBacklog {
    bytes: Vec<AtomicUsize>,
}

impl WatchBacklog {
    pub fn new(executors: usize) -> Self {
        WatchBacklog {
            bytes: (0..executors).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// The executor is done with a publication of `bytes`.
    pub fn processed(&self, executor: usize, bytes: usize) {
        self.bytes[executor].fetch_sub(bytes, Ordering::AcqRel);
    }

    fn pending(&self, executor: usize) -> usize {
        self.bytes[executor].load(Ordering::Acquire)
    }

    fn add(&self, executor: usize, bytes: usize) {
        self.bytes[executor].fetch_add(bytes, Ordering::AcqRel);
    }
}

/// What one executor reports to the shard about its watches.
#[derive(Debug, Default)]
pub struct WatchReport {
    /// History requests of behind watches.
    pub asks: Vec<Ask<ConnId>>,
    /// The executor has no watches left after processing this many
    /// creates: it need not get publications any more.
    pub idle_after_creates: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Subscriber {
    /// Publications go to it.
    on: bool,
    /// Creates sent to it so far.
    creates: u64,
    /// A publication was dropped since the last one it got.
    dropped: bool,
}

pub struct WatchHub {
    router: Rc<Router>,
    backlog: Arc<WatchBacklog>,
    /// `--experimental-watch-publish-backlog-bytes`.
    backlog_bytes_max: usize,
    subscribers: Vec<Subscriber>,
}

impl WatchHub {
    pub fn new(
        router: Rc<Router>,
        backlog: Arc<WatchBacklog>,
        backlog_bytes_max: usize,
        executors: usize,
    ) -> WatchHub {
        WatchHub {
            router,
            backlog,
            backlog_bytes_max,
            subscribers: vec![Subscriber::default(); executors],
        }
    }

    /// Serve a watch request (create, cancel, progress): hand it to the
    /// connection's executor. Returns false if `body` is not one.
    pub fn request(
        &mut self,
        conn: Conn,
        id: u64,
        body: &RequestBodyView<'_>,
        header: &Header,
    ) -> bool {
        let (executor, conn) = conn;
        let msg = match body {
            RequestBodyView::WatchCreate(c) => {
                let filters = || c.filters().into_iter().flatten();
                let spec = WatchSpec {
                    key: bytes(c.key()).to_vec(),
                    range_end: bytes(c.range_end()).to_vec(),
                    no_put: filters().any(|f| f == rpc::FilterType::NoPut),
                    no_delete: filters().any(|f| f == rpc::FilterType::NoDelete),
                    prev_kv: c.prev_kv(),
                    progress_notify: c.progress_notify(),
                };
                let sub = &mut self.subscribers[executor];
                sub.on = true;
                sub.creates += 1;
                WatchMsg::Create {
                    conn,
                    id,
                    spec,
                    watch_id: c.watch_id(),
                    start_rev: c.start_revision(),
                    header: *header,
                }
            }
            RequestBodyView::WatchCancel(c) => WatchMsg::Cancel {
                conn,
                id,
                watch_id: c.watch_id(),
                header: *header,
            },
            RequestBodyView::WatchProgress(_) => WatchMsg::Progress {
                conn,
                id,
                header: *header,
            },
            _ => return false,
        };
        self.router.watch(executor, msg);
        true
    }

    /// Whether any executor has watchers: without any, [`Self::applied`]
    /// would drop the events unread, so writes need not produce them.
    pub fn wants_events(&self) -> bool {
        self.subscribers.iter().any(|s| s.on)
    }

    /// Publish the events of the revision just applied (`header.revision`).
    pub fn applied(&mut self, events: Vec<Event>, header: &Header) {
        if events.is_empty() || !self.wants_events() {
            return;
        }
        let bytes = events
            .iter()
            .map(|e| {
                limits::WATCH_EVENT_OVERHEAD_BYTES
                    + e.kv.key.len()
                    + e.kv.value.len()
                    + e.prev_kv
                        .as_ref()
                        .map_or(0, |p| p.key.len() + p.value.len())
            })
            .sum();
        let published = Arc::new(Published {
            header: *header,
            events,
            bytes,
        });
        for (executor, sub) in self.subscribers.iter_mut().enumerate() {
            if !sub.on {
                continue;
            }
            // One publication always fits an idle executor.
            let pending = self.backlog.pending(executor);
            if pending > 0 && pending + bytes > self.backlog_bytes_max {
                crate::stats::WATCH_PUBLICATIONS_DROPPED.fetch_add(1, Ordering::Relaxed);
                sub.dropped = true;
                continue;
            }
            sub.dropped = false;
            self.backlog.add(executor, bytes);
            self.router
                .watch(executor, WatchMsg::Events(published.clone()));
        }
    }

    /// An executor's report: answer its history requests from `mvcc`.
    pub fn report(&mut self, executor: usize, report: WatchReport, mvcc: &Mvcc, header: &Header) {
        for ask in report.asks {
            crate::stats::WATCH_HISTORY_READS.fetch_add(1, Ordering::Relaxed);
            let answer = read_history(
                mvcc,
                &ask.key,
                &ask.range_end,
                ask.from_rev,
                limits::MVCC_REPLAY_EVENTS_MAX_DEFAULT,
            );
            self.router.watch(
                executor,
                WatchMsg::History {
                    conn: ask.conn,
                    watch_id: ask.watch_id,
                    token: ask.token,
                    header: *header,
                    answer,
                },
            );
        }
        if let Some(creates) = report.idle_after_creates {
            let sub = &mut self.subscribers[executor];
            // A create sent after the executor went idle keeps it on.
            if sub.creates == creates {
                sub.on = false;
                sub.dropped = false;
            }
        }
    }

    /// The index was replaced by a snapshot: every watch reads the
    /// revisions from `next_rev` on from the new index's history.
    pub fn reset(&mut self, next_rev: i64, header: &Header) {
        for (executor, sub) in self.subscribers.iter_mut().enumerate() {
            if sub.on {
                sub.dropped = false;
                self.router.watch(
                    executor,
                    WatchMsg::Reset {
                        next_rev,
                        header: *header,
                    },
                );
            }
        }
    }

    /// On every tick: executors whose publications were dropped and that
    /// have caught up learn the current revision, so their watches read
    /// what they missed even if nothing more is written.
    pub fn tick(&mut self, header: &Header) {
        for (executor, sub) in self.subscribers.iter_mut().enumerate() {
            if sub.on && sub.dropped && self.backlog.pending(executor) == 0 {
                sub.dropped = false;
                self.router
                    .watch(executor, WatchMsg::Sync { header: *header });
            }
        }
    }
}
