//! Auth requests and responses.

use super::{opt_bytes, opt_str, str_vector, Builder, Encoder};
use crate::rpc;
use crate::types::{Header, PermissionRef};

/// Requests and responses without fields: one method each.
macro_rules! empty_messages {
    (requests { $($req_fn:ident => $req:ident,)* } responses { $($resp_fn:ident => $resp:ident,)* }) => {
        impl Encoder {
            $(
                pub fn $req_fn(&mut self, id: u64) -> &[u8] {
                    let fbb = self.begin();
                    let body = rpc::$req::create(fbb, &Default::default()).as_union_value();
                    self.finish_request(id, rpc::RequestBody::$req, body)
                }
            )*
            $(
                pub fn $resp_fn(&mut self, id: u64, header: &Header) -> &[u8] {
                    let fbb = self.begin();
                    let body = rpc::$resp::create(fbb, &Default::default()).as_union_value();
                    self.finish_response(id, header, rpc::ResponseBody::$resp, body)
                }
            )*
        }
    };
}

empty_messages! {
    requests {
        auth_enable_request => AuthEnableRequest,
        auth_disable_request => AuthDisableRequest,
        auth_status_request => AuthStatusRequest,
        user_list_request => AuthUserListRequest,
        role_list_request => AuthRoleListRequest,
    }
    responses {
        auth_enable_response => AuthEnableResponse,
        auth_disable_response => AuthDisableResponse,
        user_add_response => AuthUserAddResponse,
        user_delete_response => AuthUserDeleteResponse,
        user_change_password_response => AuthUserChangePasswordResponse,
        user_grant_role_response => AuthUserGrantRoleResponse,
        user_revoke_role_response => AuthUserRevokeRoleResponse,
        role_add_response => AuthRoleAddResponse,
        role_delete_response => AuthRoleDeleteResponse,
        role_grant_permission_response => AuthRoleGrantPermissionResponse,
        role_revoke_permission_response => AuthRoleRevokePermissionResponse,
    }
}

/// Requests whose fields are all strings, in the schema's field order.
macro_rules! string_requests {
    ($($fn:ident => $req:ident, $args:ident { $($field:ident),* },)*) => {
        impl Encoder {
            $(
                pub fn $fn(&mut self, id: u64, $($field: &str),*) -> &[u8] {
                    let fbb = self.begin();
                    $(let $field = opt_str(fbb, $field);)*
                    let body = rpc::$req::create(fbb, &rpc::$args { $($field),* }).as_union_value();
                    self.finish_request(id, rpc::RequestBody::$req, body)
                }
            )*
        }
    };
}

string_requests! {
    authenticate_request => AuthenticateRequest, AuthenticateRequestArgs { name, password },
    user_get_request => AuthUserGetRequest, AuthUserGetRequestArgs { name },
    user_delete_request => AuthUserDeleteRequest, AuthUserDeleteRequestArgs { name },
    user_change_password_request =>
        AuthUserChangePasswordRequest, AuthUserChangePasswordRequestArgs { name, password },
    user_grant_role_request => AuthUserGrantRoleRequest, AuthUserGrantRoleRequestArgs { user, role },
    user_revoke_role_request =>
        AuthUserRevokeRoleRequest, AuthUserRevokeRoleRequestArgs { name, role },
    role_add_request => AuthRoleAddRequest, AuthRoleAddRequestArgs { name },
    role_get_request => AuthRoleGetRequest, AuthRoleGetRequestArgs { role },
    role_delete_request => AuthRoleDeleteRequest, AuthRoleDeleteRequestArgs { role },
}

fn build_permission(
    fbb: &mut Builder,
    p: &PermissionRef<'_>,
) -> flatbuffers::WIPOffset<rpc::Permission<'static>> {
    let key = opt_bytes(fbb, p.key);
    let range_end = opt_bytes(fbb, p.range_end);
    rpc::Permission::create(
        fbb,
        &rpc::PermissionArgs {
            perm_type: p.perm_type,
            key,
            range_end,
        },
    )
}

