//! Measures encode and verify+decode costs of typical messages on one core.
//!
//! ```text
//! cargo run --release -p cairn-wire --example throughput [iterations]
//! ```

use std::hint::black_box;
use std::time::Instant;

use cairn_wire::*;

fn report(name: &str, iterations: u64, frame_bytes: usize, start: Instant) {
    let elapsed = start.elapsed();
    let ns_per_op = elapsed.as_nanos() as f64 / iterations as f64;
    let mib_per_s =
        (frame_bytes as f64 * iterations as f64) / elapsed.as_secs_f64() / (1 << 20) as f64;
    println!("{name:<44} {ns_per_op:>9.0} ns/op {mib_per_s:>9.0} MiB/s  ({frame_bytes} B frame)");
}

fn main() {
    let iterations: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mut enc = Encoder::new();
    let value = [0xabu8; 256];
    let header = Header {
        cluster_id: 1,
        member_id: 2,
        revision: 3,
        raft_term: 4,
    };

    let put = PutParams {
        key: b"/registry/pods/default/web-0",
        value: &value,
        ..Default::default()
    };
    let put_frame = enc.put_request(1, &put).to_vec();
    let start = Instant::now();
    for id in 0..iterations {
        black_box(enc.put_request(id, black_box(&put)).len());
    }
    report(
        "encode put request (28 B key, 256 B value)",
        iterations,
        put_frame.len(),
        start,
    );

    let start = Instant::now();
    for _ in 0..iterations {
        let view = decode_request(black_box(&put_frame)).expect("valid");
        black_box(view.id);
    }
    report(
        "verify + decode put request",
        iterations,
        put_frame.len(),
        start,
    );

    let keys: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("/registry/pods/default/web-{i}").into_bytes())
        .collect();
    let kvs: Vec<KeyValueRef<'_>> = keys
        .iter()
        .map(|k| KeyValueRef {
            key: k,
            value: &value,
            create_revision: 5,
            mod_revision: 9,
            version: 2,
            lease: 0,
        })
        .collect();
    let range = RangeResult {
        kvs: &kvs,
        more: false,
        count: 100,
    };
    let range_frame = enc.range_response(1, &header, &range).to_vec();
    let start = Instant::now();
    for id in 0..iterations / 10 {
        black_box(enc.range_response(id, &header, black_box(&range)).len());
    }
    report(
        "encode range response (100 kvs)",
        iterations / 10,
        range_frame.len(),
        start,
    );

    let start = Instant::now();
    for _ in 0..iterations / 10 {
        let view = decode_response(black_box(&range_frame)).expect("valid");
        let Ok(ResponseBodyView::Range(r)) = view.body else {
            unreachable!()
        };
        let total: usize = r
            .kvs()
            .into_iter()
            .flatten()
            .map(|kv| bytes(kv.value()).len())
            .sum();
        black_box(total);
    }
    report(
        "verify + decode + walk range response",
        iterations / 10,
        range_frame.len(),
        start,
    );

    let mut dec = FrameDecoder::for_requests();
    let stream: Vec<u8> = (0..64).flat_map(|_| put_frame.iter().copied()).collect();
    let start = Instant::now();
    let rounds = iterations / 64;
    for _ in 0..rounds {
        dec.feed(black_box(&stream)).expect("valid");
        while let Some(frame) = dec.next_frame().expect("valid") {
            black_box(frame.len());
        }
    }
    report(
        "frame decoder, 64 pipelined puts per read",
        rounds * 64,
        put_frame.len(),
        start,
    );
}
