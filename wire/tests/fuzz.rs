//! Hostile bytes never panic the decoders: random frames, truncations and
//! bit flips of real frames are either rejected or decode to views that can
//! be read in full.
//!
//! Cases per property: 1000 by default; set CAIRN_WIRE_FUZZ_CASES (e.g.
//! 100000) for a long run.

use cairn_wire::*;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CAIRN_WIRE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Decodes `frame` every way there is; a successful view is read in full
/// (the generated Debug impls follow every field, union and vector).
fn decode_all_ways(frame: &[u8]) {
    if let Ok(v) = decode_request(frame) {
        let _ = format!("{v:?}");
        if let RequestBodyView::Txn(t) = v.body {
            for op in RequestOpView::all(t.success()).chain(RequestOpView::all(t.failure())) {
                let _ = format!("{:?}", op.expect("decode_request checked every op"));
            }
        }
    }
    if let Ok(v) = decode_response(frame) {
        let _ = format!("{v:?}");
        if let Ok(ResponseBodyView::Txn(t)) = v.body {
            for op in ResponseOpView::all(t.responses()) {
                let _ = format!("{:?}", op.expect("decode_response checked every op"));
            }
        }
    }
    if let Ok(v) = decode_peer_frame(frame) {
        let _ = format!("{v:?}");
    }
}

/// One frame of most message shapes, the nested and vector-heavy ones first.
fn corpus() -> Vec<Vec<u8>> {
    let mut enc = Encoder::new();
    enc.set_token(Some("token"));
    let h = Header {
        cluster_id: 1,
        member_id: 2,
        revision: 3,
        raft_term: 4,
    };
    let kv = KeyValueRef {
        key: b"key",
        value: b"value",
        create_revision: 1,
        mod_revision: 2,
        version: 3,
        lease: 4,
    };
    let inner_ops = [RequestOpParams::Put(PutParams {
        key: b"a",
        value: b"b",
        ..Default::default()
    })];
    let ops = [
        RequestOpParams::Range(RangeParams {
            key: b"r",
            range_end: b"s",
            ..Default::default()
        }),
        RequestOpParams::Txn(TxnParams {
            compare: &[],
            success: &inner_ops,
            failure: &inner_ops,
        }),
        RequestOpParams::DeleteRange(DeleteRangeParams {
            key: b"d",
            ..Default::default()
        }),
    ];
    let compare = [CompareParams {
        key: b"c",
        value: b"v",
        ..Default::default()
    }];
    let results = [
        ResponseOpResult::Range(RangeResult {
            kvs: &[kv, kv],
            more: true,
            count: 2,
        }),
        ResponseOpResult::Txn(TxnResult {
            succeeded: true,
            responses: &[ResponseOpResult::Put(PutResult { prev_kv: Some(kv) })],
        }),
    ];
    let events = [EventRef {
        kind: rpc::EventType::Delete,
        kv,
        prev_kv: Some(kv),
    }];
    let members = [MemberRef {
        id: 1,
        name: "m",
        peer_urls: &["http://a:2380"],
        client_urls: &["http://a:2379"],
        is_learner: false,
    }];
    let entries = [EntryParams {
        index: 1,
        term: 1,
        kind: peer::EntryKind::Normal,
        data: b"payload",
    }];
    let mut frames = vec![
        enc.txn_request(
            1,
            &TxnParams {
                compare: &compare,
                success: &ops,
                failure: &ops,
            },
        )
        .to_vec(),
        enc.txn_response(
            1,
            &h,
            &TxnResult {
                succeeded: true,
                responses: &results,
            },
        )
        .to_vec(),
        enc.range_request(
            2,
            &RangeParams {
                key: b"k",
                limit: 5,
                ..Default::default()
            },
        )
        .to_vec(),
        enc.range_response(
            2,
            &h,
            &RangeResult {
                kvs: &[kv, kv, kv],
                more: false,
                count: 3,
            },
        )
        .to_vec(),
        enc.put_request(
            3,
            &PutParams {
                key: b"k",
                value: b"v",
                lease: 1,
                prev_kv: true,
                ..Default::default()
            },
        )
        .to_vec(),
        enc.watch_create_request(
            4,
            &WatchCreateParams {
                key: b"w",
                filters: &[rpc::FilterType::NoPut],
                ..Default::default()
            },
        )
        .to_vec(),
        enc.watch_response(
            4,
            &h,
            &WatchResult {
                watch_id: 1,
                events: &events,
                cancel_reason: "r",
                ..Default::default()
            },
        )
        .to_vec(),
        enc.lease_time_to_live_response(
            5,
            &h,
            &LeaseTimeToLiveResult {
                id: 1,
                ttl: 2,
                granted_ttl: 3,
                keys: &[b"k1", b"k2"],
            },
        )
        .to_vec(),
        enc.member_add_response(6, &h, &members[0], &members)
            .to_vec(),
        enc.status_response(
            7,
            &h,
            &StatusResult {
                version: "v",
                errors: &["e"],
                ..Default::default()
            },
        )
        .to_vec(),
        enc.role_grant_permission_request(
            8,
            "r",
            &PermissionRef {
                key: b"k",
                ..Default::default()
            },
        )
        .to_vec(),
        enc.error_response(
            9,
            Some(&h),
            rpc::ErrorCode::NotFound,
            "etcdserver: requested lease not found",
        )
        .to_vec(),
    ];
    let snapshot = SnapshotMetadataParams {
        index: 1,
        term: 1,
        conf_state: ConfStateParams {
            voters: &[1, 2],
            ..Default::default()
        },
    };
    frames.push(
        enc.raft_message(&RaftMessageParams {
            msg_type: peer::MessageType::Snap,
            entries: &entries,
            snapshot: Some(snapshot),
            context: b"c",
            ..Default::default()
        })
        .to_vec(),
    );
    frames.push(
        enc.snapshot_chunk(&SnapshotChunkParams {
            data: b"chunk",
            last: true,
            ..Default::default()
        })
        .to_vec(),
    );
    frames.push(enc.hello(1, 2, 3, &[]).to_vec());
    frames
}

