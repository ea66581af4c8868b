//! The fake server's watches: events pushed to the connection that created
//! the watch, under the create request's id.

use cairn_wire::{rpc, Encoder, EventRef, WatchResult};
use tokio::sync::mpsc::error::TrySendError;

use super::{header, in_range, kv_ref, Conn, Kv, State};

pub(crate) struct FakeWatcher {
    outbox: tokio::sync::mpsc::Sender<Vec<u8>>,
    stream_id: u64,
    watch_id: i64,
    key: Vec<u8>,
    end: Vec<u8>,
    prev_kv: bool,
}

pub(crate) fn create(
    s: &mut State,
    enc: &mut Encoder,
    conn: &Conn,
    id: u64,
    w: rpc::WatchCreateRequest<'_>,
) -> Vec<u8> {
    s.next_watch_id += 1;
    let watch_id = s.next_watch_id;
    let h = header(s, conn.member_id);
    let start = w.start_revision();
    if start != 0 && start <= s.compacted {
        let r = WatchResult {
            watch_id,
            created: true,
            canceled: true,
            compact_revision: s.compacted,
            ..Default::default()
        };
        return enc.watch_response(id, &h, &r).to_vec();
    }
    s.watchers.push(FakeWatcher {
        outbox: conn.outbox.clone(),
        stream_id: id,
        watch_id,
        key: cairn_wire::bytes(w.key()).to_vec(),
        end: cairn_wire::bytes(w.range_end()).to_vec(),
        prev_kv: w.prev_kv(),
    });
    let r = WatchResult {
        watch_id,
        created: true,
        ..Default::default()
    };
    // Queued now, under the state lock, so that no event of this watch can
    // overtake its "created" notice. Nothing is left for the caller to send.
    let _ = conn
        .outbox
        .try_send(enc.watch_response(id, &h, &r).to_vec());
    Vec::new()
}

pub(crate) fn cancel(
    s: &mut State,
    enc: &mut Encoder,
    conn: &Conn,
    id: u64,
    watch_id: i64,
) -> Vec<u8> {
    s.watchers
        .retain(|w| !(w.watch_id == watch_id && w.outbox.same_channel(&conn.outbox)));
    let h = header(s, conn.member_id);
    let r = WatchResult {
        watch_id,
        canceled: true,
        ..Default::default()
    };
    enc.watch_response(id, &h, &r).to_vec()
}

/// Tells every watcher of `key` that it now holds `now` (None: deleted).
pub(crate) fn notify(s: &mut State, key: &[u8], now: Option<&Kv>, before: Option<&Kv>) {
    if s.watchers.is_empty() {
        return;
    }
    let h = header(s, s.member_id);
    let deleted = Kv {
        create_revision: 0,
        mod_revision: s.revision,
        version: 0,
        value: Vec::new(),
        lease: 0,
    };
    let kv = now.unwrap_or(&deleted);
    let mut enc = Encoder::new();
    s.watchers.retain(|w| {
        if !in_range(key, &w.key, &w.end) {
            return true;
        }
        let event = EventRef {
            kind: if now.is_some() {
                rpc::EventType::Put
            } else {
                rpc::EventType::Delete
            },
            kv: kv_ref(key, kv),
            prev_kv: if w.prev_kv {
                before.map(|b| kv_ref(key, b))
            } else {
                None
            },
        };
        let events: [EventRef<'_>; 1] = [event];
        let r = WatchResult {
            watch_id: w.watch_id,
            events: &events,
            ..Default::default()
        };
        let frame = enc.watch_response(w.stream_id, &h, &r).to_vec();
        // A closed connection drops its watchers.
        !matches!(w.outbox.try_send(frame), Err(TrySendError::Closed(_)))
    });
}

pub(crate) fn cancel_all(s: &mut State, reason: &str) {
    let h = header(s, s.member_id);
    let mut enc = Encoder::new();
    for w in s.watchers.drain(..) {
        let r = WatchResult {
            watch_id: w.watch_id,
            canceled: true,
            cancel_reason: reason,
            ..Default::default()
        };
        let _ = w
            .outbox
            .try_send(enc.watch_response(w.stream_id, &h, &r).to_vec());
    }
}
