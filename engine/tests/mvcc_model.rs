//! Property tests: the MVCC index against a reference model that keeps the
//! full key → value map of every revision (a `BTreeMap` each) and applies
//! etcd's rules to it directly.
//!
//! Random sequences of puts, deletes, txns (nested), compactions and reads at
//! random revisions with random range options must give identical answers,
//! identical errors and identical events; at the end every kept revision is
//! read back, history is replayed, and a snapshot is restored and compared.
//! `PROPTEST_CASES` scales the number of sequences (default 256).

use cairn_engine::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, Error, Event, Mvcc, MvccConfig,
    PutRequest, RangeRequest, RangeResponse, RequestOp, SortOrder, SortTarget, TxnRequest,
};
use proptest::prelude::*;

const TXN_OPS_MAX: usize = 4;

// ---------------------------------------------------------------- ops

#[derive(Debug, Clone)]
struct PutOp {
    key: Vec<u8>,
    value: Vec<u8>,
    lease: i64,
    prev_kv: bool,
    ignore_value: bool,
    ignore_lease: bool,
}

#[derive(Debug, Clone)]
struct DelOp {
    key: Vec<u8>,
    range_end: Vec<u8>,
    prev_kv: bool,
}

#[derive(Debug, Clone)]
struct RangeOp {
    key: Vec<u8>,
    range_end: Vec<u8>,
    limit: i64,
    revision: i64,
    sort_order: SortOrder,
    sort_target: SortTarget,
    keys_only: bool,
    count_only: bool,
    min_mod: i64,
    max_mod: i64,
    min_create: i64,
    max_create: i64,
}

#[derive(Debug, Clone)]
struct CmpOp {
    key: Vec<u8>,
    range_end: Vec<u8>,
    result: CompareResult,
    target: u8,
    operand: i64,
    value: Vec<u8>,
}

#[derive(Debug, Clone)]
struct TxnOp {
    compare: Vec<CmpOp>,
    success: Vec<Op>,
    failure: Vec<Op>,
}

#[derive(Debug, Clone)]
enum Op {
    Put(PutOp),
    Del(DelOp),
    Range(RangeOp),
    Txn(TxnOp),
}

#[derive(Debug, Clone)]
enum Step {
    Put(PutOp),
    Del(DelOp),
    Txn(TxnOp),
    Range(RangeOp),
    /// Compact at `current - back` (may be invalid on purpose).
    Compact(i64),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        40 => prop::sample::select(vec![&b"a"[..], b"ab", b"b", b"c", b"d", b"e"]).prop_map(<[u8]>::to_vec),
        1 => Just(Vec::new()),
    ]
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        2 => Just(vec![0u8]),
        3 => prop::sample::select(vec![&b"b"[..], b"c", b"d", b"f", b"a"]).prop_map(<[u8]>::to_vec),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![&b""[..], b"x", b"y", b"zz"]).prop_map(<[u8]>::to_vec)
}

fn put_op() -> impl Strategy<Value = PutOp> {
    (
        key(),
        value(),
        0..3i64,
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(key, value, lease, prev_kv, ignore_value, ignore_lease)| PutOp {
                key,
                // Mostly valid ignore_* puts: no value/lease with the flag.
                value: if ignore_value && lease == 0 {
                    Vec::new()
                } else {
                    value
                },
                lease: if ignore_lease && !ignore_value {
                    0
                } else {
                    lease
                },
                prev_kv,
                ignore_value,
                ignore_lease,
            },
        )
}

fn del_op() -> impl Strategy<Value = DelOp> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DelOp {
        key,
        range_end,
        prev_kv,
    })
}

fn sort_order() -> impl Strategy<Value = SortOrder> {
    prop_oneof![4 => Just(SortOrder::None), 1 => Just(SortOrder::Ascend), 1 => Just(SortOrder::Descend)]
}

fn sort_target() -> impl Strategy<Value = SortTarget> {
    prop_oneof![
        4 => Just(SortTarget::Key),
        1 => Just(SortTarget::Version),
        1 => Just(SortTarget::Create),
        1 => Just(SortTarget::Mod),
        1 => Just(SortTarget::Value),
    ]
}

fn small_rev() -> impl Strategy<Value = i64> {
    prop_oneof![6 => Just(0i64), 1 => -2..0i64, 3 => 1..30i64]
}

fn range_op() -> impl Strategy<Value = RangeOp> {
    (
        (
            key(),
            range_end(),
            prop_oneof![3 => Just(0i64), 2 => 1..4i64, 1 => Just(-1i64)],
            small_rev(),
        ),
        (
            sort_order(),
            sort_target(),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
        ),
        (small_rev(), small_rev(), small_rev(), small_rev()),
    )
        .prop_map(
            |(
                (key, range_end, limit, revision),
                (sort_order, sort_target, keys_only, count_only),
                (a, b, c, d),
            )| {
                RangeOp {
                    key,
                    range_end,
                    limit,
                    revision,
                    sort_order,
                    sort_target,
                    keys_only,
                    count_only,
                    min_mod: a,
                    max_mod: b,
                    min_create: c,
                    max_create: d,
                }
            },
        )
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    (
        key(),
        prop_oneof![3 => Just(Vec::new()), 1 => range_end()],
        prop::sample::select(vec![
            CompareResult::Equal,
            CompareResult::Greater,
            CompareResult::Less,
            CompareResult::NotEqual,
        ]),
        0..5u8,
        0..8i64,
        value(),
    )
        .prop_map(|(key, range_end, result, target, operand, value)| CmpOp {
            key,
            range_end,
            result,
            target,
            operand,
            value,
        })
}

