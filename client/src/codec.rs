//! Translation between the client's types and cairn-wire frames.

use cairn_wire::{
    decode_response, rpc, Builder, Encoder, Header, KeyValueRef, ResponseBodyView, ResponseOpView,
    WatchCreateParams,
};
use flatbuffers::{ForwardsUOffset, Vector, WIPOffset};

use crate::auth::*;
pub(crate) use crate::auth_codec::AuthRequest;
use crate::auth_codec::{encode_auth, permission_from};
use crate::error::{Code, Error};
use crate::options::{DeleteOptions, GetOptions, SortOrder, SortTarget, WatchOptions};
use crate::txn::{Compare, CompareResult, CompareTarget, Op, Txn};
use crate::types::*;

/// A request the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Op(Op),
    Compact {
        revision: i64,
        physical: bool,
    },
    Status,
    Alarm {
        action: rpc::AlarmAction,
        member_id: u64,
        alarm: AlarmType,
    },
    MemberList {
        linearizable: bool,
    },
    LeaseGrant {
        ttl: i64,
        id: i64,
    },
    LeaseRevoke {
        id: i64,
    },
    LeaseKeepAlive {
        id: i64,
    },
    LeaseTimeToLive {
        id: i64,
        keys: bool,
    },
    LeaseLeases,
    WatchCreate {
        key: Vec<u8>,
        options: WatchOptions,
    },
    WatchCancel {
        watch_id: i64,
    },
    WatchProgress,
    MemberAdd {
        peer_urls: Vec<String>,
        is_learner: bool,
    },
    MemberRemove {
        id: u64,
    },
    MemberUpdate {
        id: u64,
        peer_urls: Vec<String>,
    },
    MemberPromote {
        id: u64,
    },
    HashKv {
        revision: i64,
    },
    Defragment,
    MoveLeader {
        target: u64,
    },
    Auth(AuthRequest),
}

impl Request {
    /// True when sending it twice cannot change the store, so it may be
    /// resent after its connection broke.
    pub(crate) fn is_idempotent(&self) -> bool {
        match self {
            Request::Op(op) => op.is_read_only(),
            // Renewing a lease twice is as good as once.
            Request::Status
            | Request::MemberList { .. }
            | Request::LeaseKeepAlive { .. }
            | Request::LeaseTimeToLive { .. }
            | Request::LeaseLeases => true,
            Request::WatchCancel { .. } | Request::WatchProgress | Request::HashKv { .. } => true,
            Request::MemberAdd { .. }
            | Request::MemberRemove { .. }
            | Request::MemberUpdate { .. }
            | Request::MemberPromote { .. }
            | Request::Defragment
            | Request::MoveLeader { .. } => false,
            Request::LeaseGrant { .. }
            | Request::LeaseRevoke { .. }
            | Request::WatchCreate { .. } => false,
            Request::Alarm { action, .. } => *action == rpc::AlarmAction::Get,
            Request::Compact { .. } => false,
            Request::Auth(a) => a.is_read_only(),
        }
    }
}

/// A successful answer, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Range(RangeResponse),
    Put(PutResponse),
    Delete(DeleteResponse),
    Txn(TxnResponse),
    Compact(CompactResponse),
    Status(StatusResponse),
    Alarm(AlarmResponse),
    MemberList(MemberListResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseKeepAlive(LeaseKeepAliveResponse),
    LeaseTimeToLive(LeaseTimeToLiveResponse),
    LeaseLeases(LeaseLeasesResponse),
    Watch(WatchResponse),
    MemberAdd(MemberAddResponse),
    /// Remove, update and promote answer with the members after the change.
    MemberChange(MemberListResponse),
    HashKv(HashKvResponse),
    Empty(EmptyResponse),
    AuthStatus(AuthStatusResponse),
    Authenticate(AuthenticateResponse),
    UserGet(UserGetResponse),
    UserList(UserListResponse),
    RoleGet(RoleGetResponse),
    RoleList(RoleListResponse),
    /// Every auth change: enable, disable, add, delete, grant, revoke.
    AuthChange(AuthResponse),
}

