//! Step trace: a timestamp at each step a write takes through the server,
//! for finding where the time of a request goes (docs/perf.md, "Where the
//! time goes"; `scripts/step-trace` builds, runs and summarises it).
//!
//! It exists only with the `step-trace` cargo feature. Without it every
//! mark is an empty inline function: release builds carry no code and no
//! clock read. With it, marks are recorded only if `CAIRN_STEP_TRACE_DIR`
//! names a directory when the process starts; each executor keeps its marks
//! in memory (at most [`MARKS_MAX`], later ones are dropped) and writes them
//! to `<dir>/<pid>-<executor>.txt` when it stops, one line per mark:
//! `<µs of wall-clock time> <step> <count>`. Wall-clock time, so that the
//! files of the members of a local cluster can be merged.
//!
//! The steps, in [`STEPS`]:
//!
//! | step | where | count |
//! |---|---|---|
//! | `read` | a connection read request frames and hands them to the shard | frames |
//! | `propose` | the shard proposes the writes it has taken | writes |
//! | `wal-write` | the WAL's flusher starts a batch's durable write | bytes |
//! | `wal-durable` | that batch is durable | bytes |
//! | `apply` | the shard starts applying a Ready's committed entries | entries |
//! | `answer` | a connection starts writing answers to its socket | answers |
//! | `peer-send` | a peer connection starts writing a batch of Raft messages | bytes |
//! | `peer-recv` | a peer connection read Raft message bytes | bytes |

/// Every step name, in the order a write meets them.
pub const STEPS: [&str; 8] = [
    "read",
    "propose",
    "wal-write",
    "wal-durable",
    "apply",
    "answer",
    "peer-send",
    "peer-recv",
];

/// The environment variable naming the directory the traces go to.
pub const ENV_VAR: &str = "CAIRN_STEP_TRACE_DIR";

/// Marks an executor keeps; a long run keeps its first ones.
pub const MARKS_MAX: usize = 1 << 21;

/// Records that `step` happened now, for `count` items.
#[cfg(not(feature = "step-trace"))]
#[inline(always)]
pub fn mark(_step: &'static str, _count: u64) {}

/// Writes this executor's marks out (when it stops).
#[cfg(not(feature = "step-trace"))]
#[inline(always)]
pub fn write_out(_executor: usize) {}

/// Records that `step` happened now, for `count` items.
#[cfg(feature = "step-trace")]
pub fn mark(step: &'static str, count: u64) {
    traced::mark(step, count);
}

/// Writes this executor's marks to `<dir>/<pid>-<executor>.txt`.
#[cfg(feature = "step-trace")]
pub fn write_out(executor: usize) {
    traced::write_out(executor);
}

#[cfg(feature = "step-trace")]
mod traced {
    use std::cell::RefCell;
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::OnceLock;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn dir() -> Option<&'static PathBuf> {
        static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
        DIR.get_or_init(|| std::env::var_os(super::ENV_VAR).map(PathBuf::from))
            .as_ref()
    }

    thread_local! {
        static MARKS: RefCell<Vec<(u64, &'static str, u64)>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn mark(step: &'static str, count: u64) {
        if dir().is_none() {
            return;
        }
        let us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        MARKS.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() < super::MARKS_MAX {
                m.push((us, step, count));
            }
        });
    }

    pub(super) fn write_out(executor: usize) {
        let Some(dir) = dir() else { return };
        let path = dir.join(format!("{}-{executor}.txt", std::process::id()));
        let marks = MARKS.with(|m| std::mem::take(&mut *m.borrow_mut()));
        let written = std::fs::File::create(&path).and_then(|f| {
            let mut out = std::io::BufWriter::new(f);
            for (us, step, count) in marks {
                writeln!(out, "{us} {step} {count}")?;
            }
            out.flush()
        });
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), "cannot write the step trace: {e}");
        }
    }
}

#[cfg(all(test, feature = "step-trace"))]
mod tests {
    #[test]
    fn marks_are_written_per_executor_in_order() {
        let dir = std::env::temp_dir().join(format!("steptrace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // The directory is read once per process: this test is the only
        // one that sets it.
        std::env::set_var(super::ENV_VAR, &dir);
        super::mark("read", 10);
        super::mark("propose", 10);
        super::write_out(7);
        let text = std::fs::read_to_string(dir.join(format!("{}-7.txt", std::process::id())))
            .expect("trace file");
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(&lines[0][1..], ["read", "10"]);
        assert_eq!(&lines[1][1..], ["propose", "10"]);
        let t0: u64 = lines[0][0].parse().expect("µs");
        let t1: u64 = lines[1][0].parse().expect("µs");
        assert!(t0 <= t1);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
