//! Every KV message survives encode → frame → verify → view unchanged.

use cairn_wire::*;

const HEADER: Header = Header {
    cluster_id: 0x1122_3344_5566_7788,
    member_id: 42,
    revision: 1_000_000_007,
    raft_term: 9,
};

fn kv(key: &'static [u8], value: &'static [u8], rev: i64) -> KeyValueRef<'static> {
    KeyValueRef {
        key,
        create_revision: rev - 1,
        mod_revision: rev,
        version: 3,
        value,
        lease: 0x694d_0000_0000_0001,
    }
}

fn request(frame: &[u8]) -> RequestView<'_> {
    decode_request(frame).expect("a frame we built verifies")
}

fn response(frame: &[u8]) -> ResponseView<'_> {
    decode_response(frame).expect("a frame we built verifies")
}

fn kvs<'a>(
    v: Option<flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<rpc::KeyValue<'a>>>>,
) -> Vec<KeyValueRef<'a>> {
    v.into_iter().flatten().map(KeyValueRef::from).collect()
}

#[test]
fn range_request_keeps_every_field() {
    let p = RangeParams {
        key: b"\x00binary\xffkey",
        range_end: b"\x00",
        limit: 10,
        revision: -1,
        sort_order: rpc::SortOrder::Descend,
        sort_target: rpc::SortTarget::Mod,
        serializable: true,
        keys_only: true,
        count_only: true,
        min_mod_revision: 1,
        max_mod_revision: 2,
        min_create_revision: 3,
        max_create_revision: i64::MAX,
    };
    let mut enc = Encoder::new();
    let frame = enc.range_request(u64::MAX, &p).to_vec();
    let v = request(&frame);
    assert_eq!(v.id, u64::MAX);
    assert_eq!(v.token, None);
    let RequestBodyView::Range(r) = v.body else {
        panic!("{v:?}")
    };
    assert_eq!(RangeParams::from(r), p);
}

#[test]
fn put_request_and_token() {
    let p = PutParams {
        key: b"k",
        value: &[7u8; 1000],
        lease: 5,
        prev_kv: true,
        ignore_value: true,
        ignore_lease: true,
    };
    let mut enc = Encoder::new();
    enc.set_token(Some("tok.en"));
    let frame = enc.put_request(3, &p).to_vec();
    let v = request(&frame);
    assert_eq!((v.id, v.token), (3, Some("tok.en")));
    let RequestBodyView::Put(r) = v.body else {
        panic!("{v:?}")
    };
    assert_eq!(PutParams::from(r), p);

    enc.set_token(None);
    let frame = enc.put_request(4, &p).to_vec();
    assert_eq!(request(&frame).token, None);
}

#[test]
fn empty_key_and_value_read_as_empty() {
    let mut enc = Encoder::new();
    let frame = enc.put_request(1, &PutParams::default()).to_vec();
    let RequestBodyView::Put(r) = request(&frame).body else {
        panic!()
    };
    assert_eq!(bytes(r.key()), b"");
    assert_eq!(bytes(r.value()), b"");
}

#[test]
fn delete_range_and_compaction_requests() {
    let mut enc = Encoder::new();
    let p = DeleteRangeParams {
        key: b"a",
        range_end: b"b",
        prev_kv: true,
    };
    let frame = enc.delete_range_request(8, &p).to_vec();
    let RequestBodyView::DeleteRange(d) = request(&frame).body else {
        panic!()
    };
    assert_eq!(DeleteRangeParams::from(d), p);

    let frame = enc.compaction_request(9, 77, true).to_vec();
    let RequestBodyView::Compaction(c) = request(&frame).body else {
        panic!()
    };
    assert_eq!((c.revision(), c.physical()), (77, true));
}

