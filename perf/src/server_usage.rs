//! The server's CPU and memory over a run, read from `/proc` for servers on
//! this machine (`--server-pid`, or the local servers of `compare`).
//! Figures such as "CPU per lease renewal" or "memory per watcher" are the
//! server's, not the load generator's, and only `/proc` tells them apart
//! on a machine both share.

use std::time::{Duration, Instant};

/// CPU time (user + system) and resident memory of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    pub cpu: Duration,
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` when the
/// process is gone or `/proc` is unreadable.
pub fn sample(pid: u32) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing
    // parenthesis are space-separated, utime and stime being the 12th and
    // 13th of them.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|&t| t > 0)?;
    let cpu = Duration::from_secs_f64((utime + stime) as f64 / ticks as f64);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(ProcessSample {
        cpu,
        rss_bytes: rss_kib * 1024,
    })
}

/// The servers' use over a run, summed over their processes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ServerUsage {
    pub processes: usize,
    pub cpu_secs: f64,
    pub wall_secs: f64,
    /// Cores the servers kept busy on average.
    pub cores_used: f64,
    /// Server CPU microseconds per measured request.
    pub cpu_us_per_request: f64,
    pub rss_bytes_before: u64,
    pub rss_bytes_after: u64,
}

/// A measurement in progress.
#[derive(Debug, Clone)]
pub struct ServerProbe {
    pids: Vec<u32>,
    start: Instant,
    before: Vec<ProcessSample>,
}

impl ServerProbe {
    /// Samples `pids` now; `None` when there are none or any is unreadable.
    pub fn start(pids: &[u32]) -> Option<ServerProbe> {
        if pids.is_empty() {
            return None;
        }
        let before = pids
            .iter()
            .map(|&pid| sample(pid))
            .collect::<Option<Vec<_>>>()?;
        Some(ServerProbe {
            pids: pids.to_vec(),
            start: Instant::now(),
            before,
        })
    }

    /// Resident memory of all processes now.
    pub fn rss_bytes_now(&self) -> Option<u64> {
        self.pids
            .iter()
            .map(|&pid| sample(pid).map(|s| s.rss_bytes))
            .sum()
    }

    /// Samples again; `requests` is what the CPU is divided by.
    pub fn finish(&self, requests: u64) -> Option<ServerUsage> {
        let after = self
            .pids
            .iter()
            .map(|&pid| sample(pid))
            .collect::<Option<Vec<_>>>()?;
        let wall_secs = self.start.elapsed().as_secs_f64();
        let cpu_secs: f64 = after
            .iter()
            .zip(&self.before)
            .map(|(a, b)| a.cpu.saturating_sub(b.cpu).as_secs_f64())
            .sum();
        Some(ServerUsage {
            processes: self.pids.len(),
            cpu_secs,
            wall_secs,
            cores_used: if wall_secs > 0.0 {
                cpu_secs / wall_secs
            } else {
                0.0
            },
            cpu_us_per_request: if requests > 0 {
                cpu_secs * 1e6 / requests as f64
            } else {
                0.0
            },
            rss_bytes_before: self.before.iter().map(|s| s.rss_bytes).sum(),
            rss_bytes_after: after.iter().map(|s| s.rss_bytes).sum(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let probe = ServerProbe::start(&[std::process::id()]).unwrap();
        let usage = probe.finish(10).unwrap();
        assert_eq!(usage.processes, 1);
        assert!(usage.rss_bytes_after > 0);
        assert!(sample(u32::MAX).is_none());
    }
}
