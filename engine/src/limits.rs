//! Every limit of the engine, with the reason for its value.
//!
//! Limits are grouped by the module that enforces them. Related limits are
//! tied together with compile-time assertions so that changing one cannot
//! silently break another.

// ---- server ----

/// etcd's `--max-request-bytes` default: 1.5 MiB. A request larger than this
/// is refused before it is read into memory.
pub const REQUEST_BYTES_MAX_DEFAULT: u32 = 1536 * 1024;

/// Upper bound for `--max-request-bytes`: a Raft entry must fit in one WAL
/// segment with room to spare, and a peer message carries whole entries.
pub const REQUEST_BYTES_MAX_CEILING: u32 = 16 * 1024 * 1024;

/// etcd's `--max-txn-ops` default.
pub const TXN_OPS_MAX_DEFAULT: usize = 128;

/// etcd's default `--quota-backend-bytes`: 2 GiB.
pub const QUOTA_BYTES_DEFAULT: u64 = 2 * 1024 * 1024 * 1024;

/// etcd 3.5's `--snapshot-count` default.
pub const SNAPSHOT_COUNT_DEFAULT: u64 = 100_000;

/// Messages queued between two executors in each direction. A message
/// carries a whole socket read's worth of requests (or a shard cycle's worth
/// of responses), so a few hundred keep both sides busy without letting one
/// executor buffer unbounded work for another.
pub const MESH_CHANNEL_CAPACITY: usize = 256;

/// Messages waiting in the shard's inbox (local connections plus the mesh).
pub const SHARD_INBOX_CAPACITY: usize = 1024;

/// Requests one connection may have in flight. The reader stops reading
/// from the socket at this many, so a client that never reads its responses
/// holds at most this many responses in server memory.
pub const CONN_INFLIGHT_MAX: usize = 4096;

/// A connection's response queue holds at most one response per request in
/// flight, so it can never be full while the connection is open.
pub const CONN_OUTBOUND_CAPACITY: usize = CONN_INFLIGHT_MAX;

/// Bytes read from a socket at once. Large enough to take many pipelined
/// small requests per system call.
pub const CONN_READ_BUFFER_BYTES: usize = 64 * 1024;

/// Bytes of answers one connection may hold in server memory: queued for
/// its socket and not yet written, plus those still to come for requests
/// already admitted (charged at an estimate; see `server/conn/budget.rs`).
/// At this many the reader stops reading requests from the socket, so TCP
/// pushes back on a client that does not read its answers and it costs
/// about this much plus one answer, whatever it asks for. 8 MiB covers the
/// bandwidth-delay product of a 10 Gbit/s link at a few milliseconds, so a
/// client that does read never waits on it; it is checked before a request
/// is admitted, so a single answer larger than this is still delivered.
pub const CONN_QUEUED_ANSWER_BYTES_MAX: usize = 8 * 1024 * 1024;

/// How fast a connection's estimate of its next answer's size forgets a
/// large answer: each smaller answer lowers it by this fraction. Slow
/// enough that a client alternating a few small requests with large ones
/// keeps a large estimate, fast enough that one whose answers shrink for
/// good regains a deep pipeline within a few dozen answers.
pub const CONN_ANSWER_ESTIMATE_DECAY_DIVISOR: usize = 8;

/// Response bytes coalesced into one socket write.
pub const CONN_WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

/// A new connection must send its preface within this time, so idle
/// half-open connections cannot pile up.
pub const PREFACE_TIMEOUT_MS: u64 = 10_000;

/// Pause after a failed accept (e.g. out of file descriptors) before the
/// next one, so the accept loop does not spin.
pub const ACCEPT_BACKOFF_MS: u64 = 100;

/// Connections the kernel queues on each listening socket before an
/// executor accepts them (per executor, as every executor has its own).
/// Connection storms (every client of a restarted cluster reconnecting at
/// once) fit; more only hides an executor that has stopped accepting.
pub const LISTEN_BACKLOG: i32 = 1024;

