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

impl Encoder {
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
