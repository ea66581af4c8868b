//! Keeping a lease alive in the background.
//!
//! A lease lives as long as someone renews it within its TTL. The
//! [`LeaseKeeper`] renews at a third of the TTL (as etcd's clients do), so
//! two renewals may fail before the lease is at risk, and survives a
//! connection loss or a leader change by retrying on the next reachable
//! member. When the lease is gone — the server says so, or no renewal
//! succeeded for a whole TTL, after which the leader has expired it — the
//! keeper stops and tells its owner through [`LeaseKeeper::lost`].

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::limits::{KEEPALIVE_INTERVAL_MIN, LEASE_RENEW_RETRY_INTERVAL};

/// What the keeper knows of its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Renewed; `ttl` seconds granted by the last renewal.
    Alive { ttl: i64 },
    /// Gone: expired, revoked, or not renewable within its TTL. The error
    /// says why ([`Error::LeaseNotFound`] when the server reported it gone).
    Lost(Error),
}

/// A background task renewing one lease; see [`Client::lease_keep_alive`].
///
/// ```no_run
/// use cairn_client::{Client, PutOptions};
///
/// # async fn example(client: Client) -> Result<(), cairn_client::Error> {
/// let lease = client.lease_grant(10, 0).await?;
/// let mut keeper = client.lease_keep_alive(lease.id).await?;
/// client.put("service/a", "10.0.0.1", PutOptions::new().with_lease(lease.id)).await?;
/// // ... serve; the key stays while the keeper renews the lease.
/// let why = keeper.lost().await;
/// eprintln!("registration lost: {why}");
/// # Ok(())
/// # }
/// ```
///
/// Dropping the keeper stops the renewals; the lease then expires after its
/// TTL (revoke it to delete its keys at once).
#[derive(Debug)]
pub struct LeaseKeeper {
    id: i64,
    state: watch::Receiver<LeaseState>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Renews once (so a lease that does not exist is an error here, not a
    /// later loss), then keeps renewing in a task.
    pub(crate) async fn start(client: Client, id: i64) -> Result<LeaseKeeper> {
        let sent = Instant::now();
        let first = client.lease_keep_alive_once(id).await?;
        if first.ttl <= 0 {
            return Err(Error::LeaseNotFound);
        }
        let (sender, state) = watch::channel(LeaseState::Alive { ttl: first.ttl });
        let task = tokio::spawn(renew(client, id, first.ttl, sent, sender));
        Ok(LeaseKeeper { id, state, task })
    }

    /// The lease's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The lease's state as of the last renewal.
    pub fn state(&self) -> LeaseState {
        self.state.borrow().clone()
    }

    /// True once the lease is gone.
    pub fn is_lost(&self) -> bool {
        matches!(*self.state.borrow(), LeaseState::Lost(_))
    }

    /// Waits until the lease is gone, and says why.
    pub async fn lost(&mut self) -> Error {
        lost(&mut self.state).await
    }

    /// A receiver of the lease's state, for waiting on its loss from
    /// elsewhere (e.g. next to other work in a `select!`).
    pub fn subscribe(&self) -> watch::Receiver<LeaseState> {
        self.state.clone()
    }
}

/// Waits until `state` says the lease is gone.
pub(crate) async fn lost(state: &mut watch::Receiver<LeaseState>) -> Error {
    let outcome = state
        .wait_for(|s| matches!(s, LeaseState::Lost(_)))
        .await
        .map(|s| s.clone());
    match outcome {
        Ok(LeaseState::Lost(e)) => e,
        // The keeper stopped without a verdict (it was dropped): nobody
        // renews the lease any more.
        Ok(LeaseState::Alive { .. }) | Err(_) => Error::SessionExpired,
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The renewal loop: at a third of the TTL; after a failure, again shortly,
/// until the lease would have expired since the last good renewal.
async fn renew(
    client: Client,
    id: i64,
    mut ttl: i64,
    mut renewed_at: Instant,
    state: watch::Sender<LeaseState>,
) {
    let mut pause = renew_interval(ttl);
    loop {
        tokio::time::sleep(pause).await;
        let sent = Instant::now();
        match client.lease_keep_alive_once(id).await {
            Ok(r) if r.ttl > 0 => {
                ttl = r.ttl;
                // The server's clock started the new TTL no earlier than
                // the request was sent.
                renewed_at = sent;
                state.send_replace(LeaseState::Alive { ttl });
                pause = renew_interval(ttl);
            }
            Ok(_) | Err(Error::LeaseNotFound) => {
                state.send_replace(LeaseState::Lost(Error::LeaseNotFound));
                return;
            }
            Err(e) => {
                let expiry = renewed_at + Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
                if Instant::now() + LEASE_RENEW_RETRY_INTERVAL >= expiry {
                    state.send_replace(LeaseState::Lost(e));
                    return;
                }
                pause = LEASE_RENEW_RETRY_INTERVAL;
            }
        }
    }
}

/// A third of the TTL, but not below the floor.
pub(crate) fn renew_interval(ttl: i64) -> Duration {
    let ttl_ms = u64::try_from(ttl).unwrap_or(0).saturating_mul(1_000);
    Duration::from_millis(ttl_ms / 3).max(KEEPALIVE_INTERVAL_MIN)
}

impl Client {
    /// Keeps lease `id` alive in the background until the returned keeper
    /// is dropped or the lease is lost; see [`LeaseKeeper`].
    pub async fn lease_keep_alive(&self, id: i64) -> Result<LeaseKeeper> {
        LeaseKeeper::start(self.clone(), id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_go_out_at_a_third_of_the_ttl_with_a_floor() {
        assert_eq!(renew_interval(9), Duration::from_secs(3));
        assert_eq!(renew_interval(1), KEEPALIVE_INTERVAL_MIN);
        assert_eq!(renew_interval(0), KEEPALIVE_INTERVAL_MIN);
    }
}
