//! Every size limit of the wire protocol, with the reason for its value.
//!
//! The frame limits are defaults: a server takes `--max-request-bytes` and
//! passes the matching frame limit to [`FrameDecoder::new`](crate::FrameDecoder::new).

/// Default largest request payload, as etcd's `--max-request-bytes` default
/// (1.5 MiB): an etcd user's largest value fits, and no single request can
/// occupy the Raft log for long.
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 1_536 * 1_024;

/// Room for the envelope around a request's payload: the flatbuffer's root
/// offset, vtables, alignment padding, the request id and union tag (under
/// 128 bytes for any single-operation request) plus an auth token (simple
/// tokens are tens of bytes, JWTs a few hundred).
pub const ENVELOPE_OVERHEAD_BYTES: usize = 1_024;

/// Default largest request frame (length prefix excluded) a server accepts.
pub const REQUEST_FRAME_BYTES_MAX_DEFAULT: usize =
    REQUEST_BYTES_MAX_DEFAULT + ENVELOPE_OVERHEAD_BYTES;

/// Default largest response frame a client accepts. Bounds a client's memory
/// per response; a larger range must be read in pages with `limit` (as
/// etcdctl does), and a snapshot is streamed in chunks of
/// [`SNAPSHOT_CHUNK_BYTES_MAX`].
pub const RESPONSE_FRAME_BYTES_MAX_DEFAULT: usize = 512 * 1_024 * 1_024;

/// Largest data carried by one `SnapshotResponse` or peer `SnapshotChunk`:
/// big enough that per-frame costs vanish, small enough that a snapshot
/// transfer never holds more than a few frames in memory.
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = 1_024 * 1_024;

/// Default largest peer frame. An AppendEntries batch is bounded by the Raft
/// layer's per-message byte budget (a few MiB), but one entry may be a whole
/// maximal client request; 64 MiB leaves room for raised `--max-request-bytes`
/// settings while still bounding the memory one peer can make us hold.
pub const PEER_FRAME_BYTES_MAX_DEFAULT: usize = 64 * 1_024 * 1_024;

/// The flatbuffers format addresses at most 2 GiB; no frame limit may exceed
/// it (a u32 length prefix could otherwise announce up to 4 GiB).
pub const FRAME_BYTES_MAX_CEILING: usize = (1 << 31) - 1;

/// Bytes of the length prefix in front of every frame.
pub const FRAME_LENGTH_PREFIX_BYTES: usize = 4;

/// Smallest possible flatbuffer: a root offset plus the root table's vtable
/// offset. A frame shorter than this is malformed without verification.
pub const FRAME_BYTES_MIN: usize = 8;

/// Bytes of the connection preface (magic + version).
pub const PREFACE_BYTES: usize = 8;

/// Deepest table nesting the verifier accepts in a client message. Each
/// nested txn level costs two tables (RequestOp/ResponseOp and the Txn), so
/// this allows txns nested about 30 deep, far beyond any real use, while
/// bounding the recursion of anyone walking the message.
pub const RPC_VERIFY_DEPTH_MAX: usize = 64;

/// Deepest table nesting in a peer frame: PeerFrame > RaftMessage >
/// SnapshotMetadata > ConfState is the deepest legitimate path (4).
pub const PEER_VERIFY_DEPTH_MAX: usize = 8;

/// Every table occupies at least 4 bytes (its vtable offset), so a frame of
/// n bytes holds at most n / 4 distinct tables. More table visits than that
/// means offsets are shared to amplify verification work.
pub const VERIFY_FRAME_BYTES_PER_TABLE_MIN: usize = 4;

/// The verifier counts every byte it checks, including shared vtables once
/// per table that uses them, so an honest buffer's "apparent size" is at most
/// about twice its length. Four times leaves margin; anything above is a
/// buffer whose offsets point at the same data over and over (a DAG posing as
/// a tree) to make readers do unbounded work.
pub const VERIFY_APPARENT_SIZE_FACTOR: usize = 4;

/// Initial capacity of an [`Encoder`](crate::Encoder)'s buffer: most requests
/// and responses are small; the buffer grows (and stays grown) as needed.
pub const ENCODER_INITIAL_BYTES: usize = 1_024;

/// Bytes a [`FrameDecoder`](crate::FrameDecoder) adds to its buffer per
/// growth step at most, so that a peer announcing a large frame and sending
/// it slowly makes us hold only what it actually sent (plus one step).
pub const DECODER_GROWTH_BYTES_MAX: usize = 64 * 1_024;

const _: () = assert!(REQUEST_FRAME_BYTES_MAX_DEFAULT <= FRAME_BYTES_MAX_CEILING);
const _: () = assert!(RESPONSE_FRAME_BYTES_MAX_DEFAULT <= FRAME_BYTES_MAX_CEILING);
const _: () = assert!(PEER_FRAME_BYTES_MAX_DEFAULT <= FRAME_BYTES_MAX_CEILING);
// A maximal client request must fit in one peer message (it becomes one entry).
const _: () = assert!(PEER_FRAME_BYTES_MAX_DEFAULT > 2 * REQUEST_FRAME_BYTES_MAX_DEFAULT);
// Snapshot chunks travel in response and peer frames.
const _: () =
    assert!(SNAPSHOT_CHUNK_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES <= PEER_FRAME_BYTES_MAX_DEFAULT);
const _: () =
    assert!(SNAPSHOT_CHUNK_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES <= RESPONSE_FRAME_BYTES_MAX_DEFAULT);
// The apparent-size bound must admit at least the buffer itself.
const _: () = assert!(VERIFY_APPARENT_SIZE_FACTOR >= 2);

/// Buffer a [`FrameDecoder`](crate::FrameDecoder) keeps between frames: after
/// a large frame it shrinks back to this, so ten thousand idle connections
/// cost megabytes, not gigabytes.
pub const DECODER_RETAINED_BYTES_MAX: usize = 2 * DECODER_GROWTH_BYTES_MAX;

/// Capacity the HPACK decoder's scratch buffers keep between header
/// blocks: one block of huge Huffman-coded strings must not pin that
/// memory for the life of the connection; ordinary blocks never reach it.
pub const HPACK_SCRATCH_BYTES_KEEP_MAX: usize = 16 * 1024;
