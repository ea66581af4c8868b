//! Frames that verify structurally but that this build must not act on, and
//! frames built to make verification or reading expensive.

use cairn_wire::limits::RPC_VERIFY_DEPTH_MAX;
use cairn_wire::*;
use flatbuffers::InvalidFlatbuffer;

fn status_body(fbb: &mut Builder) -> flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset> {
    rpc::StatusRequest::create(fbb, &rpc::StatusRequestArgs {}).as_union_value()
}

#[test]
fn unknown_request_type_is_rejected() {
    let mut enc = Encoder::new();
    let frame = enc
        .request_with(1, |fbb| (rpc::RequestBody(200), status_body(fbb)))
        .to_vec();
    let err = decode_request(&frame).unwrap_err();
    assert_eq!(err, WireError::UnknownRequestType(200));
    assert_eq!(err.to_string(), "unknown request type 200");
    assert!(!err.is_fatal_to_connection());
}

#[test]
fn request_without_body_is_rejected() {
    let mut fbb = Builder::new();
    let root = rpc::Request::create(
        &mut fbb,
        &rpc::RequestArgs {
            id: 1,
            ..Default::default()
        },
    );
    fbb.finish_size_prefixed(root, None);
    assert_eq!(
        decode_request(fbb.finished_data()).unwrap_err(),
        WireError::MissingBody
    );

    // A tag without a table (or the reverse) fails verification.
    let mut enc = Encoder::new();
    let frame = enc
        .request_with(1, |fbb| (rpc::RequestBody::NONE, status_body(fbb)))
        .to_vec();
    assert!(matches!(
        decode_request(&frame),
        Err(WireError::Verification(_))
    ));
}

#[test]
fn unknown_response_and_peer_types_are_rejected() {
    let mut enc = Encoder::new();
    let frame = enc
        .response_with(1, &Header::default(), |fbb| {
            (
                rpc::ResponseBody(250),
                rpc::StatusResponse::create(fbb, &Default::default()).as_union_value(),
            )
        })
        .to_vec();
    assert_eq!(
        decode_response(&frame).unwrap_err(),
        WireError::UnknownResponseType(250)
    );

    let mut peer_frame = enc.hello(1, 2, 3, &[]).to_vec();
    // The union tag is the only u8 field of PeerFrame; find it by value.
    let tag_at = find_union_tag(&peer_frame, peer::PeerBody::Hello.0);
    peer_frame[tag_at] = 99;
    assert_eq!(
        decode_peer_frame(&peer_frame).unwrap_err(),
        WireError::UnknownPeerMessageType(99)
    );
}

/// Position of the root table's first field (the union tag of PeerFrame),
/// found through the table's vtable.
fn find_union_tag(frame: &[u8], tag: u8) -> usize {
    let u32_at = |at: usize| u32::from_le_bytes(frame[at..at + 4].try_into().unwrap());
    let root = 4 + u32_at(4) as usize;
    let vtable = (root as i64 - i64::from(u32_at(root) as i32)) as usize;
    let first_field = u16::from_le_bytes([frame[vtable + 4], frame[vtable + 5]]) as usize;
    assert_eq!(frame[root + first_field], tag);
    root + first_field
}

#[test]
fn unknown_txn_op_type_is_rejected() {
    let mut enc = Encoder::new();
    let frame = enc
        .request_with(1, |fbb| {
            let inner = rpc::StatusRequest::create(fbb, &Default::default()).as_union_value();
            let op = rpc::RequestOp::create(
                fbb,
                &rpc::RequestOpArgs {
                    request_type: rpc::RequestOpKind(9),
                    request: Some(inner),
                },
            );
            let success = fbb.create_vector(&[op]);
            let txn = rpc::TxnRequest::create(
                fbb,
                &rpc::TxnRequestArgs {
                    compare: None,
                    success: Some(success),
                    failure: None,
                },
            );
            (rpc::RequestBody::TxnRequest, txn.as_union_value())
        })
        .to_vec();
    assert_eq!(
        decode_request(&frame).unwrap_err(),
        WireError::UnknownTxnOpType(9)
    );
}

