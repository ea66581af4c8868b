//! Where clients record what happened to each request during a run.
//!
//! Clients record into a few mutex-guarded shards (see
//! [`RECORDER_SHARDS`](crate::limits::RECORDER_SHARDS)); [`Recorder::finish`]
//! merges them into one [`Recording`] once every client has stopped.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::limits::{
    ERROR_KINDS_MAX, LATENCY_MAX_NS, LATENCY_SIGNIFICANT_DIGITS, RECORDER_SHARDS,
    TIMELINE_SECONDS_MAX,
};

/// Everything recorded during the measured part of a run (warm-up excluded).
#[derive(Debug, Clone)]
pub struct Recording {
    /// Latencies of successful requests, in nanoseconds.
    pub latency_ns: Histogram<u64>,
    pub successes: u64,
    /// Failed requests by kind; kinds past [`ERROR_KINDS_MAX`] are counted
    /// in `errors_other`.
    pub errors: BTreeMap<String, u64>,
    pub errors_other: u64,
    /// Exact sum, square sum, min and max of successful latencies (the
    /// histogram rounds to its precision).
    pub latency_sum_ns: u128,
    pub latency_sum_sq_ns: u128,
    pub latency_min_ns: u64,
    pub latency_max_ns: u64,
    /// Start of the first measured request (its intended start in an open
    /// loop) and end of the last one.
    pub first_start: Option<Instant>,
    pub last_end: Option<Instant>,
    /// Successful requests completed in each second since the run started.
    pub completions_per_sec: Vec<u64>,
    /// Requests sent and completed during warm-up, not otherwise counted.
    pub warmup_requests: u64,
    /// Successful range requests that found no key.
    pub empty_ranges: u64,
    /// Attempts beyond the first of requests that retry (`stm` conflicts).
    pub retries: u64,
    /// The same figures for each kind of request of a mixed workload
    /// (`reads`, `writes`); empty otherwise.
    pub sections: Vec<(String, Recording)>,
}

impl Recording {
    pub fn empty() -> Recording {
        Recording {
            latency_ns: new_histogram(),
            successes: 0,
            errors: BTreeMap::new(),
            errors_other: 0,
            latency_sum_ns: 0,
            latency_sum_sq_ns: 0,
            latency_min_ns: u64::MAX,
            latency_max_ns: 0,
            first_start: None,
            last_end: None,
            completions_per_sec: Vec::new(),
            warmup_requests: 0,
            empty_ranges: 0,
            retries: 0,
            sections: Vec::new(),
        }
    }

    /// Failed requests of every kind.
    pub fn failures(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.errors_other
    }

    /// Measured requests: successes plus failures.
    pub fn requests(&self) -> u64 {
        self.successes + self.failures()
    }

    /// Counts `count` failures of `kind`.
    pub fn add_error(&mut self, kind: &str, count: u64) {
        if let Some(n) = self.errors.get_mut(kind) {
            *n += count;
        } else if self.errors.len() < ERROR_KINDS_MAX {
            self.errors.insert(kind.to_string(), count);
        } else {
            self.errors_other += count;
        }
    }

    fn merge(&mut self, other: &Recording) {
        // Both histograms have the same bounds, so adding cannot fail.
        let added = self.latency_ns.add(&other.latency_ns);
        assert!(added.is_ok(), "recorder histograms share their bounds");
        self.successes += other.successes;
        for (kind, count) in &other.errors {
            self.add_error(kind, *count);
        }
        self.errors_other += other.errors_other;
        self.latency_sum_ns += other.latency_sum_ns;
        self.latency_sum_sq_ns += other.latency_sum_sq_ns;
        self.latency_min_ns = self.latency_min_ns.min(other.latency_min_ns);
        self.latency_max_ns = self.latency_max_ns.max(other.latency_max_ns);
        self.first_start = min_option(self.first_start, other.first_start);
        self.last_end = max_option(self.last_end, other.last_end);
        if self.completions_per_sec.len() < other.completions_per_sec.len() {
            self.completions_per_sec
                .resize(other.completions_per_sec.len(), 0);
        }
        for (mine, theirs) in self
            .completions_per_sec
            .iter_mut()
            .zip(&other.completions_per_sec)
        {
            *mine += theirs;
        }
        self.warmup_requests += other.warmup_requests;
        self.empty_ranges += other.empty_ranges;
        self.retries += other.retries;
    }
}

