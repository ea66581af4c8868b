//! Misbehaving clients against the real `cairn` binary: thousands of
//! connections opened and dropped, frames left half-written, slowloris
//! senders (one byte per 100 ms), frames over the size limit, random
//! bytes, and a client that pipelines requests and never reads the
//! answers — all at once, while a well-behaved client keeps doing puts and
//! gets that must all succeed.
//!
//! Memory: the server's resident set (VmRSS) is sampled throughout and must
//! stay under a bound derived from the engine's and the wire's limits (see
//! [`rss_bound_bytes`]): the idle server's RSS, plus per hanging connection
//! one decoder growth step and what the client actually sent, plus for the
//! client that never reads `CONN_INFLIGHT_MAX` queued answers.
//!
//! `CAIRN_BAD_CLIENTS_SCALE=N` multiplies the number of connections of
//! each kind (default 1).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_engine::limits::CONN_INFLIGHT_MAX;
use cairn_wire::limits::{DECODER_GROWTH_BYTES_MAX, REQUEST_FRAME_BYTES_MAX_DEFAULT};
use cairn_wire::{Encoder, PutParams, RangeParams, CLIENT_PREFACE};
use common::{Client, Server};

/// Connections opened and dropped (some right away, some after the
/// preface, some in the middle of a frame).
const CHURN_CONNS: usize = 3000;
/// Connections that send the preface and part of a large frame, then hang.
const HANGING_CONNS: usize = 500;
/// Bytes of the announced frame each hanging connection sends.
const HANGING_SENT_BYTES: usize = 1000;
/// Slowloris connections: one byte per `SLOW_BYTE_INTERVAL_MS` each.
const SLOW_CONNS: usize = 20;
const SLOW_BYTE_INTERVAL_MS: u64 = 100;
/// Connections announcing a frame over the limit.
const OVERSIZED_CONNS: usize = 100;
/// Connections sending random bytes (after a preface, or instead of one).
const RANDOM_CONNS: usize = 100;
const RANDOM_BYTES: usize = 4096;
/// Value size read over and over by the client that never reads.
const NO_READER_VALUE_BYTES: usize = 16 * 1024;
/// How long the attack lasts.
const ATTACK_SECS: u64 = 8;

/// Server memory per open client connection besides its decoder: the
/// executor task, socket, response queue and watch bookkeeping. Measured at
/// about 20 KiB on the development machine; twice that leaves room for
/// allocator rounding.
const CONN_OVERHEAD_BYTES: usize = 40 * 1024;
/// Room for the allocator's retained free memory and the good client's and
/// churn's transient state.
const SLACK_BYTES: usize = 96 * 1024 * 1024;

