//! The watcher registry of one executor: which watches exist on which of
//! its connections, what each has been sent, and what it is sent next.
//!
//! A plain data structure: no I/O, no clock. The shard publishes the events
//! of every applied revision once to each executor that holds watches; the
//! executor hands them to [`WatchRegistry::apply`] and gets back the
//! deliveries to encode and push. When a connection's socket has taken
//! pushed frames it reports them ([`WatchRegistry::written`]); watches that
//! fell behind then ask the shard for history ([`WatchRegistry::asks`]) and
//! take its answers ([`WatchRegistry::history`]).
//!
//! # No gap, no duplicate, never a stall
//!
//! Every watcher knows `next_rev`, the first revision it has not been sent
//! (or skipped by its filter) yet. It is either *live* (the next revision
//! the shard publishes is `next_rev`) or *behind* (it reads `next_rev`
//! onward from the MVCC history first). Each connection may have at most
//! [`crate::limits::WATCH_PUSH_WINDOW`] pushed frames that its socket has
//! not taken yet, history asks included; revisions are pushed live only
//! while fewer than [`crate::limits::WATCH_LIVE_PUSHES_MAX`] are unwritten,
//! so a connection that cannot keep up gets many revisions per frame. A live watcher falls behind when
//! its connection has no room for a matching revision, or when a
//! publication skips revisions it has not seen (the shard drops
//! publications to an executor that is too far behind, and says so later
//! with [`WatchRegistry::sync`]): nothing is queued for it; the revisions
//! are read back from history, which holds them until compaction.
//!
//! Publications and history answers arrive from the shard over one ordered
//! channel: an answer computed at the shard's revision `C` comes after the
//! publication of `C` and before that of `C + 1`. A watcher whose answer
//! reaches `C` therefore turns live exactly where the publications go on,
//! and gets each revision exactly once, in order. A watcher whose
//! `next_rev` was compacted away is canceled with the compaction revision,
//! as etcd cancels a watch that starts at a compacted revision.
//!
//! ```
//! use cairn_engine::mvcc::{Mvcc, MvccConfig, PutRequest};
//! use cairn_engine::watch::{WatchRegistry, WatchSpec};
//!
//! let mut mvcc = Mvcc::new(MvccConfig::default());
//! let mut reg: WatchRegistry<u32> = WatchRegistry::new();
//! let spec = WatchSpec { key: b"a".to_vec(), ..WatchSpec::default() };
//! let id = reg.create(1, 7, spec, 0, mvcc.current_revision(), 0).unwrap();
//! let put = mvcc.put(&PutRequest { key: b"a", value: b"1", ..Default::default() }).unwrap();
//! let out = reg.apply(mvcc.current_revision(), &put.events);
//! assert_eq!(out.len(), 1);
//! assert_eq!((out[0].conn, out[0].stream_id, out[0].watch_id), (1, 7, id));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::limits;
use crate::mvcc::{Error as MvccError, Event, EventKind, Mvcc};

/// What a watch asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSpec {
    pub key: Vec<u8>,
    /// etcd's range forms: empty = one key, `"\0"` = every key ≥ `key`.
    pub range_end: Vec<u8>,
    pub no_put: bool,
    pub no_delete: bool,
    pub prev_kv: bool,
    pub progress_notify: bool,
}

/// Whether `key` lies in etcd's range `[start, end)` (empty `end`: just
/// `start`; `"\0"`: every key from `start` on).
pub fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    if end.is_empty() {
        key == start
    } else if end == b"\0" {
        key >= start
    } else {
        key >= start && key < end
    }
}

impl WatchSpec {
    fn covers(&self, key: &[u8]) -> bool {
        in_range(key, &self.key, &self.range_end)
    }

    fn wants(&self, e: &Event) -> bool {
        let filtered = match e.kind {
            EventKind::Put => self.no_put,
            EventKind::Delete => self.no_delete,
        };
        !filtered && self.covers(&e.kv.key)
    }
}

/// Why a watch could not be created; texts as etcd's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error("mvcc: duplicate watch ID provided on the WatchStream")]
    DuplicateId,
    #[error("etcdserver: too many watches on this connection")]
    TooMany,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next published revision is `next_rev`.
    Live,
    /// Reads `next_rev` onward from history first; `asked` is the token of
    /// the history request in flight, if one is.
    Behind { asked: Option<u64> },
}

