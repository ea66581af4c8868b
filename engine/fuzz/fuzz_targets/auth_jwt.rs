//! libFuzzer target `auth_jwt`: JWT verification and sign/verify round trips (see `src/auth.rs`).
#![no_main]

use cairn_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(
    init: { auth::maybe_write_seeds("auth_jwt", &auth::jwt_seeds()); },
    |data: &[u8]| check("auth_jwt", data, auth::jwt_budget_bytes, auth::jwt)
);