impl Reply {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Reply::Range(_) => "RangeResponse",
            Reply::Put(_) => "PutResponse",
            Reply::Delete(_) => "DeleteRangeResponse",
            Reply::Txn(_) => "TxnResponse",
            Reply::Compact(_) => "CompactionResponse",
            Reply::Status(_) => "StatusResponse",
            Reply::Alarm(_) => "AlarmResponse",
            Reply::MemberList(_) => "MemberListResponse",
            Reply::LeaseGrant(_) => "LeaseGrantResponse",
            Reply::LeaseRevoke(_) => "LeaseRevokeResponse",
            Reply::LeaseKeepAlive(_) => "LeaseKeepAliveResponse",
            Reply::LeaseTimeToLive(_) => "LeaseTimeToLiveResponse",
            Reply::LeaseLeases(_) => "LeaseLeasesResponse",
            Reply::Watch(_) => "WatchResponse",
            Reply::MemberAdd(_) => "MemberAddResponse",
            Reply::MemberChange(_) => "a membership change response",
            Reply::HashKv(_) => "HashKVResponse",
            Reply::Empty(_) => "an empty response",
            Reply::AuthStatus(_) => "AuthStatusResponse",
            Reply::Authenticate(_) => "AuthenticateResponse",
            Reply::UserGet(_) => "AuthUserGetResponse",
            Reply::UserList(_) => "AuthUserListResponse",
            Reply::RoleGet(_) => "AuthRoleGetResponse",
            Reply::RoleList(_) => "AuthRoleListResponse",
            Reply::AuthChange(_) => "an auth change response",
        }
    }
}

/// Encodes `request` with `id` into a frame (length prefix included).
pub(crate) fn encode(enc: &mut Encoder, id: u64, request: &Request) -> Vec<u8> {
    match request {
        Request::Op(op) => enc.request_with(id, |fbb| build_op(fbb, op)).to_vec(),
        Request::Compact { revision, physical } => {
            enc.compaction_request(id, *revision, *physical).to_vec()
        }
        Request::Status => enc.status_request(id).to_vec(),
        Request::Alarm {
            action,
            member_id,
            alarm,
        } => enc
            .alarm_request(id, *action, *member_id, alarm_to_wire(*alarm))
            .to_vec(),
        Request::MemberList { linearizable } => enc.member_list_request(id, *linearizable).to_vec(),
        Request::LeaseGrant { ttl, id: lease } => {
            enc.lease_grant_request(id, *ttl, *lease).to_vec()
        }
        Request::LeaseRevoke { id: lease } => enc.lease_revoke_request(id, *lease).to_vec(),
        Request::LeaseKeepAlive { id: lease } => enc.lease_keep_alive_request(id, *lease).to_vec(),
        Request::LeaseTimeToLive { id: lease, keys } => {
            enc.lease_time_to_live_request(id, *lease, *keys).to_vec()
        }
        Request::LeaseLeases => enc.lease_leases_request(id).to_vec(),
        Request::WatchCreate { key, options } => {
            let (key, range_end) = options.range.resolve(key);
            let mut filters = Vec::new();
            if options.no_put {
                filters.push(rpc::FilterType::NoPut);
            }
            if options.no_delete {
                filters.push(rpc::FilterType::NoDelete);
            }
            let params = WatchCreateParams {
                key: &key,
                range_end: &range_end,
                start_revision: options.start_revision,
                progress_notify: options.progress_notify,
                filters: &filters,
                prev_kv: options.prev_kv,
                watch_id: 0,
                fragment: false,
            };
            enc.watch_create_request(id, &params).to_vec()
        }
        Request::WatchCancel { watch_id } => enc.watch_cancel_request(id, *watch_id).to_vec(),
        Request::WatchProgress => enc.watch_progress_request(id).to_vec(),
        Request::MemberAdd {
            peer_urls,
            is_learner,
        } => {
            let urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
            enc.member_add_request(id, &urls, *is_learner).to_vec()
        }
        Request::MemberRemove { id: member } => enc.member_remove_request(id, *member).to_vec(),
        Request::MemberUpdate {
            id: member,
            peer_urls,
        } => {
            let urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
            enc.member_update_request(id, *member, &urls).to_vec()
        }
        Request::MemberPromote { id: member } => enc.member_promote_request(id, *member).to_vec(),
        Request::HashKv { revision } => enc.hash_kv_request(id, *revision).to_vec(),
        Request::Defragment => enc.defragment_request(id).to_vec(),
        Request::MoveLeader { target } => enc.move_leader_request(id, *target).to_vec(),
        Request::Auth(a) => encode_auth(enc, id, a),
    }
}

