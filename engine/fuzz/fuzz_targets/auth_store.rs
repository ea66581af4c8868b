//! libFuzzer target `auth_store`: the auth store's snapshot encoding (see `src/auth.rs`).
#![no_main]

use cairn_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(
    init: { auth::maybe_write_seeds("auth_store", &auth::store_seeds()); },
    |data: &[u8]| check("auth_store", data, auth::store_budget_bytes, auth::store)
);
