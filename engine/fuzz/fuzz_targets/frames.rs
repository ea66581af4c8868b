//! libFuzzer target `frames`: a client byte stream and one frame body through the frame decoder and every message verifier (see `wire/tests/fuzz_targets/`).
#![no_main]

use cairn_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(
    init: {},
    |data: &[u8]| check("frames", data, wire_targets::frames_budget_bytes, wire_targets::frames)
);