type Bytes = Option<WIPOffset<Vector<'static, u8>>>;

fn bytes(fbb: &mut Builder, b: &[u8]) -> Bytes {
    if b.is_empty() {
        None
    } else {
        Some(fbb.create_vector(b))
    }
}

/// The request body for an op, as a `RequestBody` union member.
fn build_op(fbb: &mut Builder, op: &Op) -> cairn_wire::RequestBodyOffset {
    let (_, offset) = build_op_kind(fbb, op);
    let body_type = match op {
        Op::Get { .. } => rpc::RequestBody::RangeRequest,
        Op::Put { .. } => rpc::RequestBody::PutRequest,
        Op::Delete { .. } => rpc::RequestBody::DeleteRangeRequest,
        Op::Txn(_) => rpc::RequestBody::TxnRequest,
    };
    (body_type, offset)
}

fn build_op_kind(
    fbb: &mut Builder,
    op: &Op,
) -> (rpc::RequestOpKind, WIPOffset<flatbuffers::UnionWIPOffset>) {
    match op {
        Op::Get { key, options } => (
            rpc::RequestOpKind::RangeRequest,
            build_range(fbb, key, options).as_union_value(),
        ),
        Op::Put {
            key,
            value,
            options,
        } => {
            let key = bytes(fbb, key);
            let value = bytes(fbb, value);
            let put = rpc::PutRequest::create(
                fbb,
                &rpc::PutRequestArgs {
                    key,
                    value,
                    lease: options.lease,
                    prev_kv: options.prev_kv,
                    ignore_value: options.ignore_value,
                    ignore_lease: options.ignore_lease,
                },
            );
            (rpc::RequestOpKind::PutRequest, put.as_union_value())
        }
        Op::Delete { key, options } => (
            rpc::RequestOpKind::DeleteRangeRequest,
            build_delete(fbb, key, options).as_union_value(),
        ),
        Op::Txn(txn) => (
            rpc::RequestOpKind::TxnRequest,
            build_txn(fbb, txn).as_union_value(),
        ),
    }
}

fn build_range(
    fbb: &mut Builder,
    key: &[u8],
    o: &GetOptions,
) -> WIPOffset<rpc::RangeRequest<'static>> {
    let (key, range_end) = o.range.resolve(key);
    let key = bytes(fbb, &key);
    let range_end = bytes(fbb, &range_end);
    rpc::RangeRequest::create(
        fbb,
        &rpc::RangeRequestArgs {
            key,
            range_end,
            limit: o.limit,
            revision: o.revision,
            sort_order: match o.sort_order {
                SortOrder::None => rpc::SortOrder::None,
                SortOrder::Ascend => rpc::SortOrder::Ascend,
                SortOrder::Descend => rpc::SortOrder::Descend,
            },
            sort_target: match o.sort_target {
                SortTarget::Key => rpc::SortTarget::Key,
                SortTarget::Version => rpc::SortTarget::Version,
                SortTarget::Create => rpc::SortTarget::Create,
                SortTarget::Mod => rpc::SortTarget::Mod,
                SortTarget::Value => rpc::SortTarget::Value,
            },
            serializable: o.serializable,
            keys_only: o.keys_only,
            count_only: o.count_only,
            min_mod_revision: o.min_mod_revision,
            max_mod_revision: o.max_mod_revision,
            min_create_revision: o.min_create_revision,
            max_create_revision: o.max_create_revision,
        },
    )
}

fn build_delete(
    fbb: &mut Builder,
    key: &[u8],
    o: &DeleteOptions,
) -> WIPOffset<rpc::DeleteRangeRequest<'static>> {
    let (key, range_end) = o.range.resolve(key);
    let key = bytes(fbb, &key);
    let range_end = bytes(fbb, &range_end);
    rpc::DeleteRangeRequest::create(
        fbb,
        &rpc::DeleteRangeRequestArgs {
            key,
            range_end,
            prev_kv: o.prev_kv,
        },
    )
}