/// How long start-up keeps retrying a client or peer address that something
/// listens on before it fails with "address already in use". A process
/// killed with SIGKILL cannot shut its listeners: the kernel lets go of a
/// listener with an io_uring accept pending only when it tears the ring
/// down, a few milliseconds after the process has been reaped, and a
/// supervisor that restarts at once must not lose that race. A port that
/// stays taken costs this much before the error.
pub const LISTEN_BUSY_WAIT_MS: u64 = 1_000;

/// Pause between those retries.
pub const LISTEN_BUSY_RETRY_MS: u64 = 20;
const _: () = assert!(LISTEN_BUSY_RETRY_MS < LISTEN_BUSY_WAIT_MS);

/// How often each executor checks whether the server is stopping. Only
/// shutdown latency depends on it.
pub const STOP_POLL_MS: u64 = 50;

/// Requests admitted into the shard and not yet answered. Bounds the memory
/// of everything queued behind Raft and the WAL, and so every outbox.
pub const SHARD_PENDING_MAX: usize = 64 * 1024;

/// Requests proposed to Raft in one batch. A batch becomes one WAL write;
/// beyond a few thousand, bigger batches only add latency.
pub const PROPOSAL_BATCH_MAX: usize = 4096;

/// Committed entries the shard applies between two passes through its
/// executor's reactor. A pass reaps the WAL's completed write and submits
/// the next one, so the disk does not sit idle through a long apply; at a
/// few µs per entry this is a pass every few hundred µs.
pub const APPLY_ENTRIES_PER_PASS: usize = 64;

/// Entries kept in memory behind the latest snapshot, so a follower that
/// is only a little behind catches up from the log (etcd keeps 5000).
pub const SNAPSHOT_CATCH_UP_ENTRIES: u64 = 5_000;

/// etcd's request timeout is 5 s plus two election timeouts; a request not
/// answered by then gets "etcdserver: request timed out".
pub const REQUEST_TIMEOUT_BASE_MS: u64 = 5_000;

/// Encoded Raft messages queued for one peer. Past this the peer is
/// reported unreachable and messages are dropped (Raft retries), so a slow
/// or dead peer costs bounded memory.
pub const PEER_QUEUE_FRAMES_MAX: usize = 4096;

/// Bytes of peer frames coalesced into one socket write.
pub const PEER_WRITE_BATCH_BYTES_MAX: usize = 1024 * 1024;

/// Time allowed to connect to a peer before trying again later.
pub const PEER_DIAL_TIMEOUT_MS: u64 = 1_000;

/// Back-off between reconnection attempts to a peer: doubles from the
/// minimum to the maximum while the peer stays unreachable.
pub const PEER_RECONNECT_BACKOFF_MIN_MS: u64 = 50;
pub const PEER_RECONNECT_BACKOFF_MAX_MS: u64 = 1_000;

/// Raft messages from peers queued for the shard. Each peer connection
/// waits when this is full, which is the back-pressure a slow member
/// applies to a fast one.
pub const SHARD_PEER_EVENTS_CAPACITY: usize = 1024;

/// Raft ticks replayed at once after the shard was stalled (a pause, a long
/// fsync). Enough to keep heartbeats flowing; a stall of the whole process
/// is not evidence that the peers are gone, so no more.
pub const TICKS_CATCH_UP_MAX: u32 = 2;

/// Events (request batches, ticks) queued for the shard loop.
pub const SHARD_EVENTS_CAPACITY: usize = 1024;

/// WAL writes handed over and not yet durable. The WAL pipelines one batch
/// being synced while the next fills; a few more keep Raft moving while the
/// disk is briefly slow.
pub const SHARD_PERSIST_QUEUE_MAX: usize = 8;

