//! What one request of each workload does, written once for every
//! [`Target`].

use std::sync::Arc;

use bytes::Bytes;

use crate::keys::{KeySpace, SplitMix64};
use crate::limits::STM_ATTEMPTS_MAX;
use crate::target::{OpError, RangeOptions, Target};

/// Isolation of an `stm` transaction (etcd's `--isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// `c`: reads are not checked at commit; the txn always applies.
    ReadCommitted,
    /// `r`, `s`, `ss`: the commit txn compares the modification revision
    /// of every key read with the one read, and the whole read-modify-write
    /// is retried when any changed. That is etcd STM's repeatable-read
    /// commit check; it makes the committed txns serializable (a txn
    /// applies only if nothing it read changed since), though reads are
    /// not pinned to one revision as etcd's `s`/`ss` pin them.
    Serializable,
}

/// A workload, with its own options (the shared ones are in
/// [`Plan`](crate::driver::Plan)).
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// One put of a key from the key space.
    Put,
    /// One range request: of `key` (and `range_end`) when given, otherwise of
    /// one key drawn from the key space.
    Range {
        key: Option<Bytes>,
        range_end: Bytes,
        options: RangeOptions,
    },
    /// One txn putting `ops` keys drawn from the key space.
    TxnPut { ops: usize },
    /// etcd's `txn-mixed`: each request is a txn holding either one range
    /// read over `[key, range_end)` (with the options' limit and
    /// consistency) or one put of a key from the key space; a request is a
    /// read with probability `rw_ratio / (1 + rw_ratio)`.
    TxnMixed {
        rw_ratio: f64,
        key: Bytes,
        range_end: Bytes,
        options: RangeOptions,
    },
    /// etcd's `stm`: read `keys_per_txn` distinct keys of the key space,
    /// then in one txn overwrite the first `write_percent`% of them,
    /// guarded by the revisions read; retried until it applies.
    Stm {
        keys_per_txn: usize,
        write_percent: u32,
        isolation: Isolation,
    },
    /// etcd's `lease-keepalive`: each request renews one lease of `ids`
    /// (request *n* renews lease *n mod leases*), granted with `ttl_secs`
    /// before the run. `ids` is filled by [`crate::run::run_on`].
    LeaseKeepAlive {
        leases: u64,
        ttl_secs: i64,
        ids: Arc<Vec<i64>>,
    },
}

/// The two kinds of request of a mixed workload, summarised apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    Read,
    Write,
}

impl OpClass {
    pub fn name(self) -> &'static str {
        match self {
            OpClass::Read => "reads",
            OpClass::Write => "writes",
        }
    }

    pub fn index(self) -> usize {
        match self {
            OpClass::Read => 0,
            OpClass::Write => 1,
        }
    }
}

/// What a successful request turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// `false` for a range that returned no key (a read of an empty key
    /// space measures little).
    pub found: bool,
    /// Attempts beyond the first (`stm` conflicts).
    pub retries: u32,
}

impl Done {
    const FOUND: Done = Done {
        found: true,
        retries: 0,
    };
}

/// One request's class (for mixed workloads) and result.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    pub class: Option<OpClass>,
    pub result: Result<Done, OpError>,
}

