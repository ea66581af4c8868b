//! Every limit of the client, with the reason for its value.

use std::time::Duration;

/// Requests one connection carries at once. A caller beyond this waits for a
/// slot instead of growing the pending map and the server's queues without
/// bound; 4096 keeps a 2-core server busy (pipelining hides the round trip)
/// while one slow connection can hold at most a few MiB of requests.
pub const INFLIGHT_REQUESTS_MAX: usize = 4_096;

/// Watch responses a watcher may leave unconsumed. The connection's reader
/// never waits for a watcher (that would stall every other request on the
/// connection behind one slow consumer); a watcher that falls this far
/// behind loses its watch and must re-create it from its last revision.
pub const WATCH_RESPONSES_QUEUED_MAX: usize = 1_024;

/// Encoded frames waiting for the writer task. Smaller than the in-flight
/// limit: the writer drains the queue in batches, so a short queue is enough
/// to keep it busy, and a full queue pushes back on callers early.
pub const WRITE_QUEUE_FRAMES_MAX: usize = 1_024;

/// Bytes the writer gathers into one `write` call. Batching many small frames
/// into one syscall is what makes pipelining cheap; 256 KiB is well past the
/// point where the per-call cost stops mattering, and bounds the copy buffer.
pub const WRITE_BATCH_BYTES_MAX: usize = 256 * 1_024;

/// Endpoints one client accepts. A cluster has a handful of members; a list
/// longer than this is a configuration mistake, not a bigger cluster.
pub const ENDPOINTS_MAX: usize = 64;

/// Pause between two rounds over all endpoints while reconnecting, so that a
/// client whose whole cluster is down does not spin on connection refusals.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// etcdctl's `--dial-timeout` default.
pub const DIAL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);

/// etcdctl's `--command-timeout` default.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Longest a request may outlive its timeout before it fails: the period of
/// the connection's deadline sweeper when every timeout is long. Shorter
/// timeouts make it wake every sixteenth of the timeout instead, down to
/// [`REQUEST_DEADLINE_SLACK_MIN`].
pub const REQUEST_DEADLINE_SLACK_MAX: Duration = Duration::from_millis(250);

/// Shortest period of the deadline sweeper, however short the timeout: a
/// sweep walks every pending request of the connection, so it must not run
/// back to back.
pub const REQUEST_DEADLINE_SLACK_MIN: Duration = Duration::from_millis(1);

/// etcdctl's `--keepalive-time` default: probe a connection idle this long.
pub const KEEPALIVE_TIME_DEFAULT: Duration = Duration::from_secs(2);

/// etcdctl's `--keepalive-timeout` default: a connection whose probes go
/// unanswered this long is broken.
pub const KEEPALIVE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(6);

/// Unanswered keep-alive probes before the kernel gives up; the timeout is
/// spread over them.
pub const KEEPALIVE_PROBES: u32 = 3;

/// Times an idempotent read is retried on another connection after the one it
/// was sent on broke. One retry covers a single failed member; more would
/// only stretch the caller's wait past the request timeout anyway.
pub const READ_RETRIES_MAX: usize = 1;

/// Lines of transaction text cairnctl reads per section (compares, success,
/// failure). Matches the server's default limit of operations per txn
/// (etcd's `--max-txn-ops`); a longer section would be refused anyway.
pub const TXN_LINES_MAX: usize = 128;

/// Bytes of one transaction text line or of a value read from stdin by
/// cairnctl: the server's default request limit (etcd's 1.5 MiB), so nothing
/// that could be sent is refused and nothing larger is buffered.
pub const STDIN_BYTES_MAX: usize = 1_536 * 1_024;

/// etcdctl's table writer wraps cells wider than this at spaces.
pub const TABLE_CELL_WIDTH_MAX: usize = 30;

const _: () = assert!(WRITE_QUEUE_FRAMES_MAX <= INFLIGHT_REQUESTS_MAX);

/// Shortest pause between two renewals of one lease (the library's
/// [`LeaseKeeper`](crate::LeaseKeeper) and `cairnctl lease keep-alive`):
/// renewals go out at a third of the TTL, but never more often than this
/// (a 1 s lease would otherwise be renewed almost continuously).
pub const KEEPALIVE_INTERVAL_MIN: Duration = Duration::from_millis(500);

/// How long a watcher keeps re-creating a lost watch before giving up, by
/// default. etcd's clients retry forever; a stream that silently waits for a
/// cluster that is gone hides the outage from its reader. 30 s spans a
/// member restart and several elections.
pub const WATCH_RESUME_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// Pause before retrying a lease renewal that failed for want of a
/// connection or a leader. Short against the smallest TTL (1 s with a 500 ms
/// election timeout), so a fail-over costs a lease little of its margin,
/// yet long enough not to spin while no member answers.
pub const LEASE_RENEW_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Longest password line cairnctl reads from stdin: far beyond any real
/// password, and it keeps a stray pipe from being read into memory whole.
pub const PASSWORD_BYTES_MAX: usize = 4_096;

/// Times one call re-authenticates and resends after a refusal for its
/// token ("revision of auth store is old": it raced a change of users,
/// roles or permissions; "invalid auth token"). Each refusal means another
/// change landed while the request was in flight; past a few in a row the
/// store is churning and the caller hears about it.
pub const AUTH_RETRIES_MAX: usize = 4;

/// Lines of `cairnctl watch -i` read ahead of the watches they start: a
/// few, so a pasted script does not wait on each watch's creation, and a
/// stream faster than watches can be created waits in the pipe instead.
pub const CTL_WATCH_LINES_QUEUED_MAX: usize = 16;

/// Watch responses of `cairnctl watch -i` waiting to be printed; past it a
/// watch's task waits, and so does its stream (the server holds the rest).
pub const CTL_WATCH_RESPONSES_QUEUED_MAX: usize = 256;

/// Longest request line `cairnctl watch -i` reads: far beyond any real
/// `watch` line, and it keeps a stray binary pipe from being read into
/// memory whole.
pub const CTL_WATCH_LINE_BYTES_MAX: usize = 64 * 1024;
