//! Random KV messages round-trip exactly (empty and extreme values included).

use cairn_wire::*;
use proptest::prelude::*;

fn blob() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..64)
    ]
}

#[derive(Debug, Clone)]
struct OwnedKv {
    key: Vec<u8>,
    value: Vec<u8>,
    revs: (i64, i64, i64, i64),
}

impl OwnedKv {
    fn as_ref(&self) -> KeyValueRef<'_> {
        KeyValueRef {
            key: &self.key,
            create_revision: self.revs.0,
            mod_revision: self.revs.1,
            version: self.revs.2,
            value: &self.value,
            lease: self.revs.3,
        }
    }
}

fn owned_kv() -> impl Strategy<Value = OwnedKv> {
    (blob(), blob(), any::<(i64, i64, i64, i64)>()).prop_map(|(key, value, revs)| OwnedKv {
        key,
        value,
        revs,
    })
}

proptest! {
    #[test]
    fn range_request(
        key in blob(), end in blob(), ints in any::<[i64; 6]>(), flags in any::<[bool; 3]>(),
        order in 0i8..3, target in 0i8..5, id in any::<u64>(),
    ) {
        let p = RangeParams {
            key: &key,
            range_end: &end,
            limit: ints[0],
            revision: ints[1],
            sort_order: rpc::SortOrder(order),
            sort_target: rpc::SortTarget(target),
            serializable: flags[0],
            keys_only: flags[1],
            count_only: flags[2],
            min_mod_revision: ints[2],
            max_mod_revision: ints[3],
            min_create_revision: ints[4],
            max_create_revision: ints[5],
        };
        let mut enc = Encoder::new();
        let frame = enc.range_request(id, &p).to_vec();
        let v = decode_request(&frame).unwrap();
        prop_assert_eq!(v.id, id);
        let RequestBodyView::Range(r) = v.body else { panic!("{v:?}") };
        prop_assert_eq!(RangeParams::from(r), p);
    }

    #[test]
    fn txn_request(
        puts in proptest::collection::vec((blob(), blob(), any::<i64>(), any::<bool>()), 0..8),
        dels in proptest::collection::vec((blob(), blob()), 0..8),
        cmp in proptest::collection::vec((blob(), any::<i64>(), 0i8..4, 0i8..5), 0..8),
    ) {
        let success: Vec<_> = puts
            .iter()
            .map(|(k, v, lease, prev)| RequestOpParams::Put(PutParams { key: k, value: v, lease: *lease, prev_kv: *prev, ..Default::default() }))
            .collect();
        let failure: Vec<_> = dels
            .iter()
            .map(|(k, e)| RequestOpParams::DeleteRange(DeleteRangeParams { key: k, range_end: e, prev_kv: false }))
            .collect();
        let compare: Vec<_> = cmp
            .iter()
            .map(|(k, n, r, t)| CompareParams {
                key: k,
                result: rpc::CompareResult(*r),
                target: rpc::CompareTarget(*t),
                version: *n,
                mod_revision: n.wrapping_neg(),
                ..Default::default()
            })
            .collect();
        let mut enc = Encoder::new();
        let frame = enc.txn_request(1, &TxnParams { compare: &compare, success: &success, failure: &failure }).to_vec();
        let checked = decode_request(&frame).unwrap();
        // SAFETY: the frame was just accepted by decode_request.
        let again = unsafe { decode_verified_request(&frame) }.unwrap();
        prop_assert_eq!(again, checked, "reading a verified frame again sees the same request");
        let RequestBodyView::Txn(t) = checked.body else { panic!() };
        let got_compare: Vec<_> = t.compare().into_iter().flatten().map(CompareParams::from).collect();
        prop_assert_eq!(got_compare, compare);
        let got_success: Vec<_> = RequestOpView::all(t.success())
            .map(|op| match op.unwrap() {
                RequestOpView::Put(p) => RequestOpParams::Put(PutParams::from(p)),
                other => panic!("{other:?}"),
            })
            .collect();
        prop_assert_eq!(got_success, success);
        let got_failure: Vec<_> = RequestOpView::all(t.failure())
            .map(|op| match op.unwrap() {
                RequestOpView::DeleteRange(d) => RequestOpParams::DeleteRange(DeleteRangeParams::from(d)),
                other => panic!("{other:?}"),
            })
            .collect();
        prop_assert_eq!(got_failure, failure);
    }

    #[test]
    fn range_response(kvs in proptest::collection::vec(owned_kv(), 0..32), more in any::<bool>(), count in any::<i64>(), header in any::<(u64, u64, i64, u64)>()) {
        let header = Header { cluster_id: header.0, member_id: header.1, revision: header.2, raft_term: header.3 };
        let refs: Vec<_> = kvs.iter().map(OwnedKv::as_ref).collect();
        let mut enc = Encoder::new();
        let frame = enc.range_response(7, &header, &RangeResult { kvs: &refs, more, count }).to_vec();
        let v = decode_response(&frame).unwrap();
        // SAFETY: the frame was just accepted by decode_response.
        let again = unsafe { decode_verified_response(&frame) }.unwrap();
        prop_assert_eq!(again, v, "reading a verified frame again sees the same response");
        prop_assert_eq!(v.header, header);
        let Ok(ResponseBodyView::Range(r)) = v.body else { panic!() };
        let got: Vec<_> = r.kvs().into_iter().flatten().map(KeyValueRef::from).collect();
        prop_assert_eq!(got, refs);
        prop_assert_eq!((r.more(), r.count()), (more, count));
    }

    /// A shared watch frame, given a watch's ids, is the frame encoded for
    /// that watch alone: byte for byte when the watch id is not 0 (a 0 is
    /// left out of a directly encoded frame, and reads the same).
    #[test]
    fn shared_watch_frame_is_the_watchs_own_frame(
        events in proptest::collection::vec((owned_kv(), proptest::option::of(owned_kv()), any::<bool>()), 1..16),
        ids in proptest::collection::vec((1u64.., any::<i64>()), 1..4),
        header in any::<(u64, u64, i64, u64)>(),
    ) {
        let header = Header { cluster_id: header.0, member_id: header.1, revision: header.2, raft_term: header.3 };
        let refs: Vec<EventRef<'_>> = events
            .iter()
            .map(|(kv, prev, delete)| EventRef {
                kind: if *delete { rpc::EventType::Delete } else { rpc::EventType::Put },
                kv: kv.as_ref(),
                prev_kv: prev.as_ref().map(OwnedKv::as_ref),
            })
            .collect();
        let mut enc = Encoder::new();
        let shared = enc.shared_watch_events(&header, &refs);
        for (id, watch_id) in ids.iter().copied().chain([(9, 0)]) {
            let frame = shared.for_watch(id, watch_id);
            let own = enc
                .watch_response(id, &header, &WatchResult { watch_id, events: &refs, ..WatchResult::default() })
                .to_vec();
            if watch_id != 0 {
                prop_assert_eq!(&frame, &own);
            }
            let v = decode_response(&frame).unwrap();
            prop_assert_eq!(v.id, id);
            prop_assert_eq!(v.header, header);
            let Ok(ResponseBodyView::Watch(w)) = v.body else { panic!() };
            prop_assert_eq!(w.watch_id(), watch_id);
            prop_assert!(!w.created() && !w.canceled() && !w.fragment());
            let got: Vec<_> = w.events().into_iter().flatten().map(EventRef::from).collect();
            prop_assert_eq!(&got, &refs);
        }
    }
}
