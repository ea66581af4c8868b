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
//! Two more tests give one client that never reads large answers (2 MiB
//! ranges) the whole member, natively and over gRPC: the server must stay
//! within the connection's answer-byte budget
//! (`CONN_QUEUED_ANSWER_BYTES_MAX`) plus a few answers, serve other
//! clients meanwhile, and deliver every answer once the client reads.
//!
//! `CAIRN_BAD_CLIENTS_SCALE=N` multiplies the number of connections of
//! each kind, and the requests of those two clients (default 1).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_engine::limits::{CONN_INFLIGHT_MAX, CONN_QUEUED_ANSWER_BYTES_MAX};
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

// ---- clients that never read large answers ----

/// The prefix those clients range over: `WIDE_KEYS` values of
/// `WIDE_VALUE_BYTES`, so every answer is about 2 MiB.
const WIDE_KEYS: usize = 32;
const WIDE_VALUE_BYTES: usize = 64 * 1024;
/// Range requests sent (times `CAIRN_BAD_CLIENTS_SCALE`): without the
/// answer-byte budget the server would hold all their answers, about
/// 1 GiB, as the in-flight count allows 4096.
const WIDE_RANGES: usize = 500;
/// How long the server is watched while the client does not read (long
/// enough for it to answer every range if nothing held it back).
const STALL_SECS: u64 = 3;

/// The most the server may hold resident while one client does not read:
/// its idle RSS, the connection's answer budget, a few answers being built
/// and written beyond it (the shard's builder, the writer's batch), slack.
fn wide_rss_bound_bytes(idle_rss: usize) -> usize {
    idle_rss + CONN_QUEUED_ANSWER_BYTES_MAX + 4 * WIDE_KEYS * (WIDE_VALUE_BYTES + 64) + SLACK_BYTES
}

/// Start a member holding the wide prefix; returns it with its idle RSS.
fn wide_server(dir: &std::path::Path) -> (Server, u32, usize) {
    let server = Server::start(dir, &[]);
    let pid = server.child.as_ref().expect("running").id();
    let mut c = Client::connect(server.addr).unwrap();
    for i in 0..WIDE_KEYS {
        let key = format!("wide/{i:03}");
        c.put(key.as_bytes(), &vec![b'w'; WIDE_VALUE_BYTES])
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = rss_bytes(pid);
    assert!(idle_rss > 0, "cannot read the server's VmRSS");
    (server, pid, idle_rss)
}

/// Sample `pid`'s RSS until `stop`; the peak.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_bytes(pid));
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    })
}

/// A well-behaved client's puts and gets while the other one stalls:
/// every one must succeed. Runs for `STALL_SECS`; returns how many.
fn good_client_meanwhile(addr: SocketAddr) -> u64 {
    let mut c = Client::connect(addr).expect("good client connects");
    let until = Instant::now() + Duration::from_secs(STALL_SECS);
    let mut ops = 0u64;
    while Instant::now() < until {
        let key = format!("good/{}", ops % 50);
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
}

#[test]
fn a_client_that_never_reads_large_ranges_is_held_to_its_budget_then_served() {
    let ranges = WIDE_RANGES * scale();
    let dir = tempfile::tempdir().unwrap();
    let (server, pid, idle_rss) = wide_server(dir.path());
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pid, stop.clone());

    // Pipeline every range at once, from a thread: once the server stops
    // reading, TCP stops the writes, which resume when it reads again.
    let mut bad = Client::connect(addr).expect("the client that does not read connects");
    bad.stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = bad.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut enc = Encoder::new();
        let mut batch = Vec::new();
        for id in 1..=ranges as u64 {
            batch.extend_from_slice(enc.range_request(
                id,
                &RangeParams {
                    key: b"wide/",
                    range_end: b"wide0",
                    ..Default::default()
                },
            ));
        }
        out.write_all(&batch)
            .expect("the range requests are all taken in the end");
    });

    let ops = good_client_meanwhile(addr);
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let bound = wide_rss_bound_bytes(idle_rss);
    eprintln!(
        "a client pipelining {ranges} ranges of {} MiB and not reading: good client {ops} \
         puts and gets; server RSS idle {} MiB, peak {} MiB, bound {} MiB",
        (WIDE_KEYS * WIDE_VALUE_BYTES) >> 20,
        idle_rss >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(ops > 0, "the good client did no work");
    assert!(
        peak <= bound,
        "server RSS peaked at {peak} bytes, over the bound of {bound}"
    );

    // It reads at last: every answer, whole.
    let mut seen = std::collections::HashSet::new();
    for n in 0..ranges {
        let reply = bad
            .recv()
            .unwrap_or_else(|e| panic!("answer {n} of {ranges} did not come: {e}"));
        assert_eq!(reply.error, None, "answer {n}");
        assert_eq!(reply.kvs.len(), WIDE_KEYS, "answer {n} is a whole range");
        assert!(
            reply.kvs.iter().all(|kv| kv.1.len() == WIDE_VALUE_BYTES),
            "answer {n} has whole values"
        );
        assert!(seen.insert(reply.id), "answer {} came twice", reply.id);
    }
    writer.join().expect("the writer failed");
    let mut c = Client::connect(addr).unwrap();
    c.put(b"after", b"stall").unwrap();
    assert_eq!(c.get_key(b"after").as_deref(), Some(&b"stall"[..]));
}

/// A gRPC message: the 5-byte prefix (uncompressed, big-endian length),
/// then the protobuf.
fn grpc_message(msg: &impl prost::Message) -> bytes::Bytes {
    let body = msg.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed.into()
}

