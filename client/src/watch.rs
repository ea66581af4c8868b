//! Watches: a stream of responses that survives the loss of its connection.
//!
//! A watch lives on the connection that created it. When that connection
//! breaks (a member restarted or was killed, the client failed over to
//! another endpoint) or the watcher fell too far behind, [`Watcher::next`]
//! re-creates the watch, with the same key, range and options, starting at
//! the revision after the last one it delivered. The caller's stream sees
//! neither a gap nor a duplicate: every revision is delivered once, in
//! order, whatever happened underneath.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use crate::client::Client;
use crate::codec::{Reply, Request};
use crate::conn::{Connection, StreamReceiver};
use crate::error::{Code, Error, Result};
use crate::limits::{AUTH_RETRIES_MAX, RECONNECT_BACKOFF};
use crate::options::WatchOptions;
use crate::types::WatchResponse;

/// A live watch; see [`Client::watch`].
///
/// ```no_run
/// use cairn_client::{Client, WatchOptions};
///
/// # async fn example(client: Client) -> Result<(), cairn_client::Error> {
/// let mut watcher = client.watch("config/", WatchOptions::new().with_prefix()).await?;
/// while let Some(response) = watcher.next().await? {
///     for event in &response.events {
///         println!("{} {:?}", event.kind.name(), event.kv.key);
///     }
/// }
/// # Ok(())
/// # }
/// ```
///
/// The stream outlives connections: if the member serving the watch
/// restarts or dies, the watch is re-created on the next reachable member
/// from [`resume_revision`](Watcher::resume_revision), so the loop above
/// neither misses nor repeats an event. If that revision has been compacted
/// meanwhile, the stream ends with a canceled response whose
/// `compact_revision` is set, as a watch created from a compacted revision
/// does.
///
/// Dropping a watcher cancels the watch on the server (best effort);
/// [`cancel`](Watcher::cancel) waits for the server's confirmation.
pub struct Watcher {
    client: Client,
    key: Vec<u8>,
    options: WatchOptions,
    connection: Arc<Connection>,
    /// The id of the create request: every response of the watch carries it.
    stream_id: u64,
    watch_id: i64,
    stream: StreamReceiver,
    /// A response that came with the confirmation and is still to be
    /// handed out (a cancel because the start revision was compacted).
    pending: Option<WatchResponse>,
    /// The first revision not yet delivered to the caller: where a
    /// re-created watch starts.
    resume_revision: i64,
    /// Times the watch was re-created.
    resumed: u64,
    ended: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("watch_id", &self.watch_id)
            .field("resume_revision", &self.resume_revision)
            .field("ended", &self.ended)
            .finish()
    }
}

/// Errors after which re-creating the watch may succeed.
fn resumable(e: &Error) -> bool {
    e.is_retriable() || matches!(e, Error::Timeout | Error::WatchLagged { .. })
}

impl Watcher {
    /// Creates the watch on the client's current connection and waits for
    /// the server to confirm it. Refused for a stale or missing token, it
    /// authenticates again and retries, as unary calls do.
    pub(crate) async fn open(
        client: Client,
        key: Vec<u8>,
        options: WatchOptions,
    ) -> Result<Watcher> {
        let mut auth_retries = 0;
        loop {
            let generation = client.token_generation();
            match Watcher::open_once(client.clone(), key.clone(), options.clone()).await {
                Err(e)
                    if e.needs_new_token()
                        && client.has_credentials()
                        && auth_retries < AUTH_RETRIES_MAX =>
                {
                    auth_retries += 1;
                    client.refresh_token(generation).await?;
                }
                other => return other,
            }
        }
    }

    async fn open_once(client: Client, key: Vec<u8>, options: WatchOptions) -> Result<Watcher> {
        let connection = client.connection().await?;
        let request = Request::WatchCreate {
            key: key.clone(),
            options: options.clone(),
        };
        let (stream_id, frame) = client.encode(&request);
        let mut stream = connection.open_stream(stream_id, frame).await?;
        let timeout = client.options().request_timeout;
        let first = match tokio::time::timeout(timeout, stream.answers.recv()).await {
            Err(_) => {
                connection.forget(stream_id);
                return Err(Error::Timeout);
            }
            Ok(None) => return Err(connection.lost_error()),
            Ok(Some(outcome)) => outcome?,
        };
        let Reply::Watch(response) = first else {
            connection.forget(stream_id);
            return Err(Error::Protocol {
                endpoint: connection.endpoint().original.clone(),
                reason: format!("expected WatchResponse, got {}", first.type_name()),
            });
        };
        if response.canceled && response.compact_revision == 0 {
            // The server refused the watch (a watch id in use, permission
            // denied, a stale token).
            return Err(Error::from_server(Code::Cancelled, &response.cancel_reason));
        }
        let watch_id = response.watch_id;
        // A watch "from now" sees every revision after the one current
        // when it was created.
        let resume_revision = if options.start_revision > 0 {
            options.start_revision
        } else {
            response.header.revision + 1
        };
        // A bare "created" notice has nothing for the caller.
        let keep = response.canceled || !response.events.is_empty() || !response.created;
        Ok(Watcher {
            client,
            key,
            options,
            connection,
            stream_id,
            watch_id,
            stream,
            pending: keep.then_some(response),
            resume_revision,
            resumed: 0,
            ended: false,
        })
    }

