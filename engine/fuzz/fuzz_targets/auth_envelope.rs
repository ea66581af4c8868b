//! libFuzzer target `auth_envelope`: a log envelope's auth section (see `src/auth.rs`).
#![no_main]

use cairn_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(
    init: { auth::maybe_write_seeds("auth_envelope", &auth::envelope_seeds()); },
    |data: &[u8]| check("auth_envelope", data, auth::envelope_budget_bytes, auth::envelope)
);
