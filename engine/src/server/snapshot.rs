//! Snapshots of the shard's state, taken online and used at start-up.
//!
//! Every `--snapshot-count` applied entries the shard starts a snapshot at
//! the applied index: the MVCC index is streamed *as of* the current
//! revision, chunk by chunk, into a snapshot file while the shard keeps
//! applying new writes (the index holds compaction meanwhile). When the file
//! is durable a snapshot marker goes into the WAL, old snapshot files are
//! pruned, WAL segments before the oldest kept snapshot are released, and
//! the in-memory Raft log is trimmed.
//!
//! At start-up the newest valid snapshot the WAL can continue from is loaded
//! and the WAL entries after it are replayed on top.
//!
//! The snapshot file's metadata blob (little-endian), version 2:
//!
//! ```text
//! 0      1            9         10          14                 14 + 16n
//! ┌──────┬────────────┬─────────┬───────────┬──────────────────┐
//! │ ver  │ revision   │ alarms  │ n leases  │ n × (id, ttl)    │
//! │ u8=2 │ i64        │ u8      │ u32       │ i64, i64 (sec)   │
//! └──────┴────────────┴─────────┴───────────┴──────────────────┘
//! alarms bit 0 = NOSPACE; leases in ascending id order with their
//! granted TTL (deadlines are not kept: they restart at the full TTL).
//! ```
//!
//! Version 3 appends the member table after the leases (layout in
//! `super::members::Members::encode`): the membership at the snapshot's
//! index, which Raft's conf state at start-up is derived from.
//!
//! Versions 1 (the first 10 bytes, no leases) and 2 (no member table) are
//! still read; their member table is the identity file's initial one.

use std::cell::RefCell;
use std::rc::Rc;

use glommio::channels::local_channel::LocalSender;

use super::members::Members;
use crate::io::DmaFs;
use crate::limits;
use crate::mvcc::{Mvcc, MvccConfig};
use crate::snap::SnapStore;
use crate::wal::{self, Record, Recovered, Wal};

/// What the shard keeps in a snapshot besides the MVCC index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapMeta {
    pub revision: i64,
    pub nospace: bool,
    /// Every lease: (id, granted TTL in seconds), ascending by id.
    pub leases: Vec<(i64, i64)>,
    /// The member table; `None` in snapshots older than version 3 and in
    /// backups (a restore writes a new one).
    pub members: Option<Members>,
    /// The auth store, encoded (`server::auth::AuthStore::encode`); `None`
    /// in snapshots older than version 4.
    pub auth: Option<Vec<u8>>,
    /// Members a corruption check raised the CORRUPT alarm for.
    pub corrupt: Vec<u64>,
}

const META_VERSION_V1: u8 = 1;
const META_V1_BYTES: usize = 10;
const META_VERSION_V2: u8 = 2;
const META_VERSION_V3: u8 = 3;
/// Version 4 adds a flags byte after the leases, then the member table and
/// the auth store each with a length, then the CORRUPT alarms.
const META_VERSION: u8 = 4;
const META_HAS_MEMBERS: u8 = 1;
const META_HAS_AUTH: u8 = 2;
const META_V2_HEAD_BYTES: usize = 14;
const META_LEASE_BYTES: usize = 16;

fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

