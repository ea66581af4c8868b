//! Range reads and txn compares.
//!
//! `range_at` mirrors etcd 3.5's `applierV3backend.Range` over
//! `storeTxnRead.rangeKeys`: resolve the revision; fetch every key in the
//! range (or `limit + 1` of them when no sort and no revision filter is
//! asked for, so that `more` can be told); count all keys in the range; drop
//! results outside the min/max mod/create revisions; sort; cut to `limit`;
//! drop values for `keys_only`. Ties in a sort keep key order (etcd's sort
//! is unstable, so any order of ties is etcd-compatible; a stable one makes
//! replicas and repeated reads agree).

use std::cmp::Ordering;

use super::history::{History, Stored};
use super::span::Span;
use super::types::{
    Compare, CompareResult, CompareTarget, KeyValue, RangeRequest, RangeResponse, SortOrder,
    SortTarget,
};
use super::{Error, Mvcc};

impl Mvcc {
    /// Answers a range read (etcd's `Range`).
    pub fn range(&self, req: &RangeRequest<'_>) -> Result<RangeResponse, Error> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        self.range_at(req, self.current_rev)
    }

    /// Calls `f` for every key in the span in key order until it returns false.
    pub(super) fn visit<'s>(
        &'s self,
        span: Span<'_>,
        mut f: impl FnMut(&'s [u8], &'s History) -> bool,
    ) {
        let Some(bounds) = span.bounds() else {
            return;
        };
        if let Span::One(key) = span {
            if let Some((k, h)) = self.find(key) {
                f(k, h);
            }
            return;
        }
        for (k, h) in self.tree.range::<[u8], _>(bounds) {
            if !f(k, h) {
                return;
            }
        }
    }

    /// A range read as if the store's revision were `cur` (inside a txn
    /// that has written, `cur` is the txn's own revision).
    pub(super) fn range_at(
        &self,
        req: &RangeRequest<'_>,
        cur: i64,
    ) -> Result<RangeResponse, Error> {
        let rev = self.read_revision(req.revision, cur)?;
        let filtered = req.sort_order != SortOrder::None
            || req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        let fetch_max = match req.limit {
            l if l > 0 && !filtered => {
                usize::try_from(l).map_or(usize::MAX, |l| l.saturating_add(1))
            }
            _ => usize::MAX,
        };
        // Values are needed until the sort when sorting by value.
        let with_value = !req.keys_only || req.sort_target == SortTarget::Value;

        let mut kvs: Vec<KeyValue> = Vec::new();
        let mut count: i64 = 0;
        self.visit(Span::new(req.key, req.range_end), |key, history| {
            if let Some(stored) = history.at(rev) {
                count += 1;
                if !req.count_only && kvs.len() < fetch_max {
                    kvs.push(stored.to_kv(key, with_value));
                }
            }
            true
        });

        if req.max_mod_revision != 0 {
            kvs.retain(|kv| kv.mod_revision <= req.max_mod_revision);
        }
        if req.min_mod_revision != 0 {
            kvs.retain(|kv| kv.mod_revision >= req.min_mod_revision);
        }
        if req.max_create_revision != 0 {
            kvs.retain(|kv| kv.create_revision <= req.max_create_revision);
        }
        if req.min_create_revision != 0 {
            kvs.retain(|kv| kv.create_revision >= req.min_create_revision);
        }

        let order = match (req.sort_order, req.sort_target) {
            (SortOrder::None, SortTarget::Key) => SortOrder::None,
            (SortOrder::None, _) => SortOrder::Ascend,
            (order, _) => order,
        };
        if order != SortOrder::None {
            let by = |a: &KeyValue, b: &KeyValue| -> Ordering {
                match req.sort_target {
                    SortTarget::Key => a.key.cmp(&b.key),
                    SortTarget::Version => a.version.cmp(&b.version),
                    SortTarget::Create => a.create_revision.cmp(&b.create_revision),
                    SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
                    SortTarget::Value => a.value.cmp(&b.value),
                }
            };
            if order == SortOrder::Ascend {
                kvs.sort_by(by);
            } else {
                kvs.sort_by(|a, b| by(b, a));
            }
        }

        let mut more = false;
        if let Ok(limit) = usize::try_from(req.limit) {
            if limit > 0 && kvs.len() > limit {
                kvs.truncate(limit);
                more = true;
            }
        }
        if req.keys_only && with_value {
            for kv in &mut kvs {
                kv.value = Vec::new();
            }
        }
        Ok(RangeResponse {
            revision: cur,
            kvs,
            more,
            count,
        })
    }

    /// Resolves a requested read revision against current revision `cur`
    /// (etcd's `rangeKeys` order of checks).
    pub(super) fn read_revision(&self, requested: i64, cur: i64) -> Result<i64, Error> {
        if requested > cur {
            return Err(Error::FutureRev);
        }
        let rev = if requested <= 0 { cur } else { requested };
        if rev < self.compact_rev {
            return Err(Error::Compacted);
        }
        Ok(rev)
    }

    /// Whether a txn compare holds on the current state: it must hold for
    /// every key in its range; a range with no key compares a zeroed
    /// key-value pair, except that a VALUE compare then fails.
    pub(super) fn compare_holds(&self, cmp: &Compare<'_>) -> bool {
        let rev = self.current_rev;
        let mut any = false;
        let mut all = true;
        self.visit(Span::new(cmp.key, cmp.range_end), |_, history| {
            if let Some(stored) = history.at(rev) {
                any = true;
                if !compare_one(cmp, Some(stored)) {
                    all = false;
                    return false;
                }
            }
            true
        });
        if !any {
            return !matches!(cmp.target, CompareTarget::Value(_)) && compare_one(cmp, None);
        }
        all
    }
}

/// Compares one key's state (None: a missing key, all fields zero).
fn compare_one(cmp: &Compare<'_>, stored: Option<&Stored>) -> bool {
    let int = |field: fn(&Stored) -> i64| stored.map_or(0, field);
    let ordering = match cmp.target {
        CompareTarget::Value(v) => stored.map_or(&[][..], |s| &s.value[..]).cmp(v),
        CompareTarget::Version(v) => int(|s| s.version).cmp(&v),
        CompareTarget::Create(v) => int(|s| s.create).cmp(&v),
        CompareTarget::Mod(v) => int(|s| s.main).cmp(&v),
        CompareTarget::Lease(v) => int(|s| s.lease).cmp(&v),
    };
    match cmp.result {
        CompareResult::Equal => ordering == Ordering::Equal,
        CompareResult::NotEqual => ordering != Ordering::Equal,
        CompareResult::Greater => ordering == Ordering::Greater,
        CompareResult::Less => ordering == Ordering::Less,
    }
}
