//! Every limit of the harness, with the reason for its value.

/// Connections one run opens. etcd's benchmark runs use 100; a few thousand
/// already exhaust a 2-core machine's ability to serve them, and each costs
/// file descriptors on both sides.
pub const CONNS_MAX: usize = 4_096;

/// Concurrent clients (one task each). 1000 is the largest row of the
/// published comparison; ten times that leaves room while keeping the task
/// count and per-task buffers far below memory trouble.
pub const CLIENTS_MAX: usize = 10_000;

/// Largest value a put may carry: etcd's default request size limit
/// (`--max-request-bytes`, 1.5 MiB), beyond which every request would fail.
pub const VAL_SIZE_MAX: usize = 1_536 * 1_024;

/// Largest key: the same request limit bounds keys.
pub const KEY_SIZE_MAX: usize = VAL_SIZE_MAX;

/// Keys are written as zero-padded decimal numbers so they are readable with
/// `etcdctl get`; a `u64` index has at most 20 digits, so longer keys only add
/// padding and this many digits are enough for any key space.
pub const KEY_INDEX_DIGITS_MAX: usize = 20;

/// Operations in one transaction: etcd's default `--max-txn-ops`.
pub const TXN_OPS_MAX: usize = 128;

/// Latency the histogram can tell apart from larger ones: an hour. Slower
/// requests are recorded as an hour (a run where that happens is broken
/// anyway, and the error count shows it).
pub const LATENCY_MAX_NS: u64 = 3_600_000_000_000;

/// Significant digits the latency histogram keeps: 0.1% relative error, far
/// below run-to-run noise, at about 0.5 MiB per histogram.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Histograms the clients record into. Clients share them round-robin, each
/// behind a mutex: a histogram per client would cost 0.5 MiB × clients, one
/// shared histogram would serialise every record on one lock. With at most a
/// handful of worker threads, 16 keeps lock waits rare.
pub const RECORDER_SHARDS: usize = 16;

/// Seconds of per-second throughput kept for the throughput-over-time
/// report: a day. Longer runs still count every request; the timeline
/// simply stops growing.
pub const TIMELINE_SECONDS_MAX: usize = 86_400;

/// Distinct error kinds counted separately. A server failing in many ways at
/// once can produce an unbounded variety of messages (ports, addresses); past
/// this many kinds the rest are counted together as "other errors".
pub const ERROR_KINDS_MAX: usize = 64;

/// Characters of an error message kept as its kind, for the same reason.
pub const ERROR_KIND_CHARS_MAX: usize = 160;

/// How long a server started by `compare` (or a test) may take to answer its
/// first request. etcd starts in well under a second on an idle machine; a
/// busy 2-core machine can take several.
pub const SERVER_START_TIMEOUT_MS: u64 = 20_000;

/// Pause between two readiness probes of a starting server.
pub const SERVER_PROBE_INTERVAL_MS: u64 = 50;

/// How long connecting to one endpoint may take before the run gives up.
pub const DIAL_TIMEOUT_MS: u64 = 5_000;

/// How long one endpoint may take to answer the status request that tells
/// whether it is the leader. Status is answered from the member's memory, so
/// a member that takes longer is down or stopped; the harness goes on
/// without it rather than waiting out the request timeout.
pub const STATUS_TIMEOUT_MS: u64 = 5_000;

/// Fewest clients that write the key space before a read run
/// (`--prefill`). The fill is not measured; at one durable put per round
/// trip, a single client would take about a minute per 100,000 keys on
/// one member, and longer on three.
pub const PREFILL_CLIENTS_MIN: usize = 100;

/// Interval between two redraws of the progress line on a terminal.
pub const PROGRESS_INTERVAL_MS: u64 = 250;

/// Buckets of the response-time histogram in the text summary (etcd's
/// benchmark tool uses ten).
pub const SUMMARY_HISTOGRAM_BUCKETS: usize = 10;

/// Width of the longest bar in the response-time histogram, in characters.
pub const SUMMARY_BAR_CHARS_MAX: usize = 40;

const _: () = assert!(KEY_SIZE_MAX >= KEY_INDEX_DIGITS_MAX);
const _: () = assert!(RECORDER_SHARDS > 0 && SUMMARY_HISTOGRAM_BUCKETS > 0);

/// How long one request to cairn may take before the client gives up on it.
/// A benchmark should measure slowness, not cut it off (etcd's benchmark
/// tool sets no deadline), but a request lost for good must still end the
/// run eventually.
pub const CAIRN_REQUEST_TIMEOUT_MS: u64 = 60_000;

/// Members of a local cluster started by `compare`. etcd advises against
/// clusters larger than seven, and on a small machine every member shares
/// the same cores.
pub const MEMBERS_MAX: usize = 7;

/// Watch creates queued on one etcd watch stream. Creates are sent one at a
/// time per stream (each waits for its confirmation), so a handful is
/// plenty.
pub const WATCH_CREATES_QUEUED_MAX: usize = 16;

/// Event batches queued for one watcher between the stream's reader and the
/// watcher's task. The task only time-stamps and counts, so it keeps up;
/// when it does not, the full queue holds back the stream, and the server
/// sees a slow client, as it would from a real one.
pub const WATCH_BATCHES_QUEUED_MAX: usize = 1_024;

