//! Views of server responses (client side).

use super::union_view;
use crate::error::WireError;
use crate::limits::RPC_VERIFY_DEPTH_MAX;
use crate::rpc;
use crate::types::Header;
use crate::verify::verified_root;

/// A failed request: a gRPC-style status code and etcd's message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorView<'a> {
    /// May be a value this build does not name; treat it as `Unknown`.
    pub code: rpc::ErrorCode,
    pub message: &'a str,
}

/// A verified response frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponseView<'a> {
    /// The id of the request answered, or of the request that opened the
    /// stream this message belongs to (watch, snapshot).
    pub id: u64,
    /// All zero if the server sent none (errors about unreadable frames).
    pub header: Header,
    /// The typed body, or the error the request failed with.
    pub body: Result<ResponseBodyView<'a>, ErrorView<'a>>,
    /// The whole root table, for fields added after this view was written.
    pub raw: rpc::Response<'a>,
}

/// Verifies `frame` (length prefix included) as a server response.
///
/// Errors: the frame fails verification, carries neither error nor body, or
/// holds a response type or txn operation this build does not know.
pub fn decode_response(frame: &[u8]) -> Result<ResponseView<'_>, WireError> {
    let raw = verified_root::<rpc::Response<'_>>(frame, RPC_VERIFY_DEPTH_MAX)?;
    response_view(raw)
}

/// Reads a response frame that [`decode_response`] has already accepted,
/// without running the flatbuffers verifier a second time; the checks on
/// the decoded body still run. For frames the server built itself and
/// reads again, such as answers on their way to a gRPC call.
///
/// # Safety
///
/// `frame` must hold exactly the bytes of a frame that [`decode_response`]
/// accepted, or that this crate's [`Encoder`](crate::Encoder) built. The
/// verifier is what keeps the accessors of an arbitrary buffer in bounds.
pub unsafe fn decode_verified_response(frame: &[u8]) -> Result<ResponseView<'_>, WireError> {
    // SAFETY: the caller guarantees the frame passed the verifier (or came
    // from the builder), which is the contract of `root_unchecked`.
    let raw = unsafe { flatbuffers::size_prefixed_root_unchecked::<rpc::Response<'_>>(frame) };
    response_view(raw)
}

fn response_view(raw: rpc::Response<'_>) -> Result<ResponseView<'_>, WireError> {
    let body = match raw.error() {
        Some(e) => Err(ErrorView {
            code: e.code(),
            message: e.message().unwrap_or(""),
        }),
        None => {
            let body = ResponseBodyView::new(raw)?;
            if let ResponseBodyView::Txn(t) = &body {
                check_txn(t)?;
            }
            Ok(body)
        }
    };
    Ok(ResponseView {
        id: raw.id(),
        header: raw.header().map(Header::from).unwrap_or_default(),
        body,
        raw,
    })
}

union_view! {
    /// The body of a successful response, by type.
    pub enum ResponseBodyView from rpc::Response.body_type as ResponseBody {
        missing: WireError::MissingBody,
        unknown: WireError::UnknownResponseType,
        Range(RangeResponse) = body_as_range_response,
        Put(PutResponse) = body_as_put_response,
        DeleteRange(DeleteRangeResponse) = body_as_delete_range_response,
        Txn(TxnResponse) = body_as_txn_response,
        Compaction(CompactionResponse) = body_as_compaction_response,
        Watch(WatchResponse) = body_as_watch_response,
        LeaseGrant(LeaseGrantResponse) = body_as_lease_grant_response,
        LeaseRevoke(LeaseRevokeResponse) = body_as_lease_revoke_response,
        LeaseKeepAlive(LeaseKeepAliveResponse) = body_as_lease_keep_alive_response,
        LeaseTimeToLive(LeaseTimeToLiveResponse) = body_as_lease_time_to_live_response,
        LeaseLeases(LeaseLeasesResponse) = body_as_lease_leases_response,
        MemberAdd(MemberAddResponse) = body_as_member_add_response,
        MemberRemove(MemberRemoveResponse) = body_as_member_remove_response,
        MemberUpdate(MemberUpdateResponse) = body_as_member_update_response,
        MemberList(MemberListResponse) = body_as_member_list_response,
        MemberPromote(MemberPromoteResponse) = body_as_member_promote_response,
        Status(StatusResponse) = body_as_status_response,
        Alarm(AlarmResponse) = body_as_alarm_response,
        HashKv(HashKVResponse) = body_as_hash_kvresponse,
        Snapshot(SnapshotResponse) = body_as_snapshot_response,
        MoveLeader(MoveLeaderResponse) = body_as_move_leader_response,
        Defragment(DefragmentResponse) = body_as_defragment_response,
        AuthEnable(AuthEnableResponse) = body_as_auth_enable_response,
        AuthDisable(AuthDisableResponse) = body_as_auth_disable_response,
        AuthStatus(AuthStatusResponse) = body_as_auth_status_response,
        Authenticate(AuthenticateResponse) = body_as_authenticate_response,
        UserAdd(AuthUserAddResponse) = body_as_auth_user_add_response,
        UserGet(AuthUserGetResponse) = body_as_auth_user_get_response,
        UserList(AuthUserListResponse) = body_as_auth_user_list_response,
        UserDelete(AuthUserDeleteResponse) = body_as_auth_user_delete_response,
        UserChangePassword(AuthUserChangePasswordResponse) = body_as_auth_user_change_password_response,
        UserGrantRole(AuthUserGrantRoleResponse) = body_as_auth_user_grant_role_response,
        UserRevokeRole(AuthUserRevokeRoleResponse) = body_as_auth_user_revoke_role_response,
        RoleAdd(AuthRoleAddResponse) = body_as_auth_role_add_response,
        RoleGet(AuthRoleGetResponse) = body_as_auth_role_get_response,
        RoleList(AuthRoleListResponse) = body_as_auth_role_list_response,
        RoleDelete(AuthRoleDeleteResponse) = body_as_auth_role_delete_response,
        RoleGrantPermission(AuthRoleGrantPermissionResponse) = body_as_auth_role_grant_permission_response,
        RoleRevokePermission(AuthRoleRevokePermissionResponse) = body_as_auth_role_revoke_permission_response,
    }
}

union_view! {
    /// The result of one operation of the txn branch that ran.
    pub enum ResponseOpView from rpc::ResponseOp.response_type as ResponseOpKind {
        missing: WireError::MissingTxnOp,
        unknown: WireError::UnknownTxnOpType,
        Range(RangeResponse) = response_as_range_response,
        Put(PutResponse) = response_as_put_response,
        DeleteRange(DeleteRangeResponse) = response_as_delete_range_response,
        Txn(TxnResponse) = response_as_txn_response,
    }
}

impl<'a> ResponseOpView<'a> {
    /// The results of a txn (`txn.responses()`). In a view from
    /// [`decode_response`] every item is `Ok`.
    pub fn all(
        ops: Option<flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<rpc::ResponseOp<'a>>>>,
    ) -> impl Iterator<Item = Result<ResponseOpView<'a>, WireError>> + 'a {
        ops.into_iter().flatten().map(ResponseOpView::new)
    }
}

/// Recursion depth is bounded by the verifier's depth limit.
fn check_txn(t: &rpc::TxnResponse<'_>) -> Result<(), WireError> {
    for op in ResponseOpView::all(t.responses()) {
        if let ResponseOpView::Txn(inner) = op? {
            check_txn(&inner)?;
        }
    }
    Ok(())
}
