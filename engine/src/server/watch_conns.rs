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
//!
//! The executor also keeps the most recent publications it processed
//! ([`Recent`], bounded by `WATCH_RECENT_BYTES_MAX`). A watch that fell
//! behind for lack of room is usually only a few revisions back: it is
//! caught up from there, in frames of many revisions, without asking the
//! shard (whose history read scans the watched range). Only a watch that
//! is further back than those publications asks the shard.

use std::collections::VecDeque;
use std::sync::Arc;

use cairn_wire::{rpc, Encoder, EventRef, Header, SharedWatchFrame, WatchResult};

use super::apply::kv_ref;
use super::route::{ConnId, Out};
use super::watch::{Published, WatchMsg, WatchReport};
use crate::limits;
use crate::mvcc::{Event, EventKind};
use crate::watch::{in_range, Answer, CatchUp, WatchRegistry};

/// The latest publications this executor processed, contiguous by
/// revision and ending at the newest revision the executor knows of.
#[derive(Default)]
struct Recent {
    pubs: VecDeque<Arc<Published>>,
    bytes: usize,
}

impl Recent {
    fn last_rev(&self) -> Option<i64> {
        self.pubs.back().map(|p| p.header.revision)
    }

    fn clear(&mut self) {
        self.pubs.clear();
        self.bytes = 0;
    }

    fn push(&mut self, p: Arc<Published>) {
        if self
            .last_rev()
            .is_some_and(|last| p.header.revision != last + 1)
        {
            // Publications were dropped in between: the gap is not here.
            self.clear();
        }
        self.bytes += p.bytes;
        self.pubs.push_back(p);
        while self.bytes > limits::WATCH_RECENT_BYTES_MAX && self.pubs.len() > 1 {
            if let Some(old) = self.pubs.pop_front() {
                self.bytes -= old.bytes;
            }
        }
    }

    /// Answer a history request from here, if every revision it needs is
    /// here: whole revisions from `from_rev`, about `max_events` at most.
    fn answer(
        &self,
        key: &[u8],
        range_end: &[u8],
        from_rev: i64,
        max_events: usize,
    ) -> Option<Answer> {
        let first = self.pubs.front()?.header.revision;
        let last = self.last_rev()?;
        if from_rev < first || from_rev > last + 1 {
            return None;
        }
        let mut events = Vec::new();
        let mut next_revision = last + 1;
        for p in self.pubs.iter().skip((from_rev - first) as usize) {
            if events.len() >= max_events {
                next_revision = p.header.revision;
                break;
            }
            events.extend(
                p.events
                    .iter()
                    .filter(|e| in_range(&e.kv.key, key, range_end))
                    .cloned(),
            );
        }
        Some(Answer::Events {
            events,
            next_revision,
            current_rev: last,
        })
    }
}

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
    recent: Recent,
    /// The last catch-up frame, for the next watch sent the same.
    last_catch_up: Option<CaughtUp>,
}

