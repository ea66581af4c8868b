//! Auth requests on the wire: the request type (whose `Debug` hides
//! passwords), its encoding, and the decoding of permissions.

use cairn_wire::{rpc, Encoder};

use crate::auth::{Permission, PermissionType};

/// A request of the Auth service.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum AuthRequest {
    Enable,
    Disable,
    Status,
    Authenticate {
        name: String,
        password: String,
    },
    UserAdd {
        name: String,
        password: String,
        no_password: bool,
    },
    UserGet {
        name: String,
    },
    UserList,
    UserDelete {
        name: String,
    },
    UserChangePassword {
        name: String,
        password: String,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        user: String,
        role: String,
    },
    RoleAdd {
        name: String,
    },
    RoleGet {
        name: String,
    },
    RoleList,
    RoleDelete {
        name: String,
    },
    RoleGrantPermission {
        name: String,
        perm: Permission,
    },
    RoleRevokePermission {
        role: String,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
}

/// Passwords never reach a log through `Debug`.
impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthRequest::Authenticate { name, .. } => f
                .debug_struct("Authenticate")
                .field("name", name)
                .finish_non_exhaustive(),
            AuthRequest::UserAdd { name, .. } => f
                .debug_struct("UserAdd")
                .field("name", name)
                .finish_non_exhaustive(),
            AuthRequest::UserChangePassword { name, .. } => f
                .debug_struct("UserChangePassword")
                .field("name", name)
                .finish_non_exhaustive(),
            other => f.write_str(other.kind()),
        }
    }
}

impl AuthRequest {
    fn kind(&self) -> &'static str {
        match self {
            AuthRequest::Enable => "AuthEnable",
            AuthRequest::Disable => "AuthDisable",
            AuthRequest::Status => "AuthStatus",
            AuthRequest::Authenticate { .. } => "Authenticate",
            AuthRequest::UserAdd { .. } => "UserAdd",
            AuthRequest::UserGet { .. } => "UserGet",
            AuthRequest::UserList => "UserList",
            AuthRequest::UserDelete { .. } => "UserDelete",
            AuthRequest::UserChangePassword { .. } => "UserChangePassword",
            AuthRequest::UserGrantRole { .. } => "UserGrantRole",
            AuthRequest::UserRevokeRole { .. } => "UserRevokeRole",
            AuthRequest::RoleAdd { .. } => "RoleAdd",
            AuthRequest::RoleGet { .. } => "RoleGet",
            AuthRequest::RoleList => "RoleList",
            AuthRequest::RoleDelete { .. } => "RoleDelete",
            AuthRequest::RoleGrantPermission { .. } => "RoleGrantPermission",
            AuthRequest::RoleRevokePermission { .. } => "RoleRevokePermission",
        }
    }

    pub(crate) fn is_read_only(&self) -> bool {
        matches!(
            self,
            AuthRequest::Status
                | AuthRequest::UserGet { .. }
                | AuthRequest::UserList
                | AuthRequest::RoleGet { .. }
                | AuthRequest::RoleList
        )
    }
}

pub(crate) fn encode_auth(enc: &mut Encoder, id: u64, request: &AuthRequest) -> Vec<u8> {
    match request {
        AuthRequest::Enable => enc.auth_enable_request(id),
        AuthRequest::Disable => enc.auth_disable_request(id),
        AuthRequest::Status => enc.auth_status_request(id),
        AuthRequest::Authenticate { name, password } => {
            enc.authenticate_request(id, name, password)
        }
        AuthRequest::UserAdd {
            name,
            password,
            no_password,
        } => enc.user_add_request(id, name, password, *no_password),
        AuthRequest::UserGet { name } => enc.user_get_request(id, name),
        AuthRequest::UserList => enc.user_list_request(id),
        AuthRequest::UserDelete { name } => enc.user_delete_request(id, name),
        AuthRequest::UserChangePassword { name, password } => {
            enc.user_change_password_request(id, name, password)
        }
        AuthRequest::UserGrantRole { user, role } => enc.user_grant_role_request(id, user, role),
        AuthRequest::UserRevokeRole { user, role } => enc.user_revoke_role_request(id, user, role),
        AuthRequest::RoleAdd { name } => enc.role_add_request(id, name),
        AuthRequest::RoleGet { name } => enc.role_get_request(id, name),
        AuthRequest::RoleList => enc.role_list_request(id),
        AuthRequest::RoleDelete { name } => enc.role_delete_request(id, name),
        AuthRequest::RoleGrantPermission { name, perm } => {
            let wire = cairn_wire::PermissionRef {
                perm_type: match perm.perm_type {
                    PermissionType::Read => rpc::PermissionType::Read,
                    PermissionType::Write => rpc::PermissionType::Write,
                    PermissionType::ReadWrite => rpc::PermissionType::ReadWrite,
                },
                key: &perm.key,
                range_end: &perm.range_end,
            };
            enc.role_grant_permission_request(id, name, &wire)
        }
        AuthRequest::RoleRevokePermission {
            role,
            key,
            range_end,
        } => enc.role_revoke_permission_request(id, role, key, range_end),
    }
    .to_vec()
}

pub(crate) fn permission_from(p: rpc::Permission<'_>) -> Permission {
    let r = cairn_wire::PermissionRef::from(p);
    Permission {
        perm_type: match r.perm_type {
            rpc::PermissionType::Write => PermissionType::Write,
            rpc::PermissionType::ReadWrite => PermissionType::ReadWrite,
            _ => PermissionType::Read,
        },
        key: r.key.to_vec(),
        range_end: r.range_end.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_the_user_but_never_the_password() {
        let requests = [
            AuthRequest::Authenticate {
                name: "alice".into(),
                password: "s3cret".into(),
            },
            AuthRequest::UserAdd {
                name: "alice".into(),
                password: "s3cret".into(),
                no_password: false,
            },
            AuthRequest::UserChangePassword {
                name: "alice".into(),
                password: "s3cret".into(),
            },
        ];
        for r in requests {
            let shown = format!("{:?}", crate::codec::Request::Auth(r));
            assert!(shown.contains("alice"), "{shown}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }
}
