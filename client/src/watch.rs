//! Watches: a stream of responses on the connection that created it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::client::Client;
use crate::codec::{Reply, Request};
use crate::conn::{Connection, StreamReceiver};
use crate::error::{Code, Error, Result};
use crate::limits::WATCH_RESPONSES_QUEUED_MAX;
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
/// Dropping a watcher cancels the watch on the server (best effort);
/// [`cancel`](Watcher::cancel) waits for the server's confirmation.
pub struct Watcher {
    client: Client,
    connection: Arc<Connection>,
    /// The id of the create request: every response of the watch carries it.
    stream_id: u64,
    watch_id: i64,
    stream: StreamReceiver,
    /// A response that came with the confirmation and is still to be
    /// handed out (a cancel because the start revision was compacted).
    pending: Option<WatchResponse>,
    ended: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("watch_id", &self.watch_id)
            .field("ended", &self.ended)
            .finish()
    }
}

impl Watcher {
    /// Waits for the server to confirm the watch.
    pub(crate) async fn start(
        client: Client,
        connection: Arc<Connection>,
        stream_id: u64,
        mut stream: StreamReceiver,
    ) -> Result<Watcher> {
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
            // The server refused the watch (e.g. a watch id in use).
            return Err(Error::Server {
                code: Code::Cancelled,
                message: response.cancel_reason,
            });
        }
        let watch_id = response.watch_id;
        // A bare "created" notice has nothing for the caller.
        let keep = response.canceled || !response.events.is_empty() || !response.created;
        Ok(Watcher {
            client,
            connection,
            stream_id,
            watch_id,
            stream,
            pending: keep.then_some(response),
            ended: false,
        })
    }

    /// The server's id of this watch.
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// The next response: a batch of events, a progress notification, or
    /// the last one, canceled (then `compact_revision` says whether the
    /// start revision had been compacted). `None` once the watch has ended.
    pub async fn next(&mut self) -> Result<Option<WatchResponse>> {
        if let Some(response) = self.pending.take() {
            self.ended |= response.canceled;
            return Ok(Some(response));
        }
        if self.ended {
            return Ok(None);
        }
        let outcome = self.stream.answers.recv().await;
        match outcome {
            Some(Ok(Reply::Watch(response))) => {
                self.ended |= response.canceled;
                Ok(Some(response))
            }
            Some(Ok(other)) => {
                self.end();
                Err(Error::Protocol {
                    endpoint: self.connection.endpoint().original.clone(),
                    reason: format!("expected WatchResponse, got {}", other.type_name()),
                })
            }
            Some(Err(e)) => {
                self.ended = true;
                Err(e)
            }
            None if self.stream.overflowed.load(Ordering::Acquire) => {
                self.end();
                Err(Error::WatchLagged {
                    responses_max: WATCH_RESPONSES_QUEUED_MAX,
                })
            }
            None => {
                self.ended = true;
                Err(self.connection.lost_error())
            }
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