const _: () = assert!(CONN_OUTBOUND_CAPACITY >= CONN_INFLIGHT_MAX);
// A full write batch of answers fits the budget with room to spare.
const _: () = assert!(CONN_QUEUED_ANSWER_BYTES_MAX >= 4 * CONN_WRITE_BATCH_BYTES_MAX);
const _: () = assert!(CONN_ANSWER_ESTIMATE_DECAY_DIVISOR >= 2);
const _: () = assert!(REQUEST_BYTES_MAX_DEFAULT <= REQUEST_BYTES_MAX_CEILING);

// ---- io ----

/// Alignment of every write to a WAL or snapshot file: the page size, which
/// is also the largest logical block size O_DIRECT demands on common disks,
/// so one value serves 512-byte and 4 KiB-sector devices alike.
pub const IO_ALIGN_BYTES: usize = 4096;

/// The unit of atomicity assumed of the disk: a write that is interrupted
/// leaves each 512-byte sector either old or new, never mixed. The crash
/// simulator tears writes at this granularity.
pub const IO_SECTOR_BYTES: usize = 512;

const _: () = assert!(IO_ALIGN_BYTES % IO_SECTOR_BYTES == 0);

// ---- wal ----

/// Size of one preallocated WAL segment file. Large enough that rolling to a
/// new segment (create, preallocate, directory fsync) is rare (once per
/// 64 MiB of log), small enough that a released segment frees space promptly
/// after a snapshot. etcd uses the same size.
pub const WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Largest batch written with one write + one fdatasync. Bounds the memory of
/// one buffer and the latency a batch adds to the appenders queued behind it;
/// 1 MiB is where one sequential write already runs at the disk's bandwidth.
pub const WAL_BATCH_BYTES_MAX: usize = 1024 * 1024;

/// How far ahead of the log's end the WAL keeps its segment written with
/// zeros. A segment is reserved with `fallocate`, which leaves its blocks
/// unwritten; the first write into such a block makes the next fdatasync
/// commit a filesystem journal transaction as well as flush the disk, about
/// 0.1 ms more per sync on the machines measured. Writing zeros a little ahead
/// (half this much at a time, after a batch is synced) turns the log's writes
/// into overwrites. Large enough that one zero write serves many small
/// batches, small enough that the batch queued behind it waits a fraction of
/// a sync.
pub const WAL_ZERO_AHEAD_BYTES: u64 = 512 * 1024;

/// Sealed batches waiting behind the ones being written. Appenders wait when
/// the queue is full, which bounds WAL memory to
/// `(WAL_BATCH_QUEUE_MAX + WAL_WRITES_IN_FLIGHT + 1) * WAL_BATCH_BYTES_MAX`.
/// Two is enough to keep the disk busy: batches fill while the previous
/// ones are written.
pub const WAL_BATCH_QUEUE_MAX: usize = 2;

/// Batches whose durable writes are in flight at once. A disk's cache flush
/// (what an O_DSYNC write ends with) costs about the same for one write as
/// for two queued together, so a second write in flight nearly doubles what
/// a busy log makes durable per second. Recovery depends on this being at
/// most two: after a crash only the last batch and the one before it can be
/// incomplete, and a valid batch after a damaged one must say that the
/// damaged one was still in flight when it was issued.
pub const WAL_WRITES_IN_FLIGHT: usize = 2;

/// Largest payload of one WAL entry. A Raft entry carries one client request
/// (etcd's limit is 1.5 MiB) or a batch of small ones; the record must fit in
/// one batch together with its headers.
pub const WAL_ENTRY_PAYLOAD_BYTES_MAX: usize = WAL_BATCH_BYTES_MAX - 2 * IO_ALIGN_BYTES;

const _: () = assert!(WAL_BATCH_BYTES_MAX % IO_ALIGN_BYTES == 0);
const _: () = assert!(WAL_SEGMENT_BYTES % IO_ALIGN_BYTES as u64 == 0);
// A segment holds its header block plus at least a few full batches.
const _: () = assert!(WAL_SEGMENT_BYTES >= 8 * WAL_BATCH_BYTES_MAX as u64);
const _: () = assert!(WAL_ENTRY_PAYLOAD_BYTES_MAX >= 1536 * 1024 / 2);
const _: () = assert!(WAL_ZERO_AHEAD_BYTES % (2 * IO_ALIGN_BYTES as u64) == 0);

