//! The etcd rules of the MVCC index, one test per rule.

use cairn_engine::mvcc::{
    DeleteRangeRequest, Error, EventKind, KeyValue, Mvcc, PutRequest, RangeRequest, RequestOp,
    SortOrder, SortTarget, TxnRequest,
};

mod mvcc_util;
use mvcc_util::{del_op, get, mvcc, put, put_lease, put_op, range};

fn del(m: &mut Mvcc, key: &[u8], range_end: &[u8]) -> i64 {
    m.delete_range(&DeleteRangeRequest {
        key,
        range_end,
        prev_kv: false,
    })
    .expect("delete")
    .response
    .deleted
}

fn keys(kvs: &[KeyValue]) -> Vec<&[u8]> {
    kvs.iter().map(|kv| &kv.key[..]).collect()
}

#[test]
fn error_strings_are_etcds() {
    let cases = [
        (
            Error::Compacted,
            "mvcc: required revision has been compacted",
        ),
        (
            Error::FutureRev,
            "mvcc: required revision is a future revision",
        ),
        (Error::EmptyKey, "etcdserver: key is not provided"),
        (Error::KeyNotFound, "etcdserver: key not found"),
        (Error::ValueProvided, "etcdserver: value is provided"),
        (Error::LeaseProvided, "etcdserver: lease is provided"),
        (
            Error::TooManyOps,
            "etcdserver: too many operations in txn request",
        ),
        (
            Error::DuplicateKey,
            "etcdserver: duplicate key given in txn request",
        ),
    ];
    for (err, text) in cases {
        assert_eq!(err.to_string(), text);
    }
}

#[test]
fn each_write_advances_the_revision_by_one_and_no_op_writes_do_not() {
    let mut m = mvcc();
    assert_eq!(m.current_revision(), 1);
    assert_eq!(put(&mut m, b"a", b"1"), 2);
    assert_eq!(put(&mut m, b"b", b"1"), 3);
    // A delete matching nothing does not advance.
    let d = m
        .delete_range(&DeleteRangeRequest {
            key: b"zz",
            range_end: b"",
            prev_kv: false,
        })
        .expect("delete");
    assert_eq!((d.response.deleted, d.response.revision), (0, 3));
    assert!(d.events.is_empty());
    // A read-only txn, and a txn whose only write deletes nothing, do not advance.
    let t = m
        .txn(&TxnRequest {
            success: vec![RequestOp::Range(range(b"a", b"")), del_op(b"nope", b"")],
            ..Default::default()
        })
        .expect("txn");
    assert_eq!(t.response.revision, 3);
    assert!(t.events.is_empty());
    // A txn with several writes takes one revision; sub numbers the changes.
    let t = m
        .txn(&TxnRequest {
            success: vec![put_op(b"c", b"1"), put_op(b"d", b"1"), del_op(b"a", b"")],
            ..Default::default()
        })
        .expect("txn");
    assert_eq!(t.response.revision, 4);
    assert_eq!(m.current_revision(), 4);
    let kinds: Vec<_> = t
        .events
        .iter()
        .map(|e| (e.kind, e.kv.mod_revision))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Put, 4),
            (EventKind::Put, 4),
            (EventKind::Delete, 4)
        ]
    );
}

#[test]
fn versions_count_puts_and_delete_starts_a_new_generation() {
    let mut m = mvcc();
    put(&mut m, b"k", b"v1");
    put(&mut m, b"k", b"v2");
    let kv = get(&m, b"k").expect("live");
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    assert_eq!(del(&mut m, b"k", b""), 1);
    assert!(get(&m, b"k").is_none());
    put(&mut m, b"k", b"v3");
    let kv = get(&m, b"k").expect("live");
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
    // Old revisions still read the old generation.
    let old = m
        .range(&RangeRequest {
            key: b"k",
            revision: 3,
            ..Default::default()
        })
        .expect("range");
    assert_eq!(old.kvs[0].value, b"v2");
    assert_eq!(old.revision, 5, "the header carries the current revision");
    let gone = m
        .range(&RangeRequest {
            key: b"k",
            revision: 4,
            ..Default::default()
        })
        .expect("range");
    assert!(gone.kvs.is_empty());
}

