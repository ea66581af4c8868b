//! The etcd target: etcd's v3 gRPC API, one HTTP/2 connection per
//! `--conns`, shared by the clients assigned to it.
//!
//! Unary calls (every KV request, and status, auth and lease calls) go
//! straight over that connection (`grpc.rs`), through the harness's own
//! HTTP/2 client (`http2/`): the load generator must cost far less than
//! the server it measures, and tonic's channel (a buffer task, channels
//! and a spawned task per call) cost about 25 µs of CPU per put, a whole
//! core at 40k puts/s; a general-purpose HTTP/2 client still about 13 µs.
//! Streams (watches, lease keep-alives) use a tonic channel that opens its
//! own connection on the first stream.

pub mod auth;
mod dial;
mod grpc;
mod http2;
pub mod watch;

use bytes::Bytes;
use cairn_wire::etcdpb::{self as pb, path};
use std::time::Duration;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::access::{Access, TlsFiles};
use crate::error::PerfError;
use crate::limits::{CONNS_MAX, DIAL_TIMEOUT_MS, ERROR_KIND_CHARS_MAX};
use crate::target::{Consistency, OpError, RangeOptions, RangeResult, Target, Versioned};

/// One gRPC connection to an etcd member.
#[derive(Clone, Debug)]
pub struct EtcdConn {
    /// Unary calls.
    calls: grpc::UnaryConn,
    /// Streams; connects on the first one.
    channel: Channel,
    /// The token from Authenticate, sent as the `token` metadata of every
    /// request (as etcd's Go client sends it), when the run has a user.
    token: Option<MetadataValue<Ascii>>,
}

/// Opens `conns` plaintext connections without a user, spread round-robin
/// over `endpoints`.
pub async fn connect(endpoints: &[String], conns: usize) -> Result<Vec<EtcdConn>, PerfError> {
    connect_with(endpoints, conns, &Access::default()).await
}

/// Opens `conns` connections reaching the server as `access` says, spread
/// round-robin over `endpoints`. With a user, each connection
/// authenticates once as it opens.
pub async fn connect_with(
    endpoints: &[String],
    conns: usize,
    access: &Access,
) -> Result<Vec<EtcdConn>, PerfError> {
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
        out.push(EtcdConn::connect_with(&endpoints[i % endpoints.len()], access).await?);
    }
    Ok(out)
}

impl EtcdConn {
    /// Connects to one endpoint (`host:port` or `http://host:port`) in
    /// plaintext, without a user.
    pub async fn connect(endpoint: &str) -> Result<EtcdConn, PerfError> {
        EtcdConn::connect_with(endpoint, &Access::default()).await
    }

    /// Connects to one endpoint as `access` says: over TLS when it names a
    /// CA, and with the token of one Authenticate call when it names a
    /// user.
    pub async fn connect_with(endpoint: &str, access: &Access) -> Result<EtcdConn, PerfError> {
        let connect_error = |reason: String| PerfError::Connect {
            endpoint: endpoint.to_string(),
            reason,
        };
        let mut builder = Endpoint::from_shared(access.endpoint_url(endpoint))
            .map_err(|e| connect_error(e.to_string()))?
            .connect_timeout(Duration::from_millis(DIAL_TIMEOUT_MS))
            .tcp_nodelay(true);
        if let Some(files) = &access.tls {
            builder = builder
                .tls_config(tls_config(files)?)
                .map_err(|e| connect_error(error_chain(&e)))?;
        }
        let channel = builder.connect_lazy();
        let calls = grpc::UnaryConn::new(dial::dial(endpoint, access).await?);
        let mut conn = EtcdConn {
            calls,
            channel,
            token: None,
        };
        if let Some(user) = &access.user {
            let authenticated = async {
                let token = conn.authenticate(&user.name, &user.password).await?;
                let metadata = MetadataValue::try_from(token.as_str())
                    .map_err(|_| OpError::new("the token is not printable ASCII"))?;
                Ok::<_, OpError>((conn.calls.with_token(&token)?, metadata))
            };
            let (calls, metadata) = authenticated
                .await
                .map_err(|e| connect_error(format!("authenticate as {}: {}", user.name, e.kind)))?;
            conn.calls = calls;
            conn.token = Some(metadata);
        }
        Ok(conn)
    }

    async fn unary<Req, Resp>(&self, path: &'static str, request: Req) -> Result<Resp, OpError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.calls.call(path, &request).await
    }

