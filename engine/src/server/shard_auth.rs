//! Authentication on the shard's loop: turning tokens into users when
//! requests arrive, hashing and checking passwords off the loop, applying
//! auth-management entries, and the permission checks at apply and read
//! time. The auth model itself is `super::auth`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use cairn_wire::{bytes as wire_bytes, rpc, Header, PermissionRef, RequestBodyView, RequestView};

use super::super::auth::jwt::JwtKeys;
use super::super::auth::{
    self, token, AuthError, AuthFlags, AuthInfo, AuthStore, PermKind, Permission,
};
use super::super::route::ConnId;
use super::{Event, Origin, Shard, ENVELOPE_BYTES};
use crate::limits;

/// The member's auth state: the replicated store and its own tokens.
pub(super) struct AuthState {
    pub(super) store: AuthStore,
    tokens: token::Tokens,
    bcrypt_cost: u32,
    /// Password hashes and checks running on the blocking pool.
    jobs: usize,
    /// Tokens made here, waiting for their Authenticate entry to apply, by
    /// proposal sequence number.
    pending_tokens: HashMap<u64, String>,
    /// The client-certificate CN of each connection that has one, by
    /// (executor, connection): the user of its requests without a token.
    cert_users: HashMap<(usize, ConnId), Arc<str>>,
    /// With `--auth-token jwt,...`: tokens are signed JWTs carrying user,
    /// auth revision and expiry, checked by signature alone.
    jwt: Option<JwtKeys>,
}

impl AuthState {
    pub(super) fn new(flags: &AuthFlags, store: AuthStore) -> Result<AuthState, String> {
        // Checked when the flags were validated; read again here, as the
        // key files may have changed in between.
        let jwt = flags.jwt_keys().map_err(|e| e.to_string())?;
        Ok(AuthState {
            jwt,
            store,
            tokens: token::Tokens::new(Duration::from_secs(flags.auth_token_ttl_s)),
            bcrypt_cost: flags.bcrypt_cost,
            jobs: 0,
            pending_tokens: HashMap::new(),
            cert_users: HashMap::new(),
        })
    }

    pub(super) fn expire(&mut self, now: Instant, pending: impl Fn(u64) -> bool) {
        self.tokens.expire(now);
        self.pending_tokens.retain(|seq, _| pending(*seq));
    }
}

/// The result of a password job, back on the shard's loop.
pub(in crate::server) enum AuthJob {
    /// A UserAdd or UserChangePassword, now with the password's hash.
    Hashed {
        origin: Origin,
        id: u64,
        info: Option<AuthInfo>,
        name: String,
        hash: Result<String, String>,
        add: bool,
    },
    /// Authenticate's password check.
    Checked {
        origin: Origin,
        id: u64,
        info: AuthInfo,
        ok: bool,
    },
}

/// What an applied auth-management entry answers.
#[derive(Debug)]
pub(super) enum AuthReply {
    Enable,
    Disable,
    UserAdd,
    UserDelete,
    UserChangePassword,
    UserGrantRole,
    UserRevokeRole,
    RoleAdd,
    RoleDelete,
    RoleGrantPermission,
    RoleRevokePermission,
    Authenticate,
}

fn perm_kind(t: rpc::PermissionType) -> PermKind {
    match t {
        rpc::PermissionType::Write => PermKind::Write,
        rpc::PermissionType::ReadWrite => PermKind::ReadWrite,
        _ => PermKind::Read,
    }
}

