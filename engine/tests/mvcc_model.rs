//! Property tests: the MVCC index against a reference model that keeps the
//! full key → value map of every revision (a `BTreeMap` each) and applies
//! etcd's rules to it directly.
//!
//! Random sequences of puts, deletes, txns (nested), compactions and reads at
//! random revisions with random range options must give identical answers,
//! identical errors and identical events; at the end every kept revision is
//! read back, history is replayed, and a snapshot is restored and compared.
//! `PROPTEST_CASES` scales the number of sequences (default 64).

use std::collections::{BTreeMap, HashSet};

use cairn_engine::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, Error, Event, EventKind, KeyValue,
    Mvcc, MvccConfig, PutRequest, RangeRequest, RangeResponse, RequestOp, ResponseOp, SortOrder,
    SortTarget, TxnRequest, TxnResponse, PutResponse, DeleteRangeResponse,
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
        4 => prop::sample::select(vec![&b"a"[..], b"ab", b"b", b"c", b"d", b"e"]).prop_map(<[u8]>::to_vec),
        1 => Just(Vec::new()),
    ]
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        1 => Just(vec![0u8]),
        2 => prop::sample::select(vec![&b"b"[..], b"c", b"d", b"f", b"a"]).prop_map(<[u8]>::to_vec),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![&b""[..], b"x", b"y", b"zz"]).prop_map(<[u8]>::to_vec)
}

fn put_op() -> impl Strategy<Value = PutOp> {
    (key(), value(), 0..3i64, any::<bool>(), prop::bool::weighted(0.15), prop::bool::weighted(0.15)).prop_map(
        |(key, value, lease, prev_kv, ignore_value, ignore_lease)| PutOp {
            key,
            // Mostly valid ignore_* puts: no value/lease with the flag.
            value: if ignore_value && lease == 0 { Vec::new() } else { value },
            lease: if ignore_lease && !ignore_value { 0 } else { lease },
            prev_kv,
            ignore_value,
            ignore_lease,
        },
    )
}

fn del_op() -> impl Strategy<Value = DelOp> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DelOp { key, range_end, prev_kv })
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
        (key(), range_end(), prop_oneof![3 => Just(0i64), 2 => 1..4i64, 1 => Just(-1i64)], small_rev()),
        (sort_order(), sort_target(), prop::bool::weighted(0.2), prop::bool::weighted(0.2)),
        (small_rev(), small_rev(), small_rev(), small_rev()),
    )
        .prop_map(
            |((key, range_end, limit, revision), (sort_order, sort_target, keys_only, count_only), (a, b, c, d))| {
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
            1 => (prop::collection::vec(cmp_op(), 0..3), prop::collection::vec(inner.clone(), 0..3), prop::collection::vec(inner, 0..3))
                .prop_map(|(compare, success, failure)| Op::Txn(TxnOp { compare, success, failure })),
        ]
    });
    (
        prop::collection::vec(cmp_op(), 0..3),
        prop::collection::vec(ops.clone(), 0..=TXN_OPS_MAX + 1),
        prop::collection::vec(ops, 0..=3),
    )
        .prop_map(|(compare, success, failure)| TxnOp { compare, success, failure })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => put_op().prop_map(Step::Put),
        2 => del_op().prop_map(Step::Del),
        3 => txn_op().prop_map(Step::Txn),
        4 => range_op().prop_map(Step::Range),
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

// ---------------------------------------------------------------- model

type State = BTreeMap<Vec<u8>, KeyValue>;

/// etcd's rules applied to full states.
struct Model {
    /// `states[r]` is the store at revision r (index 0 unused).
    states: Vec<State>,
    /// `events[r]` are the changes of revision r.
    events: Vec<Vec<Event>>,
    compact: i64,
}

fn in_span(key: &[u8], range_end: &[u8], k: &[u8]) -> bool {
    match range_end {
        [] => k == key,
        [0] => k >= key,
        end => k >= key && k < end,
    }
}

/// The working state of a write.
struct Work {
    state: State,
    main: i64,
    changes: usize,
    events: Vec<Event>,
}

impl Model {
    fn new() -> Model {
        Model {
            states: vec![State::new(), State::new()],
            events: vec![Vec::new(), Vec::new()],
            compact: -1,
        }
    }

