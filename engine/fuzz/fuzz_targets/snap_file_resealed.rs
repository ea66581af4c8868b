//! libFuzzer target `snap_file_resealed`: as `snap_file`, with every checksum recomputed first.
#![no_main]

use cairn_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(
    init: { init_storage(); },
    |data: &[u8]| check("snap_file_resealed", data, storage_targets::snap_budget_bytes, storage_targets::snap_file_resealed)
);