impl Encoder {
    pub fn user_add_request(
        &mut self,
        id: u64,
        name: &str,
        password: &str,
        no_password: bool,
    ) -> &[u8] {
        let fbb = self.begin();
        let name = opt_str(fbb, name);
        let password = opt_str(fbb, password);
        let body = rpc::AuthUserAddRequest::create(
            fbb,
            &rpc::AuthUserAddRequestArgs {
                name,
                password,
                no_password,
            },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::AuthUserAddRequest, body)
    }

    pub fn role_grant_permission_request(
        &mut self,
        id: u64,
        name: &str,
        perm: &PermissionRef<'_>,
    ) -> &[u8] {
        let fbb = self.begin();
        let name = opt_str(fbb, name);
        let perm = Some(build_permission(fbb, perm));
        let body = rpc::AuthRoleGrantPermissionRequest::create(
            fbb,
            &rpc::AuthRoleGrantPermissionRequestArgs { name, perm },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::AuthRoleGrantPermissionRequest, body)
    }

    pub fn role_revoke_permission_request(
        &mut self,
        id: u64,
        role: &str,
        key: &[u8],
        range_end: &[u8],
    ) -> &[u8] {
        let fbb = self.begin();
        let role = opt_str(fbb, role);
        let key = opt_bytes(fbb, key);
        let range_end = opt_bytes(fbb, range_end);
        let body = rpc::AuthRoleRevokePermissionRequest::create(
            fbb,
            &rpc::AuthRoleRevokePermissionRequestArgs {
                role,
                key,
                range_end,
            },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::AuthRoleRevokePermissionRequest, body)
    }

    pub fn auth_status_response(
        &mut self,
        id: u64,
        header: &Header,
        enabled: bool,
        auth_revision: u64,
    ) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::AuthStatusResponse::create(
            fbb,
            &rpc::AuthStatusResponseArgs {
                enabled,
                auth_revision,
            },
        )
        .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::AuthStatusResponse, body)
    }

    pub fn authenticate_response(&mut self, id: u64, header: &Header, token: &str) -> &[u8] {
        let fbb = self.begin();
        let token = opt_str(fbb, token);
        let body = rpc::AuthenticateResponse::create(fbb, &rpc::AuthenticateResponseArgs { token })
            .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::AuthenticateResponse, body)
    }

    pub fn user_get_response(&mut self, id: u64, header: &Header, roles: &[&str]) -> &[u8] {
        let fbb = self.begin();
        let roles = str_vector(fbb, roles);
        let body = rpc::AuthUserGetResponse::create(fbb, &rpc::AuthUserGetResponseArgs { roles })
            .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::AuthUserGetResponse, body)
    }

    pub fn user_list_response(&mut self, id: u64, header: &Header, users: &[&str]) -> &[u8] {
        let fbb = self.begin();
        let users = str_vector(fbb, users);
        let body = rpc::AuthUserListResponse::create(fbb, &rpc::AuthUserListResponseArgs { users })
            .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::AuthUserListResponse, body)
    }

    pub fn role_get_response(
        &mut self,
        id: u64,
        header: &Header,
        perms: &[PermissionRef<'_>],
    ) -> &[u8] {
        let fbb = self.begin();
        let perm = if perms.is_empty() {
            None
        } else {
            let offsets: Vec<_> = perms.iter().map(|p| build_permission(fbb, p)).collect();
            Some(fbb.create_vector(&offsets))
        };
        let body = rpc::AuthRoleGetResponse::create(fbb, &rpc::AuthRoleGetResponseArgs { perm })
            .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::AuthRoleGetResponse, body)
    }

    pub fn role_list_response(&mut self, id: u64, header: &Header, roles: &[&str]) -> &[u8] {
        let fbb = self.begin();
        let roles = str_vector(fbb, roles);
        let body = rpc::AuthRoleListResponse::create(fbb, &rpc::AuthRoleListResponseArgs { roles })
            .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::AuthRoleListResponse, body)
    }
}
