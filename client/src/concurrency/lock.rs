//! A distributed lock (etcd's `concurrency.Mutex`).

use crate::concurrency::session::SessionHandle;
use crate::concurrency::Session;
use crate::concurrency::{contender_key, first_created, kv_at, prefix_of, range_at, wait_deletes};
use crate::error::{Error, Result};
use crate::options::{GetOptions, PutOptions};
use crate::txn::{Compare, CompareResult, Op, Txn};

/// A lock named by a key prefix; see the [module docs](crate::concurrency).
///
/// Holding it means: this session's key `name/<lease hex>` exists and has
/// the lowest create revision under `name/`. That key and revision are
/// what [`is_owner`](Lock::is_owner) compares, so writes made under the
/// lock can be fenced against a holder that lost it without knowing.
#[derive(Debug)]
pub struct Lock {
    session: SessionHandle,
    prefix: Vec<u8>,
    key: Vec<u8>,
    /// The create revision of `key` once queued; 0 before.
    revision: i64,
}

impl Lock {
    /// A lock named `name` (keys under `name/`), taken by `session`.
    pub fn new(session: &Session, name: impl AsRef<[u8]>) -> Lock {
        let session = session.handle();
        let prefix = prefix_of(name.as_ref());
        let key = contender_key(&prefix, session.lease());
        Lock {
            session,
            prefix,
            key,
            revision: 0,
        }
    }

    /// Waits until the lock is held by this session. Fails with
    /// [`Error::SessionExpired`] if the session's lease is lost first (the
    /// queued key is then gone with it).
    pub async fn lock(&mut self) -> Result<()> {
        let owner_revision = self.enqueue().await?;
        if owner_revision == self.revision {
            return Ok(());
        }
        let waited = self
            .session
            .unless_expired(wait_deletes(&self.session, &self.prefix, self.revision - 1))
            .await;
        if let Err(e) = waited {
            // Leave the queue so that nobody waits behind this key.
            let _ = self.unlock().await;
            return Err(e);
        }
        // The key may have gone with the session's lease while waiting.
        let mine = self
            .session
            .retry_get(self.key.clone(), GetOptions::new())
            .await?;
        if mine.kvs.is_empty() {
            self.revision = 0;
            return Err(Error::SessionExpired);
        }
        Ok(())
    }

    /// Takes the lock if it is free, else fails with [`Error::Locked`]
    /// without waiting.
    pub async fn try_lock(&mut self) -> Result<()> {
        let owner_revision = self.enqueue().await?;
        if owner_revision == self.revision {
            return Ok(());
        }
        self.unlock().await?;
        Err(Error::Locked)
    }

    /// Releases the lock (or leaves the queue): deletes this session's key.
    pub async fn unlock(&mut self) -> Result<()> {
        self.session.retry_delete(self.key.clone()).await?;
        self.revision = 0;
        Ok(())
    }

    /// This session's key under the lock's prefix (`name/<lease hex>`).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The create revision of [`key`](Lock::key): a number that grows with
    /// each new holder, usable as a fencing token. 0 when not queued.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// A txn compare that holds only while this session holds the lock:
    /// put it in the `when` of every write made under the lock.
    pub fn is_owner(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareResult::Equal, self.revision)
    }

    /// Puts this session's key in the queue (or finds it there) and
    /// returns the create revision of the queue's head.
    async fn enqueue(&mut self) -> Result<i64> {
        let lease = self.session.lease();
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareResult::Equal,
                0,
            )])
            .and_then([
                Op::put(self.key.clone(), "", PutOptions::new().with_lease(lease)),
                Op::get(self.prefix.clone(), first_created()),
            ])
            .or_else([
                Op::get(self.key.clone(), GetOptions::new()),
                Op::get(self.prefix.clone(), first_created()),
            ]);
        // Safe to send twice: a second try finds the key and reads it.
        let r = self.session.retry_txn(txn).await?;
        self.revision = if r.succeeded {
            r.header.revision
        } else {
            kv_at(&r, 0)?.create_revision
        };
        match range_at(&r, 1)?.kvs.first() {
            Some(owner) => Ok(owner.create_revision),
            // Not even this session's key: it went with the lease.
            None => Err(Error::SessionExpired),
        }
    }
}
