//! A history workload for watches, leases and multi-key txns, and the
//! checkers that judge what it recorded (used by `tests/history.rs`).
//!
//! The workload ([`workload`], [`watch`]) records three kinds of things: the writes
//! clients sent (txns and lease puts) with their outcome, how each lease
//! ended (revoked or expired) and what a read saw right after, and every
//! watch stream the watchers received. The checker ([`check`]) replays the
//! store's history revision by revision and holds every recording against
//! it.
//!
//! A compactor ([`compact`]) compacts the store behind the workload and
//! reads around the compaction point; the fault injector also replaces
//! members at run time ([`members`]). Since compaction removes the early
//! history, a *recorder* watch follows every revision through the run, and
//! the compactor never compacts past what it has received: the recorder's
//! stream is the history the checkers replay, and each member's own
//! history from the compaction point on must equal it.
//!
//! Every value written is unique (client, operation and position are in
//! it), so a put event names the operation that wrote it even when the
//! client never learned the outcome.

#![allow(dead_code)]

pub mod check;
pub mod compact;
pub mod members;
pub mod nemesis;
pub mod sample;
pub mod watch;
pub mod workload;

use std::fmt;

use cairn_wire::{decode_response, rpc, KeyValueRef, ResponseBodyView};

/// Every key the workload writes starts with this; nothing else writes,
/// so each revision after 1 is one of the workload's.
pub const PREFIX: &[u8] = b"h/";
/// Keys the txns compare and change.
pub const TXN_PREFIX: &str = "h/k/";
/// Keys a failed txn's other branch writes (one per client).
pub const FAIL_PREFIX: &str = "h/f/";
/// Keys attached to leases: `h/l/<lease id in hex>/<n>`.
pub const LEASE_PREFIX: &str = "h/l/";

/// The end of the range of keys starting with `p`.
pub fn prefix_end(p: &[u8]) -> Vec<u8> {
    let mut end = p.to_vec();
    let last = end.last_mut().expect("a non-empty prefix");
    *last += 1;
    end
}

/// The keys of one lease start with this.
pub fn lease_key_prefix(lease: i64) -> String {
    format!("{LEASE_PREFIX}{lease:x}/")
}

/// A key-value pair with every field a watch or range returns.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

impl From<KeyValueRef<'_>> for Kv {
    fn from(kv: KeyValueRef<'_>) -> Kv {
        Kv {
            key: kv.key.to_vec(),
            value: kv.value.to_vec(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

impl fmt::Debug for Kv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={} (create {}, mod {}, version {}, lease {:x})",
            String::from_utf8_lossy(&self.key),
            String::from_utf8_lossy(&self.value),
            self.create_revision,
            self.mod_revision,
            self.version,
            self.lease
        )
    }
}

/// One watch event. For a delete, only `kv.key` and `kv.mod_revision`
/// carry meaning (etcd leaves the rest empty).
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    pub put: bool,
    pub kv: Kv,
    pub prev: Option<Kv>,
}

impl Event {
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }

    /// Equal as a user would compare them: a delete's empty fields aside.
    pub fn same(&self, other: &Event) -> bool {
        if self.put != other.put || self.prev != other.prev {
            return false;
        }
        if self.put {
            self.kv == other.kv
        } else {
            self.kv.key == other.kv.key && self.kv.mod_revision == other.kv.mod_revision
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.put {
            write!(f, "PUT {:?}", self.kv)?;
        } else {
            write!(
                f,
                "DELETE {} at {}",
                String::from_utf8_lossy(&self.kv.key),
                self.kv.mod_revision
            )?;
        }
        match &self.prev {
            Some(p) => write!(f, " prev {p:?}"),
            None => write!(f, " prev none"),
        }
    }
}

/// How an operation ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered without error.
    Ok,
    /// An error answer that says it had no effect ("lease not found").
    Failed,
    /// No answer, a lost connection, or an error that may still commit
    /// ("request timed out"): it happened once or not at all.
    Unknown,
}

/// One change a txn branch asks for: a put of a value, or a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: Vec<u8>,
    /// `None`: delete the key.
    pub value: Option<Vec<u8>>,
}

