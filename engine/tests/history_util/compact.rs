//! The compactor of the history test: compacts the store to a recent
//! revision about once a second while the workload runs, physically or
//! not, and checks reads around the compaction point.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;

use super::workload::{ask, conn_to, read_prefix, read_prefix_at, rng_for, Shared};
use super::{RevRead, PREFIX};
use crate::common::Client;

/// What etcd answers for a revision below the compaction point.
pub const COMPACTED: &str = "mvcc: required revision has been compacted";
/// Time between two compactions.
pub const COMPACT_EVERY_MS: u64 = 1_000;
/// A compaction keeps this many revisions and more behind the current one
/// (a random number in this range), so that watchers that resume after a
/// short outage still find their next revision most of the time, and one
/// that falls further behind is canceled.
pub const COMPACT_KEEP_REVISIONS: std::ops::Range<i64> = 100..400;

/// What the compactor did and saw.
#[derive(Debug, Default)]
pub struct CompactLog {
    /// Every revision a compaction was sent for, whatever its outcome
    /// (increasing): a watch's compact revision must be one of them.
    pub attempts: Vec<i64>,
    /// Compactions acknowledged, and how many of them were physical.
    pub acked: usize,
    pub physical: usize,
    /// Reads just below an acknowledged compaction point refused with
    /// [`COMPACTED`].
    pub refused_below: usize,
    /// Reads at an acknowledged compaction point, for the checker.
    pub reads: Vec<RevRead>,
    pub problems: Vec<String>,
}

/// Compact until the writers stop. Never past the recorder's last
/// revision (its stream resumes at the next one, and a watch from the
/// compaction revision itself is refused) nor below `first_revision`. After an acknowledged compaction to C, a
/// linearizable read at C - 1 must be refused with [`COMPACTED`], and one
/// at C must succeed (the checker compares it with the replayed state).
pub fn compactor(seed: u64, sh: &Shared, first_revision: i64) -> CompactLog {
    let mut rng = rng_for(seed, 0xc0c0);
    let mut log = CompactLog::default();
    let mut conn: Option<Client> = None;
    let mut last = 0;
    while !sh.stopped() {
        std::thread::sleep(Duration::from_millis(COMPACT_EVERY_MS));
        if conn_to(&mut conn, &mut rng, &sh.addrs()).is_none() {
            continue;
        }
        let Ok((current, _)) = read_prefix(&mut conn, PREFIX) else {
            conn = None;
            continue;
        };
        let keep = rng.gen_range(COMPACT_KEEP_REVISIONS);
        let target = (current - keep).min(sh.recorded.load(Ordering::SeqCst));
        if target <= last || target < first_revision {
            continue;
        }
        last = target;
        log.attempts.push(target);
        let physical = rng.gen_bool(0.5);
        let answer = ask(&mut conn, |c, id| {
            c.enc.compaction_request(id, target, physical).to_vec()
        });
        match answer.map(|r| r.error) {
            Some(None) => {
                log.acked += 1;
                log.physical += usize::from(physical);
            }
            // Every earlier compaction was to a lower revision.
            Some(Some((_, e))) if e.contains(COMPACTED) || e.contains("future revision") => {
                log.problems.push(format!(
                    "compaction to {target} (current revision {current}) refused: {e}"
                ));
                continue;
            }
            // No leader, timeouts: it may still apply.
            Some(Some(_)) | None => continue,
        }
        check_reads(&mut conn, &mut rng, sh, target, &mut log);
    }
    log
}

/// Reads through a random member around the compaction point `at`.
fn check_reads(
    conn: &mut Option<Client>,
    rng: &mut rand_chacha::ChaCha8Rng,
    sh: &Shared,
    at: i64,
    log: &mut CompactLog,
) {
    *conn = None;
    if conn_to(conn, rng, &sh.addrs()).is_none() {
        return;
    }
    match read_prefix_at(conn, PREFIX, at - 1) {
        Err(e) if e.contains(COMPACTED) => log.refused_below += 1,
        Ok((rev, kvs)) => log.problems.push(format!(
            "a read at revision {} after the compaction to {at} was answered (revision {rev}, \
             {} keys)",
            at - 1,
            kvs.len()
        )),
        Err(_) => {}
    }
    match read_prefix_at(conn, PREFIX, at) {
        Ok((_, kvs)) => log.reads.push(RevRead { revision: at, kvs }),
        Err(e) if e.contains(COMPACTED) => log.problems.push(format!(
            "a read at revision {at}, the compaction point, was refused: {e}"
        )),
        Err(_) => {}
    }
}