fn perm_type(k: PermKind) -> rpc::PermissionType {
    match k {
        PermKind::Read => rpc::PermissionType::Read,
        PermKind::Write => rpc::PermissionType::Write,
        PermKind::ReadWrite => rpc::PermissionType::ReadWrite,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<token::TokenHash> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Whether a request is checked later (at apply for logged requests, when
/// served for reads) rather than on arrival.
fn checked_later(body: &RequestBodyView<'_>) -> bool {
    use super::apply::Class;
    let member_op = matches!(
        body,
        RequestBodyView::MemberAdd(_)
            | RequestBodyView::MemberRemove(_)
            | RequestBodyView::MemberUpdate(_)
            | RequestBodyView::MemberPromote(_)
    );
    !member_op
        && matches!(
            super::apply::classify(body),
            Class::Write | Class::LinearRead | Class::LocalRead
        )
}

impl Shard {
    pub(super) fn auth_cert_user(&mut self, conn: (usize, ConnId), user: Arc<str>) {
        // A CN longer than any user name names no user (and must not reach
        // the log envelope, whose name length is bounded).
        if user.len() > limits::AUTH_NAME_BYTES_MAX {
            return;
        }
        self.auth.cert_users.entry(conn).or_insert(user);
    }

    pub(super) fn auth_conn_closed(&mut self, conn: (usize, ConnId)) {
        self.auth.cert_users.remove(&conn);
    }

    /// The sender of a request: its token's user; without a token, the CN
    /// of its client certificate (etcd's `--client-cert-auth` users);
    /// `Ok(None)` when auth is off or neither came. An unknown or expired
    /// token is refused.
    fn auth_info(
        &mut self,
        origin: Origin,
        token: Option<&str>,
    ) -> Result<Option<AuthInfo>, AuthError> {
        if !self.auth.store.enabled() {
            return Ok(None);
        }
        let revision = self.auth.store.revision();
        let Some(t) = token else {
            let cn = self.auth.cert_users.get(&(origin.executor, origin.conn));
            return Ok(cn.map(|user| AuthInfo {
                user: user.to_string(),
                revision,
            }));
        };
        if let Some(jwt) = &self.auth.jwt {
            // The token's own revision: one signed before a permission
            // change is refused as old, and its holder logs in again.
            return match jwt.verify(t, std::time::SystemTime::now()) {
                Some((user, revision)) => Ok(Some(AuthInfo { user, revision })),
                None => Err(AuthError::InvalidAuthToken),
            };
        }
        match self.auth.tokens.user(t, Instant::now()) {
            Some(user) => Ok(Some(AuthInfo {
                user: user.to_string(),
                revision,
            })),
            None => Err(AuthError::InvalidAuthToken),
        }
    }

    fn reply_auth_error(&mut self, origin: Origin, id: u64, e: AuthError) {
        self.reply_error(origin, id, e.code(), e.message());
    }

    /// Admission's auth step. Returns the sender to log with the request,
    /// or `None` when the request has been answered (refused, or taken
    /// over: password work, Authenticate).
    pub(super) fn auth_admit(
        &mut self,
        origin: Origin,
        req: &RequestView<'_>,
        writes: &mut Vec<Bytes>,
    ) -> Option<Option<AuthInfo>> {
        let is_auth = auth::is_auth_request(&req.body);
        if !is_auth && !self.auth.store.enabled() {
            return Some(None);
        }
        let info = match self.auth_info(origin, req.token) {
            Ok(info) => info,
            Err(e) => {
                self.reply_auth_error(origin, req.id, e);
                return None;
            }
        };
        match &req.body {
            RequestBodyView::Authenticate(a) => {
                self.start_authenticate(
                    origin,
                    req.id,
                    a.name().unwrap_or(""),
                    a.password().unwrap_or(""),
                );
                return None;
            }
            RequestBodyView::UserAdd(u) => {
                let name = u.name().unwrap_or("");
                if u.no_password() {
                    // A password sent along is ignored, and never logged.
                    let frame = self.enc.user_add_request(req.id, name, "", true).to_vec();
                    self.enqueue_write(origin, req.id, &frame, info.as_ref(), writes);
                } else {
                    let password = u.password().unwrap_or("").to_string();
                    self.start_hash(origin, req.id, info, name, password, true);
                }
                return None;
            }
            RequestBodyView::UserChangePassword(c) => {
                let password = c.password().unwrap_or("").to_string();
                self.start_hash(
                    origin,
                    req.id,
                    info,
                    c.name().unwrap_or(""),
                    password,
                    false,
                );
                return None;
            }
            _ if is_auth => return Some(info),
            _ => {}
        }
        if !checked_later(&req.body) {
            let checked =
                self.auth
                    .store
                    .check_request(info.as_ref(), &req.body, &self.mvcc.borrow());
            if let Err(e) = checked {
                self.reply_auth_error(origin, req.id, e);
                return None;
            }
        }
        Some(info)
    }

    /// Log a write: the envelope (proposer, sequence number, and the
    /// sender when auth is on), then the request frame.
    pub(super) fn enqueue_write(
        &mut self,
        origin: Origin,
        id: u64,
        frame: &[u8],
        info: Option<&AuthInfo>,
        writes: &mut Vec<Bytes>,
    ) {
        if self.pending_writes.len() >= limits::SHARD_PENDING_MAX {
            self.reply_error(
                origin,
                id,
                rpc::ErrorCode::ResourceExhausted,
                "etcdserver: too many requests",
            );
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut payload;
        match info {
            None => {
                payload = BytesMut::with_capacity(ENVELOPE_BYTES + frame.len());
                payload.put_u64_le(self.identity.member_id);
                payload.put_u64_le(seq);
            }
            Some(info) => {
                let mut section = Vec::with_capacity(10 + info.user.len());
                auth::encode_envelope_section(info, &mut section);
                payload = BytesMut::with_capacity(ENVELOPE_BYTES + section.len() + frame.len());
                payload.put_u64_le(self.identity.member_id);
                payload.put_u64_le(seq | auth::ENVELOPE_AUTH_FLAG);
                payload.put_slice(&section);
            }
        }
        payload.put_slice(frame);
        self.pending_writes
            .insert(seq, (origin, id, Instant::now() + self.request_timeout));
        writes.push(payload.freeze());
    }

    fn take_job_slot(&mut self, origin: Origin, id: u64) -> bool {
        if self.auth.jobs >= limits::AUTH_HASH_JOBS_MAX {
            self.reply_error(
                origin,
                id,
                rpc::ErrorCode::ResourceExhausted,
                "etcdserver: too many requests",
            );
            return false;
        }
        self.auth.jobs += 1;
        true
    }

    /// Hash a new password on the blocking pool; the request is logged with
    /// the hash when it is done.
    fn start_hash(
        &mut self,
        origin: Origin,
        id: u64,
        info: Option<AuthInfo>,
        name: &str,
        password: String,
        add: bool,
    ) {
        // Refuse early what apply would refuse anyway: no hashing for
        // senders without the root role.
        if let Err(e) = self.auth.store.check_admin(info.as_ref()) {
            return self.reply_auth_error(origin, id, e);
        }
        if add && name.is_empty() {
            return self.reply_auth_error(origin, id, AuthError::UserEmpty);
        }
        if !self.take_job_slot(origin, id) {
            return;
        }
        let cost = self.auth.bcrypt_cost;
        let name = name.to_string();
        let events = self.events_tx.clone();
        glommio::spawn_local(async move {
            let hash = glommio::executor()
                .spawn_blocking(move || bcrypt::hash(password, cost).map_err(|e| e.to_string()))
                .await;
            let job = AuthJob::Hashed {
                origin,
                id,
                info,
                name,
                hash,
                add,
            };
            // The shard holds the receiver for as long as it runs.
            let _ = events.send(Event::Auth(job)).await;
        })
        .detach();
    }

    /// Check a password on the blocking pool; a token is logged when it
    /// matches.
    fn start_authenticate(&mut self, origin: Origin, id: u64, name: &str, password: &str) {
        if !self.auth.store.enabled() {
            return self.reply_auth_error(origin, id, AuthError::AuthNotEnabled);
        }
        // A missing user and a user without a password fail alike.
        let Some(hash) = self
            .auth
            .store
            .user(name)
            .and_then(|u| u.password_hash.clone())
        else {
            return self.reply_auth_error(origin, id, AuthError::AuthFailed);
        };
        if !self.take_job_slot(origin, id) {
            return;
        }
        let info = AuthInfo {
            user: name.to_string(),
            revision: self.auth.store.revision(),
        };
        let password = password.to_string();
        let events = self.events_tx.clone();
        glommio::spawn_local(async move {
            let ok = glommio::executor()
                .spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await;
            let _ = events
                .send(Event::Auth(AuthJob::Checked {
                    origin,
                    id,
                    info,
                    ok,
                }))
                .await;
        })
        .detach();
    }

    /// A password job finished: log its request, or answer.
    pub(super) fn auth_job_done(&mut self, job: AuthJob, writes: &mut Vec<Bytes>) {
        self.auth.jobs -= 1;
        match job {
            AuthJob::Hashed {
                origin,
                id,
                info,
                name,
                hash,
                add,
            } => {
                let hash = match hash {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::error!("cannot hash a password: {e}");
                        return self.reply_error(
                            origin,
                            id,
                            rpc::ErrorCode::Internal,
                            "etcdserver: cannot hash the password",
                        );
                    }
                };
                let frame = if add {
                    self.enc.user_add_request(id, &name, &hash, false).to_vec()
                } else {
                    self.enc
                        .user_change_password_request(id, &name, &hash)
                        .to_vec()
                };
                self.enqueue_write(origin, id, &frame, info.as_ref(), writes);
            }
            AuthJob::Checked {
                origin,
                id,
                info,
                ok,
            } => {
                if !ok {
                    tracing::info!(user = %info.user, "authentication failed: wrong password");
                    return self.reply_auth_error(origin, id, AuthError::AuthFailed);
                }
                let token = match &self.auth.jwt {
                    None => token::generate(self.applied),
                    Some(jwt) => {
                        match jwt.sign(&info.user, info.revision, std::time::SystemTime::now()) {
                            Ok(t) => t,
                            Err(e) => {
                                return self.reply_error(
                                    origin,
                                    id,
                                    rpc::ErrorCode::FailedPrecondition,
                                    &e,
                                )
                            }
                        }
                    }
                };
                // The log holds the token's hash only (in the password
                // field of an Authenticate request the member builds).
                let hashed = hex(&token::hash(&token));
                let frame = self
                    .enc
                    .authenticate_request(id, &info.user, &hashed)
                    .to_vec();
                let seq = self.next_seq;
                self.enqueue_write(origin, id, &frame, Some(&info), writes);
                if self.pending_writes.contains_key(&seq) {
                    self.auth.pending_tokens.insert(seq, token);
                }
            }
        }
    }

    /// Apply an auth-management entry (`None` if `body` is not one).
    pub(super) fn apply_auth(
        &mut self,
        info: Option<&AuthInfo>,
        body: &RequestBodyView<'_>,
    ) -> Option<Result<AuthReply, AuthError>> {
        if !auth::is_auth_request(body) {
            return None;
        }
        Some(self.apply_auth_inner(info, body))
    }

    fn apply_auth_inner(
        &mut self,
        info: Option<&AuthInfo>,
        body: &RequestBodyView<'_>,
    ) -> Result<AuthReply, AuthError> {
        let a = &mut self.auth;
        if !matches!(body, RequestBodyView::Authenticate(_)) {
            a.store.check_auth_request(info, body)?;
        }
        match body {
            RequestBodyView::AuthEnable(_) => {
                a.store.enable()?;
                tracing::info!("enabled authentication");
                Ok(AuthReply::Enable)
            }
            RequestBodyView::AuthDisable(_) => {
                a.store.disable();
                a.tokens.clear();
                tracing::info!("disabled authentication");
                Ok(AuthReply::Disable)
            }
            RequestBodyView::UserAdd(u) => {
                let hash = (!u.no_password()).then(|| u.password().unwrap_or("").to_string());
                a.store.user_add(u.name().unwrap_or(""), hash)?;
                Ok(AuthReply::UserAdd)
            }
            RequestBodyView::UserDelete(d) => {
                let name = d.name().unwrap_or("");
                a.store.user_delete(name)?;
                a.tokens.invalidate_user(name);
                Ok(AuthReply::UserDelete)
            }
            RequestBodyView::UserChangePassword(c) => {
                let name = c.name().unwrap_or("");
                a.store
                    .user_change_password(name, c.password().unwrap_or("").to_string())?;
                a.tokens.invalidate_user(name);
                Ok(AuthReply::UserChangePassword)
            }
            RequestBodyView::UserGrantRole(g) => {
                a.store
                    .user_grant_role(g.user().unwrap_or(""), g.role().unwrap_or(""))?;
                Ok(AuthReply::UserGrantRole)
            }
            RequestBodyView::UserRevokeRole(r) => {
                a.store
                    .user_revoke_role(r.name().unwrap_or(""), r.role().unwrap_or(""))?;
                Ok(AuthReply::UserRevokeRole)
            }
            RequestBodyView::RoleAdd(r) => {
                a.store.role_add(r.name().unwrap_or(""))?;
                Ok(AuthReply::RoleAdd)
            }
            RequestBodyView::RoleDelete(r) => {
                a.store.role_delete(r.role().unwrap_or(""))?;
                Ok(AuthReply::RoleDelete)
            }
            RequestBodyView::RoleGrantPermission(g) => {
                let p = g.perm().ok_or(AuthError::PermissionNotGiven)?;
                a.store.role_grant_permission(
                    g.name().unwrap_or(""),
                    Permission {
                        kind: perm_kind(p.perm_type()),
                        key: wire_bytes(p.key()).to_vec(),
                        range_end: wire_bytes(p.range_end()).to_vec(),
                    },
                )?;
                Ok(AuthReply::RoleGrantPermission)
            }
            RequestBodyView::RoleRevokePermission(r) => {
                a.store.role_revoke_permission(
                    r.role().unwrap_or(""),
                    wire_bytes(r.key()),
                    wire_bytes(r.range_end()),
                )?;
                Ok(AuthReply::RoleRevokePermission)
            }
            RequestBodyView::Authenticate(x) => {
                if !a.store.enabled() {
                    return Err(AuthError::AuthNotEnabled);
                }
                // The password was checked against the store at this
                // revision; a change since (a new password, a deleted
                // user) voids the check.
                let info = info.ok_or(AuthError::AuthFailed)?;
                if info.revision != a.store.revision() {
                    return Err(AuthError::AuthOldRevision);
                }
                let name = x.name().unwrap_or("");
                let hash = unhex32(x.password().unwrap_or("")).ok_or(AuthError::AuthFailed)?;
                if name != info.user || a.store.user(name).is_none() {
                    return Err(AuthError::AuthFailed);
                }
                // A JWT needs no table: its signature is its proof.
                if a.jwt.is_none() {
                    a.tokens.insert(hash, name, Instant::now());
                }
                Ok(AuthReply::Authenticate)
            }
            // Reads are served by `auth_read`; none is ever logged.
            _ => Err(AuthError::InvalidAuthMgmt),
        }
    }

    pub(super) fn auth_reply_frame(
        &mut self,
        id: u64,
        seq: u64,
        header: &Header,
        r: AuthReply,
    ) -> Vec<u8> {
        let e = &mut self.enc;
        match r {
            AuthReply::Enable => e.auth_enable_response(id, header),
            AuthReply::Disable => e.auth_disable_response(id, header),
            AuthReply::UserAdd => e.user_add_response(id, header),
            AuthReply::UserDelete => e.user_delete_response(id, header),
            AuthReply::UserChangePassword => e.user_change_password_response(id, header),
            AuthReply::UserGrantRole => e.user_grant_role_response(id, header),
            AuthReply::UserRevokeRole => e.user_revoke_role_response(id, header),
            AuthReply::RoleAdd => e.role_add_response(id, header),
            AuthReply::RoleDelete => e.role_delete_response(id, header),
            AuthReply::RoleGrantPermission => e.role_grant_permission_response(id, header),
            AuthReply::RoleRevokePermission => e.role_revoke_permission_response(id, header),
            AuthReply::Authenticate => {
                let token = self.auth.pending_tokens.remove(&seq).unwrap_or_default();
                e.authenticate_response(id, header, &token)
            }
        }
        .to_vec()
    }

    pub(super) fn auth_snapshot(&self) -> Vec<u8> {
        let mut b = Vec::new();
        self.auth.store.encode(&mut b);
        b
    }

    /// Take the auth store of a snapshot from the leader (tokens stay:
    /// the users they name are checked on every use).
    pub(super) fn install_auth(&mut self, encoded: Option<&[u8]>) -> Result<(), String> {
        self.auth.store = match encoded {
            Some(b) => AuthStore::decode(b)?,
            None => AuthStore::new(),
        };
        if !self.auth.store.enabled() {
            self.auth.tokens.clear();
        }
        Ok(())
    }

    /// Forget a token made here whose Authenticate entry will not answer.
    pub(super) fn drop_pending_token(&mut self, seq: u64) {
        self.auth.pending_tokens.remove(&seq);
    }

    /// The permission check of a logged request that is not an
    /// auth-management one. Entries a member proposed for itself (lease
    /// expiry, alarms, compaction) carry no sender and are not checked.
    pub(super) fn auth_check_apply(
        &self,
        proposer: u64,
        info: Option<&AuthInfo>,
        body: &RequestBodyView<'_>,
    ) -> Result<(), (rpc::ErrorCode, String)> {
        if proposer == 0 || !self.auth.store.enabled() {
            return Ok(());
        }
        self.auth
            .store
            .check_request(info, body, &self.mvcc.borrow())
            .map_err(AuthError::pair)
    }

    /// A read's auth step, when it is served: an answer if it is refused
    /// or is an auth read; `None` to serve it as usual.
    pub(super) fn auth_read(
        &mut self,
        origin: Origin,
        req: &RequestView<'_>,
        header: &Header,
    ) -> Option<Vec<u8>> {
        let is_auth = auth::is_auth_request(&req.body);
        if !is_auth && !self.auth.store.enabled() {
            return None;
        }
        let id = req.id;
        let refuse = |s: &mut Shard, e: AuthError| {
            Some(
                s.enc
                    .error_response(id, Some(header), e.code(), e.message())
                    .to_vec(),
            )
        };
        let info = match self.auth_info(origin, req.token) {
            Ok(i) => i,
            Err(e) => return refuse(self, e),
        };
        if !is_auth {
            let checked =
                self.auth
                    .store
                    .check_request(info.as_ref(), &req.body, &self.mvcc.borrow());
            return checked.err().and_then(|e| refuse(self, e));
        }
        if let Err(e) = self.auth.store.check_auth_request(info.as_ref(), &req.body) {
            return refuse(self, e);
        }
        let store = &self.auth.store;
        let out = match &req.body {
            RequestBodyView::AuthStatus(_) => {
                self.enc
                    .auth_status_response(id, header, store.enabled(), store.revision())
            }
            RequestBodyView::UserGet(g) => match store.user(g.name().unwrap_or("")) {
                Some(u) => {
                    let roles: Vec<&str> = u.roles.iter().map(String::as_str).collect();
                    self.enc.user_get_response(id, header, &roles)
                }
                None => return refuse(self, AuthError::UserNotFound),
            },
            RequestBodyView::UserList(_) => {
                let users: Vec<&str> = store.users().collect();
                self.enc.user_list_response(id, header, &users)
            }
            RequestBodyView::RoleList(_) => {
                let roles: Vec<&str> = store.roles().collect();
                self.enc.role_list_response(id, header, &roles)
            }
            RequestBodyView::RoleGet(g) => match store.role(g.role().unwrap_or("")) {
                Ok(perms) => {
                    let refs: Vec<PermissionRef<'_>> = perms
                        .iter()
                        .map(|p| PermissionRef {
                            perm_type: perm_type(p.kind),
                            key: &p.key,
                            range_end: &p.range_end,
                        })
                        .collect();
                    self.enc.role_get_response(id, header, &refs)
                }
                Err(e) => return refuse(self, e),
            },
            _ => return refuse(self, AuthError::InvalidAuthMgmt),
        };
        Some(out.to_vec())
    }
}
