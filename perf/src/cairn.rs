//! The cairn target: cairn's native protocol through `cairn-client`. One
//! [`Client`] is one connection, so `--conns N` opens N clients, spread
//! round-robin over the endpoints, and the harness's clients share them.

use std::time::Duration;

use bytes::Bytes;
use cairn_client::{
    Client, Compare, CompareResult, ConnectOptions, Credentials, GetOptions, Op, PermissionType,
    PutOptions, ResponseOp, TlsOptions, Txn, WatchOptions,
};

use crate::access::{Access, GRANT_KEY, GRANT_RANGE_END, PERF_ROLE, PROBE_KEY, ROOT_USER};
use crate::error::PerfError;
use crate::limits::{CAIRN_REQUEST_TIMEOUT_MS, CONNS_MAX, DIAL_TIMEOUT_MS, ERROR_KIND_CHARS_MAX};
use crate::target::{Consistency, OpError, RangeOptions, RangeResult, Target, Versioned};
use crate::watch::{WatchSpec, WatchStream, WatchTarget, WatchedEvent, Watcher};

/// One connection to a cairn member.
#[derive(Clone, Debug)]
pub struct CairnConn {
    client: Client,
}

/// Opens `conns` plaintext connections without a user, spread round-robin
/// over `endpoints`.
pub async fn connect(endpoints: &[String], conns: usize) -> Result<Vec<CairnConn>, PerfError> {
    connect_with(endpoints, conns, &Access::default()).await
}

/// Opens `conns` connections reaching the server as `access` says, spread
/// round-robin over `endpoints`. With a user, each connection
/// authenticates once as it opens.
pub async fn connect_with(
    endpoints: &[String],
    conns: usize,
    access: &Access,
) -> Result<Vec<CairnConn>, PerfError> {
    if endpoints.is_empty() {
        return Err(PerfError::config("no endpoints given"));
    }
    if conns == 0 || conns > CONNS_MAX {
        return Err(PerfError::config(format!(
            "--conns must be between 1 and {CONNS_MAX}"
        )));
    }
    let mut out = Vec::with_capacity(conns);
    for i in 0..conns {
        out.push(CairnConn::connect_with(&endpoints[i % endpoints.len()], access).await?);
    }
    Ok(out)
}

impl CairnConn {
    /// Connects to one endpoint (`host:port` or `http://host:port`) in
    /// plaintext, without a user.
    pub async fn connect(endpoint: &str) -> Result<CairnConn, PerfError> {
        CairnConn::connect_with(endpoint, &Access::default()).await
    }

