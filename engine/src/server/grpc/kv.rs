//! KV: etcd's Range, Put, DeleteRange, Txn and Compact, translated to the
//! native requests and back. Nothing is decided here: validation, errors
//! and results are the shard's, so a gRPC call and a native one behave the
//! same.

use bytes::Bytes;
use cairn_wire::etcdpb as pb;
use cairn_wire::{
    rpc, CompareParams, DeleteRangeParams, PutParams, RangeParams, RequestOpParams,
    ResponseBodyView, ResponseOpView, TxnParams,
};
use typed_arena::Arena;

use super::codec::Status;
use super::convert::{enum_i8, header, kv, kvs};

pub fn range_params(r: &pb::RangeRequest) -> Result<RangeParams<'_>, Status> {
    Ok(RangeParams {
        key: &r.key,
        range_end: &r.range_end,
        limit: r.limit,
        revision: r.revision,
        sort_order: rpc::SortOrder(enum_i8(r.sort_order, 2, "sort order")?),
        sort_target: rpc::SortTarget(enum_i8(r.sort_target, 4, "sort target")?),
        serializable: r.serializable,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    })
}

pub fn put_params(r: &pb::PutRequest) -> PutParams<'_> {
    PutParams {
        key: &r.key,
        value: &r.value,
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    }
}

pub fn delete_params(r: &pb::DeleteRangeRequest) -> DeleteRangeParams<'_> {
    DeleteRangeParams {
        key: &r.key,
        range_end: &r.range_end,
        prev_kv: r.prev_kv,
    }
}

/// Storage for a txn's translated parts, which borrow from the request.
#[derive(Default)]
pub struct TxnArena<'a> {
    compares: Arena<CompareParams<'a>>,
    ops: Arena<RequestOpParams<'a>>,
}

pub fn txn_params<'a>(
    arena: &'a TxnArena<'a>,
    t: &'a pb::TxnRequest,
) -> Result<TxnParams<'a>, Status> {
    let mut compares = Vec::with_capacity(t.compare.len());
    for c in &t.compare {
        compares.push(compare_params(c)?);
    }
    Ok(TxnParams {
        compare: arena.compares.alloc_extend(compares),
        success: op_params(arena, &t.success)?,
        failure: op_params(arena, &t.failure)?,
    })
}

fn op_params<'a>(
    arena: &'a TxnArena<'a>,
    ops: &'a [pb::RequestOp],
) -> Result<&'a [RequestOpParams<'a>], Status> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match &op.request {
            Some(pb::Request::Range(r)) => RequestOpParams::Range(range_params(r)?),
            Some(pb::Request::Put(p)) => RequestOpParams::Put(put_params(p)),
            Some(pb::Request::DeleteRange(d)) => RequestOpParams::DeleteRange(delete_params(d)),
            Some(pb::Request::Txn(t)) => RequestOpParams::Txn(txn_params(arena, t)?),
            // etcd's checkRequestOp lets an empty op through to apply,
            // which fails it; say so up front.
            None => return Err(Status::invalid_argument("etcdserver: request op is empty")),
        });
    }
    Ok(arena.ops.alloc_extend(out))
}

fn compare_params(c: &pb::Compare) -> Result<CompareParams<'_>, Status> {
    let mut p = CompareParams {
        result: rpc::CompareResult(enum_i8(c.result, 3, "compare result")?),
        target: rpc::CompareTarget(enum_i8(c.target, 4, "compare target")?),
        key: &c.key,
        range_end: &c.range_end,
        ..CompareParams::default()
    };
    match &c.target_union {
        Some(pb::TargetUnion::Version(v)) => p.version = *v,
        Some(pb::TargetUnion::CreateRevision(v)) => p.create_revision = *v,
        Some(pb::TargetUnion::ModRevision(v)) => p.mod_revision = *v,
        Some(pb::TargetUnion::Value(v)) => p.value = v,
        Some(pb::TargetUnion::Lease(v)) => p.lease = *v,
        None => {}
    }
    Ok(p)
}

pub fn range_response(h: pb::ResponseHeader, r: &rpc::RangeResponse<'_>) -> pb::RangeResponse {
    pb::RangeResponse {
        header: Some(h),
        kvs: kvs(r.kvs()),
        more: r.more(),
        count: r.count(),
    }
}

pub fn put_response(h: pb::ResponseHeader, r: &rpc::PutResponse<'_>) -> pb::PutResponse {
    pb::PutResponse {
        header: Some(h),
        prev_kv: r.prev_kv().map(kv),
    }
}

pub fn delete_response(
    h: pb::ResponseHeader,
    r: &rpc::DeleteRangeResponse<'_>,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: Some(h),
        deleted: r.deleted(),
        prev_kvs: kvs(r.prev_kvs()),
    }
}

pub fn txn_response(
    h: &pb::ResponseHeader,
    r: &rpc::TxnResponse<'_>,
) -> Result<pb::TxnResponse, Status> {
    let mut responses = Vec::new();
    // etcd's nested responses carry only the revision in their headers.
    let nested = pb::ResponseHeader {
        revision: h.revision,
        ..pb::ResponseHeader::default()
    };
    for op in ResponseOpView::all(r.responses()) {
        let op = op.map_err(|e| Status::internal(e.to_string()))?;
        let response = match op {
            ResponseOpView::Range(x) => pb::Response::Range(range_response(nested.clone(), &x)),
            ResponseOpView::Put(x) => pb::Response::Put(put_response(nested.clone(), &x)),
            ResponseOpView::DeleteRange(x) => {
                pb::Response::DeleteRange(delete_response(nested.clone(), &x))
            }
            ResponseOpView::Txn(x) => pb::Response::Txn(txn_response(&nested, &x)?),
        };
        responses.push(pb::ResponseOp {
            response: Some(response),
        });
    }
    Ok(pb::TxnResponse {
        header: Some(h.clone()),
        succeeded: r.succeeded(),
        responses,
    })
}

/// The protobuf answer for a native KV response body.
pub fn response(h: &cairn_wire::Header, body: &ResponseBodyView<'_>) -> Result<Bytes, Status> {
    use super::codec::frame;
    Ok(match body {
        ResponseBodyView::Range(r) => super::kv_answer::range(h, r),
        ResponseBodyView::Put(r) => super::kv_answer::put(h, r),
        ResponseBodyView::DeleteRange(r) => super::kv_answer::delete_range(h, r),
        ResponseBodyView::Txn(r) => frame(&txn_response(&header(h), r)?),
        ResponseBodyView::Compaction(_) => frame(&pb::CompactionResponse {
            header: Some(header(h)),
        }),
        _ => return Err(Status::internal("etcdserver: unexpected response type")),
    })
}
