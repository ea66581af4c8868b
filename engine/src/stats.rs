//! Process-wide counters and latency histograms for `/metrics`, kept in
//! atomics so that the paths that record them (the WAL's flusher, the
//! shard) pay one relaxed add, and a scrape reads them without asking the
//! shard.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds of etcd's disk-latency histograms, in seconds:
/// 1 ms doubling up to 8.192 s (prometheus' exponential buckets 0.001, ×2,
/// 14 buckets), so dashboards built for etcd read cairn's alike.
pub const DISK_BUCKETS_S: [f64; 14] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192,
];

/// A histogram over [`DISK_BUCKETS_S`]: per-bucket counts (not cumulative),
/// the total count and the sum of the observations.
pub struct Histogram {
    buckets: [AtomicU64; DISK_BUCKETS_S.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; DISK_BUCKETS_S.len()],
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = DISK_BUCKETS_S.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket, the count and the sum in seconds.
    pub fn read(&self) -> ([u64; DISK_BUCKETS_S.len()], u64, f64) {
        let mut out = [0u64; DISK_BUCKETS_S.len()];
        let mut acc = 0;
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            acc += b.load(Ordering::Relaxed);
            *o = acc;
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (out, count, sum)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// Latency of the WAL's fdatasync calls (etcd_disk_wal_fsync_duration_seconds).
pub static WAL_FSYNC: Histogram = Histogram::new();

/// Times this member saw the leader change to another known leader
/// (etcd_server_leader_changes_seen_total).
pub static LEADER_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Publications of watch events not sent to an executor because it was too
/// far behind (its watches read those revisions from history instead).
pub static WATCH_PUBLICATIONS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// History reads the shard served for watches that fell behind.
pub static WATCH_HISTORY_READS: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let (buckets, count, sum) = h.read();
        assert_eq!(count, 3);
        assert_eq!(buckets[0], 1, "≤ 1 ms");
        assert_eq!(buckets[1], 1, "≤ 2 ms");
        assert_eq!(buckets[2], 2, "≤ 4 ms");
        assert_eq!(buckets[13], 2, "20 s is only in +Inf");
        assert!((sum - 20.0035).abs() < 1e-6);
    }
}
