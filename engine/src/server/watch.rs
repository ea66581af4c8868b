//! Watches in the shard: requests (create, cancel, progress), fan-out of
//! every applied revision, and catch-up from history, on top of the
//! [`WatchRegistry`].
//!
//! Watches live on the shard's executor and are local to the member the
//! client is connected to (as etcd's): every member, leader or follower,
//! delivers events as it applies entries. Frames leave through the router
//! like responses, but as *pushes*: the connection's writer reports how
//! many pushes its socket took, which reopens the connection's push window
//! (see `crate::watch` for why that loses nothing and never stalls).
//!
//! Framing (docs/wire.md): the create request is answered with a `created`
//! notice under its id, before any event; events, progress notices and a
//! server-side cancel (compaction) follow under the same id; a cancel
//! request is answered under its own id; a progress request under its own
//! id with watch id -1.

use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_wire::{bytes, rpc, Encoder, EventRef, Header, RequestBodyView, WatchResult};

use super::apply::kv_ref;
use super::route::{ConnId, Router};
use crate::limits;
use crate::mvcc::{Event, EventKind, Mvcc};
use crate::watch::{CatchUp, WatchRegistry, WatchSpec};

/// A connection: its executor and its id there.
pub type Conn = (usize, ConnId);

pub struct WatchHub {
    reg: WatchRegistry<Conn>,
    enc: Encoder,
    router: Rc<Router>,
    next_progress: Instant,
}

impl WatchHub {
    pub fn new(router: Rc<Router>) -> WatchHub {
        WatchHub {
            reg: WatchRegistry::new(),
            enc: Encoder::new(),
            router,
            next_progress: Instant::now() + Duration::from_millis(limits::WATCH_PROGRESS_NOTIFY_MS),
        }
    }

    /// Serve a watch request (create, cancel, progress) at once. Returns
    /// false if `body` is not one.
    pub fn request(
        &mut self,
        conn: Conn,
        id: u64,
        body: &RequestBodyView<'_>,
        mvcc: &Mvcc,
        header: &Header,
    ) -> bool {
        match body {
            RequestBodyView::WatchCreate(c) => {
                let spec = WatchSpec {
                    key: bytes(c.key()).to_vec(),
                    range_end: bytes(c.range_end()).to_vec(),
                    no_put: c
                        .filters()
                        .into_iter()
                        .flatten()
                        .any(|f| f == rpc::FilterType::NoPut),
                    no_delete: c
                        .filters()
                        .into_iter()
                        .flatten()
                        .any(|f| f == rpc::FilterType::NoDelete),
                    prev_kv: c.prev_kv(),
                    progress_notify: c.progress_notify(),
                };
                let current = mvcc.current_revision();
                let created =
                    self.reg
                        .create(conn, id, spec, c.watch_id(), current, c.start_revision());
                let frame = match created {
                    Ok(watch_id) => self.enc.watch_response(
                        id,
                        header,
                        &WatchResult {
                            watch_id,
                            created: true,
                            ..WatchResult::default()
                        },
                    ),
                    Err(e) => self.enc.watch_response(
                        id,
                        header,
                        &WatchResult {
                            watch_id: c.watch_id(),
                            created: true,
                            canceled: true,
                            cancel_reason: &e.to_string(),
                            ..WatchResult::default()
                        },
                    ),
                };
                self.router.reply(conn.0, conn.1, frame.to_vec());
                // A start in the past replays history right after the notice.
                self.catch_up(conn, mvcc, header);
            }
            RequestBodyView::WatchCancel(c) => {
                // Cancelling an unknown id is answered the same way: the
                // client only waits for the confirmation.
                self.reg.cancel(conn, c.watch_id());
                let frame = self.enc.watch_response(
                    id,
                    header,
                    &WatchResult {
                        watch_id: c.watch_id(),
                        canceled: true,
                        ..WatchResult::default()
                    },
                );
                self.router.reply(conn.0, conn.1, frame.to_vec());
            }
            RequestBodyView::WatchProgress(_) => {
                // The revision every watch of the connection has been sent
                // everything up to; frames before this one carry the rest.
                let header = Header {
                    revision: self.reg.progress(conn, header.revision),
                    ..*header
                };
                let frame = self.enc.watch_response(
                    id,
                    &header,
                    &WatchResult {
                        watch_id: -1,
                        ..WatchResult::default()
                    },
                );
                self.router.reply(conn.0, conn.1, frame.to_vec());
            }
            _ => return false,
        }
        true
    }