#[test]
fn put_flags_follow_etcd() {
    let mut m = mvcc();
    let empty = m.put(&PutRequest {
        key: b"",
        value: b"v",
        ..Default::default()
    });
    assert_eq!(empty.err(), Some(Error::EmptyKey));
    let missing = m.put(&PutRequest {
        key: b"k",
        ignore_value: true,
        ..Default::default()
    });
    assert_eq!(missing.err(), Some(Error::KeyNotFound));
    let missing = m.put(&PutRequest {
        key: b"k",
        value: b"v",
        ignore_lease: true,
        ..Default::default()
    });
    assert_eq!(missing.err(), Some(Error::KeyNotFound));
    assert_eq!(m.current_revision(), 1, "refused puts consume no revision");

    put_lease(&mut m, b"k", b"v", 7);
    let both = m.put(&PutRequest {
        key: b"k",
        value: b"x",
        ignore_value: true,
        ..Default::default()
    });
    assert_eq!(both.err(), Some(Error::ValueProvided));
    let both = m.put(&PutRequest {
        key: b"k",
        lease: 8,
        ignore_lease: true,
        ..Default::default()
    });
    assert_eq!(both.err(), Some(Error::LeaseProvided));

    // ignore_value keeps the value and takes the new lease.
    let r = m
        .put(&PutRequest {
            key: b"k",
            lease: 9,
            ignore_value: true,
            prev_kv: true,
            ..Default::default()
        })
        .expect("put");
    let prev = r.response.prev_kv.expect("prev_kv requested");
    assert_eq!(
        (prev.value.as_slice(), prev.lease, prev.version),
        (&b"v"[..], 7, 1)
    );
    let kv = get(&m, b"k").expect("live");
    assert_eq!(
        (kv.value.as_slice(), kv.lease, kv.version),
        (&b"v"[..], 9, 2)
    );
    // ignore_lease keeps the lease and takes the new value.
    m.put(&PutRequest {
        key: b"k",
        value: b"w",
        ignore_lease: true,
        ..Default::default()
    })
    .expect("put");
    let kv = get(&m, b"k").expect("live");
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"w"[..], 9));
    // Without prev_kv the response has none.
    let r = m
        .put(&PutRequest {
            key: b"k",
            value: b"z",
            ..Default::default()
        })
        .expect("put");
    assert!(r.response.prev_kv.is_none());
    assert_eq!(
        r.events[0].prev_kv.as_ref().map(|p| p.value.clone()),
        Some(b"w".to_vec())
    );
}

#[test]
fn range_end_forms_select_etcds_keys() {
    let mut m = mvcc();
    for k in [&b"a"[..], b"ab", b"abc", b"b", b"c"] {
        put(&mut m, k, b"v");
    }
    let r = |key: &'static [u8], end: &'static [u8]| {
        let resp = m.range(&range(key, end)).expect("range");
        keys(&resp.kvs)
            .into_iter()
            .map(|k| k.to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(r(b"ab", b""), vec![b"ab".to_vec()]);
    assert_eq!(r(b"ab", b"ac"), vec![b"ab".to_vec(), b"abc".to_vec()]);
    assert_eq!(r(b"b", b"\0"), vec![b"b".to_vec(), b"c".to_vec()]);
    assert_eq!(r(b"\0", b"\0").len(), 5);
    assert!(r(b"c", b"a").is_empty());
    assert!(r(b"zz", b"").is_empty());
    assert_eq!(m.range(&range(b"", b"")).err(), Some(Error::EmptyKey));
}

#[test]
fn limit_more_and_count() {
    let mut m = mvcc();
    for k in [&b"a"[..], b"b", b"c", b"d"] {
        put(&mut m, k, b"v");
    }
    let req = RangeRequest {
        key: b"a",
        range_end: b"\0",
        limit: 2,
        ..Default::default()
    };
    let r = m.range(&req).expect("range");
    assert_eq!(keys(&r.kvs), vec![&b"a"[..], b"b"]);
    assert!(r.more);
    assert_eq!(r.count, 4, "count ignores the limit");
    let r = m.range(&RangeRequest { limit: 4, ..req }).expect("range");
    assert!(!r.more);
    let r = m.range(&RangeRequest { limit: -1, ..req }).expect("range");
    assert_eq!((r.kvs.len(), r.more), (4, false));
    let r = m
        .range(&RangeRequest {
            count_only: true,
            ..req
        })
        .expect("range");
    assert_eq!((r.kvs.len(), r.count, r.more), (0, 4, false));
    let r = m
        .range(&RangeRequest {
            keys_only: true,
            ..req
        })
        .expect("range");
    assert!(r
        .kvs
        .iter()
        .all(|kv| kv.value.is_empty() && kv.version == 1));
}

#[test]
fn sort_orders_and_targets() {
    let mut m = mvcc();
    // a: created 2, version 3; b: created 3, version 1; c: created 4, version 2.
    put(&mut m, b"a", b"z");
    put(&mut m, b"b", b"y");
    put(&mut m, b"c", b"x");
    put(&mut m, b"a", b"z");
    put(&mut m, b"c", b"m");
    put(&mut m, b"a", b"q");
    let sorted = |order, target| {
        let r = m
            .range(&RangeRequest {
                key: b"a",
                range_end: b"\0",
                sort_order: order,
                sort_target: target,
                ..Default::default()
            })
            .expect("range");
        r.kvs.iter().map(|kv| kv.key[0]).collect::<Vec<u8>>()
    };
    assert_eq!(sorted(SortOrder::None, SortTarget::Key), b"abc");
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Key), b"cba");
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Version), b"bca");
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Version), b"acb");
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Create), b"abc");
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Mod), b"acb");
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Value), b"cab");
    // NONE with a target other than KEY sorts ascending, as etcd.
    assert_eq!(sorted(SortOrder::None, SortTarget::Value), b"cab");
    assert_eq!(sorted(SortOrder::None, SortTarget::Mod), b"bca");

    // Sort before limit: the limit cuts the sorted list.
    let r = m
        .range(&RangeRequest {
            key: b"a",
            range_end: b"\0",
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Key,
            limit: 1,
            ..Default::default()
        })
        .expect("range");
    assert_eq!((keys(&r.kvs), r.more, r.count), (vec![&b"c"[..]], true, 3));
    // keys_only still sorts by value.
    let r = m
        .range(&RangeRequest {
            key: b"a",
            range_end: b"\0",
            sort_order: SortOrder::Ascend,
            sort_target: SortTarget::Value,
            keys_only: true,
            ..Default::default()
        })
        .expect("range");
    assert_eq!(keys(&r.kvs), vec![&b"c"[..], b"a", b"b"]);
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty()));
}

