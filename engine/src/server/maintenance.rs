//! Maintenance requests the shard serves besides reads and writes:
//! `Snapshot` (a backup streamed to the client) and `Defragment`.
//!
//! # Snapshot: a backup stream
//!
//! A backup is a snapshot file exactly as the member keeps them in
//! `member/snap` (see `docs/storage.md`), followed by the SHA-256 of those
//! bytes, as etcd appends a SHA-256 to its database snapshots. The shard
//! produces it incrementally: when the request arrives it starts an MVCC
//! snapshot *as of* the current revision (holding compaction, like the
//! member's own snapshots) and records the leases and alarms of that same
//! moment; then, once per pass of its loop — between write batches — it cuts
//! one chunk and pushes it to the connection. So a large backup never stalls
//! the write path for longer than one chunk takes to encode, and never sits
//! in memory whole.
//!
//! Chunks are *pushes* (`SnapshotResponse` under the request's id) and
//! count against a small per-connection window, [`BACKUP_PUSH_WINDOW`]: the
//! connection reports how many of them its socket took (watch pushes are
//! counted apart, on the connection's own executor). A slow reader
//! therefore holds at most the window in memory. The last
//! message is the request's answer: it carries the file's trailer and the
//! SHA-256 and has `remaining_bytes` 0. Earlier messages carry an estimate
//! of the bytes still to come (never 0), for progress bars.
//!
//! # Defragment
//!
//! cairn keeps its state in memory and on disk as the WAL plus snapshot
//! files, so there is no database file with free pages to give back. What
//! grows on disk is the WAL between snapshots, and in memory the versions a
//! compaction dropped while a snapshot held them. Defragment therefore
//! frees held versions at once and writes a new snapshot now (instead of
//! after `--snapshot-count` more entries), which releases the WAL segments
//! before it. It is answered once that snapshot is durable.

use sha2::{Digest, Sha256};

use cairn_wire::{rpc, Encoder, Header};

use super::route::{ConnId, Router};
use super::snapshot::SnapMeta;
use crate::limits::{BACKUP_CHUNK_BYTES, BACKUP_PUSH_WINDOW, BACKUP_STREAMS_MAX};
use crate::mvcc::{Mvcc, Snapshot};
use crate::snap::SnapImage;

/// A connection: its executor and its id there.
pub type Conn = (usize, ConnId);

/// One backup being streamed to a client.
struct Backup {
    conn: Conn,
    id: u64,
    snap: Snapshot,
    /// Taken when the trailer is written.
    image: Option<SnapImage>,
    sha: Sha256,
    /// Bytes produced but not yet pushed (the header, at first).
    pending: Vec<u8>,
    /// Pushes not yet reported written by the connection.
    unwritten: usize,
    sent_bytes: u64,
    estimate_bytes: u64,
}

/// Why a backup cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("etcdserver: too many snapshot streams (at most {BACKUP_STREAMS_MAX})")]
    TooMany,
    #[error("etcdserver: a snapshot is already streaming on this connection")]
    Busy,
    #[error("etcdserver: {0}")]
    Start(String),
}

/// A `Defragment` waiting for the snapshot it asked for.
pub struct PendingDefrag {
    pub executor: usize,
    pub conn: ConnId,
    pub id: u64,
}

/// Backups in flight and defragmentations waiting.
#[derive(Default)]
pub struct Maintenance {
    backups: Vec<Backup>,
    defrags: Vec<PendingDefrag>,
    enc: Encoder,
}

impl Maintenance {
    pub fn new() -> Maintenance {
        Maintenance::default()
    }

    /// Start streaming a backup of `mvcc` as it is now, labelled with the
    /// applied Raft position and carrying `meta` (leases, alarms) of the same
    /// moment.
    pub fn start_backup(
        &mut self,
        conn: Conn,
        id: u64,
        mvcc: &Mvcc,
        index: u64,
        term: u64,
        meta: &SnapMeta,
    ) -> Result<(), BackupError> {
        if self.backups.iter().any(|b| b.conn == conn) {
            return Err(BackupError::Busy);
        }
        if self.backups.len() >= BACKUP_STREAMS_MAX {
            return Err(BackupError::TooMany);
        }
        let snap = mvcc
            .snapshot_begin(0)
            .map_err(|e| BackupError::Start(e.to_string()))?;
        let (image, first) = SnapImage::begin(index, term, &meta.encode())
            .map_err(|e| BackupError::Start(e.to_string()))?;
        tracing::info!(
            index,
            revision = snap.revision(),
            "streaming a snapshot to a client"
        );
        self.backups.push(Backup {
            conn,
            id,
            snap,
            image: Some(image),
            sha: Sha256::new(),
            pending: first,
            unwritten: 0,
            sent_bytes: 0,
            estimate_bytes: mvcc.size_bytes().max(1),
        });
        Ok(())
    }

