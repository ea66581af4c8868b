//! The write-ahead log: segmented, preallocated, CRC-framed records written
//! with O_DIRECT and group commit. The WAL is the Raft log of a shard.
//!
//! It holds three kinds of record: Raft [`Entry`]s (opaque payload), the
//! [`HardState`] (term, vote, commit) and [`SnapshotMarker`]s (a snapshot at
//! this index is durable; earlier entries may be released).
//!
//! # Using it
//!
//! [`open`] recovers the log and returns the writer plus what was recovered:
//! the latest hard state, the latest snapshot marker and the entries after
//! it. To persist a Raft `Ready`, append its entries and then its hard state
//! in one call, and wait for durability before sending the messages that
//! depend on them:
//!
//! ```
//! use cairn_engine::io::MemFs;
//! use cairn_engine::wal::{self, HardState, Record, WalOptions};
//!
//! glommio::LocalExecutorBuilder::default()
//!     .spawn(|| async {
//!         let fs = MemFs::new();
//!         let dir = std::path::Path::new("/data/member/wal");
//!         let (log, recovered) = wal::open(fs.clone(), dir, WalOptions::default()).await?;
//!         assert!(recovered.entries.is_empty());
//!
//!         let lsn = log
//!             .append(&[
//!                 Record::Entry { index: 1, term: 1, kind: 0, payload: b"put a=1" },
//!                 Record::HardState(HardState { term: 1, vote: 1, commit: 1 }),
//!             ])
//!             .await?;
//!         log.wait_durable(lsn).await?;
//!         drop(log);
//!
//!         let (_log, recovered) = wal::open(fs.reopen(), dir, WalOptions::default()).await?;
//!         assert_eq!(recovered.entries[0].payload, b"put a=1");
//!         assert_eq!(recovered.hard_state.commit, 1);
//!         Ok::<_, wal::WalError>(())
//!     })
//!     .unwrap()
//!     .join()
//!     .unwrap()
//!     .unwrap();
//! ```
//!
//! Many tasks may append concurrently (clone the [`Wal`]); their records are
//! written together, one durable write per batch (O_DSYNC, or write +
//! fdatasync). Records of one
//! `append` call stay contiguous and in order. A failed write or fdatasync
//! stops the log: every later call returns [`WalError::FailStopped`].
//!
//! After a snapshot at index `i` is durable (see [`crate::snap`]), append
//! `Record::Snapshot` and, once that is durable, call
//! [`Wal::release_before`] with the index of the *previous* snapshot still
//! kept, so that recovery can fall back to it if the newest snapshot file is
//! damaged.
//!
//! The format and the recovery rules are in `docs/storage.md`.

mod error;
mod format;
mod reader;
mod replay;
mod writer;

use std::path::{Path, PathBuf};

pub use error::WalError;
pub use format::{HardState, SnapshotMarker};
pub use replay::{Entry, Recovered, Replay};
pub use writer::{Lsn, Record, Wal, WalOptions, WalStats};

use crate::io::{File, Fs};
use format::SEGMENT_HEADER_BLOCK;

/// The WAL directory of a data directory: `<data-dir>/member/wal`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("wal")
}

/// Opens (creating if empty) the log in `dir`: verifies and replays every
/// segment, drops a torn write at the tail, and positions the writer after
/// the last valid batch. Refuses with [`WalError::Corrupt`], naming the file
/// and offset, if anything before the tail is damaged.
pub async fn open<F: Fs>(
    fs: F,
    dir: &Path,
    opts: WalOptions,
) -> Result<(Wal<F>, Recovered), WalError> {
    opts.check();
    fs.create_dir_all(dir).await?;
    let scanned = reader::scan(&fs, dir).await?;
    let recovered = scanned.recovered;
    let start = match scanned.tail {
        Some(t) => writer::Start {
            // The scan opened it for reading; the writer's handle also has
            // the O_DSYNC descriptor its batches go through.
            file: {
                let path = scanned
                    .segments
                    .last()
                    .expect("a tail has a segment")
                    .path
                    .clone();
                let file = fs.open_synced(&path).await?;
                t.file.close().await?;
                if let Some(at) = t.in_flight_after {
                    // Durably, before anything new is written: otherwise
                    // the next crash could find this stale batch right
                    // after new ones.
                    let zeros = crate::io::AlignedBuf::zeroed(crate::limits::IO_ALIGN_BYTES);
                    file.write_durable(zeros, at).await?;
                }
                file
            },
            zeroed_to: t.offset,
            header: t.header,
            offset: t.offset,
            last_index: recovered.last_index(),
            hs: recovered.hard_state,
            snap: recovered.snapshot,
            segments: scanned.segments,
            dropped_at_open: u64::from(t.in_flight_after.is_some()),
        },
        None => {
            let (hs, snap) = (HardState::default(), SnapshotMarker::default());
            let header = writer::new_header(0, 1, 0, hs, snap);
            let seg = writer::create_segment(&fs, dir, &header, opts.segment_bytes).await?;
            writer::Start {
                file: seg.file,
                zeroed_to: seg.zeroed_to,
                header,
                offset: SEGMENT_HEADER_BLOCK,
                last_index: 0,
                hs,
                snap,
                segments: vec![seg.info],
                dropped_at_open: 0,
            }
        }
    };
    let wal = Wal::start(fs, dir.to_path_buf(), opts, start);
    Ok((wal, recovered))
}