impl Workload {
    /// The name used on the command line and in summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Range { .. } => "range",
            Workload::TxnPut { .. } => "txn-put",
            Workload::TxnMixed { .. } => "txn-mixed",
            Workload::Stm { .. } => "stm",
            Workload::LeaseKeepAlive { .. } => "lease-keepalive",
        }
    }

    /// Whether requests are summarised by [`OpClass`] as well.
    pub fn is_mixed(&self) -> bool {
        matches!(self, Workload::TxnMixed { .. })
    }

    /// Sends request number `sequence` of this workload.
    pub async fn issue<T: Target>(
        &self,
        target: &T,
        keys: &KeySpace,
        value: &Bytes,
        sequence: u64,
        rng: &mut SplitMix64,
    ) -> Issued {
        let plain = |result: Result<Done, OpError>| Issued {
            class: None,
            result,
        };
        match self {
            Workload::Put => plain(
                target
                    .put(keys.pick(sequence, rng), value.clone())
                    .await
                    .map(|()| Done::FOUND),
            ),
            Workload::Range {
                key,
                range_end,
                options,
            } => {
                let key = match key {
                    Some(key) => key.clone(),
                    None => keys.pick(sequence, rng),
                };
                let result = target.range(key, range_end.clone(), *options).await;
                plain(result.map(|r| Done {
                    found: !r.kvs.is_empty() || (options.count_only && r.count > 0),
                    retries: 0,
                }))
            }
            Workload::TxnPut { ops } => {
                // Consecutive sequence numbers per op, so that sequential
                // keys stay sequential inside and across txns.
                let first = sequence.saturating_mul(*ops as u64);
                let puts = (0..*ops as u64)
                    .map(|i| (keys.pick(first.wrapping_add(i), rng), value.clone()))
                    .collect();
                plain(target.txn_put(puts).await.map(|()| Done::FOUND))
            }
            Workload::TxnMixed {
                rw_ratio,
                key,
                range_end,
                options,
            } => {
                let read = unit_interval(rng.next_u64()) < rw_ratio / (1.0 + rw_ratio);
                if read {
                    let result = target
                        .txn_range(key.clone(), range_end.clone(), *options)
                        .await;
                    Issued {
                        class: Some(OpClass::Read),
                        result: result.map(|r| Done {
                            found: !r.kvs.is_empty(),
                            retries: 0,
                        }),
                    }
                } else {
                    let put = vec![(keys.pick(sequence, rng), value.clone())];
                    Issued {
                        class: Some(OpClass::Write),
                        result: target.txn_put(put).await.map(|()| Done::FOUND),
                    }
                }
            }
            Workload::Stm {
                keys_per_txn,
                write_percent,
                isolation,
            } => plain(
                stm(
                    target,
                    keys,
                    value,
                    *keys_per_txn,
                    *write_percent,
                    *isolation,
                    rng,
                )
                .await,
            ),
            Workload::LeaseKeepAlive { ids, .. } => {
                assert!(!ids.is_empty(), "leases are granted before the run");
                let id = ids[(sequence % ids.len() as u64) as usize];
                let result = match target.lease_keep_alive(id).await {
                    Ok(ttl) if ttl > 0 => Ok(Done::FOUND),
                    Ok(_) => Err(OpError::new("etcdserver: requested lease not found")),
                    Err(e) => Err(e),
                };
                plain(result)
            }
        }
    }
}

/// A uniformly distributed number in `[0, 1)` from 53 random bits.
fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// One read-modify-write transaction, retried until it applies.
async fn stm<T: Target>(
    target: &T,
    keys: &KeySpace,
    value: &Bytes,
    keys_per_txn: usize,
    write_percent: u32,
    isolation: Isolation,
    rng: &mut SplitMix64,
) -> Result<Done, OpError> {
    // Distinct keys, drawn at random as etcd's tool draws them.
    let mut chosen: Vec<u64> = Vec::with_capacity(keys_per_txn);
    while chosen.len() < keys_per_txn {
        let index = rng.below(keys.key_space_size);
        if !chosen.contains(&index) {
            chosen.push(index);
        }
    }
    let chosen: Vec<Bytes> = chosen.into_iter().map(|i| keys.key(i)).collect();
    let writes = keys_per_txn * write_percent as usize / 100;
    for attempt in 0..STM_ATTEMPTS_MAX {
        let mut expect = Vec::with_capacity(chosen.len());
        for key in &chosen {
            let read = target.get_versioned(key.clone()).await?;
            expect.push((key.clone(), read.mod_revision));
        }
        if isolation == Isolation::ReadCommitted {
            expect.clear();
        }
        let puts = chosen
            .iter()
            .take(writes)
            .map(|key| (key.clone(), value.clone()))
            .collect();
        if target.txn_cas(expect, puts).await? {
            return Ok(Done {
                found: true,
                retries: attempt,
            });
        }
    }
    Err(OpError::new(format!(
        "stm: no commit in {STM_ATTEMPTS_MAX} attempts"
    )))
}
