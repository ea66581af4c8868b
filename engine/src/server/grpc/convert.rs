//! Small conversions shared by the services' translations.

use cairn_wire::etcdpb as pb;
use cairn_wire::{rpc, Header};
use flatbuffers::{ForwardsUOffset, Vector};

use super::codec::Status;

pub fn header(h: &Header) -> pb::ResponseHeader {
    pb::ResponseHeader {
        cluster_id: h.cluster_id,
        member_id: h.member_id,
        revision: h.revision,
        raft_term: h.raft_term,
    }
}

pub fn kv(k: rpc::KeyValue<'_>) -> pb::KeyValue {
    pb::KeyValue {
        key: bytes::Bytes::copy_from_slice(cairn_wire::bytes(k.key())),
        create_revision: k.create_revision(),
        mod_revision: k.mod_revision(),
        version: k.version(),
        value: bytes::Bytes::copy_from_slice(cairn_wire::bytes(k.value())),
        lease: k.lease(),
    }
}

pub fn kvs(v: Option<Vector<'_, ForwardsUOffset<rpc::KeyValue<'_>>>>) -> Vec<pb::KeyValue> {
    v.into_iter().flatten().map(kv).collect()
}

pub fn strings(v: Option<Vector<'_, ForwardsUOffset<&str>>>) -> Vec<String> {
    v.into_iter().flatten().map(str::to_owned).collect()
}

/// A protobuf enum value as the native `i8`, refusing values etcd does not
/// define (etcd's own proto decoding keeps them and fails later).
pub fn enum_i8(v: i32, max: i32, what: &str) -> Result<i8, Status> {
    if (0..=max).contains(&v) {
        Ok(v as i8)
    } else {
        Err(Status::invalid_argument(format!(
            "etcdserver: unknown {what} {v}"
        )))
    }
}