#[derive(Debug, Clone)]
struct Watcher {
    /// The id of the create request: every frame of the watch carries it.
    stream_id: u64,
    spec: WatchSpec,
    /// Revisions below this are never sent (a start revision in the future).
    min_rev: i64,
    /// The first revision not sent (or filtered out) yet.
    next_rev: i64,
    state: State,
}

#[derive(Debug, Default)]
struct ConnWatches {
    watchers: BTreeMap<i64, Watcher>,
    next_id: i64,
    /// Pushed frames the socket has not taken yet, plus history asks in
    /// flight (each may become one).
    pushes: usize,
}

impl ConnWatches {
    /// Room to push a revision live, or to start catching watches up.
    fn has_room(&self) -> bool {
        self.pushes < limits::WATCH_LIVE_PUSHES_MAX
    }
}

/// Events of one revision for one watch, ready to encode.
#[derive(Debug)]
pub struct Delivery<'e, C> {
    pub conn: C,
    pub stream_id: u64,
    pub watch_id: i64,
    pub prev_kv: bool,
    pub events: Vec<&'e Event>,
}

/// A request for history on behalf of one behind watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask<C> {
    pub conn: C,
    pub watch_id: i64,
    /// Ties the answer to this request (a watch id can be reused).
    pub token: u64,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// The first revision wanted.
    pub from_rev: i64,
}

/// The shard's answer to an [`Ask`].
#[derive(Debug)]
pub enum Answer {
    /// Events of whole revisions from `from_rev` on, read when the shard's
    /// revision was `current_rev`; `next_revision` is one past the last
    /// revision covered.
    Events {
        events: Vec<Event>,
        next_revision: i64,
        current_rev: i64,
    },
    /// The revisions wanted were compacted.
    Compacted { compact_revision: i64 },
}

/// What a history answer gives a watch to send.
#[derive(Debug)]
pub enum CatchUp<C> {
    /// Events of one or more whole revisions, in order.
    Events {
        conn: C,
        stream_id: u64,
        watch_id: i64,
        prev_kv: bool,
        events: Vec<Event>,
    },
    /// The history the watch needs was compacted: it is removed; tell the
    /// client with `compact_revision`.
    Compacted {
        conn: C,
        stream_id: u64,
        watch_id: i64,
        compact_revision: i64,
    },
}

/// Answer an [`Ask`] from `mvcc` (on the shard): at most about
/// `max_events` events, in whole revisions.
pub fn read_history(
    mvcc: &Mvcc,
    key: &[u8],
    range_end: &[u8],
    from_rev: i64,
    max_events: usize,
) -> Answer {
    let current_rev = mvcc.current_revision();
    if from_rev > current_rev {
        return Answer::Events {
            events: Vec::new(),
            next_revision: from_rev,
            current_rev,
        };
    }
    match mvcc.events(from_rev, key, range_end, max_events) {
        Ok(batch) => Answer::Events {
            events: batch.events,
            next_revision: batch.next_revision,
            current_rev,
        },
        Err(MvccError::Compacted) => Answer::Compacted {
            compact_revision: mvcc.compact_revision(),
        },
        Err(e) => panic!("history replay failed unexpectedly: {e}"),
    }
}

/// Every watch of one executor's connections.
#[derive(Debug)]
pub struct WatchRegistry<C> {
    conns: HashMap<C, ConnWatches>,
    next_token: u64,
    /// A publication showed some live watch a gap since the last
    /// [`Self::take_gaps`].
    gaps: bool,
}

impl<C: Copy + Eq + Hash + Ord> Default for WatchRegistry<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Copy + Eq + Hash + Ord> WatchRegistry<C> {
    pub fn new() -> Self {
        WatchRegistry {
            conns: HashMap::new(),
            next_token: 1,
            gaps: false,
        }
    }

