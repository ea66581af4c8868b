//! Authentication and role-based access control, as etcd has them.
//!
//! - [`store`]: users, roles and permissions, replicated through the log and
//!   kept in snapshots.
//! - [`token`]: simple tokens, handed out by Authenticate.
//! - [`perm`]: key-range sets and coverage.
//!
//! Where each check happens, and why there is no gap between check and use:
//!
//! - A request's token is turned into an [`AuthInfo`] (user, auth revision)
//!   when the request arrives.
//! - A logged request carries that `AuthInfo` in its log envelope. Its
//!   permissions are checked when it applies, against the auth store as of
//!   that log position, the same way on every member. A request that
//!   crossed a permission change (its revision is older than the store's)
//!   is refused with "revision of auth store is old", and the client
//!   retries. This is etcd's scheme.
//! - A read is checked when it is served, after its read barrier, against
//!   a store at least as new as any change acknowledged before the read
//!   began.
//! - A watch is checked when it is created, over its whole key range. Its
//!   events and their previous values all lie inside that range.

mod flags;
pub mod jwt;
pub mod perm;
pub mod store;
pub mod token;

use cairn_wire::{bytes, rpc, RequestBodyView, RequestOpView};

use crate::mvcc::Mvcc;
pub use flags::AuthFlags;
pub use store::{AuthStore, PermKind, Permission, ROOT_ROLE, ROOT_USER};

/// etcd's auth errors, with its codes and texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    RootUserNotExist,
    RootRoleNotExist,
    UserAlreadyExist,
    UserEmpty,
    UserNotFound,
    RoleAlreadyExist,
    RoleNotFound,
    RoleEmpty,
    AuthFailed,
    PermissionNotGiven,
    PermissionDenied,
    RoleNotGranted,
    PermissionNotGranted,
    AuthNotEnabled,
    InvalidAuthToken,
    InvalidAuthMgmt,
    AuthOldRevision,
    /// A limit of the auth store (see `limits.rs`) would be passed.
    StoreFull,
}

impl AuthError {
    pub fn code(self) -> rpc::ErrorCode {
        use rpc::ErrorCode as C;
        match self {
            AuthError::UserEmpty
            | AuthError::RoleEmpty
            | AuthError::AuthFailed
            | AuthError::PermissionNotGiven
            | AuthError::InvalidAuthMgmt
            | AuthError::AuthOldRevision => C::InvalidArgument,
            AuthError::PermissionDenied => C::PermissionDenied,
            AuthError::InvalidAuthToken => C::Unauthenticated,
            AuthError::StoreFull => C::ResourceExhausted,
            _ => C::FailedPrecondition,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            AuthError::RootUserNotExist => "etcdserver: root user does not exist",
            AuthError::RootRoleNotExist => "etcdserver: root user does not have root role",
            AuthError::UserAlreadyExist => "etcdserver: user name already exists",
            AuthError::UserEmpty => "etcdserver: user name is empty",
            AuthError::UserNotFound => "etcdserver: user name not found",
            AuthError::RoleAlreadyExist => "etcdserver: role name already exists",
            AuthError::RoleNotFound => "etcdserver: role name not found",
            AuthError::RoleEmpty => "etcdserver: role name is empty",
            AuthError::AuthFailed => {
                "etcdserver: authentication failed, invalid user ID or password"
            }
            AuthError::PermissionNotGiven => "etcdserver: permission not given",
            AuthError::PermissionDenied => "etcdserver: permission denied",
            AuthError::RoleNotGranted => "etcdserver: role is not granted to the user",
            AuthError::PermissionNotGranted => "etcdserver: permission is not granted to the role",
            AuthError::AuthNotEnabled => "etcdserver: authentication is not enabled",
            AuthError::InvalidAuthToken => "etcdserver: invalid auth token",
            AuthError::InvalidAuthMgmt => "etcdserver: invalid auth management",
            AuthError::AuthOldRevision => "etcdserver: revision of auth store is old",
            AuthError::StoreFull => "etcdserver: too many users, roles or permissions",
        }
    }

    pub fn pair(self) -> (rpc::ErrorCode, String) {
        (self.code(), self.message().to_string())
    }
}

/// Who sent a request, and the auth revision it was admitted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    pub user: String,
    pub revision: u64,
}

