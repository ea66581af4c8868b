//! Between the wire and the MVCC index: verified request views become index
//! requests (borrowing the frame's bytes, no copies), and index answers
//! become response frames.
//!
//! This is the one place that knows both vocabularies; the shard decides
//! *when* a request runs (after commit, or after a read barrier), this
//! module only says *what* it does.

use cairn_wire::{
    bytes, rpc, DeleteRangeResult, Encoder, Header, KeyValueRef, PutResult, RangeResult,
    RequestBodyView, RequestOpView, ResponseOpResult, TxnResult,
};
use typed_arena::Arena;

use crate::mvcc::{
    self, Compare, CompareResult, CompareTarget, DeleteRangeRequest, KeyValue, PutRequest,
    RangeRequest, RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResponse,
};

/// How the shard must treat a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Changes state: goes through the Raft log, answered after apply.
    Write,
    /// A linearizable read: answered after a ReadIndex barrier.
    LinearRead,
    /// A serializable read: answered from local state at once.
    LocalRead,
    /// A lease keep-alive: answered by the leader from its lease table, or
    /// proposed like a write by a follower (see `server::lease`).
    KeepAlive,
    /// A watch request: served at once by the member's watch hub.
    Watch,
    /// Leadership transfer: started by the leader, answered when done.
    MoveLeader,
    /// Not served by this version; answered with `Unimplemented`.
    Unsupported,
}

/// Classify a request body.
pub fn classify(body: &RequestBodyView<'_>) -> Class {
    match body {
        RequestBodyView::Range(r) if r.serializable() => Class::LocalRead,
        RequestBodyView::Range(_) => Class::LinearRead,
        RequestBodyView::Txn(t) if txn_is_read_only(*t) => Class::LinearRead,
        RequestBodyView::Put(_)
        | RequestBodyView::DeleteRange(_)
        | RequestBodyView::Txn(_)
        | RequestBodyView::Compaction(_) => Class::Write,
        RequestBodyView::Alarm(a) if a.action() == rpc::AlarmAction::Get => Class::LocalRead,
        RequestBodyView::Alarm(_) => Class::Write,
        RequestBodyView::Status(_)
        | RequestBodyView::HashKv(_)
        | RequestBodyView::MemberList(_) => Class::LocalRead,
        RequestBodyView::LeaseGrant(_) | RequestBodyView::LeaseRevoke(_) => Class::Write,
        RequestBodyView::LeaseTimeToLive(_) | RequestBodyView::LeaseLeases(_) => Class::LinearRead,
        RequestBodyView::LeaseKeepAlive(_) => Class::KeepAlive,
        RequestBodyView::WatchCreate(_)
        | RequestBodyView::WatchCancel(_)
        | RequestBodyView::WatchProgress(_) => Class::Watch,
        RequestBodyView::MoveLeader(_) => Class::MoveLeader,
        RequestBodyView::AuthStatus(_)
        | RequestBodyView::UserGet(_)
        | RequestBodyView::UserList(_)
        | RequestBodyView::RoleGet(_)
        | RequestBodyView::RoleList(_) => Class::LinearRead,
        // Authenticate and password changes reach the log only after the
        // shard checked or hashed the password.
        RequestBodyView::AuthEnable(_)
        | RequestBodyView::AuthDisable(_)
        | RequestBodyView::Authenticate(_)
        | RequestBodyView::UserAdd(_)
        | RequestBodyView::UserDelete(_)
        | RequestBodyView::UserChangePassword(_)
        | RequestBodyView::UserGrantRole(_)
        | RequestBodyView::UserRevokeRole(_)
        | RequestBodyView::RoleAdd(_)
        | RequestBodyView::RoleDelete(_)
        | RequestBodyView::RoleGrantPermission(_)
        | RequestBodyView::RoleRevokePermission(_) => Class::Write,
        _ => Class::Unsupported,
    }
}

