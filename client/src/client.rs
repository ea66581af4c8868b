//! The client: endpoints, the current connection, fail-over and the typed API.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_wire::{rpc, Encoder};
use tokio::time::Instant;

use crate::auth::Credentials;
use crate::codec::{self, AuthRequest, Reply, Request};
use crate::conn::Connection;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::limits::{
    AUTH_RETRIES_MAX, DIAL_TIMEOUT_DEFAULT, KEEPALIVE_TIMEOUT_DEFAULT, KEEPALIVE_TIME_DEFAULT,
    READ_RETRIES_MAX, RECONNECT_BACKOFF, REQUEST_TIMEOUT_DEFAULT, WATCH_RESUME_TIMEOUT_DEFAULT,
};
use crate::options::{DeleteOptions, GetOptions, PutOptions, WatchOptions};
use crate::txn::{Op, Txn};
use crate::types::*;
use crate::watch::Watcher;

/// How a [`Client`] connects and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Longest time to find a reachable endpoint (etcdctl's `--dial-timeout`).
    pub dial_timeout: Duration,
    /// Longest time one call waits for its answer once sent (etcdctl's
    /// `--command-timeout`).
    pub request_timeout: Duration,
    /// Idle time before the connection is probed, and the time without an
    /// answer to probes after which it counts as broken (etcdctl's
    /// `--keepalive-time` / `--keepalive-timeout`). Detects a member that
    /// vanished without closing the connection, so calls fail over instead
    /// of timing out one by one. `None` turns probing off.
    pub keepalive: Option<Keepalive>,
    /// How long a [`Watcher`] keeps trying to re-create its watch after
    /// losing it (a broken connection, a fail-over) before its stream
    /// returns the error.
    pub watch_resume_timeout: Duration,
}

/// TCP keep-alive settings; see [`ConnectOptions::keepalive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub time: Duration,
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            dial_timeout: DIAL_TIMEOUT_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            keepalive: Some(Keepalive {
                time: KEEPALIVE_TIME_DEFAULT,
                timeout: KEEPALIVE_TIMEOUT_DEFAULT,
            }),
            watch_resume_timeout: WATCH_RESUME_TIMEOUT_DEFAULT,
        }
    }
}

impl ConnectOptions {
    pub fn with_dial_timeout(mut self, timeout: Duration) -> Self {
        self.dial_timeout = timeout;
        self
    }
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    pub fn with_keepalive(mut self, keepalive: Option<Keepalive>) -> Self {
        self.keepalive = keepalive;
        self
    }
    pub fn with_watch_resume_timeout(mut self, timeout: Duration) -> Self {
        self.watch_resume_timeout = timeout;
        self
    }
}

struct Inner {
    endpoints: Vec<Endpoint>,
    options: ConnectOptions,
    /// The connection calls use; replaced when it breaks.
    current: Mutex<Option<Arc<Connection>>>,
    /// Serialises reconnection, so one broken connection causes one dial.
    reconnecting: tokio::sync::Mutex<()>,
    /// Where the next dial round starts: after the endpoint that failed.
    next_endpoint: AtomicUsize,
    next_id: AtomicU64,
    encoder: Mutex<Encoder>,
    /// Set when the connection speaks TLS (see [`Client::connect_with_tls`]).
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Who the client logs in as, if anyone (see [`Client::connect_with_auth`]).
    credentials: Option<Credentials>,
    /// Serialises re-authentication, so a burst of requests refused for a
    /// stale token causes one Authenticate.
    authenticating: tokio::sync::Mutex<()>,
    /// Bumped each time the encoder's token changes: a request that failed
    /// with a stale token re-authenticates only if nobody has since.
    token_generation: AtomicU64,
}

