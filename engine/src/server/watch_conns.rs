//! Watches, the connections' side: every executor keeps the watches of its
//! own connections in a [`WatchRegistry`], filters the events the shard
//! publishes, encodes them and queues the frames on the connections, and
//! asks the shard for history when a watch falls behind. See
//! `super::watch` for the shard's side and `crate::watch` for the
//! guarantees.
//!
//! Pushed frames are [`Out::WatchPush`]: the connection's writer reports
//! them written straight to this executor's registry (no trip to the
//! shard), which reopens the connection's push window.

use cairn_wire::{rpc, Encoder, EventRef, Header, WatchResult};

use super::apply::kv_ref;
use super::route::{ConnId, Out};
use super::watch::{WatchMsg, WatchReport};
use crate::mvcc::{Event, EventKind};
use crate::watch::{CatchUp, WatchRegistry};

/// What handling a message produced: frames for connections, and whether
/// there is something to report to the shard.
#[derive(Default)]
pub struct Effects {
    pub frames: Vec<(ConnId, Out)>,
    /// Bytes of a publication now processed (for the shard's backlog).
    pub processed_bytes: usize,
}

pub struct ConnWatches {
    reg: WatchRegistry<ConnId>,
    enc: Encoder,
    /// The newest header seen from the shard (for progress notices).
    header: Header,
    /// Creates processed, for the idle report.
    creates: u64,
    /// The creates count of the last idle report sent.
    idle_reported: Option<u64>,
    /// What goes to the shard next.
    report: WatchReport,
}

impl Default for ConnWatches {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnWatches {
    pub fn new() -> Self {
        ConnWatches {
            reg: WatchRegistry::new(),
            enc: Encoder::new(),
            header: Header::default(),
            creates: 0,
            idle_reported: None,
            report: WatchReport::default(),
        }
    }

    /// Whether [`Self::take_report`] has something.
    pub fn has_report(&self) -> bool {
        !self.report.asks.is_empty() || self.report.idle_after_creates.is_some()
    }

    pub fn take_report(&mut self) -> WatchReport {
        std::mem::take(&mut self.report)
    }

    pub fn handle(&mut self, msg: WatchMsg, fx: &mut Effects) {
        match msg {
            WatchMsg::Create {
                conn,
                id,
                spec,
                watch_id,
                start_rev,
                header,
            } => {
                self.seen(header);
                self.creates += 1;
                let created = self
                    .reg
                    .create(conn, id, spec, watch_id, header.revision, start_rev);
                let frame = match created {
                    Ok(watch_id) => self.enc.watch_response(
                        id,
                        &header,
                        &WatchResult {
                            watch_id,
                            created: true,
                            ..WatchResult::default()
                        },
                    ),
                    Err(e) => self.enc.watch_response(
                        id,
                        &header,
                        &WatchResult {
                            watch_id,
                            created: true,
                            canceled: true,
                            cancel_reason: &e.to_string(),
                            ..WatchResult::default()
                        },
                    ),
                };
                fx.frames.push((conn, Out::Answer(frame.to_vec())));
                // A start in the past reads history right after the notice.
                self.ask(conn);
                self.check_idle();
            }
            WatchMsg::Cancel {
                conn,
                id,
                watch_id,
                header,
            } => {
                self.seen(header);
                // Cancelling an unknown id is answered the same way: the
                // client only waits for the confirmation.
                self.reg.cancel(conn, watch_id);
                let frame = self.enc.watch_response(
                    id,
                    &header,
                    &WatchResult {
                        watch_id,
                        canceled: true,
                        ..WatchResult::default()
                    },
                );
                fx.frames.push((conn, Out::Answer(frame.to_vec())));
                self.check_idle();
            }
            WatchMsg::Progress { conn, id, header } => {
                self.seen(header);
                // Everything up to the shard's revision has been published
                // by now (or dropped): watches that miss some read history.
                self.reg.sync(header.revision);
                self.ask_all();
                // The revision every watch of the connection has been sent
                // everything up to; frames before this one carry the rest.
                let header = Header {
                    revision: self.reg.progress(conn, header.revision),
                    ..header
                };
                let frame = self.enc.watch_response(
                    id,
                    &header,
                    &WatchResult {
                        watch_id: -1,
                        ..WatchResult::default()
                    },
                );
                fx.frames.push((conn, Out::Answer(frame.to_vec())));
            }
            WatchMsg::Events(published) => {
                self.seen(published.header);
                let rev = published.header.revision;
                for d in self.reg.apply(rev, &published.events) {
                    let frame = encode_events(
                        &mut self.enc,
                        d.stream_id,
                        &published.header,
                        d.watch_id,
                        d.prev_kv,
                        &d.events,
                    );
                    fx.frames.push((d.conn, Out::WatchPush(frame)));
                }
                fx.processed_bytes += published.bytes;
                // Watches that fell behind ask for history when their
                // connection has room again; those that missed a dropped
                // publication may have room now.
                self.ask_all();
            }
            WatchMsg::History {
                conn,
                watch_id,
                token,
                header,
                answer,
            } => {
                self.seen(header);
                if let Some(step) = self.reg.history(conn, watch_id, token, answer) {
                    let frame = self.catch_up_frame(&header, step);
                    fx.frames.push((conn, Out::WatchPush(frame)));
                }
                self.ask(conn);
                self.check_idle();
            }
            WatchMsg::Sync { header } => {
                self.seen(header);
                self.reg.sync(header.revision);
                self.ask_all();
            }
            WatchMsg::Reset { next_rev, header } => {
                self.seen(header);
                self.reg.reset(next_rev);
                self.ask_all();
            }
        }
    }

    /// The connection's socket took `n` watch pushes.
    pub fn written(&mut self, conn: ConnId, n: usize) {
        self.reg.written(conn, n);
        self.ask(conn);
    }

    /// The connection is gone: its watches end.
    pub fn closed(&mut self, conn: ConnId) {
        self.reg.close(conn);
        self.check_idle();
    }

    /// Progress notices for live watches that asked for them.
    pub fn progress_notices(&mut self, fx: &mut Effects) {
        let header = self.header;
        for (conn, stream_id, watch_id) in self.reg.progress_notices(header.revision) {
            let frame = self.enc.watch_response(
                stream_id,
                &header,
                &WatchResult {
                    watch_id,
                    ..WatchResult::default()
                },
            );
            fx.frames.push((conn, Out::WatchPush(frame.to_vec())));
        }
    }

    fn seen(&mut self, header: Header) {
        if header.revision >= self.header.revision {
            self.header = header;
        }
    }

    fn ask(&mut self, conn: ConnId) {
        let asks = self.reg.asks(conn);
        self.report.asks.extend(asks);
    }

    fn ask_all(&mut self) {
        for conn in self.reg.conns_to_catch_up() {
            self.ask(conn);
        }
    }

    fn check_idle(&mut self) {
        if self.reg.is_empty() && self.idle_reported != Some(self.creates) {
            self.idle_reported = Some(self.creates);
            self.report.idle_after_creates = Some(self.creates);
        }
    }

    fn catch_up_frame(&mut self, header: &Header, step: CatchUp<ConnId>) -> Vec<u8> {
        match step {
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