/// Bit set in a log envelope's sequence number when an auth section follows
/// the envelope. Sequence numbers never reach it; the name-publishing
/// entries use `u64::MAX`, which is tested before this bit.
pub const ENVELOPE_AUTH_FLAG: u64 = 1 << 62;

/// The auth section of a log envelope: revision, then the user name with a
/// u16 length.
pub fn encode_envelope_section(info: &AuthInfo, out: &mut Vec<u8>) {
    let name = info.user.as_bytes();
    let len = u16::try_from(name.len()).expect("user names are bounded by AUTH_NAME_BYTES_MAX");
    out.extend_from_slice(&info.revision.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(name);
}

/// The auth section at the start of `b`, and the bytes after it.
pub fn decode_envelope_section(b: &[u8]) -> Option<(AuthInfo, &[u8])> {
    if b.len() < 10 {
        return None;
    }
    let mut r = [0u8; 8];
    r.copy_from_slice(&b[..8]);
    let len = usize::from(u16::from_le_bytes([b[8], b[9]]));
    let name = b.get(10..10 + len)?;
    let user = std::str::from_utf8(name).ok()?.to_string();
    Some((
        AuthInfo {
            user,
            revision: u64::from_le_bytes(r),
        },
        &b[10 + len..],
    ))
}

/// What a request needs beyond a valid token.
enum Need<'a> {
    /// Any authenticated user.
    User,
    /// The root role.
    Admin,
    Read(&'a [u8], &'a [u8]),
    Write(&'a [u8], &'a [u8]),
}