impl SnapMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(META_V2_HEAD_BYTES + self.leases.len() * META_LEASE_BYTES);
        v.push(META_VERSION);
        v.extend_from_slice(&self.revision.to_le_bytes());
        v.push(u8::from(self.nospace));
        let n = u32::try_from(self.leases.len()).expect("lease count is bounded by LEASES_MAX");
        v.extend_from_slice(&n.to_le_bytes());
        for (id, ttl) in &self.leases {
            v.extend_from_slice(&id.to_le_bytes());
            v.extend_from_slice(&ttl.to_le_bytes());
        }
        let mut flags = 0;
        if self.members.is_some() {
            flags |= META_HAS_MEMBERS;
        }
        if self.auth.is_some() {
            flags |= META_HAS_AUTH;
        }
        v.push(flags);
        if let Some(members) = &self.members {
            let mut m = Vec::new();
            members.encode(&mut m);
            put_section(&mut v, &m);
        }
        if let Some(auth) = &self.auth {
            put_section(&mut v, auth);
        }
        let n = u32::try_from(self.corrupt.len()).expect("alarms are bounded by MEMBERS_MAX");
        v.extend_from_slice(&n.to_le_bytes());
        for id in &self.corrupt {
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    pub fn decode(b: &[u8]) -> Result<SnapMeta, String> {
        let unknown = || {
            format!(
                "unknown snapshot metadata (version {:?}, {} bytes)",
                b.first(),
                b.len()
            )
        };
        match b.first() {
            Some(&META_VERSION_V1) if b.len() == META_V1_BYTES => Ok(SnapMeta {
                revision: le_i64(&b[1..9]),
                nospace: b[9] & 1 == 1,
                ..SnapMeta::default()
            }),
            Some(&META_VERSION) if b.len() >= META_V2_HEAD_BYTES => Self::decode_v4(b),
            Some(&(v @ META_VERSION_V2 | v @ META_VERSION_V3)) if b.len() >= META_V2_HEAD_BYTES => {
                let mut n = [0u8; 4];
                n.copy_from_slice(&b[10..14]);
                let n = usize::try_from(u32::from_le_bytes(n)).map_err(|_| unknown())?;
                let body = &b[META_V2_HEAD_BYTES..];
                let lease_bytes = n.checked_mul(META_LEASE_BYTES).ok_or_else(unknown)?;
                let (body, rest) = if v == META_VERSION_V3 && body.len() >= lease_bytes {
                    body.split_at(lease_bytes)
                } else {
                    (body, &[][..])
                };
                if lease_bytes != body.len() {
                    return Err(format!(
                        "snapshot metadata names {n} leases but holds {} bytes of them",
                        body.len()
                    ));
                }
                let leases = body
                    .chunks_exact(META_LEASE_BYTES)
                    .map(|c| (le_i64(&c[..8]), le_i64(&c[8..])))
                    .collect();
                let members = if v == META_VERSION_V3 {
                    Some(Members::decode(rest)?)
                } else {
                    None
                };
                Ok(SnapMeta {
                    revision: le_i64(&b[1..9]),
                    nospace: b[9] & 1 == 1,
                    leases,
                    members,
                    ..SnapMeta::default()
                })
            }
            _ => Err(unknown()),
        }
    }

    fn decode_v4(b: &[u8]) -> Result<SnapMeta, String> {
        let short = || "snapshot metadata is truncated".to_string();
        let mut at = META_V2_HEAD_BYTES;
        let u32_at = |at: usize| -> Result<usize, String> {
            let s = b.get(at..at + 4).ok_or_else(short)?;
            Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
        };
        let n = u32_at(10)?;
        let lease_bytes = n.checked_mul(META_LEASE_BYTES).ok_or_else(short)?;
        let leases = b
            .get(at..at + lease_bytes)
            .ok_or_else(short)?
            .chunks_exact(META_LEASE_BYTES)
            .map(|c| (le_i64(&c[..8]), le_i64(&c[8..])))
            .collect();
        at += lease_bytes;
        let flags = *b.get(at).ok_or_else(short)?;
        at += 1;
        let section = |at: &mut usize| -> Result<&[u8], String> {
            let len = u32_at(*at)?;
            let s = b.get(*at + 4..*at + 4 + len).ok_or_else(short)?;
            *at += 4 + len;
            Ok(s)
        };
        let members = if flags & META_HAS_MEMBERS != 0 {
            Some(Members::decode(section(&mut at)?)?)
        } else {
            None
        };
        let auth = if flags & META_HAS_AUTH != 0 {
            Some(section(&mut at)?.to_vec())
        } else {
            None
        };
        let n = u32_at(at)?;
        at += 4;
        let ids = b
            .get(at..at + n.checked_mul(8).ok_or_else(short)?)
            .ok_or_else(short)?;
        let corrupt = ids
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8-byte chunk")))
            .collect();
        if at + ids.len() != b.len() {
            return Err(format!(
                "snapshot metadata has {} bytes after its end",
                b.len() - at - ids.len()
            ));
        }
        Ok(SnapMeta {
            revision: le_i64(&b[1..9]),
            nospace: b[9] & 1 == 1,
            leases,
            members,
            auth,
            corrupt,
        })
    }
}

fn put_section(v: &mut Vec<u8>, s: &[u8]) {
    let n = u32::try_from(s.len()).expect("sections are bounded by SNAP_META_BYTES_MAX");
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(s);
}

/// What start-up found on disk.
pub struct Restored {
    pub index: u64,
    pub term: u64,
    pub mvcc: Mvcc,
    pub meta: SnapMeta,
}

/// Whether the WAL can continue from a snapshot at `index`: it holds every
/// entry after it (or the snapshot is at or past its last entry).
fn wal_continues_from(recovered: &Recovered, index: u64) -> bool {
    match recovered.entries.first() {
        Some(first) => first.index <= index + 1 || index >= recovered.last_index(),
        None => index >= recovered.snapshot.index,
    }
}

