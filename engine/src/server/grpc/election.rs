//! `v3electionpb.Election`: etcd's server-side election, run as the native
//! requests etcd's `concurrency.Election` sends, on the same keys
//! (`<name>/<lease hex>`, the oldest is the leader and its value the
//! proclamation), so gRPC campaigners, cairn's client-side `Election` and
//! etcd's clients take part in one election.
//!
//! Errors that etcd's server returns as plain Go errors ("election: not
//! leader", "election: no leader", a missing leader key) answer `Unknown`
//! with etcd's text, as etcd's do.

use crate::server::http2::SendStream;
use bytes::Bytes;
use cairn_wire::etcdpb as pb;
use cairn_wire::{rpc, RangeParams, RequestOpParams};

use super::codec::{frame, Status};
use super::recipe::{
    contender, contender_key, created_at, delete_key, lease_or_grant, prefix_end, prefix_of,
    put_with_lease, range, txn, txn_params, wait_deletes, watch_until, Cancel, RecipeWatch,
};
use super::session::Caller;
use super::stream::write;

fn not_leader() -> Status {
    Status::new(rpc::ErrorCode::Unknown, "election: not leader")
}

fn no_leader() -> Status {
    Status::new(rpc::ErrorCode::Unknown, "election: no leader")
}

fn missing_leader() -> Status {
    Status::new(rpc::ErrorCode::Unknown, "\"leader\" field must be provided")
}

pub async fn campaign(
    c: &Caller<'_>,
    cancel: &Cancel<'_>,
    r: pb::CampaignRequest,
) -> Result<Bytes, Status> {
    let lease = lease_or_grant(c, r.lease).await?;
    let prefix = prefix_of(&r.name);
    let key = contender_key(&prefix, lease);
    let compare = [created_at(&key, 0)];
    let success = [RequestOpParams::Put(put_with_lease(&key, &r.value, lease))];
    let failure = [RequestOpParams::Range(RangeParams {
        key: &key,
        ..RangeParams::default()
    })];
    let t = txn(c, &txn_params(&compare, &success, &failure)).await?;
    let mut leader = pb::LeaderKey {
        name: r.name.clone(),
        key: Bytes::from(key),
        rev: t.header.revision,
        lease,
    };
    if !t.succeeded {
        let kv = t.first(0).ok_or_else(not_leader)?;
        leader.rev = kv.create_revision;
        if kv.value != r.value {
            // Already a candidate with another value: proclaim the new one.
            if let Err(status) = proclaim_value(c, &leader, &r.value).await {
                let _ = resign_key(c, &leader).await;
                return Err(status);
            }
        }
    }
    if let Err(status) = wait_deletes(c, cancel, &prefix, leader.rev - 1).await {
        // A campaign its client gave up withdraws, as in etcd.
        let _ = resign_key(c, &leader).await;
        return Err(status);
    }
    Ok(frame(&pb::CampaignResponse {
        header: Some(t.header),
        leader: Some(leader),
    }))
}

/// Put `value` on the leader's key if it still leads.
async fn proclaim_value(
    c: &Caller<'_>,
    leader: &pb::LeaderKey,
    value: &[u8],
) -> Result<pb::ResponseHeader, Status> {
    let compare = [created_at(&leader.key, leader.rev)];
    let success = [RequestOpParams::Put(put_with_lease(
        &leader.key,
        value,
        leader.lease,
    ))];
    let t = txn(c, &txn_params(&compare, &success, &[])).await?;
    if !t.succeeded {
        return Err(not_leader());
    }
    Ok(t.header)
}

/// Delete the leader's key if it is still the one the campaign created.
async fn resign_key(c: &Caller<'_>, leader: &pb::LeaderKey) -> Result<pb::ResponseHeader, Status> {
    let compare = [created_at(&leader.key, leader.rev)];
    let success = [RequestOpParams::DeleteRange(delete_key(&leader.key))];
    Ok(txn(c, &txn_params(&compare, &success, &[])).await?.header)
}

