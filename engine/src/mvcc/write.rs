//! Writes: put, delete and txn, applied at the next revision.
//!
//! Every write first runs all the checks that can fail, against the state
//! before the write, and only then changes the index; so a refused request
//! changes nothing and consumes no revision. The changes of one request are
//! written straight into the key histories at revision `current + 1` with
//! increasing sub revisions; reads inside a txn therefore see the txn's
//! earlier writes (at its own revision, as etcd's `storeTxnWrite`), and the
//! store's revision moves to `current + 1` at the end if anything changed.

use super::history::{History, Stored};
use super::span::Span;
use super::txn::{check_put, is_read_only, validate_txn};
use super::types::{
    Applied, DeleteRangeRequest, DeleteRangeResponse, Event, EventKind, KeyValue, PutRequest,
    PutResponse, RequestOp, ResponseOp, TxnRequest, TxnResponse,
};
use super::{relink_lease, Error, Key, Mvcc};

/// The revision being written and the changes made so far.
struct WriteCtx {
    main: i64,
    /// Number of changes made so far = the next sub revision.
    sub: u32,
    events: Vec<Event>,
}

impl WriteCtx {
    fn new(main: i64) -> WriteCtx {
        WriteCtx {
            main,
            sub: 0,
            events: Vec::new(),
        }
    }

    /// The revision reads see: the write's own once it has changed something.
    fn read_rev(&self) -> i64 {
        if self.sub > 0 {
            self.main
        } else {
            self.main - 1
        }
    }

    fn take_sub(&mut self) -> u32 {
        let sub = self.sub;
        self.sub = sub
            .checked_add(1)
            .unwrap_or_else(|| panic!("more than u32::MAX changes in one revision"));
        sub
    }
}

/// Which branch each txn on the taken path runs: a txn's own outcome, then
/// one plan per nested txn in the branch it runs, in op order.
struct Plan {
    succeeded: bool,
    nested: Vec<Plan>,
}

impl Plan {
    fn ops<'r, 'a>(&self, req: &'r TxnRequest<'a>) -> &'r [RequestOp<'a>] {
        if self.succeeded {
            &req.success
        } else {
            &req.failure
        }
    }
}

impl Mvcc {
    /// Applies a put (etcd's `Put`).
    pub fn put(&mut self, req: &PutRequest<'_>) -> Result<Applied<PutResponse>, Error> {
        check_put(req)?;
        if (req.ignore_value || req.ignore_lease) && self.live(req.key).is_none() {
            return Err(Error::KeyNotFound);
        }
        self.compaction_step(crate::limits::COMPACTION_STEP_KEYS);
        let mut ctx = WriteCtx::new(self.current_rev + 1);
        let response = self.apply_put(&mut ctx, req);
        Ok(Applied {
            response,
            events: self.commit(ctx),
        })
    }

