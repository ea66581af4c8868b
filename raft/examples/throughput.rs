//! Raft core throughput: a 3-node cluster with instant, in-memory delivery
//! and storage commits batches of 256-byte entries. Prints entries committed
//! per second (wall clock), the CPU time per entry of the whole cluster, and
//! the leader's CPU time per entry (inside the leader's Raft calls: propose,
//! step, ready, persistence reports, and its storage appends). CPU times come
//! from the thread CPU clock, so they hold on a busy machine.
//!
//! `cargo run --release -p cairn-raft --example throughput [batch] [seconds]`

use std::time::{Duration, Instant};

/// CPU time consumed by the calling thread.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

use bytes::Bytes;
use cairn_raft::{ConfState, Config, MemStorage, Message, RawNode, Storage};

const ENTRY_BYTES: usize = 256;

struct Node {
    raw: RawNode<MemStorage>,
    applied: u64,
}

fn config(id: u64) -> Config {
    let mut c = Config::new(id, 10, 1);
    c.max_size_per_msg_bytes = 8 << 20;
    c.max_inflight_bytes = 256 << 20;
    c.max_committed_bytes_per_ready = 64 << 20;
    c
}

/// Handles one Ready synchronously; returns outgoing messages and how many
/// entries were applied.
fn handle(n: &mut Node) -> (Vec<Message>, u64) {
    if !n.raw.has_ready() {
        return (Vec::new(), 0);
    }
    let rd = n.raw.ready();
    let mut out = rd.messages;
    let last = rd.entries.last().map(|e| (e.index, e.term));
    let st = n.raw.storage_mut();
    st.append_owned(rd.entries);
    if let Some(hs) = rd.hard_state {
        st.set_hard_state(hs);
    }
    out.extend(rd.persisted_messages);
    let applied = rd.committed_entries.len() as u64;
    if let Some(e) = rd.committed_entries.last() {
        n.applied = e.index;
    }
    if let Some((index, term)) = last {
        n.raw.on_persisted(index, term);
    }
    if applied > 0 {
        n.raw.on_applied(n.applied);
        // Keep memory flat: the applied prefix is not needed (no follower
        // lags in this benchmark).
        let keep_from = n.applied.saturating_sub(1);
        if keep_from > n.raw.storage().first_index().unwrap_or(0) + 65_536 {
            let _ = n.raw.storage_mut().compact(keep_from);
        }
    }
    (out, applied)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4096);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let cs = ConfState::with_voters(&[1, 2, 3]);
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| Node {
            raw: RawNode::new(&config(id), MemStorage::new_with_conf_state(cs.clone()))
                .expect("config"),
            applied: 0,
        })
        .collect();
    nodes[0].raw.campaign();
    let mut leader_time = Duration::ZERO;
    let mut committed = 0u64;
    let mut started = None;
    let mut inbox: Vec<Message> = Vec::new();
    let payload = Bytes::from(vec![7u8; ENTRY_BYTES * batch]);
    loop {
        let leader_ready = nodes[0].raw.status().role == cairn_raft::Role::Leader;
        if leader_ready && started.is_none() {
            started = Some((Instant::now(), cpu_now()));
        }
        if let Some((t0, _)) = started {
            if t0.elapsed() >= Duration::from_secs(secs) {
                break;
            }
            // One batch per round; the round runs until the cluster is
            // quiet (replicated, committed, applied everywhere).
            // Slicing the batch models the server cutting requests out of a
            // received frame; it is not Raft's work and is not timed.
            let entries: Vec<Bytes> = (0..batch)
                .map(|i| payload.slice(i * ENTRY_BYTES..(i + 1) * ENTRY_BYTES))
                .collect();
            let t = cpu_now();
            let _ = nodes[0].raw.propose(entries);
            leader_time += cpu_now() - t;
        }
        // Deliver until quiet.
        loop {
            let mut busy = false;
            for (i, node) in nodes.iter_mut().enumerate() {
                let t = cpu_now();
                let (msgs, applied) = handle(node);
                if i == 0 {
                    leader_time += cpu_now() - t;
                    if started.is_some() {
                        committed += applied;
                    }
                }
                busy |= !msgs.is_empty() || applied > 0;
                inbox.extend(msgs);
            }
            for m in inbox.drain(..) {
                let to = (m.to - 1) as usize;
                let t = cpu_now();
                let _ = nodes[to].raw.step(m);
                if to == 0 {
                    leader_time += cpu_now() - t;
                }
                busy = true;
            }
            if !busy {
                break;
            }
        }
    }
    let (wall, cpu) = started.map_or((Duration::ZERO, Duration::ZERO), |(w, c)| {
        (w.elapsed(), cpu_now() - c)
    });
    let rate = committed as f64 / wall.as_secs_f64();
    let n = committed.max(1) as f64;
    let ns_per_entry = leader_time.as_nanos() as f64 / n;
    let cluster_ns = cpu.as_nanos() as f64 / n;
    println!("batch {batch} x {ENTRY_BYTES} B entries, 3 nodes in one thread, instant delivery");
    println!(
        "committed {committed} entries in {:.2} s: {rate:.0} entries/s (wall clock)",
        wall.as_secs_f64()
    );
    println!(
        "cluster CPU: {cluster_ns:.0} ns/entry, i.e. {:.0} entries/s on one uncontended core",
        1e9 / cluster_ns
    );
    println!(
        "leader CPU: {ns_per_entry:.0} ns/entry (one core per node would sustain {:.0} entries/s)",
        1e9 / ns_per_entry
    );
}
