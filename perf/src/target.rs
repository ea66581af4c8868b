//! The seam between workloads and the systems they drive.
//!
//! A [`Target`] is one connection to a system under test. Workload code is
//! written once against this trait; `etcd` (gRPC) and `cairn` (its native
//! protocol) are thin adapters, and tests plug in an in-process fake. Many
//! clients share one connection by cloning it, as etcd's benchmark tool
//! shares `--conns` gRPC connections among `--clients` clients.

use std::future::Future;

use bytes::Bytes;

/// Read consistency of a range request (etcd's `--consistency l|s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Linearizable: confirmed with the leader/quorum before answering.
    Linearizable,
    /// Serializable: answered from the member's local state.
    Serializable,
}

/// Options of a range request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeOptions {
    pub consistency: Consistency,
    /// Most keys returned; 0 = no limit.
    pub limit: i64,
    /// Return only the number of matching keys.
    pub count_only: bool,
}

/// What a range request found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeResult {
    /// The key-value pairs returned.
    pub kvs: Vec<(Bytes, Bytes)>,
    /// Keys in the range regardless of the limit.
    pub count: i64,
}

/// A failed request, reduced to the kind it is counted under in the summary
/// (the server's message, e.g. `etcdserver: too many requests`, or the
/// transport's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub kind: String,
}

impl OpError {
    pub fn new(kind: impl Into<String>) -> OpError {
        OpError { kind: kind.into() }
    }
}

/// One connection to a system under test. Cloning shares the connection.
pub trait Target: Clone + Send + Sync + 'static {
    /// Writes `value` under `key`.
    fn put(&self, key: Bytes, value: Bytes) -> impl Future<Output = Result<(), OpError>> + Send;

    /// Reads `key`, or `[key, range_end)` when `range_end` is not empty.
    fn range(
        &self,
        key: Bytes,
        range_end: Bytes,
        options: RangeOptions,
    ) -> impl Future<Output = Result<RangeResult, OpError>> + Send;

    /// Writes all `puts` in one transaction (no comparisons).
    fn txn_put(
        &self,
        puts: Vec<(Bytes, Bytes)>,
    ) -> impl Future<Output = Result<(), OpError>> + Send;
}
