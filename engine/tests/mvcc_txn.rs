//! The etcd rules of MVCC txns: compares, branches, reads of earlier
//! writes, duplicate keys, op limits and checks before writing.

use cairn_engine::mvcc::{
    Compare, CompareResult, CompareTarget, Error, EventKind, Mvcc, MvccConfig, PutRequest,
    RangeRequest, RequestOp, ResponseOp, TxnRequest,
};

mod mvcc_util;
use mvcc_util::{del_op, get, mvcc, put, put_lease, put_op, range};

fn cmp<'a>(key: &'a [u8], result: CompareResult, target: CompareTarget<'a>) -> Compare<'a> {
    Compare {
        result,
        target,
        key,
        range_end: b"",
    }
}

#[test]
fn txn_compares_each_target_and_result() {
    let mut m = mvcc();
    put_lease(&mut m, b"k", b"v", 3); // create 2, mod 2, version 1
    put(&mut m, b"k2", b"w");
    let holds = |m: &mut Mvcc, c: Compare<'_>| {
        m.txn(&TxnRequest {
            compare: vec![c],
            ..Default::default()
        })
        .expect("txn")
        .response
        .succeeded
    };
    use CompareResult::*;
    use CompareTarget::*;
    assert!(holds(&mut m, cmp(b"k", Equal, Version(1))));
    assert!(holds(&mut m, cmp(b"k", Greater, Create(1))));
    assert!(holds(&mut m, cmp(b"k", Less, Mod(3))));
    assert!(holds(&mut m, cmp(b"k", NotEqual, Value(b"x"))));
    assert!(holds(&mut m, cmp(b"k", Equal, Lease(3))));
    assert!(!holds(&mut m, cmp(b"k", Greater, Value(b"v"))));
    // A missing key compares as zeroes, but a value compare on it fails.
    assert!(holds(&mut m, cmp(b"nope", Equal, Version(0))));
    assert!(holds(&mut m, cmp(b"nope", Equal, Create(0))));
    assert!(!holds(&mut m, cmp(b"nope", Equal, Value(b""))));
    assert!(!holds(&mut m, cmp(b"nope", NotEqual, Value(b"x"))));
    // A ranged compare must hold for every key in the range.
    let ranged = |result, target| Compare {
        result,
        target,
        key: b"k",
        range_end: b"l",
    };
    assert!(holds(&mut m, ranged(Equal, Version(1))));
    assert!(!holds(&mut m, ranged(Equal, Value(b"v"))));
    assert!(holds(&mut m, ranged(Greater, Mod(1))));
    assert_eq!(m.current_revision(), 3, "compares alone write nothing");
}

#[test]
fn txn_runs_the_branch_its_compares_pick_and_reads_see_earlier_writes() {
    let mut m = mvcc();
    put(&mut m, b"k", b"old"); // 2
    let r = m
        .txn(&TxnRequest {
            compare: vec![cmp(
                b"k",
                CompareResult::Equal,
                CompareTarget::Value(b"old"),
            )],
            success: vec![
                put_op(b"k", b"new"),
                RequestOp::Range(range(b"k", b"")),
                // A nested txn's compares see the state before the outer txn.
                RequestOp::Txn(TxnRequest {
                    compare: vec![cmp(
                        b"k",
                        CompareResult::Equal,
                        CompareTarget::Value(b"old"),
                    )],
                    success: vec![put_op(b"n", b"ok")],
                    failure: vec![put_op(b"n", b"not-ok")],
                }),
                RequestOp::Range(RangeRequest {
                    key: b"k",
                    revision: 2,
                    ..Default::default()
                }),
            ],
            failure: vec![put_op(b"f", b"x")],
        })
        .expect("txn");
    assert!(r.response.succeeded);
    assert_eq!(r.response.revision, 3);
    let ResponseOp::Range(read) = &r.response.responses[1] else {
        panic!("range response expected")
    };
    assert_eq!(
        (read.kvs[0].value.as_slice(), read.revision),
        (&b"new"[..], 3)
    );
    let ResponseOp::Txn(nested) = &r.response.responses[2] else {
        panic!("txn response expected")
    };
    assert!(nested.succeeded);
    assert_eq!(nested.revision, 0, "etcd leaves nested txn headers empty");
    let ResponseOp::Range(old) = &r.response.responses[3] else {
        panic!("range response expected")
    };
    assert_eq!(old.kvs[0].value, b"old");
    assert_eq!(get(&m, b"n").map(|kv| kv.value), Some(b"ok".to_vec()));
    assert!(get(&m, b"f").is_none());
    assert_eq!(r.events.len(), 2);
}