#[test]
fn nested_txn_request() {
    let inner_ops = [RequestOpParams::Put(PutParams {
        key: b"in",
        value: b"ner",
        ..Default::default()
    })];
    let inner = TxnParams {
        compare: &[],
        success: &inner_ops,
        failure: &[],
    };
    let compare = [CompareParams {
        result: rpc::CompareResult::NotEqual,
        target: rpc::CompareTarget::Value,
        key: b"c",
        value: b"v",
        ..Default::default()
    }];
    let success = [
        RequestOpParams::Range(RangeParams {
            key: b"r",
            ..Default::default()
        }),
        RequestOpParams::Txn(inner),
    ];
    let failure = [RequestOpParams::DeleteRange(DeleteRangeParams {
        key: b"d",
        ..Default::default()
    })];
    let mut enc = Encoder::new();
    let frame = enc
        .txn_request(
            11,
            &TxnParams {
                compare: &compare,
                success: &success,
                failure: &failure,
            },
        )
        .to_vec();
    let RequestBodyView::Txn(t) = request(&frame).body else {
        panic!()
    };

    let c = t.compare().expect("compare").get(0);
    assert_eq!(CompareParams::from(c), compare[0]);

    let ops: Vec<_> = RequestOpView::all(t.success())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ops.len(), 2);
    let RequestOpView::Range(r) = ops[0] else {
        panic!()
    };
    assert_eq!(bytes(r.key()), b"r");
    let RequestOpView::Txn(nested) = ops[1] else {
        panic!()
    };
    let nested_ops: Vec<_> = RequestOpView::all(nested.success())
        .collect::<Result<_, _>>()
        .unwrap();
    let RequestOpView::Put(p) = nested_ops[0] else {
        panic!()
    };
    assert_eq!(bytes(p.value()), b"ner");

    let fail: Vec<_> = RequestOpView::all(t.failure())
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(matches!(fail[..], [RequestOpView::DeleteRange(_)]));
}

#[test]
fn range_response_with_many_keys() {
    let values: Vec<Vec<u8>> = (0..500u32)
        .map(|i| i.to_be_bytes().repeat(i as usize % 7))
        .collect();
    let keys: Vec<Vec<u8>> = (0..500u32)
        .map(|i| format!("key/{i:05}").into_bytes())
        .collect();
    let input: Vec<KeyValueRef<'_>> = keys
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(i, (k, v))| KeyValueRef {
            key: k,
            value: v,
            create_revision: i as i64,
            mod_revision: 2 * i as i64,
            version: 1,
            lease: 0,
        })
        .collect();
    let mut enc = Encoder::new();
    let frame = enc
        .range_response(
            12,
            &HEADER,
            &RangeResult {
                kvs: &input,
                more: true,
                count: 9999,
            },
        )
        .to_vec();
    let v = response(&frame);
    assert_eq!((v.id, v.header), (12, HEADER));
    let Ok(ResponseBodyView::Range(r)) = v.body else {
        panic!()
    };
    assert_eq!(kvs(r.kvs()), input);
    assert_eq!((r.more(), r.count()), (true, 9999));
}

#[test]
fn put_and_delete_responses() {
    let mut enc = Encoder::new();
    let prev = kv(b"k", b"old", 5);
    let frame = enc
        .put_response(
            1,
            &HEADER,
            &PutResult {
                prev_kv: Some(prev),
            },
        )
        .to_vec();
    let Ok(ResponseBodyView::Put(p)) = response(&frame).body else {
        panic!()
    };
    assert_eq!(p.prev_kv().map(KeyValueRef::from), Some(prev));

    let frame = enc
        .put_response(1, &HEADER, &PutResult { prev_kv: None })
        .to_vec();
    let Ok(ResponseBodyView::Put(p)) = response(&frame).body else {
        panic!()
    };
    assert!(p.prev_kv().is_none());

    let prevs = [kv(b"a", b"1", 3), kv(b"b", b"2", 4)];
    let frame = enc
        .delete_range_response(
            2,
            &HEADER,
            &DeleteRangeResult {
                deleted: 2,
                prev_kvs: &prevs,
            },
        )
        .to_vec();
    let Ok(ResponseBodyView::DeleteRange(d)) = response(&frame).body else {
        panic!()
    };
    assert_eq!(d.deleted(), 2);
    assert_eq!(kvs(d.prev_kvs()), prevs);

    let frame = enc.compaction_response(3, &HEADER).to_vec();
    assert!(matches!(
        response(&frame).body,
        Ok(ResponseBodyView::Compaction(_))
    ));
}

