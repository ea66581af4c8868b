//! Helpers shared by the WAL, snapshot and I/O tests.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_engine::wal::{HardState, Record, Recovered, Replay, SnapshotMarker};

/// Flips the bits of `mask` in the byte at `at` of the file `path`.
pub fn flip_byte(path: &std::path::Path, at: u64, mask: u8) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_at(&mut b, at).unwrap();
    f.write_at(&[b[0] ^ mask], at).unwrap();
}

/// Runs `f` on a fresh glommio executor (not pinned: tests run in parallel).
pub fn run<G, Fut, T>(f: G) -> T
where
    G: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .expect("spawn executor")
        .join()
        .expect("executor thread")
}

static CURRENT_SEED: AtomicU64 = AtomicU64::new(u64::MAX);

/// Seeds to run: `CAIRN_WAL_SEED=n` replays one, `CAIRN_WAL_SEEDS=N` runs N
/// (default `default`). A panic prints the seed being run.
pub fn seeds(default: u64) -> Vec<u64> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let seed = CURRENT_SEED.load(Ordering::SeqCst);
        if seed != u64::MAX {
            eprintln!("FAILED at seed {seed}: replay with CAIRN_WAL_SEED={seed}");
        }
        hook(info)
    }));
    if let Ok(s) = std::env::var("CAIRN_WAL_SEED") {
        return vec![s.parse().expect("CAIRN_WAL_SEED is a number")];
    }
    let n = std::env::var("CAIRN_WAL_SEEDS")
        .ok()
        .map(|s| s.parse().expect("CAIRN_WAL_SEEDS is a number"))
        .unwrap_or(default);
    (0..n).collect()
}

pub fn set_seed(seed: u64) {
    CURRENT_SEED.store(seed, Ordering::SeqCst);
}

/// A record that owns its payload, for models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    Entry {
        index: u64,
        term: u64,
        kind: u8,
        payload: Vec<u8>,
    },
    Hs(HardState),
    Snap(SnapshotMarker),
}

impl Rec {
    pub fn as_record(&self) -> Record<'_> {
        match self {
            Rec::Entry {
                index,
                term,
                kind,
                payload,
            } => Record::Entry {
                index: *index,
                term: *term,
                kind: *kind,
                payload,
            },
            Rec::Hs(h) => Record::HardState(*h),
            Rec::Snap(s) => Record::Snapshot(*s),
        }
    }

    pub fn apply(&self, r: &mut Replay) {
        match self {
            Rec::Entry {
                index,
                term,
                kind,
                payload,
            } => r
                .entry(cairn_engine::wal::Entry {
                    index: *index,
                    term: *term,
                    kind: *kind,
                    payload: payload.clone(),
                })
                .expect("model entries are contiguous"),
            Rec::Hs(h) => r.hard_state(*h),
            Rec::Snap(s) => r.snapshot(*s),
        }
    }
}

pub fn records(recs: &[Rec]) -> Vec<Record<'_>> {
    recs.iter().map(Rec::as_record).collect()
}

/// Whether `got` equals `want`, except that `got` may lack entries at or
/// before `released` (their segments were released): its entries must be a
/// suffix of `want`'s holding every entry after `released`.
pub fn same_state(want: &Recovered, got: &Recovered, released: u64) -> bool {
    if want.hard_state != got.hard_state || want.snapshot != got.snapshot {
        return false;
    }
    if got.entries.len() > want.entries.len() {
        return false;
    }
    let skip = want.entries.len() - got.entries.len();
    if want.entries[skip..] != got.entries[..] {
        return false;
    }
    want.entries[..skip].iter().all(|e| e.index <= released)
}

/// Checks that `got` is what replaying `base` plus some prefix of `ops`
/// gives, and that the prefix holds at least the first `acked` ops.
pub fn check_prefix(
    base: &Recovered,
    ops: &[Rec],
    acked: usize,
    got: &Recovered,
    released: u64,
) -> Result<usize, String> {
    let mut r = Replay::from_state(base.clone());
    for (p, op) in ops.iter().enumerate() {
        if p >= acked && same_state(&r.state, got, released) {
            return Ok(p);
        }
        op.apply(&mut r);
    }
    if same_state(&r.state, got, released) {
        return Ok(ops.len());
    }
    Err(format!(
        "recovered state is no prefix of the appended records holding the {acked} acknowledged ones \
         (of {}): got hs {:?} snap {:?} {} entries (first {:?} last {:?}); all appended: hs {:?} snap {:?} \
         {} entries (first {:?} last {:?})",
        ops.len(),
        got.hard_state,
        got.snapshot,
        got.entries.len(),
        got.entries.first().map(|e| (e.index, e.term)),
        got.entries.last().map(|e| (e.index, e.term)),
        r.state.hard_state,
        r.state.snapshot,
        r.state.entries.len(),
        r.state.entries.first().map(|e| (e.index, e.term)),
        r.state.entries.last().map(|e| (e.index, e.term)),
    ))
}

/// Generates records that follow Raft's rules (terms grow, entries are
/// contiguous or overwrite a suffix, snapshot markers only move forward).
#[derive(Debug, Clone)]
pub struct Gen {
    pub last_index: u64,
    pub snap: SnapshotMarker,
    pub term: u64,
    pub payload_max: usize,
}

impl Gen {
    pub fn new(from: &Recovered) -> Gen {
        Gen {
            last_index: from.last_index(),
            snap: from.snapshot,
            term: from
                .hard_state
                .term
                .max(from.entries.last().map_or(0, |e| e.term))
                .max(1),
            payload_max: 600,
        }
    }

    pub fn next<R: rand::Rng>(&mut self, rng: &mut R) -> Vec<Rec> {
        let roll = rng.gen_range(0..100);
        let mut out = Vec::new();
        if roll < 80 {
            if rng.gen_bool(0.05) {
                self.term += 1;
            }
            let first = if rng.gen_bool(0.1) {
                rng.gen_range(self.snap.index + 1..=self.last_index + 1)
            } else {
                self.last_index + 1
            };
            let count = rng.gen_range(1..=4);
            for index in first..first + count {
                let len = if rng.gen_bool(0.02) {
                    rng.gen_range(0..=self.payload_max * 20)
                } else {
                    rng.gen_range(0..=self.payload_max)
                };
                let payload = (0..len).map(|_| rng.gen()).collect();
                out.push(Rec::Entry {
                    index,
                    term: self.term,
                    kind: rng.gen_range(0..3),
                    payload,
                });
                self.last_index = index;
            }
            if rng.gen_bool(0.3) {
                out.push(self.hard_state(rng));
            }
        } else if roll < 92 {
            out.push(self.hard_state(rng));
        } else {
            let index = if rng.gen_bool(0.2) {
                self.last_index + rng.gen_range(1..5)
            } else {
                rng.gen_range(self.snap.index..=self.last_index)
            };
            self.snap = SnapshotMarker {
                index,
                term: self.term,
            };
            self.last_index = self.last_index.max(index);
            out.push(Rec::Snap(self.snap));
        }
        out
    }

    fn hard_state<R: rand::Rng>(&mut self, rng: &mut R) -> Rec {
        Rec::Hs(HardState {
            term: self.term,
            vote: rng.gen_range(0..4),
            commit: rng.gen_range(0..=self.last_index),
        })
    }
}
