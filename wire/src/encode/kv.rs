//! KV requests and responses: Range, Put, DeleteRange, Txn, Compact. The
//! plain parameter structs convert from the views too (`RangeParams::from(view)`),
//! which is handy for code that handles ops from requests and txns alike.

use flatbuffers::{ForwardsUOffset, Vector, WIPOffset};

use super::{build_kv, kv_vector, opt_bytes, Builder, Encoder};
use crate::rpc;
use crate::types::{bytes, Header, KeyValueRef};

/// A Range request's fields; see etcd's RangeRequest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeParams<'a> {
    pub key: &'a [u8],
    pub range_end: &'a [u8],
    pub limit: i64,
    pub revision: i64,
    pub sort_order: rpc::SortOrder,
    pub sort_target: rpc::SortTarget,
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutParams<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub lease: i64,
    pub prev_kv: bool,
    pub ignore_value: bool,
    pub ignore_lease: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteRangeParams<'a> {
    pub key: &'a [u8],
    pub range_end: &'a [u8],
    pub prev_kv: bool,
}

/// One txn guard; only the field named by `target` is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompareParams<'a> {
    pub result: rpc::CompareResult,
    pub target: rpc::CompareTarget,
    pub key: &'a [u8],
    pub range_end: &'a [u8],
    pub version: i64,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub value: &'a [u8],
    pub lease: i64,
}

/// One operation of a txn branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOpParams<'a> {
    Range(RangeParams<'a>),
    Put(PutParams<'a>),
    DeleteRange(DeleteRangeParams<'a>),
    Txn(TxnParams<'a>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnParams<'a> {
    pub compare: &'a [CompareParams<'a>],
    pub success: &'a [RequestOpParams<'a>],
    pub failure: &'a [RequestOpParams<'a>],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeResult<'a> {
    pub kvs: &'a [KeyValueRef<'a>],
    pub more: bool,
    pub count: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutResult<'a> {
    pub prev_kv: Option<KeyValueRef<'a>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteRangeResult<'a> {
    pub deleted: i64,
    pub prev_kvs: &'a [KeyValueRef<'a>],
}