/// A cairn client. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.endpoints)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Client {
    /// Connects to the first reachable of `endpoints` (`host:port`,
    /// `http://host:port` or `https://host:port`), trying them in order
    /// until the dial timeout. `https://` endpoints need
    /// [`Client::connect_with_tls`] to say how to verify the server.
    pub async fn connect<S: AsRef<str>>(
        endpoints: impl IntoIterator<Item = S>,
        options: ConnectOptions,
    ) -> Result<Client> {
        Client::connect_with_tls(endpoints, options, None).await
    }

    /// [`Client::connect`], speaking TLS to every endpoint when `tls` is
    /// given (as etcdctl does once `--cacert` or a client certificate is).
    pub async fn connect_with_tls<S: AsRef<str>>(
        endpoints: impl IntoIterator<Item = S>,
        options: ConnectOptions,
        tls: Option<crate::TlsOptions>,
    ) -> Result<Client> {
        Client::connect_with_auth(endpoints, options, tls, None).await
    }

    /// [`Client::connect_with_tls`], logging in as `credentials`' user: the
    /// client authenticates on every connection it opens (the first, and
    /// each one after a reconnect or fail-over) and sends the token with
    /// every request. A request refused for a stale token ("invalid auth
    /// token", "revision of auth store is old") or for a missing one (auth
    /// was enabled after the client connected) makes the client
    /// authenticate again and resend it (up to
    /// [`AUTH_RETRIES_MAX`](crate::limits::AUTH_RETRIES_MAX) times: each
    /// refusal means one more auth change raced it). If the cluster does not
    /// have auth enabled, the client connects without a token.
    pub async fn connect_with_auth<S: AsRef<str>>(
        endpoints: impl IntoIterator<Item = S>,
        options: ConnectOptions,
        tls: Option<crate::TlsOptions>,
        credentials: Option<Credentials>,
    ) -> Result<Client> {
        let texts: Vec<String> = endpoints
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        let endpoints = Endpoint::parse_list(&texts)?;
        let tls = match tls {
            Some(t) => Some(t.build()?),
            None if endpoints.iter().any(Endpoint::is_https) => {
                // No CA given: nothing to verify the server against.
                Some(crate::TlsOptions::new().build()?)
            }
            None => None,
        };
        let client = Client {
            inner: Arc::new(Inner {
                endpoints,
                options,
                current: Mutex::new(None),
                reconnecting: tokio::sync::Mutex::new(()),
                next_endpoint: AtomicUsize::new(0),
                // 0 is what a server answers with when it cannot read a
                // request's id; never use it.
                next_id: AtomicU64::new(1),
                encoder: Mutex::new(Encoder::new()),
                tls,
                credentials,
                authenticating: tokio::sync::Mutex::new(()),
                token_generation: AtomicU64::new(0),
            }),
        };
        client.connection().await?;
        Ok(client)
    }

    /// The endpoints this client was given.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.inner.endpoints
    }

    /// The endpoint of the live connection, if any.
    pub fn connected_endpoint(&self) -> Option<Endpoint> {
        let current = self.lock_current();
        current
            .as_ref()
            .filter(|c| !c.is_broken())
            .map(|c| c.endpoint().clone())
    }

    /// The connection options.
    pub fn options(&self) -> ConnectOptions {
        self.inner.options
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Arc<Connection>>> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live_connection(&self) -> Option<Arc<Connection>> {
        self.lock_current()
            .as_ref()
            .filter(|c| !c.is_broken())
            .cloned()
    }

    /// The live connection, dialling a new one if there is none.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>> {
        if let Some(c) = self.live_connection() {
            return Ok(c);
        }
        let _turn = self.inner.reconnecting.lock().await;
        // Someone else may have reconnected while we waited for our turn.
        if let Some(c) = self.live_connection() {
            return Ok(c);
        }
        let broken = self.lock_current().take();
        if let Some(old) = broken {
            // Start with the endpoint after the one that failed.
            let failed = self.index_of(old.endpoint());
            self.inner
                .next_endpoint
                .store(failed + 1, Ordering::Relaxed);
        }
        let connection = Arc::new(self.dial().await?);
        self.authenticate_on(&connection).await?;
        *self.lock_current() = Some(connection.clone());
        Ok(connection)
    }

    /// The user this client logs in as, if any.
    pub fn user(&self) -> Option<&str> {
        self.inner.credentials.as_ref().map(|c| c.user.as_str())
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.inner.credentials.is_some()
    }

    pub(crate) fn token_generation(&self) -> u64 {
        self.inner.token_generation.load(Ordering::Acquire)
    }

    fn set_token(&self, token: Option<&str>) {
        self.inner
            .encoder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .set_token(token);
        self.inner.token_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Logs in on `connection` with the client's credentials (if any) and
    /// makes later requests carry the new token. A cluster without auth
    /// answers "authentication is not enabled": then no token is sent.
    async fn authenticate_on(&self, connection: &Connection) -> Result<()> {
        let Some(credentials) = &self.inner.credentials else {
            return Ok(());
        };
        let request = Request::Auth(AuthRequest::Authenticate {
            name: credentials.user.clone(),
            password: credentials.password.clone(),
        });
        // Authenticate carries no token: a stale one must not be judged.
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = codec::encode(&mut Encoder::new(), id, &request);
        let outcome = connection
            .call(id, frame, self.inner.options.request_timeout)
            .await;
        match outcome {
            Ok(Reply::Authenticate(r)) => {
                self.set_token(Some(&r.token));
                Ok(())
            }
            Ok(other) => Err(self.unexpected(&other, "AuthenticateResponse")),
            Err(Error::AuthNotEnabled) => {
                self.set_token(None);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Authenticates again after a request sent with token generation
    /// `seen` was refused for its token, unless another caller already
    /// has since.
    pub(crate) async fn refresh_token(&self, seen: u64) -> Result<()> {
        let _turn = self.inner.authenticating.lock().await;
        if self.token_generation() != seen {
            return Ok(());
        }
        let connection = self.connection().await?;
        if self.token_generation() != seen {
            // The connection was replaced, and logged in, meanwhile.
            return Ok(());
        }
        self.authenticate_on(&connection).await
    }

    fn index_of(&self, endpoint: &Endpoint) -> usize {
        self.inner
            .endpoints
            .iter()
            .position(|e| e == endpoint)
            .unwrap_or(0)
    }

    /// Tries the endpoints round-robin, from `next_endpoint`, until one
    /// accepts or the dial timeout passes.
    async fn dial(&self) -> Result<Connection> {
        let endpoints = &self.inner.endpoints;
        let deadline = Instant::now() + self.inner.options.dial_timeout;
        let mut last_error = String::from("no endpoint tried");
        let mut index = self.inner.next_endpoint.load(Ordering::Relaxed);
        loop {
            for _ in 0..endpoints.len() {
                let endpoint = &endpoints[index % endpoints.len()];
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(Error::DialTimeout { last_error });
                }
                match Connection::open(
                    endpoint,
                    remaining,
                    self.inner.options.keepalive,
                    self.inner.tls.as_ref(),
                )
                .await
                {
                    Ok(c) => {
                        self.inner
                            .next_endpoint
                            .store(index % endpoints.len(), Ordering::Relaxed);
                        return Ok(c);
                    }
                    Err(e) => last_error = e,
                }
                index += 1;
            }
            if Instant::now() + RECONNECT_BACKOFF >= deadline {
                return Err(Error::DialTimeout { last_error });
            }
            tokio::time::sleep(RECONNECT_BACKOFF).await;
        }
    }

    /// Sends a request and waits for its reply, with the request timeout,
    /// resending idempotent requests once if their connection broke.
    pub(crate) async fn request(&self, request: Request) -> Result<Reply> {
        let mut retries = 0;
        let mut auth_retries = 0;
        loop {
            let connection = self.connection().await?;
            let generation = self.token_generation();
            let outcome = self.call_on(&connection, &request).await;
            if let Err(e) = &outcome {
                // Refused before it was applied, so safe to resend.
                if e.needs_new_token() && self.has_credentials() && auth_retries < AUTH_RETRIES_MAX
                {
                    auth_retries += 1;
                    self.refresh_token(generation).await?;
                    continue;
                }
            }
            let resend = matches!(outcome, Err(Error::ConnectionLost { .. }))
                && request.is_idempotent()
                && retries < READ_RETRIES_MAX;
            if !resend {
                return outcome;
            }
            retries += 1;
        }
    }

    /// A fresh request id and the request's frame.
    pub(crate) fn encode(&self, request: &Request) -> (u64, Vec<u8>) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut encoder = self
            .inner
            .encoder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (id, codec::encode(&mut encoder, id, request))
    }

    /// Sends `request` on `connection` and waits for the reply, with the
    /// request timeout. No resend.
    pub(crate) async fn call_on(
        &self,
        connection: &Connection,
        request: &Request,
    ) -> Result<Reply> {
        let (id, frame) = self.encode(request);
        connection
            .call(id, frame, self.inner.options.request_timeout)
            .await
    }

    /// Watches `key` (or the range the options name) for changes.
    ///
    /// Returns once the server confirmed the watch. Events then arrive in
    /// revision order through [`Watcher::next`]. If the connection breaks,
    /// the watcher re-creates the watch on the next reachable endpoint from
    /// the revision after the last one it delivered: no event is missed or
    /// delivered twice.
    pub async fn watch(&self, key: impl Into<Vec<u8>>, options: WatchOptions) -> Result<Watcher> {
        Watcher::open(self.clone(), key.into(), options).await
    }

    /// Asks the server for a progress notification: the answer carries the
    /// revision every watch on this connection has caught up to.
    pub async fn watch_progress(&self) -> Result<WatchResponse> {
        match self.request(Request::WatchProgress).await? {
            Reply::Watch(r) => Ok(r),
            other => Err(self.unexpected(&other, "WatchResponse")),
        }
    }

    pub(crate) fn unexpected(&self, reply: &Reply, wanted: &str) -> Error {
        Error::Protocol {
            endpoint: self
                .connected_endpoint()
                .map(|e| e.original)
                .unwrap_or_default(),
            reason: format!("expected {wanted}, got {}", reply.type_name()),
        }
    }

    /// Sets `key` to `value`.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: PutOptions,
    ) -> Result<PutResponse> {
        match self
            .request(Request::Op(Op::put(key, value, options)))
            .await?
        {
            Reply::Put(r) => Ok(r),
            other => Err(self.unexpected(&other, "PutResponse")),
        }
    }

    /// Reads `key`, or the range the options name.
    pub async fn get(&self, key: impl Into<Vec<u8>>, options: GetOptions) -> Result<RangeResponse> {
        match self.request(Request::Op(Op::get(key, options))).await? {
            Reply::Range(r) => Ok(r),
            other => Err(self.unexpected(&other, "RangeResponse")),
        }
    }

    /// Deletes `key`, or the range the options name.
    pub async fn delete(
        &self,
        key: impl Into<Vec<u8>>,
        options: DeleteOptions,
    ) -> Result<DeleteResponse> {
        match self.request(Request::Op(Op::delete(key, options))).await? {
            Reply::Delete(r) => Ok(r),
            other => Err(self.unexpected(&other, "DeleteRangeResponse")),
        }
    }

    /// Runs a transaction.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        match self.request(Request::Op(Op::Txn(txn))).await? {
            Reply::Txn(r) => Ok(r),
            other => Err(self.unexpected(&other, "TxnResponse")),
        }
    }

    /// Runs one op (as a txn branch would), returning its response.
    pub async fn op(&self, op: Op) -> Result<ResponseOp> {
        Ok(match self.request(Request::Op(op)).await? {
            Reply::Range(r) => ResponseOp::Range(r),
            Reply::Put(r) => ResponseOp::Put(r),
            Reply::Delete(r) => ResponseOp::Delete(r),
            Reply::Txn(r) => ResponseOp::Txn(r),
            other => return Err(self.unexpected(&other, "an op response")),
        })
    }

    /// Discards history before `revision`. With `physical`, returns only once
    /// the space is reclaimed.
    pub async fn compact(&self, revision: i64, physical: bool) -> Result<CompactResponse> {
        match self
            .request(Request::Compact { revision, physical })
            .await?
        {
            Reply::Compact(r) => Ok(r),
            other => Err(self.unexpected(&other, "CompactionResponse")),
        }
    }

    /// The status of the member this client is connected to.
    pub async fn status(&self) -> Result<StatusResponse> {
        match self.request(Request::Status).await? {
            Reply::Status(r) => Ok(r),
            other => Err(self.unexpected(&other, "StatusResponse")),
        }
    }

    /// Every active alarm in the cluster.
    pub async fn alarm_list(&self) -> Result<AlarmResponse> {
        self.alarm(rpc::AlarmAction::Get, AlarmMember::default())
            .await
    }

    /// Deactivates an alarm. With member 0 and [`AlarmType::None`] (the
    /// default `AlarmMember`), deactivates every active alarm, as etcd's
    /// clients do; the answer then lists the alarms that were disarmed.
    pub async fn alarm_disarm(&self, alarm: AlarmMember) -> Result<AlarmResponse> {
        if alarm.member_id != 0 || alarm.alarm != AlarmType::None {
            return self.alarm(rpc::AlarmAction::Deactivate, alarm).await;
        }
        let active = self.alarm_list().await?;
        let mut disarmed = AlarmResponse {
            header: active.header,
            alarms: Vec::new(),
        };
        for a in active.alarms {
            let r = self.alarm(rpc::AlarmAction::Deactivate, a).await?;
            disarmed.header = r.header;
            disarmed.alarms.extend(r.alarms);
        }
        Ok(disarmed)
    }

    async fn alarm(&self, action: rpc::AlarmAction, alarm: AlarmMember) -> Result<AlarmResponse> {
        let request = Request::Alarm {
            action,
            member_id: alarm.member_id,
            alarm: alarm.alarm,
        };
        match self.request(request).await? {
            Reply::Alarm(r) => Ok(r),
            other => Err(self.unexpected(&other, "AlarmResponse")),
        }
    }

    /// The cluster's members (a linearizable read of the membership).
    pub async fn member_list(&self) -> Result<MemberListResponse> {
        match self
            .request(Request::MemberList { linearizable: true })
            .await?
        {
            Reply::MemberList(r) => Ok(r),
            other => Err(self.unexpected(&other, "MemberListResponse")),
        }
    }

    /// Grants a lease of `ttl` seconds; `id` 0 lets the server pick the id.
    pub async fn lease_grant(&self, ttl: i64, id: i64) -> Result<LeaseGrantResponse> {
        match self.request(Request::LeaseGrant { ttl, id }).await? {
            Reply::LeaseGrant(r) => Ok(r),
            other => Err(self.unexpected(&other, "LeaseGrantResponse")),
        }
    }

    /// Revokes a lease, deleting the keys attached to it.
    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse> {
        match self.request(Request::LeaseRevoke { id }).await? {
            Reply::LeaseRevoke(r) => Ok(r),
            other => Err(self.unexpected(&other, "LeaseRevokeResponse")),
        }
    }

    /// Renews a lease once. A `ttl` of 0 in the answer means the lease is
    /// gone (expired or revoked).
    pub async fn lease_keep_alive_once(&self, id: i64) -> Result<LeaseKeepAliveResponse> {
        match self.request(Request::LeaseKeepAlive { id }).await? {
            Reply::LeaseKeepAlive(r) => Ok(r),
            other => Err(self.unexpected(&other, "LeaseKeepAliveResponse")),
        }
    }

    /// A lease's remaining and granted TTL, and with `keys` its keys.
    pub async fn lease_time_to_live(&self, id: i64, keys: bool) -> Result<LeaseTimeToLiveResponse> {
        match self.request(Request::LeaseTimeToLive { id, keys }).await? {
            Reply::LeaseTimeToLive(r) => Ok(r),
            other => Err(self.unexpected(&other, "LeaseTimeToLiveResponse")),
        }
    }

    /// Every live lease.
    pub async fn lease_leases(&self) -> Result<LeaseLeasesResponse> {
        match self.request(Request::LeaseLeases).await? {
            Reply::LeaseLeases(r) => Ok(r),
            other => Err(self.unexpected(&other, "LeaseLeasesResponse")),
        }
    }

    /// Adds a member with these peer URLs (as a learner if asked).
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<MemberAddResponse> {
        match self
            .request(Request::MemberAdd {
                peer_urls,
                is_learner,
            })
            .await?
        {
            Reply::MemberAdd(r) => Ok(r),
            other => Err(self.unexpected(&other, "MemberAddResponse")),
        }
    }

    /// Removes a member.
    pub async fn member_remove(&self, id: u64) -> Result<MemberChangeResponse> {
        self.member_change(Request::MemberRemove { id }).await
    }

    /// Changes a member's peer URLs.
    pub async fn member_update(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<MemberChangeResponse> {
        self.member_change(Request::MemberUpdate { id, peer_urls })
            .await
    }

    /// Promotes a learner to a voting member.
    pub async fn member_promote(&self, id: u64) -> Result<MemberChangeResponse> {
        self.member_change(Request::MemberPromote { id }).await
    }

    async fn member_change(&self, request: Request) -> Result<MemberChangeResponse> {
        match self.request(request).await? {
            Reply::MemberChange(r) => Ok(r),
            other => Err(self.unexpected(&other, "a membership change response")),
        }
    }

    /// A hash of the connected member's KV history up to `revision` (0 =
    /// the latest), for comparing members.
    pub async fn hash_kv(&self, revision: i64) -> Result<HashKvResponse> {
        match self.request(Request::HashKv { revision }).await? {
            Reply::HashKv(r) => Ok(r),
            other => Err(self.unexpected(&other, "HashKVResponse")),
        }
    }

    /// Defragments the connected member's storage.
    pub async fn defragment(&self) -> Result<EmptyResponse> {
        match self.request(Request::Defragment).await? {
            Reply::Empty(r) => Ok(r),
            other => Err(self.unexpected(&other, "DefragmentResponse")),
        }
    }

    /// Asks the connected member, which must be the leader, to hand
    /// leadership to `target`.
    pub async fn move_leader(&self, target: u64) -> Result<EmptyResponse> {
        match self.request(Request::MoveLeader { target }).await? {
            Reply::Empty(r) => Ok(r),
            other => Err(self.unexpected(&other, "MoveLeaderResponse")),
        }
    }

    /// Closes the connection. Calls made afterwards connect again.
    pub fn close(&self) {
        self.lock_current().take();
    }
}