/// An HTTP/2 connection from a raw `h2` client. Its connection window is
/// wide open and each stream's is h2's default 64 KiB, so a stream the
/// test does not read holds at most that much on the client side and
/// reading the streams one by one never starves the one being read.
async fn h2_connect(addr: SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::Builder::new()
        .initial_connection_window_size(1 << 30)
        .handshake(tcp)
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Send one unary call; the answer is left unread.
async fn grpc_start(
    send: &h2::client::SendRequest<bytes::Bytes>,
    path: &str,
    msg: &impl prost::Message,
) -> h2::client::ResponseFuture {
    let mut send = send.clone().ready().await.expect("a stream to send on");
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://cairn{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (answer, mut body) = send.send_request(request, false).expect("send a call");
    body.send_data(grpc_message(msg), true)
        .expect("send its message");
    answer
}

/// Read a unary call's answer: its message, or the grpc-status it failed with.
async fn grpc_finish(answer: h2::client::ResponseFuture) -> Result<bytes::Bytes, String> {
    let response = answer.await.map_err(|e| e.to_string())?;
    let status_of = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    if let Some(s) = status_of(response.headers()) {
        return Err(format!("grpc-status {s} (trailers only)"));
    }
    let mut body = response.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.map_err(|e| e.to_string())?;
    match trailers.as_ref().and_then(status_of).as_deref() {
        Some("0") => {}
        other => return Err(format!("grpc-status {other:?}")),
    }
    if data.len() < 5
        || data.len() - 5 != u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize
    {
        return Err(format!("a broken gRPC message of {} bytes", data.len()));
    }
    Ok(bytes::Bytes::from(data).slice(5..))
}

#[test]
fn a_grpc_client_that_never_reads_large_ranges_is_held_to_its_budget_then_served() {
    use cairn_wire::etcdpb::{self as pb, path};
    use prost::Message;

    let calls = WIDE_RANGES * scale();
    let dir = tempfile::tempdir().unwrap();
    let (server, pid, idle_rss) = wide_server(dir.path());
    let addr = server.addr;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pid, stop.clone());

    // Every call sent at once on one connection (under the server's
    // stream limit); no answer read.
    let range = pb::RangeRequest {
        key: bytes::Bytes::from_static(b"wide/"),
        range_end: bytes::Bytes::from_static(b"wide0"),
        ..Default::default()
    };
    let answers = rt.block_on(async {
        let bad = h2_connect(addr).await;
        let mut answers = Vec::with_capacity(calls);
        for _ in 0..calls {
            answers.push(grpc_start(&bad, path::KV_RANGE, &range).await);
        }
        answers
    });

    // Meanwhile a native client and another gRPC connection are served.
    let native = std::thread::spawn(move || good_client_meanwhile(addr));
    let grpc_ops = rt.block_on(async {
        let good = h2_connect(addr).await;
        let until = Instant::now() + Duration::from_secs(STALL_SECS);
        let mut ops = 0u64;
        while Instant::now() < until {
            let put = pb::PutRequest {
                key: bytes::Bytes::from_static(b"grpc/good"),
                value: bytes::Bytes::from(format!("v{ops}")),
                ..Default::default()
            };
            let answer = grpc_start(&good, path::KV_PUT, &put).await;
            grpc_finish(answer)
                .await
                .unwrap_or_else(|e| panic!("good gRPC put {ops}: {e}"));
            let get = pb::RangeRequest {
                key: bytes::Bytes::from_static(b"grpc/good"),
                ..Default::default()
            };
            let answer = grpc_start(&good, path::KV_RANGE, &get).await;
            let got = grpc_finish(answer)
                .await
                .unwrap_or_else(|e| panic!("good gRPC get {ops}: {e}"));
            let got = pb::RangeResponse::decode(got).expect("a RangeResponse");
            assert_eq!(
                got.kvs[0].value,
                format!("v{ops}").as_bytes(),
                "good gRPC get {ops}"
            );
            ops += 2;
        }
        ops
    });
    let native_ops = native.join().expect("the native client failed");
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let bound = wide_rss_bound_bytes(idle_rss);
    eprintln!(
        "a gRPC client with {calls} unread ranges of {} MiB: good clients {native_ops} native \
         and {grpc_ops} gRPC puts and gets; server RSS idle {} MiB, peak {} MiB, bound {} MiB",
        (WIDE_KEYS * WIDE_VALUE_BYTES) >> 20,
        idle_rss >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(native_ops > 0 && grpc_ops > 0, "a good client did no work");
    assert!(
        peak <= bound,
        "server RSS peaked at {peak} bytes, over the bound of {bound}"
    );

    // It reads at last: every answer, whole.
    rt.block_on(async {
        for (n, answer) in answers.into_iter().enumerate() {
            let msg = grpc_finish(answer)
                .await
                .unwrap_or_else(|e| panic!("answer {n} of {calls}: {e}"));
            let r = pb::RangeResponse::decode(msg).expect("a RangeResponse");
            assert_eq!(r.kvs.len(), WIDE_KEYS, "answer {n} is a whole range");
            assert!(
                r.kvs.iter().all(|kv| kv.value.len() == WIDE_VALUE_BYTES),
                "answer {n} has whole values"
            );
        }
    });
    let mut c = Client::connect(addr).unwrap();
    c.put(b"after", b"stall").unwrap();
    assert_eq!(c.get_key(b"after").as_deref(), Some(&b"stall"[..]));
}