fn scale() -> usize {
    std::env::var("CAIRN_BAD_CLIENTS_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Open file descriptors this process may have: each connection costs one
/// here and one in the server (same limit, inherited).
fn fd_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

fn rss_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The most the server may hold resident during the attack: its idle RSS;
/// per connection held open (hanging, slow, random, no-reader) one decoder
/// growth step, the bytes it sent and the connection's own state; the
/// no-reader's `CONN_INFLIGHT_MAX` answers of one value each; slack.
fn rss_bound_bytes(idle_rss: usize, held_conns: usize) -> usize {
    let per_conn = DECODER_GROWTH_BYTES_MAX + HANGING_SENT_BYTES + CONN_OVERHEAD_BYTES;
    let no_reader = CONN_INFLIGHT_MAX * (NO_READER_VALUE_BYTES + 256);
    idle_rss + held_conns * per_conn + no_reader + SLACK_BYTES
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Waits until the server closes `s` (read returns 0 or an error other
/// than a timeout). Returns whether it did within the read timeout.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // error responses, then the close
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn put_frame(enc: &mut Encoder, id: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
    enc.put_request(
        id,
        &PutParams {
            key,
            value,
            ..Default::default()
        },
    )
    .to_vec()
}

/// SplitMix64 for the random-bytes clients.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn bad_clients_neither_stop_a_good_one_nor_grow_the_server() {
    let scale = scale();
    // Each held connection costs a descriptor here and one in the server.
    let fd_room = fd_limit().saturating_sub(200) / 2;
    let hanging = (HANGING_CONNS * scale).min(fd_room / 2);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let addr = server.addr;
    let pid = server.child.as_ref().expect("running").id();

    // The value the client that never reads asks for, over and over.
    let mut setup = Client::connect(addr).unwrap();
    setup
        .put(b"big", &vec![b'x'; NO_READER_VALUE_BYTES])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = rss_bytes(pid);
    assert!(idle_rss > 0, "cannot read the server's VmRSS");

    let stop = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(idle_rss as u64));
    let mut threads: Vec<JoinHandle<String>> = Vec::new();

    // Memory sampler.
    {
        let (stop, peak) = (stop.clone(), peak_rss.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid) as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
            String::new()
        }));
    }

    // The well-behaved client: every put and get must succeed.
    let good = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = Client::connect(addr).expect("good client connects");
            let mut ops = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("good/{}", ops % 100);
                let value = format!("v{ops}");
                c.put(key.as_bytes(), value.as_bytes())
                    .unwrap_or_else(|e| panic!("good client's put {ops} failed: {e}"));
                assert_eq!(
                    c.get_key(key.as_bytes()).as_deref(),
                    Some(value.as_bytes()),
                    "good client's get {ops}"
                );
                ops += 2;
            }
            ops
        })
    };

    // Churn: connections opened and dropped, in three ways.
    {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut enc = Encoder::new();
            let frame = put_frame(&mut enc, 1, b"churn", b"v");
            let mut n = 0;
            while n < CHURN_CONNS * scale && !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = connect(addr) else {
                    continue;
                };
                let _ = match n % 3 {
                    0 => Ok(()),
                    1 => s.write_all(&CLIENT_PREFACE),
                    _ => s
                        .write_all(&CLIENT_PREFACE)
                        .and_then(|_| s.write_all(&frame[..frame.len() / 2])),
                };
                n += 1;
            }
            format!("churn: {n} connections opened and dropped")
        }));
    }

    // Hanging: the preface and the start of a large frame, then nothing.
    let mut held: Vec<TcpStream> = Vec::new();
    {
        let mut announce = ((REQUEST_FRAME_BYTES_MAX_DEFAULT - 1) as u32)
            .to_le_bytes()
            .to_vec();
        announce.extend_from_slice(&vec![0u8; HANGING_SENT_BYTES]);
        for _ in 0..hanging {
            let mut s = connect(addr).expect("hanging client connects");
            s.write_all(&CLIENT_PREFACE).unwrap();
            s.write_all(&announce).unwrap();
            held.push(s);
        }
    }

    // Slowloris: valid puts, one byte per interval on each connection.
    {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut enc = Encoder::new();
            let mut conns: Vec<(TcpStream, Vec<u8>, usize)> = (0..SLOW_CONNS)
                .map(|i| {
                    let mut s = connect(addr).expect("slow client connects");
                    s.write_all(&CLIENT_PREFACE).unwrap();
                    let key = format!("slow/{i}");
                    (s, put_frame(&mut enc, 7, key.as_bytes(), b"v"), 0)
                })
                .collect();
            let mut bytes = 0;
            while !stop.load(Ordering::Relaxed) {
                for (s, frame, at) in conns.iter_mut() {
                    if s.write_all(&frame[*at % frame.len()..][..1]).is_ok() {
                        *at += 1;
                        bytes += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(SLOW_BYTE_INTERVAL_MS));
            }
            // Whole frames sent slowly are still served.
            let (s, frame, at) = &mut conns[0];
            let complete = *at >= frame.len();
            let mut answered = false;
            if complete {
                let mut dec = cairn_wire::FrameDecoder::for_responses();
                let mut buf = [0u8; 4096];
                if let Ok(n) = s.read(&mut buf) {
                    answered = dec.feed(&buf[..n]).is_ok() && matches!(dec.next_frame(), Ok(Some(_)));
                }
                assert!(answered, "a put sent one byte at a time was not answered");
            }
            format!("slowloris: {SLOW_CONNS} connections, {bytes} bytes sent one at a time; a complete slow frame answered: {answered}")
        }));
    }

    // Oversized: a frame announced over the limit must close the connection.
    {
        threads.push(std::thread::spawn(move || {
            let too_big = ((REQUEST_FRAME_BYTES_MAX_DEFAULT + 1) as u32).to_le_bytes();
            let mut closed = 0;
            for _ in 0..OVERSIZED_CONNS * scale {
                let mut s = connect(addr).expect("oversized client connects");
                s.write_all(&CLIENT_PREFACE).unwrap();
                let _ = s.write_all(&too_big);
                let _ = s.write_all(&[0u8; 64]);
                assert!(
                    closed_by_server(&mut s),
                    "an oversized frame did not close the connection"
                );
                closed += 1;
            }
            format!("oversized: {closed} connections closed by the server")
        }));
    }

    // Random bytes, with and without a preface.
    {
        threads.push(std::thread::spawn(move || {
            let mut state = 42u64;
            let mut closed = 0;
            for i in 0..RANDOM_CONNS * scale {
                let mut s = connect(addr).expect("random client connects");
                if i % 2 == 0 {
                    s.write_all(&CLIENT_PREFACE).unwrap();
                }
                let junk: Vec<u8> = (0..RANDOM_BYTES)
                    .map(|_| splitmix(&mut state) as u8)
                    .collect();
                let _ = s.write_all(&junk);
                let _ = s.shutdown(std::net::Shutdown::Write);
                if closed_by_server(&mut s) {
                    closed += 1;
                }
            }
            format!(
                "random bytes: {} connections, {closed} closed by the server",
                RANDOM_CONNS * scale
            )
        }));
    }

    // The client that pipelines reads of a large value and never reads.
    let no_reader = {
        let mut s = connect(addr).expect("no-reader connects");
        s.write_all(&CLIENT_PREFACE).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut enc = Encoder::new();
        let mut sent = 0u64;
        let deadline = Instant::now() + Duration::from_secs(ATTACK_SECS / 2);
        while Instant::now() < deadline {
            let mut batch = Vec::new();
            for _ in 0..256 {
                sent += 1;
                batch.extend_from_slice(enc.range_request(
                    sent,
                    &RangeParams {
                        key: b"big",
                        ..Default::default()
                    },
                ));
            }
            if s.write_all(&batch).is_err() {
                break; // the server stopped reading: back-pressure works
            }
        }
        (s, sent)
    };

    std::thread::sleep(Duration::from_secs(ATTACK_SECS / 2));
    stop.store(true, Ordering::Relaxed);
    let ops = good.join().expect("the good client failed");
    let mut report: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("an attacker thread failed"))
        .collect();
    report.retain(|l| !l.is_empty());
    let held_conns = hanging + SLOW_CONNS + 1;
    let bound = rss_bound_bytes(idle_rss, held_conns);
    let peak = peak_rss.load(Ordering::Relaxed) as usize;
    eprintln!("bad clients against one member:");
    eprintln!("  good client: {ops} puts and gets, all succeeded");
    eprintln!("  hanging: {hanging} connections held mid-frame");
    eprintln!(
        "  no-reader: {} range requests of a {} KiB value sent, none read",
        no_reader.1,
        NO_READER_VALUE_BYTES / 1024
    );
    for l in &report {
        eprintln!("  {l}");
    }
    eprintln!(
        "  server RSS: idle {} MiB, peak {} MiB, bound {} MiB",
        idle_rss >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(ops > 0, "the good client did no work");
    assert!(
        peak <= bound,
        "server RSS peaked at {peak} bytes, over the bound of {bound}"
    );

    // Everything dropped: the server still serves, and gives memory back
    // to its allocator (not necessarily to the system).
    drop(held);
    drop(no_reader);
    let mut c = Client::connect(addr).unwrap();
    c.put(b"after", b"attack").unwrap();
    assert_eq!(c.get_key(b"after").as_deref(), Some(&b"attack"[..]));
}
