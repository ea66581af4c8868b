//! Helpers shared by the MVCC rule and txn tests.

#![allow(dead_code)]

use cairn_engine::mvcc::{
    DeleteRangeRequest, KeyValue, Mvcc, MvccConfig, PutRequest, RangeRequest, RequestOp,
};

pub fn mvcc() -> Mvcc {
    Mvcc::new(MvccConfig::default())
}

pub fn put(m: &mut Mvcc, key: &[u8], value: &[u8]) -> i64 {
    m.put(&PutRequest {
        key,
        value,
        ..Default::default()
    })
    .expect("put")
    .response
    .revision
}

pub fn put_lease(m: &mut Mvcc, key: &[u8], value: &[u8], lease: i64) -> i64 {
    m.put(&PutRequest {
        key,
        value,
        lease,
        ..Default::default()
    })
    .expect("put")
    .response
    .revision
}

pub fn get(m: &Mvcc, key: &[u8]) -> Option<KeyValue> {
    let r = m
        .range(&RangeRequest {
            key,
            ..Default::default()
        })
        .expect("range");
    r.kvs.into_iter().next()
}

pub fn range<'a>(key: &'a [u8], range_end: &'a [u8]) -> RangeRequest<'a> {
    RangeRequest {
        key,
        range_end,
        ..Default::default()
    }
}

pub fn put_op<'a>(key: &'a [u8], value: &'a [u8]) -> RequestOp<'a> {
    RequestOp::Put(PutRequest {
        key,
        value,
        ..Default::default()
    })
}

pub fn del_op<'a>(key: &'a [u8], range_end: &'a [u8]) -> RequestOp<'a> {
    RequestOp::DeleteRange(DeleteRangeRequest {
        key,
        range_end,
        prev_kv: false,
    })
}