fn min_option(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_option(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A latency histogram with the harness's bounds and precision.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_NS, LATENCY_SIGNIFICANT_DIGITS)
        .expect("the latency bounds are valid constants")
}

/// The shared sink of a run's results.
#[derive(Debug)]
pub struct Recorder {
    run_start: Instant,
    shards: Vec<Mutex<Recording>>,
}

impl Recorder {
    pub fn new(run_start: Instant) -> Recorder {
        Recorder {
            run_start,
            shards: (0..RECORDER_SHARDS)
                .map(|_| Mutex::new(Recording::empty()))
                .collect(),
        }
    }

    /// Records one measured request of client `client`, started (or due to
    /// start) at `start`, ended at `end`, failed with `error` if any.
    pub fn record(&self, client: usize, start: Instant, end: Instant, error: Option<&str>) {
        let latency_ns = end.saturating_duration_since(start).as_nanos();
        let latency_ns = u64::try_from(latency_ns).unwrap_or(u64::MAX);
        let second = end.saturating_duration_since(self.run_start).as_secs();
        let mut shard = self.lock(client);
        shard.first_start = min_option(shard.first_start, Some(start));
        shard.last_end = max_option(shard.last_end, Some(end));
        match error {
            Some(kind) => shard.add_error(kind, 1),
            None => {
                shard.successes += 1;
                shard
                    .latency_ns
                    .saturating_record(latency_ns.clamp(1, LATENCY_MAX_NS));
                shard.latency_sum_ns += u128::from(latency_ns);
                shard.latency_sum_sq_ns += u128::from(latency_ns) * u128::from(latency_ns);
                shard.latency_min_ns = shard.latency_min_ns.min(latency_ns);
                shard.latency_max_ns = shard.latency_max_ns.max(latency_ns);
                if let Ok(second) = usize::try_from(second) {
                    if second < TIMELINE_SECONDS_MAX {
                        if shard.completions_per_sec.len() <= second {
                            shard.completions_per_sec.resize(second + 1, 0);
                        }
                        shard.completions_per_sec[second] += 1;
                    }
                }
            }
        }
    }

    /// Counts one measured range request of client `client` that found no
    /// key.
    pub fn record_empty(&self, client: usize) {
        self.lock(client).empty_ranges += 1;
    }

    /// Counts `count` failures of `kind` that have no timing (a watch
    /// that broke, events never delivered).
    pub fn record_errors(&self, client: usize, kind: &str, count: u64) {
        self.lock(client).add_error(kind, count);
    }

    /// Counts `retries` extra attempts of one request of client `client`.
    pub fn record_retries(&self, client: usize, retries: u32) {
        self.lock(client).retries += u64::from(retries);
    }

    /// Counts one warm-up request of client `client`.
    pub fn record_warmup(&self, client: usize) {
        self.lock(client).warmup_requests += 1;
    }

    /// Merges every shard.
    pub fn finish(&self) -> Recording {
        let mut all = Recording::empty();
        for shard in &self.shards {
            let shard = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            all.merge(&shard);
        }
        all
    }

    fn lock(&self, client: usize) -> std::sync::MutexGuard<'_, Recording> {
        // A client that panicked while holding the lock left the shard's
        // counters consistent (each update is a few field writes that cannot
        // panic halfway), so a poisoned lock is still usable.
        self.shards[client % self.shards.len()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn merged_counts_add_up_across_shards() {
        let start = Instant::now();
        let recorder = Recorder::new(start);
        for client in 0..40 {
            let begin = start + Duration::from_millis(client as u64);
            recorder.record(client, begin, begin + Duration::from_micros(100), None);
        }
        recorder.record(3, start, start, Some("etcdserver: too many requests"));
        recorder.record(5, start, start, Some("etcdserver: too many requests"));
        recorder.record_warmup(7);
        let all = recorder.finish();
        assert_eq!(all.successes, 40);
        assert_eq!(all.failures(), 2);
        assert_eq!(all.requests(), 42);
        assert_eq!(all.errors["etcdserver: too many requests"], 2);
        assert_eq!(all.warmup_requests, 1);
        assert_eq!(all.latency_ns.len(), 40);
        assert_eq!(all.latency_min_ns, 100_000);
        assert_eq!(all.completions_per_sec, vec![40]);
    }

    #[test]
    fn error_kinds_beyond_the_limit_are_counted_together() {
        let start = Instant::now();
        let recorder = Recorder::new(start);
        for i in 0..(ERROR_KINDS_MAX + 5) {
            recorder.record(0, start, start, Some(&format!("error {i}")));
        }
        let all = recorder.finish();
        assert_eq!(all.errors.len(), ERROR_KINDS_MAX);
        assert_eq!(all.errors_other, 5);
        assert_eq!(all.failures(), (ERROR_KINDS_MAX + 5) as u64);
    }
}