    /// Opens a bidirectional stream: `requests` go out as they are sent on
    /// the returned channel's other end, answers come back in order.
    pub(crate) async fn streaming<Req, Resp, S>(
        &self,
        path: &'static str,
        requests: S,
    ) -> Result<tonic::Streaming<Resp>, OpError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        S: tokio_stream::Stream<Item = Req> + Send + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| op_error(format!("transport: {}", error_chain(&e))))?;
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        grpc.streaming(
            self.request(requests),
            PathAndQuery::from_static(path),
            codec,
        )
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| status_error(&status))
    }

    /// `message` as a request carrying this connection's token, if any.
    fn request<M>(&self, message: M) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request.metadata_mut().insert("token", token.clone());
        }
        request
    }

    /// This member's id and the leader's, from its status.
    pub async fn leader(&self) -> Result<(u64, u64), OpError> {
        let response: pb::StatusResponse = self.unary(path::STATUS, pb::StatusRequest {}).await?;
        let member = response.header.map(|h| h.member_id).unwrap_or(0);
        Ok((response.leader, member))
    }

    /// Deletes every key in `[key, range_end)`; used to reset a server
    /// between runs and by tests.
    pub async fn delete_range(&self, key: Bytes, range_end: Bytes) -> Result<i64, OpError> {
        let request = pb::DeleteRangeRequest {
            key,
            range_end,
            ..Default::default()
        };
        let response: pb::DeleteRangeResponse = self.unary(path::KV_DELETE_RANGE, request).await?;
        Ok(response.deleted)
    }
}

impl Target for EtcdConn {
    async fn put(&self, key: Bytes, value: Bytes) -> Result<(), OpError> {
        let request = pb::PutRequest {
            key,
            value,
            ..Default::default()
        };
        let _: pb::PutResponse = self.unary(path::KV_PUT, request).await?;
        Ok(())
    }

    async fn range(
        &self,
        key: Bytes,
        range_end: Bytes,
        options: RangeOptions,
    ) -> Result<RangeResult, OpError> {
        let request = range_request(key, range_end, options);
        let response: pb::RangeResponse = self.unary(path::KV_RANGE, request).await?;
        Ok(range_result(response))
    }

    async fn txn_put(&self, puts: Vec<(Bytes, Bytes)>) -> Result<(), OpError> {
        let success = puts
            .into_iter()
            .map(|(key, value)| put_op(key, value))
            .collect();
        let request = pb::TxnRequest {
            success,
            ..Default::default()
        };
        let response: pb::TxnResponse = self.unary(path::KV_TXN, request).await?;
        if !response.succeeded {
            return Err(op_error("txn: success branch not taken".to_string()));
        }
        Ok(())
    }

    async fn txn_range(
        &self,
        key: Bytes,
        range_end: Bytes,
        options: RangeOptions,
    ) -> Result<RangeResult, OpError> {
        let request = pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(pb::Request::Range(range_request(key, range_end, options))),
            }],
            ..Default::default()
        };
        let mut response: pb::TxnResponse = self.unary(path::KV_TXN, request).await?;
        match response.responses.pop().and_then(|op| op.response) {
            Some(pb::Response::Range(range)) => Ok(range_result(range)),
            _ => Err(op_error("txn: expected one range response".to_string())),
        }
    }

    async fn get_versioned(&self, key: Bytes) -> Result<Versioned, OpError> {
        let request = pb::RangeRequest {
            key,
            ..Default::default()
        };
        let mut response: pb::RangeResponse = self.unary(path::KV_RANGE, request).await?;
        Ok(match response.kvs.pop() {
            Some(kv) => Versioned {
                value: Some(kv.value),
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
        let request = pb::TxnRequest {
            compare: expect
                .into_iter()
                .map(|(key, revision)| mod_revision_equals(key, revision))
                .collect(),
            success: puts
                .into_iter()
                .map(|(key, value)| put_op(key, value))
                .collect(),
            failure: Vec::new(),
        };
        let response: pb::TxnResponse = self.unary(path::KV_TXN, request).await?;
        Ok(response.succeeded)
    }

    async fn lease_grant(&self, ttl_secs: i64) -> Result<i64, OpError> {
        let request = pb::LeaseGrantRequest {
            ttl: ttl_secs,
            id: 0,
        };
        let response: pb::LeaseGrantResponse = self.unary(path::LEASE_GRANT, request).await?;
        if !response.error.is_empty() {
            return Err(op_error(response.error));
        }
        Ok(response.id)
    }

    /// etcd renews leases only over its `LeaseKeepAlive` stream; one renewal
    /// opens a stream, sends one request and reads one answer, as
    /// clientv3's `KeepAliveOnce` (and so etcd's benchmark tool) does.
    async fn lease_keep_alive(&self, id: i64) -> Result<i64, OpError> {
        let request = pb::LeaseKeepAliveRequest { id };
        let mut answers = self
            .streaming::<_, pb::LeaseKeepAliveResponse, _>(
                path::LEASE_KEEP_ALIVE,
                tokio_stream::once(request),
            )
            .await?;
        match answers.message().await {
            Ok(Some(response)) => Ok(response.ttl),
            Ok(None) => Err(op_error("lease keep-alive: stream ended".to_string())),
            Err(status) => Err(status_error(&status)),
        }
    }

    async fn lease_ttl(&self, id: i64) -> Result<i64, OpError> {
        let request = pb::LeaseTimeToLiveRequest { id, keys: false };
        let response: pb::LeaseTimeToLiveResponse =
            self.unary(path::LEASE_TIME_TO_LIVE, request).await?;
        Ok(response.ttl)
    }
}

/// tonic's TLS settings from the files: the CA, and the client certificate
/// when one is given.
fn tls_config(files: &TlsFiles) -> Result<ClientTlsConfig, PerfError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| PerfError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })
    };
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&files.ca)?));
    if let (Some(cert), Some(key)) = (&files.cert, &files.key) {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(config)
}