#[test]
fn unknown_enum_values_are_rejected() {
    let mut enc = Encoder::new();
    let frame = enc
        .range_request(
            1,
            &RangeParams {
                key: b"k",
                sort_order: rpc::SortOrder(9),
                ..Default::default()
            },
        )
        .to_vec();
    let err = decode_request(&frame).unwrap_err();
    assert_eq!(
        err,
        WireError::UnknownEnumValue {
            field: "sort_order",
            value: 9
        }
    );
    assert_eq!(err.to_string(), "unknown value 9 for field sort_order");

    // Also inside a nested txn.
    let ops = [RequestOpParams::Range(RangeParams {
        sort_target: rpc::SortTarget(-1),
        ..Default::default()
    })];
    let inner = [RequestOpParams::Txn(TxnParams {
        compare: &[],
        success: &[],
        failure: &ops,
    })];
    let frame = enc
        .txn_request(
            1,
            &TxnParams {
                compare: &[],
                success: &inner,
                failure: &[],
            },
        )
        .to_vec();
    assert_eq!(
        decode_request(&frame).unwrap_err(),
        WireError::UnknownEnumValue {
            field: "sort_target",
            value: -1
        }
    );

    let compare = [CompareParams {
        target: rpc::CompareTarget(5),
        ..Default::default()
    }];
    let frame = enc
        .txn_request(
            1,
            &TxnParams {
                compare: &compare,
                success: &[],
                failure: &[],
            },
        )
        .to_vec();
    assert!(matches!(
        decode_request(&frame),
        Err(WireError::UnknownEnumValue {
            field: "target",
            ..
        })
    ));

    let frame = enc
        .alarm_request(1, rpc::AlarmAction(3), 0, rpc::AlarmType::None)
        .to_vec();
    assert!(matches!(
        decode_request(&frame),
        Err(WireError::UnknownEnumValue {
            field: "action",
            ..
        })
    ));

    let frame = enc
        .watch_create_request(
            1,
            &WatchCreateParams {
                filters: &[rpc::FilterType(2)],
                ..Default::default()
            },
        )
        .to_vec();
    assert!(matches!(
        decode_request(&frame),
        Err(WireError::UnknownEnumValue {
            field: "filters",
            ..
        })
    ));

    let m = RaftMessageParams {
        msg_type: peer::MessageType(19),
        ..Default::default()
    };
    let frame = enc.raft_message(&m).to_vec();
    assert!(matches!(
        decode_peer_frame(&frame),
        Err(WireError::UnknownEnumValue { field: "type", .. })
    ));
}

/// A txn nested `depth` levels deep, built with the generated API.
fn nested_txn(enc: &mut Encoder, depth: usize) -> Vec<u8> {
    enc.request_with(1, |fbb| {
        let key = fbb.create_vector(b"deep");
        let mut op = rpc::PutRequest::create(
            fbb,
            &rpc::PutRequestArgs {
                key: Some(key),
                ..Default::default()
            },
        )
        .as_union_value();
        let mut kind = rpc::RequestOpKind::PutRequest;
        for _ in 0..depth {
            let wrapped = rpc::RequestOp::create(
                fbb,
                &rpc::RequestOpArgs {
                    request_type: kind,
                    request: Some(op),
                },
            );
            let success = fbb.create_vector(&[wrapped]);
            let txn = rpc::TxnRequest::create(
                fbb,
                &rpc::TxnRequestArgs {
                    compare: None,
                    success: Some(success),
                    failure: None,
                },
            );
            op = txn.as_union_value();
            kind = rpc::RequestOpKind::TxnRequest;
        }
        (rpc::RequestBody::TxnRequest, op)
    })
    .to_vec()
}

#[test]
fn nesting_is_bounded_by_the_depth_limit() {
    let mut enc = Encoder::new();
    let ok = nested_txn(&mut enc, 20);
    assert!(decode_request(&ok).is_ok());
    let too_deep = nested_txn(&mut enc, RPC_VERIFY_DEPTH_MAX);
    let err = decode_request(&too_deep).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Verification(InvalidFlatbuffer::DepthLimitReached)
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("frame failed verification: "),
        "{err}"
    );
}

#[test]
fn aliased_offsets_cannot_amplify_work() {
    // One 4 KiB KeyValue referenced 10,000 times: a 45 KB frame that reads as
    // 40 MB. The verifier's apparent-size bound stops it.
    let mut enc = Encoder::new();
    let frame = enc
        .response_with(1, &Header::default(), |fbb| {
            let value = fbb.create_vector(&[7u8; 4096]);
            let kv = rpc::KeyValue::create(
                fbb,
                &rpc::KeyValueArgs {
                    value: Some(value),
                    ..Default::default()
                },
            );
            let kvs = fbb.create_vector(&vec![kv; 10_000]);
            let body = rpc::RangeResponse::create(
                fbb,
                &rpc::RangeResponseArgs {
                    kvs: Some(kvs),
                    more: false,
                    count: 1,
                },
            );
            (rpc::ResponseBody::RangeResponse, body.as_union_value())
        })
        .to_vec();
    assert!(frame.len() < 50_000);
    let err = decode_response(&frame).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Verification(InvalidFlatbuffer::ApparentSizeTooLarge)
        ),
        "{err}"
    );
}

#[test]
fn length_prefix_must_match_the_frame() {
    let mut enc = Encoder::new();
    let mut frame = enc.status_request(1).to_vec();
    frame.push(0);
    let err = decode_request(&frame).unwrap_err();
    assert!(
        matches!(err, WireError::FrameLengthMismatch { .. }),
        "{err}"
    );
    assert!(matches!(
        decode_request(&[4, 0, 0, 0, 1, 2, 3, 4]),
        Err(WireError::FrameTooShort { .. })
    ));
    assert!(matches!(
        decode_request(&[]),
        Err(WireError::FrameTooShort { .. })
    ));
}

#[test]
fn a_response_is_not_a_request() {
    // Both roots verify only as themselves; a response fed to the request
    // decoder must fail or decode harmlessly, never panic.
    let mut enc = Encoder::new();
    let frame = enc
        .range_response(1, &Header::default(), &RangeResult::default())
        .to_vec();
    let _ = decode_request(&frame).map(|v| format!("{v:?}"));
}