    fn cur(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    fn state(&self, rev: i64) -> &State {
        &self.states[rev as usize]
    }

    fn range(&self, r: &RangeOp, cur: i64, current: &State) -> Result<RangeResponse, Error> {
        if r.revision > cur {
            return Err(Error::FutureRev);
        }
        let rev = if r.revision <= 0 { cur } else { r.revision };
        if rev < self.compact {
            return Err(Error::Compacted);
        }
        let state = if rev == cur { current } else { self.state(rev) };
        let all: Vec<KeyValue> = state
            .iter()
            .filter(|(k, _)| in_span(&r.key, &r.range_end, k))
            .map(|(_, kv)| kv.clone())
            .collect();
        let count = all.len() as i64;
        let filtered = r.sort_order != SortOrder::None || r.min_mod != 0 || r.max_mod != 0 || r.min_create != 0 || r.max_create != 0;
        let mut kvs = if r.count_only {
            Vec::new()
        } else if !filtered && r.limit > 0 {
            all.into_iter().take(r.limit as usize + 1).collect()
        } else {
            all
        };
        kvs.retain(|kv| {
            (r.max_mod == 0 || kv.mod_revision <= r.max_mod)
                && (r.min_mod == 0 || kv.mod_revision >= r.min_mod)
                && (r.max_create == 0 || kv.create_revision <= r.max_create)
                && (r.min_create == 0 || kv.create_revision >= r.min_create)
        });
        let order = if r.sort_order == SortOrder::None && r.sort_target != SortTarget::Key {
            SortOrder::Ascend
        } else {
            r.sort_order
        };
        let field = |kv: &KeyValue| -> (i64, Vec<u8>) {
            match r.sort_target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, Vec::new()),
                SortTarget::Create => (kv.create_revision, Vec::new()),
                SortTarget::Mod => (kv.mod_revision, Vec::new()),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        match order {
            SortOrder::None => {}
            SortOrder::Ascend => kvs.sort_by_key(field),
            SortOrder::Descend => kvs.sort_by(|a, b| field(b).cmp(&field(a))),
        }
        let mut more = false;
        if r.limit > 0 && kvs.len() > r.limit as usize {
            kvs.truncate(r.limit as usize);
            more = true;
        }
        if r.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Ok(RangeResponse { revision: cur, kvs, more, count })
    }

    fn check_put(p: &PutOp) -> Result<(), Error> {
        if p.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if p.ignore_value && !p.value.is_empty() {
            return Err(Error::ValueProvided);
        }
        if p.ignore_lease && p.lease != 0 {
            return Err(Error::LeaseProvided);
        }
        Ok(())
    }

    fn begin(&self) -> Work {
        Work {
            state: self.state(self.cur()).clone(),
            main: self.cur() + 1,
            changes: 0,
            events: Vec::new(),
        }
    }

    fn commit(&mut self, w: Work) -> Vec<Event> {
        if w.changes > 0 {
            self.states.push(w.state);
            self.events.push(w.events.clone());
        }
        w.events
    }

    fn apply_put(w: &mut Work, p: &PutOp) -> PutResponse {
        let prev = w.state.get(&p.key).cloned();
        let kv = KeyValue {
            key: p.key.clone(),
            create_revision: prev.as_ref().map_or(w.main, |x| x.create_revision),
            mod_revision: w.main,
            version: prev.as_ref().map_or(1, |x| x.version + 1),
            value: if p.ignore_value { prev.as_ref().map(|x| x.value.clone()).unwrap_or_default() } else { p.value.clone() },
            lease: if p.ignore_lease { prev.as_ref().map_or(0, |x| x.lease) } else { p.lease },
        };
        w.state.insert(p.key.clone(), kv.clone());
        w.changes += 1;
        w.events.push(Event { kind: EventKind::Put, kv, prev_kv: prev.clone() });
        PutResponse { revision: w.main, prev_kv: if p.prev_kv { prev } else { None } }
    }

    fn apply_del(w: &mut Work, d: &DelOp) -> DeleteRangeResponse {
        let doomed: Vec<KeyValue> = w
            .state
            .iter()
            .filter(|(k, _)| in_span(&d.key, &d.range_end, k))
            .map(|(_, kv)| kv.clone())
            .collect();
        for kv in &doomed {
            w.state.remove(&kv.key);
            w.changes += 1;
            w.events.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue { key: kv.key.clone(), mod_revision: w.main, ..KeyValue::default() },
                prev_kv: Some(kv.clone()),
            });
        }
        DeleteRangeResponse {
            revision: if w.changes > 0 { w.main } else { w.main - 1 },
            deleted: doomed.len() as i64,
            prev_kvs: if d.prev_kv { doomed } else { Vec::new() },
        }
    }

    fn put(&mut self, p: &PutOp) -> Result<(PutResponse, Vec<Event>), Error> {
        Self::check_put(p)?;
        if (p.ignore_value || p.ignore_lease) && !self.state(self.cur()).contains_key(&p.key) {
            return Err(Error::KeyNotFound);
        }
        let mut w = self.begin();
        let r = Self::apply_put(&mut w, p);
        Ok((r, self.commit(w)))
    }

    fn del(&mut self, d: &DelOp) -> Result<(DeleteRangeResponse, Vec<Event>), Error> {
        if d.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let mut w = self.begin();
        let r = Self::apply_del(&mut w, d);
        Ok((r, self.commit(w)))
    }

    fn compare(&self, c: &CmpOp) -> bool {
        let state = self.state(self.cur());
        let kvs: Vec<&KeyValue> = state.iter().filter(|(k, _)| in_span(&c.key, &c.range_end, k)).map(|(_, v)| v).collect();
        let one = |kv: Option<&KeyValue>| {
            let zero = KeyValue::default();
            let kv = kv.unwrap_or(&zero);
            let ord = match c.target {
                0 => kv.version.cmp(&c.operand),
                1 => kv.create_revision.cmp(&c.operand),
                2 => kv.mod_revision.cmp(&c.operand),
                3 => kv.value.cmp(&c.value),
                _ => kv.lease.cmp(&(c.operand % 3)),
            };
            match c.result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::NotEqual => ord.is_ne(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
            }
        };
        if kvs.is_empty() {
            return c.target != 3 && one(None);
        }
        kvs.into_iter().all(|kv| one(Some(kv)))
    }

    fn static_checks(t: &TxnOp, budget: i64) -> Result<(), Error> {
        let n = t.compare.len().max(t.success.len()).max(t.failure.len()) as i64;
        if n > budget {
            return Err(Error::TooManyOps);
        }
        if t.compare.iter().any(|c| c.key.is_empty()) {
            return Err(Error::EmptyKey);
        }
        for op in t.success.iter().chain(&t.failure) {
            match op {
                Op::Put(p) => Self::check_put(p)?,
                Op::Del(DelOp { key, .. }) | Op::Range(RangeOp { key, .. }) if key.is_empty() => return Err(Error::EmptyKey),
                Op::Txn(t) => Self::static_checks(t, budget - n)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// etcd's interval check, by brute force over sets.
    fn dup_check(ops: &[Op]) -> Result<(HashSet<Vec<u8>>, Vec<(Vec<u8>, Vec<u8>)>), Error> {
        let covers = |dels: &[(Vec<u8>, Vec<u8>)], k: &[u8]| dels.iter().any(|(key, end)| in_span(key, end, k));
        let mut dels: Vec<(Vec<u8>, Vec<u8>)> = ops
            .iter()
            .filter_map(|op| if let Op::Del(d) = op { Some((d.key.clone(), d.range_end.clone())) } else { None })
            .collect();
        let mut puts = HashSet::new();
        for op in ops {
            let Op::Txn(t) = op else { continue };
            let (then_puts, then_dels) = Self::dup_check(&t.success)?;
            let (else_puts, else_dels) = Self::dup_check(&t.failure)?;
            for k in &then_puts {
                if puts.contains(k) || covers(&dels, k) {
                    return Err(Error::DuplicateKey);
                }
                puts.insert(k.clone());
            }
            for k in &else_puts {
                if (puts.contains(k) && !then_puts.contains(k)) || covers(&dels, k) {
                    return Err(Error::DuplicateKey);
                }
                puts.insert(k.clone());
            }
            dels.extend(then_dels);
            dels.extend(else_dels);
        }
        for op in ops {
            let Op::Put(p) = op else { continue };
            if puts.contains(&p.key) || covers(&dels, &p.key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(p.key.clone());
        }
        Ok((puts, dels))
    }

    fn writes(t: &TxnOp) -> bool {
        t.success.iter().chain(&t.failure).any(|op| match op {
            Op::Put(_) | Op::Del(_) => true,
            Op::Range(_) => false,
            Op::Txn(t) => Self::writes(t),
        })
    }

    /// Checks the ops on the taken path against the state before the txn.
    fn path_checks(&self, t: &TxnOp, puts: bool) -> Result<(), Error> {
        let ops = if t.compare.iter().all(|c| self.compare(c)) { &t.success } else { &t.failure };
        for op in ops {
            match op {
                Op::Put(p) if puts && (p.ignore_value || p.ignore_lease) => {
                    if !self.state(self.cur()).contains_key(&p.key) {
                        return Err(Error::KeyNotFound);
                    }
                }
                Op::Range(r) if !puts && r.revision != 0 => {
                    if r.revision > self.cur() {
                        return Err(Error::FutureRev);
                    }
                    if r.revision < self.compact {
                        return Err(Error::Compacted);
                    }
                }
                Op::Txn(t) => self.path_checks(t, puts)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_txn(&self, w: &mut Work, t: &TxnOp) -> TxnResponse {
        let succeeded = t.compare.iter().all(|c| self.compare(c));
        let ops = if succeeded { &t.success } else { &t.failure };
        let mut responses = Vec::new();
        for op in ops {
            responses.push(match op {
                Op::Put(p) => ResponseOp::Put(Self::apply_put(w, p)),
                Op::Del(d) => ResponseOp::DeleteRange(Self::apply_del(w, d)),
                Op::Range(r) => {
                    let cur = if w.changes > 0 { w.main } else { w.main - 1 };
                    let state = w.state.clone();
                    ResponseOp::Range(self.range(r, cur, &state).expect("checked"))
                }
                Op::Txn(t) => ResponseOp::Txn(self.apply_txn(w, t)),
            });
        }
        TxnResponse { revision: 0, succeeded, responses }
    }

    fn txn(&mut self, t: &TxnOp) -> Result<(TxnResponse, Vec<Event>), Error> {
        Self::static_checks(t, TXN_OPS_MAX as i64)?;
        Self::dup_check(&t.success)?;
        Self::dup_check(&t.failure)?;
        if Self::writes(t) {
            self.path_checks(t, true)?;
        }
        self.path_checks(t, false)?;
        let mut w = self.begin();
        let mut r = self.apply_txn(&mut w, t);
        let events = self.commit(w);
        r.revision = self.cur();
        Ok((r, events))
    }

    fn compact(&mut self, rev: i64) -> Result<i64, Error> {
        if rev <= self.compact {
            return Err(Error::Compacted);
        }
        if rev > self.cur() {
            return Err(Error::FutureRev);
        }
        self.compact = rev;
        Ok(self.cur())
    }
}

// ---------------------------------------------------------------- checks

fn read_all(m: &Mvcc, rev: i64) -> Result<RangeResponse, Error> {
    m.range(&RangeRequest { key: b"\0", range_end: b"\0", revision: rev, ..Default::default() })
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

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut m = Mvcc::new(MvccConfig { txn_ops_max: TXN_OPS_MAX, event_prev_kv: true });
    let mut model = Model::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Put(p) => {
                let got = m.put(&put_req(p)).map(|a| (a.response, a.events));
                prop_assert_eq!(got, model.put(p), "step {} {:?}", i, step);
            }
            Step::Del(d) => {
                let got = m.delete_range(&del_req(d)).map(|a| (a.response, a.events));
                prop_assert_eq!(got, model.del(d), "step {} {:?}", i, step);
            }
            Step::Txn(t) => {
                let got = m.txn(&txn_req(t)).map(|a| (a.response, a.events));
                prop_assert_eq!(got, model.txn(t), "step {} {:?}", i, step);
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
                prop_assert_eq!(m.compact(rev), model.compact(rev), "step {} {:?}", i, step);
            }
        }
        prop_assert_eq!(m.current_revision(), model.cur());
    }

    // Every revision reads back exactly; below the compaction point fails.
    for rev in 1..=model.cur() + 1 {
        prop_assert_eq!(read_all(&m, rev), model_read_all(&model, rev), "read at {}", rev);
    }

    // Replay from every revision above the compaction point, in small batches.
    for from in (model.compact + 1).max(1)..=model.cur() + 1 {
        let want: Vec<Event> = model.events[from as usize..].iter().flatten().cloned().collect();
        let mut got = Vec::new();
        let mut next = from;
        loop {
            let batch = m.events(next, b"\0", b"\0", 3).map_err(|e| TestCaseError::fail(e.to_string()))?;
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
        prop_assert_eq!(m.events(model.compact, b"\0", b"\0", 10).err(), Some(Error::Compacted));
    }

    // A snapshot in small chunks restores to the same answers and hash.
    let mut snap = m.snapshot_begin(0).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut chunks = Vec::new();
    while let Some(chunk) = m.snapshot_chunk(&mut snap, 64) {
        chunks.push(chunk);
    }
    drop(snap);
    let restored = Mvcc::restore(m.config(), &chunks).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(restored.hash_kv(0), m.hash_kv(0));
    prop_assert_eq!(restored.current_revision(), m.current_revision());
    prop_assert_eq!(restored.compact_revision(), m.compact_revision());
    for rev in 1..=model.cur() {
        prop_assert_eq!(read_all(&restored, rev), read_all(&m, rev), "restored read at {}", rev);
        prop_assert_eq!(restored.hash_kv(rev), m.hash_kv(rev), "restored hash at {}", rev);
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
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mvcc_matches_the_reference_model(steps in prop::collection::vec(step(), 1..40)) {
        run(&steps)?;
    }
}
