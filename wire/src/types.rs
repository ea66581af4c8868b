//! Plain Rust values for the shared message parts: what encoders take and
//! what views convert into when a borrowed struct is handier than a table.

use flatbuffers::Vector;

use crate::rpc;

/// The bytes of an optional `[ubyte]` field; absent reads as empty, as an
/// unset `bytes` field does in protobuf.
pub fn bytes(v: Option<Vector<'_, u8>>) -> &[u8] {
    match v {
        Some(v) => v.bytes(),
        None => &[],
    }
}

/// etcd's response header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub cluster_id: u64,
    pub member_id: u64,
    pub revision: i64,
    pub raft_term: u64,
}

impl From<rpc::ResponseHeader<'_>> for Header {
    fn from(h: rpc::ResponseHeader<'_>) -> Self {
        Header {
            cluster_id: h.cluster_id(),
            member_id: h.member_id(),
            revision: h.revision(),
            raft_term: h.raft_term(),
        }
    }
}

/// A key's state, borrowing key and value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyValueRef<'a> {
    pub key: &'a [u8],
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: &'a [u8],
    pub lease: i64,
}

impl<'a> From<rpc::KeyValue<'a>> for KeyValueRef<'a> {
    fn from(kv: rpc::KeyValue<'a>) -> Self {
        KeyValueRef {
            key: bytes(kv.key()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
            value: bytes(kv.value()),
            lease: kv.lease(),
        }
    }
}

/// A watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub kind: rpc::EventType,
    pub kv: KeyValueRef<'a>,
    pub prev_kv: Option<KeyValueRef<'a>>,
}

impl<'a> From<rpc::Event<'a>> for EventRef<'a> {
    fn from(ev: rpc::Event<'a>) -> Self {
        EventRef {
            kind: ev.type_(),
            kv: ev.kv().map(KeyValueRef::from).unwrap_or_default(),
            prev_kv: ev.prev_kv().map(KeyValueRef::from),
        }
    }
}

/// A cluster member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberRef<'a> {
    pub id: u64,
    pub name: &'a str,
    pub peer_urls: &'a [&'a str],
    pub client_urls: &'a [&'a str],
    pub is_learner: bool,
}

/// Access to the keys in `[key, range_end)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionRef<'a> {
    pub perm_type: rpc::PermissionType,
    pub key: &'a [u8],
    pub range_end: &'a [u8],
}

impl<'a> From<rpc::Permission<'a>> for PermissionRef<'a> {
    fn from(p: rpc::Permission<'a>) -> Self {
        PermissionRef {
            perm_type: p.perm_type(),
            key: bytes(p.key()),
            range_end: bytes(p.range_end()),
        }
    }
}
