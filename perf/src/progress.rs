//! A one-line progress indicator, drawn on standard error only when standard
//! output is a terminal (so redirected or piped output stays clean).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::{Progress, Stop};
use crate::limits::PROGRESS_INTERVAL_MS;

/// A running indicator; dropping it (or [`Indicator::finish`]) clears it.
pub struct Indicator {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Indicator {
    /// Starts drawing `label` and the counts of `progress` if standard output
    /// is a terminal; otherwise does nothing.
    pub fn start(label: String, progress: Arc<Progress>, stop: Stop) -> Indicator {
        if !std::io::stdout().is_terminal() {
            return Indicator { task: None };
        }
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(PROGRESS_INTERVAL_MS));
            loop {
                ticks.tick().await;
                let measured = progress.measured_sent.load(Ordering::Relaxed);
                let done = progress.completed.load(Ordering::Relaxed);
                let elapsed = started.elapsed().as_secs_f64();
                let goal = match stop {
                    Stop::Total(total) => format!("{}/{total}", measured.min(total)),
                    Stop::Duration(d) => format!("{measured} ({:.0}s window)", d.as_secs_f64()),
                };
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[2K{label}: {goal} measured, {done} completed, {elapsed:.1}s"
                );
                let _ = err.flush();
            }
        });
        Indicator { task: Some(task) }
    }

    /// Stops drawing and clears the line.
    pub fn finish(mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

impl Drop for Indicator {
    fn drop(&mut self) {
        self.clear();
    }
}
