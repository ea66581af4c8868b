//! Failpoints: named places in the server where a test can make the
//! process die, to check that what was acknowledged survives a crash at
//! exactly that point (the places etcd's robustness tests use).
//!
//! They exist only with the `failpoints` cargo feature. Without it every
//! hook is an empty inline function: release builds carry no code, no
//! lookup and no environment read.
//!
//! Armed through the environment of the process:
//!
//! ```text
//! CAIRN_FAILPOINTS="wal-after-save=panic@3"          die on the 3rd hit
//! CAIRN_FAILPOINTS="apply-before=panic;snap-after-save=sleep(500)"
//! ```
//!
//! Each entry is `name=action[@n]`, entries separated by `;`. Actions:
//! `panic` (print `failpoint <name> hit`, then abort the process: a panic
//! must not unwind into half-updated state, and an abort is what a crash
//! looks like to the disk), and `sleep(<ms>)` (block the executor, for
//! timing-sensitive tests). Without `@n` the action fires on the first
//! hit; with it, on the n-th hit only.
//!
//! The points, in [`POINTS`]:
//!
//! | name | where |
//! |---|---|
//! | `wal-before-save` | a Raft ready's entries and hard state are about to be appended to the WAL |
//! | `wal-after-save` | they are durable; the messages depending on them are not sent yet |
//! | `apply-before` | a committed entry is about to be applied |
//! | `apply-after` | it was applied; its answer is not sent yet |
//! | `snap-before-save` | a snapshot file is about to be created (own snapshots and ones received) |
//! | `snap-after-save` | it is complete and durable under its final name |
//! | `snap-before-install` | a snapshot from the leader is about to replace the state machine |
//! | `snap-after-install` | it replaced it and its WAL marker is durable |
//! | `compact-during` | a compaction is being applied: after the request was decided, before the index is trimmed |

/// Every failpoint name, for tests that iterate over them.
pub const POINTS: [&str; 9] = [
    "wal-before-save",
    "wal-after-save",
    "apply-before",
    "apply-after",
    "snap-before-save",
    "snap-after-save",
    "snap-before-install",
    "snap-after-install",
    "compact-during",
];

/// The environment variable that arms failpoints.
pub const ENV_VAR: &str = "CAIRN_FAILPOINTS";

/// Marks the failpoint `name`. Does nothing unless the `failpoints`
/// feature is on and the environment armed it.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &'static str) {}

/// Marks the failpoint `name`: runs its action if the environment armed it.
#[cfg(feature = "failpoints")]
pub fn hit(name: &'static str) {
    armed::hit(name);
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Action {
        Panic,
        SleepMs(u64),
    }

    pub(super) struct Armed {
        name: String,
        action: Action,
        /// Fire on this hit only (1-based); 0: on the first.
        on_hit: u64,
        hits: AtomicU64,
    }

    static ARMED: OnceLock<Vec<Armed>> = OnceLock::new();

    /// Parses `CAIRN_FAILPOINTS`. A malformed entry is a bug in the test
    /// that set it, so it stops the process with the reason.
    pub(super) fn parse(spec: &str) -> Result<Vec<Armed>, String> {
        let mut out = Vec::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, rest) = entry
                .split_once('=')
                .ok_or_else(|| format!("failpoint entry {entry:?} has no '='"))?;
            if !super::POINTS.contains(&name) {
                return Err(format!("unknown failpoint {name:?}"));
            }
            let (action, on_hit) = match rest.split_once('@') {
                Some((a, n)) => (
                    a,
                    n.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("bad hit count in {entry:?}"))?,
                ),
                None => (rest, 0),
            };
            let action = if action == "panic" {
                Action::Panic
            } else if let Some(ms) = action
                .strip_prefix("sleep(")
                .and_then(|s| s.strip_suffix(')'))
            {
                Action::SleepMs(ms.parse().map_err(|_| format!("bad sleep in {entry:?}"))?)
            } else {
                return Err(format!("unknown failpoint action in {entry:?}"));
            };
            out.push(Armed {
                name: name.to_string(),
                action,
                on_hit,
                hits: AtomicU64::new(0),
            });
        }
        Ok(out)
    }

    fn armed() -> &'static [Armed] {
        ARMED.get_or_init(|| match std::env::var(super::ENV_VAR) {
            Ok(spec) => parse(&spec).unwrap_or_else(|e| {
                eprintln!("{}: {e}", super::ENV_VAR);
                std::process::exit(2)
            }),
            Err(_) => Vec::new(),
        })
    }

    pub(super) fn hit(name: &'static str) {
        for a in armed().iter().filter(|a| a.name == name) {
            let n = a.hits.fetch_add(1, Ordering::SeqCst) + 1;
            if a.on_hit != 0 && a.on_hit != n {
                continue;
            }
            if a.on_hit == 0 && n != 1 {
                continue;
            }
            match a.action {
                Action::Panic => {
                    eprintln!("failpoint {name} hit (hit {n}): stopping the process");
                    std::process::abort();
                }
                Action::SleepMs(ms) => std::thread::sleep(std::time::Duration::from_millis(ms)),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn specs_parse_and_bad_ones_are_refused() {
            let a = parse("wal-after-save=panic@3; apply-before=sleep(20)").unwrap();
            assert_eq!(a.len(), 2);
            assert_eq!((a[0].action, a[0].on_hit), (Action::Panic, 3));
            assert_eq!((a[1].action, a[1].on_hit), (Action::SleepMs(20), 0));
            assert!(parse("no-such-point=panic").is_err());
            assert!(parse("apply-before=explode").is_err());
            assert!(parse("apply-before=panic@0").is_err());
            assert!(parse("apply-before").is_err());
        }
    }
}