fn build_compare(fbb: &mut Builder, c: &Compare) -> WIPOffset<rpc::Compare<'static>> {
    let (key, range_end) = c.range.resolve(&c.key);
    let key = bytes(fbb, &key);
    let range_end = bytes(fbb, &range_end);
    let mut args = rpc::CompareArgs {
        result: match c.result {
            CompareResult::Equal => rpc::CompareResult::Equal,
            CompareResult::Greater => rpc::CompareResult::Greater,
            CompareResult::Less => rpc::CompareResult::Less,
            CompareResult::NotEqual => rpc::CompareResult::NotEqual,
        },
        key,
        range_end,
        ..Default::default()
    };
    match &c.target {
        CompareTarget::Version(v) => {
            args.target = rpc::CompareTarget::Version;
            args.version = *v;
        }
        CompareTarget::CreateRevision(v) => {
            args.target = rpc::CompareTarget::Create;
            args.create_revision = *v;
        }
        CompareTarget::ModRevision(v) => {
            args.target = rpc::CompareTarget::Mod;
            args.mod_revision = *v;
        }
        CompareTarget::Value(v) => {
            args.target = rpc::CompareTarget::Value;
            args.value = bytes(fbb, v);
        }
        CompareTarget::Lease(v) => {
            args.target = rpc::CompareTarget::Lease;
            args.lease = *v;
        }
    }
    rpc::Compare::create(fbb, &args)
}

type OpVector = Option<WIPOffset<Vector<'static, ForwardsUOffset<rpc::RequestOp<'static>>>>>;

