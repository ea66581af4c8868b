//! The load generator's own CPU use. The harness usually shares a small
//! machine with the servers it measures; if it burns most of a core, the
//! figures may say more about the client than about the server.

use std::time::Duration;

/// Cores' worth of CPU (user + system) above which a run is flagged as
/// possibly client-bound: most of one core of a 2-core machine.
pub const CLIENT_BOUND_CORES: f64 = 0.75;

/// CPU time this process has used so far (user + system), or `None` where
/// `getrusage` fails (it does not on Linux).
pub fn process_cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer we pass,
    // which points to properly sized and aligned memory.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0 means the kernel filled the struct; it was zeroed
    // before in any case.
    let usage = unsafe { usage.assume_init() };
    Some(timeval(usage.ru_utime) + timeval(usage.ru_stime))
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

/// The client's CPU use over a run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ClientCpu {
    /// CPU seconds used by the harness during the run (warm-up included).
    pub cpu_secs: f64,
    /// Wall-clock seconds of the run (warm-up included).
    pub wall_secs: f64,
    /// `cpu_secs / wall_secs`: how many cores the harness kept busy.
    pub cores_used: f64,
    /// CPU microseconds per request sent (warm-up included).
    pub cpu_us_per_request: f64,
    /// Whether `cores_used` reached [`CLIENT_BOUND_CORES`].
    pub client_bound: bool,
}

impl ClientCpu {
    pub fn new(cpu: Duration, wall: Duration, requests: u64) -> ClientCpu {
        let cpu_secs = cpu.as_secs_f64();
        let wall_secs = wall.as_secs_f64();
        let cores_used = if wall_secs > 0.0 {
            cpu_secs / wall_secs
        } else {
            0.0
        };
        let cpu_us_per_request = if requests > 0 {
            cpu_secs * 1e6 / requests as f64
        } else {
            0.0
        };
        ClientCpu {
            cpu_secs,
            wall_secs,
            cores_used,
            cpu_us_per_request,
            client_bound: cores_used >= CLIENT_BOUND_CORES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_client_is_flagged() {
        let busy = ClientCpu::new(Duration::from_secs(9), Duration::from_secs(10), 90_000);
        assert!(busy.client_bound);
        assert!((busy.cpu_us_per_request - 100.0).abs() < 1e-9);
        let idle = ClientCpu::new(Duration::from_secs(1), Duration::from_secs(10), 0);
        assert!(!idle.client_bound);
        assert_eq!(idle.cpu_us_per_request, 0.0);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu_time().unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(process_cpu_time().unwrap() > before);
    }
}
