//! Each expected text below is what etcdctl 3.4 printed for the same data
//! (captured against a real etcd; ids, revisions and values are that run's).

use super::*;
use crate::{AlarmMember, AlarmType, KeyValue, Member, ResponseHeader, ResponseOp};

pub(super) const HDR: ResponseHeader = ResponseHeader {
    cluster_id: 324952591200643719,
    member_id: 3319814642761637952,
    revision: 5,
    raft_term: 2,
};

pub(super) fn hdr(revision: i64) -> ResponseHeader {
    ResponseHeader { revision, ..HDR }
}

pub(super) fn kv(key: &str, value: &str, create: i64, modified: i64, version: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        create_revision: create,
        mod_revision: modified,
        version,
        value: value.into(),
        lease: 0,
    }
}

pub(super) fn print(
    format: OutputFormat,
    f: impl FnOnce(&Printer, &mut Vec<u8>) -> Result<(), CtlError>,
) -> String {
    let printer = Printer::new(format, false);
    let mut out = Vec::new();
    f(&printer, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn get_foo() -> RangeResponse {
    RangeResponse {
        header: HDR,
        kvs: vec![kv("foo", "bar2", 2, 3, 2)],
        more: false,
        count: 1,
    }
}

mod cluster;
mod lease_watch;

#[test]
fn get_in_every_format() {
    let r = get_foo();
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.get(o, &r)),
        "foo\nbar2\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.get(o, &r)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":5,\"raft_term\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":3,\"version\":2,\"value\":\"YmFyMg==\"}],\"count\":1}\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.get(o, &r)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 5\n\"RaftTerm\" : 2\n\"Key\" : \"foo\"\n\"CreateRevision\" : 2\n\"ModRevision\" : 3\n\"Version\" : 2\n\"Value\" : \"bar2\"\n\"Lease\" : 0\n\"More\" : false\n\"Count\" : 1\n"
    );
    let err = Printer::new(OutputFormat::Table, false)
        .get(&mut Vec::new(), &r)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error: table not supported as output format"
    );
    assert_eq!(err.code, crate::ctl::exit::ExitCode::BadFeature);
}

#[test]
fn get_of_nothing() {
    let r = RangeResponse {
        header: HDR,
        ..Default::default()
    };
    assert_eq!(print(OutputFormat::Simple, |p, o| p.get(o, &r)), "");
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.get(o, &r)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":5,\"raft_term\":2}}\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.get(o, &r)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 5\n\"RaftTerm\" : 2\n\"More\" : false\n\"Count\" : 0\n"
    );
}

#[test]
fn get_simple_variants() {
    let r = RangeResponse {
        header: HDR,
        kvs: vec![kv("k 2", "v\nmulti", 4, 4, 1), kv("k1", "v1", 3, 3, 1)],
        more: false,
        count: 2,
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.get(o, &r)),
        "k 2\nv\nmulti\nk1\nv1\n"
    );
    let mut value_only = Printer::new(OutputFormat::Simple, false);
    value_only.value_only = true;
    let mut out = Vec::new();
    value_only.get(&mut out, &r).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "v\nmulti\nv1\n");
    // --keys-only: the server leaves values empty, etcdctl prints empty lines.
    let keys = RangeResponse {
        kvs: vec![kv("k 2", "", 4, 4, 1), kv("k1", "", 3, 3, 1)],
        ..r
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.get(o, &keys)),
        "k 2\n\nk1\n\n"
    );
    let z = RangeResponse {
        kvs: vec![kv("foo", "z", 2, 10, 7)],
        ..get_foo()
    };
    let mut out = Vec::new();
    Printer::new(OutputFormat::Simple, true)
        .get(&mut out, &z)
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "\\x66\\x6f\\x6f\n\\x7a\n");
}

#[test]
fn put_in_every_format() {
    let plain = PutResponse {
        header: hdr(6),
        prev_kv: None,
    };
    assert_eq!(print(OutputFormat::Simple, |p, o| p.put(o, &plain)), "OK\n");
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.put(o, &plain)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":6,\"raft_term\":2}}\n"
    );
    let prev = PutResponse {
        header: hdr(8),
        prev_kv: Some(kv("foo", "x", 2, 7, 4)),
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.put(o, &prev)),
        "OK\nfoo\nx\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.put(o, &prev)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":8,\"raft_term\":2},\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":7,\"version\":4,\"value\":\"eA==\"}}\n"
    );
    let prev9 = PutResponse {
        header: hdr(9),
        prev_kv: Some(kv("foo", "y", 2, 8, 5)),
    };
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.put(o, &prev9)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 9\n\"RaftTerm\" : 2\n\"PrevKey\" : \"foo\"\n\"PrevCreateRevision\" : 2\n\"PrevModRevision\" : 8\n\"PrevVersion\" : 5\n\"PrevValue\" : \"y\"\n\"PrevLease\" : 0\n"
    );
}