/// The result of one operation of the txn branch that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseOpResult<'a> {
    Range(RangeResult<'a>),
    Put(PutResult<'a>),
    DeleteRange(DeleteRangeResult<'a>),
    Txn(TxnResult<'a>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnResult<'a> {
    pub succeeded: bool,
    pub responses: &'a [ResponseOpResult<'a>],
}

fn build_range(fbb: &mut Builder, p: &RangeParams<'_>) -> WIPOffset<rpc::RangeRequest<'static>> {
    let key = opt_bytes(fbb, p.key);
    let range_end = opt_bytes(fbb, p.range_end);
    rpc::RangeRequest::create(
        fbb,
        &rpc::RangeRequestArgs {
            key,
            range_end,
            limit: p.limit,
            revision: p.revision,
            sort_order: p.sort_order,
            sort_target: p.sort_target,
            serializable: p.serializable,
            keys_only: p.keys_only,
            count_only: p.count_only,
            min_mod_revision: p.min_mod_revision,
            max_mod_revision: p.max_mod_revision,
            min_create_revision: p.min_create_revision,
            max_create_revision: p.max_create_revision,
        },
    )
}

fn build_put(fbb: &mut Builder, p: &PutParams<'_>) -> WIPOffset<rpc::PutRequest<'static>> {
    let key = opt_bytes(fbb, p.key);
    let value = opt_bytes(fbb, p.value);
    rpc::PutRequest::create(
        fbb,
        &rpc::PutRequestArgs {
            key,
            value,
            lease: p.lease,
            prev_kv: p.prev_kv,
            ignore_value: p.ignore_value,
            ignore_lease: p.ignore_lease,
        },
    )
}

fn build_delete_range(
    fbb: &mut Builder,
    p: &DeleteRangeParams<'_>,
) -> WIPOffset<rpc::DeleteRangeRequest<'static>> {
    let key = opt_bytes(fbb, p.key);
    let range_end = opt_bytes(fbb, p.range_end);
    rpc::DeleteRangeRequest::create(
        fbb,
        &rpc::DeleteRangeRequestArgs {
            key,
            range_end,
            prev_kv: p.prev_kv,
        },
    )
}

fn build_compare(fbb: &mut Builder, c: &CompareParams<'_>) -> WIPOffset<rpc::Compare<'static>> {
    let key = opt_bytes(fbb, c.key);
    let range_end = opt_bytes(fbb, c.range_end);
    let value = opt_bytes(fbb, c.value);
    rpc::Compare::create(
        fbb,
        &rpc::CompareArgs {
            result: c.result,
            target: c.target,
            key,
            range_end,
            version: c.version,
            create_revision: c.create_revision,
            mod_revision: c.mod_revision,
            value,
            lease: c.lease,
        },
    )
}

type OpVector = WIPOffset<Vector<'static, ForwardsUOffset<rpc::RequestOp<'static>>>>;

fn build_ops(fbb: &mut Builder, ops: &[RequestOpParams<'_>]) -> Option<OpVector> {
    if ops.is_empty() {
        return None;
    }
    let offsets: Vec<_> = ops
        .iter()
        .map(|op| {
            let (request_type, request) = match op {
                RequestOpParams::Range(p) => (
                    rpc::RequestOpKind::RangeRequest,
                    build_range(fbb, p).as_union_value(),
                ),
                RequestOpParams::Put(p) => (
                    rpc::RequestOpKind::PutRequest,
                    build_put(fbb, p).as_union_value(),
                ),
                RequestOpParams::DeleteRange(p) => (
                    rpc::RequestOpKind::DeleteRangeRequest,
                    build_delete_range(fbb, p).as_union_value(),
                ),
                RequestOpParams::Txn(p) => (
                    rpc::RequestOpKind::TxnRequest,
                    build_txn(fbb, p).as_union_value(),
                ),
            };
            rpc::RequestOp::create(
                fbb,
                &rpc::RequestOpArgs {
                    request_type,
                    request: Some(request),
                },
            )
        })
        .collect();
    Some(fbb.create_vector(&offsets))
}

/// Recursion depth is the caller's txn nesting depth.
fn build_txn(fbb: &mut Builder, p: &TxnParams<'_>) -> WIPOffset<rpc::TxnRequest<'static>> {
    let compare = if p.compare.is_empty() {
        None
    } else {
        let offsets: Vec<_> = p.compare.iter().map(|c| build_compare(fbb, c)).collect();
        Some(fbb.create_vector(&offsets))
    };
    let success = build_ops(fbb, p.success);
    let failure = build_ops(fbb, p.failure);
    rpc::TxnRequest::create(
        fbb,
        &rpc::TxnRequestArgs {
            compare,
            success,
            failure,
        },
    )
}

fn build_range_result(
    fbb: &mut Builder,
    r: &RangeResult<'_>,
) -> WIPOffset<rpc::RangeResponse<'static>> {
    let kvs = kv_vector(fbb, r.kvs);
    rpc::RangeResponse::create(
        fbb,
        &rpc::RangeResponseArgs {
            kvs,
            more: r.more,
            count: r.count,
        },
    )
}

fn build_put_result(fbb: &mut Builder, r: &PutResult<'_>) -> WIPOffset<rpc::PutResponse<'static>> {
    let prev_kv = r.prev_kv.as_ref().map(|kv| build_kv(fbb, kv));
    rpc::PutResponse::create(fbb, &rpc::PutResponseArgs { prev_kv })
}

fn build_delete_range_result(
    fbb: &mut Builder,
    r: &DeleteRangeResult<'_>,
) -> WIPOffset<rpc::DeleteRangeResponse<'static>> {
    let prev_kvs = kv_vector(fbb, r.prev_kvs);
    rpc::DeleteRangeResponse::create(
        fbb,
        &rpc::DeleteRangeResponseArgs {
            deleted: r.deleted,
            prev_kvs,
        },
    )
}

/// Recursion depth is the txn's nesting depth.
fn build_txn_result(fbb: &mut Builder, r: &TxnResult<'_>) -> WIPOffset<rpc::TxnResponse<'static>> {
    let responses = if r.responses.is_empty() {
        None
    } else {
        let offsets: Vec<_> = r
            .responses
            .iter()
            .map(|op| {
                let (response_type, response) = match op {
                    ResponseOpResult::Range(r) => (
                        rpc::ResponseOpKind::RangeResponse,
                        build_range_result(fbb, r).as_union_value(),
                    ),
                    ResponseOpResult::Put(r) => (
                        rpc::ResponseOpKind::PutResponse,
                        build_put_result(fbb, r).as_union_value(),
                    ),
                    ResponseOpResult::DeleteRange(r) => (
                        rpc::ResponseOpKind::DeleteRangeResponse,
                        build_delete_range_result(fbb, r).as_union_value(),
                    ),
                    ResponseOpResult::Txn(r) => (
                        rpc::ResponseOpKind::TxnResponse,
                        build_txn_result(fbb, r).as_union_value(),
                    ),
                };
                rpc::ResponseOp::create(
                    fbb,
                    &rpc::ResponseOpArgs {
                        response_type,
                        response: Some(response),
                    },
                )
            })
            .collect();
        Some(fbb.create_vector(&offsets))
    };
    rpc::TxnResponse::create(
        fbb,
        &rpc::TxnResponseArgs {
            succeeded: r.succeeded,
            responses,
        },
    )
}

impl Encoder {
    pub fn range_request(&mut self, id: u64, p: &RangeParams<'_>) -> &[u8] {
        let body = build_range(self.begin(), p).as_union_value();
        self.finish_request(id, rpc::RequestBody::RangeRequest, body)
    }

    pub fn put_request(&mut self, id: u64, p: &PutParams<'_>) -> &[u8] {
        let body = build_put(self.begin(), p).as_union_value();
        self.finish_request(id, rpc::RequestBody::PutRequest, body)
    }

    pub fn delete_range_request(&mut self, id: u64, p: &DeleteRangeParams<'_>) -> &[u8] {
        let body = build_delete_range(self.begin(), p).as_union_value();
        self.finish_request(id, rpc::RequestBody::DeleteRangeRequest, body)
    }

    pub fn txn_request(&mut self, id: u64, p: &TxnParams<'_>) -> &[u8] {
        let body = build_txn(self.begin(), p).as_union_value();
        self.finish_request(id, rpc::RequestBody::TxnRequest, body)
    }

    pub fn compaction_request(&mut self, id: u64, revision: i64, physical: bool) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::CompactionRequest::create(fbb, &rpc::CompactionRequestArgs { revision, physical })
                .as_union_value();
        self.finish_request(id, rpc::RequestBody::CompactionRequest, body)
    }

    pub fn range_response(&mut self, id: u64, header: &Header, r: &RangeResult<'_>) -> &[u8] {
        let body = build_range_result(self.begin(), r).as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::RangeResponse, body)
    }

    pub fn put_response(&mut self, id: u64, header: &Header, r: &PutResult<'_>) -> &[u8] {
        let body = build_put_result(self.begin(), r).as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::PutResponse, body)
    }

    pub fn delete_range_response(
        &mut self,
        id: u64,
        header: &Header,
        r: &DeleteRangeResult<'_>,
    ) -> &[u8] {
        let body = build_delete_range_result(self.begin(), r).as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::DeleteRangeResponse, body)
    }

    pub fn txn_response(&mut self, id: u64, header: &Header, r: &TxnResult<'_>) -> &[u8] {
        let body = build_txn_result(self.begin(), r).as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::TxnResponse, body)
    }

    pub fn compaction_response(&mut self, id: u64, header: &Header) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::CompactionResponse::create(fbb, &rpc::CompactionResponseArgs {}).as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::CompactionResponse, body)
    }
}