    /// The connection's socket took `n` backup pushes.
    pub fn written(&mut self, conn: Conn, n: usize) {
        if let Some(b) = self.backups.iter_mut().find(|b| b.conn == conn) {
            b.unwritten -= n.min(b.unwritten);
        }
    }

    /// The connection is gone: its backup ends (releasing its hold on
    /// compaction).
    pub fn closed(&mut self, conn: Conn) {
        self.backups.retain(|b| b.conn != conn);
    }

    /// Whether some backup can make progress now.
    pub fn has_work(&self) -> bool {
        self.backups
            .iter()
            .any(|b| b.unwritten < BACKUP_PUSH_WINDOW)
    }

    /// Produce at most one chunk per backup whose window has room. Returns
    /// whether more work is ready (the caller wakes its loop again).
    pub fn pump(&mut self, mvcc: &Mvcc, router: &Router, header: &Header) -> bool {
        let version = env!("CARGO_PKG_VERSION");
        let mut finished = Vec::new();
        for (i, b) in self.backups.iter_mut().enumerate() {
            if b.unwritten >= BACKUP_PUSH_WINDOW {
                continue;
            }
            let Some(image) = b.image.as_mut() else {
                unreachable!("a finished backup is removed in the same pass");
            };
            match mvcc.snapshot_chunk(&mut b.snap, BACKUP_CHUNK_BYTES) {
                Some(chunk) => match image.chunk(&chunk) {
                    Ok(framed) => b.pending.extend_from_slice(&framed),
                    Err(e) => {
                        let frame = self
                            .enc
                            .error_response(
                                b.id,
                                Some(header),
                                rpc::ErrorCode::Internal,
                                &format!("etcdserver: {e}"),
                            )
                            .to_vec();
                        router.reply(b.conn.0, b.conn.1, frame);
                        finished.push(i);
                        continue;
                    }
                },
                None => {
                    // Done: the trailer, then the SHA-256 of everything.
                    if let Some(image) = b.image.take() {
                        b.pending.extend_from_slice(&image.finish());
                    }
                    b.sha.update(&b.pending);
                    let sha = std::mem::take(&mut b.sha).finalize();
                    b.pending.extend_from_slice(&sha);
                    let frame = self
                        .enc
                        .snapshot_response(b.id, header, 0, &b.pending, version)
                        .to_vec();
                    router.reply(b.conn.0, b.conn.1, frame);
                    b.sent_bytes += b.pending.len() as u64;
                    tracing::info!(bytes = b.sent_bytes, "snapshot stream finished");
                    finished.push(i);
                    continue;
                }
            }
            b.sha.update(&b.pending);
            b.sent_bytes += b.pending.len() as u64;
            let remaining = b.estimate_bytes.saturating_sub(b.sent_bytes).max(1);
            let frame = self
                .enc
                .snapshot_response(b.id, header, remaining, &b.pending, version)
                .to_vec();
            b.pending.clear();
            router.push(b.conn.0, b.conn.1, frame);
            b.unwritten += 1;
        }
        for i in finished.into_iter().rev() {
            self.backups.swap_remove(i);
        }
        self.has_work()
    }

    /// A `Defragment` arrived: it waits for the next snapshot.
    pub fn defrag_requested(&mut self, d: PendingDefrag) {
        self.defrags.push(d);
    }

    /// Whether a snapshot should start now, whatever `--snapshot-count` says.
    pub fn snapshot_wanted(&self) -> bool {
        !self.defrags.is_empty()
    }

    /// The snapshot finished: answer every waiting `Defragment`.
    pub fn snapshot_done(&mut self, router: &Router, header: &Header, error: Option<&str>) {
        for d in self.defrags.drain(..) {
            let frame = match error {
                None => self.enc.defragment_response(d.id, header).to_vec(),
                Some(e) => self
                    .enc
                    .error_response(
                        d.id,
                        Some(header),
                        rpc::ErrorCode::Internal,
                        &format!("etcdserver: defragment failed: {e}"),
                    )
                    .to_vec(),
            };
            router.reply(d.executor, d.conn, frame);
        }
    }
}