#[test]
fn revision_filters_apply_after_fetching_and_before_the_limit() {
    let mut m = mvcc();
    for k in [&b"a"[..], b"b", b"c", b"d"] {
        put(&mut m, k, b"v"); // mod revisions 2, 3, 4, 5
    }
    put(&mut m, b"a", b"w"); // a: create 2, mod 6
    let base = RangeRequest {
        key: b"a",
        range_end: b"\0",
        ..Default::default()
    };
    let r = m
        .range(&RangeRequest {
            min_mod_revision: 4,
            ..base
        })
        .expect("range");
    assert_eq!(keys(&r.kvs), vec![&b"a"[..], b"c", b"d"]);
    assert_eq!(r.count, 4, "count is taken before the filters");
    let r = m
        .range(&RangeRequest {
            max_mod_revision: 4,
            ..base
        })
        .expect("range");
    assert_eq!(keys(&r.kvs), vec![&b"b"[..], b"c"]);
    let r = m
        .range(&RangeRequest {
            min_create_revision: 3,
            max_create_revision: 4,
            ..base
        })
        .expect("range");
    assert_eq!(keys(&r.kvs), vec![&b"b"[..], b"c"]);
    // With a filter the limit applies to the filtered list, so `more` tells
    // whether filtered results were cut.
    let r = m
        .range(&RangeRequest {
            min_mod_revision: 4,
            limit: 2,
            ..base
        })
        .expect("range");
    assert_eq!((keys(&r.kvs), r.more), (vec![&b"a"[..], b"c"], true));
    let r = m
        .range(&RangeRequest {
            min_mod_revision: 4,
            limit: 3,
            ..base
        })
        .expect("range");
    assert!(!r.more);
}

#[test]
fn read_revisions_are_checked_against_compaction_and_the_present() {
    let mut m = mvcc();
    put(&mut m, b"k", b"1"); // 2
    put(&mut m, b"k", b"2"); // 3
    put(&mut m, b"k", b"3"); // 4
    let at = |m: &Mvcc, revision| {
        m.range(&RangeRequest {
            key: b"k",
            revision,
            ..Default::default()
        })
        .map(|r| r.kvs.first().map(|kv| kv.value.clone()))
    };
    assert_eq!(at(&m, 5).err(), Some(Error::FutureRev));
    assert_eq!(at(&m, -3), Ok(Some(b"3".to_vec())), "negative = latest");
    assert_eq!(at(&m, 1), Ok(None));
    m.compact(3).expect("compact");
    assert_eq!(at(&m, 2).err(), Some(Error::Compacted));
    assert_eq!(
        at(&m, 3),
        Ok(Some(b"2".to_vec())),
        "the compaction revision stays readable"
    );
    assert_eq!(at(&m, 4), Ok(Some(b"3".to_vec())));
}