    /// Deliver the events of the revision just applied.
    pub fn applied(&mut self, events: &[Event], header: &Header) {
        if events.is_empty() || self.reg.is_empty() {
            return;
        }
        let rev = events[0].kv.mod_revision;
        for d in self.reg.apply(rev, events) {
            let frame = encode_events(
                &mut self.enc,
                d.stream_id,
                header,
                d.watch_id,
                d.prev_kv,
                &d.events,
            );
            self.router.push(d.conn.0, d.conn.1, frame);
        }
    }

    /// The connection's socket took `n` pushes: catch its watches up.
    pub fn written(&mut self, conn: Conn, n: usize, mvcc: &Mvcc, header: &Header) {
        self.reg.written(conn, n);
        self.catch_up(conn, mvcc, header);
    }

    pub fn closed(&mut self, conn: Conn) {
        self.reg.close(conn);
    }

    /// The index was replaced by a snapshot from the leader: every watch
    /// reads the revisions it has not seen from the new index's history.
    pub fn reset(&mut self, next_rev: i64, mvcc: &Mvcc, header: &Header) {
        self.reg.all_behind(next_rev);
        for conn in self.reg.conns_to_catch_up() {
            self.catch_up(conn, mvcc, header);
        }
    }

    /// On every tick: progress notices for live watches that asked for
    /// them, every `WATCH_PROGRESS_NOTIFY_MS`.
    pub fn tick(&mut self, now: Instant, header: &Header) {
        if now < self.next_progress {
            return;
        }
        self.next_progress = now + Duration::from_millis(limits::WATCH_PROGRESS_NOTIFY_MS);
        for (conn, stream_id, watch_id) in self.reg.progress_notices() {
            let frame = self.enc.watch_response(
                stream_id,
                header,
                &WatchResult {
                    watch_id,
                    ..WatchResult::default()
                },
            );
            self.router.push(conn.0, conn.1, frame.to_vec());
        }
    }

    fn catch_up(&mut self, conn: Conn, mvcc: &Mvcc, header: &Header) {
        for step in self
            .reg
            .catch_up(conn, mvcc, limits::MVCC_REPLAY_EVENTS_MAX_DEFAULT)
        {
            let frame = match step {
                CatchUp::Events {
                    stream_id,
                    watch_id,
                    prev_kv,
                    events,
                    ..
                } => {
                    let refs: Vec<&Event> = events.iter().collect();
                    encode_events(&mut self.enc, stream_id, header, watch_id, prev_kv, &refs)
                }
                CatchUp::Compacted {
                    stream_id,
                    watch_id,
                    compact_revision,
                    ..
                } => self
                    .enc
                    .watch_response(
                        stream_id,
                        header,
                        &WatchResult {
                            watch_id,
                            canceled: true,
                            compact_revision,
                            cancel_reason: "mvcc: required revision has been compacted",
                            ..WatchResult::default()
                        },
                    )
                    .to_vec(),
            };
            self.router.push(conn.0, conn.1, frame);
        }
    }
}

fn encode_events(
    enc: &mut Encoder,
    stream_id: u64,
    header: &Header,
    watch_id: i64,
    prev_kv: bool,
    events: &[&Event],
) -> Vec<u8> {
    let refs: Vec<EventRef<'_>> = events
        .iter()
        .map(|e| EventRef {
            kind: match e.kind {
                EventKind::Put => rpc::EventType::Put,
                EventKind::Delete => rpc::EventType::Delete,
            },
            kv: kv_ref(&e.kv),
            prev_kv: if prev_kv {
                e.prev_kv.as_ref().map(kv_ref)
            } else {
                None
            },
        })
        .collect();
    enc.watch_response(
        stream_id,
        header,
        &WatchResult {
            watch_id,
            events: &refs,
            ..WatchResult::default()
        },
    )
    .to_vec()
}
