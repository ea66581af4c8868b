//! The watchers of the history test, the recorder (the watch whose stream
//! is the history the checkers replay), and the final read of a member's
//! own history.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use cairn_wire::WatchCreateParams;
use rand::Rng;

use super::workload::{connect, rng_for, Shared, SETTLE_MS};
use super::{prefix_end, watch_frame, Event, WatchSegment, PREFIX};
use crate::common::Client;

/// Watch ids of one watcher thread are `me * WATCH_CHAINS_MAX + chain`.
pub const WATCH_CHAINS_MAX: usize = 1_000;

/// Whether a chain that would start next at `next_start` is over: the run
/// ended and either the final revision is behind it, or the settling time
/// after the stop (counted from the first call that saw it) has passed.
fn done(sh: &Shared, next_start: i64, give_up: &mut Option<Instant>) -> bool {
    let fin = sh.final_revision.load(Ordering::SeqCst);
    if fin > 0 && next_start > fin {
        return true;
    }
    if sh.stopped() {
        let at = *give_up.get_or_insert_with(|| Instant::now() + Duration::from_millis(SETTLE_MS));
        return Instant::now() > at;
    }
    false
}

/// A watcher: watches every key of the workload with `prev_kv` through a
/// random member. A *chain* of streams starts from "now" or from an old
/// revision; when a stream ends (member killed, idle for a reply timeout,
/// or after a random number of responses, to move to another member) the
/// chain resumes on a random member from the revision after the last it
/// received. A stream canceled because that revision was compacted
/// resumes after the compact revision it names: cairn refuses a watch
/// from exactly the compaction revision (docs/status.md), where etcd
/// would serve it without that revision's deletes.
/// Sometimes the watcher abandons the chain and starts a new one. After
/// the writers stop, its last chain runs until it has the final revision.
pub fn watcher(me: usize, seed: u64, sh: &Shared, first_revision: i64) -> Vec<WatchSegment> {
    let mut rng = rng_for(seed, 1000 + me as u64);
    let mut segs: Vec<WatchSegment> = Vec::new();
    let mut chain = 0;
    // 0: from now.
    let mut next_start = if me % 2 == 0 { 0 } else { first_revision };
    let mut give_up: Option<Instant> = None;
    loop {
        if done(sh, next_start, &mut give_up) {
            return segs;
        }
        let addrs = sh.addrs();
        let member = rng.gen_range(0..addrs.len());
        let Some(mut c) = connect(addrs[member]) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let id = me * WATCH_CHAINS_MAX + chain;
        let Some(mut seg) = open_watch(&mut c, id, member, next_start) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let budget = rng.gen_range(20..300);
        seg.ended = follow(&mut c, &mut seg, sh, budget, None);
        next_start = if seg.compacted > 0 {
            seg.compacted + 1
        } else {
            seg.last_revision() + 1
        };
        segs.push(seg);
        if !sh.stopped() && chain + 1 < WATCH_CHAINS_MAX && rng.gen_range(0..4) == 0 {
            chain += 1;
            next_start = if rng.gen_bool(0.5) {
                0
            } else {
                rng.gen_range(first_revision..=next_start.max(first_revision))
            };
        }
    }
}

/// The recorder: one chain of watch streams from `first_revision`,
/// resuming on a random member whenever a stream ends, until it has the
/// final revision. It publishes its progress in `sh.recorded`, which the
/// compactor never passes, so its streams are never compacted.
pub fn recorder(sh: &Shared, first_revision: i64) -> Vec<WatchSegment> {
    let mut rng = rng_for(0, 0x7ec0);
    let mut segs: Vec<WatchSegment> = Vec::new();
    let mut next_start = first_revision;
    sh.recorded.store(first_revision - 1, Ordering::SeqCst);
    let mut give_up: Option<Instant> = None;
    loop {
        if done(sh, next_start, &mut give_up) {
            return segs;
        }
        let addrs = sh.addrs();
        let member = rng.gen_range(0..addrs.len());
        let Some(mut c) = connect(addrs[member]) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let Some(mut seg) = open_watch(&mut c, 0, member, next_start) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        seg.ended = follow(&mut c, &mut seg, sh, usize::MAX, Some(&sh.recorded));
        // A compacted recorder stream (which must not happen) leaves a hole
        // that the checkers report.
        next_start = (seg.compacted + 1).max(seg.last_revision() + 1);
        segs.push(seg);
    }
}

