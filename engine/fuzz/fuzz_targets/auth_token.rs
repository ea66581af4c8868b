//! libFuzzer target `auth_token`: simple-token lookups (see `src/auth.rs`).
#![no_main]

use cairn_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(
    init: { auth::maybe_write_seeds("auth_token", &auth::token_seeds()); },
    |data: &[u8]| check("auth_token", data, auth::token_budget_bytes, auth::token_lookup)
);
