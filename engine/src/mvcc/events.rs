//! History replay for watchers that start in the past.

use std::collections::BinaryHeap;

use super::span::Span;
use super::types::{Event, EventBatch, EventKind, KeyValue};
use super::{Error, Mvcc};

impl Mvcc {
    /// The changes to keys in `[key, range_end)` (etcd's range forms) from
    /// revision `from_rev` on, in (main, sub) order, at most `max_events`
    /// of them — except that a revision is never split, so one revision with
    /// more changes than that comes whole. Every event carries `prev_kv`
    /// when the key existed before the change. Continue from
    /// [`EventBatch::next_revision`].
    ///
    /// Fails with [`Error::Compacted`] when `from_rev` is at or below the
    /// compaction point: the compaction dropped tombstones at that revision,
    /// so its changes can no longer be listed completely. (etcd serves a
    /// watch from exactly the compaction revision and may then miss deletes
    /// of that revision; cairn refuses instead of leaving a gap.)
    pub fn events(
        &self,
        from_rev: i64,
        key: &[u8],
        range_end: &[u8],
        max_events: usize,
    ) -> Result<EventBatch, Error> {
        if from_rev <= self.compact_rev {
            return Err(Error::Compacted);
        }
        let max_events = max_events.max(1);
        let span = Span::new(key, range_end);

        // Pass 1: the `max_events` smallest revisions ≥ from_rev, in a
        // bounded max-heap, to find where the batch ends.
        let mut smallest: BinaryHeap<(i64, u32)> = BinaryHeap::with_capacity(max_events + 1);
        let mut dropped = false;
        self.visit(span, |_, history| {
            for s in history
                .versions()
                .iter()
                .rev()
                .take_while(|s| s.main >= from_rev)
            {
                smallest.push(s.rev());
                if smallest.len() > max_events {
                    smallest.pop();
                    dropped = true;
                }
            }
            true
        });
        let (last_main, next_revision) = match smallest.peek() {
            None => {
                return Ok(EventBatch {
                    events: Vec::new(),
                    next_revision: from_rev.max(self.current_rev + 1),
                })
            }
            Some(_) if !dropped => (self.current_rev, self.current_rev + 1),
            Some(&(top, _)) => {
                let lowest = smallest.iter().map(|r| r.0).min().unwrap_or(top);
                if lowest < top {
                    // Stop before the revision that did not fit completely.
                    (top - 1, top)
                } else {
                    // One revision alone fills the batch: send all of it.
                    (top, top + 1)
                }
            }
        };

        // Pass 2: collect the events of revisions [from_rev, last_main].
        let mut found: Vec<((i64, u32), Event)> = Vec::new();
        self.visit(span, |key, history| {
            let versions = history.versions();
            let start = versions.partition_point(|s| s.main < from_rev);
            for i in start..versions.len() {
                let s = &versions[i];
                if s.main > last_main {
                    break;
                }
                let prev_kv = i
                    .checked_sub(1)
                    .map(|p| &versions[p])
                    .filter(|p| !p.tombstone)
                    .map(|p| p.to_kv(key, true));
                let event = if s.tombstone {
                    Event {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key: key.to_vec(),
                            mod_revision: s.main,
                            ..KeyValue::default()
                        },
                        prev_kv,
                    }
                } else {
                    Event {
                        kind: EventKind::Put,
                        kv: s.to_kv(key, true),
                        prev_kv,
                    }
                };
                found.push((s.rev(), event));
            }
            true
        });
        found.sort_unstable_by_key(|(rev, _)| *rev);
        Ok(EventBatch {
            events: found.into_iter().map(|(_, e)| e).collect(),
            next_revision,
        })
    }
}