/// Load the newest usable snapshot, if any.
pub async fn restore(
    store: &SnapStore<DmaFs>,
    recovered: &Recovered,
    config: MvccConfig,
) -> Result<Option<Restored>, String> {
    let reader = store
        .open_newest_valid(|index| wal_continues_from(recovered, index))
        .await
        .map_err(|e| e.to_string())?;
    let Some(mut reader) = reader else {
        if recovered.snapshot.index > 0 {
            return Err(format!(
                "the WAL starts after a snapshot at index {} but no snapshot file is left in member/snap; \
                 restore this member from a snapshot (see docs/operations.md)",
                recovered.snapshot.index
            ));
        }
        return Ok(None);
    };
    let meta = SnapMeta::decode(&reader.meta)?;
    let mut chunks = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.map_err(|e| e.to_string())? {
        chunks.push(chunk);
    }
    let mvcc = Mvcc::restore(config, &chunks).map_err(|e| e.to_string())?;
    let (index, term) = (reader.info.index, reader.info.term);
    tracing::info!(
        index,
        term,
        revision = mvcc.current_revision(),
        "loaded snapshot"
    );
    Ok(Some(Restored {
        index,
        term,
        mvcc,
        meta,
    }))
}

/// The end of a snapshot run, reported back to the shard.
pub enum SnapshotOutcome {
    Done { index: u64 },
    Failed { index: u64, error: String },
}

/// Write a snapshot of `mvcc` at its current revision, labelled with the
/// applied Raft position, without stopping the shard. The caller must not
/// start another until this one reports back.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    mvcc: Rc<RefCell<Mvcc>>,
    store: SnapStore<DmaFs>,
    wal: Wal<DmaFs>,
    index: u64,
    term: u64,
    meta: SnapMeta,
    report: Rc<LocalSender<super::shard::Event>>,
) {
    let snap = mvcc.borrow().snapshot_begin(meta.revision);
    glommio::spawn_local(async move {
        let result = async {
            let mut snap = snap.map_err(|e| e.to_string())?;
            let mut writer = store
                .create(index, term, &meta.encode())
                .await
                .map_err(|e| e.to_string())?;
            loop {
                // Borrow only to cut the chunk; the write happens while the
                // shard goes on applying.
                let chunk = mvcc
                    .borrow()
                    .snapshot_chunk(&mut snap, limits::MVCC_SNAPSHOT_CHUNK_BYTES_DEFAULT);
                match chunk {
                    Some(c) => writer.write_chunk(&c).await.map_err(|e| e.to_string())?,
                    None => break,
                }
            }
            drop(snap);
            writer.finish().await.map_err(|e| e.to_string())?;
            let lsn = wal
                .append(&[Record::Snapshot(wal::SnapshotMarker { index, term })])
                .await
                .map_err(|e| e.to_string())?;
            wal.wait_durable(lsn).await.map_err(|e| e.to_string())?;
            store.prune().await.map_err(|e| e.to_string())?;
            if let Some(oldest) = store.oldest_kept_index().await.map_err(|e| e.to_string())? {
                let released = wal
                    .release_before(oldest)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::debug!(released, "released WAL segments");
            }
            Ok::<(), String>(())
        }
        .await;
        let outcome = match result {
            Ok(()) => SnapshotOutcome::Done { index },
            Err(error) => SnapshotOutcome::Failed { index, error },
        };
        let _ = report.send(super::shard::Event::Snapshot(outcome)).await;
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_rejects_unknown_versions() {
        let m = SnapMeta {
            revision: 42,
            nospace: true,
            leases: vec![(7, 10), (9, 9_000_000_000)],
            members: None,
            auth: Some(vec![1, 2, 3]),
            corrupt: vec![5, 6],
        };
        assert_eq!(SnapMeta::decode(&m.encode()).unwrap(), m);
        let with_members = SnapMeta {
            members: Some(Members::initial(&[(
                5,
                "a".into(),
                vec!["http://a".into()],
            )])),
            ..m.clone()
        };
        let b = with_members.encode();
        assert_eq!(b[0], META_VERSION);
        assert_eq!(SnapMeta::decode(&b).unwrap(), with_members);
        assert!(SnapMeta::decode(&b[..b.len() - 1]).is_err());
        let mut b = m.encode();
        assert!(
            SnapMeta::decode(&b[..b.len() - 1]).is_err(),
            "truncated lease list"
        );
        b[0] = 9;
        assert!(SnapMeta::decode(&b).is_err());
        assert!(SnapMeta::decode(&b[..3]).is_err());
    }

    #[test]
    fn version_1_metadata_is_still_read() {
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&42i64.to_le_bytes());
        v1.push(1);
        let m = SnapMeta::decode(&v1).unwrap();
        assert_eq!((m.revision, m.nospace, m.leases.len()), (42, true, 0));
    }
}