/// A txn whose every branch only reads (etcd serves those through the read
/// path too: they cannot change state, so they need no log entry).
fn txn_is_read_only(t: rpc::TxnRequest<'_>) -> bool {
    let branch_reads_only = |ops| {
        RequestOpView::all(ops).all(|op| match op {
            Ok(RequestOpView::Range(_)) => true,
            Ok(RequestOpView::Txn(t)) => txn_is_read_only(t),
            _ => false,
        })
    };
    branch_reads_only(t.success()) && branch_reads_only(t.failure())
}

/// Whether a request may add data (refused while the NOSPACE alarm is on).
pub fn may_grow(body: &RequestBodyView<'_>) -> bool {
    fn ops_put(
        ops: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<rpc::RequestOp<'_>>>>,
    ) -> bool {
        RequestOpView::all(ops).any(|op| match op {
            Ok(RequestOpView::Put(_)) => true,
            Ok(RequestOpView::Txn(t)) => ops_put(t.success()) || ops_put(t.failure()),
            _ => false,
        })
    }
    match body {
        RequestBodyView::Put(_) => true,
        RequestBodyView::Txn(t) => ops_put(t.success()) || ops_put(t.failure()),
        _ => false,
    }
}

/// Every lease a put of the request attaches keys to, in either branch of
/// every txn (a put naming a missing lease fails the whole request; etcd
/// checks only the branch that runs, cairn checks both).
pub fn put_leases(body: &RequestBodyView<'_>) -> Vec<i64> {
    fn walk(
        ops: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<rpc::RequestOp<'_>>>>,
        out: &mut Vec<i64>,
    ) {
        for op in RequestOpView::all(ops).flatten() {
            match op {
                RequestOpView::Put(p) if p.lease() != 0 => out.push(p.lease()),
                RequestOpView::Txn(t) => {
                    walk(t.success(), out);
                    walk(t.failure(), out);
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    match body {
        RequestBodyView::Put(p) if p.lease() != 0 => out.push(p.lease()),
        RequestBodyView::Txn(t) => {
            walk(t.success(), &mut out);
            walk(t.failure(), &mut out);
        }
        _ => {}
    }
    out
}

pub fn range_request(r: rpc::RangeRequest<'_>) -> RangeRequest<'_> {
    RangeRequest {
        key: bytes(r.key()),
        range_end: bytes(r.range_end()),
        limit: r.limit(),
        revision: r.revision(),
        sort_order: match r.sort_order() {
            rpc::SortOrder::Ascend => SortOrder::Ascend,
            rpc::SortOrder::Descend => SortOrder::Descend,
            _ => SortOrder::None,
        },
        sort_target: match r.sort_target() {
            rpc::SortTarget::Version => SortTarget::Version,
            rpc::SortTarget::Create => SortTarget::Create,
            rpc::SortTarget::Mod => SortTarget::Mod,
            rpc::SortTarget::Value => SortTarget::Value,
            _ => SortTarget::Key,
        },
        keys_only: r.keys_only(),
        count_only: r.count_only(),
        min_mod_revision: r.min_mod_revision(),
        max_mod_revision: r.max_mod_revision(),
        min_create_revision: r.min_create_revision(),
        max_create_revision: r.max_create_revision(),
    }
}

pub fn put_request(p: rpc::PutRequest<'_>) -> PutRequest<'_> {
    PutRequest {
        key: bytes(p.key()),
        value: bytes(p.value()),
        lease: p.lease(),
        prev_kv: p.prev_kv(),
        ignore_value: p.ignore_value(),
        ignore_lease: p.ignore_lease(),
    }
}

pub fn delete_request(d: rpc::DeleteRangeRequest<'_>) -> DeleteRangeRequest<'_> {
    DeleteRangeRequest {
        key: bytes(d.key()),
        range_end: bytes(d.range_end()),
        prev_kv: d.prev_kv(),
    }
}

fn compare(c: rpc::Compare<'_>) -> Compare<'_> {
    Compare {
        result: match c.result() {
            rpc::CompareResult::Greater => CompareResult::Greater,
            rpc::CompareResult::Less => CompareResult::Less,
            rpc::CompareResult::NotEqual => CompareResult::NotEqual,
            _ => CompareResult::Equal,
        },
        target: match c.target() {
            rpc::CompareTarget::Create => CompareTarget::Create(c.create_revision()),
            rpc::CompareTarget::Mod => CompareTarget::Mod(c.mod_revision()),
            rpc::CompareTarget::Value => CompareTarget::Value(bytes(c.value())),
            rpc::CompareTarget::Lease => CompareTarget::Lease(c.lease()),
            _ => CompareTarget::Version(c.version()),
        },
        key: bytes(c.key()),
        range_end: bytes(c.range_end()),
    }
}

/// A txn as the index takes it. The verifier bounds the nesting depth, so
/// the recursion is bounded too.
pub fn txn_request(t: rpc::TxnRequest<'_>) -> TxnRequest<'_> {
    let ops = |v| {
        RequestOpView::all(v)
            .filter_map(Result::ok)
            .map(|op| match op {
                RequestOpView::Range(r) => RequestOp::Range(range_request(r)),
                RequestOpView::Put(p) => RequestOp::Put(put_request(p)),
                RequestOpView::DeleteRange(d) => RequestOp::DeleteRange(delete_request(d)),
                RequestOpView::Txn(t) => RequestOp::Txn(txn_request(t)),
            })
            .collect()
    };
    TxnRequest {
        compare: t.compare().into_iter().flatten().map(compare).collect(),
        success: ops(t.success()),
        failure: ops(t.failure()),
    }
}

/// The gRPC code and etcd's message for an index error, as etcd's server
/// sends them (`mvcc:` errors gain the `etcdserver: ` prefix on the way out).
pub fn mvcc_error(e: &mvcc::Error) -> (rpc::ErrorCode, String) {
    use mvcc::Error as E;
    match e {
        E::Compacted | E::FutureRev => (rpc::ErrorCode::OutOfRange, format!("etcdserver: {e}")),
        E::EmptyKey
        | E::KeyNotFound
        | E::ValueProvided
        | E::LeaseProvided
        | E::TooManyOps
        | E::DuplicateKey => (rpc::ErrorCode::InvalidArgument, e.to_string()),
        E::CorruptSnapshot { .. } => (rpc::ErrorCode::Internal, e.to_string()),
    }
}

pub fn kv_ref(kv: &KeyValue) -> KeyValueRef<'_> {
    KeyValueRef {
        key: &kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: &kv.value,
        lease: kv.lease,
    }
}

pub fn encode_range<'e>(
    enc: &'e mut Encoder,
    id: u64,
    header: &Header,
    r: &mvcc::RangeResponse,
) -> &'e [u8] {
    let kvs: Vec<KeyValueRef<'_>> = r.kvs.iter().map(kv_ref).collect();
    enc.range_response(
        id,
        header,
        &RangeResult {
            kvs: &kvs,
            more: r.more,
            count: r.count,
        },
    )
}

pub fn encode_put<'e>(
    enc: &'e mut Encoder,
    id: u64,
    header: &Header,
    r: &mvcc::PutResponse,
) -> &'e [u8] {
    enc.put_response(
        id,
        header,
        &PutResult {
            prev_kv: r.prev_kv.as_ref().map(kv_ref),
        },
    )
}

pub fn encode_delete<'e>(
    enc: &'e mut Encoder,
    id: u64,
    header: &Header,
    r: &mvcc::DeleteRangeResponse,
) -> &'e [u8] {
    let prev: Vec<KeyValueRef<'_>> = r.prev_kvs.iter().map(kv_ref).collect();
    enc.delete_range_response(
        id,
        header,
        &DeleteRangeResult {
            deleted: r.deleted,
            prev_kvs: &prev,
        },
    )
}

pub fn encode_txn<'e>(enc: &'e mut Encoder, id: u64, header: &Header, r: &TxnResponse) -> &'e [u8] {
    // Nested responses borrow slices of each other; two arenas hold them
    // for the duration of the encoding.
    let kvs = Arena::new();
    let ops = Arena::new();
    let result = txn_result(r, &kvs, &ops);
    enc.txn_response(id, header, &result)
}

