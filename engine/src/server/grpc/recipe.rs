//! The steps of etcd's concurrency recipes (`clientv3/concurrency`) as
//! native requests on a gRPC call's session: txns, ranges, deletes and
//! watches, issued exactly as a client would issue them, so the shard sees
//! nothing special. The Lock and Election services are sequences of these.
//!
//! A recipe may wait a long time (for a lock's holder to go). It waits
//! until a delete arrives on a watch, or until the client resets the call
//! ([`Cancel`]): then it stops its watch in order (so the connection's push
//! window gets every push back) and the service undoes what it queued, as
//! etcd's server does when the call's context ends.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Context, Poll};

use cairn_wire::etcdpb as pb;
use cairn_wire::{
    decode_response, rpc, CompareParams, DeleteRangeParams, EventRef, PutParams, RangeParams,
    RequestOpParams, ResponseBodyView, ResponseOpView, TxnParams, WatchCreateParams,
};
use futures_lite::FutureExt;
use glommio::channels::local_channel;

use super::codec::Status;
use super::convert::{header, kvs};
use super::services::{answer, unexpected};
use super::session::Caller;
use crate::limits;
use crate::server::http2::{SendResponse, SendStream};

/// The TTL of the lease a Lock or Campaign with lease 0 gets, as etcd's
/// server-side sessions do (`concurrency`'s default session TTL).
pub const RECIPE_LEASE_TTL_S: i64 = 60;

/// Something the client can reset: a unary call's response or a stream.
pub trait Resettable {
    fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

impl Resettable for SendResponse {
    fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        SendResponse::poll_reset(self, cx).map(|_| ())
    }
}

impl Resettable for SendStream {
    fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        SendStream::poll_reset(self, cx).map(|_| ())
    }
}

/// Resolves when the client gives up on the call.
pub struct Cancel<'a> {
    target: RefCell<&'a mut dyn Resettable>,
}

impl<'a> Cancel<'a> {
    pub fn new(target: &'a mut dyn Resettable) -> Cancel<'a> {
        Cancel {
            target: RefCell::new(target),
        }
    }

    pub async fn wait(&self) {
        std::future::poll_fn(|cx| self.target.borrow_mut().poll_reset(cx)).await;
    }
}

/// The status of a call its client gave up.
pub fn cancelled() -> Status {
    Status::new(rpc::ErrorCode::Cancelled, "context canceled")
}

/// `name/`: the prefix every contender's key is under.
pub fn prefix_of(name: &[u8]) -> Vec<u8> {
    let mut p = name.to_vec();
    p.push(b'/');
    p
}

/// A contender's key: the prefix and the lease in hex, as Go's `%x`
/// prints a lease id.
pub fn contender_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    let hex = if lease < 0 {
        format!("-{:x}", lease.unsigned_abs())
    } else {
        format!("{lease:x}")
    };
    key.extend_from_slice(hex.as_bytes());
    key
}

/// The end of the range of keys starting with `prefix` (etcd's
/// `GetPrefixRangeEnd`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(&last) = end.last() {
        if last < 0xff {
            if let Some(b) = end.last_mut() {
                *b = last + 1;
            }
            return end;
        }
        end.pop();
    }
    // All 0xff: every key after the prefix.
    vec![0]
}

/// The oldest (`first`) or newest contender under `prefix` created at or
/// before `max_create_revision` (0: any).
pub fn contender<'a>(
    prefix: &'a [u8],
    end: &'a [u8],
    first: bool,
    max_create_revision: i64,
) -> RangeParams<'a> {
    RangeParams {
        key: prefix,
        range_end: end,
        limit: 1,
        sort_order: if first {
            rpc::SortOrder::Ascend
        } else {
            rpc::SortOrder::Descend
        },
        sort_target: rpc::SortTarget::Create,
        max_create_revision,
        ..RangeParams::default()
    }
}

/// `create_revision(key) == revision`.
pub fn created_at(key: &[u8], revision: i64) -> CompareParams<'_> {
    CompareParams {
        result: rpc::CompareResult::Equal,
        target: rpc::CompareTarget::Create,
        key,
        create_revision: revision,
        ..CompareParams::default()
    }
}

pub fn put_with_lease<'a>(key: &'a [u8], value: &'a [u8], lease: i64) -> PutParams<'a> {
    PutParams {
        key,
        value,
        lease,
        ..PutParams::default()
    }
}

pub fn delete_key(key: &[u8]) -> DeleteRangeParams<'_> {
    DeleteRangeParams {
        key,
        ..DeleteRangeParams::default()
    }
}