fn open_watch(c: &mut Client, me: usize, member: usize, start: i64) -> Option<WatchSegment> {
    let end = prefix_end(PREFIX);
    let id = c.id();
    let f = c
        .enc
        .watch_create_request(
            id,
            &WatchCreateParams {
                key: PREFIX,
                range_end: &end,
                start_revision: start,
                prev_kv: true,
                ..Default::default()
            },
        )
        .to_vec();
    let r = c.call(f).ok()?;
    if r.error.is_some() {
        return None;
    }
    let w = watch_frame(&c.frame)?;
    let mut seg = WatchSegment {
        watcher: me,
        member,
        start_revision: if start == 0 {
            w.header_revision + 1
        } else {
            start
        },
        responses: Vec::new(),
        ended: String::new(),
        compacted: 0,
    };
    if w.canceled && w.compact_revision > 0 {
        seg.compacted = w.compact_revision;
        seg.ended = format!("compacted at {}", w.compact_revision);
    } else if !w.created || w.canceled {
        seg.ended = format!("refused: {w:?}");
    }
    Some(seg)
}

/// Receive events until the stream ends, or, while the writers run, until
/// `budget` responses came; returns why it ended. `progress` gets the last
/// revision received after every response.
fn follow(
    c: &mut Client,
    seg: &mut WatchSegment,
    sh: &Shared,
    budget: usize,
    progress: Option<&AtomicI64>,
) -> String {
    if !seg.ended.is_empty() {
        return seg.ended.clone();
    }
    loop {
        let fin = sh.final_revision.load(Ordering::SeqCst);
        if fin > 0 && seg.last_revision() >= fin {
            return "caught up".into();
        }
        if !sh.stopped() && seg.responses.len() >= budget {
            return "moved".into();
        }
        let r = match c.recv() {
            Ok(r) => r,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return "idle".into();
            }
            Err(e) => return format!("connection: {e}"),
        };
        if let Some((_, m)) = r.error {
            return format!("error: {m}");
        }
        let Some(w) = watch_frame(&c.frame) else {
            return "not a watch response".into();
        };
        if w.canceled && w.compact_revision > 0 {
            seg.compacted = w.compact_revision;
            return format!("compacted at {}", w.compact_revision);
        }
        if w.canceled {
            return format!(
                "canceled: {} (compact revision {})",
                w.cancel_reason, w.compact_revision
            );
        }
        if !w.events.is_empty() {
            seg.responses.push(w.events);
            if let Some(p) = progress {
                p.store(seg.last_revision(), Ordering::SeqCst);
            }
        }
    }
}

/// One member's history through a watch from `from` up to
/// `final_revision`; from the revision after its compact revision instead
/// if `from` was compacted. Returns the revision it starts at and the events.
pub fn read_history(
    addr: SocketAddr,
    mut from: i64,
    final_revision: i64,
) -> Result<(i64, Vec<Event>), String> {
    let deadline = Instant::now() + Duration::from_millis(SETTLE_MS);
    loop {
        let attempt = (|| {
            let mut c = connect(addr).ok_or(Ok("cannot connect".to_string()))?;
            let mut seg = open_watch(&mut c, 0, 0, from).ok_or(Ok("watch refused".to_string()))?;
            if seg.compacted >= from {
                return Err(Err(seg.compacted + 1));
            }
            while seg.last_revision() < final_revision {
                let r = c
                    .recv()
                    .map_err(|e| Ok(format!("after revision {}: {e}", seg.last_revision())))?;
                let w = watch_frame(&c.frame).ok_or(Ok("not a watch response".to_string()))?;
                if w.canceled && w.compact_revision >= from && seg.responses.is_empty() {
                    return Err(Err(w.compact_revision + 1));
                }
                if w.canceled || r.error.is_some() {
                    return Err(Ok(format!("canceled: {w:?} {:?}", r.error)));
                }
                seg.responses.push(w.events);
            }
            Ok::<_, Result<String, i64>>(seg.events().cloned().collect())
        })();
        match attempt {
            Ok(h) => return Ok((from, h)),
            // Compacted: start again after the compact revision.
            Err(Err(compacted)) => from = compacted,
            Err(Ok(e)) if Instant::now() > deadline => {
                return Err(format!("history from {addr}: {e}"))
            }
            Err(Ok(_)) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
