//! cairn's wire protocol: flatbuffers messages in length-prefixed frames.
//!
//! A connection starts with an 8-byte [preface](check_preface) naming the
//! protocol, the channel (client or peer) and the version. Then each side
//! sends frames: a `u32` little-endian length and one flatbuffer. Clients
//! send [`rpc::Request`]s, servers send [`rpc::Response`]s; members talk
//! [`peer::PeerFrame`]s. Every request carries a client-chosen `u64` id that
//! its responses echo, so many requests can be in flight per connection and
//! answered out of order; watch events and snapshot chunks are pushed under
//! the id of the request that opened them. See `docs/wire.md` for the byte
//! layout and every limit.
//!
//! This crate does no I/O. It offers:
//! - [`FrameDecoder`]: bytes from a socket in, complete frames out, with the
//!   announced length checked against a limit before any memory is reserved.
//! - [`decode_request`], [`decode_response`], [`decode_peer_frame`]: run a
//!   frame through the flatbuffers verifier (bounded by [`limits`]) and return
//!   a typed view that borrows from the frame.
//! - [`Encoder`]: builds any message straight into a frame, reusing its
//!   buffer.
//!
//! # A server answering a Put
//!
//! ```
//! use cairn_wire::*;
//!
//! // What a client sent (normally read from the socket).
//! let mut client = Encoder::new();
//! let wire_bytes = client
//!     .put_request(1, &PutParams { key: b"foo", value: b"bar", ..Default::default() })
//!     .to_vec();
//!
//! let mut decoder = FrameDecoder::for_requests();
//! let mut out = Vec::new();
//! let mut server = Encoder::new();
//! decoder.feed(&wire_bytes)?;
//! while let Some(frame) = decoder.next_frame()? {
//!     let header = Header { cluster_id: 1, member_id: 1, revision: 2, raft_term: 1 };
//!     match decode_request(frame) {
//!         Ok(req) => match req.body {
//!             RequestBodyView::Put(put) => {
//!                 assert_eq!(bytes(put.key()), b"foo");
//!                 out.extend_from_slice(server.put_response(req.id, &header, &PutResult::default()));
//!             }
//!             _ => out.extend_from_slice(server.error_response(
//!                 req.id,
//!                 Some(&header),
//!                 rpc::ErrorCode::Unimplemented,
//!                 "not supported",
//!             )),
//!         },
//!         // Unreadable frame: its id cannot be trusted, so answer under id 0.
//!         Err(e) => out.extend_from_slice(server.error_response(
//!             0,
//!             None,
//!             rpc::ErrorCode::InvalidArgument,
//!             &e.to_string(),
//!         )),
//!     }
//! }
//!
//! // The client reads the answer.
//! let mut decoder = FrameDecoder::for_responses();
//! decoder.feed(&out)?;
//! let frame = decoder.next_frame()?.expect("one whole frame");
//! let resp = decode_response(frame)?;
//! assert_eq!(resp.id, 1);
//! assert_eq!(resp.header.revision, 2);
//! assert!(matches!(resp.body, Ok(ResponseBodyView::Put(_))));
//! # Ok::<(), WireError>(())
//! ```
//!
//! # A client reading a range
//!
//! ```
//! use cairn_wire::*;
//!
//! let mut enc = Encoder::new();
//! let frame = enc.range_request(9, &RangeParams { key: b"a", range_end: b"b", ..Default::default() });
//! assert!(matches!(decode_request(frame)?.body, RequestBodyView::Range(_)));
//!
//! // The server's answer, decoded on the client.
//! let kv = KeyValueRef { key: b"a1", value: b"v", version: 1, create_revision: 5, mod_revision: 5, lease: 0 };
//! let frame = enc.range_response(9, &Header::default(), &RangeResult { kvs: &[kv], more: false, count: 1 });
//! let resp = decode_response(frame)?;
//! let Ok(ResponseBodyView::Range(range)) = resp.body else { panic!("not a range response") };
//! let kvs: Vec<KeyValueRef<'_>> = range.kvs().into_iter().flatten().map(KeyValueRef::from).collect();
//! assert_eq!(kvs, [kv]);
//! # Ok::<(), WireError>(())
//! ```

#[cfg(feature = "etcd-proto")]
pub mod etcdpb;
pub mod generated;
#[cfg(feature = "etcd-proto")]
pub mod hpack;
#[cfg(feature = "etcd-proto")]
pub mod http2;
pub mod limits;

mod encode;
mod error;
mod frame;
mod preface;
mod types;
mod verify;
mod view;

pub use encode::*;
pub use error::WireError;
pub use frame::FrameDecoder;
pub use generated::peer_generated::cairn::peer;
pub use generated::rpc_generated::cairn::rpc;
pub use preface::{
    check_preface, looks_like_cairn, preface, Channel, CLIENT_PREFACE, PEER_PREFACE,
    PROTOCOL_VERSION,
};
pub use types::{bytes, EventRef, Header, KeyValueRef, MemberRef, PermissionRef};
pub use view::*;
