//! Auth: etcd's `etcdserverpb.Auth` methods translated to the native Auth
//! requests and back. As for KV, nothing is decided here: the auth store,
//! its checks and its errors (codes and etcd's texts, such as
//! `Unauthenticated` "etcdserver: invalid auth token" or `InvalidArgument`
//! "etcdserver: revision of auth store is old") are the shard's, passed
//! through unchanged so that etcd's clients react to them as they do to
//! etcd's (clientv3 fetches a new token on those two and retries).

use bytes::Bytes;
use cairn_wire::etcdpb::{self as pb, path};
use cairn_wire::{rpc, Encoder, Header, PermissionRef, ResponseBodyView};

use super::codec::{frame, Status};
use super::convert::{enum_i8, header, strings};
use super::services::{answer, decode, header_only, unexpected, unimplemented};
use super::session::Caller;

/// Serve one call of the Auth service.
pub async fn unary(c: &Caller<'_>, p: &str, msg: Bytes) -> Result<Bytes, Status> {
    let req = c.try_encode(|e, id| encode(p, msg, e, id))?;
    answer(c, req, response).await
}

/// The native request for the Auth method `p` with protobuf request `msg`.
pub fn encode<'e>(p: &str, msg: Bytes, e: &'e mut Encoder, id: u64) -> Result<&'e [u8], Status> {
    Ok(match p {
        path::AUTH_ENABLE => {
            let _: pb::AuthEmptyRequest = decode(msg)?;
            e.auth_enable_request(id)
        }
        path::AUTH_DISABLE => {
            let _: pb::AuthEmptyRequest = decode(msg)?;
            e.auth_disable_request(id)
        }
        path::AUTH_STATUS => {
            let _: pb::AuthEmptyRequest = decode(msg)?;
            e.auth_status_request(id)
        }
        path::AUTHENTICATE => {
            let r: pb::AuthenticateRequest = decode(msg)?;
            e.authenticate_request(id, &r.name, &r.password)
        }
        path::USER_ADD => {
            let r: pb::AuthUserAddRequest = decode(msg)?;
            no_hashed_password(&r.hashed_password)?;
            let no_password = r.options.is_some_and(|o| o.no_password);
            e.user_add_request(id, &r.name, &r.password, no_password)
        }
        path::USER_GET => {
            let r: pb::AuthUserNameRequest = decode(msg)?;
            e.user_get_request(id, &r.name)
        }
        path::USER_LIST => {
            let _: pb::AuthEmptyRequest = decode(msg)?;
            e.user_list_request(id)
        }
        path::USER_DELETE => {
            let r: pb::AuthUserNameRequest = decode(msg)?;
            e.user_delete_request(id, &r.name)
        }
        path::USER_CHANGE_PASSWORD => {
            let r: pb::AuthUserChangePasswordRequest = decode(msg)?;
            no_hashed_password(&r.hashed_password)?;
            e.user_change_password_request(id, &r.name, &r.password)
        }
        path::USER_GRANT_ROLE => {
            let r: pb::AuthUserGrantRoleRequest = decode(msg)?;
            e.user_grant_role_request(id, &r.user, &r.role)
        }
        path::USER_REVOKE_ROLE => {
            let r: pb::AuthUserRevokeRoleRequest = decode(msg)?;
            e.user_revoke_role_request(id, &r.name, &r.role)
        }
        path::ROLE_ADD => {
            let r: pb::AuthRoleAddRequest = decode(msg)?;
            e.role_add_request(id, &r.name)
        }
        path::ROLE_GET => {
            let r: pb::AuthRoleNameRequest = decode(msg)?;
            e.role_get_request(id, &r.role)
        }
        path::ROLE_LIST => {
            let _: pb::AuthEmptyRequest = decode(msg)?;
            e.role_list_request(id)
        }
        path::ROLE_DELETE => {
            let r: pb::AuthRoleNameRequest = decode(msg)?;
            e.role_delete_request(id, &r.role)
        }
        path::ROLE_GRANT_PERMISSION => {
            let r: pb::AuthRoleGrantPermissionRequest = decode(msg)?;
            // etcd 3.5's ErrGRPCPermissionNotGiven (3.4 crashes on it).
            let perm = r
                .perm
                .ok_or_else(|| Status::invalid_argument("etcdserver: permission not given"))?;
            let perm_type = rpc::PermissionType(enum_i8(perm.perm_type, 2, "permission type")?);
            let perm = PermissionRef {
                perm_type,
                key: &perm.key,
                range_end: &perm.range_end,
            };
            e.role_grant_permission_request(id, &r.name, &perm)
        }
        path::ROLE_REVOKE_PERMISSION => {
            let r: pb::AuthRoleRevokePermissionRequest = decode(msg)?;
            e.role_revoke_permission_request(id, &r.role, &r.key, &r.range_end)
        }
        _ => return Err(unimplemented(p)),
    })
}

