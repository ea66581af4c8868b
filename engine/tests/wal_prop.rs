//! Property test: random sequences of appends (including overwrites of the
//! log's tail, as a Raft follower does), syncs, crashes and reopens keep
//! Raft's log semantics: the recovered log is the replay of a prefix of what
//! was appended that holds everything synced.

mod wal_util;

use std::path::Path;

use cairn_engine::io::MemFs;
use cairn_engine::wal::{self, HardState, Recovered, WalOptions};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use wal_util::{check_prefix, records, Rec};

#[derive(Debug, Clone)]
enum Op {
    /// Entries starting `back` before the next index (0 = plain append),
    /// `count` of them, in a new term if `new_term`.
    Entries {
        back: u8,
        count: u8,
        new_term: bool,
        len: u16,
    },
    Commit,
    Sync,
    Crash(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, 1u8..6, any::<bool>(), 0u16..3000).prop_map(|(back, count, new_term, len)| Op::Entries {
            back,
            count,
            new_term,
            len
        }),
        1 => Just(Op::Commit),
        2 => Just(Op::Sync),
        1 => any::<u64>().prop_map(Op::Crash),
    ]
}

fn opts() -> WalOptions {
    WalOptions {
        segment_bytes: 40 * 1024,
        batch_bytes_max: 8 * 1024,
        batch_queue_max: 2,
    }
}

async fn run_ops(ops: Vec<Op>) -> Result<(), String> {
    let fs = MemFs::new();
    let dir = Path::new("/d/member/wal");
    let mut live = fs.reopen();
    let (mut log, mut base) = wal::open(live.clone(), dir, opts())
        .await
        .map_err(|e| e.to_string())?;
    let mut appended: Vec<Rec> = Vec::new();
    let mut synced = 0;
    let mut term = 1;
    for op in ops {
        let last = last_index(&base, &appended);
        match op {
            Op::Entries {
                back,
                count,
                new_term,
                len,
            } => {
                if new_term {
                    term += 1;
                }
                let start = (last + 1)
                    .saturating_sub(back as u64)
                    .max(base.snapshot.index + 1);
                let recs: Vec<Rec> = (0..count as u64)
                    .map(|i| Rec::Entry {
                        index: start + i,
                        term,
                        kind: 1,
                        payload: vec![(start + i) as u8; len as usize + i as usize],
                    })
                    .collect();
                log.append(&records(&recs))
                    .await
                    .map_err(|e| e.to_string())?;
                appended.extend(recs);
            }
            Op::Commit => {
                let r = Rec::Hs(HardState {
                    term,
                    vote: 1,
                    commit: last,
                });
                log.append(&records(std::slice::from_ref(&r)))
                    .await
                    .map_err(|e| e.to_string())?;
                appended.push(r);
            }
            Op::Sync => {
                log.sync().await.map_err(|e| e.to_string())?;
                synced = appended.len();
            }
            Op::Crash(seed) => {
                drop(log);
                live.crash(&mut ChaCha8Rng::seed_from_u64(seed));
                live = fs.reopen();
                let (l, got) = wal::open(live.clone(), dir, opts())
                    .await
                    .map_err(|e| e.to_string())?;
                check_prefix(&base, &appended, synced, &got, 0)?;
                check_log_shape(&got)?;
                log = l;
                base = got;
                appended.clear();
                synced = 0;
            }
        }
    }
    log.sync().await.map_err(|e| e.to_string())?;
    drop(log);
    let (_l, got) = wal::open(fs.reopen(), dir, opts())
        .await
        .map_err(|e| e.to_string())?;
    let n = check_prefix(&base, &appended, appended.len(), &got, 0)?;
    if n != appended.len() {
        return Err("a clean shutdown lost records".into());
    }
    check_log_shape(&got)
}

fn last_index(base: &Recovered, appended: &[Rec]) -> u64 {
    let mut r = wal::Replay::from_state(base.clone());
    for a in appended {
        a.apply(&mut r);
    }
    r.state.last_index()
}

/// Entries are contiguous and their terms never decrease.
fn check_log_shape(r: &Recovered) -> Result<(), String> {
    for w in r.entries.windows(2) {
        if w[1].index != w[0].index + 1 || w[1].term < w[0].term {
            return Err(format!(
                "bad log: {:?} then {:?}",
                (w[0].index, w[0].term),
                (w[1].index, w[1].term)
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn overwrites_crashes_and_reopens_keep_raft_log_semantics(ops in proptest::collection::vec(op(), 1..60)) {
        let res = wal_util::run(move || run_ops(ops));
        prop_assert!(res.is_ok(), "{}", res.unwrap_err());
    }
}
