//! etcd's Auth service as the harness needs it: logging a connection in,
//! and switching auth on in a cluster `compare` started.

use cairn_wire::etcdpb::{self as pb, path};

use super::EtcdConn;
use crate::access::{Access, GRANT_KEY, GRANT_RANGE_END, PERF_ROLE, PROBE_KEY, ROOT_USER};
use crate::error::PerfError;
use crate::target::OpError;

impl EtcdConn {
    /// Calls Authenticate and answers the token.
    pub(super) async fn authenticate(&self, name: &str, password: &str) -> Result<String, OpError> {
        let request = pb::AuthenticateRequest {
            name: name.to_string(),
            password: password.to_string(),
        };
        let response: pb::AuthenticateResponse = self.unary(path::AUTHENTICATE, request).await?;
        Ok(response.token)
    }
}

/// Switches auth on in a fresh etcd reached at `endpoint` (as `access`
/// says, without its user), exactly as [`crate::cairn::enable_auth`] does
/// for cairn: `root` and the user with the access's password, the user
/// holding [`PERF_ROLE`] (READWRITE on the harness's keys, READ on the
/// probe key), then AuthEnable.
pub async fn enable_auth(endpoint: &str, access: &Access) -> Result<(), PerfError> {
    let Some(user) = &access.user else {
        return Ok(());
    };
    let admin = EtcdConn::connect_with(endpoint, &access.without_user()).await?;
    let step = Setup {
        admin: &admin,
        endpoint,
    };
    step.user_add(ROOT_USER, &user.password).await?;
    // The root role exists without being added.
    step.grant_role(ROOT_USER, ROOT_USER).await?;
    if user.name != ROOT_USER {
        step.call::<_, pb::HeaderOnlyResponse>(
            "role add",
            path::ROLE_ADD,
            pb::AuthRoleAddRequest {
                name: PERF_ROLE.to_string(),
            },
        )
        .await?;
        step.grant_permission(pb::PermissionType::Readwrite, GRANT_KEY, GRANT_RANGE_END)
            .await?;
        step.grant_permission(pb::PermissionType::Read, PROBE_KEY, b"")
            .await?;
        step.user_add(&user.name, &user.password).await?;
        step.grant_role(&user.name, PERF_ROLE).await?;
    }
    step.call::<_, pb::HeaderOnlyResponse>(
        "auth enable",
        path::AUTH_ENABLE,
        pb::AuthEmptyRequest {},
    )
    .await?;
    Ok(())
}

/// One admin connection and the endpoint it names in errors.
struct Setup<'a> {
    admin: &'a EtcdConn,
    endpoint: &'a str,
}

impl Setup<'_> {
    async fn call<Req, Resp>(
        &self,
        what: &str,
        path: &'static str,
        request: Req,
    ) -> Result<Resp, PerfError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.admin
            .unary(path, request)
            .await
            .map_err(|e| PerfError::Connect {
                endpoint: self.endpoint.to_string(),
                reason: format!("setting up auth: {what}: {}", e.kind),
            })
    }

    async fn user_add(&self, name: &str, password: &str) -> Result<(), PerfError> {
        let request = pb::AuthUserAddRequest {
            name: name.to_string(),
            password: password.to_string(),
            ..Default::default()
        };
        self.call::<_, pb::HeaderOnlyResponse>("user add", path::USER_ADD, request)
            .await
            .map(drop)
    }

    async fn grant_role(&self, user: &str, role: &str) -> Result<(), PerfError> {
        let request = pb::AuthUserGrantRoleRequest {
            user: user.to_string(),
            role: role.to_string(),
        };
        self.call::<_, pb::HeaderOnlyResponse>("grant role", path::USER_GRANT_ROLE, request)
            .await
            .map(drop)
    }

    async fn grant_permission(
        &self,
        perm_type: pb::PermissionType,
        key: &'static [u8],
        range_end: &'static [u8],
    ) -> Result<(), PerfError> {
        let request = pb::AuthRoleGrantPermissionRequest {
            name: PERF_ROLE.to_string(),
            perm: Some(pb::Permission {
                perm_type: perm_type as i32,
                key: bytes::Bytes::from_static(key),
                range_end: bytes::Bytes::from_static(range_end),
            }),
        };
        self.call::<_, pb::HeaderOnlyResponse>(
            "grant permission",
            path::ROLE_GRANT_PERMISSION,
            request,
        )
        .await
        .map(drop)
    }
}
