//! Requests, responses and events of the MVCC index.
//!
//! Requests borrow their byte strings (`&'a [u8]`) so that the server can map
//! verified flatbuffer views onto them without copying; responses own theirs,
//! because they outlive the request and the index's next write.

/// A point in the store's history: `main` counts write requests (one per
/// write request or writing txn), `sub` numbers the changes inside one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    /// The cluster-wide revision of the write request.
    pub main: i64,
    /// The change's position inside that write request (0-based).
    pub sub: i64,
}

/// A key's state at some revision, as etcd's `mvccpb.KeyValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// Revision of the put that created the key in its current generation.
    pub create_revision: i64,
    /// Revision of the last change to the key.
    pub mod_revision: i64,
    /// 1 on create, +1 per put, reset by delete.
    pub version: i64,
    /// The value (empty for `keys_only` reads and in DELETE events).
    pub value: Vec<u8>,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// What kind of change an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change, as etcd's `mvccpb.Event`.
///
/// A DELETE event's `kv` carries only the key and, as `mod_revision`, the
/// revision of the deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// PUT or DELETE.
    pub kind: EventKind,
    /// The key after the change.
    pub kv: KeyValue,
    /// The key before the change, when requested and when it existed.
    pub prev_kv: Option<KeyValue>,
}

/// The order of a range's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Key order (etcd sorts ascending by the target when a non-key target
    /// is given with NONE).
    #[default]
    None,
    /// Lowest target first.
    Ascend,
    /// Highest target first.
    Descend,
}

/// The field a range's results are sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortTarget {
    /// The key.
    #[default]
    Key,
    /// The version.
    Version,
    /// The create revision.
    Create,
    /// The mod revision.
    Mod,
    /// The value.
    Value,
}

/// etcd's `RangeRequest` (without `serializable`, which is the server's
/// business: the index always answers from its own state).
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeRequest<'a> {
    /// First key (or the only key when `range_end` is empty).
    pub key: &'a [u8],
    /// Empty: only `key`; `"\0"`: every key ≥ `key`; otherwise `[key, range_end)`.
    pub range_end: &'a [u8],
    /// Most keys to return; 0 or negative: no limit.
    pub limit: i64,
    /// Revision to read at; 0 or negative: the current one.
    pub revision: i64,
    /// Result order.
    pub sort_order: SortOrder,
    /// Field to sort by.
    pub sort_target: SortTarget,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
    /// Drop results whose mod revision is below this (0: no bound).
    pub min_mod_revision: i64,
    /// Drop results whose mod revision is above this (0: no bound).
    pub max_mod_revision: i64,
    /// Drop results whose create revision is below this (0: no bound).
    pub min_create_revision: i64,
    /// Drop results whose create revision is above this (0: no bound).
    pub max_create_revision: i64,
}

/// etcd's `RangeResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResponse {
    /// The header revision: the store's current revision when read.
    pub revision: i64,
    /// The results, after filtering, sorting and the limit.
    pub kvs: Vec<KeyValue>,
    /// True when the limit cut the results short.
    pub more: bool,
    /// Number of keys in the range at the read revision, ignoring the limit
    /// and the min/max revision filters (as etcd).
    pub count: i64,
}

/// etcd's `PutRequest`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutRequest<'a> {
    /// The key; must not be empty.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Lease to attach the key to, 0 for none. The index does not check
    /// that the lease exists; the lease table does, before applying.
    pub lease: i64,
    /// Return the previous key-value pair.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist and `value` be empty).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist and `lease` be 0).
    pub ignore_lease: bool,
}

/// etcd's `PutResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutResponse {
    /// The revision of the put.
    pub revision: i64,
    /// The previous key-value pair, when requested and when it existed.
    pub prev_kv: Option<KeyValue>,
}

/// etcd's `DeleteRangeRequest`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteRangeRequest<'a> {
    /// First key (or the only key when `range_end` is empty).
    pub key: &'a [u8],
    /// As in [`RangeRequest::range_end`].
    pub range_end: &'a [u8],
    /// Return the deleted key-value pairs.
    pub prev_kv: bool,
}

/// etcd's `DeleteRangeResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRangeResponse {
    /// The revision after the delete (unchanged when nothing was deleted).
    pub revision: i64,
    /// Number of keys deleted.
    pub deleted: i64,
    /// The deleted pairs, when requested.
    pub prev_kvs: Vec<KeyValue>,
}

/// How a txn compare relates the key's field to the given operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareResult {
    /// field == operand
    Equal,
    /// field > operand
    Greater,
    /// field < operand
    Less,
    /// field != operand
    NotEqual,
}

/// The field a txn compare looks at, with its operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareTarget<'a> {
    /// The version.
    Version(i64),
    /// The create revision.
    Create(i64),
    /// The mod revision.
    Mod(i64),
    /// The value (a compare on a value of a missing key is always false).
    Value(&'a [u8]),
    /// The lease id.
    Lease(i64),
}

/// etcd's `Compare`: holds when it holds for every key in the range (a
/// missing key compares as all zeroes, except for VALUE, which fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compare<'a> {
    /// The relation.
    pub result: CompareResult,
    /// The field and operand.
    pub target: CompareTarget<'a>,
    /// The key; must not be empty.
    pub key: &'a [u8],
    /// As in [`RangeRequest::range_end`].
    pub range_end: &'a [u8],
}

/// One operation of a txn branch.
#[derive(Debug, Clone)]
pub enum RequestOp<'a> {
    /// A read; sees the txn's earlier writes.
    Range(RangeRequest<'a>),
    /// A put.
    Put(PutRequest<'a>),
    /// A delete.
    DeleteRange(DeleteRangeRequest<'a>),
    /// A nested txn (its compares see the state before the outer txn).
    Txn(TxnRequest<'a>),
}

/// etcd's `TxnRequest`.
#[derive(Debug, Clone, Default)]
pub struct TxnRequest<'a> {
    /// All must hold for `success` to run; otherwise `failure` runs.
    pub compare: Vec<Compare<'a>>,
    /// Ops run when every compare holds.
    pub success: Vec<RequestOp<'a>>,
    /// Ops run otherwise.
    pub failure: Vec<RequestOp<'a>>,
}

/// The response to one op of a txn branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseOp {
    /// Answer to a range.
    Range(RangeResponse),
    /// Answer to a put.
    Put(PutResponse),
    /// Answer to a delete.
    DeleteRange(DeleteRangeResponse),
    /// Answer to a nested txn.
    Txn(TxnResponse),
}

/// etcd's `TxnResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnResponse {
    /// The revision after the txn (unchanged when it wrote nothing).
    pub revision: i64,
    /// Whether the compares held.
    pub succeeded: bool,
    /// One response per op of the branch that ran.
    pub responses: Vec<ResponseOp>,
}

/// The result of a write: the response for the client and the events the
/// write produced, in order (the watch hub's input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<T> {
    /// The client's answer.
    pub response: T,
    /// Every change made, in (main, sub) order; empty when nothing changed.
    pub events: Vec<Event>,
}

/// etcd's `HashKVResponse` without the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKv {
    /// Order-independent digest of the kept history at or below
    /// `hash_revision` (see the module docs for exactly what is hashed).
    pub hash: u32,
    /// The compaction point when hashed (-1 if never compacted).
    pub compact_revision: i64,
    /// The revision the hash covers.
    pub hash_revision: i64,
}

/// A batch of replayed events (see [`super::Mvcc::events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    /// Events in (main, sub) order; a revision is never split.
    pub events: Vec<Event>,
    /// Where to continue: one past the last revision covered.
    pub next_revision: i64,
}
