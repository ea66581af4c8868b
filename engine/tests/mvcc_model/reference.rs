//! The reference model: every revision's full key → value map, with
//! etcd's rules applied to it directly.

use std::collections::{BTreeMap, HashSet};

use cairn_engine::mvcc::{
    CompareResult, DeleteRangeResponse, Error, Event, EventKind, KeyValue, PutResponse,
    RangeResponse, ResponseOp, SortOrder, SortTarget, TxnResponse,
};

use super::{CmpOp, DelOp, Op, PutOp, RangeOp, TxnOp, TXN_OPS_MAX};

pub type State = BTreeMap<Vec<u8>, KeyValue>;

/// A deleted (key, range_end).
type Interval = (Vec<u8>, Vec<u8>);

/// etcd's rules applied to full states.
pub struct Model {
    /// `states[r]` is the store at revision r (index 0 unused).
    pub states: Vec<State>,
    /// `events[r]` are the changes of revision r.
    pub events: Vec<Vec<Event>>,
    pub compact: i64,
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
    pub fn new() -> Model {
        Model {
            states: vec![State::new(), State::new()],
            events: vec![Vec::new(), Vec::new()],
            compact: -1,
        }
    }

    pub fn cur(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    pub fn state(&self, rev: i64) -> &State {
        &self.states[rev as usize]
    }

    pub fn range(&self, r: &RangeOp, cur: i64, current: &State) -> Result<RangeResponse, Error> {
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
        let filtered = r.sort_order != SortOrder::None
            || r.min_mod != 0
            || r.max_mod != 0
            || r.min_create != 0
            || r.max_create != 0;
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
            SortOrder::Descend => kvs.sort_by_key(|kv| std::cmp::Reverse(field(kv))),
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
        Ok(RangeResponse {
            revision: cur,
            kvs,
            more,
            count,
        })
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
            value: if p.ignore_value {
                prev.as_ref().map(|x| x.value.clone()).unwrap_or_default()
            } else {
                p.value.clone()
            },
            lease: if p.ignore_lease {
                prev.as_ref().map_or(0, |x| x.lease)
            } else {
                p.lease
            },
        };
        w.state.insert(p.key.clone(), kv.clone());
        w.changes += 1;
        w.events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
        });
        PutResponse {
            revision: w.main,
            prev_kv: if p.prev_kv { prev } else { None },
        }
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
                kv: KeyValue {
                    key: kv.key.clone(),
                    mod_revision: w.main,
                    ..KeyValue::default()
                },
                prev_kv: Some(kv.clone()),
            });
        }
        DeleteRangeResponse {
            revision: if w.changes > 0 { w.main } else { w.main - 1 },
            deleted: doomed.len() as i64,
            prev_kvs: if d.prev_kv { doomed } else { Vec::new() },
        }
    }

    pub fn put(&mut self, p: &PutOp) -> Result<(PutResponse, Vec<Event>), Error> {
        Self::check_put(p)?;
        if (p.ignore_value || p.ignore_lease) && !self.state(self.cur()).contains_key(&p.key) {
            return Err(Error::KeyNotFound);
        }
        let mut w = self.begin();
        let r = Self::apply_put(&mut w, p);
        Ok((r, self.commit(w)))
    }

    pub fn del(&mut self, d: &DelOp) -> Result<(DeleteRangeResponse, Vec<Event>), Error> {
        if d.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let mut w = self.begin();
        let r = Self::apply_del(&mut w, d);
        Ok((r, self.commit(w)))
    }

    fn compare(&self, c: &CmpOp) -> bool {
        let state = self.state(self.cur());
        let kvs: Vec<&KeyValue> = state
            .iter()
            .filter(|(k, _)| in_span(&c.key, &c.range_end, k))
            .map(|(_, v)| v)
            .collect();
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
                Op::Del(DelOp { key, .. }) | Op::Range(RangeOp { key, .. }) if key.is_empty() => {
                    return Err(Error::EmptyKey)
                }
                Op::Txn(t) => Self::static_checks(t, budget - n)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// etcd's interval check, by brute force over sets.
    fn dup_check(ops: &[Op]) -> Result<(HashSet<Vec<u8>>, Vec<Interval>), Error> {
        let covers =
            |dels: &[Interval], k: &[u8]| dels.iter().any(|(key, end)| in_span(key, end, k));
        let mut dels: Vec<Interval> = ops
            .iter()
            .filter_map(|op| {
                if let Op::Del(d) = op {
                    Some((d.key.clone(), d.range_end.clone()))
                } else {
                    None
                }
            })
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
        let ops = if t.compare.iter().all(|c| self.compare(c)) {
            &t.success
        } else {
            &t.failure
        };
        for op in ops {
            match op {
                Op::Put(p)
                    if puts
                        && (p.ignore_value || p.ignore_lease)
                        && !self.state(self.cur()).contains_key(&p.key) =>
                {
                    return Err(Error::KeyNotFound);
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
        TxnResponse {
            revision: 0,
            succeeded,
            responses,
        }
    }

    pub fn txn(&mut self, t: &TxnOp) -> Result<(TxnResponse, Vec<Event>), Error> {
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

    pub fn compact(&mut self, rev: i64) -> Result<i64, Error> {
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