// ---- snap ----

/// Snapshot files kept in `member/snap/`. Two: the newest, and the previous
/// one to fall back to if the newest turns out damaged. The WAL keeps every
/// entry after the older of the two, so either can be used for recovery.
pub const SNAP_FILES_KEPT: usize = 2;

/// Largest chunk in a snapshot file. Bounds the memory a reader allocates for
/// one chunk before its checksum is verified (a damaged length field must not
/// make the reader allocate gigabytes).
pub const SNAP_CHUNK_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Largest caller metadata blob in a snapshot header (revision, compact
/// revision, membership). Bounded for the same reason as chunks.
pub const SNAP_META_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Bytes buffered by the snapshot writer before one write to the file:
/// large enough that writing is sequential and cheap, small enough to keep
/// the memory of an online snapshot modest.
pub const SNAP_WRITE_BUFFER_BYTES: usize = 1024 * 1024;

const _: () = assert!(SNAP_FILES_KEPT >= 2);
const _: () = assert!(SNAP_WRITE_BUFFER_BYTES % IO_ALIGN_BYTES == 0);

// ---- mvcc ----

/// Default most compares, success ops or failure ops in one txn: etcd's
/// `--max-txn-ops` default, so clients written for etcd fit.
pub const MVCC_TXN_OPS_MAX_DEFAULT: usize = 128;

/// Default size a snapshot chunk aims for. Producing one chunk walks the
/// index without yielding, so this bounds the pause it puts between two
/// applied entries (≈ 1 ms per MiB) and the memory one chunk holds.
pub const MVCC_SNAPSHOT_CHUNK_BYTES_DEFAULT: usize = 4 << 20;

/// Most events one [`crate::mvcc::Mvcc::events`] call returns by default
/// (one revision is never split, so a single huge revision may exceed it).
/// Bounds the memory of one catch-up step of a watcher.
pub const MVCC_REPLAY_EVENTS_MAX_DEFAULT: usize = 1000;

// A chunk may exceed its target by one version (key + value, bounded by the
// 1.5 MiB request limit, plus 41 bytes of fields and a record head); the
// snapshot file must still accept it.
const _: () = assert!(MVCC_SNAPSHOT_CHUNK_BYTES_DEFAULT + (2 << 20) <= SNAP_CHUNK_BYTES_MAX);

// ---- leases and watches ----

/// Longest lease TTL a grant accepts: etcd's `MaxLeaseTTL` (9e9 s).
pub const LEASE_TTL_MAX_S: i64 = 9_000_000_000;

/// Most leases at once. Every lease is 16 bytes of snapshot metadata, which
/// must stay under `SNAP_META_BYTES_MAX`.
pub const LEASES_MAX: usize = 60_000;
const _: () = assert!(LEASES_MAX * 16 + 64 <= SNAP_META_BYTES_MAX);

/// A deadline that will not come: used when `now + TTL` does not fit the
/// clock type (TTLs reach 9e9 s). About 30 years.
pub const LEASE_DEADLINE_FAR_S: u64 = 1_000_000_000;

/// Expired leases the leader revokes per second: etcd's
/// `leaseRevokeRate`, so a mass expiry does not flood the log.
pub const LEASE_REVOKES_PER_S: usize = 1000;

/// After proposing the revocation of an expired lease, the leader checks it
/// again after this long (the proposal may have been lost with a leader
/// change): etcd's `expiredLeaseRetryInterval`.
pub const LEASE_REVOKE_RETRY_MS: u64 = 3000;

/// Watch frames pushed to one connection and not yet written to its socket.
/// Beyond it, watchers of that connection fall back to catching up from
/// the MVCC history once the socket drains, so a client that does not read
/// costs the shard this many frames at most, never a stall or a lost event.
pub const WATCH_PUSH_WINDOW: usize = 256;

/// Bytes of published events an executor may have not processed yet.
/// Past it the shard stops publishing to that executor and its watches
/// read the revisions they missed from the MVCC history instead, so an
/// executor that falls behind costs the shard bounded memory, never a stall.
pub const WATCH_PUBLISH_BACKLOG_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Unwritten pushed frames up to which a connection's watches get each
/// revision as it is published. Past it they fall behind and, once the
/// socket has drained back under it, get every revision they missed in one
/// frame each (up to the window): a connection that cannot keep up gets
/// fewer, larger frames instead of a frame per watch per revision.
pub const WATCH_LIVE_PUSHES_MAX: usize = 32;
const _: () = assert!(WATCH_LIVE_PUSHES_MAX <= WATCH_PUSH_WINDOW);

/// Bytes of the latest publications each executor keeps, so that a watch
/// that fell a little behind (its connection was out of room) catches up
/// from them instead of from the shard's history.
pub const WATCH_RECENT_BYTES_MAX: usize = 16 * 1024 * 1024;

/// What one published event counts against the backlog besides its keys
/// and values (the event's fields and its share of the publication).
pub const WATCH_EVENT_OVERHEAD_BYTES: usize = 96;

/// A connection's outbound queue: one answer per admitted request plus the
/// push windows (watches, and one backup stream), so neither an answer nor a
/// pushed frame ever finds it full while the connection is open.
pub const CONN_OUTBOUND_WITH_PUSHES: usize =
    CONN_OUTBOUND_CAPACITY + WATCH_PUSH_WINDOW + BACKUP_PUSH_WINDOW;

/// Watches on one connection (etcd has no limit; this bounds the shard's
/// work and memory per client).
pub const WATCHES_PER_CONN_MAX: usize = 4096;

/// How often a watch created with `progress_notify` gets a progress
/// notice while idle: etcd's default (10 minutes).
pub const WATCH_PROGRESS_NOTIFY_MS: u64 = 10 * 60 * 1000;

/// Learners in a cluster at once: etcd's `maxLearners`. A learner costs
/// the leader a replication stream without adding fault tolerance.
pub const LEARNERS_MAX: usize = 1;

/// A learner may be promoted once its log holds this share (in percent) of
/// the leader's: etcd's `readyPercentThreshold`, so a promoted voter does
/// not stall commits while it catches up.
pub const LEARNER_READY_PERCENT: u64 = 90;

/// Members added by a `MemberAdd` entry whose conf change has not applied
/// yet. Normally one at a time (Raft allows one pending conf change); a
/// stage whose conf change was refused is dropped, oldest first, past this.
pub const STAGED_MEMBERS_MAX: usize = 8;

// ---- maintenance: backups, compaction, corruption checks ----

/// Size a backup stream's chunk aims for. One chunk is cut per pass of the
/// shard's loop, between write batches, so this bounds the pause a backup
/// adds to a pass (well under a millisecond) and the bytes of one pushed
/// frame.
pub const BACKUP_CHUNK_BYTES: usize = 256 * 1024;

/// Backup chunks pushed to a connection and not yet written to its socket:
/// a client that reads slowly holds at most this many chunks of the
/// shard's memory (about 1 MiB), and the stream simply waits for it.
pub const BACKUP_PUSH_WINDOW: usize = 4;

/// Backups streaming at once per member. Each holds compaction while it
/// runs (like the member's own snapshots), so a few are plenty.
pub const BACKUP_STREAMS_MAX: usize = 4;

// A backup chunk may exceed its target by one version, like any snapshot
// chunk, and must still fit a snapshot file's chunk.
const _: () = assert!(BACKUP_CHUNK_BYTES + (2 << 20) <= SNAP_CHUNK_BYTES_MAX);

// ---- etcd gRPC API and HTTP on the client port ----

/// gRPC message overhead allowed above `--max-request-bytes`: a request's
/// protobuf framing (tags, lengths, txn nesting) next to its keys and
/// values, as etcd adds its own margin to the same flag.
pub const GRPC_MESSAGE_OVERHEAD_BYTES: usize = 512 * 1024;

/// Concurrent HTTP/2 streams one gRPC connection may open; etcd's default
/// (`--max-concurrent-streams`) is unlimited, but every stream holds a task
/// and buffers here, so a client gets a bounded number and waits for more.
pub const GRPC_STREAMS_PER_CONN_MAX: u32 = 1024;

/// Bytes one HTTP/2 stream's send queue may hold: a writer hands over
/// more only below it (unary answers piece by piece, streaming ones a
/// message at a time), and the queue drains as the client's flow-control
/// windows allow. A client that opens its windows wide and then stops
/// reading leaves at most this per stream (plus one message for streaming
/// writers): with `GRPC_STREAMS_PER_CONN_MAX` streams, 64 MiB per
/// connection at worst. 64 KiB is grpc-go's per-stream write quota.
pub const GRPC_STREAM_SEND_BUFFER_BYTES_MAX: usize = 64 * 1024;

/// The largest HTTP/1 request head: only `GET /health` and friends are
/// served, whose heads are a few hundred bytes.
pub const HTTP_HEAD_BYTES_MAX: usize = 8 * 1024;

/// How long a plain HTTP request may take to arrive or a health probe to be
/// answered before the connection is closed (etcd's health check waits a
/// similar few seconds for its read).
pub const HTTP_TIMEOUT_MS: u64 = 5_000;

/// A member joining a running cluster asks the members it was given who
/// it is this often until one answers (the `MemberAdd` may still be on its
/// way through the log).
pub const JOIN_RETRY_MS: u64 = 500;

/// Longest an idle executor may poll before sleeping (`--spin-us`). Past a
/// few milliseconds spinning only burns a core: by then a sleeping thread's
/// wake-up costs far less than the time spent waiting.
pub const SPIN_US_MAX: u64 = 10_000;

/// A member with at most this many client connections serves those that
/// send one request at a time on the shard's executor, which otherwise
/// takes no sockets when there are other executors (`server/handoff.rs`).
/// Such a connection then skips the hop between executors, which for a
/// lone client costs a thread wake-up per request (p50 put 0.29-0.33 ms
/// with `--cores 1` against 0.41-0.44 ms with the hop, on two cores).
/// More connections mean load, and the shard's executor must stay free for
/// Raft, the WAL and apply: one connection pinned there among a hundred
/// cost a put-1000 run 5-8% of its throughput, as its clients fell behind.
pub const SHARD_EXECUTOR_CLIENT_CONNS_MAX: usize = 1;

/// Connections on their way between executors, per sending executor. Few
/// connections ever move (`SHARD_EXECUTOR_CLIENT_CONNS_MAX` to the shard's
/// executor, as many back), so a handful of slots is plenty; a full
/// channel only makes the mover wait.
pub const CONN_HANDOFF_CAPACITY: usize = 4;

/// How long a corruption check waits for one peer's HashKV answer before
/// skipping that peer for the round (a member that is down must not hold
/// the check up).
pub const CORRUPT_CHECK_PEER_TIMEOUT_MS: u64 = 2000;

/// How long the start-up corruption check waits to learn every peer's
/// client URL (they arrive with the peers' first messages) before it
/// compares with the peers it knows.
pub const CORRUPT_INITIAL_CHECK_WAIT_MS: u64 = 10_000;

/// How long a TLS handshake on the client or peer port may take before the
/// connection is dropped: a few round trips and two signatures take
/// milliseconds, so only a stalled or hostile peer gets near this, and it
/// must not hold a task and a socket for longer.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// Members (voters and learners) in the member table. etcd advises at most
/// seven voters; this leaves room for growth and replacement while keeping
/// the table's share of the snapshot metadata bounded (below).
pub const MEMBERS_MAX: usize = 32;

/// Longest member name kept in the member table (a longer `--name` is
/// listed as empty).
pub const MEMBER_NAME_BYTES_MAX: usize = 128;

/// Peer URLs of one member, and their total length.
pub const MEMBER_PEER_URLS_MAX: usize = 8;
pub const MEMBER_PEER_URLS_BYTES_MAX: usize = 400;

/// Removed member ids remembered so that none is given out again. Ids mix
/// a log index into a 64-bit hash, so forgetting the oldest (smallest)
/// beyond this costs nothing in practice.
pub const REMOVED_MEMBER_IDS_MAX: usize = 4096;

/// Largest encoding of one member: id, flag, name, URLs with their
/// length prefixes.
pub const MEMBER_RECORD_BYTES_MAX: usize =
    8 + 1 + 2 + MEMBER_NAME_BYTES_MAX + 2 + MEMBER_PEER_URLS_MAX * 2 + MEMBER_PEER_URLS_BYTES_MAX;

// The member table and the leases share the snapshot metadata.
const _: () = assert!(
    LEASES_MAX * 16
        + 64
        + (MEMBERS_MAX + STAGED_MEMBERS_MAX) * MEMBER_RECORD_BYTES_MAX
        + REMOVED_MEMBER_IDS_MAX * 8
        + 12
        + AUTH_STORE_BYTES_MAX
        <= SNAP_META_BYTES_MAX
);

// ---- Authentication (see server/auth) ----

/// Keys whose dropped versions one compaction step frees. A step runs
/// before each write until a compaction is fully freed, so this bounds
/// what a compaction adds to one write's latency; reads never wait for it.
pub const COMPACTION_STEP_KEYS: usize = 10_000;

/// Dropped versions one compaction step frees. Keys alone do not bound a
/// step: ten thousand keys of a hundred versions each are a million frees
/// in one write's apply. Freeing is the costly part of a step (a value's
/// allocation each), and this many take well under a millisecond (about
/// 0.2 ms unoptimised, see `compaction_step_cost` in `mvcc/compact.rs`); a
/// key with more dropped versions is freed over several steps.
pub const COMPACTION_STEP_VERSIONS: usize = 4_096;

/// Client connections one executor serves at once (`--max-client-conns-
/// per-core`): each holds a decoder buffer and an answer queue, so a flood
/// of connections must not exhaust memory or file descriptors. A
/// connection past it is closed as soon as it is accepted.
pub const CLIENT_CONNS_PER_EXECUTOR_MAX_DEFAULT: usize = 16 * 1024;

/// Time a client has to finish a request frame once its first bytes came
/// (`--frame-timeout-ms`): a connection dribbling a frame a byte at a time
/// (slowloris) holds a buffer for no longer than this.
pub const FRAME_COMPLETE_TIMEOUT_MS_DEFAULT: u64 = 30_000;

/// Longest user or role name: names travel in every logged request's
/// envelope and in snapshots.
pub const AUTH_NAME_BYTES_MAX: usize = 128;

/// Users, roles, roles granted to one user, and ranges granted to one
/// role. Together with the two limits below they bound the auth store's
/// share of a snapshot (asserted under `SNAP_META_BYTES_MAX` above).
pub const AUTH_USERS_MAX: usize = 1024;
pub const AUTH_ROLES_MAX: usize = 256;
pub const AUTH_ROLES_PER_USER_MAX: usize = 16;
pub const AUTH_PERMS_PER_ROLE_MAX: usize = 32;

/// Longest key or range end in a granted permission.
pub const AUTH_PERM_KEY_BYTES_MAX: usize = 256;

/// Longest stored password hash (bcrypt's are 60 bytes).
pub const AUTH_HASH_BYTES_MAX: usize = 64;

/// The largest encoding of the auth store.
pub const AUTH_STORE_BYTES_MAX: usize = 16
    + AUTH_USERS_MAX
        * (4 + AUTH_NAME_BYTES_MAX
            + 1
            + 4
            + AUTH_HASH_BYTES_MAX
            + 4
            + AUTH_ROLES_PER_USER_MAX * (4 + AUTH_NAME_BYTES_MAX))
    + AUTH_ROLES_MAX
        * (4 + AUTH_NAME_BYTES_MAX
            + 4
            + AUTH_PERMS_PER_ROLE_MAX * (1 + 2 * (4 + AUTH_PERM_KEY_BYTES_MAX)));

/// Simple tokens remembered by a member; past it the one closest to expiry
/// is forgotten (its holder authenticates again).
pub const AUTH_TOKENS_MAX: usize = 100_000;

/// Password hashes and checks running at once on the blocking pool: bcrypt
/// costs tens of milliseconds each, so more wait as "too many requests".
pub const AUTH_HASH_JOBS_MAX: usize = 8;

/// etcd's bcrypt cost bounds and default (`--bcrypt-cost`).
pub const BCRYPT_COST_MIN: u32 = 4;
pub const BCRYPT_COST_MAX: u32 = 31;
pub const BCRYPT_COST_DEFAULT: u32 = 10;

/// etcd's default simple-token TTL (`--auth-token-ttl`), in seconds.
pub const AUTH_TOKEN_TTL_S_DEFAULT: u64 = 300;

/// Largest log index or term WAL recovery accepts. A log taking a billion
/// entries a second reaches it after 146 years, so a larger value is damage
/// that passed the checksums (a bug or an edit); refusing it keeps every
/// `index + 1` of recovery and Raft from overflowing.
pub const WAL_INDEX_TERM_MAX: u64 = 1 << 62;

// ---- HTTP/2 (the gRPC port's connections) ----

/// The receive window each gRPC stream starts with (our
/// SETTINGS_INITIAL_WINDOW_SIZE): a unary request up to this size arrives
/// without waiting for a window update.
pub const HTTP2_STREAM_WINDOW_BYTES: u32 = 1 << 20;

/// The connection's receive window: bounds the request bytes one
/// connection can have buffered here across all its streams.
pub const HTTP2_CONN_WINDOW_BYTES: u32 = 4 << 20;

/// Frames waiting for the socket above which a connection stops reading
/// (and stream data waits in its stream's bounded queue): a client that
/// sends without reading its answers stalls itself, not the server.
pub const HTTP2_OUT_BYTES_HIGH: usize = 256 * 1024;

/// The socket read buffer of one HTTP/2 connection.
pub const HTTP2_READ_BYTES: usize = 64 * 1024;

/// The header list a request may carry (SETTINGS_MAX_HEADER_LIST_SIZE;
/// name and value lengths plus 32 per field). gRPC requests carry a few
/// hundred bytes; an auth token is the largest.
pub const HTTP2_HEADER_LIST_BYTES_MAX: usize = 64 * 1024;

/// The compressed header block (HEADERS and its CONTINUATIONs) buffered
/// while it arrives.
pub const HTTP2_HEADER_BLOCK_BYTES_MAX: usize = HTTP2_HEADER_LIST_BYTES_MAX;

/// The header compression table the server keeps for a client
/// (SETTINGS_HEADER_TABLE_SIZE; the protocol's default).
pub const HTTP2_HEADER_TABLE_BYTES: usize = 4096;

/// Resets of unanswered streams a gRPC connection may send at once, and
/// per second after that, before it is closed with ENHANCE_YOUR_CALM:
/// each such stream cost the server a call it then threw away (the
/// "rapid reset" attack opens and resets streams as fast as it can).
/// Cancels at any human or deadline-driven pace stay far below.
pub const HTTP2_RESETS_BURST: u32 = 1024;
pub const HTTP2_RESETS_PER_S: u32 = 256;

/// Times the connection's driver reads or writes in one turn before it
/// lets the executor's other tasks (its calls) run.
pub const HTTP2_DRIVER_TURNS_MAX: u32 = 16;

const _: () = assert!(HTTP2_STREAM_WINDOW_BYTES <= HTTP2_CONN_WINDOW_BYTES);
const _: () = assert!(HTTP2_CONN_WINDOW_BYTES < (1 << 31));
