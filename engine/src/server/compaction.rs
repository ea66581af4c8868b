//! Automatic compaction: `--auto-compaction-mode` and
//! `--auto-compaction-retention`, with etcd's meanings.
//!
//! - `revision`: every `--experimental-auto-compaction-revision-interval`
//!   (etcd: five minutes) compact at `current revision − retention`, so the
//!   last `retention` revisions stay readable.
//! - `periodic`: keep roughly `retention` of history. The current revision
//!   is sampled every tenth of the retention period (at most every six
//!   minutes); every `min(retention, 1h)` the store is compacted at the
//!   oldest sample still inside the window, i.e. the revision of one
//!   retention period ago. A bare number is hours, as etcd reads it.
//!
//! Only the leader decides: it proposes a `Compaction` request through the
//! log, so every member compacts at the same revision at the same point of
//! its history. A compaction is applied like any request, between batches;
//! freeing the dropped versions is one pass over the index (deferred while
//! a snapshot or backup holds compaction), which is the pause a client can
//! notice — see `docs/operations.md` for its cost.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError};

/// `--auto-compaction-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Periodic,
    Revision,
}

/// Samples kept in `periodic` mode: one retention window at a tenth of it
/// per sample, plus the sample at the window's start (etcd keeps the same).
const PERIODIC_SAMPLES_MAX: usize = 11;
/// `periodic` mode compacts at most this often, and samples at a tenth of it.
const PERIODIC_INTERVAL_MAX: Duration = Duration::from_secs(3600);

/// What `--auto-compaction-*` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Periodic { retention: Duration },
    Revision { keep: i64, interval: Duration },
}

/// Parses a Go duration (`1h30m`, `500ms`, `2.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (like 1h, 30m, 10s, 500ms)");
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

impl Policy {
    /// The policy the flags ask for; `None` when auto compaction is off.
    pub fn from_config(c: &Config) -> Result<Option<Policy>, ConfigError> {
        let text = c.auto_compaction_retention.trim();
        let bad = |reason: String| ConfigError {
            flag: "auto-compaction-retention",
            reason,
        };
        match c.auto_compaction_mode {
            Mode::Revision => {
                let keep: i64 = text
                    .parse()
                    .map_err(|_| bad(format!("{text:?} is not a number of revisions")))?;
                if keep < 0 {
                    return Err(bad("must not be negative".into()));
                }
                if c.experimental_auto_compaction_revision_interval.is_zero() {
                    return Err(ConfigError {
                        flag: "experimental-auto-compaction-revision-interval",
                        reason: "must be positive".into(),
                    });
                }
                Ok((keep > 0).then_some(Policy::Revision {
                    keep,
                    interval: c.experimental_auto_compaction_revision_interval,
                }))
            }
            Mode::Periodic => {
                let retention = match text.parse::<u64>() {
                    Ok(hours) => Duration::from_secs(hours.saturating_mul(3600)),
                    Err(_) => parse_duration(text).map_err(bad)?,
                };
                Ok((!retention.is_zero()).then_some(Policy::Periodic { retention }))
            }
        }
    }
}

/// The leader's compaction schedule.
#[derive(Debug)]
pub struct Compactor {
    policy: Policy,
    next_check: Instant,
    last_compaction: Instant,
    /// `periodic`: (when, revision), oldest first.
    samples: VecDeque<(Instant, i64)>,
    /// The last revision proposed, so the same one is not proposed twice.
    last_proposed: i64,
}

impl Compactor {
    pub fn new(policy: Policy, now: Instant) -> Compactor {
        Compactor {
            policy,
            next_check: now,
            last_compaction: now,
            samples: VecDeque::with_capacity(PERIODIC_SAMPLES_MAX + 1),
            last_proposed: 0,
        }
    }