    /// Applies a delete (etcd's `DeleteRange`).
    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest<'_>,
    ) -> Result<Applied<DeleteRangeResponse>, Error> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        self.compaction_step(crate::limits::COMPACTION_STEP_KEYS);
        let mut ctx = WriteCtx::new(self.current_rev + 1);
        let mut response =
            self.apply_delete(&mut ctx, Span::new(req.key, req.range_end), req.prev_kv);
        let events = self.commit(ctx);
        response.revision = self.current_rev;
        Ok(Applied { response, events })
    }

    /// Deletes every key attached to lease `id`, in key order, in one
    /// revision (what revoking or expiring a lease does to the index).
    /// Nothing changes, and the revision stays, if no key is attached.
    pub fn delete_lease_keys(&mut self, id: i64) -> Applied<DeleteRangeResponse> {
        let keys: Vec<Box<[u8]>> = match self.leases.get(&id) {
            Some(keys) => keys.iter().cloned().collect(),
            None => Vec::new(),
        };
        self.compaction_step(crate::limits::COMPACTION_STEP_KEYS);
        let mut ctx = WriteCtx::new(self.current_rev + 1);
        let mut deleted = 0;
        for key in &keys {
            let r = self.apply_delete(&mut ctx, Span::One(key), false);
            assert_eq!(r.deleted, 1, "a key attached to a lease is live");
            deleted += 1;
        }
        let events = self.commit(ctx);
        Applied {
            response: DeleteRangeResponse {
                revision: self.current_rev,
                deleted,
                prev_kvs: Vec::new(),
            },
            events,
        }
    }

    /// Applies a txn (etcd's `Txn`): static checks, compares on the state
    /// before the txn, checks of the ops on the taken path, then the ops.
    pub fn txn(&mut self, req: &TxnRequest<'_>) -> Result<Applied<TxnResponse>, Error> {
        validate_txn(req, self.config.txn_ops_max)?;
        let plan = self.plan(req);
        if !is_read_only(req) {
            self.check_puts(req, &plan)?;
        }
        self.check_ranges(req, &plan)?;

        self.compaction_step(crate::limits::COMPACTION_STEP_KEYS);
        let mut ctx = WriteCtx::new(self.current_rev + 1);
        let mut response = self.apply_txn(&mut ctx, req, &plan);
        let events = self.commit(ctx);
        response.revision = self.current_rev;
        Ok(Applied { response, events })
    }

    /// The key's live version now.
    fn live(&self, key: &[u8]) -> Option<&Stored> {
        self.find(key)?.1.live()
    }

    /// Ends a write: moves the revision if anything changed.
    fn commit(&mut self, ctx: WriteCtx) -> Vec<Event> {
        if ctx.sub > 0 {
            assert_eq!(ctx.main, self.current_rev + 1, "revisions advance by one");
            self.current_rev = ctx.main;
        }
        ctx.events
    }

    fn plan(&self, req: &TxnRequest<'_>) -> Plan {
        let succeeded = req.compare.iter().all(|c| self.compare_holds(c));
        let mut plan = Plan {
            succeeded,
            nested: Vec::new(),
        };
        for op in plan.ops(req) {
            if let RequestOp::Txn(t) = op {
                let nested = self.plan(t);
                plan.nested.push(nested);
            }
        }
        plan
    }

    /// etcd's `checkRequestPut` over the taken path: `ignore_*` puts need
    /// the key to exist before the txn.
    fn check_puts(&self, req: &TxnRequest<'_>, plan: &Plan) -> Result<(), Error> {
        let mut nested = plan.nested.iter();
        for op in plan.ops(req) {
            match op {
                RequestOp::Put(p)
                    if (p.ignore_value || p.ignore_lease) && self.live(p.key).is_none() =>
                {
                    return Err(Error::KeyNotFound);
                }
                RequestOp::Txn(t) => self.check_puts(t, next_plan(&mut nested))?,
                _ => {}
            }
        }
        Ok(())
    }

    /// etcd's `checkRequestRange` over the taken path. Note etcd's quirk,
    /// kept: a negative revision inside a txn is compared with the
    /// compaction point (and fails once anything was compacted), while a
    /// plain range treats it as "latest".
    fn check_ranges(&self, req: &TxnRequest<'_>, plan: &Plan) -> Result<(), Error> {
        let mut nested = plan.nested.iter();
        for op in plan.ops(req) {
            match op {
                RequestOp::Range(r) => match r.revision {
                    0 => {}
                    rev if rev > self.current_rev => return Err(Error::FutureRev),
                    rev if rev < self.compact_rev => return Err(Error::Compacted),
                    _ => {}
                },
                RequestOp::Txn(t) => self.check_ranges(t, next_plan(&mut nested))?,
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_txn(&mut self, ctx: &mut WriteCtx, req: &TxnRequest<'_>, plan: &Plan) -> TxnResponse {
        let mut nested = plan.nested.iter();
        let mut responses = Vec::new();
        for op in plan.ops(req) {
            let response = match op {
                RequestOp::Range(r) => {
                    let cur = ctx.read_rev();
                    let resp = self.range_at(r, cur).unwrap_or_else(|e| {
                        panic!("a txn range failed after its checks passed: {e}")
                    });
                    ResponseOp::Range(resp)
                }
                RequestOp::Put(p) => ResponseOp::Put(self.apply_put(ctx, p)),
                RequestOp::DeleteRange(d) => {
                    let mut resp = self.apply_delete(ctx, Span::new(d.key, d.range_end), d.prev_kv);
                    resp.revision = ctx.read_rev();
                    ResponseOp::DeleteRange(resp)
                }
                // A nested txn's own header revision stays 0, as in etcd.
                RequestOp::Txn(t) => {
                    ResponseOp::Txn(self.apply_txn(ctx, t, next_plan(&mut nested)))
                }
            };
            responses.push(response);
        }
        TxnResponse {
            revision: 0,
            succeeded: plan.succeeded,
            responses,
        }
    }

    /// Writes one put; every check has passed. One B-tree search for an
    /// existing key, two for a new one.
    fn apply_put(&mut self, ctx: &mut WriteCtx, req: &PutRequest<'_>) -> PutResponse {
        let main = ctx.main;
        let sub = ctx.take_sub();
        let events = self.config.events;
        let event_prev = events && self.config.event_prev_kv;
        let mut stored = Stored {
            main,
            sub,
            tombstone: false,
            create: main,
            version: 1,
            lease: req.lease,
            value: Box::default(),
        };
        let mut prev_kv = None;
        let mut old_lease = 0;
        let (lease, kv) = match Mvcc::find_mut(&mut self.tree, req.key) {
            Some(history) => {
                if let Some(live) = history.live() {
                    stored.create = live.create;
                    stored.version = live.version + 1;
                    old_lease = live.lease;
                    if req.ignore_lease {
                        stored.lease = live.lease;
                    }
                    stored.value = if req.ignore_value {
                        live.value.clone()
                    } else {
                        Box::from(req.value)
                    };
                    if req.prev_kv || event_prev {
                        prev_kv = Some(live.to_kv(req.key, true));
                    }
                } else {
                    assert!(
                        !req.ignore_value && !req.ignore_lease,
                        "ignore_* puts on missing keys are refused before applying"
                    );
                    stored.value = Box::from(req.value);
                }
                self.size_bytes += stored.size_bytes(req.key.len());
                let kv = events.then(|| stored.to_kv(req.key, true));
                let lease = stored.lease;
                history.push(stored);
                (lease, kv)
            }
            None => {
                assert!(
                    !req.ignore_value && !req.ignore_lease,
                    "ignore_* puts on missing keys are refused before applying"
                );
                stored.value = Box::from(req.value);
                self.size_bytes += stored.size_bytes(req.key.len());
                let kv = events.then(|| stored.to_kv(req.key, true));
                let lease = stored.lease;
                self.tree.insert(Key::new(req.key), History::One(stored));
                (lease, kv)
            }
        };
        relink_lease(&mut self.leases, req.key, old_lease, lease);
        let response_prev = if req.prev_kv { prev_kv.clone() } else { None };
        if let Some(kv) = kv {
            ctx.events.push(Event {
                kind: EventKind::Put,
                kv,
                prev_kv: if event_prev { prev_kv } else { None },
            });
        }
        PutResponse {
            revision: main,
            prev_kv: response_prev,
        }
    }

    /// Writes a tombstone for every key live in `span`; every check has passed.
    fn apply_delete(
        &mut self,
        ctx: &mut WriteCtx,
        span: Span<'_>,
        want_prev: bool,
    ) -> DeleteRangeResponse {
        let Some(bounds) = span.bounds() else {
            return DeleteRangeResponse::default();
        };
        let rev = ctx.read_rev();
        let main = ctx.main;
        let events = self.config.events;
        let event_prev = events && self.config.event_prev_kv;
        let mut response = DeleteRangeResponse::default();
        for (key, history) in self.tree.range_mut::<[u8], _>(bounds) {
            let Some(live) = history.at(rev) else {
                continue;
            };
            let prev = (want_prev || event_prev).then(|| live.to_kv(key, true));
            let old_lease = live.lease;
            let tombstone = Stored::tombstone(main, ctx.take_sub());
            self.size_bytes += tombstone.size_bytes(key.len());
            history.push(tombstone);
            relink_lease(&mut self.leases, key, old_lease, 0);
            response.deleted += 1;
            if want_prev {
                if let Some(p) = &prev {
                    response.prev_kvs.push(p.clone());
                }
            }
            if !events {
                continue;
            }
            ctx.events.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: key.to_vec(),
                    mod_revision: main,
                    ..KeyValue::default()
                },
                prev_kv: if event_prev { prev } else { None },
            });
        }
        response
    }
}

fn next_plan<'p>(nested: &mut std::slice::Iter<'p, Plan>) -> &'p Plan {
    nested
        .next()
        .unwrap_or_else(|| panic!("a txn plan has one entry per nested txn on its path"))
}
