//! Measures the MVCC index on one core: puts, point gets, 1000-key ranges,
//! resident memory per key, snapshot and restore time.
//!
//! `cargo run --release -p cairn-engine --example mvcc_bench [keys]`
//! (default 1,000,000 keys of 8 bytes with 256-byte values).

use std::time::Instant;

use cairn_engine::limits::MVCC_SNAPSHOT_CHUNK_BYTES_DEFAULT;
use cairn_engine::mvcc::{Mvcc, MvccConfig, PutRequest, RangeRequest};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const VALUE_BYTES: usize = 256;

/// Resident set size in bytes, from /proc/self/statm (pages × 4 KiB).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A fixed pseudo-random permutation step (SplitMix64), so runs repeat.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// CPU seconds this thread has used (user + system), from
/// /proc/thread-self/stat, in clock ticks of 10 ms. On a busy machine this
/// is a fairer measure of the index's own cost than wall time.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Wall clock and thread CPU time at the start of a phase.
struct Phase {
    wall: Instant,
    cpu: f64,
}

fn start() -> Phase {
    Phase {
        wall: Instant::now(),
        cpu: cpu_secs(),
    }
}

fn secs(p: &Phase) -> String {
    format!(
        "{:.3} s wall, {:.2} s cpu",
        p.wall.elapsed().as_secs_f64(),
        cpu_secs() - p.cpu
    )
}

fn rate(n: usize, p: &Phase) -> String {
    let wall = p.wall.elapsed().as_secs_f64();
    let cpu = (cpu_secs() - p.cpu).max(0.01);
    format!(
        "{:>10.0}/s wall {:>10.0}/s cpu  ({wall:.3} s wall)",
        n as f64 / wall,
        n as f64 / cpu
    )
}

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let n = keys as usize;
    // Insert in a shuffled order: keys are the big-endian numbers 0..n, so a
    // run of 1000 consecutive numbers is a 1000-key range.
    let mut order: Vec<u64> = (0..keys).collect();
    for i in (1..order.len()).rev() {
        let j = (mix(i as u64) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let value = [0x5au8; VALUE_BYTES];

    let rss_before = rss_bytes();
    let mut m = Mvcc::new(MvccConfig::default());
    let t = start();
    for &k in &order {
        let key = k.to_be_bytes();
        let applied = m
            .put(&PutRequest {
                key: &key,
                value: &value,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("put failed: {e}"));
        std::hint::black_box(applied);
    }
    println!("insert {n} keys (events on)   {}", rate(n, &t));
    let rss_after = rss_bytes();
    let logical = (8 + VALUE_BYTES) as f64;
    let per_key = (rss_after - rss_before) as f64 / n as f64;
    println!(
        "resident memory               {:.0} B/key for {:.0} logical B/key = {:.2}x (size_bytes {} MiB)",
        per_key,
        logical,
        per_key / logical,
        m.size_bytes() >> 20
    );

    let t = start();
    let mut found = 0usize;
    for i in 0..keys {
        let key = (mix(i) % keys).to_be_bytes();
        let r = m
            .range(&RangeRequest {
                key: &key,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("get failed: {e}"));
        found += r.kvs.len();
    }
    assert_eq!(found, n);
    println!("point gets                    {}", rate(n, &t));

    let ranges = 10_000usize.min(n / 1000 + 1);
    let t = start();
    let mut got = 0usize;
    for i in 0..ranges as u64 {
        let start = mix(i) % keys.saturating_sub(1000).max(1);
        let (from, to) = (start.to_be_bytes(), (start + 1000).to_be_bytes());
        let r = m
            .range(&RangeRequest {
                key: &from,
                range_end: &to,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("range failed: {e}"));
        got += r.kvs.len();
    }
    println!(
        "1000-key ranges               {}  ({:.0} keys/range)",
        rate(ranges, &t),
        got as f64 / ranges as f64
    );

    let t = start();
    let hash = m.hash_kv(0).unwrap_or_else(|e| panic!("hash failed: {e}"));
    println!("hash_kv                       {}", secs(&t));

    let t = start();
    let mut snap = m
        .snapshot_begin(0)
        .unwrap_or_else(|e| panic!("snapshot failed: {e}"));
    let mut chunks = Vec::new();
    while let Some(chunk) = m.snapshot_chunk(&mut snap, MVCC_SNAPSHOT_CHUNK_BYTES_DEFAULT) {
        chunks.push(chunk);
    }
    drop(snap);
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    println!(
        "snapshot                      {}, {} chunks, {} MiB",
        secs(&t),
        chunks.len(),
        bytes >> 20
    );
    let t = start();
    let restored = Mvcc::restore(MvccConfig::default(), &chunks)
        .unwrap_or_else(|e| panic!("restore failed: {e}"));
    println!("restore {n} keys          {}", secs(&t));
    assert_eq!(restored.hash_kv(0), Ok(hash));
    drop(restored);
    drop(chunks);

    let t = start();
    for i in 0..keys {
        let key = (mix(i ^ 0xabcd) % keys).to_be_bytes();
        let applied = m
            .put(&PutRequest {
                key: &key,
                value: &value,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("put failed: {e}"));
        std::hint::black_box(applied);
    }
    println!("overwrite puts (prev_kv on)   {}", rate(n, &t));
    m.set_event_prev_kv(false);
    let t = start();
    for i in 0..keys {
        let key = (mix(i ^ 0x1234) % keys).to_be_bytes();
        let applied = m
            .put(&PutRequest {
                key: &key,
                value: &value,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("put failed: {e}"));
        std::hint::black_box(applied);
    }
    println!("overwrite puts (prev_kv off)  {}", rate(n, &t));
    let t = start();
    m.compact(m.current_revision())
        .unwrap_or_else(|e| panic!("compact failed: {e}"));
    println!("compact {} versions      {}", 2 * n, secs(&t));
}