#[test]
fn txn_refuses_duplicate_writes_like_etcd() {
    let mut m = mvcc();
    put(&mut m, b"k", b"v");
    let refused = |m: &mut Mvcc, success: Vec<RequestOp<'static>>| {
        m.txn(&TxnRequest {
            success,
            ..Default::default()
        })
        .err()
    };
    let dup = Some(Error::DuplicateKey);
    assert_eq!(
        refused(&mut m, vec![put_op(b"k", b"1"), put_op(b"k", b"2")]),
        dup
    );
    assert_eq!(
        refused(&mut m, vec![del_op(b"k", b""), put_op(b"k", b"2")]),
        dup
    );
    assert_eq!(
        refused(&mut m, vec![put_op(b"k", b"2"), del_op(b"a", b"z")]),
        dup
    );
    assert_eq!(
        refused(&mut m, vec![del_op(b"a", b"\0"), put_op(b"k", b"2")]),
        dup
    );
    let nested = |success, failure| {
        RequestOp::Txn(TxnRequest {
            compare: vec![],
            success,
            failure,
        })
    };
    // A put in a nested txn under a delete of the outer branch.
    assert_eq!(
        refused(
            &mut m,
            vec![del_op(b"k", b""), nested(vec![put_op(b"k", b"1")], vec![])]
        ),
        dup
    );
    // Puts in two nested txns.
    assert_eq!(
        refused(
            &mut m,
            vec![
                nested(vec![put_op(b"k", b"1")], vec![]),
                nested(vec![put_op(b"k", b"2")], vec![])
            ]
        ),
        dup
    );
    // The two branches of one nested txn may both put the same key.
    let ok = m.txn(&TxnRequest {
        success: vec![nested(vec![put_op(b"k", b"1")], vec![put_op(b"k", b"2")])],
        ..Default::default()
    });
    assert!(ok.is_ok());
    // Overlapping deletes are fine.
    let ok = m.txn(&TxnRequest {
        success: vec![del_op(b"a", b"z"), del_op(b"k", b"")],
        ..Default::default()
    });
    assert_eq!(ok.map(|r| r.response.responses.len()), Ok(2));
    // The same key in success and failure of the top level is fine too.
    let ok = m.txn(&TxnRequest {
        compare: vec![],
        success: vec![put_op(b"k", b"s")],
        failure: vec![put_op(b"k", b"f")],
    });
    assert!(ok.is_ok());
}

#[test]
fn txn_op_limits_and_key_checks() {
    let mut m = Mvcc::new(MvccConfig {
        txn_ops_max: 3,
        ..MvccConfig::default()
    });
    let four = vec![
        put_op(b"a", b""),
        put_op(b"b", b""),
        put_op(b"c", b""),
        put_op(b"d", b""),
    ];
    let too_many = m.txn(&TxnRequest {
        failure: four.clone(),
        ..Default::default()
    });
    assert_eq!(too_many.err(), Some(Error::TooManyOps));
    let compares = vec![cmp(b"a", CompareResult::Equal, CompareTarget::Version(0)); 4];
    let too_many = m.txn(&TxnRequest {
        compare: compares,
        ..Default::default()
    });
    assert_eq!(too_many.err(), Some(Error::TooManyOps));
    // A nested txn gets what its parent left: 3 - 2 = 1 op.
    let nested = m.txn(&TxnRequest {
        success: vec![
            put_op(b"a", b""),
            RequestOp::Txn(TxnRequest {
                success: vec![put_op(b"b", b""), put_op(b"c", b"")],
                ..Default::default()
            }),
        ],
        ..Default::default()
    });
    assert_eq!(nested.err(), Some(Error::TooManyOps));
    let empty = m.txn(&TxnRequest {
        compare: vec![cmp(b"", CompareResult::Equal, CompareTarget::Version(0))],
        ..Default::default()
    });
    assert_eq!(empty.err(), Some(Error::EmptyKey));
    let empty = m.txn(&TxnRequest {
        failure: vec![RequestOp::Range(range(b"", b""))],
        ..Default::default()
    });
    assert_eq!(empty.err(), Some(Error::EmptyKey));
    let flags = m.txn(&TxnRequest {
        success: vec![RequestOp::Put(PutRequest {
            key: b"a",
            value: b"x",
            ignore_value: true,
            ..Default::default()
        })],
        ..Default::default()
    });
    assert_eq!(flags.err(), Some(Error::ValueProvided));
    assert_eq!(m.current_revision(), 1);
}

