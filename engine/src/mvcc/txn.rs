//! Static checks of a txn, before anything is read or written.
//!
//! These are etcd's API-layer checks (`checkTxnRequest`, `checkIntervals`),
//! run by [`super::Mvcc::txn`] itself so that a replica never applies a txn
//! that etcd would refuse; the server may also run [`validate_txn`] before
//! proposing, to refuse early.
//!
//! The duplicate-key rule: within one txn, a key may be written by at most
//! one put on any path, and no put may touch a key that a delete in the same
//! branch (or in an enclosing branch, or in an earlier nested txn) covers.
//! Puts in the success and failure branches of one nested txn may name the
//! same key, since only one branch runs. Two deletes may overlap. One
//! deliberate difference from etcd 3.5: a delete with `range_end = "\0"`
//! ("every key ≥ key") is treated as unbounded here, so a put inside it is
//! refused; etcd's interval check reads that end as the one-byte key `"\0"`
//! and lets such a txn through, which then writes a key twice.

use std::collections::HashSet;

use super::span::Span;
use super::types::{PutRequest, RequestOp, TxnRequest};
use super::Error;

/// Runs etcd's static txn checks: too many ops (compares, success ops and
/// failure ops each at most `txn_ops_max`; a nested txn gets what its parent
/// left), empty keys, put flag conflicts, then duplicate keys.
pub fn validate_txn(req: &TxnRequest<'_>, txn_ops_max: usize) -> Result<(), Error> {
    check_txn(req, i64::try_from(txn_ops_max).unwrap_or(i64::MAX))?;
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

/// etcd's `checkPutRequest` (minus the auto-lease fields cairn lacks).
pub(super) fn check_put(req: &PutRequest<'_>) -> Result<(), Error> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

fn check_txn(req: &TxnRequest<'_>, ops_max: i64) -> Result<(), Error> {
    let count = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len());
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    if count > ops_max {
        return Err(Error::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            RequestOp::Range(r) if r.key.is_empty() => return Err(Error::EmptyKey),
            RequestOp::Range(_) => {}
            RequestOp::Put(p) => check_put(p)?,
            RequestOp::DeleteRange(d) if d.key.is_empty() => return Err(Error::EmptyKey),
            RequestOp::DeleteRange(_) => {}
            RequestOp::Txn(t) => check_txn(t, ops_max - count)?,
        }
    }
    Ok(())
}

/// The deletes seen so far at one level, as half-open key intervals
/// (`None` end = unbounded). Kept sorted by start with a running maximum of
/// ends, so that a point query is a binary search instead of a scan: a txn
/// may hold thousands of nested ops and must not cost quadratic time.
#[derive(Default)]
struct Deletes<'a> {
    intervals: Vec<(&'a [u8], Option<&'a [u8]>)>,
    /// `reach[i]` = the furthest end among `intervals[..=i]` (after sorting).
    reach: Vec<Option<&'a [u8]>>,
    sorted: bool,
}

impl<'a> Deletes<'a> {
    fn insert(&mut self, key: &'a [u8], range_end: &'a [u8]) {
        match Span::new(key, range_end) {
            // A point is stored as (k, k): an end equal to its start marks it,
            // since real intervals have end > start.
            Span::One(k) => self.push(k, Some(k)),
            Span::From(k) => self.push(k, None),
            Span::Between(k, e) => self.push(k, Some(e)),
            Span::Empty => {}
        }
    }

    fn push(&mut self, start: &'a [u8], end: Option<&'a [u8]>) {
        self.intervals.push((start, end));
        self.sorted = false;
    }

    fn extend(&mut self, other: Deletes<'a>) {
        self.intervals.extend(other.intervals);
        self.sorted = false;
    }

    fn covers(&mut self, p: &[u8]) -> bool {
        if !self.sorted {
            self.intervals.sort_unstable_by(|a, b| a.0.cmp(b.0));
            self.reach.clear();
            let mut best: Option<Option<&'a [u8]>> = None;
            for &(_, end) in &self.intervals {
                best = Some(match (best, end) {
                    (None, e) => e,
                    (Some(None), _) | (_, None) => None,
                    (Some(Some(a)), Some(b)) => Some(a.max(b)),
                });
                self.reach.push(best.flatten());
            }
            self.sorted = true;
        }
        // Intervals starting at or before p; p is covered if any of them
        // reaches past it, or is the point interval of p itself.
        let n = self.intervals.partition_point(|iv| iv.0 <= p);
        if n == 0 {
            return false;
        }
        match self.reach[n - 1] {
            None => true,
            Some(end) if end > p => true,
            // Only a point interval ends at its own key.
            _ => self.intervals[..n]
                .iter()
                .rev()
                .take_while(|iv| iv.0 == p)
                .any(|iv| iv.1 == Some(p)),
        }
    }
}

/// etcd's `checkIntervals`: returns the keys put and the ranges deleted by
/// `ops` (including nested txns), or `DuplicateKey`.
fn check_intervals<'a>(ops: &[RequestOp<'a>]) -> Result<(HashSet<&'a [u8]>, Deletes<'a>), Error> {
    let mut dels = Deletes::default();
    for op in ops {
        if let RequestOp::DeleteRange(d) = op {
            dels.insert(d.key, d.range_end);
        }
    }
    let mut puts: HashSet<&'a [u8]> = HashSet::new();
    for op in ops {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for &k in &puts_then {
            if puts.contains(k) || dels.covers(k) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(k);
        }
        for &k in &puts_else {
            // A key put by both branches is fine: only one branch runs.
            if (puts.contains(k) && !puts_then.contains(k)) || dels.covers(k) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(p.key) || dels.covers(p.key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(p.key);
    }
    Ok((puts, dels))
}

/// Whether a txn writes nothing on any path (etcd's `isTxnReadonly`).
pub(super) fn is_read_only(req: &TxnRequest<'_>) -> bool {
    req.success.iter().chain(&req.failure).all(|op| match op {
        RequestOp::Range(_) => true,
        RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
        RequestOp::Txn(t) => is_read_only(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_cover_points_ranges_and_open_ends() {
        let mut d = Deletes::default();
        d.insert(b"k", b"");
        d.insert(b"m", b"p");
        assert!(d.covers(b"k"));
        assert!(!d.covers(b"k\0"));
        assert!(!d.covers(b"j"));
        assert!(d.covers(b"m"));
        assert!(d.covers(b"o\xff"));
        assert!(!d.covers(b"p"));
        d.insert(b"x", b"\0");
        assert!(d.covers(b"zzz"));
        assert!(!d.covers(b"w"));
        // A wide interval starting early still covers later points.
        let mut w = Deletes::default();
        w.insert(b"a", b"z");
        w.insert(b"b", b"");
        assert!(w.covers(b"c"));
    }
}
