//! libFuzzer drivers for cairn's fuzz targets.
//!
//! The targets are the same plain `fn(&[u8])`s that the stable test suite
//! runs over the committed corpus (`wire/tests/fuzz_targets/`,
//! `engine/tests/fuzz_targets/`); they are compiled in here unchanged, so a
//! property checked by `cargo test` is checked by libFuzzer and the other
//! way round. The auth targets ([`auth`]) call the functions that
//! `engine/tests/fuzz_auth.rs` mutates inputs for.
//!
//! Each binary in `fuzz_targets/` wraps one target in [`check`]: besides
//! panicking on a broken property, an input whose peak heap use exceeds the
//! target's budget (the same budget the stable harness enforces, counted by
//! the same counting allocator) is a crash, so a length field that makes a
//! parser reserve what was announced rather than what was sent is found.

#[path = "../../../wire/tests/fuzz_targets/mod.rs"]
pub mod wire_targets;

#[path = "../../tests/fuzz_targets/mod.rs"]
pub mod storage_targets;

#[path = "../../../wire/tests/fuzz_util/mod.rs"]
pub mod fuzz_util;

pub mod auth;

pub use fuzz_util::CountingAlloc;

/// Runs `target` on `data` and panics (a libFuzzer crash) when its peak
/// allocation exceeds `budget(data.len())`. The binary's global allocator
/// must be [`CountingAlloc`], or nothing is counted.
pub fn check(name: &str, data: &[u8], budget: fn(usize) -> usize, target: fn(&[u8])) {
    let ((), peak) = fuzz_util::peak_bytes(|| target(data));
    let allowed = budget(data.len());
    assert!(
        peak <= allowed,
        "{name}: an input of {} bytes allocated {peak} bytes at peak, over its budget of {allowed}",
        data.len()
    );
}

/// Makes the storage targets' executor before the first input, so that its
/// own allocations are not charged to that input.
pub fn init_storage() {
    storage_targets::block_on(async {});
}