/// A txn's outcome: its header, which branch ran, and what each range of
/// that branch read (empty for other operations).
pub struct TxnOutcome {
    pub header: pb::ResponseHeader,
    pub succeeded: bool,
    pub ranges: Vec<Vec<pb::KeyValue>>,
}

impl TxnOutcome {
    /// The first key the `i`th range read.
    pub fn first(&self, i: usize) -> Option<&pb::KeyValue> {
        self.ranges.get(i).and_then(|r| r.first())
    }
}

pub async fn txn(c: &Caller<'_>, params: &TxnParams<'_>) -> Result<TxnOutcome, Status> {
    let req = c.encode(|e, id| e.txn_request(id, params));
    answer(c, req, |h, body| {
        let ResponseBodyView::Txn(t) = body else {
            return Err(unexpected());
        };
        let mut ranges = Vec::new();
        for op in ResponseOpView::all(t.responses()) {
            match op.map_err(|e| Status::internal(e.to_string()))? {
                ResponseOpView::Range(r) => ranges.push(kvs(r.kvs())),
                _ => ranges.push(Vec::new()),
            }
        }
        Ok(TxnOutcome {
            header: header(h),
            succeeded: t.succeeded(),
            ranges,
        })
    })
    .await
}

pub async fn range(
    c: &Caller<'_>,
    params: &RangeParams<'_>,
) -> Result<(pb::ResponseHeader, Vec<pb::KeyValue>), Status> {
    let req = c.encode(|e, id| e.range_request(id, params));
    answer(c, req, |h, body| match body {
        ResponseBodyView::Range(r) => Ok((header(h), kvs(r.kvs()))),
        _ => Err(unexpected()),
    })
    .await
}

pub async fn delete(c: &Caller<'_>, key: &[u8]) -> Result<pb::ResponseHeader, Status> {
    let params = delete_key(key);
    let req = c.encode(|e, id| e.delete_range_request(id, &params));
    answer(c, req, |h, body| match body {
        ResponseBodyView::DeleteRange(_) => Ok(header(h)),
        _ => Err(unexpected()),
    })
    .await
}

/// The lease a recipe's key is attached to: the caller's, or a new one
/// for lease 0.
pub async fn lease_or_grant(c: &Caller<'_>, lease: i64) -> Result<i64, Status> {
    if lease != 0 {
        return Ok(lease);
    }
    let req = c.encode(|e, id| e.lease_grant_request(id, RECIPE_LEASE_TTL_S, 0));
    answer(c, req, |_, body| match body {
        ResponseBodyView::LeaseGrant(g) => Ok(g.id()),
        _ => Err(unexpected()),
    })
    .await
}

/// Waits until every key under `prefix` created at or before
/// `max_create_revision` is gone (the contenders queued ahead are done),
/// watching only the newest of them at a time, as etcd's `waitDeletes`
/// does, so that one release wakes one waiter. Returns the header of the
/// read that found none.
pub async fn wait_deletes(
    c: &Caller<'_>,
    cancel: &Cancel<'_>,
    prefix: &[u8],
    max_create_revision: i64,
) -> Result<pb::ResponseHeader, Status> {
    let end = prefix_end(prefix);
    loop {
        let (h, kvs) = range(c, &contender(prefix, &end, false, max_create_revision)).await?;
        let Some(kv) = kvs.first() else {
            return Ok(h);
        };
        // A watch canceled by compaction ends the wait too: the loop reads
        // the queue again.
        let deleted = |kind| kind == rpc::EventType::Delete;
        watch_until(c, cancel, &kv.key, &[], h.revision + 1, deleted).await?;
    }
}

/// The first event under a watch from `start_revision` that `stop`
/// accepts, with the header of the response that carried it (`None` if
/// the shard canceled the watch, e.g. its start revision was compacted).
pub async fn watch_until(
    c: &Caller<'_>,
    cancel: &Cancel<'_>,
    key: &[u8],
    range_end: &[u8],
    start_revision: i64,
    stop: impl Fn(rpc::EventType) -> bool,
) -> Result<Option<(pb::ResponseHeader, pb::KeyValue)>, Status> {
    let mut w = RecipeWatch::open(c, key, range_end, start_revision).await?;
    let found = loop {
        match w.next(cancel).await {
            Ok(Some((h, events))) => {
                if let Some((_, kv)) = events.into_iter().find(|(kind, _)| stop(*kind)) {
                    break Ok(Some((h, kv)));
                }
            }
            Ok(None) => break Ok(None),
            Err(status) => break Err(status),
        }
    };
    w.close().await;
    found
}

