//! Leader election (etcd's `concurrency.Election`).

use crate::client::Client;
use crate::concurrency::session::SessionHandle;
use crate::concurrency::Session;
use crate::concurrency::{contender_key, first_created, kv_at, prefix_of, wait_deletes};
use crate::error::{Error, Result};
use crate::options::{DeleteOptions, GetOptions, PutOptions, WatchOptions};
use crate::txn::{Compare, CompareResult, Op, Txn};
use crate::types::{EventType, KeyValue};
use crate::watch::Watcher;

/// One session's part in an election named by a key prefix; see the
/// [module docs](crate::concurrency).
///
/// The leader is the candidate whose key `name/<lease hex>` has the lowest
/// create revision; its value is the leader's proclamation.
#[derive(Debug)]
pub struct Election {
    session: SessionHandle,
    prefix: Vec<u8>,
    key: Vec<u8>,
    /// The create revision of `key` while campaigning or leading; 0 before
    /// and after.
    revision: i64,
}

impl Election {
    /// This session's part in the election `name` (keys under `name/`).
    pub fn new(session: &Session, name: impl AsRef<[u8]>) -> Election {
        let session = session.handle();
        let prefix = prefix_of(name.as_ref());
        let key = contender_key(&prefix, session.lease());
        Election {
            session,
            prefix,
            key,
            revision: 0,
        }
    }

    /// Stands with `value` and waits until elected. A session that is
    /// already a candidate keeps its place in the queue and updates its
    /// value.
    pub async fn campaign(&mut self, value: impl Into<Vec<u8>>) -> Result<()> {
        let value = value.into();
        let lease = self.session.lease();
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareResult::Equal,
                0,
            )])
            .and_then([Op::put(
                self.key.clone(),
                value.clone(),
                PutOptions::new().with_lease(lease),
            )])
            .or_else([Op::get(self.key.clone(), GetOptions::new())]);
        // Safe to send twice: a second try finds the key and reads it.
        let r = self.session.retry_txn(txn).await?;
        if r.succeeded {
            self.revision = r.header.revision;
        } else {
            let kv = kv_at(&r, 0)?;
            self.revision = kv.create_revision;
            if kv.value != value {
                if let Err(e) = self.proclaim(value).await {
                    let _ = self.resign().await;
                    return Err(e);
                }
            }
        }
        let waited = self
            .session
            .unless_expired(wait_deletes(&self.session, &self.prefix, self.revision - 1))
            .await;
        if let Err(e) = waited {
            let _ = self.resign().await;
            return Err(e);
        }
        Ok(())
    }

    /// Sets the leader's value, without losing leadership. Fails with
    /// [`Error::ElectionNotLeader`] unless this session leads.
    pub async fn proclaim(&mut self, value: impl Into<Vec<u8>>) -> Result<()> {
        if self.revision == 0 {
            return Err(Error::ElectionNotLeader);
        }
        let value = value.into();
        let txn = Txn::new().when([self.is_leader()]).and_then([Op::put(
            self.key.clone(),
            value,
            PutOptions::new().with_lease(self.session.lease()),
        )]);
        // Safe to send twice: the same value twice is one proclamation.
        let r = self.session.retry_txn(txn).await?;
        if !r.succeeded {
            self.revision = 0;
            return Err(Error::ElectionNotLeader);
        }
        Ok(())
    }

    /// Gives up leadership (or candidacy): deletes this session's key, so
    /// the next candidate is elected.
    pub async fn resign(&mut self) -> Result<()> {
        if self.revision == 0 {
            return Ok(());
        }
        let txn = Txn::new()
            .when([self.is_leader()])
            .and_then([Op::delete(self.key.clone(), DeleteOptions::new())]);
        self.session.retry_txn(txn).await?;
        self.revision = 0;
        Ok(())
    }

    /// The current leader's key and value.
    pub async fn leader(&self) -> Result<KeyValue> {
        leader(self.session.client(), &self.prefix).await
    }

    /// This session's candidate key (`name/<lease hex>`).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The create revision of [`key`](Election::key) while campaigning or
    /// leading (a fencing token for the leader's writes), else 0.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// A txn compare that holds only while this session leads.
    pub fn is_leader(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareResult::Equal, self.revision)
    }
}

async fn leader(client: &Client, prefix: &[u8]) -> Result<KeyValue> {
    let r = client.get(prefix.to_vec(), first_created()).await?;
    r.kvs.into_iter().next().ok_or(Error::ElectionNoLeader)
}

/// Follows an election's leader: [`next`](Observer::next) returns the
/// leader's key and value each time the leader or its value changes.
#[derive(Debug)]
pub struct Observer {
    client: Client,
    prefix: Vec<u8>,
    /// The watch on the current leader's key.
    current: Option<Watcher>,
    /// What was last returned: (key, mod revision).
    last: Option<(Vec<u8>, i64)>,
}

impl Observer {
    /// Observes the election `name`; needs no session.
    pub fn new(client: &Client, name: impl AsRef<[u8]>) -> Observer {
        Observer {
            client: client.clone(),
            prefix: prefix_of(name.as_ref()),
            current: None,
            last: None,
        }
    }

    /// Waits for the next leader (the current one, on the first call) or
    /// value change.
    pub async fn next(&mut self) -> Result<KeyValue> {
        loop {
            if let Some(watcher) = self.current.as_mut() {
                let Some(r) = watcher.next().await? else {
                    self.current = None;
                    continue;
                };
                let mut latest = None;
                for event in r.events {
                    match event.kind {
                        EventType::Put => latest = Some(event.kv),
                        EventType::Delete => {
                            // Resigned or expired: find the successor.
                            self.current = None;
                            latest = None;
                            break;
                        }
                    }
                }
                if r.canceled {
                    self.current = None;
                }
                if let Some(kv) = latest {
                    if self.is_news(&kv) {
                        return Ok(kv);
                    }
                }
                continue;
            }
            let r = self
                .client
                .get(self.prefix.clone(), first_created())
                .await?;
            let from = r.header.revision + 1;
            let Some(kv) = r.kvs.into_iter().next() else {
                self.wait_for_candidate(from).await?;
                continue;
            };
            let options = WatchOptions::new().with_start_revision(from);
            self.current = Some(self.client.watch(kv.key.clone(), options).await?);
            if self.is_news(&kv) {
                return Ok(kv);
            }
        }
    }

    /// Records `kv` as returned, unless it was already.
    fn is_news(&mut self, kv: &KeyValue) -> bool {
        let seen = (kv.key.clone(), kv.mod_revision);
        if self.last.as_ref() == Some(&seen) {
            return false;
        }
        self.last = Some(seen);
        true
    }

    /// Waits until some candidate stands (a put under the prefix).
    async fn wait_for_candidate(&self, from_revision: i64) -> Result<()> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_no_delete()
            .with_start_revision(from_revision);
        let mut watcher = self.client.watch(self.prefix.clone(), options).await?;
        while let Some(r) = watcher.next().await? {
            if !r.events.is_empty() || r.canceled {
                return Ok(());
            }
        }
        Ok(())
    }
}
