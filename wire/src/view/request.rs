//! Views of client requests (server side).

use super::{known_enum, union_view};
use crate::error::WireError;
use crate::limits::RPC_VERIFY_DEPTH_MAX;
use crate::rpc;
use crate::verify::verified_root;

/// A verified request frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestView<'a> {
    /// Chosen by the client; echo it in every response to this request.
    pub id: u64,
    /// Auth token, if the client sent one.
    pub token: Option<&'a str>,
    pub body: RequestBodyView<'a>,
    /// The whole root table, for fields added after this view was written.
    pub raw: rpc::Request<'a>,
}

/// Verifies `frame` (length prefix included, as returned by
/// [`FrameDecoder::next_frame`](crate::FrameDecoder::next_frame)) as a client
/// request.
///
/// Errors: the frame fails verification, has no body, or holds a request
/// type, txn operation or enum value this build does not know. The frame is
/// then unusable, but the connection is not (answer with an error response;
/// the request id cannot be trusted, so use id 0).
pub fn decode_request(frame: &[u8]) -> Result<RequestView<'_>, WireError> {
    let raw = verified_root::<rpc::Request<'_>>(frame, RPC_VERIFY_DEPTH_MAX)?;
    let body = RequestBodyView::new(raw)?;
    check_body(&body)?;
    Ok(RequestView {
        id: raw.id(),
        token: raw.token(),
        body,
        raw,
    })
}

/// Reads a request frame that [`decode_request`] has already accepted,
/// without running the flatbuffers verifier a second time; the checks on
/// the decoded body still run. A server verifies a frame once where it
/// enters the process and hands it on; this is for the places it arrives
/// next.
///
/// # Safety
///
/// `frame` must hold exactly the bytes of a frame that [`decode_request`]
/// accepted, or that this crate's [`Encoder`](crate::Encoder) built. The
/// verifier is what keeps the accessors of an arbitrary buffer in bounds.
pub unsafe fn decode_verified_request(frame: &[u8]) -> Result<RequestView<'_>, WireError> {
    // SAFETY: the caller guarantees the frame passed the verifier (or came
    // from the builder), which is the contract of `root_unchecked`.
    let raw = unsafe { flatbuffers::size_prefixed_root_unchecked::<rpc::Request<'_>>(frame) };
    let body = RequestBodyView::new(raw)?;
    check_body(&body)?;
    Ok(RequestView {
        id: raw.id(),
        token: raw.token(),
        body,
        raw,
    })
}

union_view! {
    /// The body of a request, by type.
    pub enum RequestBodyView from rpc::Request.body_type as RequestBody {
        missing: WireError::MissingBody,
        unknown: WireError::UnknownRequestType,
        Range(RangeRequest) = body_as_range_request,
        Put(PutRequest) = body_as_put_request,
        DeleteRange(DeleteRangeRequest) = body_as_delete_range_request,
        Txn(TxnRequest) = body_as_txn_request,
        Compaction(CompactionRequest) = body_as_compaction_request,
        WatchCreate(WatchCreateRequest) = body_as_watch_create_request,
        WatchCancel(WatchCancelRequest) = body_as_watch_cancel_request,
        WatchProgress(WatchProgressRequest) = body_as_watch_progress_request,
        LeaseGrant(LeaseGrantRequest) = body_as_lease_grant_request,
        LeaseRevoke(LeaseRevokeRequest) = body_as_lease_revoke_request,
        LeaseKeepAlive(LeaseKeepAliveRequest) = body_as_lease_keep_alive_request,
        LeaseTimeToLive(LeaseTimeToLiveRequest) = body_as_lease_time_to_live_request,
        LeaseLeases(LeaseLeasesRequest) = body_as_lease_leases_request,
        MemberAdd(MemberAddRequest) = body_as_member_add_request,
        MemberRemove(MemberRemoveRequest) = body_as_member_remove_request,
        MemberUpdate(MemberUpdateRequest) = body_as_member_update_request,
        MemberList(MemberListRequest) = body_as_member_list_request,
        MemberPromote(MemberPromoteRequest) = body_as_member_promote_request,
        Status(StatusRequest) = body_as_status_request,
        Alarm(AlarmRequest) = body_as_alarm_request,
        HashKv(HashKVRequest) = body_as_hash_kvrequest,
        Snapshot(SnapshotRequest) = body_as_snapshot_request,
        MoveLeader(MoveLeaderRequest) = body_as_move_leader_request,
        Defragment(DefragmentRequest) = body_as_defragment_request,
        AuthEnable(AuthEnableRequest) = body_as_auth_enable_request,
        AuthDisable(AuthDisableRequest) = body_as_auth_disable_request,
        AuthStatus(AuthStatusRequest) = body_as_auth_status_request,
        Authenticate(AuthenticateRequest) = body_as_authenticate_request,
        UserAdd(AuthUserAddRequest) = body_as_auth_user_add_request,
        UserGet(AuthUserGetRequest) = body_as_auth_user_get_request,
        UserList(AuthUserListRequest) = body_as_auth_user_list_request,
        UserDelete(AuthUserDeleteRequest) = body_as_auth_user_delete_request,
        UserChangePassword(AuthUserChangePasswordRequest) = body_as_auth_user_change_password_request,
        UserGrantRole(AuthUserGrantRoleRequest) = body_as_auth_user_grant_role_request,
        UserRevokeRole(AuthUserRevokeRoleRequest) = body_as_auth_user_revoke_role_request,
        RoleAdd(AuthRoleAddRequest) = body_as_auth_role_add_request,
        RoleGet(AuthRoleGetRequest) = body_as_auth_role_get_request,
        RoleList(AuthRoleListRequest) = body_as_auth_role_list_request,
        RoleDelete(AuthRoleDeleteRequest) = body_as_auth_role_delete_request,
        RoleGrantPermission(AuthRoleGrantPermissionRequest) = body_as_auth_role_grant_permission_request,
        RoleRevokePermission(AuthRoleRevokePermissionRequest) = body_as_auth_role_revoke_permission_request,
    }
}