#[test]
fn del_in_every_format() {
    let none = DeleteResponse {
        header: hdr(19),
        deleted: 0,
        prev_kvs: vec![],
    };
    assert_eq!(print(OutputFormat::Simple, |p, o| p.del(o, &none)), "0\n");
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.del(o, &none)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 19\n\"RaftTerm\" : 2\n\"Deleted\" : 0\n"
    );
    let one = DeleteResponse {
        header: hdr(14),
        deleted: 1,
        prev_kvs: vec![],
    };
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.del(o, &one)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":14,\"raft_term\":2},\"deleted\":1}\n"
    );
    let prev = DeleteResponse {
        header: hdr(15),
        deleted: 1,
        prev_kvs: vec![kv("b", "2", 13, 13, 1)],
    };
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.del(o, &prev)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":15,\"raft_term\":2},\"deleted\":1,\"prev_kvs\":[{\"key\":\"Yg==\",\"create_revision\":13,\"mod_revision\":13,\"version\":1,\"value\":\"Mg==\"}]}\n"
    );
    let two = DeleteResponse {
        header: hdr(12),
        deleted: 2,
        prev_kvs: vec![kv("k 2", "v\nmulti", 4, 4, 1), kv("k1", "v1", 3, 3, 1)],
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.del(o, &two)),
        "2\nk 2\nv\nmulti\nk1\nv1\n"
    );
    let a = DeleteResponse {
        header: hdr(17),
        deleted: 1,
        prev_kvs: vec![kv("a", "1", 16, 16, 1)],
    };
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.del(o, &a)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 17\n\"RaftTerm\" : 2\n\"Deleted\" : 1\n\"PrevKey\" : \"a\"\n\"PrevCreateRevision\" : 16\n\"PrevModRevision\" : 16\n\"PrevVersion\" : 1\n\"PrevValue\" : \"1\"\n\"PrevLease\" : 0\n"
    );
}

/// The failure branch `put key1 "x"`, `get key1`, `del key9 --prev-kv` of a
/// txn at revision `rev`; inner headers carry only the revision.
fn txn_failure(rev: i64, key9_rev: i64) -> TxnResponse {
    let inner = ResponseHeader {
        revision: rev,
        ..Default::default()
    };
    TxnResponse {
        header: hdr(rev),
        succeeded: false,
        responses: vec![
            ResponseOp::Put(PutResponse {
                header: inner,
                prev_kv: None,
            }),
            ResponseOp::Range(RangeResponse {
                header: inner,
                kvs: vec![kv("key1", "overwrote-key1", 20, 22, 3)],
                more: false,
                count: 1,
            }),
            ResponseOp::Delete(DeleteResponse {
                header: inner,
                deleted: 1,
                prev_kvs: vec![kv("key9", "v9", key9_rev, key9_rev, 1)],
            }),
        ],
    }
}

#[test]
fn txn_in_every_format() {
    let r = txn_failure(26, 25);
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.txn(o, &r)),
        "FAILURE\n\nOK\n\nkey1\noverwrote-key1\n\n1\nkey9\nv9\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.txn(o, &r)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":26,\"raft_term\":2},\"responses\":[{\"Response\":{\"ResponsePut\":{\"header\":{\"revision\":26}}}},{\"Response\":{\"ResponseRange\":{\"header\":{\"revision\":26},\"kvs\":[{\"key\":\"a2V5MQ==\",\"create_revision\":20,\"mod_revision\":22,\"version\":3,\"value\":\"b3Zlcndyb3RlLWtleTE=\"}],\"count\":1}}},{\"Response\":{\"ResponseDeleteRange\":{\"header\":{\"revision\":26},\"deleted\":1,\"prev_kvs\":[{\"key\":\"a2V5OQ==\",\"create_revision\":25,\"mod_revision\":25,\"version\":1,\"value\":\"djk=\"}]}}}]}\n"
    );
    let r = txn_failure(28, 27);
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.txn(o, &r)),
        concat!(
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 28\n\"RaftTerm\" : 2\n",
            "\"Succeeded\" : false\n",
            "\"ClusterID\" : 0\n\"MemberID\" : 0\n\"Revision\" : 28\n\"RaftTerm\" : 0\n",
            "\"ClusterID\" : 0\n\"MemberID\" : 0\n\"Revision\" : 28\n\"RaftTerm\" : 0\n",
            "\"Key\" : \"key1\"\n\"CreateRevision\" : 20\n\"ModRevision\" : 22\n\"Version\" : 3\n\"Value\" : \"overwrote-key1\"\n\"Lease\" : 0\n\"More\" : false\n\"Count\" : 1\n",
            "\"ClusterID\" : 0\n\"MemberID\" : 0\n\"Revision\" : 28\n\"RaftTerm\" : 0\n",
            "\"Deleted\" : 1\n",
            "\"PrevKey\" : \"key9\"\n\"PrevCreateRevision\" : 27\n\"PrevModRevision\" : 27\n\"PrevVersion\" : 1\n\"PrevValue\" : \"v9\"\n\"PrevLease\" : 0\n",
        )
    );
    let empty = TxnResponse {
        header: hdr(31),
        succeeded: true,
        responses: vec![],
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.txn(o, &empty)),
        "SUCCESS\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.txn(o, &empty)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":31,\"raft_term\":2},\"succeeded\":true}\n"
    );
    assert!(Printer::new(OutputFormat::Table, false)
        .require(Shape::Txn)
        .is_err());
}

