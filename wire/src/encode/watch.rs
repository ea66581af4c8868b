//! Watch requests and the pushed WatchResponse.

use super::{build_kv, opt_bytes, opt_str, Encoder};
use crate::rpc;
use crate::types::{EventRef, Header};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchCreateParams<'a> {
    pub key: &'a [u8],
    pub range_end: &'a [u8],
    /// 0 means from now.
    pub start_revision: i64,
    pub progress_notify: bool,
    pub filters: &'a [rpc::FilterType],
    pub prev_kv: bool,
    /// 0 means the server assigns one.
    pub watch_id: i64,
    pub fragment: bool,
}

/// One WatchResponse: a batch of events of one watch, or a created /
/// canceled / progress notice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchResult<'a> {
    pub watch_id: i64,
    pub created: bool,
    pub canceled: bool,
    pub compact_revision: i64,
    pub cancel_reason: &'a str,
    pub fragment: bool,
    pub events: &'a [EventRef<'a>],
}

/// The events of one WatchResponse, encoded once for every watch that is
/// sent exactly these events under the same header: the copies differ only
/// in the response id and the watch id, which [`Self::for_watch`] writes
/// into a copy of the frame in place. Fan-out to many watches of one range
/// then costs a copy per watch instead of an encoding.
#[derive(Debug, Clone)]
pub struct SharedWatchFrame {
    frame: Vec<u8>,
    /// Where the little-endian `Response.id` and `WatchResponse.watch_id`
    /// are in `frame`.
    id_at: usize,
    watch_id_at: usize,
}

impl SharedWatchFrame {
    /// The frame for one watch: `id` is its create request's id.
    pub fn for_watch(&self, id: u64, watch_id: i64) -> Vec<u8> {
        let mut frame = self.frame.clone();
        frame[self.id_at..self.id_at + 8].copy_from_slice(&id.to_le_bytes());
        frame[self.watch_id_at..self.watch_id_at + 8].copy_from_slice(&watch_id.to_le_bytes());
        frame
    }
}

/// Written as both ids while a shared frame is built: never a field's
/// default (0), so the builder stores both, and found again at the places
/// the frame's own vtables give.
const SHARED_ID: u64 = u64::MAX;
const SHARED_WATCH_ID: i64 = i64::MAX;

impl Encoder {
    /// A WatchResponse carrying `events`, to be sent to many watches (see
    /// [`SharedWatchFrame`]).
    pub fn shared_watch_events(
        &mut self,
        header: &Header,
        events: &[EventRef<'_>],
    ) -> SharedWatchFrame {
        let frame = self
            .watch_response(
                SHARED_ID,
                header,
                &WatchResult {
                    watch_id: SHARED_WATCH_ID,
                    events,
                    ..WatchResult::default()
                },
            )
            .to_vec();
        // SAFETY: the frame was just built by this encoder as a
        // size-prefixed Response.
        let response =
            unsafe { flatbuffers::size_prefixed_root_unchecked::<rpc::Response<'_>>(&frame) };
        let id_at = field_at(&response._tab, rpc::Response::VT_ID);
        let body = response
            .body_as_watch_response()
            .expect("a watch response's body is a WatchResponse");
        let watch_id_at = field_at(&body._tab, rpc::WatchResponse::VT_WATCH_ID);
        assert_eq!(frame[id_at..id_at + 8], SHARED_ID.to_le_bytes());
        assert_eq!(
            frame[watch_id_at..watch_id_at + 8],
            SHARED_WATCH_ID.to_le_bytes()
        );
        SharedWatchFrame {
            frame,
            id_at,
            watch_id_at,
        }
    }

    pub fn watch_create_request(&mut self, id: u64, p: &WatchCreateParams<'_>) -> &[u8] {
        let fbb = self.begin();
        let key = opt_bytes(fbb, p.key);
        let range_end = opt_bytes(fbb, p.range_end);
        let filters = if p.filters.is_empty() {
            None
        } else {
            Some(fbb.create_vector(p.filters))
        };
        let body = rpc::WatchCreateRequest::create(
            fbb,
            &rpc::WatchCreateRequestArgs {
                key,
                range_end,
                start_revision: p.start_revision,
                progress_notify: p.progress_notify,
                filters,
                prev_kv: p.prev_kv,
                watch_id: p.watch_id,
                fragment: p.fragment,
            },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::WatchCreateRequest, body)
    }

    pub fn watch_cancel_request(&mut self, id: u64, watch_id: i64) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::WatchCancelRequest::create(fbb, &rpc::WatchCancelRequestArgs { watch_id })
            .as_union_value();
        self.finish_request(id, rpc::RequestBody::WatchCancelRequest, body)
    }

    pub fn watch_progress_request(&mut self, id: u64) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::WatchProgressRequest::create(fbb, &rpc::WatchProgressRequestArgs {})
            .as_union_value();
        self.finish_request(id, rpc::RequestBody::WatchProgressRequest, body)
    }

    /// A WatchResponse. For events and server-side cancels, `id` is the id
    /// of the WatchCreateRequest that created the watch.
    pub fn watch_response(&mut self, id: u64, header: &Header, r: &WatchResult<'_>) -> &[u8] {
        let fbb = self.begin();
        let cancel_reason = opt_str(fbb, r.cancel_reason);
        let events = if r.events.is_empty() {
            None
        } else {
            let offsets: Vec<_> = r
                .events
                .iter()
                .map(|ev| {
                    let kv = build_kv(fbb, &ev.kv);
                    let prev_kv = ev.prev_kv.as_ref().map(|p| build_kv(fbb, p));
                    rpc::Event::create(
                        fbb,
                        &rpc::EventArgs {
                            type_: ev.kind,
                            kv: Some(kv),
                            prev_kv,
                        },
                    )
                })
                .collect();
            Some(fbb.create_vector(&offsets))
        };
        let body = rpc::WatchResponse::create(
            fbb,
            &rpc::WatchResponseArgs {
                watch_id: r.watch_id,
                created: r.created,
                canceled: r.canceled,
                compact_revision: r.compact_revision,
                cancel_reason,
                fragment: r.fragment,
                events,
            },
        )
        .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::WatchResponse, body)
    }
}

/// Where in its buffer a stored scalar field of `table` is.
fn field_at(table: &flatbuffers::Table<'_>, field: flatbuffers::VOffsetT) -> usize {
    let offset = table.vtable().get(field);
    assert!(offset != 0, "the field is stored");
    table.loc() + offset as usize
}