#[test]
fn compaction_rules() {
    let mut m = mvcc();
    put(&mut m, b"a", b"1"); // 2
    put(&mut m, b"b", b"1"); // 3
    del(&mut m, b"b", b""); // 4
    put(&mut m, b"a", b"2"); // 5
    assert_eq!(m.compact(6), Err(Error::FutureRev));
    assert_eq!(m.compact(4), Ok(5));
    assert_eq!(m.compact(4), Err(Error::Compacted));
    assert_eq!(m.compact(3), Err(Error::Compacted));
    // b's tombstone at 4 went with its generation; a keeps its version at 2
    // (the newest at or below 4) and the one at 5.
    assert_eq!(m.key_count(), 1);
    let a_at_4 = m
        .range(&RangeRequest {
            key: b"a",
            revision: 4,
            ..Default::default()
        })
        .expect("range");
    assert_eq!(a_at_4.kvs[0].value, b"1");
    assert_eq!(
        m.compact(5),
        Ok(5),
        "compacting at the current revision is allowed"
    );
    assert_eq!(m.compact_revision(), 5);
    let a = get(&m, b"a").expect("latest survives compaction");
    assert_eq!((a.version, a.create_revision), (2, 2));
}

#[test]
fn size_accounting_grows_with_history_and_shrinks_with_compaction() {
    let mut m = mvcc();
    assert_eq!(m.size_bytes(), 0);
    put(&mut m, b"key", b"value");
    let one = m.size_bytes();
    assert_eq!(one, 3 + 5 + cairn_engine::mvcc::VERSION_META_BYTES);
    put(&mut m, b"key", b"value");
    assert_eq!(m.size_bytes(), 2 * one);
    del(&mut m, b"key", b"");
    m.compact(m.current_revision()).expect("compact");
    assert_eq!(m.size_bytes(), 0);
}

#[test]
fn delete_range_reports_and_tombstones_each_key() {
    let mut m = mvcc();
    put_lease(&mut m, b"a", b"1", 5);
    put(&mut m, b"b", b"2");
    put(&mut m, b"c", b"3");
    let d = m
        .delete_range(&DeleteRangeRequest {
            key: b"a",
            range_end: b"c",
            prev_kv: true,
        })
        .expect("delete");
    assert_eq!((d.response.deleted, d.response.revision), (2, 5));
    assert_eq!(keys(&d.response.prev_kvs), vec![&b"a"[..], b"b"]);
    assert_eq!(d.response.prev_kvs[0].lease, 5);
    assert_eq!(d.events.len(), 2);
    for e in &d.events {
        assert_eq!(e.kind, EventKind::Delete);
        assert_eq!(
            (e.kv.mod_revision, e.kv.version, e.kv.create_revision),
            (5, 0, 0)
        );
        assert!(e.kv.value.is_empty());
        assert!(e.prev_kv.is_some());
    }
    assert_eq!(m.keys_with_lease(5).count(), 0, "delete detaches the lease");
    assert_eq!(
        m.delete_range(&DeleteRangeRequest::default()).err(),
        Some(Error::EmptyKey)
    );
}

#[test]
fn lease_side_index_follows_puts_and_deletes() {
    let mut m = mvcc();
    put_lease(&mut m, b"a", b"1", 7);
    put_lease(&mut m, b"b", b"1", 7);
    put_lease(&mut m, b"c", b"1", 8);
    put_lease(&mut m, b"b", b"2", 8); // moves b to lease 8
    let with = |m: &Mvcc, id| {
        m.keys_with_lease(id)
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
    };
    assert_eq!(with(&m, 7), vec![b"a".to_vec()]);
    assert_eq!(with(&m, 8), vec![b"b".to_vec(), b"c".to_vec()]);
    let rev = m.current_revision();
    let revoked = m.delete_lease_keys(8);
    assert_eq!(revoked.response.deleted, 2);
    assert_eq!(
        revoked.response.revision,
        rev + 1,
        "one revision for all of a lease's keys"
    );
    assert_eq!(
        keys(
            &revoked
                .events
                .iter()
                .map(|e| e.kv.clone())
                .collect::<Vec<_>>()
        ),
        vec![&b"b"[..], b"c"]
    );
    assert_eq!(m.lease_key_count(8), 0);
    let nothing = m.delete_lease_keys(8);
    assert_eq!(
        (nothing.response.revision, nothing.events.len()),
        (rev + 1, 0)
    );
}

