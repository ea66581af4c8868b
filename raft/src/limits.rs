//! Every limit of the Raft core, with the reason for its value. Defaults for
//! the tunable ones live here too; [`crate::Config`] carries the values a
//! node actually uses.

/// Default bytes of entries in one Append message. Large enough that a batch
/// of small entries travels as one message, small enough that one message
/// does not stall a peer connection for long.
pub const MAX_SIZE_PER_MSG_BYTES_DEFAULT: u64 = 1024 * 1024;

/// Default Append messages in flight to one follower. With pipelining, the
/// window must cover a round trip's worth of batches.
pub const MAX_INFLIGHT_MSGS_DEFAULT: usize = 256;

/// Upper bound on `max_inflight_msgs`: the in-flight ring is allocated to
/// this size at most, per follower.
pub const MAX_INFLIGHT_MSGS_LIMIT: usize = 64 * 1024;

/// Default bytes of entries in flight to one follower: bounds the memory a
/// slow follower can pin at the leader and in the network.
pub const MAX_INFLIGHT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// Default bytes of appended but uncommitted entries at the leader. Beyond
/// this, proposals are dropped so a leader without a quorum does not grow its
/// log without bound.
pub const MAX_UNCOMMITTED_ENTRIES_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;

/// Default bytes of committed entries handed out in one Ready, so applying a
/// long backlog after a restart does not need one huge allocation.
pub const MAX_COMMITTED_BYTES_PER_READY_DEFAULT: u64 = 64 * 1024 * 1024;

/// Upper bound on `election_tick`; the randomized timeout is at most twice
/// this, and ticks are counted in `usize`-safe arithmetic.
pub const ELECTION_TICK_LIMIT: usize = 1 << 20;

/// Pending ReadIndex requests a leader queues. Reads beyond this are
/// answered by nobody and the caller's read times out; the server batches
/// reads, so a handful of requests per heartbeat round is normal.
pub const MAX_PENDING_READ_INDEX: usize = 64 * 1024;

/// Heartbeat rounds a leader remembers the send tick of until a quorum
/// acknowledges them. Rounds go out every heartbeat; ones older than an
/// election timeout cannot extend the lease, so a few dozen suffice.
pub const MAX_UNACKED_READ_ROUNDS: usize = 256;

/// Share of the election timeout a lease lasts, in percent. The rest is the
/// margin for clocks that run at slightly different rates.
pub const LEASE_ELECTION_TIMEOUT_PERCENT: u64 = 80;

/// Read states a node holds for the caller between two Readys.
pub const MAX_READ_STATES: usize = MAX_PENDING_READ_INDEX;

/// Messages a node buffers for the caller between two Readys. Exceeding it
/// means the caller stopped draining Readys, which is a bug.
pub const MAX_MSGS_BUFFERED: usize = 1024 * 1024;

/// Voters and learners a configuration may hold: quorum computations sort
/// the members, and every member costs a progress entry at the leader.
pub const MAX_MEMBERS: usize = 1024;

/// Changes one conf change may carry.
pub const MAX_CONF_CHANGES: usize = MAX_MEMBERS;

const _: () = assert!(MAX_INFLIGHT_MSGS_DEFAULT <= MAX_INFLIGHT_MSGS_LIMIT);
const _: () = assert!(MAX_SIZE_PER_MSG_BYTES_DEFAULT <= MAX_INFLIGHT_BYTES_DEFAULT);
const _: () = assert!(MAX_READ_STATES >= MAX_PENDING_READ_INDEX);
const _: () = assert!(LEASE_ELECTION_TIMEOUT_PERCENT < 100);
