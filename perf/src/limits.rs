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
