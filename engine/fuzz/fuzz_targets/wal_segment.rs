//! libFuzzer target `wal_segment`: the only segment of a WAL directory, recovered (see `engine/tests/fuzz_targets/`).
#![no_main]

use cairn_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(
    init: { init_storage(); },
    |data: &[u8]| check("wal_segment", data, storage_targets::wal_budget_bytes, storage_targets::wal_segment)
);
