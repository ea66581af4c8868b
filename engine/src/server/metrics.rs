//! `/metrics` in Prometheus' text format: etcd's metric names where the
//! meaning is the same, so existing dashboards and alerts work, plus
//! cairn's own under `cairn_`.
//!
//! Every number comes from the shard at scrape time (one Status request and
//! one count-only range), so the request path carries no metric cost.

use std::fmt::Write;

/// What a scrape learned from the shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub member_id: u64,
    /// 0 when the member knows no leader.
    pub leader: u64,
    pub raft_term: u64,
    /// The last index of the member's log.
    pub raft_index: u64,
    pub raft_applied_index: u64,
    pub revision: i64,
    pub db_size_bytes: i64,
    pub db_size_in_use_bytes: i64,
    pub keys: i64,
    pub alarms: usize,
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// The scrape's body.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let has_leader = u8::from(s.leader != 0);
    let is_leader = u8::from(s.leader != 0 && s.leader == s.member_id);
    metric(
        &mut out,
        "etcd_server_has_leader",
        "gauge",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        has_leader,
    );
    metric(
        &mut out,
        "etcd_server_is_leader",
        "gauge",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        is_leader,
    );
    metric(
        &mut out,
        "etcd_server_proposals_committed_total",
        "gauge",
        "The total number of consensus proposals committed.",
        s.raft_index,
    );
    metric(
        &mut out,
        "etcd_server_proposals_applied_total",
        "gauge",
        "The total number of consensus proposals applied.",
        s.raft_applied_index,
    );
    metric(
        &mut out,
        "etcd_server_proposals_pending",
        "gauge",
        "The current number of pending proposals to commit.",
        s.raft_index.saturating_sub(s.raft_applied_index),
    );
    metric(
        &mut out,
        "etcd_mvcc_db_total_size_in_bytes",
        "gauge",
        "Total size of the underlying database physically allocated in bytes.",
        s.db_size_bytes,
    );
    metric(
        &mut out,
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "gauge",
        "Total size of the underlying database logically in use in bytes.",
        s.db_size_in_use_bytes,
    );
    metric(
        &mut out,
        "etcd_debugging_mvcc_keys_total",
        "gauge",
        "Total number of keys.",
        s.keys,
    );
    metric(
        &mut out,
        "etcd_debugging_mvcc_current_revision",
        "gauge",
        "The current revision of store.",
        s.revision,
    );
    // etcd carries the member id as a label.
    let _ = writeln!(out, "# HELP etcd_server_id Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.");
    let _ = writeln!(out, "# TYPE etcd_server_id gauge");
    let _ = writeln!(out, "etcd_server_id{{server_id=\"{:x}\"}} 1", s.member_id);
    metric(
        &mut out,
        "cairn_raft_term",
        "gauge",
        "The member's current Raft term.",
        s.raft_term,
    );
    metric(
        &mut out,
        "cairn_alarms_active",
        "gauge",
        "Alarms raised and not disarmed.",
        s.alarms,
    );
    metric(
        &mut out,
        "etcd_server_leader_changes_seen_total",
        "counter",
        "The number of leader changes seen.",
        crate::stats::LEADER_CHANGES.load(std::sync::atomic::Ordering::Relaxed),
    );
    metric(
        &mut out,
        "cairn_watch_publications_dropped_total",
        "counter",
        "Applied revisions not published to an executor that was too far behind; its watches read them from history.",
        crate::stats::WATCH_PUBLICATIONS_DROPPED.load(std::sync::atomic::Ordering::Relaxed),
    );
    metric(
        &mut out,
        "cairn_watch_history_reads_total",
        "counter",
        "History reads served to watches that fell behind.",
        crate::stats::WATCH_HISTORY_READS.load(std::sync::atomic::Ordering::Relaxed),
    );
    histogram(
        &mut out,
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        &crate::stats::WAL_FSYNC,
    );
    out
}

fn histogram(out: &mut String, name: &str, help: &str, h: &crate::stats::Histogram) {
    let (buckets, count, sum) = h.read();
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (le, n) in crate::stats::DISK_BUCKETS_S.iter().zip(buckets) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_line_parses_as_name_and_number() {
        let text = render(&Snapshot {
            member_id: 0xabc,
            leader: 0xabc,
            raft_index: 10,
            raft_applied_index: 9,
            keys: 3,
            ..Snapshot::default()
        });
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(!name.is_empty());
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        assert!(text.contains("\netcd_server_is_leader 1\n"));
        assert!(text.contains("\netcd_server_proposals_pending 1\n"));
        assert!(text.contains("etcd_server_id{server_id=\"abc\"} 1\n"));
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} "));
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} "));
        assert!(text.contains("\netcd_disk_wal_fsync_duration_seconds_count "));
        assert!(text.contains("\netcd_server_leader_changes_seen_total "));
    }
}