impl<'a> From<rpc::RangeRequest<'a>> for RangeParams<'a> {
    fn from(v: rpc::RangeRequest<'a>) -> Self {
        RangeParams {
            key: bytes(v.key()),
            range_end: bytes(v.range_end()),
            limit: v.limit(),
            revision: v.revision(),
            sort_order: v.sort_order(),
            sort_target: v.sort_target(),
            serializable: v.serializable(),
            keys_only: v.keys_only(),
            count_only: v.count_only(),
            min_mod_revision: v.min_mod_revision(),
            max_mod_revision: v.max_mod_revision(),
            min_create_revision: v.min_create_revision(),
            max_create_revision: v.max_create_revision(),
        }
    }
}

impl<'a> From<rpc::PutRequest<'a>> for PutParams<'a> {
    fn from(v: rpc::PutRequest<'a>) -> Self {
        PutParams {
            key: bytes(v.key()),
            value: bytes(v.value()),
            lease: v.lease(),
            prev_kv: v.prev_kv(),
            ignore_value: v.ignore_value(),
            ignore_lease: v.ignore_lease(),
        }
    }
}

impl<'a> From<rpc::DeleteRangeRequest<'a>> for DeleteRangeParams<'a> {
    fn from(v: rpc::DeleteRangeRequest<'a>) -> Self {
        DeleteRangeParams {
            key: bytes(v.key()),
            range_end: bytes(v.range_end()),
            prev_kv: v.prev_kv(),
        }
    }
}

impl<'a> From<rpc::Compare<'a>> for CompareParams<'a> {
    fn from(v: rpc::Compare<'a>) -> Self {
        CompareParams {
            result: v.result(),
            target: v.target(),
            key: bytes(v.key()),
            range_end: bytes(v.range_end()),
            version: v.version(),
            create_revision: v.create_revision(),
            mod_revision: v.mod_revision(),
            value: bytes(v.value()),
            lease: v.lease(),
        }
    }
}