union_view! {
    /// One operation of a txn branch.
    pub enum RequestOpView from rpc::RequestOp.request_type as RequestOpKind {
        missing: WireError::MissingTxnOp,
        unknown: WireError::UnknownTxnOpType,
        Range(RangeRequest) = request_as_range_request,
        Put(PutRequest) = request_as_put_request,
        DeleteRange(DeleteRangeRequest) = request_as_delete_range_request,
        Txn(TxnRequest) = request_as_txn_request,
    }
}

impl<'a> RequestOpView<'a> {
    /// The operations of a txn branch (`txn.success()` or `txn.failure()`).
    /// In a view from [`decode_request`] every item is `Ok`.
    pub fn all(
        ops: Option<flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<rpc::RequestOp<'a>>>>,
    ) -> impl Iterator<Item = Result<RequestOpView<'a>, WireError>> + 'a {
        ops.into_iter().flatten().map(RequestOpView::new)
    }
}

/// Rejects what verification lets through but this build cannot act on.
fn check_body(body: &RequestBodyView<'_>) -> Result<(), WireError> {
    match body {
        RequestBodyView::Range(r) => check_range(r),
        RequestBodyView::Txn(t) => check_txn(t),
        RequestBodyView::WatchCreate(w) => {
            for f in w.filters().into_iter().flatten() {
                known_enum("filters", f.variant_name(), f.0.into())?;
            }
            Ok(())
        }
        RequestBodyView::Alarm(a) => {
            known_enum("action", a.action().variant_name(), a.action().0.into())?;
            known_enum("alarm", a.alarm().variant_name(), a.alarm().0.into())
        }
        RequestBodyView::RoleGrantPermission(g) => match g.perm() {
            Some(p) => known_enum(
                "perm_type",
                p.perm_type().variant_name(),
                p.perm_type().0.into(),
            ),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn check_range(r: &rpc::RangeRequest<'_>) -> Result<(), WireError> {
    known_enum(
        "sort_order",
        r.sort_order().variant_name(),
        r.sort_order().0.into(),
    )?;
    known_enum(
        "sort_target",
        r.sort_target().variant_name(),
        r.sort_target().0.into(),
    )
}

/// Recursion depth is bounded by the verifier's depth limit.
fn check_txn(t: &rpc::TxnRequest<'_>) -> Result<(), WireError> {
    for c in t.compare().into_iter().flatten() {
        known_enum("result", c.result().variant_name(), c.result().0.into())?;
        known_enum("target", c.target().variant_name(), c.target().0.into())?;
    }
    for op in RequestOpView::all(t.success()).chain(RequestOpView::all(t.failure())) {
        match op? {
            RequestOpView::Range(r) => check_range(&r)?,
            RequestOpView::Txn(t) => check_txn(&t)?,
            RequestOpView::Put(_) | RequestOpView::DeleteRange(_) => {}
        }
    }
    Ok(())
}
