//! Locks and leader election built on leases and revisions, with etcd's v3
//! concurrency semantics (`clientv3/concurrency`), so cairn and etcd
//! clients can share a lock or an election.
//!
//! A [`Session`] is a lease kept alive in the background; everything a
//! session creates is attached to its lease, so it disappears when the
//! session's owner dies and stops renewing. A [`Lock`] named `name` is the
//! set of keys `name/<lease hex>`, one per contender: the holder is the one
//! whose key has the lowest create revision, and each waiter watches only
//! the key just before its own, so a release wakes one waiter. The holder's
//! key and create revision fence the work done under the lock: a txn that
//! compares that key's create revision fails once the lock was lost.
//!
//! ```no_run
//! use cairn_client::concurrency::{Lock, Session};
//! use cairn_client::{Client, Op, PutOptions, Txn};
//!
//! # async fn example(client: Client) -> Result<(), cairn_client::Error> {
//! let session = Session::new(&client, 10).await?;
//! let mut lock = Lock::new(&session, "jobs/cleanup");
//! lock.lock().await?;
//! // Write only while still holding the lock.
//! let fenced = Txn::new()
//!     .when([lock.is_owner()])
//!     .and_then([Op::put("jobs/cleanup-state", "running", PutOptions::new())]);
//! assert!(client.txn(fenced).await?.succeeded);
//! lock.unlock().await?;
//! session.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! An [`Election`] uses the same queue: [`Election::campaign`] returns once
//! this session's key is the oldest, and its value is the leader's
//! proclamation; [`Observer`] follows the leader as it changes.
//!
//! ```no_run
//! use cairn_client::concurrency::{Election, Observer, Session};
//! use cairn_client::Client;
//!
//! # async fn example(client: Client) -> Result<(), cairn_client::Error> {
//! let session = Session::new(&client, 10).await?;
//! let mut election = Election::new(&session, "scheduler");
//! election.campaign("node-a").await?;
//! election.proclaim("node-a, epoch 2").await?;
//! let mut observer = Observer::new(&client, "scheduler");
//! let leader = observer.next().await?;
//! assert_eq!(leader.value, b"node-a, epoch 2");
//! election.resign().await?;
//! # Ok(())
//! # }
//! ```

mod election;
mod lock;
mod session;

pub use election::{Election, Observer};
pub use lock::Lock;
pub use session::Session;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::options::{GetOptions, SortOrder, SortTarget, WatchOptions};
use crate::types::{EventType, KeyValue, RangeResponse, ResponseOp, TxnResponse};
use session::SessionHandle;

/// `name` + "/": the prefix every contender's key lives under.
fn prefix_of(name: &[u8]) -> Vec<u8> {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    prefix
}

/// A contender's key: the prefix and its lease in hex, as etcd names it.
fn contender_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    key
}

/// The contender with the lowest create revision under `prefix`: the
/// holder of a lock, the leader of an election.
fn first_created() -> GetOptions {
    GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1)
}

/// The `index`th response of a txn branch, which must be a range.
fn range_at(r: &TxnResponse, index: usize) -> Result<&RangeResponse> {
    match r.responses.get(index) {
        Some(ResponseOp::Range(range)) => Ok(range),
        _ => Err(Error::Protocol {
            endpoint: String::new(),
            reason: format!("txn response {index} is not a range response"),
        }),
    }
}

/// The key `txn`'s branch read at `index`, which must exist.
fn kv_at(r: &TxnResponse, index: usize) -> Result<&KeyValue> {
    range_at(r, index)?
        .kvs
        .first()
        .ok_or_else(|| Error::Protocol {
            endpoint: String::new(),
            reason: "txn read no key where one must exist".to_string(),
        })
}

/// Waits until every key under `prefix` created at or before
/// `max_create_revision` is gone: the contenders queued ahead are done.
/// Watches one key at a time, the newest of them, as etcd does, so that a
/// release wakes only the next waiter.
async fn wait_deletes(
    session: &SessionHandle,
    prefix: &[u8],
    max_create_revision: i64,
) -> Result<()> {
    loop {
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Descend)
            .with_limit(1)
            .with_create_revision_range(0, max_create_revision);
        let r = session.retry_get(prefix.to_vec(), options).await?;
        let Some(kv) = r.kvs.first() else {
            return Ok(());
        };
        wait_delete(session.client(), &kv.key, r.header.revision + 1).await?;
    }
}

/// Waits for `key`'s deletion at or after `from_revision`.
async fn wait_delete(client: &Client, key: &[u8], from_revision: i64) -> Result<()> {
    let options = WatchOptions::new()
        .with_start_revision(from_revision)
        .with_no_put();
    let mut watcher = client.watch(key.to_vec(), options).await?;
    while let Some(r) = watcher.next().await? {
        if r.events.iter().any(|e| e.kind == EventType::Delete) {
            return Ok(());
        }
        if r.canceled {
            // Compacted past the start: the caller reads the queue again.
            return Ok(());
        }
    }
    Ok(())
}
