//! The messages of etcd's v3 gRPC API beyond plain KV that the watch,
//! lease, read-modify-write and leader-finding workloads use, declared with
//! prost's derive from the field numbers of etcd's `rpc.proto` (as
//! [`proto`](super::proto) does for KV). Fields the harness never sets or
//! reads are left out; protobuf decoding skips them.

use bytes::Bytes;

use super::proto::{KeyValue, RequestOp, ResponseHeader, ResponseOp};

/// `Compare.CompareResult::EQUAL`.
pub const COMPARE_EQUAL: i32 = 0;
/// `Compare.CompareTarget::MOD`.
pub const COMPARE_TARGET_MOD: i32 = 2;

/// One guard of a txn. Only the modification-revision target is declared:
/// the target union is a oneof, whose members are encoded like optional
/// fields, so `Some(0)` is sent (and means "the key does not exist").
#[derive(Clone, PartialEq, prost::Message)]
pub struct Compare {
    #[prost(int32, tag = "1")]
    pub result: i32,
    #[prost(int32, tag = "2")]
    pub target: i32,
    #[prost(bytes = "bytes", tag = "3")]
    pub key: Bytes,
    #[prost(int64, optional, tag = "6")]
    pub mod_revision: Option<i64>,
}

/// A txn with comparisons (the `TxnRequest` of [`proto`](super::proto)
/// leaves them out).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GuardedTxnRequest {
    #[prost(message, repeated, tag = "1")]
    pub compare: Vec<Compare>,
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<RequestOp>,
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<RequestOp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GuardedTxnResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(bool, tag = "2")]
    pub succeeded: bool,
    #[prost(message, repeated, tag = "3")]
    pub responses: Vec<ResponseOp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseGrantRequest {
    #[prost(int64, tag = "1")]
    pub ttl: i64,
    #[prost(int64, tag = "2")]
    pub id: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseGrantResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(int64, tag = "2")]
    pub id: i64,
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    #[prost(string, tag = "4")]
    pub error: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseKeepAliveRequest {
    #[prost(int64, tag = "1")]
    pub id: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseKeepAliveResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(int64, tag = "2")]
    pub id: i64,
    #[prost(int64, tag = "3")]
    pub ttl: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseTimeToLiveRequest {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(bool, tag = "2")]
    pub keys: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseTimeToLiveResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(int64, tag = "2")]
    pub id: i64,
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    #[prost(int64, tag = "4")]
    pub granted_ttl: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(int64, tag = "3")]
    pub db_size: i64,
    #[prost(uint64, tag = "4")]
    pub leader: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchCreateRequest {
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub range_end: Bytes,
    #[prost(int64, tag = "3")]
    pub start_revision: i64,
    #[prost(bool, tag = "6")]
    pub prev_kv: bool,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum WatchRequestUnion {
    #[prost(message, tag = "1")]
    Create(WatchCreateRequest),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchRequest {
    #[prost(oneof = "WatchRequestUnion", tags = "1")]
    pub request: Option<WatchRequestUnion>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// 0 = PUT, 1 = DELETE.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(message, optional, tag = "2")]
    pub kv: Option<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(int64, tag = "2")]
    pub watch_id: i64,
    #[prost(bool, tag = "3")]
    pub created: bool,
    #[prost(bool, tag = "4")]
    pub canceled: bool,
    #[prost(int64, tag = "5")]
    pub compact_revision: i64,
    #[prost(string, tag = "6")]
    pub cancel_reason: String,
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_compare_on_a_missing_key_sends_revision_zero() {
        let compare = Compare {
            result: COMPARE_EQUAL,
            target: COMPARE_TARGET_MOD,
            key: Bytes::from_static(b"k"),
            mod_revision: Some(0),
        };
        // field 2 (varint) 2, field 3 (bytes) "k", field 6 (varint) 0.
        assert_eq!(
            compare.encode_to_vec(),
            vec![0x10, 2, 0x1a, 1, b'k', 0x30, 0]
        );
    }

    #[test]
    fn a_watch_create_is_field_one_of_the_request() {
        let request = WatchRequest {
            request: Some(WatchRequestUnion::Create(WatchCreateRequest {
                key: Bytes::from_static(b"a"),
                ..WatchCreateRequest::default()
            })),
        };
        assert_eq!(request.encode_to_vec(), vec![0x0a, 3, 0x0a, 1, b'a']);
    }
}