#[test]
fn nested_txn_response() {
    let got = [kv(b"x", b"y", 2)];
    let inner_results = [ResponseOpResult::Put(PutResult { prev_kv: None })];
    let results = [
        ResponseOpResult::Range(RangeResult {
            kvs: &got,
            more: false,
            count: 1,
        }),
        ResponseOpResult::DeleteRange(DeleteRangeResult {
            deleted: 0,
            prev_kvs: &[],
        }),
        ResponseOpResult::Txn(TxnResult {
            succeeded: false,
            responses: &inner_results,
        }),
    ];
    let mut enc = Encoder::new();
    let frame = enc
        .txn_response(
            5,
            &HEADER,
            &TxnResult {
                succeeded: true,
                responses: &results,
            },
        )
        .to_vec();
    let Ok(ResponseBodyView::Txn(t)) = response(&frame).body else {
        panic!()
    };
    assert!(t.succeeded());
    let ops: Vec<_> = ResponseOpView::all(t.responses())
        .collect::<Result<_, _>>()
        .unwrap();
    let [ResponseOpView::Range(r), ResponseOpView::DeleteRange(d), ResponseOpView::Txn(n)] =
        ops[..]
    else {
        panic!("{ops:?}")
    };
    assert_eq!(kvs(r.kvs()), got);
    assert_eq!(d.deleted(), 0);
    assert!(!n.succeeded());
    let inner: Vec<_> = ResponseOpView::all(n.responses())
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(matches!(inner[..], [ResponseOpView::Put(_)]));
}

#[test]
fn error_response_carries_code_message_and_optional_header() {
    let mut enc = Encoder::new();
    let frame = enc
        .error_response(
            6,
            Some(&HEADER),
            rpc::ErrorCode::OutOfRange,
            "mvcc: required revision has been compacted",
        )
        .to_vec();
    let v = response(&frame);
    assert_eq!((v.id, v.header), (6, HEADER));
    let Err(e) = v.body else { panic!() };
    assert_eq!(e.code, rpc::ErrorCode::OutOfRange);
    assert_eq!(e.message, "mvcc: required revision has been compacted");

    let frame = enc
        .error_response(0, None, rpc::ErrorCode::InvalidArgument, "bad")
        .to_vec();
    let v = response(&frame);
    assert_eq!(v.header, Header::default());
    assert!(matches!(
        v.body,
        Err(ErrorView {
            code: rpc::ErrorCode::InvalidArgument,
            message: "bad"
        })
    ));
}

#[test]
fn encoder_reuse_does_not_leak_previous_message() {
    let mut enc = Encoder::new();
    let big = vec![1u8; 100_000];
    let first = enc
        .put_request(
            1,
            &PutParams {
                key: b"k",
                value: &big,
                ..Default::default()
            },
        )
        .len();
    let second = enc
        .put_request(
            2,
            &PutParams {
                key: b"k",
                value: b"v",
                ..Default::default()
            },
        )
        .to_vec();
    assert!(second.len() < first / 100);
    let RequestBodyView::Put(p) = request(&second).body else {
        panic!()
    };
    assert_eq!(bytes(p.value()), b"v");
}

#[test]
fn frames_decode_at_any_address() {
    let mut enc = Encoder::new();
    let frame = enc
        .range_response(
            1,
            &HEADER,
            &RangeResult {
                kvs: &[kv(b"k", b"v", 2)],
                more: false,
                count: 1,
            },
        )
        .to_vec();
    for shift in 1..8 {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(&frame);
        let v = response(&shifted[shift..]);
        assert_eq!(v.header, HEADER, "shift {shift}");
    }
}