pub async fn proclaim(c: &Caller<'_>, r: pb::ProclaimRequest) -> Result<Bytes, Status> {
    let leader = r.leader.ok_or_else(missing_leader)?;
    let header = proclaim_value(c, &leader, &r.value).await?;
    Ok(frame(&pb::HeaderOnlyResponse {
        header: Some(header),
    }))
}

pub async fn resign(c: &Caller<'_>, r: pb::ResignRequest) -> Result<Bytes, Status> {
    let leader = r.leader.ok_or_else(missing_leader)?;
    let header = resign_key(c, &leader).await?;
    Ok(frame(&pb::HeaderOnlyResponse {
        header: Some(header),
    }))
}

/// The current leader: the oldest key under the prefix.
async fn current(
    c: &Caller<'_>,
    prefix: &[u8],
) -> Result<(pb::ResponseHeader, Option<pb::KeyValue>), Status> {
    let end = prefix_end(prefix);
    let (h, kvs) = range(c, &contender(prefix, &end, true, 0)).await?;
    Ok((h, kvs.into_iter().next()))
}

pub async fn leader(c: &Caller<'_>, r: pb::LeaderRequest) -> Result<Bytes, Status> {
    let (header, kv) = current(c, &prefix_of(&r.name)).await?;
    let kv = kv.ok_or_else(no_leader)?;
    Ok(frame(&pb::LeaderResponse {
        header: Some(header),
        kv: Some(kv),
    }))
}

/// Observe: the leader now (or the first candidate to stand), then every
/// proclamation it makes, then its successor, until the client goes.
/// Returns when the client reset the stream or a write failed.
pub async fn observe(
    c: &Caller<'_>,
    r: pb::LeaderRequest,
    send: &mut SendStream,
) -> Result<(), Status> {
    let prefix = prefix_of(&r.name);
    let end = prefix_end(&prefix);
    loop {
        let (h, kv) = {
            let cancel = Cancel::new(send);
            let (h, kv) = current(c, &prefix).await?;
            match kv {
                Some(kv) => (h, kv),
                None => {
                    // Wait for the first candidate to stand.
                    let is_put = |kind| kind == rpc::EventType::Put;
                    let first = watch_until(c, &cancel, &prefix, &end, h.revision, is_put).await?;
                    let Some((mut h, kv)) = first else {
                        continue;
                    };
                    h.revision = kv.mod_revision;
                    (h, kv)
                }
            }
        };
        let key = kv.key.clone();
        let msg = frame(&pb::LeaderResponse {
            header: Some(h.clone()),
            kv: Some(kv),
        });
        if write(send, msg).await.is_err() {
            return Ok(());
        }
        // Follow the leader's key until it is deleted.
        let mut w = RecipeWatch::open(c, &key, &[], h.revision + 1).await?;
        let followed = follow(&mut w, send).await;
        w.close().await;
        match followed {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(status) => return Err(status),
        }
    }
}

/// Write each value the leader proclaims: `Ok(true)` when its key is gone
/// (look for the successor), `Ok(false)` when the client went away.
async fn follow(w: &mut RecipeWatch<'_>, send: &mut SendStream) -> Result<bool, Status> {
    loop {
        let next = {
            let cancel = Cancel::new(send);
            w.next(&cancel).await
        };
        let (h, events) = match next {
            Ok(Some(x)) => x,
            // Canceled by the shard: read the leader again.
            Ok(None) => return Ok(true),
            Err(status) if status == super::recipe::cancelled() => return Ok(false),
            Err(status) => return Err(status),
        };
        for (kind, kv) in events {
            if kind == rpc::EventType::Delete {
                return Ok(true);
            }
            let msg = frame(&pb::LeaderResponse {
                header: Some(h.clone()),
                kv: Some(kv),
            });
            if write(send, msg).await.is_err() {
                return Ok(false);
            }
        }
    }
}