/// A write a client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// All compares are `mod_revision(key) == rev` (0: the key is absent).
    Txn {
        compares: Vec<(Vec<u8>, i64)>,
        success: Vec<Change>,
        failure: Vec<Change>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
    },
}

/// A write and what its client learned of it.
#[derive(Clone, Debug)]
pub struct WriteRecord {
    pub client: usize,
    pub op: WriteOp,
    pub outcome: Outcome,
    /// The header revision of the answer (`Ok` only).
    pub revision: i64,
    /// The txn's compares held (`Ok` txns only).
    pub succeeded: bool,
}

/// How a lease was ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseEnd {
    /// A revoke was acknowledged (or answered "not found" after an
    /// unknown one).
    Revoked,
    /// Not kept alive; time-to-live reported it gone.
    Expired,
}

/// A lease whose end a client saw, and a linearizable read of its keys
/// made after that.
#[derive(Clone, Debug)]
pub struct LeaseRecord {
    pub client: usize,
    pub lease: i64,
    pub end: LeaseEnd,
    /// The header revision of the acknowledged revoke, if one was.
    pub revoke_revision: Option<i64>,
    /// The revision of the read made after the end was seen.
    pub read_revision: i64,
    /// Keys of the lease that read still returned.
    pub keys_left: Vec<Vec<u8>>,
}

/// One watch stream from its creation until it ended.
#[derive(Clone, Debug)]
pub struct WatchSegment {
    pub watcher: usize,
    pub member: usize,
    /// The first revision the stream covers: the requested start, or the
    /// created notice's header revision + 1 for a watch from "now".
    pub start_revision: i64,
    /// Event batches, one per watch response with events.
    pub responses: Vec<Vec<Event>>,
    /// Why it ended (connection lost, idle, caught up).
    pub ended: String,
    /// The compact revision of a cancellation because the next revision
    /// the stream needed was compacted; 0 otherwise.
    pub compacted: i64,
}

impl WatchSegment {
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.responses.iter().flatten()
    }

    /// The last revision received, or `start_revision - 1`.
    pub fn last_revision(&self) -> i64 {
        self.events()
            .last()
            .map_or(self.start_revision - 1, Event::revision)
    }
}

/// A linearizable read of every key of the workload at an old revision
/// (the revision a compaction kept), and what it returned.
#[derive(Clone, Debug)]
pub struct RevRead {
    pub revision: i64,
    pub kvs: Vec<Kv>,
}

/// A decoded watch response, owned.
#[derive(Clone, Debug, Default)]
pub struct WatchFrame {
    pub header_revision: i64,
    pub created: bool,
    pub canceled: bool,
    pub cancel_reason: String,
    pub compact_revision: i64,
    pub events: Vec<Event>,
}

/// The frame as a watch response, if it is one.
pub fn watch_frame(frame: &[u8]) -> Option<WatchFrame> {
    let v = decode_response(frame).ok()?;
    let Ok(ResponseBodyView::Watch(w)) = v.body else {
        return None;
    };
    let events = w
        .events()
        .into_iter()
        .flatten()
        .map(|e| Event {
            put: e.type_() == rpc::EventType::Put,
            kv: e.kv().map(KeyValueRef::from).unwrap_or_default().into(),
            prev: e.prev_kv().map(|p| KeyValueRef::from(p).into()),
        })
        .collect();
    Some(WatchFrame {
        header_revision: v.header.revision,
        created: w.created(),
        canceled: w.canceled(),
        cancel_reason: w.cancel_reason().unwrap_or("").to_string(),
        compact_revision: w.compact_revision(),
        events,
    })
}

/// The frame's range result with every field, if it is one.
pub fn range_kvs(frame: &[u8]) -> Option<Vec<Kv>> {
    let v = decode_response(frame).ok()?;
    let Ok(ResponseBodyView::Range(r)) = v.body else {
        return None;
    };
    Some(
        r.kvs()
            .into_iter()
            .flatten()
            .map(|kv| KeyValueRef::from(kv).into())
            .collect(),
    )
}