fn leaf_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => put_op().prop_map(Op::Put),
        2 => del_op().prop_map(Op::Del),
        2 => range_op().prop_map(Op::Range),
    ]
}

fn txn_op() -> impl Strategy<Value = TxnOp> {
    let ops = leaf_op().prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            4 => leaf_op(),
            1 => (prop::collection::vec(cmp_op(), 0..2), prop::collection::vec(inner.clone(), 0..3), prop::collection::vec(inner, 0..2))
                .prop_map(|(compare, success, failure)| Op::Txn(TxnOp { compare, success, failure })),
        ]
    });
    (
        prop::collection::vec(cmp_op(), 0..3),
        prop_oneof![
            12 => prop::collection::vec(ops.clone(), 0..=TXN_OPS_MAX - 1),
            1 => prop::collection::vec(ops.clone(), TXN_OPS_MAX + 1),
        ],
        prop::collection::vec(ops, 0..=2),
    )
        .prop_map(|(compare, success, failure)| TxnOp {
            compare,
            success,
            failure,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => put_op().prop_map(Step::Put),
        2 => del_op().prop_map(Step::Del),
        3 => txn_op().prop_map(Step::Txn),
        6 => range_op().prop_map(Step::Range),
        1 => (-1..6i64).prop_map(Step::Compact),
    ]
}

// ------------------------------------------------ owned → borrowed requests

fn put_req(p: &PutOp) -> PutRequest<'_> {
    PutRequest {
        key: &p.key,
        value: &p.value,
        lease: p.lease,
        prev_kv: p.prev_kv,
        ignore_value: p.ignore_value,
        ignore_lease: p.ignore_lease,
    }
}

fn del_req(d: &DelOp) -> DeleteRangeRequest<'_> {
    DeleteRangeRequest {
        key: &d.key,
        range_end: &d.range_end,
        prev_kv: d.prev_kv,
    }
}

fn range_req(r: &RangeOp) -> RangeRequest<'_> {
    RangeRequest {
        key: &r.key,
        range_end: &r.range_end,
        limit: r.limit,
        revision: r.revision,
        sort_order: r.sort_order,
        sort_target: r.sort_target,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod,
        max_mod_revision: r.max_mod,
        min_create_revision: r.min_create,
        max_create_revision: r.max_create,
    }
}

fn cmp_req(c: &CmpOp) -> Compare<'_> {
    Compare {
        result: c.result,
        target: match c.target {
            0 => CompareTarget::Version(c.operand),
            1 => CompareTarget::Create(c.operand),
            2 => CompareTarget::Mod(c.operand),
            3 => CompareTarget::Value(&c.value),
            _ => CompareTarget::Lease(c.operand % 3),
        },
        key: &c.key,
        range_end: &c.range_end,
    }
}

fn ops(ops: &[Op]) -> Vec<RequestOp<'_>> {
    ops.iter()
        .map(|op| match op {
            Op::Put(p) => RequestOp::Put(put_req(p)),
            Op::Del(d) => RequestOp::DeleteRange(del_req(d)),
            Op::Range(r) => RequestOp::Range(range_req(r)),
            Op::Txn(t) => RequestOp::Txn(txn_req(t)),
        })
        .collect()
}

fn txn_req(t: &TxnOp) -> TxnRequest<'_> {
    TxnRequest {
        compare: t.compare.iter().map(cmp_req).collect(),
        success: ops(&t.success),
        failure: ops(&t.failure),
    }
}

#[path = "mvcc_model/reference.rs"]
mod reference;
use reference::Model;

// ---------------------------------------------------------------- checks

fn read_all(m: &Mvcc, rev: i64) -> Result<RangeResponse, Error> {
    m.range(&RangeRequest {
        key: b"\0",
        range_end: b"\0",
        revision: rev,
        ..Default::default()
    })
}

fn model_read_all(model: &Model, rev: i64) -> Result<RangeResponse, Error> {
    let all = RangeOp {
        key: vec![0],
        range_end: vec![0],
        limit: 0,
        revision: rev,
        sort_order: SortOrder::None,
        sort_target: SortTarget::Key,
        keys_only: false,
        count_only: false,
        min_mod: 0,
        max_mod: 0,
        min_create: 0,
        max_create: 0,
    };
    let cur = model.cur();
    model.range(&all, cur, model.state(cur))
}

