//! The fuzz harness shared by the wire and engine fuzz tests.
//!
//! A fuzz target is a plain `fn(&[u8])` that panics when a property breaks.
//! [`run`] feeds it every file of a committed corpus directory, any seeds
//! built at run time, and then a seeded mutation loop over them: bit flips,
//! byte overwrites with boundary values, truncations, extensions, splices of
//! two inputs, and edits of 32-bit fields to boundary lengths (the fields
//! that make a parser allocate). `CAIRN_FUZZ_ITERS` sets the mutations per
//! target; `CAIRN_FUZZ_SEED` the seed. A failing input is written to
//! `target/fuzz-failures/<target>-<seed>-<iteration>.bin` and its name
//! printed, so it can be added to the corpus once fixed.
//!
//! Memory: the test binary's global allocator is [`CountingAlloc`], which
//! counts the bytes each thread has allocated and not freed. [`run`] resets
//! the count before each input and checks that the peak stays within the
//! target's budget — a function of the input length and named limits — so
//! a length field claiming gigabytes cannot make a parser reserve them.
//!
//! The same target functions can be driven by libFuzzer (`scripts/fuzz`).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

/// Counts live heap bytes per thread (and their peak), passing every call
/// to the system allocator.
pub struct CountingAlloc;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: allocations during thread teardown are not counted.
    let _ = LIVE_BYTES.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK_BYTES.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches
// only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` and returns its result and the peak of bytes allocated (and not
/// yet freed) on this thread while it ran, relative to the start.
pub fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE_BYTES.with(Cell::get);
    PEAK_BYTES.with(|p| p.set(base));
    let out = f();
    let peak = PEAK_BYTES.with(Cell::get) - base;
    (out, peak.max(0) as usize)
}

/// SplitMix64: small, seedable, no dependencies.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Byte values that sit on boundaries parsers get wrong.
const BOUNDARY_BYTES: [u8; 6] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

/// 32-bit values for length and count fields: empty, tiny, around the
/// input's own length, around powers of two, and the largest.
fn boundary_u32(rng: &mut Rng, len: usize) -> u32 {
    let len = len as u32;
    match rng.below(9) {
        0 => 0,
        1 => 1,
        2 => len,
        3 => len.wrapping_add(1),
        4 => len.wrapping_sub(1),
        5 => u32::MAX,
        6 => i32::MAX as u32,
        7 => 1u32 << rng.below(32),
        _ => (1u32 << rng.below(32)).wrapping_sub(1),
    }
}

/// Largest input the mutator produces: beyond this the loop spends its time
/// copying bytes rather than exploring.
pub const MUTATED_BYTES_MAX: usize = 256 * 1024;

/// One random mutation of `input`, possibly using `other` for a splice.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(8) {
            0 if !v.is_empty() => {
                let at = rng.below(v.len());
                v[at] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let at = rng.below(v.len());
                v[at] = BOUNDARY_BYTES[rng.below(BOUNDARY_BYTES.len())];
            }
            2 if !v.is_empty() => {
                let keep = rng.below(v.len());
                v.truncate(keep);
            }
            3 => {
                let n = 1 + rng.below(64);
                for _ in 0..n {
                    v.push(rng.next_u64() as u8);
                }
            }
            4 if !other.is_empty() => {
                // Splice: a prefix of this input, then a piece of the other.
                let cut = rng.below(v.len() + 1);
                let from = rng.below(other.len());
                let to = from + rng.below(other.len() - from) + 1;
                v.truncate(cut);
                v.extend_from_slice(&other[from..to]);
            }
            5 if v.len() >= 4 => {
                // A length or count field: overwrite an aligned u32.
                let at = rng.below(v.len() / 4) * 4;
                let len = v.len();
                v[at..at + 4].copy_from_slice(&boundary_u32(rng, len).to_le_bytes());
            }
            6 if v.len() >= 2 => {
                // Remove or duplicate a range.
                let a = rng.below(v.len());
                let b = a + rng.below((v.len() - a).min(64)) + 1;
                if rng.below(2) == 0 {
                    v.drain(a..b);
                } else {
                    let piece = v[a..b].to_vec();
                    v.splice(a..a, piece);
                }
            }
            _ if !v.is_empty() => {
                // Overwrite a few bytes with random ones.
                let at = rng.below(v.len());
                for slot in v.iter_mut().skip(at).take(1 + rng.below(8)) {
                    *slot = rng.next_u64() as u8;
                }
            }
            _ => v.push(rng.next_u64() as u8),
        }
    }
    v.truncate(MUTATED_BYTES_MAX);
    v
}

/// Mutations per target: `CAIRN_FUZZ_ITERS`, or `default`.
pub fn iterations(default: usize) -> usize {
    std::env::var("CAIRN_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("CAIRN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The files of a corpus directory, sorted by name.
pub fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
        .collect()
}

/// Writes `seeds` into `dir` as `seed-NNN.bin` when `CAIRN_FUZZ_WRITE_CORPUS`
/// is set: how the committed corpus is (re)generated.
pub fn maybe_write_corpus(dir: &Path, seeds: &[Vec<u8>]) {
    if std::env::var_os("CAIRN_FUZZ_WRITE_CORPUS").is_none() {
        return;
    }
    std::fs::create_dir_all(dir).expect("create corpus dir");
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}.bin")), s).expect("write corpus file");
    }
}

fn save_failure(name: &str, seed: u64, iter: usize, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{seed}-{iter}.bin"));
    let _ = std::fs::write(&path, input);
    path
}

/// What one run of a target did.
#[derive(Debug, Default)]
pub struct Summary {
    pub inputs: usize,
    pub peak_bytes_max: usize,
}

/// Runs `target` over the corpus in `corpus_dir`, then `extra` seeds, then
/// `default_iters` (or `CAIRN_FUZZ_ITERS`) mutations of them. Each input's
/// peak allocation must stay within `budget(input_len)`.
pub fn run(
    name: &str,
    corpus_dir: &Path,
    extra: Vec<Vec<u8>>,
    default_iters: usize,
    budget: impl Fn(usize) -> usize,
    mut target: impl FnMut(&[u8]),
) -> Summary {
    let mut pool = load_corpus(corpus_dir);
    pool.extend(extra);
    assert!(!pool.is_empty(), "{name}: empty corpus");
    let seed = seed();
    let mut rng = Rng::new(seed);
    let mut summary = Summary::default();
    let iters = iterations(default_iters);
    for i in 0..pool.len() + iters {
        let input = if i < pool.len() {
            pool[i].clone()
        } else {
            let a = rng.below(pool.len());
            let b = rng.below(pool.len());
            mutate(&mut rng, &pool[a], &pool[b])
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            peak_bytes(|| target(&input))
        }));
        let peak = match result {
            Ok(((), peak)) => peak,
            Err(panic) => {
                let path = save_failure(name, seed, i, &input);
                eprintln!(
                    "{name}: input {i} (seed {seed}) failed; saved to {}",
                    path.display()
                );
                std::panic::resume_unwind(panic);
            }
        };
        let allowed = budget(input.len());
        if peak > allowed {
            let path = save_failure(name, seed, i, &input);
            panic!(
                "{name}: input {i} of {} bytes (seed {seed}, saved to {}) allocated {peak} bytes at peak, over its budget of {allowed}",
                input.len(),
                path.display()
            );
        }
        summary.inputs += 1;
        summary.peak_bytes_max = summary.peak_bytes_max.max(peak);
    }
    eprintln!(
        "{name}: {} inputs, largest peak allocation {} bytes",
        summary.inputs, summary.peak_bytes_max
    );
    summary
}