    /// The server's id of this watch. It changes when the watch is
    /// re-created after a lost connection.
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// The first revision not yet delivered: events up to the one before
    /// have all been handed out by [`next`](Watcher::next). A progress
    /// notification moves it too.
    pub fn resume_revision(&self) -> i64 {
        self.resume_revision
    }

    /// How many times the watch was re-created after losing its
    /// connection or falling behind.
    pub fn resumed(&self) -> u64 {
        self.resumed
    }

    /// The next response: a batch of events, a progress notification, or
    /// the last one, canceled (then `compact_revision` says whether the
    /// start revision had been compacted). `None` once the watch has ended.
    ///
    /// A lost connection does not end the stream: the watch is re-created
    /// from [`resume_revision`](Watcher::resume_revision) on a reachable
    /// member. Only when no member accepts it within the connect options'
    /// `watch_resume_timeout` does `next` return the (retriable) error.
    pub async fn next(&mut self) -> Result<Option<WatchResponse>> {
        loop {
            match self.next_on_connection().await {
                Ok(Some(response)) => {
                    self.delivered(&response);
                    return Ok(Some(response));
                }
                Ok(None) => return Ok(None),
                Err(e) if resumable(&e) => self.resume().await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Advances the resume point past what `response` hands out.
    fn delivered(&mut self, response: &WatchResponse) {
        self.ended |= response.canceled;
        if let Some(last) = response.events.last() {
            self.resume_revision = self.resume_revision.max(last.kv.mod_revision + 1);
        } else if response.is_progress_notify() {
            // Every event up to the header's revision has been sent.
            self.resume_revision = self.resume_revision.max(response.header.revision + 1);
        }
    }

    /// The next response of the watch as it exists on its connection.
    async fn next_on_connection(&mut self) -> Result<Option<WatchResponse>> {
        if let Some(response) = self.pending.take() {
            return Ok(Some(response));
        }
        if self.ended {
            return Ok(None);
        }
        let outcome = self.stream.answers.recv().await;
        match outcome {
            Some(Ok(Reply::Watch(response))) => Ok(Some(response)),
            Some(Ok(other)) => {
                self.end();
                Err(Error::Protocol {
                    endpoint: self.connection.endpoint().original.clone(),
                    reason: format!("expected WatchResponse, got {}", other.type_name()),
                })
            }
            Some(Err(e)) => {
                self.end();
                Err(e)
            }
            None if self.stream.overflowed.load(Ordering::Acquire) => {
                self.end();
                Err(Error::WatchLagged {
                    responses_max: crate::limits::WATCH_RESPONSES_QUEUED_MAX,
                })
            }
            None => {
                self.ended = true;
                Err(self.connection.lost_error())
            }
        }
    }

    /// Re-creates the watch from the resume point, retrying resumable
    /// failures until the resume timeout.
    async fn resume(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.client.options().watch_resume_timeout;
        loop {
            let options = WatchOptions {
                start_revision: self.resume_revision,
                ..self.options.clone()
            };
            let e = match Watcher::open(self.client.clone(), self.key.clone(), options).await {
                Ok(fresh) => {
                    let resumed = self.resumed + 1;
                    // The old watch (if its connection still exists) is
                    // canceled as the old value drops.
                    *self = fresh;
                    self.resumed = resumed;
                    return Ok(());
                }
                Err(e) => e,
            };
            if !resumable(&e) || Instant::now() + RECONNECT_BACKOFF >= deadline {
                self.ended = true;
                return Err(e);
            }
            tokio::time::sleep(RECONNECT_BACKOFF).await;
        }
    }

    /// Cancels the watch and waits for the server to confirm.
    pub async fn cancel(mut self) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        self.connection.forget(self.stream_id);
        let request = Request::WatchCancel {
            watch_id: self.watch_id,
        };
        match self.client.call_on(&self.connection, &request).await? {
            Reply::Watch(_) => Ok(()),
            other => Err(Error::Protocol {
                endpoint: self.connection.endpoint().original.clone(),
                reason: format!("expected WatchResponse, got {}", other.type_name()),
            }),
        }
    }

    /// Stops routing this watch's responses and asks the server, without
    /// waiting, to stop sending them.
    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.connection.forget(self.stream_id);
        let (_, frame) = self.client.encode(&Request::WatchCancel {
            watch_id: self.watch_id,
        });
        // Best effort: if the queue is full or the connection gone, the
        // server's watch ends with the connection.
        let _ = self.connection.try_send(frame);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.end();
    }
}
