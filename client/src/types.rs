//! Responses, as plain owned structs shaped like etcd's (`etcdserverpb`).

/// Which cluster and member answered, and the store's revision and Raft term
/// when the answer was produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseHeader {
    pub cluster_id: u64,
    pub member_id: u64,
    pub revision: i64,
    pub raft_term: u64,
}

/// One key's state at a revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    /// Revision of the key's last creation.
    pub create_revision: i64,
    /// Revision of the key's last modification.
    pub mod_revision: i64,
    /// 1 on creation, +1 per put.
    pub version: i64,
    pub value: Vec<u8>,
    /// The lease attached to the key, 0 for none.
    pub lease: i64,
}

/// The answer to a get (etcd's RangeResponse).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeResponse {
    pub header: ResponseHeader,
    pub kvs: Vec<KeyValue>,
    /// More keys matched than the limit let through.
    pub more: bool,
    /// Keys in the range, regardless of the limit.
    pub count: i64,
}

/// The answer to a put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutResponse {
    pub header: ResponseHeader,
    /// The key's state before the put, when asked for with `prev_kv`.
    pub prev_kv: Option<KeyValue>,
}

/// The answer to a delete (etcd's DeleteRangeResponse).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteResponse {
    pub header: ResponseHeader,
    pub deleted: i64,
    /// The deleted pairs, when asked for with `prev_kv`.
    pub prev_kvs: Vec<KeyValue>,
}

/// The answer to one operation of a txn branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    Delete(DeleteResponse),
    Txn(TxnResponse),
}

/// The answer to a txn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnResponse {
    pub header: ResponseHeader,
    /// True when every compare held and the success branch ran.
    pub succeeded: bool,
    /// One response per operation of the branch that ran, in order. Their
    /// headers carry only the revision (as etcd's do).
    pub responses: Vec<ResponseOp>,
}

/// The answer to a compaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactResponse {
    pub header: ResponseHeader,
}

/// One member's status (etcd's Maintenance.Status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusResponse {
    pub header: ResponseHeader,
    pub version: String,
    pub db_size: i64,
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    /// Active alarms and other conditions, as text.
    pub errors: Vec<String>,
    pub db_size_in_use: i64,
    pub is_learner: bool,
}

/// The kinds of alarm a member can raise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AlarmType {
    /// In a request: every kind.
    #[default]
    None,
    /// The storage quota is exhausted; only reads and deletes are accepted.
    NoSpace,
    /// The member's data failed an integrity check.
    Corrupt,
}

impl AlarmType {
    /// etcd's name for the alarm (its protobuf enum name).
    pub fn name(self) -> &'static str {
        match self {
            AlarmType::None => "NONE",
            AlarmType::NoSpace => "NOSPACE",
            AlarmType::Corrupt => "CORRUPT",
        }
    }

    /// etcd's numeric value for the alarm.
    pub fn number(self) -> i32 {
        match self {
            AlarmType::None => 0,
            AlarmType::NoSpace => 1,
            AlarmType::Corrupt => 2,
        }
    }
}

/// An alarm raised by a member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmMember {
    pub member_id: u64,
    pub alarm: AlarmType,
}

/// The answer to an alarm list or disarm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmResponse {
    pub header: ResponseHeader,
    pub alarms: Vec<AlarmMember>,
}

/// A cluster member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    /// Empty until the member has started.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// The answer to a member list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberListResponse {
    pub header: ResponseHeader,
    pub members: Vec<Member>,
}

/// The answer to a lease grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseGrantResponse {
    pub header: ResponseHeader,
    pub id: i64,
    /// The granted time to live in seconds (the server may raise it to its
    /// minimum).
    pub ttl: i64,
    /// etcd's per-grant error text, empty on success.
    pub error: String,
}

/// The answer to a lease revoke.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseRevokeResponse {
    pub header: ResponseHeader,
}

/// The answer to one lease keep-alive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseKeepAliveResponse {
    pub header: ResponseHeader,
    pub id: i64,
    /// The renewed time to live in seconds; 0 when the lease is gone.
    pub ttl: i64,
}

/// The answer to a lease time-to-live query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseTimeToLiveResponse {
    pub header: ResponseHeader,
    pub id: i64,
    /// Remaining seconds; -1 when the lease has expired.
    pub ttl: i64,
    /// The TTL the lease was granted with.
    pub granted_ttl: i64,
    /// Keys attached to the lease, when asked for.
    pub keys: Vec<Vec<u8>>,
}

/// The answer to a lease list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseLeasesResponse {
    pub header: ResponseHeader,
    /// Ids of every live lease.
    pub leases: Vec<i64>,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EventType {
    #[default]
    Put,
    Delete,
}

impl EventType {
    /// etcd's name for the event type ("PUT", "DELETE").
    pub fn name(self) -> &'static str {
        match self {
            EventType::Put => "PUT",
            EventType::Delete => "DELETE",
        }
    }
}

/// One change seen by a watch. A delete's `kv` carries the key and the
/// deletion revision as `mod_revision`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    pub kv: KeyValue,
    /// The key's state before the change, when the watch asked for it.
    pub prev_kv: Option<KeyValue>,
}

/// One message of a watch: a batch of events, or a created / canceled /
/// progress notice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchResponse {
    pub header: ResponseHeader,
    pub watch_id: i64,
    pub created: bool,
    pub canceled: bool,
    /// Set when the watch was canceled because its start revision has been
    /// compacted: the oldest revision still available.
    pub compact_revision: i64,
    pub cancel_reason: String,
    pub fragment: bool,
    pub events: Vec<Event>,
}

impl WatchResponse {
    /// True for a progress notification: no events, just the revision the
    /// watch has caught up to (in the header).
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
            && !self.canceled
            && !self.created
            && self.compact_revision == 0
            && self.header.revision != 0
    }
}

/// The answer to a member add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberAddResponse {
    pub header: ResponseHeader,
    /// The member just added.
    pub member: Member,
    /// Every member, the new one included.
    pub members: Vec<Member>,
}

/// The answer to a member remove, update or promote: the members after it.
pub type MemberChangeResponse = MemberListResponse;

/// The answer to a KV hash (etcd's HashKV, for comparing members).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashKvResponse {
    pub header: ResponseHeader,
    pub hash: u32,
    /// The compaction revision the hash starts from.
    pub compact_revision: i64,
    /// The revision the hash goes up to.
    pub hash_revision: i64,
}

/// The answer to a defragment or move-leader: only a header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmptyResponse {
    pub header: ResponseHeader,
}