/// Watchers one run creates (`--streams` × watchers per stream). Each is a
/// task with a queue on the client and state on the server; 100k is ten
/// times the largest fan-out measured.
pub const WATCHERS_MAX: usize = 100_000;

/// Keys a watch workload's watchers and puts are spread over. Delivered
/// events are checked against the successful puts of each key, counted in
/// one counter per key.
pub const WATCH_KEY_SPACE_MAX: u64 = 1_000_000;

/// How long watchers may take, after the last put was acknowledged, to
/// receive the events still owed to them before those are counted as lost.
/// Delivery on loopback takes milliseconds; a server minutes behind is
/// broken for the purpose of the run.
pub const WATCH_DRAIN_TIMEOUT_MS: u64 = 60_000;

/// Leases one `lease-keepalive` run keeps alive (`--leases`). The issue's
/// measurement uses 10k; each lease is a few hundred bytes on either side.
pub const LEASES_MAX: u64 = 1_000_000;

/// Attempts of one `stm` transaction before it is counted as failed. etcd's
/// STM retries without bound; a bound keeps a livelocked run finite, and
/// 1000 conflicts in a row mean the run measures nothing but contention.
pub const STM_ATTEMPTS_MAX: u32 = 1_000;

/// Keys one `stm` transaction reads and writes: etcd's `--max-txn-ops`
/// bounds the puts of the commit txn.
pub const STM_KEYS_PER_TXN_MAX: usize = TXN_OPS_MAX;

/// Revisions `watch-catchup` writes before its watchers start: the issue's
/// measurement uses 1M; ten times that stays within a few GiB of history.
pub const CATCHUP_REVISIONS_MAX: u64 = 10_000_000;

/// Puts of one engine-level `mvcc put` run (`--total` × `--txn-ops`): all
/// keys are generated before timing starts and held in memory, and the
/// index holds every one of them; 10M keys of 64 bytes stay within a few
/// GiB.
pub const MVCC_PUTS_MAX: u64 = 10_000_000;

/// Watch streams one run opens (`--streams`): for etcd each is a gRPC
/// stream with its own server goroutines; as many as connections allowed is
/// already more than a real client would open.
pub const STREAMS_MAX: usize = CONNS_MAX;

/// Per-stream receive window offered to the server: hyper's default, which
/// the harness used through tonic before, so servers see the same flow
/// control. It bounds the answer bytes buffered for one call before the
/// caller reads them.
pub const STREAM_WINDOW_BYTES: u32 = 2 * 1024 * 1024;

/// Receive window of a whole connection: hyper's default, as above. The
/// clients sharing a connection read their answers as they arrive, so the
/// window is credit rather than memory held.
pub const CONNECTION_WINDOW_BYTES: u32 = 5 * 1024 * 1024;

/// Largest answer accepted: tonic's default decoding limit, which the
/// harness applied before; a larger answer is counted as an error rather
/// than buffered.
pub const RESPONSE_MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;

const _: () = assert!(CONNECTION_WINDOW_BYTES >= STREAM_WINDOW_BYTES);
const _: () = assert!(RESPONSE_MESSAGE_BYTES_MAX <= u32::MAX as usize);

/// Bytes the etcd target's HTTP/2 reader asks the socket for at a time
/// (`etcd/http2`): the answers of a few hundred small calls, or four
/// full-size DATA frames, per read.
pub const HTTP2_READ_BYTES: usize = 64 * 1024;

/// Header block bytes (a HEADERS frame and its CONTINUATION frames) the
/// etcd target's HTTP/2 reader holds before decoding them, and the size of
/// the decoded header list it accepts, counted as HTTP/2 counts it (RFC
/// 9113 §6.5.2). gRPC answers carry a few short fields; a server's longest
/// `grpc-message` is an error text far below this.
pub const HTTP2_HEADER_BLOCK_BYTES_MAX: usize = 1024 * 1024;

/// Bytes of frames the etcd target's HTTP/2 client queues on its own
/// account (PING and SETTINGS acknowledgements, WINDOW_UPDATEs) while
/// the writer has not taken them. A server that keeps sending PINGs while
/// never reading would otherwise grow the queue without bound; one that
/// does is failed as a transport error.
pub const HTTP2_CONTROL_OUT_BYTES_MAX: usize = 1024 * 1024;

/// Capacity the HTTP/2 writer keeps in its buffer after a write: enough
/// for the requests of a thousand small calls; a burst of large requests
/// does not pin its memory for the rest of the run.
pub const HTTP2_OUT_BYTES_KEEP_MAX: usize = 1024 * 1024;

/// Header blocks the etcd target's HTTP/2 reader remembers with their
/// decoded fields (`etcd/http2/recent.rs`): a gRPC server sends two per
/// answer (headers and trailers), and a few more for its failures.
pub const HTTP2_RECENT_BLOCKS_MAX: usize = 4;

/// Longest header block remembered: the repeated headers of an answer are
/// a few dozen bytes; a long block is an error's message, not repeated.
pub const HTTP2_RECENT_BLOCK_BYTES_MAX: usize = 256;

// The reader reads once at least half its buffer is free: a frame cut
// short (at most a 9-byte header and 16 KiB) always has room to complete.
const _: () = assert!(HTTP2_READ_BYTES / 2 >= 16_384 + 9);
const _: () = assert!(HTTP2_RECENT_BLOCK_BYTES_MAX <= HTTP2_HEADER_BLOCK_BYTES_MAX);
