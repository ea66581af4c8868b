//! Authentication: the credentials a client logs in with, and the typed
//! answers of etcd's Auth service (users, roles, permissions).
//!
//! A client given [`Credentials`] calls Authenticate on every connection it
//! opens and sends the token it gets with each later request. When the
//! server answers "invalid auth token", "revision of auth store is old"
//! (the request raced a change of users, roles or permissions) or "user
//! name is empty" (auth was enabled after the client connected), the client
//! authenticates again and resends the request, as etcd's `clientv3` does
//! (a few times at most, see [`AUTH_RETRIES_MAX`](crate::limits::AUTH_RETRIES_MAX)).
//!
//! ```no_run
//! use cairn_client::{Client, ConnectOptions, Credentials, PermissionType};
//!
//! # async fn example() -> Result<(), cairn_client::Error> {
//! let admin = Client::connect(["127.0.0.1:2379"], ConnectOptions::default()).await?;
//! admin.user_add("root", "rootpw").await?;
//! admin.role_add("root").await?;
//! admin.user_grant_role("root", "root").await?;
//! admin.role_add("reader").await?;
//! admin
//!     .role_grant_permission("reader", PermissionType::Read, "app/", "app0")
//!     .await?;
//! admin.user_add("alice", "alicepw").await?;
//! admin.user_grant_role("alice", "reader").await?;
//! admin.auth_enable().await?;
//!
//! let alice = Client::connect_with_auth(
//!     ["127.0.0.1:2379"],
//!     ConnectOptions::default(),
//!     None,
//!     Some(Credentials::new("alice", "alicepw")),
//! )
//! .await?;
//! alice.get("app/config", Default::default()).await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;

use crate::client::Client;
use crate::codec::{AuthRequest, Reply, Request};
use crate::error::Result;
use crate::options::KeyRange;
use crate::types::ResponseHeader;

/// A user name and password. Neither `Debug` nor any error ever shows the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a permission allows on its keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PermissionType {
    #[default]
    Read,
    Write,
    ReadWrite,
}

impl PermissionType {
    /// etcd's name for it (`READ`, `WRITE`, `READWRITE`).
    pub fn name(self) -> &'static str {
        match self {
            PermissionType::Read => "READ",
            PermissionType::Write => "WRITE",
            PermissionType::ReadWrite => "READWRITE",
        }
    }

    /// Parses `read`, `write` or `readwrite` in any case, as etcdctl does.
    pub fn parse(text: &str) -> Option<PermissionType> {
        match text.to_ascii_uppercase().as_str() {
            "READ" => Some(PermissionType::Read),
            "WRITE" => Some(PermissionType::Write),
            "READWRITE" => Some(PermissionType::ReadWrite),
            _ => None,
        }
    }

    /// The protobuf enum value etcd's JSON output prints.
    pub fn number(self) -> i32 {
        match self {
            PermissionType::Read => 0,
            PermissionType::Write => 1,
            PermissionType::ReadWrite => 2,
        }
    }
}

/// Access to the keys `[key, range_end)`; an empty `range_end` is the key
/// alone, `"\0"` every key from `key` on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    pub perm_type: PermissionType,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

/// Whether authentication is on, and the auth store's revision (which
/// grows with every change of users, roles or permissions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStatusResponse {
    pub header: ResponseHeader,
    pub enabled: bool,
    pub auth_revision: u64,
}

/// The answer to Authenticate. `Debug` leaves the token out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthenticateResponse {
    pub header: ResponseHeader,
    pub token: String,
}

impl fmt::Debug for AuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateResponse")
            .field("header", &self.header)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The roles granted to a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserGetResponse {
    pub header: ResponseHeader,
    pub roles: Vec<String>,
}

/// Every user, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserListResponse {
    pub header: ResponseHeader,
    pub users: Vec<String>,
}

/// A role's permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleGetResponse {
    pub header: ResponseHeader,
    pub perm: Vec<Permission>,
}

/// Every role, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleListResponse {
    pub header: ResponseHeader,
    pub roles: Vec<String>,
}

/// The answer to an auth change that returns nothing but its header
/// (enable, disable, user and role add, delete, grant, revoke, password).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthResponse {
    pub header: ResponseHeader,
}

/// The Auth service's calls. Each goes through the same connection,
/// retry and re-authentication path as the KV calls.
impl Client {
    async fn auth_call(&self, request: AuthRequest) -> Result<Reply> {
        self.request(Request::Auth(request)).await
    }

    async fn auth_change(&self, request: AuthRequest) -> Result<AuthResponse> {
        match self.auth_call(request).await? {
            Reply::AuthChange(r) => Ok(r),
            other => Err(self.unexpected(&other, "an auth change response")),
        }
    }