/// A watch a recipe runs on its call's session. [`close`](Self::close)
/// must end every use: it cancels the watch and reports the pushes still
/// queued, which the connection's push window needs back.
pub struct RecipeWatch<'c> {
    c: Caller<'c>,
    id: u64,
    watch_id: Option<i64>,
    rx: local_channel::LocalReceiver<super::session::Delivered>,
    ended: bool,
}

/// One watch response's events: kind and key-value.
pub type Events = Vec<(rpc::EventType, pb::KeyValue)>;

impl<'c> RecipeWatch<'c> {
    pub async fn open(
        c: &Caller<'c>,
        key: &[u8],
        range_end: &[u8],
        start_revision: i64,
    ) -> Result<RecipeWatch<'c>, Status> {
        let params = WatchCreateParams {
            key,
            range_end,
            start_revision,
            progress_notify: false,
            filters: &[],
            prev_kv: false,
            watch_id: 0,
            fragment: false,
        };
        // As a watch stream's queue: every push the connection's window
        // allows fits, so none is dropped.
        let (tx, rx) = local_channel::new_bounded(limits::CONN_OUTBOUND_WITH_PUSHES);
        let (id, f) = c.encode(|e, id| e.watch_create_request(id, &params));
        c.session.open_stream(id, f, Rc::new(tx)).await?;
        Ok(RecipeWatch {
            c: *c,
            id,
            watch_id: None,
            rx,
            ended: false,
        })
    }

    /// The next response with events: its header and events; `None` once
    /// the shard canceled the watch; `Err(cancelled)` if the client reset
    /// the call first.
    pub async fn next(
        &mut self,
        cancel: &Cancel<'_>,
    ) -> Result<Option<(pb::ResponseHeader, Events)>, Status> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let rx = &self.rx;
            let next = async { Some(rx.recv().await) }.or(async {
                cancel.wait().await;
                None
            });
            let Some(d) = next.await else {
                return Err(cancelled());
            };
            let Some(d) = d else {
                return Err(Status::new(
                    rpc::ErrorCode::Unavailable,
                    "etcdserver: server stopped",
                ));
            };
            let step = self.step(&d.frame);
            self.c.session.push_done(&d).await;
            match step? {
                Some(found) if !found.1.is_empty() => return Ok(Some(found)),
                _ => {}
            }
        }
    }

    fn step(&mut self, frame: &[u8]) -> Result<Option<(pb::ResponseHeader, Events)>, Status> {
        let view = decode_response(frame).map_err(|e| Status::internal(e.to_string()))?;
        let w = match view.body {
            Ok(ResponseBodyView::Watch(w)) => w,
            Ok(_) => return Err(unexpected()),
            Err(e) => {
                return Err(Status {
                    code: e.code.0,
                    message: e.message.to_owned(),
                })
            }
        };
        if w.created() {
            self.watch_id = Some(w.watch_id());
        }
        if w.canceled() {
            self.watch_id = None;
            self.ended = true;
            return Ok(None);
        }
        let events = w
            .events()
            .into_iter()
            .flatten()
            .map(|e| {
                let e: EventRef<'_> = e.into();
                (e.kind, super::stream::kv_ref(&e.kv))
            })
            .collect();
        Ok(Some((header(&view.header), events)))
    }

    pub async fn close(self) {
        // Stop taking the watch's frames; those already queued are drained
        // so that the shard's push window gets them back.
        self.c.session.forget(self.id);
        while let Some(d) = self.rx.recv().await {
            self.c.session.push_done(&d).await;
        }
        if let Some(w) = self.watch_id {
            let (id, f) = self.c.encode(|e, id| e.watch_cancel_request(id, w));
            // The answer says nothing the recipe needs.
            let _ = self.c.call(id, f).await;
        }
    }
}

/// A txn over `compare`, `success` and `failure` (helper for the services'
/// one-line txns).
pub fn txn_params<'a>(
    compare: &'a [CompareParams<'a>],
    success: &'a [RequestOpParams<'a>],
    failure: &'a [RequestOpParams<'a>],
) -> TxnParams<'a> {
    TxnParams {
        compare,
        success,
        failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_as_etcds_recipes_name_them() {
        assert_eq!(prefix_of(b"job"), b"job/");
        assert_eq!(contender_key(b"job/", 0x694d), b"job/694d");
        assert_eq!(contender_key(b"job/", -1), b"job/-1");
        assert_eq!(prefix_end(b"job/"), b"job0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }
}