    /// Called on every tick. Returns the revision to compact at, if one is
    /// due now. `leader` says whether this member decides; a follower only
    /// keeps its clock so that a new leader starts a full period later.
    pub fn due(
        &mut self,
        now: Instant,
        current_rev: i64,
        compact_rev: i64,
        leader: bool,
    ) -> Option<i64> {
        if now < self.next_check {
            return None;
        }
        if !leader {
            // A member that becomes leader starts the schedule afresh.
            self.samples.clear();
            self.last_compaction = now;
            self.next_check = now + self.sample_interval();
            return None;
        }
        self.next_check = now + self.sample_interval();
        let rev = match self.policy {
            Policy::Revision { keep, .. } => current_rev - keep,
            Policy::Periodic { retention } => {
                self.samples.push_back((now, current_rev));
                while self.samples.len() > PERIODIC_SAMPLES_MAX {
                    self.samples.pop_front();
                }
                let interval = retention.min(PERIODIC_INTERVAL_MAX);
                if now.duration_since(self.last_compaction) < interval {
                    return None;
                }
                // The oldest sample at least one retention period old; none
                // yet means history is younger than the retention.
                let cutoff = now.checked_sub(retention)?;
                let (_, rev) = self
                    .samples
                    .iter()
                    .rev()
                    .find(|(at, _)| *at <= cutoff)
                    .copied()?;
                rev
            }
        };
        if rev <= 0 || rev <= compact_rev || rev == self.last_proposed {
            return None;
        }
        self.last_proposed = rev;
        self.last_compaction = now;
        Some(rev)
    }

    fn sample_interval(&self) -> Duration {
        match self.policy {
            Policy::Revision { interval, .. } => interval,
            Policy::Periodic { retention } => retention.min(PERIODIC_INTERVAL_MAX) / 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn policy(args: &[&str]) -> Result<Option<Policy>, ConfigError> {
        let mut all = vec!["cairn"];
        all.extend_from_slice(args);
        Policy::from_config(&Config::try_parse_from(all).unwrap())
    }

    #[test]
    fn flags_read_as_etcd_reads_them() {
        assert_eq!(policy(&[]).unwrap(), None, "off by default");
        assert_eq!(
            policy(&["--auto-compaction-retention", "2"]).unwrap(),
            Some(Policy::Periodic {
                retention: Duration::from_secs(7200)
            }),
            "a bare number is hours"
        );
        assert_eq!(
            policy(&["--auto-compaction-retention", "1h30m"]).unwrap(),
            Some(Policy::Periodic {
                retention: Duration::from_secs(5400)
            })
        );
        assert_eq!(
            policy(&[
                "--auto-compaction-mode",
                "revision",
                "--auto-compaction-retention",
                "1000"
            ])
            .unwrap(),
            Some(Policy::Revision {
                keep: 1000,
                interval: Duration::from_secs(300)
            })
        );
        assert!(policy(&["--auto-compaction-retention", "1 fortnight"]).is_err());
        assert!(policy(&[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "1h"
        ])
        .is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn revision_mode_keeps_the_last_n_revisions() {
        let t0 = Instant::now();
        let policy = Policy::Revision {
            keep: 10,
            interval: Duration::from_secs(300),
        };
        let mut c = Compactor::new(policy, t0);
        assert_eq!(c.due(t0, 5, -1, true), None, "fewer than N revisions");
        assert_eq!(
            c.due(t0 + Duration::from_secs(10), 100, -1, true),
            None,
            "not yet time"
        );
        assert_eq!(
            c.due(t0 + Duration::from_secs(300), 100, -1, true),
            Some(90)
        );
        assert_eq!(
            c.due(t0 + Duration::from_secs(600), 100, 90, true),
            None,
            "nothing new to compact"
        );
        assert_eq!(
            c.due(t0 + Duration::from_secs(900), 150, 90, false),
            None,
            "followers never propose"
        );
    }

    #[test]
    fn periodic_mode_compacts_at_the_revision_of_one_period_ago() {
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut c = Compactor::new(Policy::Periodic { retention: hour }, t0);
        let step = hour / 10;
        let mut proposed = Vec::new();
        for i in 0..=25u32 {
            let now = t0 + step * i;
            if let Some(rev) = c.due(now, 1000 + i64::from(i) * 100, -1, true) {
                proposed.push((i, rev));
            }
        }
        // At 1h the sample of 0h (rev 1000) is one period old; at 2h, that
        // of 1h (rev 2000).
        assert_eq!(proposed, vec![(10, 1000), (20, 2000)]);
    }
}
