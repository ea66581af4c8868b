//! Encoding messages straight into frames.
//!
//! An [`Encoder`] wraps one reusable flatbuffers builder. Each method builds
//! one message and returns the finished frame (length prefix included),
//! borrowed from the encoder until the next call: write it to the socket or
//! copy it into an outgoing queue. The builder's memory is reused, so a warm
//! encoder does not allocate for messages no larger than earlier ones.

mod auth;
mod cluster;
mod kv;
mod lease;
mod maintenance;
mod peer;
mod watch;

pub use kv::{
    CompareParams, DeleteRangeParams, DeleteRangeResult, PutParams, PutResult, RangeParams,
    RangeResult, RequestOpParams, ResponseOpResult, TxnParams, TxnResult,
};
pub use lease::LeaseTimeToLiveResult;
pub use maintenance::StatusResult;
pub use peer::{
    ConfStateParams, EntryParams, RaftMessageParams, SnapshotChunkParams, SnapshotMetadataParams,
};
pub use watch::{SharedWatchFrame, WatchCreateParams, WatchResult};

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, Vector, WIPOffset};

use crate::limits::ENCODER_INITIAL_BYTES;
use crate::rpc;
use crate::types::{Header, KeyValueRef};

/// The builder type encoders hand to closures (see [`Encoder::request_with`]).
pub type Builder = FlatBufferBuilder<'static>;

/// A union member under construction: its type tag and table offset.
pub type RequestBodyOffset = (rpc::RequestBody, WIPOffset<UnionWIPOffset>);
/// A response union member under construction.
pub type ResponseBodyOffset = (rpc::ResponseBody, WIPOffset<UnionWIPOffset>);

/// Builds frames; keep one per connection (or per executor) and reuse it.
pub struct Encoder {
    fbb: Builder,
    /// Auth token attached to every request this encoder builds.
    token: Option<String>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("has_token", &self.token.is_some())
            .finish()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Encoder {
            fbb: FlatBufferBuilder::with_capacity(ENCODER_INITIAL_BYTES),
            token: None,
        }
    }

    /// Sets (or clears) the auth token sent with every later request.
    pub fn set_token(&mut self, token: Option<&str>) {
        self.token = token.map(str::to_owned);
    }

    /// Builds a request whose body is made by `build` with the generated
    /// flatbuffers API: the way to send anything without a typed method.
    pub fn request_with(
        &mut self,
        id: u64,
        build: impl FnOnce(&mut Builder) -> RequestBodyOffset,
    ) -> &[u8] {
        self.fbb.reset();
        let (body_type, body) = build(&mut self.fbb);
        self.finish_request(id, body_type, body)
    }

    /// Builds a successful response whose body is made by `build`.
    pub fn response_with(
        &mut self,
        id: u64,
        header: &Header,
        build: impl FnOnce(&mut Builder) -> ResponseBodyOffset,
    ) -> &[u8] {
        self.fbb.reset();
        let (body_type, body) = build(&mut self.fbb);
        self.finish_response(id, header, body_type, body)
    }

    /// A failed response. `header` is `None` when the server cannot say
    /// anything about its state (e.g. the request frame was unreadable).
    /// `message` reads like etcd's ("etcdserver: requested lease not found").
    pub fn error_response(
        &mut self,
        id: u64,
        header: Option<&Header>,
        code: rpc::ErrorCode,
        message: &str,
    ) -> &[u8] {
        self.fbb.reset();
        let message = self.fbb.create_string(message);
        let error = rpc::Error::create(
            &mut self.fbb,
            &rpc::ErrorArgs {
                code,
                message: Some(message),
            },
        );
        let header = header.map(|h| build_header(&mut self.fbb, h));
        let root = rpc::Response::create(
            &mut self.fbb,
            &rpc::ResponseArgs {
                id,
                header,
                error: Some(error),
                body_type: rpc::ResponseBody::NONE,
                body: None,
            },
        );
        self.fbb.finish_size_prefixed(root, None);
        self.fbb.finished_data()
    }

    fn begin(&mut self) -> &mut Builder {
        self.fbb.reset();
        &mut self.fbb
    }

    fn finish_request(
        &mut self,
        id: u64,
        body_type: rpc::RequestBody,
        body: WIPOffset<UnionWIPOffset>,
    ) -> &[u8] {
        let token = self.token.as_deref().map(|t| self.fbb.create_string(t));
        let root = rpc::Request::create(
            &mut self.fbb,
            &rpc::RequestArgs {
                id,
                token,
                body_type,
                body: Some(body),
            },
        );
        self.fbb.finish_size_prefixed(root, None);
        self.fbb.finished_data()
    }

    fn finish_response(
        &mut self,
        id: u64,
        header: &Header,
        body_type: rpc::ResponseBody,
        body: WIPOffset<UnionWIPOffset>,
    ) -> &[u8] {
        let header = build_header(&mut self.fbb, header);
        let root = rpc::Response::create(
            &mut self.fbb,
            &rpc::ResponseArgs {
                id,
                header: Some(header),
                error: None,
                body_type,
                body: Some(body),
            },
        );
        self.fbb.finish_size_prefixed(root, None);
        self.fbb.finished_data()
    }
}

fn build_header(fbb: &mut Builder, h: &Header) -> WIPOffset<rpc::ResponseHeader<'static>> {
    rpc::ResponseHeader::create(
        fbb,
        &rpc::ResponseHeaderArgs {
            cluster_id: h.cluster_id,
            member_id: h.member_id,
            revision: h.revision,
            raft_term: h.raft_term,
        },
    )
}

/// An absent vector reads as empty, so empty byte strings cost nothing.
fn opt_bytes(fbb: &mut Builder, b: &[u8]) -> Option<WIPOffset<Vector<'static, u8>>> {
    if b.is_empty() {
        None
    } else {
        Some(fbb.create_vector(b))
    }
}

fn opt_str(fbb: &mut Builder, s: &str) -> Option<WIPOffset<&'static str>> {
    if s.is_empty() {
        None
    } else {
        Some(fbb.create_string(s))
    }
}

fn str_vector(
    fbb: &mut Builder,
    items: &[&str],
) -> Option<WIPOffset<Vector<'static, flatbuffers::ForwardsUOffset<&'static str>>>> {
    if items.is_empty() {
        return None;
    }
    let offsets: Vec<_> = items.iter().map(|s| fbb.create_string(s)).collect();
    Some(fbb.create_vector(&offsets))
}

fn build_kv(fbb: &mut Builder, kv: &KeyValueRef<'_>) -> WIPOffset<rpc::KeyValue<'static>> {
    let key = opt_bytes(fbb, kv.key);
    let value = opt_bytes(fbb, kv.value);
    rpc::KeyValue::create(
        fbb,
        &rpc::KeyValueArgs {
            key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value,
            lease: kv.lease,
        },
    )
}

fn kv_vector(
    fbb: &mut Builder,
    kvs: &[KeyValueRef<'_>],
) -> Option<WIPOffset<Vector<'static, flatbuffers::ForwardsUOffset<rpc::KeyValue<'static>>>>> {
    if kvs.is_empty() {
        return None;
    }
    let offsets: Vec<_> = kvs.iter().map(|kv| build_kv(fbb, kv)).collect();
    Some(fbb.create_vector(&offsets))
}
