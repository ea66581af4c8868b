//! The wire fuzz targets over the committed corpus (`tests/corpus/<target>/`)
//! and a seeded mutation loop: no panic, allocation within the budget
//! derived from the frame limits, streams split the same way however they
//! arrive, decoded puts round-trip.
//!
//! `CAIRN_FUZZ_ITERS` sets the mutations per target (default 20 000),
//! `CAIRN_FUZZ_SEED` the seed; `CAIRN_FUZZ_WRITE_CORPUS=1` rewrites the
//! committed corpus from the seed builders.

mod fuzz_targets;
mod fuzz_util;

use std::path::PathBuf;

#[global_allocator]
static ALLOC: fuzz_util::CountingAlloc = fuzz_util::CountingAlloc;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("corpus")
        .join(target)
}

/// Seeds for the `frames` target: one frame of each shape, a pipelined
/// stream of all of them, and a frame announcing more than the limit.
fn frames_seeds() -> Vec<Vec<u8>> {
    let mut seeds = fuzz_targets::seed_frames();
    seeds.push(seeds.concat());
    let mut oversized = (cairn_wire::limits::REQUEST_FRAME_BYTES_MAX_DEFAULT as u32 + 1)
        .to_le_bytes()
        .to_vec();
    oversized.extend_from_slice(&[0u8; 64]);
    seeds.push(oversized);
    seeds
}

#[test]
fn frames_target_survives_the_corpus_and_its_mutations() {
    let dir = corpus_dir("frames");
    fuzz_util::maybe_write_corpus(&dir, &frames_seeds());
    let s = fuzz_util::run(
        "frames",
        &dir,
        frames_seeds(),
        20_000,
        fuzz_targets::frames_budget_bytes,
        fuzz_targets::frames,
    );
    assert!(s.inputs > 0);
}

#[test]
fn a_frame_announcing_a_gigabyte_allocates_only_what_was_sent() {
    // The allocation check itself: a stream claiming 1 GiB, of which 100
    // bytes arrived, must cost far less than the claim.
    let mut data = (1u32 << 30).to_le_bytes().to_vec();
    data.extend_from_slice(&[7u8; 100]);
    let ((), peak) = fuzz_util::peak_bytes(|| fuzz_targets::frames(&data));
    assert!(
        peak <= fuzz_targets::frames_budget_bytes(data.len()),
        "{peak} bytes allocated"
    );
    // And the counter does count: a real allocation shows.
    let (v, peak) = fuzz_util::peak_bytes(|| vec![1u8; 1 << 20]);
    assert_eq!(v.len(), 1 << 20);
    assert!(peak >= 1 << 20, "the counting allocator missed 1 MiB");
}
