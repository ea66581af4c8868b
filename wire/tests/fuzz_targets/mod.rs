//! Fuzz targets of the wire crate: plain `fn(&[u8])`s that panic when a
//! property breaks. Run by `wire/tests/fuzz_corpus.rs` over the committed
//! corpus and mutations of it, and by libFuzzer through `scripts/fuzz`.
#![allow(dead_code)]

use std::fmt::Write as _;

use cairn_wire::*;

/// A `fmt::Write` that only counts: walking a view through its `Debug`
/// impl reads every field, union and vector without allocating a string.
struct Sink(usize);

impl std::fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Decodes `frame` as a request, a response and a peer frame; whatever
/// verifies is read in full.
pub fn decode_all_ways(frame: &[u8]) {
    let mut sink = Sink(0);
    if let Ok(v) = decode_request(frame) {
        let _ = write!(sink, "{v:?}");
        if let RequestBodyView::Txn(t) = v.body {
            for op in RequestOpView::all(t.success()).chain(RequestOpView::all(t.failure())) {
                assert!(op.is_ok(), "decode_request accepted a txn with a bad op");
                let _ = write!(sink, "{op:?}");
            }
        }
        if let RequestBodyView::Put(put) = v.body {
            put_round_trip(v.id, put);
        }
    }
    if let Ok(v) = decode_response(frame) {
        let _ = write!(sink, "{v:?}");
        if let Ok(ResponseBodyView::Txn(t)) = v.body {
            for op in ResponseOpView::all(t.responses()) {
                assert!(op.is_ok(), "decode_response accepted a txn with a bad op");
                let _ = write!(sink, "{op:?}");
            }
        }
    }
    if let Ok(v) = decode_peer_frame(frame) {
        let _ = write!(sink, "{v:?}");
    }
}

/// A decoded put, encoded again, decodes to the same put.
fn put_round_trip(id: u64, put: rpc::PutRequest<'_>) {
    let params = PutParams {
        key: bytes(put.key()),
        value: bytes(put.value()),
        lease: put.lease(),
        prev_kv: put.prev_kv(),
        ignore_value: put.ignore_value(),
        ignore_lease: put.ignore_lease(),
    };
    let mut enc = Encoder::new();
    let again = decode_request(enc.put_request(id, &params)).expect("an encoded put decodes");
    let RequestBodyView::Put(p2) = again.body else {
        panic!("a put re-encoded decodes as another request type");
    };
    assert_eq!(again.id, id);
    assert_eq!(bytes(p2.key()), params.key);
    assert_eq!(bytes(p2.value()), params.value);
    assert_eq!(
        (
            p2.lease(),
            p2.prev_kv(),
            p2.ignore_value(),
            p2.ignore_lease()
        ),
        (
            params.lease,
            params.prev_kv,
            params.ignore_value,
            params.ignore_lease
        )
    );
}

/// What a decoder made of a stream: the frames, and whether it ended in a
/// framing error.
#[derive(Debug, PartialEq)]
struct Split {
    frames: Vec<(usize, usize)>,
    failed: bool,
}

/// Feeds `data` to a request decoder in one piece.
fn split_whole(data: &[u8]) -> Split {
    let mut dec = FrameDecoder::for_requests();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut failed = dec.feed(data).is_err();
    while !failed {
        match dec.next_frame() {
            Ok(Some(f)) => {
                decode_all_ways(f);
                frames.push((at, f.len()));
                at += f.len();
            }
            Ok(None) => break,
            Err(_) => failed = true,
        }
    }
    Split { frames, failed }
}

/// Feeds `data` through `read_buf`/`commit` in pieces whose sizes come from
/// the data itself, as a socket would deliver them.
fn split_pieces(data: &[u8]) -> Split {
    let mut dec = FrameDecoder::for_requests();
    let mut frames = Vec::new();
    let (mut sent, mut at) = (0, 0);
    let mut step = data.first().copied().unwrap_or(1) as usize % 61 + 1;
    loop {
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => {
                    frames.push((at, f.len()));
                    at += f.len();
                }
                Ok(None) => break,
                Err(_) => {
                    return Split {
                        frames,
                        failed: true,
                    }
                }
            }
        }
        if sent == data.len() {
            return Split {
                frames,
                failed: false,
            };
        }
        let room = dec.read_buf();
        let n = step.min(room.len()).min(data.len() - sent);
        room[..n].copy_from_slice(&data[sent..sent + n]);
        sent += n;
        step = step * 7 % 1021 + 1;
        if dec.commit(n).is_err() {
            return Split {
                frames,
                failed: true,
            };
        }
    }
}

/// Target `frames`: `data` as a client's byte stream and as one frame body.
/// Never panics; a stream splits into the same frames (and the same
/// framing error) however it arrives; every frame that verifies reads in
/// full; a decoded put re-encodes to the same put.
pub fn frames(data: &[u8]) {
    let whole = split_whole(data);
    let pieces = split_pieces(data);
    // A framing error is reported as soon as the bad length prefix is in
    // the buffer, before the frame in front of it is handed out: the frame
    // just before the error is delivered only if it arrived before the
    // bad prefix. Everything else must agree exactly.
    assert_eq!(
        whole.failed, pieces.failed,
        "the same stream failed one way only"
    );
    let n = whole.frames.len();
    let agree = if whole.failed {
        pieces.frames.starts_with(&whole.frames) && pieces.frames.len() <= n + 1
    } else {
        pieces.frames == whole.frames
    };
    assert!(
        agree,
        "the same stream split differently: {whole:?} vs {pieces:?}"
    );

    // The data as the body of one frame, so random bytes reach the verifier.
    let mut frame = Vec::with_capacity(data.len() + limits::FRAME_LENGTH_PREFIX_BYTES);
    frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
    frame.extend_from_slice(data);
    decode_all_ways(&frame);
    // And as a whole frame, prefix included.
    decode_all_ways(data);
}

/// Most bytes the `frames` target may allocate for `len` input bytes: the
/// framed copy, the whole-stream decoder's buffer and the piecewise
/// decoder's buffer (what was sent plus one growth step), an encoder for
/// the put round trip, and a little bookkeeping.
pub fn frames_budget_bytes(len: usize) -> usize {
    3 * len
        + 2 * limits::DECODER_GROWTH_BYTES_MAX
        + limits::ENCODER_INITIAL_BYTES
        + 2 * len
        + 16 * 1024
}

/// One frame of most message shapes, the nested and vector-heavy ones first.
pub fn seed_frames() -> Vec<Vec<u8>> {
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