fn txn_result<'a>(
    r: &'a TxnResponse,
    kvs: &'a Arena<KeyValueRef<'a>>,
    ops: &'a Arena<ResponseOpResult<'a>>,
) -> TxnResult<'a> {
    let responses: Vec<ResponseOpResult<'a>> = r
        .responses
        .iter()
        .map(|op| match op {
            ResponseOp::Range(r) => ResponseOpResult::Range(RangeResult {
                kvs: kvs.alloc_extend(r.kvs.iter().map(kv_ref)),
                more: r.more,
                count: r.count,
            }),
            ResponseOp::Put(p) => ResponseOpResult::Put(PutResult {
                prev_kv: p.prev_kv.as_ref().map(kv_ref),
            }),
            ResponseOp::DeleteRange(d) => ResponseOpResult::DeleteRange(DeleteRangeResult {
                deleted: d.deleted,
                prev_kvs: kvs.alloc_extend(d.prev_kvs.iter().map(kv_ref)),
            }),
            ResponseOp::Txn(t) => ResponseOpResult::Txn(txn_result(t, kvs, ops)),
        })
        .collect();
    TxnResult {
        succeeded: r.succeeded,
        responses: ops.alloc_extend(responses),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_wire::{decode_request, decode_response, PutParams, RangeParams, ResponseBodyView};

    fn body_of(frame: &[u8]) -> RequestBodyView<'_> {
        decode_request(frame).expect("valid").body
    }

    #[test]
    fn requests_are_classified_like_etcd() {
        let mut enc = Encoder::new();
        let f = enc
            .put_request(
                1,
                &PutParams {
                    key: b"k",
                    value: b"v",
                    ..Default::default()
                },
            )
            .to_vec();
        assert_eq!(classify(&body_of(&f)), Class::Write);
        assert!(may_grow(&body_of(&f)));
        let f = enc
            .range_request(
                1,
                &RangeParams {
                    key: b"k",
                    ..Default::default()
                },
            )
            .to_vec();
        assert_eq!(classify(&body_of(&f)), Class::LinearRead);
        let f = enc
            .range_request(
                1,
                &RangeParams {
                    key: b"k",
                    serializable: true,
                    ..Default::default()
                },
            )
            .to_vec();
        assert_eq!(classify(&body_of(&f)), Class::LocalRead);
        let f = enc.status_request(1).to_vec();
        assert_eq!(classify(&body_of(&f)), Class::LocalRead);
    }

    #[test]
    fn a_put_applies_and_encodes() {
        let mut enc = Encoder::new();
        let frame = enc
            .put_request(
                3,
                &PutParams {
                    key: b"k",
                    value: b"v",
                    prev_kv: true,
                    ..Default::default()
                },
            )
            .to_vec();
        let RequestBodyView::Put(p) = body_of(&frame) else {
            panic!("not a put")
        };
        let mut index = mvcc::Mvcc::new(mvcc::MvccConfig::default());
        let applied = index.put(&put_request(p)).expect("put");
        let header = Header {
            revision: applied.response.revision,
            ..Header::default()
        };
        let out = encode_put(&mut enc, 3, &header, &applied.response).to_vec();
        let resp = decode_response(&out).expect("valid response");
        assert_eq!(resp.id, 3);
        assert_eq!(resp.header.revision, 2);
        assert!(matches!(resp.body, Ok(ResponseBodyView::Put(_))));
    }

    #[test]
    fn errors_read_like_etcd() {
        let (code, msg) = mvcc_error(&mvcc::Error::Compacted);
        assert_eq!(code, rpc::ErrorCode::OutOfRange);
        assert_eq!(
            msg,
            "etcdserver: mvcc: required revision has been compacted"
        );
        let (code, msg) = mvcc_error(&mvcc::Error::DuplicateKey);
        assert_eq!(code, rpc::ErrorCode::InvalidArgument);
        assert_eq!(msg, "etcdserver: duplicate key given in txn request");
    }
}