impl AuthStore {
    /// Whether `info` may do what `need` says, with etcd's errors.
    fn permits(&self, info: Option<&AuthInfo>, need: &Need<'_>) -> Result<(), AuthError> {
        if !self.enabled() {
            return Ok(());
        }
        let info = info.ok_or(AuthError::UserEmpty)?;
        if info.revision < self.revision() {
            return Err(AuthError::AuthOldRevision);
        }
        let Some(m) = self.merged(&info.user) else {
            return Err(match need {
                Need::Admin => AuthError::UserNotFound,
                _ => AuthError::PermissionDenied,
            });
        };
        let ok = m.root
            || match need {
                Need::User => true,
                Need::Admin => false,
                Need::Read(k, e) => m.read.covers(k, e),
                Need::Write(k, e) => m.write.covers(k, e),
            };
        if ok {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    pub fn check_admin(&self, info: Option<&AuthInfo>) -> Result<(), AuthError> {
        self.permits(info, &Need::Admin)
    }

    pub fn check_user(&self, info: Option<&AuthInfo>) -> Result<(), AuthError> {
        self.permits(info, &Need::User)
    }

    pub fn check_read(
        &self,
        info: Option<&AuthInfo>,
        key: &[u8],
        end: &[u8],
    ) -> Result<(), AuthError> {
        self.permits(info, &Need::Read(key, end))
    }

    /// Writing the keys of a lease (to revoke it, or to attach another key
    /// to it): the user must be able to write every key it holds.
    fn check_lease_keys(
        &self,
        info: Option<&AuthInfo>,
        mvcc: &Mvcc,
        lease: i64,
        need_write: bool,
    ) -> Result<(), AuthError> {
        if !self.enabled() || lease == 0 || self.check_admin(info).is_ok() {
            return Ok(());
        }
        for key in mvcc.keys_with_lease(lease) {
            if need_write {
                self.permits(info, &Need::Write(key, b""))?;
            } else {
                self.permits(info, &Need::Read(key, b""))?;
            }
        }
        Ok(())
    }

    fn check_ops(
        &self,
        info: Option<&AuthInfo>,
        mvcc: &Mvcc,
        ops: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<rpc::RequestOp<'_>>>>,
    ) -> Result<(), AuthError> {
        for op in RequestOpView::all(ops) {
            // Every op was verified on arrival; one that is not is denied.
            let op = op.map_err(|_| AuthError::PermissionDenied)?;
            match op {
                RequestOpView::Range(r) => {
                    self.permits(info, &Need::Read(bytes(r.key()), bytes(r.range_end())))?
                }
                RequestOpView::Put(p) => self.check_put(info, mvcc, p)?,
                RequestOpView::DeleteRange(d) => self.check_delete(info, d)?,
                RequestOpView::Txn(t) => self.check_txn(info, mvcc, t)?,
            }
        }
        Ok(())
    }

    fn check_put(
        &self,
        info: Option<&AuthInfo>,
        mvcc: &Mvcc,
        p: rpc::PutRequest<'_>,
    ) -> Result<(), AuthError> {
        let key = bytes(p.key());
        self.permits(info, &Need::Write(key, b""))?;
        // Attaching a key to a lease whose keys the user cannot write
        // would let them revoke it with the others' keys.
        self.check_lease_keys(info, mvcc, p.lease(), true)?;
        if p.prev_kv() {
            self.permits(info, &Need::Read(key, b""))?;
        }
        Ok(())
    }

    fn check_delete(
        &self,
        info: Option<&AuthInfo>,
        d: rpc::DeleteRangeRequest<'_>,
    ) -> Result<(), AuthError> {
        let (key, end) = (bytes(d.key()), bytes(d.range_end()));
        self.permits(info, &Need::Write(key, end))?;
        if d.prev_kv() {
            self.permits(info, &Need::Read(key, end))?;
        }
        Ok(())
    }

    fn check_txn(
        &self,
        info: Option<&AuthInfo>,
        mvcc: &Mvcc,
        t: rpc::TxnRequest<'_>,
    ) -> Result<(), AuthError> {
        // A compare reveals whether it held: it needs READ too.
        for c in t.compare().into_iter().flatten() {
            self.permits(info, &Need::Read(bytes(c.key()), bytes(c.range_end())))?;
        }
        self.check_ops(info, mvcc, t.success())?;
        self.check_ops(info, mvcc, t.failure())
    }

    /// The check for any request that is not an auth-management request
    /// (those are checked in [`Self::check_auth_request`]). `mvcc` gives
    /// the keys of leases.
    pub fn check_request(
        &self,
        info: Option<&AuthInfo>,
        body: &RequestBodyView<'_>,
        mvcc: &Mvcc,
    ) -> Result<(), AuthError> {
        if !self.enabled() {
            return Ok(());
        }
        match body {
            RequestBodyView::Range(r) => {
                self.permits(info, &Need::Read(bytes(r.key()), bytes(r.range_end())))
            }
            RequestBodyView::Put(p) => self.check_put(info, mvcc, *p),
            RequestBodyView::DeleteRange(d) => self.check_delete(info, *d),
            RequestBodyView::Txn(t) => self.check_txn(info, mvcc, *t),
            RequestBodyView::WatchCreate(w) => {
                // prev_kv reveals only keys inside the same range.
                self.permits(info, &Need::Read(bytes(w.key()), bytes(w.range_end())))
            }
            RequestBodyView::LeaseRevoke(r) => {
                self.check_user(info)?;
                self.check_lease_keys(info, mvcc, r.id(), true)
            }
            RequestBodyView::LeaseTimeToLive(t) => {
                self.check_user(info)?;
                self.check_lease_keys(info, mvcc, t.id(), false)
            }
            RequestBodyView::Alarm(a) if a.action() == rpc::AlarmAction::Get => {
                self.check_user(info)
            }
            RequestBodyView::Alarm(_)
            | RequestBodyView::HashKv(_)
            | RequestBodyView::Snapshot(_)
            | RequestBodyView::Defragment(_)
            | RequestBodyView::MoveLeader(_)
            | RequestBodyView::MemberAdd(_)
            | RequestBodyView::MemberRemove(_)
            | RequestBodyView::MemberUpdate(_)
            | RequestBodyView::MemberPromote(_) => self.check_admin(info),
            // Listing members needs no user, as in etcd (clients discover
            // endpoints before they authenticate).
            RequestBodyView::MemberList(_) => Ok(()),
            RequestBodyView::WatchCancel(_) | RequestBodyView::WatchProgress(_) => Ok(()),
            // Everything else (compaction, status, lease grant, keep-alive,
            // lease list): any authenticated user, as in etcd.
            _ => self.check_user(info),
        }
    }

    /// The check for an auth-management request. Reading one's own user or
    /// one's own roles needs no root role, as in etcd.
    pub fn check_auth_request(
        &self,
        info: Option<&AuthInfo>,
        body: &RequestBodyView<'_>,
    ) -> Result<(), AuthError> {
        match body {
            RequestBodyView::AuthStatus(_) | RequestBodyView::Authenticate(_) => Ok(()),
            RequestBodyView::UserGet(g) => {
                let admin = self.check_admin(info);
                match (admin, info) {
                    (Err(_), Some(i)) if g.name() == Some(i.user.as_str()) => {
                        self.check_user(Some(i))
                    }
                    (r, _) => r,
                }
            }
            RequestBodyView::RoleGet(g) => {
                let admin = self.check_admin(info);
                let own = info
                    .and_then(|i| self.user(&i.user))
                    .is_some_and(|u| u.roles.contains(g.role().unwrap_or("")));
                match admin {
                    Err(_) if own => self.check_user(info),
                    r => r,
                }
            }
            _ => self.check_admin(info),
        }
    }
}

/// Whether a request is one of the auth-management requests.
pub fn is_auth_request(body: &RequestBodyView<'_>) -> bool {
    matches!(
        body,
        RequestBodyView::AuthEnable(_)
            | RequestBodyView::AuthDisable(_)
            | RequestBodyView::AuthStatus(_)
            | RequestBodyView::Authenticate(_)
            | RequestBodyView::UserAdd(_)
            | RequestBodyView::UserGet(_)
            | RequestBodyView::UserList(_)
            | RequestBodyView::UserDelete(_)
            | RequestBodyView::UserChangePassword(_)
            | RequestBodyView::UserGrantRole(_)
            | RequestBodyView::UserRevokeRole(_)
            | RequestBodyView::RoleAdd(_)
            | RequestBodyView::RoleGet(_)
            | RequestBodyView::RoleList(_)
            | RequestBodyView::RoleDelete(_)
            | RequestBodyView::RoleGrantPermission(_)
            | RequestBodyView::RoleRevokePermission(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_section_round_trips() {
        let info = AuthInfo {
            user: "alice".into(),
            revision: 42,
        };
        let mut b = Vec::new();
        encode_envelope_section(&info, &mut b);
        b.extend_from_slice(b"frame");
        let (d, rest) = decode_envelope_section(&b).unwrap();
        assert_eq!(d, info);
        assert_eq!(rest, b"frame");
        assert!(decode_envelope_section(&b[..12]).is_none());
    }

    #[test]
    fn a_request_older_than_a_permission_change_is_refused() {
        let mut s = AuthStore::new();
        s.user_add(ROOT_USER, Some("h".into())).unwrap();
        s.user_grant_role(ROOT_USER, ROOT_ROLE).unwrap();
        s.user_add("u", Some("h".into())).unwrap();
        s.role_add("r").unwrap();
        s.role_grant_permission(
            "r",
            Permission {
                kind: PermKind::ReadWrite,
                key: b"k".to_vec(),
                range_end: Vec::new(),
            },
        )
        .unwrap();
        s.user_grant_role("u", "r").unwrap();
        s.enable().unwrap();
        let info = AuthInfo {
            user: "u".into(),
            revision: s.revision(),
        };
        assert_eq!(s.check_read(Some(&info), b"k", b""), Ok(()));
        assert_eq!(
            s.check_read(Some(&info), b"j", b""),
            Err(AuthError::PermissionDenied)
        );
        assert_eq!(s.check_read(None, b"k", b""), Err(AuthError::UserEmpty));
        // Admitted before the role lost its grant, applied after.
        s.role_revoke_permission("r", b"k", b"").unwrap();
        assert_eq!(
            s.check_read(Some(&info), b"k", b""),
            Err(AuthError::AuthOldRevision)
        );
        let now = AuthInfo {
            revision: s.revision(),
            ..info
        };
        assert_eq!(
            s.check_read(Some(&now), b"k", b""),
            Err(AuthError::PermissionDenied)
        );
        assert_eq!(s.check_admin(Some(&now)), Err(AuthError::PermissionDenied));
        s.disable();
        assert_eq!(
            s.check_read(None, b"j", b""),
            Ok(()),
            "auth off checks nothing"
        );
    }

    #[test]
    fn messages_are_etcds() {
        assert_eq!(
            AuthError::PermissionDenied.pair(),
            (
                rpc::ErrorCode::PermissionDenied,
                "etcdserver: permission denied".to_string()
            )
        );
        assert_eq!(
            AuthError::InvalidAuthToken.code(),
            rpc::ErrorCode::Unauthenticated
        );
        assert_eq!(
            AuthError::AuthOldRevision.code(),
            rpc::ErrorCode::InvalidArgument
        );
    }
}
