//! Unary calls of every service: decode the protobuf request, encode the
//! native one, wait for the shard's answer, translate it back. Methods
//! cairn does not serve answer `Unimplemented` with the reason.

use bytes::Bytes;
use cairn_wire::etcdpb::{self as pb, path};
use cairn_wire::{decode_response, rpc, Header, ResponseBodyView};
use prost::Message;

use super::codec::{frame, Status};
use super::convert::{header, strings};
use super::recipe::Cancel;
use super::session::{Caller, Session};
use super::{auth, election, kv, lock};

pub(super) fn decode<M: Message + Default>(msg: Bytes) -> Result<M, Status> {
    M::decode(msg).map_err(Status::malformed)
}

/// Send the encoded request and translate the answer with `conv`.
pub(super) async fn answer<T>(
    s: &Caller<'_>,
    (id, frame): (u64, Bytes),
    conv: impl FnOnce(&Header, &ResponseBodyView<'_>) -> Result<T, Status>,
) -> Result<T, Status> {
    let resp = s.call(id, frame).await?;
    let view = decode_response(&resp).map_err(|e| Status::internal(e.to_string()))?;
    match view.body {
        Ok(body) => conv(&view.header, &body),
        Err(e) => Err(Status {
            code: e.code.0,
            message: e.message.to_owned(),
        }),
    }
}

pub(super) fn unexpected() -> Status {
    Status::internal("etcdserver: unexpected response type")
}

fn members(
    v: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<rpc::Member<'_>>>>,
) -> Vec<pb::Member> {
    v.into_iter().flatten().map(member).collect()
}

fn member(m: rpc::Member<'_>) -> pb::Member {
    pb::Member {
        id: m.id(),
        name: m.name().unwrap_or("").to_owned(),
        peer_urls: strings(m.peer_urls()),
        client_urls: strings(m.client_urls()),
        is_learner: m.is_learner(),
    }
}

fn member_list(h: &Header, body: &ResponseBodyView<'_>) -> Result<Bytes, Status> {
    let list = match body {
        ResponseBodyView::MemberList(r) => members(r.members()),
        ResponseBodyView::MemberRemove(r) => members(r.members()),
        ResponseBodyView::MemberUpdate(r) => members(r.members()),
        ResponseBodyView::MemberPromote(r) => members(r.members()),
        _ => return Err(unexpected()),
    };
    Ok(frame(&pb::MemberListResponse {
        header: Some(header(h)),
        members: list,
    }))
}

pub(super) fn header_only(h: &Header, _: &ResponseBodyView<'_>) -> Result<Bytes, Status> {
    Ok(frame(&pb::HeaderOnlyResponse {
        header: Some(header(h)),
    }))
}

/// Whether the member knows a leader (a Status round trip to the shard;
/// only calls that ask for it with `hasleader` pay it).
pub async fn has_leader(s: &Session) -> bool {
    let (id, f) = s.encode(|e, id| e.status_request(id));
    let Ok(answer) = s.call(id, f).await else {
        return false;
    };
    matches!(
        decode_response(&answer).map(|v| v.body),
        Ok(Ok(ResponseBodyView::Status(st))) if st.leader() != 0
    )
}

/// Whether `path` names a method this server knows how to stream.
pub fn is_streaming(p: &str) -> bool {
    matches!(
        p,
        path::WATCH | path::LEASE_KEEP_ALIVE | path::SNAPSHOT | path::OBSERVE
    )
}

/// Whether `path` names a unary method of the Lock or Election services,
/// which may wait and so watch for the client giving up.
pub fn is_recipe(p: &str) -> bool {
    p.starts_with("/v3lockpb.Lock/") || p.starts_with("/v3electionpb.Election/")
}

/// Serve one unary call of the Lock or Election services.
pub async fn recipe(
    c: &Caller<'_>,
    cancel: &Cancel<'_>,
    p: &str,
    msg: Bytes,
) -> Result<Bytes, Status> {
    match p {
        path::LOCK => lock::lock(c, cancel, decode(msg)?).await,
        path::UNLOCK => lock::unlock(c, decode(msg)?).await,
        path::CAMPAIGN => election::campaign(c, cancel, decode(msg)?).await,
        path::PROCLAIM => election::proclaim(c, decode(msg)?).await,
        path::LEADER => election::leader(c, decode(msg)?).await,
        path::RESIGN => election::resign(c, decode(msg)?).await,
        _ => Err(unimplemented(p)),
    }
}

/// Serve one unary call.
pub async fn unary(s: &Caller<'_>, p: &str, msg: Bytes) -> Result<Bytes, Status> {
    match p {
        // Each request is translated in a block of its own: the decoded
        // request borrows the received bytes (and through them HTTP/2's
        // read buffer), which go before the call waits for the shard.
        path::KV_RANGE => {
            let req = {
                let r: pb::RangeRequest = decode(msg)?;
                let params = kv::range_params(&r)?;
                s.encode(|e, id| e.range_request(id, &params))
            };
            answer(s, req, kv::response).await
        }
        path::KV_PUT => {
            let req = {
                let r: pb::PutRequest = decode(msg)?;
                let params = kv::put_params(&r);
                s.encode(|e, id| e.put_request(id, &params))
            };
            answer(s, req, kv::response).await
        }
        path::KV_DELETE_RANGE => {
            let req = {
                let r: pb::DeleteRangeRequest = decode(msg)?;
                let params = kv::delete_params(&r);
                s.encode(|e, id| e.delete_range_request(id, &params))
            };
            answer(s, req, kv::response).await
        }
        path::KV_TXN => {
            let req = {
                let r: pb::TxnRequest = decode(msg)?;
                let arena = kv::TxnArena::default();
                let params = kv::txn_params(&arena, &r)?;
                s.encode(|e, id| e.txn_request(id, &params))
            };
            answer(s, req, kv::response).await
        }
        path::KV_COMPACT => {
            let r: pb::CompactionRequest = decode(msg)?;
            let req = s.encode(|e, id| e.compaction_request(id, r.revision, r.physical));
            answer(s, req, kv::response).await
        }
        path::LEASE_GRANT => {
            let r: pb::LeaseGrantRequest = decode(msg)?;
            let req = s.encode(|e, id| e.lease_grant_request(id, r.ttl, r.id));
            answer(s, req, |h, body| match body {
                ResponseBodyView::LeaseGrant(g) => Ok(frame(&pb::LeaseGrantResponse {
                    header: Some(header(h)),
                    id: g.id(),
                    ttl: g.ttl(),
                    error: g.error().unwrap_or("").to_owned(),
                })),
                _ => Err(unexpected()),
            })
            .await
        }
        path::LEASE_REVOKE => {
            let r: pb::LeaseRevokeRequest = decode(msg)?;
            let req = s.encode(|e, id| e.lease_revoke_request(id, r.id));
            answer(s, req, header_only).await
        }
        path::LEASE_TIME_TO_LIVE => {
            let r: pb::LeaseTimeToLiveRequest = decode(msg)?;
            let req = s.encode(|e, id| e.lease_time_to_live_request(id, r.id, r.keys));
            answer(s, req, |h, body| match body {
                ResponseBodyView::LeaseTimeToLive(t) => Ok(frame(&pb::LeaseTimeToLiveResponse {
                    header: Some(header(h)),
                    id: t.id(),
                    ttl: t.ttl(),
                    granted_ttl: t.granted_ttl(),
                    keys: t
                        .keys()
                        .into_iter()
                        .flatten()
                        .map(|k| Bytes::copy_from_slice(cairn_wire::bytes(k.key())))
                        .collect(),
                })),
                _ => Err(unexpected()),
            })
            .await
        }
        path::LEASE_LEASES => {
            let _: pb::LeaseLeasesRequest = decode(msg)?;
            let req = s.encode(|e, id| e.lease_leases_request(id));
            answer(s, req, |h, body| match body {
                ResponseBodyView::LeaseLeases(l) => Ok(frame(&pb::LeaseLeasesResponse {
                    header: Some(header(h)),
                    leases: l
                        .leases()
                        .into_iter()
                        .flatten()
                        .map(|id| pb::LeaseStatus { id })
                        .collect(),
                })),
                _ => Err(unexpected()),
            })
            .await
        }
        path::MEMBER_LIST => {
            let r: pb::MemberListRequest = decode(msg)?;
            let req = s.encode(|e, id| e.member_list_request(id, r.linearizable));
            answer(s, req, member_list).await
        }
        path::MEMBER_ADD => {
            let r: pb::MemberAddRequest = decode(msg)?;
            let urls: Vec<&str> = r.peer_urls.iter().map(String::as_str).collect();
            let req = s.encode(|e, id| e.member_add_request(id, &urls, r.is_learner));
            answer(s, req, |h, body| match body {
                ResponseBodyView::MemberAdd(a) => Ok(frame(&pb::MemberAddResponse {
                    header: Some(header(h)),
                    member: a.member().map(member),
                    members: members(a.members()),
                })),
                _ => Err(unexpected()),
            })
            .await
        }
        path::MEMBER_REMOVE => {
            let r: pb::MemberRemoveRequest = decode(msg)?;
            let req = s.encode(|e, id| e.member_remove_request(id, r.id));
            answer(s, req, member_list).await
        }
        path::MEMBER_UPDATE => {
            let r: pb::MemberUpdateRequest = decode(msg)?;
            let urls: Vec<&str> = r.peer_urls.iter().map(String::as_str).collect();
            let req = s.encode(|e, id| e.member_update_request(id, r.id, &urls));
            answer(s, req, member_list).await
        }
        path::MEMBER_PROMOTE => {
            let r: pb::MemberPromoteRequest = decode(msg)?;
            let req = s.encode(|e, id| e.member_promote_request(id, r.id));
            answer(s, req, member_list).await
        }
        path::STATUS => {
            let _: pb::StatusRequest = decode(msg)?;
            let req = s.encode(|e, id| e.status_request(id));
            answer(s, req, |h, body| match body {
                ResponseBodyView::Status(st) => Ok(frame(&status(h, st))),
                _ => Err(unexpected()),
            })
            .await
        }
        path::ALARM => {
            let r: pb::AlarmRequest = decode(msg)?;
            let action = rpc::AlarmAction(super::convert::enum_i8(r.action, 2, "alarm action")?);
            let alarm = rpc::AlarmType(super::convert::enum_i8(r.alarm, 2, "alarm type")?);
            let req = s.encode(|e, id| e.alarm_request(id, action, r.member_id, alarm));
            answer(s, req, |h, body| match body {
                ResponseBodyView::Alarm(a) => Ok(frame(&pb::AlarmResponse {
                    header: Some(header(h)),
                    alarms: a
                        .alarms()
                        .into_iter()
                        .flatten()
                        .map(|m| pb::AlarmMember {
                            member_id: m.member_id(),
                            alarm: i32::from(m.alarm().0),
                        })
                        .collect(),
                })),
                _ => Err(unexpected()),
            })
            .await
        }
        path::HASH_KV => {
            let r: pb::HashKvRequest = decode(msg)?;
            let req = s.encode(|e, id| e.hash_kv_request(id, r.revision));
            answer(s, req, |h, body| match body {
                ResponseBodyView::HashKv(x) => Ok(frame(&pb::HashKvResponse {
                    header: Some(header(h)),
                    hash: x.hash(),
                    compact_revision: x.compact_revision(),
                })),
                _ => Err(unexpected()),
            })
            .await
        }
        path::DEFRAGMENT => {
            let _: pb::DefragmentRequest = decode(msg)?;
            let req = s.encode(|e, id| e.defragment_request(id));
            answer(s, req, header_only).await
        }
        path::MOVE_LEADER => {
            let r: pb::MoveLeaderRequest = decode(msg)?;
            let req = s.encode(|e, id| e.move_leader_request(id, r.target_id));
            answer(s, req, header_only).await
        }
        path::HEALTH_CHECK => {
            let r: pb::HealthCheckRequest = decode(msg)?;
            if !r.service.is_empty() {
                return Err(Status::new(rpc::ErrorCode::NotFound, "unknown service"));
            }
            Ok(frame(&pb::HealthCheckResponse {
                status: pb::ServingStatus::Serving as i32,
            }))
        }
        _ if p.starts_with("/etcdserverpb.Auth/") => auth::unary(s, p, msg).await,
        _ => Err(unimplemented(p)),
    }
}

fn status(h: &Header, st: &rpc::StatusResponse<'_>) -> pb::StatusResponse {
    pb::StatusResponse {
        header: Some(header(h)),
        version: crate::server::http::ETCD_SERVER_VERSION.to_owned(),
        db_size: st.db_size(),
        leader: st.leader(),
        raft_index: st.raft_index(),
        raft_term: st.raft_term(),
        raft_applied_index: st.raft_applied_index(),
        errors: strings(st.errors()),
        db_size_in_use: st.db_size_in_use(),
        is_learner: st.is_learner(),
    }
}

/// Why a method is not served.
pub fn unimplemented(p: &str) -> Status {
    let service = p.trim_start_matches('/').split('/').next().unwrap_or("");
    let reason = match service {
        // etcd's Hash is a CRC of its bolt database file, which cairn
        // does not have; HashKV is the comparison that means the same in
        // both.
        _ if p == path::HASH => {
            "cairn does not serve Hash (a hash of etcd's database file); use HashKV"
        }
        _ if p == path::HEALTH_WATCH => "cairn does not serve Health/Watch; use Health/Check",
        "etcdserverpb.KV"
        | "etcdserverpb.Watch"
        | "etcdserverpb.Lease"
        | "etcdserverpb.Cluster"
        | "etcdserverpb.Maintenance"
        | "etcdserverpb.Auth"
        | "v3lockpb.Lock"
        | "v3electionpb.Election"
        | "grpc.health.v1.Health" => {
            return Status::unimplemented(format!("unknown method {}", method_name(p)));
        }
        _ => return Status::unimplemented(format!("unknown service {service}")),
    };
    Status::unimplemented(reason)
}

fn method_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}