/// What an index that produces no events answers: the same, without them.
fn without_events<R: Clone, E>(want: &Result<(R, Vec<Event>), E>) -> Result<(R, Vec<Event>), E>
where
    E: Clone,
{
    want.clone().map(|(response, _)| (response, Vec::new()))
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let config = MvccConfig {
        txn_ops_max: TXN_OPS_MAX,
        event_prev_kv: true,
        events: true,
    };
    let mut m = Mvcc::new(config);
    // The same steps on an index that produces no events (as the server
    // runs while nobody watches) must answer and store exactly the same.
    let mut quiet = Mvcc::new(MvccConfig {
        events: false,
        ..config
    });
    let mut model = Model::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Put(p) => {
                let got = m.put(&put_req(p)).map(|a| (a.response, a.events));
                let want = model.put(p);
                let quiet_got = quiet.put(&put_req(p)).map(|a| (a.response, a.events));
                prop_assert_eq!(quiet_got, without_events(&want), "quiet step {}", i);
                prop_assert_eq!(got, want, "step {} {:?}", i, step);
            }
            Step::Del(d) => {
                let got = m.delete_range(&del_req(d)).map(|a| (a.response, a.events));
                let want = model.del(d);
                let quiet_got = quiet
                    .delete_range(&del_req(d))
                    .map(|a| (a.response, a.events));
                prop_assert_eq!(quiet_got, without_events(&want), "quiet step {}", i);
                prop_assert_eq!(got, want, "step {} {:?}", i, step);
            }
            Step::Txn(t) => {
                let got = m.txn(&txn_req(t)).map(|a| (a.response, a.events));
                let want = model.txn(t);
                let quiet_got = quiet.txn(&txn_req(t)).map(|a| (a.response, a.events));
                prop_assert_eq!(quiet_got, without_events(&want), "quiet step {}", i);
                prop_assert_eq!(got, want, "step {} {:?}", i, step);
            }
            Step::Range(r) => {
                let want = if r.key.is_empty() {
                    Err(Error::EmptyKey)
                } else {
                    model.range(r, model.cur(), model.state(model.cur()))
                };
                prop_assert_eq!(m.range(&range_req(r)), want, "step {} {:?}", i, step);
            }
            Step::Compact(back) => {
                let rev = model.cur() - back;
                let want = model.compact(rev);
                prop_assert_eq!(quiet.compact(rev), want.clone(), "quiet step {}", i);
                prop_assert_eq!(m.compact(rev), want, "step {} {:?}", i, step);
            }
        }
        prop_assert_eq!(m.current_revision(), model.cur());
        prop_assert_eq!(quiet.current_revision(), model.cur());
    }
    prop_assert_eq!(quiet.hash_kv(0), m.hash_kv(0));
    for lease in 0..3 {
        let a: Vec<&[u8]> = quiet.keys_with_lease(lease).collect();
        let b: Vec<&[u8]> = m.keys_with_lease(lease).collect();
        prop_assert_eq!(a, b, "keys of lease {} without events", lease);
    }

    // Every revision reads back exactly; below the compaction point fails.
    for rev in 1..=model.cur() + 1 {
        prop_assert_eq!(
            read_all(&m, rev),
            model_read_all(&model, rev),
            "read at {}",
            rev
        );
    }

    // Replay from every revision above the compaction point, in small batches.
    for from in (model.compact + 1).max(1)..=model.cur() + 1 {
        let want: Vec<Event> = model.events[from as usize..]
            .iter()
            .flatten()
            .cloned()
            .collect();
        let mut got = Vec::new();
        let mut next = from;
        loop {
            let batch = m
                .events(next, b"\0", b"\0", 3)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(batch.next_revision > next || batch.events.is_empty());
            let done = batch.events.is_empty();
            got.extend(batch.events);
            next = batch.next_revision;
            if done {
                break;
            }
        }
        prop_assert_eq!(got, want, "replay from {}", from);
    }
    if model.compact >= 1 {
        prop_assert_eq!(
            m.events(model.compact, b"\0", b"\0", 10).err(),
            Some(Error::Compacted)
        );
    }

    // A snapshot in small chunks restores to the same answers and hash.
    let mut snap = m
        .snapshot_begin(0)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut chunks = Vec::new();
    while let Some(chunk) = m.snapshot_chunk(&mut snap, 64) {
        chunks.push(chunk);
    }
    drop(snap);
    let restored =
        Mvcc::restore(m.config(), &chunks).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(restored.hash_kv(0), m.hash_kv(0));
    prop_assert_eq!(restored.current_revision(), m.current_revision());
    prop_assert_eq!(restored.compact_revision(), m.compact_revision());
    for rev in 1..=model.cur() {
        prop_assert_eq!(
            read_all(&restored, rev),
            read_all(&m, rev),
            "restored read at {}",
            rev
        );
        prop_assert_eq!(
            restored.hash_kv(rev),
            m.hash_kv(rev),
            "restored hash at {}",
            rev
        );
    }
    for lease in 0..3 {
        let a: Vec<&[u8]> = restored.keys_with_lease(lease).collect();
        let b: Vec<&[u8]> = m.keys_with_lease(lease).collect();
        prop_assert_eq!(a, b);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mvcc_matches_the_reference_model(steps in prop::collection::vec(step(), 1..40)) {
        run(&steps)?;
    }
}