    /// Turns authentication on. The `root` user must exist and have the
    /// `root` role.
    pub async fn auth_enable(&self) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::Enable).await
    }

    /// Turns authentication off (only `root` may, once it is on).
    pub async fn auth_disable(&self) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::Disable).await
    }

    /// Whether authentication is on, and the auth store's revision.
    pub async fn auth_status(&self) -> Result<AuthStatusResponse> {
        match self.auth_call(AuthRequest::Status).await? {
            Reply::AuthStatus(r) => Ok(r),
            other => Err(self.unexpected(&other, "AuthStatusResponse")),
        }
    }

    /// Checks a user's password and returns a token for it. The client
    /// does not start using the token; see [`Client::connect_with_auth`]
    /// for a client that logs in by itself.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<AuthenticateResponse> {
        let request = AuthRequest::Authenticate {
            name: name.to_string(),
            password: password.to_string(),
        };
        match self.auth_call(request).await? {
            Reply::Authenticate(r) => Ok(r),
            other => Err(self.unexpected(&other, "AuthenticateResponse")),
        }
    }

    /// Adds a user with a password.
    pub async fn user_add(&self, name: &str, password: &str) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::UserAdd {
            name: name.to_string(),
            password: password.to_string(),
            no_password: false,
        })
        .await
    }

    /// Adds a user that cannot log in with a password (only with a TLS
    /// client certificate naming it).
    pub async fn user_add_no_password(&self, name: &str) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::UserAdd {
            name: name.to_string(),
            password: String::new(),
            no_password: true,
        })
        .await
    }

    /// The roles granted to a user.
    pub async fn user_get(&self, name: &str) -> Result<UserGetResponse> {
        let request = AuthRequest::UserGet {
            name: name.to_string(),
        };
        match self.auth_call(request).await? {
            Reply::UserGet(r) => Ok(r),
            other => Err(self.unexpected(&other, "AuthUserGetResponse")),
        }
    }

    /// Every user.
    pub async fn user_list(&self) -> Result<UserListResponse> {
        match self.auth_call(AuthRequest::UserList).await? {
            Reply::UserList(r) => Ok(r),
            other => Err(self.unexpected(&other, "AuthUserListResponse")),
        }
    }

    pub async fn user_delete(&self, name: &str) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::UserDelete {
            name: name.to_string(),
        })
        .await
    }

    pub async fn user_change_password(&self, name: &str, password: &str) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::UserChangePassword {
            name: name.to_string(),
            password: password.to_string(),
        })
        .await
    }

    pub async fn user_grant_role(&self, user: &str, role: &str) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::UserGrantRole {
            user: user.to_string(),
            role: role.to_string(),
        })
        .await
    }

    pub async fn user_revoke_role(&self, user: &str, role: &str) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::UserRevokeRole {
            user: user.to_string(),
            role: role.to_string(),
        })
        .await
    }

    pub async fn role_add(&self, name: &str) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::RoleAdd {
            name: name.to_string(),
        })
        .await
    }

    /// A role's permissions.
    pub async fn role_get(&self, name: &str) -> Result<RoleGetResponse> {
        let request = AuthRequest::RoleGet {
            name: name.to_string(),
        };
        match self.auth_call(request).await? {
            Reply::RoleGet(r) => Ok(r),
            other => Err(self.unexpected(&other, "AuthRoleGetResponse")),
        }
    }

    /// Every role.
    pub async fn role_list(&self) -> Result<RoleListResponse> {
        match self.auth_call(AuthRequest::RoleList).await? {
            Reply::RoleList(r) => Ok(r),
            other => Err(self.unexpected(&other, "AuthRoleListResponse")),
        }
    }

    pub async fn role_delete(&self, name: &str) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::RoleDelete {
            name: name.to_string(),
        })
        .await
    }

    /// Grants `perm_type` access to `[key, range_end)` to a role; an empty
    /// `range_end` is the key alone, `"\0"` every key from `key` on (see
    /// [`Client::role_grant_permission_range`] for prefixes).
    pub async fn role_grant_permission(
        &self,
        name: &str,
        perm_type: PermissionType,
        key: impl Into<Vec<u8>>,
        range_end: impl Into<Vec<u8>>,
    ) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::RoleGrantPermission {
            name: name.to_string(),
            perm: Permission {
                perm_type,
                key: key.into(),
                range_end: range_end.into(),
            },
        })
        .await
    }

    /// [`Client::role_grant_permission`] for a key and a [`KeyRange`]
    /// (`Prefix`, `FromKey`, ...), with etcd's conventions for the empty key.
    pub async fn role_grant_permission_range(
        &self,
        name: &str,
        perm_type: PermissionType,
        key: &[u8],
        range: &KeyRange,
    ) -> Result<AuthResponse> {
        let (key, range_end) = range.resolve(key);
        self.role_grant_permission(name, perm_type, key, range_end)
            .await
    }

    /// Takes back a permission granted with exactly this key and range end.
    pub async fn role_revoke_permission(
        &self,
        role: &str,
        key: impl Into<Vec<u8>>,
        range_end: impl Into<Vec<u8>>,
    ) -> Result<AuthResponse> {
        self.auth_change(AuthRequest::RoleRevokePermission {
            role: role.to_string(),
            key: key.into(),
            range_end: range_end.into(),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = Credentials::new("alice", "s3cret");
        let shown = format!("{c:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let r = AuthenticateResponse {
            header: ResponseHeader::default(),
            token: "tok.en.123".into(),
        };
        assert!(!format!("{r:?}").contains("tok.en"));
    }

    #[test]
    fn permission_types_parse_like_etcdctl() {
        assert_eq!(PermissionType::parse("read"), Some(PermissionType::Read));
        assert_eq!(
            PermissionType::parse("ReadWrite"),
            Some(PermissionType::ReadWrite)
        );
        assert_eq!(PermissionType::parse("rw"), None);
        assert_eq!(PermissionType::Write.name(), "WRITE");
    }
}
