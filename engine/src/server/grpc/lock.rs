//! `v3lockpb.Lock`: etcd's server-side lock, run as the native requests
//! etcd's `concurrency.Mutex` sends (same keys, same txns, same waits), so
//! gRPC lock holders, cairn's client-side `Lock` and etcd's clients queue
//! on one lock.
//!
//! Lock puts `<name>/<lease hex>` (attached to the lease) unless it exists,
//! then waits until every key of the lock created before it is gone; the
//! answer carries that key, which Unlock deletes. A call its client resets
//! while waiting leaves the queue (its key is deleted), as in etcd.

use bytes::Bytes;
use cairn_wire::etcdpb as pb;
use cairn_wire::{rpc, RangeParams, RequestOpParams};

use super::codec::{frame, Status};
use super::recipe::{
    contender, contender_key, created_at, delete, lease_or_grant, prefix_end, prefix_of,
    put_with_lease, range, txn, txn_params, wait_deletes, Cancel,
};
use super::session::Caller;

/// A queued key whose lease ran out while it waited (etcd 3.5's
/// `ErrSessionExpired`, a plain error, hence `Unknown`).
fn session_expired() -> Status {
    Status::new(rpc::ErrorCode::Unknown, "session is expired")
}

pub async fn lock(
    c: &Caller<'_>,
    cancel: &Cancel<'_>,
    r: pb::LockRequest,
) -> Result<Bytes, Status> {
    let lease = lease_or_grant(c, r.lease).await?;
    let prefix = prefix_of(&r.name);
    let end = prefix_end(&prefix);
    let key = contender_key(&prefix, lease);
    let owner = contender(&prefix, &end, true, 0);
    let compare = [created_at(&key, 0)];
    let success = [
        RequestOpParams::Put(put_with_lease(&key, b"", lease)),
        RequestOpParams::Range(owner),
    ];
    let mine = RangeParams {
        key: &key,
        ..RangeParams::default()
    };
    let failure = [RequestOpParams::Range(mine), RequestOpParams::Range(owner)];
    // Sending it twice is harmless: the second finds the key.
    let t = txn(c, &txn_params(&compare, &success, &failure)).await?;
    let my_revision = if t.succeeded {
        t.header.revision
    } else {
        t.first(0).ok_or_else(session_expired)?.create_revision
    };
    let owner_revision = t.first(1).map(|kv| kv.create_revision);
    if owner_revision.is_none_or(|rev| rev == my_revision) {
        return Ok(frame(&pb::LockResponse {
            header: Some(t.header),
            key: Bytes::from(key),
        }));
    }
    let waited = wait_deletes(c, cancel, &prefix, my_revision - 1).await;
    let header = match waited {
        Ok(h) => h,
        Err(status) => {
            // Leave the queue so that nobody waits behind this key.
            let _ = delete(c, &key).await;
            return Err(status);
        }
    };
    // The lease may have run out while waiting, taking the key with it.
    let (_, still) = range(c, &mine).await?;
    if still.is_empty() {
        return Err(session_expired());
    }
    Ok(frame(&pb::LockResponse {
        header: Some(header),
        key: Bytes::from(key),
    }))
}

pub async fn unlock(c: &Caller<'_>, r: pb::UnlockRequest) -> Result<Bytes, Status> {
    let header = delete(c, &r.key).await?;
    Ok(frame(&pb::HeaderOnlyResponse {
        header: Some(header),
    }))
}