/// Rewrites the length prefix so the frame gets past the length check and
/// into the verifier.
fn with_prefix(mut body: Vec<u8>) -> Vec<u8> {
    let len = (body.len() as u32).to_le_bytes();
    body.splice(0..0, len);
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all_ways(&with_prefix(body.clone()));
        // And as a raw stream through a decoder, prefix and all.
        let mut dec = FrameDecoder::for_requests();
        if dec.feed(&body).is_ok() {
            while let Ok(Some(frame)) = dec.next_frame() {
                decode_all_ways(frame);
            }
        }
    }

    #[test]
    fn bit_flips(which in 0usize..64, flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..8)) {
        let corpus = corpus();
        let mut frame = corpus[which % corpus.len()].clone();
        for (pos, bit) in flips {
            // Leave the prefix alone so the flipped frame reaches the verifier.
            let at = 4 + pos % (frame.len() - 4);
            frame[at] ^= 1 << bit;
        }
        decode_all_ways(&frame);
    }

    #[test]
    fn truncations(which in 0usize..64, keep in any::<usize>()) {
        let corpus = corpus();
        let frame = &corpus[which % corpus.len()];
        let keep = keep % (frame.len() - 4);
        decode_all_ways(&with_prefix(frame[4..4 + keep].to_vec()));
        // Truncated with the original prefix: a length mismatch, never a read.
        prop_assert!(decode_request(&frame[..4 + keep]).is_err());
    }

    #[test]
    fn random_overwrites(which in 0usize..64, at in any::<usize>(), junk in proptest::collection::vec(any::<u8>(), 1..16)) {
        let corpus = corpus();
        let mut frame = corpus[which % corpus.len()].clone();
        let start = 4 + at % (frame.len() - 4);
        for (i, b) in junk.into_iter().enumerate() {
            if let Some(slot) = frame.get_mut(start + i) {
                *slot = b;
            }
        }
        decode_all_ways(&frame);
    }
}

#[test]
fn the_corpus_itself_decodes() {
    for frame in corpus() {
        let ok = decode_request(&frame).is_ok()
            || decode_response(&frame).is_ok()
            || decode_peer_frame(&frame).is_ok();
        assert!(ok, "a frame we built does not decode");
    }
}