#[test]
fn events_replay_history_without_splitting_revisions() {
    let mut m = mvcc();
    put(&mut m, b"a", b"1"); // 2
    m.txn(&TxnRequest {
        success: vec![put_op(b"b", b"1"), put_op(b"c", b"1"), put_op(b"a", b"2")],
        ..Default::default()
    })
    .expect("txn"); // 3
    del(&mut m, b"a", b""); // 4
    put(&mut m, b"z", b"1"); // 5

    let all = m.events(1, b"\0", b"\0", 100).expect("events");
    assert_eq!(all.events.len(), 6);
    assert_eq!(all.next_revision, 6);
    let revs: Vec<i64> = all.events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(revs, vec![2, 3, 3, 3, 4, 5]);
    let delete = &all.events[4];
    assert_eq!(delete.kind, EventKind::Delete);
    assert_eq!(
        delete.prev_kv.as_ref().map(|p| p.value.clone()),
        Some(b"2".to_vec())
    );

    // Two events per batch: revision 3 does not fit after 2, so the batch stops.
    let first = m.events(2, b"\0", b"\0", 2).expect("events");
    assert_eq!((first.events.len(), first.next_revision), (1, 3));
    // Revision 3 alone exceeds the batch and comes whole.
    let second = m.events(3, b"\0", b"\0", 2).expect("events");
    assert_eq!((second.events.len(), second.next_revision), (3, 4));

    let only_a = m.events(1, b"a", b"", 100).expect("events");
    assert_eq!(only_a.events.len(), 3);
    let none = m.events(6, b"\0", b"\0", 100).expect("events");
    assert_eq!((none.events.len(), none.next_revision), (0, 6));

    m.compact(3).expect("compact");
    assert_eq!(m.events(3, b"\0", b"\0", 10).err(), Some(Error::Compacted));
    let after = m.events(4, b"\0", b"\0", 10).expect("events");
    assert_eq!(after.events.len(), 2);
}

#[test]
fn hash_kv_depends_on_kept_state_only() {
    let mut a = mvcc();
    let mut b = mvcc();
    for m in [&mut a, &mut b] {
        put(m, b"x", b"1");
        put(m, b"y", b"1");
        put(m, b"x", b"2");
        del(m, b"y", b"");
        put(m, b"z", b"1");
    }
    assert_eq!(a.hash_kv(0), b.hash_kv(0));
    // Compacting in two steps or one keeps the same state, so the same hash.
    a.compact(3).expect("compact");
    a.compact(5).expect("compact");
    b.compact(5).expect("compact");
    let ha = a.hash_kv(0).expect("hash");
    assert_eq!(Ok(ha), b.hash_kv(0));
    assert_eq!((ha.compact_revision, ha.hash_revision), (5, 6));
    // Hashing an older revision covers less.
    assert_ne!(
        a.hash_kv(6).map(|h| h.hash),
        a.hash_kv(5).map(|h| h.hash).or(Ok(0))
    );
    assert_eq!(a.hash_kv(5).err(), Some(Error::Compacted));
    assert_eq!(a.hash_kv(7).err(), Some(Error::FutureRev));
    put(&mut a, b"x", b"3");
    assert_ne!(a.hash_kv(0).map(|h| h.hash), b.hash_kv(0).map(|h| h.hash));
}

#[test]
fn a_snapshot_holds_compaction_freeing_but_not_the_compaction_point() {
    let mut m = mvcc();
    put(&mut m, b"k", b"1");
    put(&mut m, b"k", b"2");
    let before = m.size_bytes();
    let snap = m.snapshot_begin(0).expect("snapshot");
    m.compact(3).expect("compact");
    assert!(m.compaction_held());
    assert_eq!(m.size_bytes(), before, "nothing freed while held");
    let old = m.range(&RangeRequest {
        key: b"k",
        revision: 2,
        ..Default::default()
    });
    assert_eq!(old.err(), Some(Error::Compacted));
    drop(snap);
    put(&mut m, b"j", b"1");
    assert!(m.size_bytes() < before + 100, "freed at the next write");
    assert_eq!(
        m.size_bytes(),
        2 * (1 + 1 + cairn_engine::mvcc::VERSION_META_BYTES)
    );
}
