//! libFuzzer target `wal_segment_resealed`: as `wal_segment`, with every checksum recomputed first.
#![no_main]

use cairn_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(
    init: { init_storage(); },
    |data: &[u8]| check("wal_segment_resealed", data, storage_targets::wal_budget_bytes, storage_targets::wal_segment_resealed)
);
