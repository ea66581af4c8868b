//! A session: a lease kept alive for as long as its owner lives.

use std::future::Future;

use tokio::sync::watch;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::lease::{self, LeaseKeeper, LeaseState};
use crate::limits::RECONNECT_BACKOFF;
use crate::options::{DeleteOptions, GetOptions};
use crate::txn::{Op, Txn};
use crate::types::{RangeResponse, ResponseOp, TxnResponse};

/// A lease with a background keep-alive; locks and elections attach their
/// keys to it. If the process dies, the renewals stop and the keys vanish
/// one TTL later, releasing what the session held.
#[derive(Debug)]
pub struct Session {
    handle: SessionHandle,
    ttl: i64,
    keeper: LeaseKeeper,
}

/// What locks and elections keep of their session: the client, the lease
/// and a view of whether it is still alive.
#[derive(Debug, Clone)]
pub(crate) struct SessionHandle {
    client: Client,
    lease: i64,
    state: watch::Receiver<LeaseState>,
}

impl Session {
    /// Grants a lease of `ttl` seconds and keeps it alive.
    pub async fn new(client: &Client, ttl: i64) -> Result<Session> {
        let grant = client.lease_grant(ttl, 0).await?;
        let keeper = client.lease_keep_alive(grant.id).await?;
        Ok(Session {
            handle: SessionHandle {
                client: client.clone(),
                lease: grant.id,
                state: keeper.subscribe(),
            },
            ttl: grant.ttl,
            keeper,
        })
    }

    /// The session's lease.
    pub fn lease_id(&self) -> i64 {
        self.handle.lease
    }

    /// The TTL the server granted, in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The client the session talks through.
    pub fn client(&self) -> &Client {
        &self.handle.client
    }

    /// True once the lease is gone: locks and leadership of this session
    /// are lost.
    pub fn is_expired(&self) -> bool {
        self.keeper.is_lost()
    }

    /// Waits until the lease is gone, and says why.
    pub async fn expired(&mut self) -> Error {
        self.keeper.lost().await
    }

    /// Revokes the lease: every lock and candidacy of the session is
    /// released at once (instead of one TTL later, as dropping does).
    pub async fn close(self) -> Result<()> {
        let lease = self.handle.lease;
        drop(self.keeper);
        match self.handle.client.lease_revoke(lease).await {
            Ok(_) | Err(Error::LeaseNotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn handle(&self) -> SessionHandle {
        self.handle.clone()
    }
}

impl SessionHandle {
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn lease(&self) -> i64 {
        self.lease
    }

    /// Runs `work` unless and until the session expires first.
    pub(crate) async fn unless_expired<T>(
        &self,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let mut state = self.state.clone();
        tokio::select! {
            outcome = work => outcome,
            _ = lease::lost(&mut state) => Err(Error::SessionExpired),
        }
    }

    /// Runs `op` again after retriable failures (a lost connection, a
    /// leader change) until it succeeds, fails otherwise, or the session
    /// expires. Only for ops that are safe to apply twice.
    pub(crate) async fn retry(&self, op: Op) -> Result<ResponseOp> {
        self.unless_expired(async {
            loop {
                match self.client.op(op.clone()).await {
                    Err(e) if e.is_retriable() || e == Error::Timeout => {
                        tokio::time::sleep(RECONNECT_BACKOFF).await;
                    }
                    outcome => return outcome,
                }
            }
        })
        .await
    }

    /// [`retry`](SessionHandle::retry) for a txn.
    pub(crate) async fn retry_txn(&self, txn: Txn) -> Result<TxnResponse> {
        match self.retry(Op::txn(txn)).await? {
            ResponseOp::Txn(r) => Ok(r),
            _ => Err(unexpected("TxnResponse")),
        }
    }

    /// [`retry`](SessionHandle::retry) for a get.
    pub(crate) async fn retry_get(
        &self,
        key: Vec<u8>,
        options: GetOptions,
    ) -> Result<RangeResponse> {
        match self.retry(Op::get(key, options)).await? {
            ResponseOp::Range(r) => Ok(r),
            _ => Err(unexpected("RangeResponse")),
        }
    }

    /// [`retry`](SessionHandle::retry) for deleting one key.
    pub(crate) async fn retry_delete(&self, key: Vec<u8>) -> Result<()> {
        self.retry(Op::delete(key, DeleteOptions::new())).await?;
        Ok(())
    }
}

fn unexpected(wanted: &str) -> Error {
    Error::Protocol {
        endpoint: String::new(),
        reason: format!("expected {wanted}"),
    }
}
