//! The plain data Raft exchanges with its caller: log entries, persistent
//! state, snapshots and messages. Every field is a plain value so that the
//! wire and WAL encodings can live elsewhere.

use bytes::Bytes;

/// Bytes charged for an entry beyond its payload (index, term, kind and
/// framing) when sizing messages, in-flight windows and Ready batches, so
/// that empty entries still cost something.
pub const ENTRY_OVERHEAD_BYTES: u64 = 24;

/// What a log entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Application data (opaque to Raft). An empty payload is the no-op a new
    /// leader appends to commit entries of earlier terms.
    Normal,
    /// An encoded [`crate::ConfChange`]; the caller decodes it when it is
    /// committed and hands it to `RawNode::apply_conf_change`.
    ConfChange,
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, starting at 1.
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// How to interpret `data`.
    pub kind: EntryKind,
    /// Payload; a reference-counted buffer so the bytes a client sent can be
    /// logged, replicated and applied without copying.
    pub data: Bytes,
}

impl Entry {
    /// A normal entry with no position yet (the leader assigns index/term).
    pub fn normal(data: Bytes) -> Self {
        Entry {
            index: 0,
            term: 0,
            kind: EntryKind::Normal,
            data,
        }
    }

    /// Bytes this entry is charged for in size limits.
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64 + ENTRY_OVERHEAD_BYTES
    }
}

/// State that must be durable before a node answers a vote or acknowledges
/// entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: u64,
    /// Node voted for in `term` (0 = none).
    pub vote: u64,
    /// Highest index known committed. Losing it is safe (it is re-learned),
    /// but persisting it lets a restart re-apply without waiting for a leader.
    pub commit: u64,
}

/// Membership of the cluster as of some log index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfState {
    /// Voters of the incoming (or only) configuration.
    pub voters: Vec<u64>,
    /// Non-voting members that receive the log.
    pub learners: Vec<u64>,
    /// Voters of the outgoing configuration; non-empty only while joint.
    pub voters_outgoing: Vec<u64>,
    /// Nodes that become learners when the joint configuration is left (they
    /// are still voters in the outgoing configuration).
    pub learners_next: Vec<u64>,
    /// Whether the leader leaves the joint configuration by itself.
    pub auto_leave: bool,
}

impl ConfState {
    /// A plain configuration of the given voters.
    pub fn with_voters(voters: &[u64]) -> Self {
        ConfState {
            voters: voters.to_vec(),
            ..ConfState::default()
        }
    }

    /// Whether `id` is a member of any kind.
    pub fn contains(&self, id: u64) -> bool {
        self.voters.contains(&id)
            || self.learners.contains(&id)
            || self.voters_outgoing.contains(&id)
            || self.learners_next.contains(&id)
    }
}

/// Where a snapshot sits in the log and the membership at that point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMetadata {
    /// Last log index the snapshot covers.
    pub index: u64,
    /// Term of the entry at `index`.
    pub term: u64,
    /// Membership as of `index`.
    pub conf_state: ConfState,
}

/// A point-in-time image of the applied state. Raft never looks at `data`;
/// the server may stream the real image itself and put a descriptor here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Position and membership.
    pub metadata: SnapshotMetadata,
    /// Opaque application payload.
    pub data: Bytes,
}

/// The kinds of message nodes exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Leader → follower: entries after (`index`, `log_term`), plus `commit`.
    Append,
    /// Follower → leader: accepted up to `index`, or `reject` with a hint of
    /// where the logs may agree (`reject_hint`, `log_term`).
    AppendResponse,
    /// Candidate → voter: vote for me in `term`; my last entry is
    /// (`index`, `log_term`). `campaign_transfer` forces past leader leases.
    Vote,
    /// Voter → candidate: granted unless `reject`.
    VoteResponse,
    /// Like `Vote` for `term` (one above the sender's), but no state changes.
    PreVote,
    /// Answer to `PreVote`.
    PreVoteResponse,
    /// Leader → follower: I am alive; commit up to `commit`. `context` is the
    /// read round the heartbeat confirms (0 = none).
    Heartbeat,
    /// Follower → leader: echoes the heartbeat's `context`.
    HeartbeatResponse,
    /// Leader → follower: install `snapshot`.
    Snapshot,
    /// Leader → transfer target: campaign now, past leader leases.
    TimeoutNow,
    /// Follower → leader: a proposal forwarded in `entries`.
    Propose,
    /// Follower → leader: a linearizable read request with id `context`.
    ReadIndex,
    /// Leader → follower: the read `context` may be served once `index` is
    /// applied.
    ReadIndexResponse,
    /// Follower → leader: hand leadership to the node named in `context`.
    TransferLeader,
}

/// A message between nodes. Fields not named by a kind's documentation are
/// zero/empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// What this message is.
    pub kind: MessageKind,
    /// Sender id.
    pub from: u64,
    /// Recipient id.
    pub to: u64,
    /// Sender's term (for `PreVote`, the term it would campaign in).
    pub term: u64,
    /// Term of the entry at `index` (Append: the entry before `entries`;
    /// votes: the candidate's last entry; AppendResponse reject: hint term).
    pub log_term: u64,
    /// A log index; meaning per kind.
    pub index: u64,
    /// Entries to append (Append) or to propose (Propose).
    pub entries: Vec<Entry>,
    /// Sender's commit index (Append, Heartbeat).
    pub commit: u64,
    /// The snapshot to install (Snapshot only).
    pub snapshot: Option<Snapshot>,
    /// Refusal (AppendResponse, VoteResponse, PreVoteResponse).
    pub reject: bool,
    /// On a rejected append: the highest index at which the follower's log
    /// may match the leader's.
    pub reject_hint: u64,
    /// Read round (Heartbeat*), read request id (ReadIndex*), or the
    /// transfer target (TransferLeader).
    pub context: u64,
    /// On Vote: the campaign comes from a leader transfer.
    pub campaign_transfer: bool,
}

impl Message {
    /// A message with every optional field empty.
    pub fn new(kind: MessageKind, from: u64, to: u64, term: u64) -> Self {
        Message {
            kind,
            from,
            to,
            term,
            log_term: 0,
            index: 0,
            entries: Vec::new(),
            commit: 0,
            snapshot: None,
            reject: false,
            reject_hint: 0,
            context: 0,
            campaign_transfer: false,
        }
    }
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes; term not yet raised.
    PreCandidate,
    /// Asking for votes in its term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// Volatile state the caller may want to observe (never persisted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftState {
    /// Known leader (0 = none).
    pub leader: u64,
    /// This node's role.
    pub role: Role,
}

/// The answer to a ReadIndex request: serve the read identified by `context`
/// once the applied index reaches `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// Commit index at the time leadership was confirmed.
    pub index: u64,
    /// The caller's request id.
    pub context: u64,
}