/// etcd 3.5 servers hash passwords before proposing them and accept a hash
/// from their own members; cairn's store keeps its own hash format, so a
/// client-made hash cannot be stored.
fn no_hashed_password(hashed: &str) -> Result<(), Status> {
    if hashed.is_empty() {
        Ok(())
    } else {
        Err(Status::invalid_argument(
            "etcdserver: cairn does not accept pre-hashed passwords; send the password",
        ))
    }
}

/// The protobuf answer for a native Auth response body.
pub fn response(h: &Header, body: &ResponseBodyView<'_>) -> Result<Bytes, Status> {
    Ok(match body {
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
        | ResponseBodyView::RoleRevokePermission(_) => return header_only(h, body),
        ResponseBodyView::AuthStatus(s) => frame(&pb::AuthStatusResponse {
            header: Some(header(h)),
            enabled: s.enabled(),
            auth_revision: s.auth_revision(),
        }),
        ResponseBodyView::Authenticate(a) => frame(&pb::AuthenticateResponse {
            header: Some(header(h)),
            token: a.token().unwrap_or("").to_owned(),
        }),
        ResponseBodyView::UserGet(u) => frame(&pb::AuthUserGetResponse {
            header: Some(header(h)),
            roles: strings(u.roles()),
        }),
        ResponseBodyView::UserList(u) => frame(&pb::AuthUserListResponse {
            header: Some(header(h)),
            users: strings(u.users()),
        }),
        ResponseBodyView::RoleList(r) => frame(&pb::AuthRoleListResponse {
            header: Some(header(h)),
            roles: strings(r.roles()),
        }),
        ResponseBodyView::RoleGet(r) => frame(&pb::AuthRoleGetResponse {
            header: Some(header(h)),
            perm: r
                .perm()
                .into_iter()
                .flatten()
                .map(|p| pb::Permission {
                    perm_type: i32::from(p.perm_type().0),
                    key: Bytes::copy_from_slice(cairn_wire::bytes(p.key())),
                    range_end: Bytes::copy_from_slice(cairn_wire::bytes(p.range_end())),
                })
                .collect(),
        }),
        _ => return Err(unexpected()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_wire::{decode_request, decode_response, RequestBodyView};
    use prost::Message;

    fn native(p: &str, msg: &impl Message) -> Result<Vec<u8>, Status> {
        let mut e = Encoder::new();
        encode(p, Bytes::from(msg.encode_to_vec()), &mut e, 9).map(<[u8]>::to_vec)
    }

    fn header_of() -> Header {
        Header {
            cluster_id: 1,
            member_id: 2,
            revision: 3,
            raft_term: 4,
        }
    }

    /// Translate a native response frame built by `build` to protobuf.
    fn translate<M: Message + Default>(
        build: impl for<'e> FnOnce(&'e mut Encoder, &Header) -> &'e [u8],
    ) -> M {
        let mut e = Encoder::new();
        let h = header_of();
        let f = build(&mut e, &h).to_vec();
        let view = decode_response(&f).unwrap();
        let body = view.body.unwrap();
        let mut msg = response(&view.header, &body).unwrap();
        M::decode(msg.split_off(5)).unwrap()
    }

    #[test]
    fn user_add_carries_name_password_and_no_password_option() {
        let f = native(
            path::USER_ADD,
            &pb::AuthUserAddRequest {
                name: "alice".into(),
                password: "pw".into(),
                options: Some(pb::UserAddOptions { no_password: true }),
                ..Default::default()
            },
        )
        .unwrap();
        let v = decode_request(&f).unwrap();
        assert_eq!(v.id, 9);
        let RequestBodyView::UserAdd(u) = v.body else {
            panic!("{:?}", v.body)
        };
        assert_eq!((u.name(), u.password()), (Some("alice"), Some("pw")));
        assert!(u.no_password());
    }

    #[test]
    fn grant_permission_keeps_type_and_range() {
        let f = native(
            path::ROLE_GRANT_PERMISSION,
            &pb::AuthRoleGrantPermissionRequest {
                name: "r".into(),
                perm: Some(pb::Permission {
                    perm_type: pb::PermissionType::Readwrite as i32,
                    key: "a".into(),
                    range_end: "b".into(),
                }),
            },
        )
        .unwrap();
        let RequestBodyView::RoleGrantPermission(g) = decode_request(&f).unwrap().body else {
            panic!("not a grant")
        };
        let perm = PermissionRef::from(g.perm().unwrap());
        assert_eq!(g.name(), Some("r"));
        assert_eq!(perm.perm_type, rpc::PermissionType::ReadWrite);
        assert_eq!((perm.key, perm.range_end), (&b"a"[..], &b"b"[..]));
    }

    #[test]
    fn bad_grants_and_hashed_passwords_are_refused_before_the_shard() {
        let no_perm = native(
            path::ROLE_GRANT_PERMISSION,
            &pb::AuthRoleGrantPermissionRequest {
                name: "r".into(),
                perm: None,
            },
        );
        assert_eq!(
            no_perm.unwrap_err(),
            Status::invalid_argument("etcdserver: permission not given")
        );
        let bad_type = native(
            path::ROLE_GRANT_PERMISSION,
            &pb::AuthRoleGrantPermissionRequest {
                name: "r".into(),
                perm: Some(pb::Permission {
                    perm_type: 7,
                    ..Default::default()
                }),
            },
        );
        assert_eq!(
            bad_type.unwrap_err().code,
            rpc::ErrorCode::InvalidArgument.0
        );
        let hashed = native(
            path::USER_CHANGE_PASSWORD,
            &pb::AuthUserChangePasswordRequest {
                name: "u".into(),
                hashed_password: "$2a$10$x".into(),
                ..Default::default()
            },
        );
        assert_eq!(hashed.unwrap_err().code, rpc::ErrorCode::InvalidArgument.0);
    }

    #[test]
    fn every_auth_method_has_a_native_request() {
        let empty = pb::AuthEmptyRequest {};
        for p in [
            path::AUTH_ENABLE,
            path::AUTH_DISABLE,
            path::AUTH_STATUS,
            path::AUTHENTICATE,
            path::USER_ADD,
            path::USER_GET,
            path::USER_LIST,
            path::USER_DELETE,
            path::USER_CHANGE_PASSWORD,
            path::USER_GRANT_ROLE,
            path::USER_REVOKE_ROLE,
            path::ROLE_ADD,
            path::ROLE_GET,
            path::ROLE_LIST,
            path::ROLE_DELETE,
            path::ROLE_REVOKE_PERMISSION,
        ] {
            // Every request message decodes from empty bytes (all fields
            // default), so one empty message exercises each method.
            let f = native(p, &empty).unwrap();
            let v = decode_request(&f).unwrap();
            let method = p.rsplit('/').next().unwrap();
            let name = v.body.type_name();
            assert!(
                name.contains(method) || name.contains(&format!("Auth{method}")),
                "{p} became {name}"
            );
        }
        let unknown = native("/etcdserverpb.Auth/Nope", &empty).unwrap_err();
        assert_eq!(unknown.code, rpc::ErrorCode::Unimplemented.0);
    }

    #[test]
    fn responses_translate_with_header_and_fields() {
        let st: pb::AuthStatusResponse = translate(|e, h| e.auth_status_response(1, h, true, 5));
        assert!(st.enabled);
        assert_eq!(st.auth_revision, 5);
        assert_eq!(st.header.unwrap().revision, 3);
        let a: pb::AuthenticateResponse = translate(|e, h| e.authenticate_response(1, h, "t.1"));
        assert_eq!(a.token, "t.1");
        let u: pb::AuthUserGetResponse = translate(|e, h| e.user_get_response(1, h, &["r1", "r2"]));
        assert_eq!(u.roles, ["r1", "r2"]);
        let l: pb::AuthUserListResponse = translate(|e, h| e.user_list_response(1, h, &["root"]));
        assert_eq!(l.users, ["root"]);
        let r: pb::AuthRoleListResponse = translate(|e, h| e.role_list_response(1, h, &["root"]));
        assert_eq!(r.roles, ["root"]);
        let perms = [PermissionRef {
            perm_type: rpc::PermissionType::Write,
            key: b"k",
            range_end: b"",
        }];
        let g: pb::AuthRoleGetResponse = translate(|e, h| e.role_get_response(1, h, &perms));
        assert_eq!(
            g.perm,
            [pb::Permission {
                perm_type: pb::PermissionType::Write as i32,
                key: "k".into(),
                range_end: Bytes::new(),
            }]
        );
        let add: pb::HeaderOnlyResponse = translate(|e, h| e.user_add_response(1, h));
        assert_eq!(add.header.unwrap().member_id, 2);
    }
}