    /// Connects to one endpoint as `access` says: over TLS when it names a
    /// CA, and authenticated (the client library logs in on connect and
    /// sends the token with every request) when it names a user.
    pub async fn connect_with(endpoint: &str, access: &Access) -> Result<CairnConn, PerfError> {
        let options = ConnectOptions::default()
            .with_dial_timeout(Duration::from_millis(DIAL_TIMEOUT_MS))
            .with_request_timeout(Duration::from_millis(CAIRN_REQUEST_TIMEOUT_MS));
        let tls = access.tls.as_ref().map(|files| TlsOptions {
            ca_file: Some(files.ca.clone()),
            cert_file: files.cert.clone(),
            key_file: files.key.clone(),
            insecure_skip_verify: false,
        });
        let credentials = access
            .user
            .as_ref()
            .map(|user| Credentials::new(user.name.clone(), user.password.clone()));
        let url = access.endpoint_url(endpoint);
        let client = Client::connect_with_auth([url.as_str()], options, tls, credentials)
            .await
            .map_err(|e| PerfError::Connect {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?;
        Ok(CairnConn { client })
    }

    /// The underlying client, for checks after a run.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Target for CairnConn {
    async fn put(&self, key: Bytes, value: Bytes) -> Result<(), OpError> {
        self.client
            .put(key, value, PutOptions::new())
            .await
            .map(|_| ())
            .map_err(op_error)
    }

    async fn range(
        &self,
        key: Bytes,
        range_end: Bytes,
        options: RangeOptions,
    ) -> Result<RangeResult, OpError> {
        let response = self
            .client
            .get(key, get_options(range_end, options))
            .await
            .map_err(op_error)?;
        Ok(range_result(response))
    }

    async fn txn_put(&self, puts: Vec<(Bytes, Bytes)>) -> Result<(), OpError> {
        let ops = puts
            .into_iter()
            .map(|(key, value)| Op::put(key, value, PutOptions::new()));
        let response = self
            .client
            .txn(Txn::new().and_then(ops))
            .await
            .map_err(op_error)?;
        if !response.succeeded {
            return Err(OpError::new("txn: success branch not taken"));
        }
        Ok(())
    }

    async fn txn_range(
        &self,
        key: Bytes,
        range_end: Bytes,
        options: RangeOptions,
    ) -> Result<RangeResult, OpError> {
        let get = Op::get(key, get_options(range_end, options));
        let mut response = self
            .client
            .txn(Txn::new().and_then([get]))
            .await
            .map_err(op_error)?;
        match response.responses.pop() {
            Some(ResponseOp::Range(range)) => Ok(range_result(range)),
            _ => Err(OpError::new("txn: expected one range response")),
        }
    }

    async fn get_versioned(&self, key: Bytes) -> Result<Versioned, OpError> {
        let mut response = self
            .client
            .get(key, GetOptions::new())
            .await
            .map_err(op_error)?;
        Ok(match response.kvs.pop() {
            Some(kv) => Versioned {
                value: Some(Bytes::from(kv.value)),
                mod_revision: kv.mod_revision,
            },
            None => Versioned::default(),
        })
    }

    async fn txn_cas(
        &self,
        expect: Vec<(Bytes, i64)>,
        puts: Vec<(Bytes, Bytes)>,
    ) -> Result<bool, OpError> {
        let compares = expect
            .into_iter()
            .map(|(key, revision)| Compare::mod_revision(key, CompareResult::Equal, revision));
        let ops = puts
            .into_iter()
            .map(|(key, value)| Op::put(key, value, PutOptions::new()));
        let response = self
            .client
            .txn(Txn::new().when(compares).and_then(ops))
            .await
            .map_err(op_error)?;
        Ok(response.succeeded)
    }

    async fn lease_grant(&self, ttl_secs: i64) -> Result<i64, OpError> {
        let response = self
            .client
            .lease_grant(ttl_secs, 0)
            .await
            .map_err(op_error)?;
        if !response.error.is_empty() {
            return Err(OpError::new(response.error));
        }
        Ok(response.id)
    }

    async fn lease_keep_alive(&self, id: i64) -> Result<i64, OpError> {
        let response = self
            .client
            .lease_keep_alive_once(id)
            .await
            .map_err(op_error)?;
        Ok(response.ttl)
    }

    async fn lease_ttl(&self, id: i64) -> Result<i64, OpError> {
        let response = self
            .client
            .lease_time_to_live(id, false)
            .await
            .map_err(op_error)?;
        Ok(response.ttl)
    }
}

fn get_options(range_end: Bytes, options: RangeOptions) -> GetOptions {
    let mut get = GetOptions::new().with_limit(options.limit);
    if !range_end.is_empty() {
        get = get.with_range_end(range_end);
    }
    if options.consistency == Consistency::Serializable {
        get = get.with_serializable();
    }
    if options.count_only {
        get = get.with_count_only();
    }
    get
}

fn range_result(response: cairn_client::RangeResponse) -> RangeResult {
    RangeResult {
        kvs: response
            .kvs
            .into_iter()
            .map(|kv| (Bytes::from(kv.key), Bytes::from(kv.value)))
            .collect(),
        count: response.count,
    }
}

/// The client's errors print as etcd's tools print them; that text is the
/// kind.
fn op_error(error: cairn_client::Error) -> OpError {
    let mut kind = error.to_string();
    if let Some((cut, _)) = kind.char_indices().nth(ERROR_KIND_CHARS_MAX) {
        kind.truncate(cut);
    }
    OpError::new(kind)
}

impl WatchTarget for CairnConn {
    type Stream = CairnConn;

    /// cairn multiplexes every watch of a connection on it: a stream is the
    /// connection itself.
    async fn open_watch_stream(&self) -> Result<CairnConn, OpError> {
        Ok(self.clone())
    }

    async fn revision(&self) -> Result<i64, OpError> {
        let response = self
            .client
            .get(
                Bytes::from_static(b"cairn-perf-probe"),
                GetOptions::new().with_count_only(),
            )
            .await
            .map_err(op_error)?;
        Ok(response.header.revision)
    }
}

impl WatchStream for CairnConn {
    type Watcher = CairnWatcher;

    async fn watch(&mut self, spec: WatchSpec) -> Result<CairnWatcher, OpError> {
        let mut options = WatchOptions::new();
        if !spec.range_end.is_empty() {
            options = options.with_range_end(spec.range_end);
        }
        if spec.start_revision > 0 {
            options = options.with_start_revision(spec.start_revision);
        }
        if spec.prev_kv {
            options = options.with_prev_kv();
        }
        let watcher = self
            .client
            .watch(spec.key, options)
            .await
            .map_err(op_error)?;
        Ok(CairnWatcher { watcher })
    }
}

/// One watch on a cairn connection.
#[derive(Debug)]
pub struct CairnWatcher {
    watcher: cairn_client::Watcher,
}

impl Watcher for CairnWatcher {
    async fn next(&mut self) -> Result<Option<Vec<WatchedEvent>>, OpError> {
        loop {
            let Some(response) = self.watcher.next().await.map_err(op_error)? else {
                return Ok(None);
            };
            if response.canceled {
                return Err(OpError::new(format!(
                    "watch canceled: {}",
                    response.cancel_reason
                )));
            }
            if response.events.is_empty() {
                continue;
            }
            return Ok(Some(
                response
                    .events
                    .into_iter()
                    .map(|event| WatchedEvent {
                        value: Bytes::from(event.kv.value),
                        mod_revision: event.kv.mod_revision,
                    })
                    .collect(),
            ));
        }
    }
}

/// The member id of the leader as `endpoint` sees it, and its own id.
pub async fn leader_of(endpoint: &str, access: &Access) -> Result<(u64, u64), PerfError> {
    let conn = CairnConn::connect_with(endpoint, access).await?;
    let status = conn.client.status().await.map_err(|e| PerfError::Connect {
        endpoint: endpoint.to_string(),
        reason: format!("endpoint status: {e}"),
    })?;
    Ok((status.leader, status.header.member_id))
}

/// Whether a cairn at `url` answers a read (plaintext, no user).
pub async fn answers(url: &str) -> bool {
    answers_with(url, &Access::default()).await
}

/// Whether a cairn at `url` answers a read made as `access` says.
pub async fn answers_with(url: &str, access: &Access) -> bool {
    let Ok(conn) = CairnConn::connect_with(url, access).await else {
        return false;
    };
    let options = RangeOptions {
        consistency: Consistency::Linearizable,
        limit: 1,
        count_only: true,
    };
    conn.range(
        Bytes::from_static(b"cairn-perf-probe"),
        Bytes::new(),
        options,
    )
    .await
    .is_ok()
}

/// Switches auth on in a fresh cluster reached at `endpoint` (as `access`
/// says, without its user): `root` and the access's user, both with its
/// password, the user holding [`PERF_ROLE`] with READWRITE on the
/// harness's keys and READ on the probe key, then `auth enable`. The user
/// is not root, so every request is checked against the role's range.
pub async fn enable_auth(endpoint: &str, access: &Access) -> Result<(), PerfError> {
    let Some(user) = &access.user else {
        return Ok(());
    };
    let conn = CairnConn::connect_with(endpoint, &access.without_user()).await?;
    let admin = &conn.client;
    let failed = |step: &str, e: cairn_client::Error| PerfError::Connect {
        endpoint: endpoint.to_string(),
        reason: format!("setting up auth: {step}: {e}"),
    };
    admin
        .user_add(ROOT_USER, &user.password)
        .await
        .map_err(|e| failed("user add root", e))?;
    // The root role exists without being added, as in etcd.
    admin
        .user_grant_role(ROOT_USER, ROOT_USER)
        .await
        .map_err(|e| failed("grant root", e))?;
    if user.name != ROOT_USER {
        admin
            .role_add(PERF_ROLE)
            .await
            .map_err(|e| failed("role add", e))?;
        admin
            .role_grant_permission(
                PERF_ROLE,
                PermissionType::ReadWrite,
                GRANT_KEY,
                GRANT_RANGE_END,
            )
            .await
            .map_err(|e| failed("grant readwrite", e))?;
        admin
            .role_grant_permission(PERF_ROLE, PermissionType::Read, PROBE_KEY, Vec::<u8>::new())
            .await
            .map_err(|e| failed("grant read", e))?;
        admin
            .user_add(&user.name, &user.password)
            .await
            .map_err(|e| failed("user add", e))?;
        admin
            .user_grant_role(&user.name, PERF_ROLE)
            .await
            .map_err(|e| failed("grant role", e))?;
    }
    admin
        .auth_enable()
        .await
        .map_err(|e| failed("auth enable", e))?;
    Ok(())
}