#[test]
fn leases_limits_keys_only_and_odd_bytes() {
    let with_lease = RangeResponse {
        header: hdr(33),
        kvs: vec![KeyValue {
            lease: 2324035581242661191,
            ..kv("lk", "lv", 33, 33, 1)
        }],
        more: false,
        count: 1,
    };
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.get(o, &with_lease)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":33,\"raft_term\":2},\"kvs\":[{\"key\":\"bGs=\",\"create_revision\":33,\"mod_revision\":33,\"version\":1,\"value\":\"bHY=\",\"lease\":2324035581242661191}],\"count\":1}\n"
    );
    assert!(print(OutputFormat::Fields, |p, o| p.get(o, &with_lease))
        .contains("\"Lease\" : 2324035581242661191\n"));
    let limited = RangeResponse {
        header: hdr(34),
        kvs: vec![kv("l2", "x", 34, 34, 1)],
        more: true,
        count: 2,
    };
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.get(o, &limited)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":34,\"raft_term\":2},\"kvs\":[{\"key\":\"bDI=\",\"create_revision\":34,\"mod_revision\":34,\"version\":1,\"value\":\"eA==\"}],\"more\":true,\"count\":2}\n"
    );
    assert!(print(OutputFormat::Fields, |p, o| p.get(o, &limited))
        .ends_with("\"More\" : true\n\"Count\" : 2\n"));
    let keys_only = RangeResponse {
        header: hdr(34),
        kvs: vec![
            kv("l2", "", 34, 34, 1),
            KeyValue {
                lease: 2324035581242661191,
                ..kv("lk", "", 33, 33, 1)
            },
        ],
        more: false,
        count: 2,
    };
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.get(o, &keys_only)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":34,\"raft_term\":2},\"kvs\":[{\"key\":\"bDI=\",\"create_revision\":34,\"mod_revision\":34,\"version\":1},{\"key\":\"bGs=\",\"create_revision\":33,\"mod_revision\":33,\"version\":1,\"lease\":2324035581242661191}],\"count\":2}\n"
    );
    let odd = RangeResponse {
        header: hdr(36),
        kvs: vec![KeyValue {
            value: b"a\x01b\tc\xff".to_vec(),
            ..kv("ctl", "", 36, 36, 1)
        }],
        more: false,
        count: 1,
    };
    assert!(print(OutputFormat::Fields, |p, o| p.get(o, &odd))
        .contains("\"Value\" : \"a\\x01b\\tc\\xff\"\n"));
    assert!(print(OutputFormat::Json, |p, o| p.get(o, &odd)).contains("\"value\":\"YQFiCWP/\""));
    let html = RangeResponse {
        header: hdr(35),
        kvs: vec![kv("<&>", "é\\x01", 35, 35, 1)],
        more: false,
        count: 1,
    };
    assert!(print(OutputFormat::Json, |p, o| p.get(o, &html)).contains("\"key\":\"PCY+\",\"create_revision\":35,\"mod_revision\":35,\"version\":1,\"value\":\"w6lceDAx\""));
    let fields = print(OutputFormat::Fields, |p, o| p.get(o, &html));
    assert!(fields.contains("\"Key\" : \"<&>\"\n\"CreateRevision\" : 35\n"));
    assert!(fields.contains("\"Value\" : \"é\\\\x01\"\n"));
}
