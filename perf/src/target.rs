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

/// A key's value and the revision that last modified it (0 when the key
/// does not exist), as a read-modify-write transaction sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned {
    pub value: Option<Bytes>,
    pub mod_revision: i64,
}

/// The error of a request the target cannot send (a fake in a test, or a
/// workload the target has no adapter for).
pub fn unsupported(what: &str) -> OpError {
    OpError::new(format!("{what}: not supported by this target"))
}

/// One connection to a system under test. Cloning shares the connection.
///
/// `put`, `range` and `txn_put` are required; the others have defaults that
/// fail with [`unsupported`], so an in-process fake needs only what its
/// workload sends.
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

    /// A txn whose success branch is one range request (etcd's `txn-mixed`
    /// reads this way).
    fn txn_range(
        &self,
        key: Bytes,
        range_end: Bytes,
        options: RangeOptions,
    ) -> impl Future<Output = Result<RangeResult, OpError>> + Send {
        let _ = (key, range_end, options);
        async { Err(unsupported("txn with a range")) }
    }

    /// Reads one key with its modification revision (linearizable).
    fn get_versioned(&self, key: Bytes) -> impl Future<Output = Result<Versioned, OpError>> + Send {
        let _ = key;
        async { Err(unsupported("versioned get")) }
    }

    /// A txn that applies `puts` only if every key of `expect` still has
    /// the given modification revision (0: the key does not exist).
    /// Answers whether it applied.
    fn txn_cas(
        &self,
        expect: Vec<(Bytes, i64)>,
        puts: Vec<(Bytes, Bytes)>,
    ) -> impl Future<Output = Result<bool, OpError>> + Send {
        let _ = (expect, puts);
        async { Err(unsupported("compare-and-swap txn")) }
    }

    /// Grants a lease of `ttl_secs`; answers its id.
    fn lease_grant(&self, ttl_secs: i64) -> impl Future<Output = Result<i64, OpError>> + Send {
        let _ = ttl_secs;
        async { Err(unsupported("lease grant")) }
    }

    /// Renews lease `id` once; answers the renewed TTL (0: the lease is
    /// gone).
    fn lease_keep_alive(&self, id: i64) -> impl Future<Output = Result<i64, OpError>> + Send {
        let _ = id;
        async { Err(unsupported("lease keep-alive")) }
    }

    /// The remaining TTL of lease `id` in seconds (-1: expired or unknown).
    fn lease_ttl(&self, id: i64) -> impl Future<Output = Result<i64, OpError>> + Send {
        let _ = id;
        async { Err(unsupported("lease time-to-live")) }
    }
}
