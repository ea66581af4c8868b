//! The hot KV answers (Range, Put, DeleteRange) written as protobuf
//! straight from the shard's flatbuffers view.
//!
//! Building etcd's message structs first would copy every key and value
//! into a buffer of its own and then again into the message; here each
//! byte is copied once, into the one buffer that HTTP/2 sends. The bytes
//! are exactly what encoding the structs of [`super::kv`] would give
//! (fields in tag order, proto3 defaults left out), which the tests check.

use bytes::{BufMut, Bytes};
use cairn_wire::{rpc, Header};
use flatbuffers::{ForwardsUOffset, Vector};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

use super::codec::PREFIX_BYTES;

type Kvs<'a> = Option<Vector<'a, ForwardsUOffset<rpc::KeyValue<'a>>>>;

/// A framed RangeResponse.
pub fn range(h: &Header, r: &rpc::RangeResponse<'_>) -> Bytes {
    let kvs = r.kvs();
    let len = header_field_len(h) + kvs_len(kvs) + bool_len(r.more()) + int_len(r.count());
    framed(len, |buf| {
        header_field(buf, h);
        kvs_field(buf, 2, kvs);
        bool_field(buf, 3, r.more());
        int_field(buf, 4, r.count());
    })
}

/// A framed PutResponse.
pub fn put(h: &Header, r: &rpc::PutResponse<'_>) -> Bytes {
    let prev = r.prev_kv();
    let len = header_field_len(h) + prev.map_or(0, |kv| message_len(kv_len(&kv)));
    framed(len, |buf| {
        header_field(buf, h);
        if let Some(kv) = prev {
            kv_field(buf, 2, &kv);
        }
    })
}

/// A framed DeleteRangeResponse.
pub fn delete_range(h: &Header, r: &rpc::DeleteRangeResponse<'_>) -> Bytes {
    let prev = r.prev_kvs();
    let len = header_field_len(h) + int_len(r.deleted()) + kvs_len(prev);
    framed(len, |buf| {
        header_field(buf, h);
        int_field(buf, 2, r.deleted());
        kvs_field(buf, 3, prev);
    })
}

/// The gRPC prefix and a message of `len` bytes written by `body`.
fn framed(len: usize, body: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut buf = Vec::with_capacity(PREFIX_BYTES + len);
    buf.put_u8(0);
    // An answer is built from the store's data, far below 4 GiB;
    // saturating keeps the arithmetic total.
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    body(&mut buf);
    assert_eq!(buf.len(), PREFIX_BYTES + len, "message length as computed");
    Bytes::from(buf)
}

// Every field here has a tag below 16: its key is one byte.
const KEY_BYTES: usize = 1;

fn int_len(v: i64) -> usize {
    if v == 0 {
        0
    } else {
        KEY_BYTES + encoded_len_varint(v as u64)
    }
}

fn uint_len(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        KEY_BYTES + encoded_len_varint(v)
    }
}

fn bool_len(v: bool) -> usize {
    if v {
        KEY_BYTES + 1
    } else {
        0
    }
}

fn bytes_len(v: &[u8]) -> usize {
    if v.is_empty() {
        0
    } else {
        message_len(v.len())
    }
}

/// A length-delimited field of `len` bytes, key and length included.
fn message_len(len: usize) -> usize {
    KEY_BYTES + encoded_len_varint(len as u64) + len
}

fn int_field(buf: &mut Vec<u8>, tag: u32, v: i64) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        // int64 is the two's complement as a varint, as protobuf says.
        encode_varint(v as u64, buf);
    }
}

fn uint_field(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(v, buf);
    }
}

fn bool_field(buf: &mut Vec<u8>, tag: u32, v: bool) {
    if v {
        encode_key(tag, WireType::Varint, buf);
        buf.put_u8(1);
    }
}

fn bytes_field(buf: &mut Vec<u8>, tag: u32, v: &[u8]) {
    if !v.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(v.len() as u64, buf);
        buf.put_slice(v);
    }
}

fn header_len(h: &Header) -> usize {
    uint_len(h.cluster_id) + uint_len(h.member_id) + int_len(h.revision) + uint_len(h.raft_term)
}

/// The header is always present, even when every field is zero.
fn header_field_len(h: &Header) -> usize {
    message_len(header_len(h))
}

fn header_field(buf: &mut Vec<u8>, h: &Header) {
    encode_key(1, WireType::LengthDelimited, buf);
    encode_varint(header_len(h) as u64, buf);
    uint_field(buf, 1, h.cluster_id);
    uint_field(buf, 2, h.member_id);
    int_field(buf, 3, h.revision);
    uint_field(buf, 4, h.raft_term);
}