    /// Number of watches on every connection.
    pub fn len(&self) -> usize {
        self.conns.values().map(|c| c.watchers.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.values().all(|c| c.watchers.is_empty())
    }

    /// Adds a watch; `watch_id` 0 lets the registry pick one (unique on the
    /// connection). `start_rev` 0 means after `current_rev`. A watch starting
    /// at or before `current_rev` is behind: send its [`Self::asks`] next.
    pub fn create(
        &mut self,
        conn: C,
        stream_id: u64,
        spec: WatchSpec,
        watch_id: i64,
        current_rev: i64,
        start_rev: i64,
    ) -> Result<i64, WatchError> {
        let cw = self.conns.entry(conn).or_default();
        if cw.watchers.len() >= limits::WATCHES_PER_CONN_MAX {
            return Err(WatchError::TooMany);
        }
        let id = if watch_id != 0 {
            if cw.watchers.contains_key(&watch_id) {
                return Err(WatchError::DuplicateId);
            }
            watch_id
        } else {
            while cw.next_id == 0 || cw.watchers.contains_key(&cw.next_id) {
                cw.next_id = cw.next_id.wrapping_add(1).max(0);
            }
            cw.next_id
        };
        let (state, min_rev, next_rev) = if start_rev <= 0 || start_rev > current_rev {
            (State::Live, start_rev, current_rev + 1)
        } else {
            (State::Behind { asked: None }, 0, start_rev)
        };
        cw.watchers.insert(
            id,
            Watcher {
                stream_id,
                spec,
                min_rev,
                next_rev,
                state,
            },
        );
        Ok(id)
    }

    /// Removes a watch; false if it does not exist.
    pub fn cancel(&mut self, conn: C, watch_id: i64) -> bool {
        self.conns
            .get_mut(&conn)
            .is_some_and(|cw| cw.watchers.remove(&watch_id).is_some())
    }

    /// Forgets a closed connection and its watches.
    pub fn close(&mut self, conn: C) {
        self.conns.remove(&conn);
    }

    /// The connection's socket took `n` pushed frames.
    pub fn written(&mut self, conn: C, n: usize) {
        if let Some(cw) = self.conns.get_mut(&conn) {
            assert!(cw.pushes >= n, "more pushes written than were pushed");
            cw.pushes -= n;
        }
    }

    /// The revision every watch on `conn` has been sent everything up to.
    pub fn progress(&self, conn: C, current_rev: i64) -> i64 {
        self.conns
            .get(&conn)
            .into_iter()
            .flat_map(|cw| cw.watchers.values())
            .map(|w| w.next_rev - 1)
            .min()
            .unwrap_or(current_rev)
            .min(current_rev)
    }

    /// Live watches with `progress_notify` that have been sent everything
    /// up to `current_rev` and whose connection has room, as (connection,
    /// stream id, watch id); each counts as one push.
    pub fn progress_notices(&mut self, current_rev: i64) -> Vec<(C, u64, i64)> {
        let mut out = Vec::new();
        for (conn, cw) in self.conns.iter_mut() {
            for (id, w) in &cw.watchers {
                if w.spec.progress_notify
                    && w.state == State::Live
                    && w.next_rev > current_rev
                    && cw.pushes < limits::WATCH_PUSH_WINDOW
                {
                    cw.pushes += 1;
                    out.push((*conn, w.stream_id, *id));
                }
            }
        }
        out
    }

    /// The shard is at `rev` and every publication up to it has arrived (or
    /// was dropped): live watches that have not seen `rev` read the rest
    /// from history.
    pub fn sync(&mut self, rev: i64) {
        for cw in self.conns.values_mut() {
            for w in cw.watchers.values_mut() {
                if w.state == State::Live && w.next_rev <= rev {
                    w.state = State::Behind { asked: None };
                }
            }
        }
    }

    /// Every watch continues from history at `next_rev` at the latest (the
    /// index was replaced by a snapshot: its history is read from there).
    pub fn reset(&mut self, next_rev: i64) {
        for cw in self.conns.values_mut() {
            for w in cw.watchers.values_mut() {
                match w.state {
                    State::Live => {
                        w.state = State::Behind { asked: None };
                        w.next_rev = w.next_rev.min(next_rev);
                    }
                    State::Behind { asked: None } => w.next_rev = w.next_rev.min(next_rev),
                    // Its answer reads the new index from `next_rev` on.
                    State::Behind { asked: Some(_) } => {}
                }
            }
        }
    }

    /// The deliveries for revision `rev`, whose events are `events`.
    /// Watches whose connection is out of room, or that missed a revision
    /// before `rev`, fall behind instead.
    pub fn apply<'e>(&mut self, rev: i64, events: &'e [Event]) -> Vec<Delivery<'e, C>> {
        let mut out = Vec::new();
        if events.is_empty() {
            return out;
        }
        for (conn, cw) in self.conns.iter_mut() {
            for (id, w) in cw.watchers.iter_mut() {
                if w.state != State::Live || w.next_rev > rev {
                    continue;
                }
                if w.next_rev < rev {
                    // Publications were dropped: the gap comes from history.
                    w.state = State::Behind { asked: None };
                    self.gaps = true;
                    continue;
                }
                if rev < w.min_rev {
                    w.next_rev = rev + 1;
                    continue;
                }
                let picked: Vec<&Event> = events.iter().filter(|e| w.spec.wants(e)).collect();
                if picked.is_empty() {
                    w.next_rev = rev + 1;
                    continue;
                }
                if cw.pushes >= limits::WATCH_LIVE_PUSHES_MAX {
                    // Its revisions go out together once the socket drains.
                    w.state = State::Behind { asked: None };
                    continue;
                }
                cw.pushes += 1;
                w.next_rev = rev + 1;
                out.push(Delivery {
                    conn: *conn,
                    stream_id: w.stream_id,
                    watch_id: *id,
                    prev_kv: w.spec.prev_kv,
                    events: picked,
                });
            }
        }
        out
    }

    /// History requests for the behind watches of `conn`, once its socket
    /// has drained to [`limits::WATCH_LIVE_PUSHES_MAX`] and then as far as
    /// the window allows; each takes one push of room until it is answered.
    pub fn asks(&mut self, conn: C) -> Vec<Ask<C>> {
        let mut out = Vec::new();
        let Some(cw) = self.conns.get_mut(&conn) else {
            return out;
        };
        if !cw.has_room() {
            return out;
        }
        for (id, w) in cw.watchers.iter_mut() {
            if cw.pushes >= limits::WATCH_PUSH_WINDOW {
                break;
            }
            if w.state != (State::Behind { asked: None }) {
                continue;
            }
            let token = self.next_token;
            self.next_token += 1;
            cw.pushes += 1;
            w.state = State::Behind { asked: Some(token) };
            out.push(Ask {
                conn,
                watch_id: *id,
                token,
                key: w.spec.key.clone(),
                range_end: w.spec.range_end.clone(),
                from_rev: w.next_rev,
            });
        }
        out
    }

    /// Take the shard's answer to an ask. Returns what to send, if
    /// anything; run [`Self::asks`] for the connection afterwards.
    pub fn history(
        &mut self,
        conn: C,
        watch_id: i64,
        token: u64,
        answer: Answer,
    ) -> Option<CatchUp<C>> {
        let cw = self.conns.get_mut(&conn)?;
        let current = match cw.watchers.get(&watch_id) {
            Some(w) if w.state == (State::Behind { asked: Some(token) }) => w,
            // Canceled (or re-created under the same id) meanwhile: the
            // room the ask took is free again.
            _ => {
                cw.pushes -= 1;
                return None;
            }
        };
        let stream_id = current.stream_id;
        match answer {
            Answer::Compacted { compact_revision } => {
                cw.watchers.remove(&watch_id);
                Some(CatchUp::Compacted {
                    conn,
                    stream_id,
                    watch_id,
                    compact_revision,
                })
            }
            Answer::Events {
                events,
                next_revision,
                current_rev,
            } => {
                let w = cw.watchers.get_mut(&watch_id)?;
                assert!(
                    next_revision > w.next_rev || next_revision > current_rev,
                    "history answers make progress"
                );
                w.next_rev = next_revision;
                w.state = if next_revision > current_rev {
                    State::Live
                } else {
                    State::Behind { asked: None }
                };
                let events: Vec<Event> = events.into_iter().filter(|e| w.spec.wants(e)).collect();
                if events.is_empty() {
                    cw.pushes -= 1;
                    return None;
                }
                Some(CatchUp::Events {
                    conn,
                    stream_id,
                    watch_id,
                    prev_kv: w.spec.prev_kv,
                    events,
                })
            }
        }
    }

    /// Whether [`Self::apply`] found a watch that missed revisions since the
    /// last call. Watches that fell behind for lack of room need no ask
    /// until their connection drains ([`Self::written`]); these may have
    /// room now.
    pub fn take_gaps(&mut self) -> bool {
        std::mem::take(&mut self.gaps)
    }

    /// Connections that have behind watches not yet asked for and room.
    pub fn conns_to_catch_up(&self) -> Vec<C> {
        let mut v: Vec<C> = self
            .conns
            .iter()
            .filter(|(_, cw)| {
                cw.has_room()
                    && cw
                        .watchers
                        .values()
                        .any(|w| w.state == State::Behind { asked: None })
            })
            .map(|(c, _)| *c)
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::{DeleteRangeRequest, MvccConfig, PutRequest};

    fn put(m: &mut Mvcc, k: &[u8]) -> Vec<Event> {
        m.put(&PutRequest {
            key: k,
            value: b"v",
            ..Default::default()
        })
        .unwrap()
        .events
    }

    fn prefix(p: &[u8]) -> WatchSpec {
        let mut end = p.to_vec();
        *end.last_mut().unwrap() += 1;
        WatchSpec {
            key: p.to_vec(),
            range_end: end,
            ..WatchSpec::default()
        }
    }

    /// Collects every revision a watch gets, through both paths.
    fn revisions(out: &[Delivery<'_, u32>]) -> Vec<i64> {
        out.iter().map(|d| d.events[0].kv.mod_revision).collect()
    }

    /// Answer every ask of `conn` the way the shard does, until none is
    /// left; returns the revisions of the events sent.
    fn catch_up(
        reg: &mut WatchRegistry<u32>,
        m: &Mvcc,
        conn: u32,
        max: usize,
    ) -> Vec<CatchUp<u32>> {
        let mut out = Vec::new();
        loop {
            let asks = reg.asks(conn);
            if asks.is_empty() {
                return out;
            }
            for a in asks {
                let answer = read_history(m, &a.key, &a.range_end, a.from_rev, max);
                out.extend(reg.history(a.conn, a.watch_id, a.token, answer));
            }
        }
    }

    fn event_revs(steps: &[CatchUp<u32>]) -> Vec<i64> {
        steps
            .iter()
            .flat_map(|s| match s {
                CatchUp::Events { events, .. } => {
                    events.iter().map(|e| e.kv.mod_revision).collect()
                }
                CatchUp::Compacted { .. } => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_full_window_falls_back_to_history_without_gap_or_duplicate() {
        let mut m = Mvcc::new(MvccConfig::default());
        let mut reg: WatchRegistry<u32> = WatchRegistry::new();
        reg.create(1, 9, prefix(b"k"), 0, m.current_revision(), 0)
            .unwrap();
        let mut got = Vec::new();
        let total = limits::WATCH_LIVE_PUSHES_MAX + 50;
        for i in 0..total {
            let ev = put(&mut m, format!("k{i}").as_bytes());
            got.extend(revisions(&reg.apply(m.current_revision(), &ev)));
        }
        assert_eq!(
            got.len(),
            limits::WATCH_LIVE_PUSHES_MAX,
            "live pushes are bounded"
        );
        assert!(reg.asks(1).is_empty(), "no room, no ask");
        reg.written(1, 20);
        assert_eq!(reg.conns_to_catch_up(), vec![1]);
        let steps = catch_up(&mut reg, &m, 1, 10);
        assert!(steps.len() >= 5, "50 revisions in asks of about 10");
        let caught = event_revs(&steps);
        assert_eq!(caught.len(), 50);
        got.extend(caught);
        let want: Vec<i64> = (2..2 + total as i64).collect();
        assert_eq!(got, want, "every revision once, in order");
        // Live again: the next write is pushed directly.
        let ev = put(&mut m, b"k-last");
        assert_eq!(reg.apply(m.current_revision(), &ev).len(), 1);
    }

    #[test]
    fn dropped_publications_are_read_from_history() {
        let mut m = Mvcc::new(MvccConfig::default());
        let mut reg: WatchRegistry<u32> = WatchRegistry::new();
        reg.create(1, 9, prefix(b"k"), 0, m.current_revision(), 0)
            .unwrap();
        let mut got = Vec::new();
        for i in 0..10 {
            let ev = put(&mut m, format!("k{i}").as_bytes());
            // Revisions 5..=7 never reach the executor.
            if !(5..=7).contains(&m.current_revision()) {
                got.extend(revisions(&reg.apply(m.current_revision(), &ev)));
            }
        }
        // The publication of 8 showed the gap; nothing after it was pushed
        // live until history filled the gap.
        got.extend(event_revs(&catch_up(&mut reg, &m, 1, 100)));
        let ev = put(&mut m, b"k10");
        got.extend(revisions(&reg.apply(m.current_revision(), &ev)));
        assert_eq!(got, (2..=12).collect::<Vec<i64>>());

        // Dropped at the end, with nothing published after: a sync says so.
        for i in 0..3 {
            put(&mut m, format!("j{i}k").as_bytes());
            put(&mut m, format!("k{i}").as_bytes());
        }
        reg.sync(m.current_revision());
        let late = event_revs(&catch_up(&mut reg, &m, 1, 100));
        assert_eq!(late, vec![14, 16, 18]);
    }

    #[test]
    fn an_answer_for_a_canceled_or_recreated_watch_is_ignored_and_frees_its_room() {
        let mut m = Mvcc::new(MvccConfig::default());
        for i in 0..5 {
            put(&mut m, format!("k{i}").as_bytes());
        }
        let mut reg: WatchRegistry<u32> = WatchRegistry::new();
        let rev = m.current_revision();
        reg.create(1, 3, prefix(b"k"), 7, rev, 2).unwrap();
        let asks = reg.asks(1);
        assert_eq!(asks.len(), 1);
        assert!(reg.cancel(1, 7));
        reg.create(1, 4, prefix(b"k"), 7, rev, 4).unwrap();
        let stale = read_history(&m, b"k", b"l", asks[0].from_rev, 100);
        assert!(reg.history(1, 7, asks[0].token, stale).is_none());
        let revs = event_revs(&catch_up(&mut reg, &m, 1, 100));
        assert_eq!(revs, vec![4, 5, 6], "the new watch from its own start");
        // Every ask's room came back: a full window of live pushes fits.
        reg.written(1, 1);
        for i in 0..limits::WATCH_LIVE_PUSHES_MAX {
            let ev = put(&mut m, format!("k{i}").as_bytes());
            assert_eq!(reg.apply(m.current_revision(), &ev).len(), 1, "push {i}");
        }
    }

    #[test]
    fn a_snapshot_reset_reads_from_the_new_history() {
        let mut m = Mvcc::new(MvccConfig::default());
        let mut reg: WatchRegistry<u32> = WatchRegistry::new();
        reg.create(1, 3, prefix(b"k"), 0, m.current_revision(), 0)
            .unwrap();
        let ev = put(&mut m, b"k1");
        assert_eq!(revisions(&reg.apply(m.current_revision(), &ev)), vec![2]);
        // A snapshot brought revisions 3 and 4 without publications.
        put(&mut m, b"k2");
        put(&mut m, b"k3");
        reg.reset(3);
        assert_eq!(event_revs(&catch_up(&mut reg, &m, 1, 100)), vec![3, 4]);
        assert_eq!(reg.progress(1, m.current_revision()), 4);
    }

    #[test]
    fn compacted_history_cancels_a_behind_watch() {
        let mut m = Mvcc::new(MvccConfig::default());
        for i in 0..5 {
            put(&mut m, format!("k{i}").as_bytes());
        }
        m.compact(4).unwrap();
        let mut reg: WatchRegistry<u32> = WatchRegistry::new();
        reg.create(1, 3, prefix(b"k"), 0, m.current_revision(), 2)
            .unwrap();
        let steps = catch_up(&mut reg, &m, 1, 100);
        assert!(matches!(
            steps[..],
            [CatchUp::Compacted {
                compact_revision: 4,
                ..
            }]
        ));
        assert!(reg.is_empty());
    }

    #[test]
    fn filters_ranges_and_ids() {
        let mut m = Mvcc::new(MvccConfig::default());
        let mut reg: WatchRegistry<u32> = WatchRegistry::new();
        let rev = m.current_revision();
        let mut no_put = prefix(b"a");
        no_put.no_put = true;
        let a = reg.create(1, 1, no_put, 0, rev, 0).unwrap();
        assert_eq!(
            reg.create(1, 2, prefix(b"b"), a, rev, 0),
            Err(WatchError::DuplicateId)
        );
        let b = reg.create(1, 2, prefix(b"b"), 0, rev, 0).unwrap();
        assert_ne!(a, b);
        let ev = put(&mut m, b"a1");
        assert!(
            reg.apply(m.current_revision(), &ev).is_empty(),
            "puts filtered"
        );
        let ev = m
            .delete_range(&DeleteRangeRequest {
                key: b"a1",
                ..Default::default()
            })
            .unwrap()
            .events;
        let out = reg.apply(m.current_revision(), &ev);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].watch_id, a);
        assert!(reg.cancel(1, a));
        assert!(!reg.cancel(1, a));
        reg.close(1);
        assert!(reg.is_empty());
    }
}