fn build_ops(fbb: &mut Builder, ops: &[Op]) -> OpVector {
    if ops.is_empty() {
        return None;
    }
    let offsets: Vec<_> = ops
        .iter()
        .map(|op| {
            let (request_type, request) = build_op_kind(fbb, op);
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

/// Recursion depth is the txn's nesting depth, which the caller builds.
fn build_txn(fbb: &mut Builder, txn: &Txn) -> WIPOffset<rpc::TxnRequest<'static>> {
    let compare = if txn.compare.is_empty() {
        None
    } else {
        let offsets: Vec<_> = txn.compare.iter().map(|c| build_compare(fbb, c)).collect();
        Some(fbb.create_vector(&offsets))
    };
    let success = build_ops(fbb, &txn.success);
    let failure = build_ops(fbb, &txn.failure);
    rpc::TxnRequest::create(
        fbb,
        &rpc::TxnRequestArgs {
            compare,
            success,
            failure,
        },
    )
}

fn alarm_to_wire(alarm: AlarmType) -> rpc::AlarmType {
    match alarm {
        AlarmType::None => rpc::AlarmType::None,
        AlarmType::NoSpace => rpc::AlarmType::NoSpace,
        AlarmType::Corrupt => rpc::AlarmType::Corrupt,
    }
}

fn alarm_from_wire(alarm: rpc::AlarmType) -> AlarmType {
    match alarm {
        rpc::AlarmType::NoSpace => AlarmType::NoSpace,
        rpc::AlarmType::Corrupt => AlarmType::Corrupt,
        _ => AlarmType::None,
    }
}

/// A decoded response frame: the request id it answers and its outcome.
pub(crate) struct Decoded {
    pub id: u64,
    pub outcome: Result<Reply, Error>,
}

/// Verifies and decodes a response frame. An `Err` means the frame itself is
/// unusable (the connection cannot be trusted any more).
pub(crate) fn decode(frame: &[u8]) -> Result<Decoded, String> {
    let view = decode_response(frame).map_err(|e| e.to_string())?;
    let header = header_from(view.header);
    let outcome = match view.body {
        Err(e) => Err(Error::from_server(Code::from_u8(e.code.0), e.message)),
        Ok(body) => reply_from(header, body),
    };
    Ok(Decoded {
        id: view.id,
        outcome,
    })
}

fn header_from(h: Header) -> ResponseHeader {
    ResponseHeader {
        cluster_id: h.cluster_id,
        member_id: h.member_id,
        revision: h.revision,
        raft_term: h.raft_term,
    }
}

fn kv_from(kv: rpc::KeyValue<'_>) -> KeyValue {
    let r = KeyValueRef::from(kv);
    KeyValue {
        key: r.key.to_vec(),
        create_revision: r.create_revision,
        mod_revision: r.mod_revision,
        version: r.version,
        value: r.value.to_vec(),
        lease: r.lease,
    }
}

fn kvs_from(kvs: Option<Vector<'_, ForwardsUOffset<rpc::KeyValue<'_>>>>) -> Vec<KeyValue> {
    kvs.into_iter().flatten().map(kv_from).collect()
}

fn strings_from(items: Option<Vector<'_, ForwardsUOffset<&str>>>) -> Vec<String> {
    items.into_iter().flatten().map(str::to_string).collect()
}

fn range_from(header: ResponseHeader, r: rpc::RangeResponse<'_>) -> RangeResponse {
    RangeResponse {
        header,
        kvs: kvs_from(r.kvs()),
        more: r.more(),
        count: r.count(),
    }
}

fn put_from(header: ResponseHeader, r: rpc::PutResponse<'_>) -> PutResponse {
    PutResponse {
        header,
        prev_kv: r.prev_kv().map(kv_from),
    }
}

fn delete_from(header: ResponseHeader, r: rpc::DeleteRangeResponse<'_>) -> DeleteResponse {
    DeleteResponse {
        header,
        deleted: r.deleted(),
        prev_kvs: kvs_from(r.prev_kvs()),
    }
}

/// The responses inside a txn get etcd's inner headers: the revision only.
fn txn_from(header: ResponseHeader, t: rpc::TxnResponse<'_>) -> Result<TxnResponse, Error> {
    let inner = ResponseHeader {
        revision: header.revision,
        ..ResponseHeader::default()
    };
    let mut responses = Vec::new();
    for op in ResponseOpView::all(t.responses()) {
        let op = op.map_err(|e| Error::Protocol {
            endpoint: String::new(),
            reason: e.to_string(),
        })?;
        responses.push(match op {
            ResponseOpView::Range(r) => ResponseOp::Range(range_from(inner, r)),
            ResponseOpView::Put(r) => ResponseOp::Put(put_from(inner, r)),
            ResponseOpView::DeleteRange(r) => ResponseOp::Delete(delete_from(inner, r)),
            ResponseOpView::Txn(r) => ResponseOp::Txn(txn_from(inner, r)?),
        });
    }
    Ok(TxnResponse {
        header,
        succeeded: t.succeeded(),
        responses,
    })
}

fn member_from(m: rpc::Member<'_>) -> Member {
    Member {
        id: m.id(),
        name: m.name().unwrap_or("").to_string(),
        peer_urls: strings_from(m.peer_urls()),
        client_urls: strings_from(m.client_urls()),
        is_learner: m.is_learner(),
    }
}

fn reply_from(header: ResponseHeader, body: ResponseBodyView<'_>) -> Result<Reply, Error> {
    Ok(match body {
        ResponseBodyView::Range(r) => Reply::Range(range_from(header, r)),
        ResponseBodyView::Put(r) => Reply::Put(put_from(header, r)),
        ResponseBodyView::DeleteRange(r) => Reply::Delete(delete_from(header, r)),
        ResponseBodyView::Txn(t) => Reply::Txn(txn_from(header, t)?),
        ResponseBodyView::Compaction(_) => Reply::Compact(CompactResponse { header }),
        ResponseBodyView::Status(s) => Reply::Status(StatusResponse {
            header,
            version: s.version().unwrap_or("").to_string(),
            db_size: s.db_size(),
            leader: s.leader(),
            raft_index: s.raft_index(),
            raft_term: s.raft_term(),
            raft_applied_index: s.raft_applied_index(),
            errors: strings_from(s.errors()),
            db_size_in_use: s.db_size_in_use(),
            is_learner: s.is_learner(),
        }),
        ResponseBodyView::Alarm(a) => Reply::Alarm(AlarmResponse {
            header,
            alarms: a
                .alarms()
                .into_iter()
                .flatten()
                .map(|m| AlarmMember {
                    member_id: m.member_id(),
                    alarm: alarm_from_wire(m.alarm()),
                })
                .collect(),
        }),
        ResponseBodyView::MemberList(m) => Reply::MemberList(MemberListResponse {
            header,
            members: m.members().into_iter().flatten().map(member_from).collect(),
        }),
        ResponseBodyView::LeaseGrant(g) => Reply::LeaseGrant(LeaseGrantResponse {
            header,
            id: g.id(),
            ttl: g.ttl(),
            error: g.error().unwrap_or("").to_string(),
        }),
        ResponseBodyView::LeaseRevoke(_) => Reply::LeaseRevoke(LeaseRevokeResponse { header }),
        ResponseBodyView::LeaseKeepAlive(k) => Reply::LeaseKeepAlive(LeaseKeepAliveResponse {
            header,
            id: k.id(),
            ttl: k.ttl(),
        }),
        ResponseBodyView::LeaseTimeToLive(t) => Reply::LeaseTimeToLive(LeaseTimeToLiveResponse {
            header,
            id: t.id(),
            ttl: t.ttl(),
            granted_ttl: t.granted_ttl(),
            keys: t
                .keys()
                .into_iter()
                .flatten()
                .map(|k| cairn_wire::bytes(k.key()).to_vec())
                .collect(),
        }),
        ResponseBodyView::Watch(w) => Reply::Watch(WatchResponse {
            header,
            watch_id: w.watch_id(),
            created: w.created(),
            canceled: w.canceled(),
            compact_revision: w.compact_revision(),
            cancel_reason: w.cancel_reason().unwrap_or("").to_string(),
            fragment: w.fragment(),
            events: w
                .events()
                .into_iter()
                .flatten()
                .map(|e| Event {
                    kind: if e.type_() == rpc::EventType::Delete {
                        EventType::Delete
                    } else {
                        EventType::Put
                    },
                    kv: e.kv().map(kv_from).unwrap_or_default(),
                    prev_kv: e.prev_kv().map(kv_from),
                })
                .collect(),
        }),
        ResponseBodyView::MemberAdd(m) => Reply::MemberAdd(MemberAddResponse {
            header,
            member: m.member().map(member_from).unwrap_or_default(),
            members: m.members().into_iter().flatten().map(member_from).collect(),
        }),
        ResponseBodyView::MemberRemove(m) => Reply::MemberChange(MemberListResponse {
            header,
            members: m.members().into_iter().flatten().map(member_from).collect(),
        }),
        ResponseBodyView::MemberUpdate(m) => Reply::MemberChange(MemberListResponse {
            header,
            members: m.members().into_iter().flatten().map(member_from).collect(),
        }),
        ResponseBodyView::MemberPromote(m) => Reply::MemberChange(MemberListResponse {
            header,
            members: m.members().into_iter().flatten().map(member_from).collect(),
        }),
        ResponseBodyView::HashKv(h) => Reply::HashKv(HashKvResponse {
            header,
            hash: h.hash(),
            compact_revision: h.compact_revision(),
            hash_revision: h.hash_revision(),
        }),
        ResponseBodyView::Defragment(_) | ResponseBodyView::MoveLeader(_) => {
            Reply::Empty(EmptyResponse { header })
        }
        ResponseBodyView::LeaseLeases(l) => Reply::LeaseLeases(LeaseLeasesResponse {
            header,
            leases: l.leases().into_iter().flatten().collect(),
        }),
        ResponseBodyView::AuthStatus(a) => Reply::AuthStatus(AuthStatusResponse {
            header,
            enabled: a.enabled(),
            auth_revision: a.auth_revision(),
        }),
        ResponseBodyView::Authenticate(a) => Reply::Authenticate(AuthenticateResponse {
            header,
            token: a.token().unwrap_or("").to_string(),
        }),
        ResponseBodyView::UserGet(u) => Reply::UserGet(UserGetResponse {
            header,
            roles: strings_from(u.roles()),
        }),
        ResponseBodyView::UserList(u) => Reply::UserList(UserListResponse {
            header,
            users: strings_from(u.users()),
        }),
        ResponseBodyView::RoleGet(r) => Reply::RoleGet(RoleGetResponse {
            header,
            perm: r
                .perm()
                .into_iter()
                .flatten()
                .map(permission_from)
                .collect(),
        }),
        ResponseBodyView::RoleList(r) => Reply::RoleList(RoleListResponse {
            header,
            roles: strings_from(r.roles()),
        }),
        ResponseBodyView::AuthEnable(_)
        | ResponseBodyView::AuthDisable(_)
        | ResponseBodyView::UserAdd(_)
        | ResponseBodyView::UserDelete(_)
        | ResponseBodyView::UserChangePassword(_)
        | ResponseBodyView::UserGrantRole(_)
        | ResponseBodyView::UserRevokeRole(_)
        | ResponseBodyView::RoleAdd(_)
        | ResponseBodyView::RoleDelete(_)
        | ResponseBodyView::RoleGrantPermission(_)
        | ResponseBodyView::RoleRevokePermission(_) => Reply::AuthChange(AuthResponse { header }),
        other => {
            return Err(Error::Protocol {
                endpoint: String::new(),
                reason: format!("unexpected {} to a unary request", other.type_name()),
            })
        }
    })
}