/// A catch-up frame's contents and its encoding.
struct CaughtUp {
    header: Header,
    prev_kv: bool,
    events: Vec<Event>,
    frame: SharedWatchFrame,
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
            recent: Recent::default(),
            last_catch_up: None,
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
                self.ask(conn, fx);
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
                self.ask_all(fx);
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
                if published.header.revision >= self.header.revision {
                    self.header = published.header;
                }
                let rev = published.header.revision;
                // The frame of the previous delivery, shared with the next
                // one that picked the same events.
                let mut last: Option<(bool, Vec<&Event>, SharedWatchFrame)> = None;
                for d in self.reg.apply(rev, &published.events) {
                    let shared = match last.take() {
                        Some(l) if l.0 == d.prev_kv && same_events(&l.1, &d.events) => l,
                        _ => {
                            let frame = events_frame(
                                &mut self.enc,
                                &published.header,
                                d.prev_kv,
                                &d.events,
                            );
                            (d.prev_kv, d.events, frame)
                        }
                    };
                    let frame = shared.2.for_watch(d.stream_id, d.watch_id);
                    fx.frames.push((d.conn, Out::WatchPush(frame)));
                    last = Some(shared);
                }
                fx.processed_bytes += published.bytes;
                self.recent.push(published);
                // Watches that fell behind for lack of room ask once their
                // connection drains (`written`); those that missed a
                // dropped publication may have room now. Only then is
                // every connection looked at.
                if self.reg.take_gaps() {
                    self.ask_all(fx);
                }
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
                self.ask(conn, fx);
                self.check_idle();
            }
            WatchMsg::Sync { header } => {
                self.seen(header);
                self.reg.sync(header.revision);
                self.ask_all(fx);
            }
            WatchMsg::Reset { next_rev, header } => {
                self.seen(header);
                // The index was replaced: history comes from the new one.
                self.recent.clear();
                self.reg.reset(next_rev);
                self.ask_all(fx);
            }
        }
    }

    /// The connection's socket took `n` watch pushes.
    pub fn written(&mut self, conn: ConnId, n: usize, fx: &mut Effects) {
        self.reg.written(conn, n);
        self.ask(conn, fx);
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

    /// A header from the shard other than a publication's: if the shard
    /// is past the newest publication here, those in between were dropped
    /// and the recent ones no longer end at the head.
    fn seen(&mut self, header: Header) {
        if self
            .recent
            .last_rev()
            .is_some_and(|last| header.revision > last)
        {
            self.recent.clear();
        }
        if header.revision >= self.header.revision {
            self.header = header;
        }
    }

    /// History for the connection's behind watches: from the recent
    /// publications where they reach, from the shard otherwise.
    fn ask(&mut self, conn: ConnId, fx: &mut Effects) {
        loop {
            let asks = self.reg.asks(conn);
            if asks.is_empty() {
                return;
            }
            let mut local = false;
            for a in asks {
                let here = self.recent.answer(
                    &a.key,
                    &a.range_end,
                    a.from_rev,
                    limits::MVCC_REPLAY_EVENTS_MAX_DEFAULT,
                );
                match here {
                    Some(answer) => {
                        local = true;
                        if let Some(step) = self.reg.history(conn, a.watch_id, a.token, answer) {
                            let header = self.header;
                            let frame = self.catch_up_frame(&header, step);
                            fx.frames.push((conn, Out::WatchPush(frame)));
                        }
                    }
                    None => self.report.asks.push(a),
                }
            }
            if !local {
                return;
            }
        }
    }

    fn ask_all(&mut self, fx: &mut Effects) {
        for conn in self.reg.conns_to_catch_up() {
            self.ask(conn, fx);
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
                let c = match self.last_catch_up.take() {
                    Some(c)
                        if c.header == *header && c.prev_kv == prev_kv && c.events == events =>
                    {
                        c
                    }
                    _ => {
                        let refs: Vec<&Event> = events.iter().collect();
                        let frame = events_frame(&mut self.enc, header, prev_kv, &refs);
                        CaughtUp {
                            header: *header,
                            prev_kv,
                            events,
                            frame,
                        }
                    }
                };
                let frame = c.frame.for_watch(stream_id, watch_id);
                self.last_catch_up = Some(c);
                frame
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

/// Whether two deliveries of one publication picked the very same events.
fn same_events(a: &[&Event], b: &[&Event]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| std::ptr::eq(*x, *y))
}

/// The frame of `events`, to be given each watch's ids.
fn events_frame(
    enc: &mut Encoder,
    header: &Header,
    prev_kv: bool,
    events: &[&Event],
) -> SharedWatchFrame {
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
    enc.shared_watch_events(header, &refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::KeyValue;
    use crate::watch::WatchSpec;
    use cairn_wire::{decode_response, KeyValueRef, ResponseBodyView};

    fn header(revision: i64) -> Header {
        Header {
            revision,
            ..Header::default()
        }
    }

    fn publication(rev: i64, key: &str) -> WatchMsg {
        let kv = KeyValue {
            key: key.as_bytes().to_vec(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            value: b"v".to_vec(),
            lease: 0,
        };
        WatchMsg::Events(Arc::new(Published {
            header: header(rev),
            events: vec![Event {
                kind: EventKind::Put,
                kv,
                prev_kv: None,
            }],
            bytes: 100,
        }))
    }

    fn create(w: &mut ConnWatches, conn: ConnId, rev: i64, fx: &mut Effects) {
        w.handle(
            WatchMsg::Create {
                conn,
                id: 5,
                spec: WatchSpec {
                    key: b"k".to_vec(),
                    range_end: b"l".to_vec(),
                    ..WatchSpec::default()
                },
                watch_id: 0,
                start_rev: 0,
                header: header(rev),
            },
            fx,
        );
    }

    /// Revisions of the events in the pushed frames, in order.
    fn pushed_revs(fx: &Effects) -> Vec<i64> {
        fx.frames
            .iter()
            .filter_map(|(_, out)| match out {
                Out::WatchPush(f) => Some(f),
                _ => None,
            })
            .flat_map(|f| {
                let v = decode_response(f).unwrap();
                let Ok(ResponseBodyView::Watch(w)) = v.body else {
                    panic!("not a watch response")
                };
                w.events()
                    .into_iter()
                    .flatten()
                    .map(|e| KeyValueRef::from(e.kv().unwrap()).mod_revision)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn a_watch_out_of_room_catches_up_from_recent_publications_without_the_shard() {
        let mut w = ConnWatches::new();
        let mut fx = Effects::default();
        create(&mut w, 1, 1, &mut fx);
        let total = limits::WATCH_LIVE_PUSHES_MAX as i64 + 44;
        for rev in 2..2 + total {
            w.handle(publication(rev, &format!("k{rev}")), &mut fx);
        }
        assert_eq!(pushed_revs(&fx).len(), limits::WATCH_LIVE_PUSHES_MAX);
        w.written(1, limits::WATCH_LIVE_PUSHES_MAX, &mut fx);
        assert!(!w.has_report(), "no history asked of the shard");
        let revs = pushed_revs(&fx);
        assert_eq!(
            revs,
            (2..2 + total).collect::<Vec<i64>>(),
            "each once, in order"
        );
        // Live again.
        let mut fx = Effects::default();
        w.handle(publication(2 + total, "k-next"), &mut fx);
        assert_eq!(pushed_revs(&fx), vec![2 + total]);
    }

    #[test]
    fn a_gap_or_a_newer_shard_revision_sends_the_ask_to_the_shard() {
        let mut w = ConnWatches::new();
        let mut fx = Effects::default();
        create(&mut w, 1, 1, &mut fx);
        w.handle(publication(2, "k2"), &mut fx);
        // Revision 3 was dropped; 4 shows the gap, which is not here.
        w.handle(publication(4, "k4"), &mut fx);
        assert_eq!(pushed_revs(&fx), vec![2]);
        let report = w.take_report();
        assert_eq!(report.asks.len(), 1);
        assert_eq!(report.asks[0].from_rev, 3);

        // Dropped at the end, then a sync: the recent publications no
        // longer reach the head, so the shard is asked.
        let mut w = ConnWatches::new();
        let mut fx = Effects::default();
        create(&mut w, 1, 1, &mut fx);
        w.handle(publication(2, "k2"), &mut fx);
        w.handle(WatchMsg::Sync { header: header(5) }, &mut fx);
        let report = w.take_report();
        assert_eq!(report.asks.len(), 1);
        assert_eq!(report.asks[0].from_rev, 3);
    }

    /// Every pushed frame as (connection, response id, watch id, event
    /// revisions, whether the events carry a previous kv).
    fn pushes(fx: &Effects) -> Vec<(ConnId, u64, i64, Vec<i64>, bool)> {
        fx.frames
            .iter()
            .filter_map(|(conn, out)| match out {
                Out::WatchPush(f) => Some((*conn, f)),
                _ => None,
            })
            .map(|(conn, f)| {
                let v = decode_response(f).unwrap();
                let Ok(ResponseBodyView::Watch(w)) = v.body else {
                    panic!("not a watch response")
                };
                let events: Vec<_> = w.events().into_iter().flatten().collect();
                let revs = events
                    .iter()
                    .map(|e| KeyValueRef::from(e.kv().unwrap()).mod_revision)
                    .collect();
                let prev = events.iter().any(|e| e.prev_kv().is_some());
                (conn, v.id, w.watch_id(), revs, prev)
            })
            .collect()
    }

    #[test]
    fn watches_sent_the_same_events_each_get_their_own_ids() {
        let mut w = ConnWatches::new();
        let mut fx = Effects::default();
        let spec = |key: &str, end: &str, prev_kv: bool, no_put: bool| WatchSpec {
            key: key.as_bytes().to_vec(),
            range_end: end.as_bytes().to_vec(),
            prev_kv,
            no_put,
            ..WatchSpec::default()
        };
        // (connection, create request id, spec)
        let watches = [
            (1, 10, spec("k", "l", false, false)),
            (1, 11, spec("k", "l", false, false)),
            (2, 12, spec("k", "l", false, false)),
            (2, 13, spec("k", "l", true, false)),
            (1, 14, spec("k", "l", false, true)),
            (2, 15, spec("x", "y", false, false)),
            (1, 16, spec("m", "n", false, false)),
        ];
        for (conn, id, spec) in watches.iter().cloned() {
            w.handle(
                WatchMsg::Create {
                    conn,
                    id,
                    spec,
                    watch_id: 0,
                    start_rev: 0,
                    header: header(1),
                },
                &mut fx,
            );
        }
        // The watch id each create was answered with.
        let watch_id = |stream: u64| -> i64 {
            fx.frames
                .iter()
                .find_map(|(_, out)| match out {
                    Out::Answer(f) => {
                        let v = decode_response(f).unwrap();
                        let Ok(ResponseBodyView::Watch(w)) = v.body else {
                            return None;
                        };
                        (v.id == stream).then(|| w.watch_id())
                    }
                    _ => None,
                })
                .expect("the create was answered")
        };
        let ids: Vec<(ConnId, u64, i64)> = watches
            .iter()
            .map(|(conn, id, _)| (*conn, *id, watch_id(*id)))
            .collect();

        let mut live = Effects::default();
        let kv = |rev: i64, value: &[u8]| KeyValue {
            key: b"k1".to_vec(),
            create_revision: 1,
            mod_revision: rev,
            version: rev,
            value: value.to_vec(),
            lease: 0,
        };
        w.handle(
            WatchMsg::Events(Arc::new(Published {
                header: header(2),
                events: vec![Event {
                    kind: EventKind::Put,
                    kv: kv(2, b"new"),
                    prev_kv: Some(kv(1, b"old")),
                }],
                bytes: 100,
            })),
            &mut live,
        );
        let mut got = pushes(&live);
        got.sort();
        let mut want: Vec<_> = ids[..4]
            .iter()
            .map(|&(conn, id, watch_id)| (conn, id, watch_id, vec![2], id == 13))
            .collect();
        want.sort();
        assert_eq!(got, want, "one frame per matching watch, with its ids");

        // Out of room: the connections' watches catch up from the recent
        // publications, every watch with its own ids and each revision
        // once. Even revisions are in k..l, odd ones in m..n: the two
        // ranges' catch-up frames hold as many events, but not the same.
        let mut fx = Effects::default();
        let total = 2 * limits::WATCH_LIVE_PUSHES_MAX as i64 + 40;
        let range_of = |rev: i64| if rev % 2 == 0 { "k" } else { "m" };
        for rev in 3..3 + total {
            w.handle(
                publication(rev, &format!("{}{rev}", range_of(rev))),
                &mut fx,
            );
        }
        for conn in [1, 2] {
            let pushed = pushes(&fx).iter().filter(|p| p.0 == conn).count();
            w.written(conn, pushed + 1, &mut fx);
        }
        let sent: Vec<_> = ids[..4].iter().chain(&ids[6..]).copied().collect();
        for &(conn, id, watch_id) in &sent {
            let revs: Vec<i64> = pushes(&fx)
                .into_iter()
                .filter(|p| (p.0, p.1, p.2) == (conn, id, watch_id))
                .flat_map(|p| p.3)
                .collect();
            let range = if id == 16 { "m" } else { "k" };
            let want: Vec<i64> = (3..3 + total).filter(|r| range_of(*r) == range).collect();
            assert_eq!(revs, want, "watch {id}");
        }
        assert!(
            pushes(&fx).iter().all(|p| sent.contains(&(p.0, p.1, p.2))),
            "only the matching watches are sent anything"
        );
    }
}