#[test]
fn txn_checks_ops_on_the_taken_path_before_writing_anything() {
    let mut m = mvcc();
    put(&mut m, b"x", b"1");
    let ignore_missing = RequestOp::Put(PutRequest {
        key: b"missing",
        ignore_value: true,
        ..Default::default()
    });
    let r = m.txn(&TxnRequest {
        success: vec![put_op(b"a", b"1"), ignore_missing.clone()],
        ..Default::default()
    });
    assert_eq!(r.err(), Some(Error::KeyNotFound));
    assert!(get(&m, b"a").is_none(), "a refused txn writes nothing");
    // The same op on the branch not taken is not checked.
    let r = m.txn(&TxnRequest {
        success: vec![put_op(b"a", b"1")],
        failure: vec![ignore_missing],
        ..Default::default()
    });
    assert!(r.is_ok());
    let future = m.txn(&TxnRequest {
        success: vec![
            put_op(b"b", b"1"),
            RequestOp::Range(RangeRequest {
                key: b"x",
                revision: 4,
                ..Default::default()
            }),
        ],
        ..Default::default()
    });
    assert_eq!(
        future.err(),
        Some(Error::FutureRev),
        "the txn's own revision is not readable by number"
    );
    m.compact(3).expect("compact");
    let compacted = m.txn(&TxnRequest {
        success: vec![RequestOp::Range(RangeRequest {
            key: b"x",
            revision: 2,
            ..Default::default()
        })],
        ..Default::default()
    });
    assert_eq!(compacted.err(), Some(Error::Compacted));
    assert_eq!(m.current_revision(), 3);
}

#[test]
fn txn_inner_responses_carry_etcds_revisions() {
    let mut m = mvcc();
    put(&mut m, b"k", b"v"); // 2
    let r = m
        .txn(&TxnRequest {
            success: vec![
                del_op(b"nothing", b""),
                RequestOp::Range(range(b"k", b"")),
                put_op(b"p", b"v"),
                del_op(b"k", b""),
            ],
            ..Default::default()
        })
        .expect("txn");
    let revs: Vec<i64> = r
        .response
        .responses
        .iter()
        .map(|op| match op {
            ResponseOp::Range(x) => x.revision,
            ResponseOp::Put(x) => x.revision,
            ResponseOp::DeleteRange(x) => x.revision,
            ResponseOp::Txn(x) => x.revision,
        })
        .collect();
    // Before the first change reads are at 2; after it at the txn's 3.
    assert_eq!(revs, vec![2, 2, 3, 3]);
}

#[test]
fn put_then_sibling_delete_of_the_same_key_is_two_changes_in_one_revision() {
    // etcd lets a nested txn put a key that a later nested txn deletes.
    let mut m = mvcc();
    let nested = |op| {
        RequestOp::Txn(TxnRequest {
            success: vec![op],
            ..Default::default()
        })
    };
    let r = m
        .txn(&TxnRequest {
            success: vec![nested(put_op(b"k", b"v")), nested(del_op(b"k", b""))],
            ..Default::default()
        })
        .expect("txn");
    assert_eq!(r.events.len(), 2);
    assert_eq!(r.events[1].kind, EventKind::Delete);
    assert_eq!(
        r.events[1].prev_kv.as_ref().map(|p| p.value.clone()),
        Some(b"v".to_vec())
    );
    assert!(get(&m, b"k").is_none());
    m.compact(2).expect("compact");
    assert_eq!(m.key_count(), 0);
}
