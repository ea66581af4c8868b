//! The storage fuzz targets (WAL segments, snapshot files, MVCC snapshot
//! chunks; raw and with checksums recomputed) over the committed corpus
//! (`tests/corpus/<target>/`) and a seeded mutation loop: no panic,
//! allocation within the budget derived from the limits, recovery
//! repeatable, snapshot round trips exact.
//!
//! `CAIRN_FUZZ_ITERS` sets the mutations per target (default 20 000),
//! `CAIRN_FUZZ_SEED` the seed; `CAIRN_FUZZ_WRITE_CORPUS=1` rewrites the
//! committed corpus from the seed builders.

mod fuzz_targets;
#[path = "../../wire/tests/fuzz_util/mod.rs"]
mod fuzz_util;

use std::path::PathBuf;

#[global_allocator]
static ALLOC: fuzz_util::CountingAlloc = fuzz_util::CountingAlloc;

const ITERS_DEFAULT: usize = 20_000;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("corpus")
        .join(target)
}

fn run(
    name: &str,
    corpus: &str,
    seeds: fn() -> Vec<Vec<u8>>,
    budget: fn(usize) -> usize,
    target: fn(&[u8]),
) {
    let dir = corpus_dir(corpus);
    let name = name.to_string();
    // Run on a thread of our own: the target's executor lives in a
    // thread-local and the allocation count is per thread. Building the
    // seeds first also makes the executor (and its I/O memory) before any
    // input is measured.
    std::thread::spawn(move || {
        let seeds = seeds();
        fuzz_util::maybe_write_corpus(&dir, &seeds);
        let s = fuzz_util::run(&name, &dir, seeds, ITERS_DEFAULT, budget, target);
        assert!(s.inputs > 0);
    })
    .join()
    .expect("fuzz thread");
}

#[test]
fn wal_segment_target() {
    run(
        "wal_segment",
        "wal_segment",
        fuzz_targets::wal_seeds,
        fuzz_targets::wal_budget_bytes,
        fuzz_targets::wal_segment,
    );
}

#[test]
fn wal_segment_resealed_target() {
    run(
        "wal_segment_resealed",
        "wal_segment",
        fuzz_targets::wal_seeds,
        fuzz_targets::wal_budget_bytes,
        fuzz_targets::wal_segment_resealed,
    );
}

#[test]
fn snap_file_target() {
    run(
        "snap_file",
        "snap_file",
        fuzz_targets::snap_seeds,
        fuzz_targets::snap_budget_bytes,
        fuzz_targets::snap_file,
    );
}

#[test]
fn snap_file_resealed_target() {
    run(
        "snap_file_resealed",
        "snap_file",
        fuzz_targets::snap_seeds,
        fuzz_targets::snap_budget_bytes,
        fuzz_targets::snap_file_resealed,
    );
}

#[test]
fn the_seeds_are_accepted_whole() {
    // The corpus is only useful if it reaches the deep paths: every seed
    // recovers (the targets then check the round trips on it).
    std::thread::spawn(|| {
        for s in fuzz_targets::wal_seeds() {
            fuzz_targets::wal_segment(&s);
            let mut resealed = s.clone();
            fuzz_targets::reseal_wal_segment(&mut resealed);
            assert_eq!(resealed, s, "resealing a valid segment changes it");
        }
        for s in fuzz_targets::snap_seeds() {
            let mut resealed = s.clone();
            fuzz_targets::reseal_snap_file(&mut resealed);
            assert_eq!(resealed, s, "resealing a valid snapshot changes it");
        }
    })
    .join()
    .expect("seed thread");
}
