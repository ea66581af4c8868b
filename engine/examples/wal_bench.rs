//! WAL throughput and latency: many concurrent appenders on one executor,
//! each appending one record and waiting until it is durable, over and over.
//! Also measures the physical floor: one bare 4 KiB O_DIRECT write +
//! fdatasync, into space reserved with `fallocate` and over blocks already
//! written once (what the WAL writes into, see `WAL_ZERO_AHEAD_BYTES`), and
//! one O_DSYNC write over written blocks (how the WAL makes a batch durable).
//!
//! ```text
//! cargo run --release -p cairn-engine --example wal_bench -- --dir /path/on/disk
//! ```

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_engine::io::{AlignedBuf, DmaFs, File, Fs};
use cairn_engine::wal::{self, Record, WalOptions};
use clap::Parser;
use hdrhistogram::Histogram;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Directory on the disk to measure; the runs use (and remove) its
    /// `wal/` and `floor/` subdirectories.
    #[arg(long)]
    dir: PathBuf,
    /// Appender counts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256,1024,4096")]
    appenders: Vec<usize>,
    /// Payload bytes per record.
    #[arg(long, default_value_t = 256)]
    record_bytes: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Write + fdatasync pairs for the floor measurement.
    #[arg(long, default_value_t = 2000)]
    floor_iters: usize,
}

fn fresh(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create bench dir");
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// What a floor measurement writes into, and how.
#[derive(Clone, Copy, PartialEq)]
enum Floor {
    /// write + fdatasync into space reserved with `fallocate`.
    Reserved,
    /// write + fdatasync over blocks written once before.
    Written,
    /// One O_DSYNC write over blocks written once before.
    WrittenDsync,
}

/// Latency of one bare O_DIRECT write of `len` bytes made durable, into a
/// file reserved with `fallocate` and, unless [`Floor::Reserved`], first
/// written in full with zeros.
async fn floor(dir: &Path, iters: usize, len: usize, how: Floor) -> Histogram<u64> {
    let d = dir.join("floor");
    fresh(&d);
    let fs = DmaFs::new(&d).await.expect("open dir");
    let path = d.join("floor.dat");
    let f = if how == Floor::WrittenDsync {
        fs.create_synced(&path).await
    } else {
        fs.create(&path).await
    }
    .expect("create");
    let written = how != Floor::Reserved;
    let total = (iters as u64 + 1) * len as u64;
    f.preallocate(total).await.expect("preallocate");
    if written {
        const CHUNK: u64 = 1 << 20;
        let mut at = 0;
        while at < total {
            let n = CHUNK.min(total - at);
            f.write_at(AlignedBuf::zeroed(n as usize), at)
                .await
                .expect("write zeros");
            at += n;
        }
    }
    f.fdatasync().await.expect("sync");
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for i in 0..iters {
        let mut b = AlignedBuf::zeroed(len);
        b.as_mut_slice()[0] = i as u8;
        let t = Instant::now();
        f.write_durable(b, (i * len) as u64).await.expect("write");
        h.record(t.elapsed().as_nanos() as u64).expect("record");
    }
    h
}

struct Run {
    durable_us: f64,
    records: u64,
    batches: u64,
    bytes: u64,
    secs: f64,
    lat: Histogram<u64>,
}

async fn run(args: &Args, appenders: usize) -> Run {
    let d = args.dir.join("wal");
    fresh(&d);
    let fs = DmaFs::new(&d).await.expect("open dir");
    let (log, _) = wal::open(fs, &d, WalOptions::default())
        .await
        .expect("open wal");
    let lat = Rc::new(RefCell::new(Histogram::<u64>::new(3).expect("histogram")));
    let next = Rc::new(Cell::new(1u64));
    let stop = Rc::new(Cell::new(false));
    let payload = Rc::new(vec![0xabu8; args.record_bytes]);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..appenders {
        let (log, lat, next, stop, payload) = (
            log.clone(),
            lat.clone(),
            next.clone(),
            stop.clone(),
            payload.clone(),
        );
        tasks.push(glommio::spawn_local(async move {
            while !stop.get() {
                log.reserve().await.expect("reserve");
                let index = next.get();
                let t = Instant::now();
                let rec = Record::Entry {
                    index,
                    term: 1,
                    kind: 0,
                    payload: &payload,
                };
                let lsn = log
                    .try_append(&[rec])
                    .expect("append")
                    .expect("room after reserve");
                next.set(index + 1);
                log.wait_durable(lsn).await.expect("durable");
                lat.borrow_mut()
                    .record(t.elapsed().as_nanos() as u64)
                    .expect("record");
            }
        }));
    }
    glommio::timer::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.set(true);
    for t in tasks {
        t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let s = log.stats();
    let lat = lat.borrow().clone();
    Run {
        durable_us: s.durable_ns as f64 / s.batches.max(1) as f64 / 1000.0,
        records: lat.len(),
        batches: s.batches,
        bytes: s.bytes,
        secs,
        lat,
    }
}

fn main() {
    let args = Args::parse();
    let a = args.clone();
    glommio::LocalExecutorBuilder::default()
        .name("wal-bench")
        .spawn(move || async move {
            let mut written_floor = None;
            for (how, what) in [
                (
                    Floor::Reserved,
                    "O_DIRECT write + fdatasync into reserved space",
                ),
                (
                    Floor::Written,
                    "O_DIRECT write + fdatasync over written blocks",
                ),
                (
                    Floor::WrittenDsync,
                    "O_DIRECT|O_DSYNC write over written blocks",
                ),
            ] {
                let h = floor(&a.dir, a.floor_iters, 4096, how).await;
                println!(
                    "floor: 4 KiB {what}: p50 {:.1} us, p99 {:.1} us ({} samples)",
                    us(&h, 0.5),
                    us(&h, 0.99),
                    h.len()
                );
                if how == Floor::Written {
                    written_floor = Some(h);
                }
            }
            let f = written_floor.expect("the written floor was measured");
            let big = floor(
                &a.dir,
                (a.floor_iters / 10).max(10),
                1 << 20,
                Floor::Written,
            )
            .await;
            println!(
                "floor: 1 MiB O_DIRECT write + fdatasync: p50 {:.1} us = {:.0} MB/s synced",
                us(&big, 0.5),
                1.048576e6 / us(&big, 0.5)
            );
            println!(
                "{:>9} {:>12} {:>10} {:>9} {:>8} {:>10} {:>10} {:>10} {:>11}",
                "appenders",
                "records/s",
                "batches/s",
                "rec/batch",
                "MB/s",
                "p50 us",
                "p99 us",
                "p50/floor",
                "durable us"
            );
            for &n in &a.appenders {
                let r = run(&a, n).await;
                println!(
                    "{:>9} {:>12.0} {:>10.0} {:>9.1} {:>8.1} {:>10.1} {:>10.1} {:>10.2} {:>11.1}",
                    n,
                    r.records as f64 / r.secs,
                    r.batches as f64 / r.secs,
                    r.records as f64 / r.batches.max(1) as f64,
                    r.bytes as f64 / r.secs / 1e6,
                    us(&r.lat, 0.5),
                    us(&r.lat, 0.99),
                    us(&r.lat, 0.5) / us(&f, 0.5),
                    r.durable_us,
                );
            }
            // Only what this run created; the directory itself is the user's.
            let _ = std::fs::remove_dir_all(a.dir.join("wal"));
            let _ = std::fs::remove_dir_all(a.dir.join("floor"));
        })
        .expect("spawn executor")
        .join()
        .expect("executor");
}
