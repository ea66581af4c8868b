//! The watcher registry: which watches exist on which connection, what each
//! has been sent, and what it is sent next.
//!
//! A plain data structure, driven by the shard: no I/O, no clock. For every
//! applied revision the shard hands over its events ([`WatchRegistry::apply`])
//! and gets back the deliveries to encode and push; when a connection's
//! socket has taken pushed frames it reports them ([`WatchRegistry::written`])
//! and asks for catch-up work ([`WatchRegistry::catch_up`]).
//!
//! # No gap, no duplicate, never a stall
//!
//! Each connection may have at most [`crate::limits::WATCH_PUSH_WINDOW`]
//! pushed frames that its socket has not taken yet. A watcher is either
//! *live* (it has been sent, or skipped by filter, every revision up to
//! the current one) or *behind* (it still needs every revision from
//! `next_rev` on). A live watcher whose connection has no room left when a
//! matching revision applies becomes behind at that revision: the event is
//! not queued anywhere, it is read back later from the MVCC history, which
//! holds it until compaction. Catch-up reads history from `next_rev` in
//! whole revisions ([`Mvcc::events`] never splits one) and turns the watcher
//! live once it passes the current revision. Catch-up and live delivery run
//! on the same executor, between applies, so they cannot interleave: the
//! watcher gets each revision exactly once, in order. A watcher whose
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

impl WatchSpec {
    fn covers(&self, key: &[u8]) -> bool {
        if self.range_end.is_empty() {
            key == self.key.as_slice()
        } else if self.range_end.as_slice() == b"\0" {
            key >= self.key.as_slice()
        } else {
            key >= self.key.as_slice() && key < self.range_end.as_slice()
        }
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
    /// Sent (or filtered) every revision up to the current one.
    Live,
    /// Still needs every revision from `next_rev` on, from history.
    Behind { next_rev: i64 },
}

#[derive(Debug, Clone)]
struct Watcher {
    /// The id of the create request: every frame of the watch carries it.
    stream_id: u64,
    spec: WatchSpec,
    /// Revisions below this are never sent (a start revision in the future).
    min_rev: i64,
    state: State,
}

#[derive(Debug, Default)]
struct ConnWatches {
    watchers: BTreeMap<i64, Watcher>,
    next_id: i64,
    /// Pushed frames the socket has not taken yet.
    pushes: usize,
}

impl ConnWatches {
    fn has_room(&self) -> bool {
        self.pushes < limits::WATCH_PUSH_WINDOW
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

/// A catch-up step for one watch.
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

/// Every watch of the shard, by connection.
#[derive(Debug)]
pub struct WatchRegistry<C> {
    conns: HashMap<C, ConnWatches>,
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
        }
    }

