//! Watches, for the `watch`, `watch-latency` and `watch-catchup`
//! workloads: the seam between those workloads and the two systems
//! ([`WatchTarget`]), and the runner ([`bench`](mod@bench)).
//!
//! A watch *stream* is what etcd's benchmark tool opens `--streams` of: one
//! gRPC `Watch` stream for etcd, one connection's multiplexed watches for
//! cairn. Each stream carries several watchers; every watcher is read by
//! its own task, so a slow watcher shows up in its own latencies.

pub mod bench;
pub mod clock;

use std::future::Future;

use bytes::Bytes;

use crate::target::{OpError, Target};

/// What one watcher watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    pub key: Bytes,
    /// Empty for one key.
    pub range_end: Bytes,
    /// 0 for "from now on"; otherwise history is replayed from here.
    pub start_revision: i64,
    pub prev_kv: bool,
}

/// One event as the workloads need it: the value written (which carries
/// the put's start time) and its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub value: Bytes,
    pub mod_revision: i64,
}

/// A target that can watch.
pub trait WatchTarget: Target {
    type Stream: WatchStream;

    /// Opens one watch stream on this connection.
    fn open_watch_stream(&self) -> impl Future<Output = Result<Self::Stream, OpError>> + Send;

    /// The store's current revision.
    fn revision(&self) -> impl Future<Output = Result<i64, OpError>> + Send;
}

/// Watchers are created on a stream one after the other.
pub trait WatchStream: Send + 'static {
    type Watcher: Watcher;

    /// Creates a watcher; returns once the server confirmed it.
    fn watch(
        &mut self,
        spec: WatchSpec,
    ) -> impl Future<Output = Result<Self::Watcher, OpError>> + Send;
}

/// One watcher's events, batch by batch.
pub trait Watcher: Send + 'static {
    /// The next batch of events (never empty), or `None` once the watch
    /// ended.
    fn next(&mut self) -> impl Future<Output = Result<Option<Vec<WatchedEvent>>, OpError>> + Send;
}
