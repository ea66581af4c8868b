//! Watches over etcd's `Watch` gRPC stream.
//!
//! One [`EtcdWatchStream`] is one bidirectional stream. Its watchers share
//! it: a reader task takes every response off the stream and hands the
//! events to the watcher they belong to (by watch id). Creates are answered
//! in the order they were sent, so the reader matches each `created`
//! response to the oldest create still waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::{op_error, status_error, EtcdConn};
use crate::limits::{WATCH_BATCHES_QUEUED_MAX, WATCH_CREATES_QUEUED_MAX};
use crate::target::OpError;
use crate::watch::{WatchSpec, WatchStream, WatchTarget, WatchedEvent, Watcher};
use cairn_wire::etcdpb::{
    path, RangeRequest, RangeResponse, WatchCreateRequest, WatchRequest, WatchRequestUnion,
    WatchResponse,
};

type Batch = Result<Vec<WatchedEvent>, OpError>;

/// Creates sent and not yet confirmed: where each confirmation goes.
type PendingCreates = Arc<Mutex<VecDeque<oneshot::Sender<Result<Registered, OpError>>>>>;

/// A confirmed watch: its events arrive on `events`.
struct Registered {
    events: mpsc::Receiver<Batch>,
}

/// One gRPC `Watch` stream to an etcd member; see the module docs.
pub struct EtcdWatchStream {
    conn: EtcdConn,
    /// Open once the first watcher was created (etcd sends the response
    /// headers only with the first response, so the stream is opened
    /// together with its first request).
    requests: Option<mpsc::Sender<WatchRequest>>,
    pending: PendingCreates,
}

impl WatchTarget for EtcdConn {
    type Stream = EtcdWatchStream;

    async fn open_watch_stream(&self) -> Result<EtcdWatchStream, OpError> {
        Ok(EtcdWatchStream {
            conn: self.clone(),
            requests: None,
            pending: Arc::new(Mutex::new(VecDeque::new())),
        })
    }

    async fn revision(&self) -> Result<i64, OpError> {
        let request = RangeRequest {
            key: bytes::Bytes::from_static(b"cairn-perf-probe"),
            count_only: true,
            ..Default::default()
        };
        let response: RangeResponse = self.unary(path::KV_RANGE, request).await?;
        Ok(response.header.map(|h| h.revision).unwrap_or(0))
    }
}

impl WatchStream for EtcdWatchStream {
    type Watcher = EtcdWatcher;

    async fn watch(&mut self, spec: WatchSpec) -> Result<EtcdWatcher, OpError> {
        let request = WatchRequest {
            request_union: Some(WatchRequestUnion::CreateRequest(WatchCreateRequest {
                key: spec.key,
                range_end: spec.range_end,
                start_revision: spec.start_revision,
                prev_kv: spec.prev_kv,
                ..Default::default()
            })),
        };
        let (confirmed_tx, confirmed_rx) = oneshot::channel();
        lock(&self.pending).push_back(confirmed_tx);
        match &self.requests {
            Some(requests) => {
                if requests.send(request).await.is_err() {
                    return Err(op_error("watch stream closed".to_string()));
                }
            }
            None => {
                let (tx, rx) = mpsc::channel(WATCH_CREATES_QUEUED_MAX);
                // The channel is new and empty: the first send cannot wait.
                if tx.try_send(request).is_err() {
                    return Err(op_error("watch stream closed".to_string()));
                }
                let inbound = self
                    .conn
                    .streaming::<_, WatchResponse, _>(path::WATCH, ReceiverStream::new(rx))
                    .await?;
                tokio::spawn(read_responses(inbound, Arc::clone(&self.pending)));
                self.requests = Some(tx);
            }
        }
        match confirmed_rx.await {
            Ok(Ok(registered)) => Ok(EtcdWatcher {
                events: registered.events,
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(op_error("watch stream closed".to_string())),
        }
    }
}

/// One watcher on an etcd watch stream.
pub struct EtcdWatcher {
    events: mpsc::Receiver<Batch>,
}

impl Watcher for EtcdWatcher {
    async fn next(&mut self) -> Result<Option<Vec<WatchedEvent>>, OpError> {
        match self.events.recv().await {
            Some(batch) => batch.map(Some),
            None => Ok(None),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps are only pushed to and popped from; a panic cannot
    // leave them half-changed.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes every response off the stream and routes it; ends (closing every
/// watcher) when the stream does.
async fn read_responses(mut inbound: tonic::Streaming<WatchResponse>, pending: PendingCreates) {
    let mut watchers: HashMap<i64, mpsc::Sender<Batch>> = HashMap::new();
    let failure = loop {
        let response = match inbound.message().await {
            Ok(Some(response)) => response,
            Ok(None) => break op_error("watch stream ended".to_string()),
            Err(status) => break status_error(&status),
        };
        if response.created {
            let Some(confirm) = lock(&pending).pop_front() else {
                break op_error("watch: a create confirmed that was never sent".to_string());
            };
            if response.canceled {
                let _ = confirm.send(Err(op_error(format!(
                    "watch refused: {}",
                    response.cancel_reason
                ))));
                continue;
            }
            let (tx, rx) = mpsc::channel(WATCH_BATCHES_QUEUED_MAX);
            watchers.insert(response.watch_id, tx);
            let _ = confirm.send(Ok(Registered { events: rx }));
        }
        if response.canceled {
            if let Some(tx) = watchers.remove(&response.watch_id) {
                let _ = tx
                    .send(Err(op_error(format!(
                        "watch canceled: {}",
                        response.cancel_reason
                    ))))
                    .await;
            }
            continue;
        }
        if response.events.is_empty() {
            continue;
        }
        let events = response
            .events
            .into_iter()
            .filter_map(|event| event.kv)
            .map(|kv| WatchedEvent {
                value: kv.value,
                mod_revision: kv.mod_revision,
            })
            .collect();
        if let Some(tx) = watchers.get(&response.watch_id) {
            // A full queue holds the stream back: etcd then buffers and,
            // past its limit, moves the watcher to catch-up, as it would for
            // any slow client.
            if tx.send(Ok(events)).await.is_err() {
                watchers.remove(&response.watch_id);
            }
        }
    };
    for confirm in lock(&pending).drain(..) {
        let _ = confirm.send(Err(failure.clone()));
    }
    for tx in watchers.into_values() {
        let _ = tx.send(Err(failure.clone())).await;
    }
}
