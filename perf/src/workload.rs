//! What one request of each workload does, written once for every
//! [`Target`].

use bytes::Bytes;

use crate::keys::{KeySpace, SplitMix64};
use crate::target::{OpError, RangeOptions, Target};

/// A workload, with its own options (the shared ones are in
/// [`Plan`](crate::driver::Plan)).
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Workload {
    /// The name used on the command line and in summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Range { .. } => "range",
            Workload::TxnPut { .. } => "txn-put",
        }
    }

    /// Sends request number `sequence` of this workload. Answers whether
    /// the request found what it looked for: `false` for a range that
    /// returned no key (a read of an empty key space measures little).
    pub async fn issue<T: Target>(
        &self,
        target: &T,
        keys: &KeySpace,
        value: &Bytes,
        sequence: u64,
        rng: &mut SplitMix64,
    ) -> Result<bool, OpError> {
        match self {
            Workload::Put => target
                .put(keys.pick(sequence, rng), value.clone())
                .await
                .map(|()| true),
            Workload::Range {
                key,
                range_end,
                options,
            } => {
                let key = match key {
                    Some(key) => key.clone(),
                    None => keys.pick(sequence, rng),
                };
                let result = target.range(key, range_end.clone(), *options).await?;
                Ok(!result.kvs.is_empty() || (options.count_only && result.count > 0))
            }
            Workload::TxnPut { ops } => {
                // Consecutive sequence numbers per op, so that sequential
                // keys stay sequential inside and across txns.
                let first = sequence.saturating_mul(*ops as u64);
                let puts = (0..*ops as u64)
                    .map(|i| (keys.pick(first.wrapping_add(i), rng), value.clone()))
                    .collect();
                target.txn_put(puts).await.map(|()| true)
            }
        }
    }
}