    /// Number of watches on every connection.
    pub fn len(&self) -> usize {
        self.conns.values().map(|c| c.watchers.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.values().all(|c| c.watchers.is_empty())
    }

    /// Whether any watch wants `prev_kv` (the index may skip copying it
    /// into events otherwise).
    pub fn any_prev_kv(&self) -> bool {
        self.conns
            .values()
            .any(|c| c.watchers.values().any(|w| w.spec.prev_kv))
    }

    /// Adds a watch; `watch_id` 0 lets the registry pick one (unique on the
    /// connection). `start_rev` 0 means after `current_rev`. A watch starting
    /// at or before `current_rev` is behind: run [`Self::catch_up`] next.
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
        let (state, min_rev) = if start_rev <= 0 || start_rev > current_rev {
            (State::Live, start_rev)
        } else {
            (
                State::Behind {
                    next_rev: start_rev,
                },
                0,
            )
        };
        cw.watchers.insert(
            id,
            Watcher {
                stream_id,
                spec,
                min_rev,
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

    /// Counts one pushed frame that is not an event batch (a progress notice).
    pub fn push_other(&mut self, conn: C) -> bool {
        match self.conns.get_mut(&conn) {
            Some(cw) if cw.has_room() => {
                cw.pushes += 1;
                true
            }
            _ => false,
        }
    }

    /// The revision every watch on `conn` has been sent everything up to.
    pub fn progress(&self, conn: C, current_rev: i64) -> i64 {
        self.conns
            .get(&conn)
            .into_iter()
            .flat_map(|cw| cw.watchers.values())
            .map(|w| match w.state {
                State::Live => current_rev,
                State::Behind { next_rev } => next_rev - 1,
            })
            .min()
            .unwrap_or(current_rev)
            .min(current_rev)
    }

    /// Live watches with `progress_notify` whose connection has room, as
    /// (connection, stream id, watch id); each counts as one push.
    pub fn progress_notices(&mut self) -> Vec<(C, u64, i64)> {
        let mut out = Vec::new();
        for (conn, cw) in self.conns.iter_mut() {
            for (id, w) in &cw.watchers {
                if w.spec.progress_notify
                    && w.state == State::Live
                    && cw.pushes < limits::WATCH_PUSH_WINDOW
                {
                    cw.pushes += 1;
                    out.push((*conn, w.stream_id, *id));
                }
            }
        }
        out
    }

    /// Every watch falls behind at `next_rev` (the index was replaced by a
    /// snapshot: its history is read back from there).
    pub fn all_behind(&mut self, next_rev: i64) {
        for cw in self.conns.values_mut() {
            for w in cw.watchers.values_mut() {
                if w.state == State::Live {
                    w.state = State::Behind { next_rev };
                }
            }
        }
    }

    /// The deliveries for revision `rev`, whose events are `events`.
    /// Watches whose connection is out of room fall behind instead.
    pub fn apply<'e>(&mut self, rev: i64, events: &'e [Event]) -> Vec<Delivery<'e, C>> {
        let mut out = Vec::new();
        if events.is_empty() {
            return out;
        }
        for (conn, cw) in self.conns.iter_mut() {
            for (id, w) in cw.watchers.iter_mut() {
                if w.state != State::Live || rev < w.min_rev {
                    continue;
                }
                let picked: Vec<&Event> = events.iter().filter(|e| w.spec.wants(e)).collect();
                if picked.is_empty() {
                    continue;
                }
                if cw.pushes >= limits::WATCH_PUSH_WINDOW {
                    w.state = State::Behind { next_rev: rev };
                    continue;
                }
                cw.pushes += 1;
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

    /// Catch-up work for the behind watches of `conn`, as far as its room
    /// allows; each step reads at most about `max_events` from history.
    pub fn catch_up(&mut self, conn: C, mvcc: &Mvcc, max_events: usize) -> Vec<CatchUp<C>> {
        let mut out = Vec::new();
        let Some(cw) = self.conns.get_mut(&conn) else {
            return out;
        };
        let current = mvcc.current_revision();
        let mut compacted = Vec::new();
        for (id, w) in cw.watchers.iter_mut() {
            while let State::Behind { next_rev } = w.state {
                if cw.pushes >= limits::WATCH_PUSH_WINDOW {
                    break;
                }
                if next_rev > current {
                    w.state = State::Live;
                    break;
                }
                match mvcc.events(next_rev, &w.spec.key, &w.spec.range_end, max_events) {
                    Err(MvccError::Compacted) => {
                        cw.pushes += 1;
                        compacted.push(*id);
                        out.push(CatchUp::Compacted {
                            conn,
                            stream_id: w.stream_id,
                            watch_id: *id,
                            compact_revision: mvcc.compact_revision(),
                        });
                        break;
                    }
                    Err(e) => panic!("history replay failed unexpectedly: {e}"),
                    Ok(batch) => {
                        assert!(batch.next_revision > next_rev, "catch-up makes progress");
                        let events: Vec<Event> = batch
                            .events
                            .into_iter()
                            .filter(|e| w.spec.wants(e))
                            .collect();
                        w.state = if batch.next_revision > current {
                            State::Live
                        } else {
                            State::Behind {
                                next_rev: batch.next_revision,
                            }
                        };
                        if !events.is_empty() {
                            cw.pushes += 1;
                            out.push(CatchUp::Events {
                                conn,
                                stream_id: w.stream_id,
                                watch_id: *id,
                                prev_kv: w.spec.prev_kv,
                                events,
                            });
                        }
                    }
                }
            }
        }
        for id in compacted {
            cw.watchers.remove(&id);
        }
        out
    }

    /// Connections that have behind watches and room to catch up.
    pub fn conns_to_catch_up(&self) -> Vec<C> {
        let mut v: Vec<C> = self
            .conns
            .iter()
            .filter(|(_, cw)| {
                cw.has_room()
                    && cw
                        .watchers
                        .values()
                        .any(|w| matches!(w.state, State::Behind { .. }))
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

    #[test]
    fn a_full_window_falls_back_to_history_without_gap_or_duplicate() {
        let mut m = Mvcc::new(MvccConfig::default());
        let mut reg: WatchRegistry<u32> = WatchRegistry::new();
        let id = reg
            .create(1, 9, prefix(b"k"), 0, m.current_revision(), 0)
            .unwrap();
        let mut got = Vec::new();
        let total = limits::WATCH_PUSH_WINDOW + 50;
        for i in 0..total {
            let ev = put(&mut m, format!("k{i}").as_bytes());
            got.extend(revisions(&reg.apply(m.current_revision(), &ev)));
        }
        assert_eq!(
            got.len(),
            limits::WATCH_PUSH_WINDOW,
            "the window bounds pushes"
        );
        reg.written(1, 100);
        assert_eq!(reg.conns_to_catch_up(), vec![1]);
        let mut caught = 0;
        for step in reg.catch_up(1, &m, 10) {
            let CatchUp::Events {
                watch_id, events, ..
            } = step
            else {
                panic!("nothing was compacted")
            };
            assert_eq!(watch_id, id);
            caught += events.len();
            got.extend(events.iter().map(|e| e.kv.mod_revision));
        }
        assert_eq!(caught, 50);
        let want: Vec<i64> = (2..2 + total as i64).collect();
        assert_eq!(got, want, "every revision once, in order");
        // Live again: the next write is pushed directly.
        let ev = put(&mut m, b"k-last");
        assert_eq!(reg.apply(m.current_revision(), &ev).len(), 1);
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
        let steps = reg.catch_up(1, &m, 100);
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