fn kv_len(kv: &rpc::KeyValue<'_>) -> usize {
    bytes_len(cairn_wire::bytes(kv.key()))
        + int_len(kv.create_revision())
        + int_len(kv.mod_revision())
        + int_len(kv.version())
        + bytes_len(cairn_wire::bytes(kv.value()))
        + int_len(kv.lease())
}

fn kv_field(buf: &mut Vec<u8>, tag: u32, kv: &rpc::KeyValue<'_>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(kv_len(kv) as u64, buf);
    bytes_field(buf, 1, cairn_wire::bytes(kv.key()));
    int_field(buf, 2, kv.create_revision());
    int_field(buf, 3, kv.mod_revision());
    int_field(buf, 4, kv.version());
    bytes_field(buf, 5, cairn_wire::bytes(kv.value()));
    int_field(buf, 6, kv.lease());
}

fn kvs_len(kvs: Kvs<'_>) -> usize {
    kvs.into_iter()
        .flatten()
        .map(|kv| message_len(kv_len(&kv)))
        .sum()
}

fn kvs_field(buf: &mut Vec<u8>, tag: u32, kvs: Kvs<'_>) {
    for kv in kvs.into_iter().flatten() {
        kv_field(buf, tag, &kv);
    }
}

#[cfg(test)]
mod tests {
    use super::super::kv;
    use super::*;
    use cairn_wire::{
        decode_response, DeleteRangeResult, Encoder, KeyValueRef, PutResult, RangeResult,
        ResponseBodyView,
    };

    fn kv_ref<'a>(key: &'a [u8], value: &'a [u8], n: i64) -> KeyValueRef<'a> {
        KeyValueRef {
            key,
            create_revision: n,
            mod_revision: n + 1,
            version: n % 3,
            value,
            lease: if n % 2 == 0 { 0 } else { -n },
        }
    }

    fn headers() -> [Header; 2] {
        [
            Header {
                cluster_id: 0x1234_5678_9abc_def0,
                member_id: 7,
                revision: 300,
                raft_term: 2,
            },
            Header {
                cluster_id: 0,
                member_id: 0,
                revision: 0,
                raft_term: 0,
            },
        ]
    }

    /// The answer written directly and the one encoded from etcd's
    /// structs, for the native response `build` makes.
    fn both(build: impl for<'e> FnOnce(&'e mut Encoder, &Header) -> &'e [u8], h: &Header) {
        let mut e = Encoder::new();
        let f = build(&mut e, h).to_vec();
        let view = decode_response(&f).unwrap();
        let body = view.body.unwrap();
        let ph = super::super::convert::header(&view.header);
        let (direct, via_structs) = match &body {
            ResponseBodyView::Range(r) => (
                range(&view.header, r),
                super::super::codec::frame(&kv::range_response(ph, r)),
            ),
            ResponseBodyView::Put(r) => (
                put(&view.header, r),
                super::super::codec::frame(&kv::put_response(ph, r)),
            ),
            ResponseBodyView::DeleteRange(r) => (
                delete_range(&view.header, r),
                super::super::codec::frame(&kv::delete_response(ph, r)),
            ),
            _ => panic!("not a KV answer"),
        };
        assert_eq!(direct, via_structs);
    }

    #[test]
    fn answers_match_etcds_structs_byte_for_byte() {
        let big = vec![0xa5; 300];
        let kvs = [
            kv_ref(b"a", b"1", 1),
            kv_ref(b"key/2", &big, 2),
            kv_ref(b"", b"", 0),
            kv_ref(b"k", b"", i64::MAX - 1),
        ];
        for h in &headers() {
            for n in 0..=kvs.len() {
                for (more, count) in [(false, 0), (true, n as i64 + 5), (false, -1)] {
                    let r = RangeResult {
                        kvs: &kvs[..n],
                        more,
                        count,
                    };
                    both(|e, h| e.range_response(1, h, &r), h);
                }
                let d = DeleteRangeResult {
                    deleted: n as i64,
                    prev_kvs: &kvs[..n],
                };
                both(|e, h| e.delete_range_response(2, h, &d), h);
            }
            for prev_kv in [None, Some(kvs[1]), Some(kvs[2])] {
                let p = PutResult { prev_kv };
                both(|e, h| e.put_response(3, h, &p), h);
            }
        }
    }
}