fn range_request(key: Bytes, range_end: Bytes, options: RangeOptions) -> pb::RangeRequest {
    pb::RangeRequest {
        key,
        range_end,
        limit: options.limit,
        serializable: options.consistency == Consistency::Serializable,
        count_only: options.count_only,
        ..Default::default()
    }
}

fn range_result(response: pb::RangeResponse) -> RangeResult {
    RangeResult {
        kvs: response
            .kvs
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect(),
        count: response.count,
    }
}

fn put_op(key: Bytes, value: Bytes) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::Request::Put(pb::PutRequest {
            key,
            value,
            ..Default::default()
        })),
    }
}

/// The guard "`key` was last modified at `revision`". The target value is a
/// oneof member, so it is sent even when it is 0, which etcd reads as "the
/// key does not exist".
fn mod_revision_equals(key: Bytes, revision: i64) -> pb::Compare {
    pb::Compare {
        result: pb::CompareResult::Equal as i32,
        target: pb::CompareTarget::Mod as i32,
        key,
        target_union: Some(pb::TargetUnion::ModRevision(revision)),
        ..Default::default()
    }
}

/// etcd puts its error text (`etcdserver: too many requests`) in the status
/// message; that text is the kind. A status without a message is counted by
/// its code.
pub(crate) fn status_error(status: &tonic::Status) -> OpError {
    let message = status.message();
    if message.is_empty() {
        op_error(format!("grpc: {:?}", status.code()))
    } else {
        op_error(message.to_string())
    }
}

pub(crate) fn op_error(mut kind: String) -> OpError {
    if let Some((cut, _)) = kind.char_indices().nth(ERROR_KIND_CHARS_MAX) {
        kind.truncate(cut);
    }
    OpError::new(kind)
}

/// The error and its causes on one line: tonic's top-level transport error
/// alone says only "transport error".
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_guard_on_a_missing_key_sends_revision_zero() {
        let compare = mod_revision_equals(Bytes::from_static(b"k"), 0);
        // field 2 (varint) 2, field 3 (bytes) "k", field 6 (varint) 0.
        assert_eq!(
            compare.encode_to_vec(),
            vec![0x10, 2, 0x1a, 1, b'k', 0x30, 0]
        );
    }

    #[test]
    fn a_serializable_range_sets_field_seven() {
        let options = RangeOptions {
            consistency: Consistency::Serializable,
            limit: 0,
            count_only: false,
        };
        let request = range_request(Bytes::from_static(b"k"), Bytes::new(), options);
        assert_eq!(request.encode_to_vec(), vec![0x0a, 1, b'k', 0x38, 1]);
    }

    #[test]
    fn a_put_sends_only_key_and_value() {
        let op = put_op(Bytes::from_static(b"k"), Bytes::from_static(b"v"));
        // RequestOp field 2 (put), 6 bytes: field 1 "k", field 2 "v".
        assert_eq!(
            op.encode_to_vec(),
            vec![0x12, 6, 0x0a, 1, b'k', 0x12, 1, b'v']
        );
    }
}
