//! The clients, watchers and fault injector of the history test. Each runs
//! on its own thread over the blocking test client, talks to random
//! members, and records what it saw; none of them judges anything.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_wire::{
    rpc, CompareParams, DeleteRangeParams, PutParams, RangeParams, RequestOpParams, TxnParams,
    WatchCreateParams,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    lease_key_prefix, prefix_end, range_kvs, watch_frame, Change, Event, Kv, LeaseEnd, LeaseRecord,
    Outcome, WatchSegment, WriteOp, WriteRecord, FAIL_PREFIX, PREFIX, TXN_PREFIX,
};
use crate::common::proxy::Mode;
use crate::common::{Client, LeaseReply, ProxiedCluster, Reply};

/// A client gives up on an answer after this long and records the
/// operation as unknown; longer than an election.
pub const REPLY_TIMEOUT_MS: u64 = 3_000;
/// Keys the txns share: few, so that compares often fail.
pub const TXN_KEYS: usize = 4;
/// How long the final phase waits for a member, a lease's end or a
/// watcher to catch up before calling it a problem.
pub const SETTLE_MS: u64 = 30_000;
/// Leases a lease client holds at once: enough that puts, revokes and
/// expiries of different leases interleave.
pub const LEASES_OPEN_MAX: usize = 3;

/// What the threads share: where the members are, when to stop, and the
/// revision the watchers must reach once the writers are done.
pub struct Shared {
    pub addrs: Vec<SocketAddr>,
    pub stop: AtomicBool,
    /// 0 until the writers are done and the final revision is known.
    pub final_revision: AtomicI64,
}

impl Shared {
    pub fn new(addrs: Vec<SocketAddr>) -> Shared {
        Shared {
            addrs,
            stop: AtomicBool::new(false),
            final_revision: AtomicI64::new(0),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

fn rng_for(seed: u64, who: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (who + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

pub fn connect(addr: SocketAddr) -> Option<Client> {
    let c = Client::connect(addr).ok()?;
    c.stream
        .set_read_timeout(Some(Duration::from_millis(REPLY_TIMEOUT_MS)))
        .ok()?;
    Some(c)
}

/// A connection to a random member, reusing `conn` unless it is gone.
fn conn_to<'a>(
    conn: &'a mut Option<Client>,
    rng: &mut ChaCha8Rng,
    addrs: &[SocketAddr],
) -> Option<&'a mut Client> {
    if conn.is_none() {
        *conn = connect(addrs[rng.gen_range(0..addrs.len())]);
        if conn.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    conn.as_mut()
}

/// Send one request on `conn` and wait for its answer, skipping answers to
/// earlier requests. A request left without an answer (timeout, broken
/// connection) closes the connection, so that its late answer can never be
/// taken for another request's. `None`: no answer (outcome unknown).
fn ask(
    conn: &mut Option<Client>,
    build: impl FnOnce(&mut Client, u64) -> Vec<u8>,
) -> Option<Reply> {
    let c = conn.as_mut()?;
    let id = c.id();
    let frame = build(c, id);
    let answer = c.send(frame).and_then(|()| loop {
        let r = c.recv()?;
        if r.id >= id {
            break Ok(r);
        }
    });
    match answer {
        Ok(r) if r.id == id => Some(r),
        _ => {
            *conn = None;
            None
        }
    }
}

/// The lease body of the answer `ask` just returned.
fn lease_body(conn: &Option<Client>) -> LeaseReply {
    conn.as_ref().map(Client::last_lease).unwrap_or_default()
}

/// An error answer that says the request had no effect. Anything else
/// (timeouts, leader changes, lost connections) may still commit.
fn definite(msg: &str) -> bool {
    msg.contains("lease not found")
}

/// Linearizable read of every key under `prefix` on `conn`: (header
/// revision, kvs).
pub fn read_prefix(conn: &mut Option<Client>, prefix: &[u8]) -> Result<(i64, Vec<Kv>), String> {
    let end = prefix_end(prefix);
    let r = ask(conn, |c, id| {
        c.enc
            .range_request(
                id,
                &RangeParams {
                    key: prefix,
                    range_end: &end,
                    ..Default::default()
                },
            )
            .to_vec()
    })
    .ok_or("no answer")?;
    if let Some((_, m)) = r.error {
        return Err(m);
    }
    let c = conn.as_ref().ok_or("no connection")?;
    let kvs = range_kvs(&c.frame).ok_or("not a range response")?;
    Ok((r.revision, kvs))
}

/// [`read_prefix`] through any member, retried until `SETTLE_MS`.
pub fn read_prefix_retry(addrs: &[SocketAddr], prefix: &[u8]) -> Result<(i64, Vec<Kv>), String> {
    let deadline = Instant::now() + Duration::from_millis(SETTLE_MS);
    let mut last = String::new();
    for i in 0.. {
        if Instant::now() > deadline {
            break;
        }
        let mut conn = connect(addrs[i % addrs.len()]);
        if conn.is_some() {
            match read_prefix(&mut conn, prefix) {
                Ok(r) => return Ok(r),
                Err(e) => last = e,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no member answered a read of {}: {last}",
        String::from_utf8_lossy(prefix)
    ))
}

/// Multi-key txns: each compares the mod revisions it last read of 2–3
/// shared keys, and on success puts or deletes each of them (at least one
/// put); on failure it puts the client's own marker key. So every txn
/// writes, whichever branch runs, and every value is unique.
pub fn txn_client(me: usize, seed: u64, sh: &Shared) -> Vec<WriteRecord> {
    let mut rng = rng_for(seed, me as u64);
    let keys: Vec<Vec<u8>> = (0..TXN_KEYS)
        .map(|k| format!("{TXN_PREFIX}{k}").into_bytes())
        .collect();
    let marker = format!("{FAIL_PREFIX}{me}").into_bytes();
    let mut known: Vec<i64> = vec![0; TXN_KEYS];
    let mut need_read = true;
    let mut conn: Option<Client> = None;
    let mut out = Vec::new();
    let mut n = 0u64;
    while !sh.stopped() {
        if rng.gen_range(0..50) == 0 {
            conn = None;
        }
        if conn_to(&mut conn, &mut rng, &sh.addrs).is_none() {
            continue;
        }
        if need_read || rng.gen_range(0..4) == 0 {
            match read_prefix(&mut conn, TXN_PREFIX.as_bytes()) {
                Ok((_, kvs)) => {
                    need_read = false;
                    for (k, key) in keys.iter().enumerate() {
                        known[k] = kvs
                            .iter()
                            .find(|kv| &kv.key == key)
                            .map_or(0, |kv| kv.mod_revision);
                    }
                }
                Err(_) => conn = None,
            }
            continue;
        }
        n += 1;
        let mut chosen: Vec<usize> = (0..TXN_KEYS).collect();
        chosen.shuffle(&mut rng);
        chosen.truncate(rng.gen_range(2..=3));
        let mut success: Vec<Change> = chosen
            .iter()
            .enumerate()
            .map(|(j, &k)| Change {
                key: keys[k].clone(),
                value: (rng.gen_range(0..4) != 0).then(|| format!("t{me}.{n}.{j}").into_bytes()),
            })
            .collect();
        if success.iter().all(|c| c.value.is_none()) {
            success[0].value = Some(format!("t{me}.{n}.0").into_bytes());
        }
        let failure = vec![Change {
            key: marker.clone(),
            value: Some(format!("t{me}.{n}.f").into_bytes()),
        }];
        let compares: Vec<(Vec<u8>, i64)> = chosen
            .iter()
            .map(|&k| (keys[k].clone(), known[k]))
            .collect();
        let answer = ask(&mut conn, |c, id| {
            txn_frame(c, id, &compares, &success, &failure)
        });
        let mut rec = WriteRecord {
            client: me,
            op: WriteOp::Txn {
                compares,
                success: success.clone(),
                failure,
            },
            outcome: Outcome::Unknown,
            revision: 0,
            succeeded: false,
        };
        match answer {
            Some(r) if r.error.is_none() => {
                rec.outcome = Outcome::Ok;
                rec.revision = r.revision;
                rec.succeeded = r.succeeded;
                if r.succeeded {
                    for (ch, &k) in success.iter().zip(&chosen) {
                        known[k] = if ch.value.is_some() { r.revision } else { 0 };
                    }
                } else {
                    need_read = true;
                }
            }
            Some(_) | None => need_read = true,
        }
        out.push(rec);
    }
    out
}

fn branch_ops(changes: &[Change]) -> Vec<RequestOpParams<'_>> {
    changes
        .iter()
        .map(|ch| match &ch.value {
            Some(v) => RequestOpParams::Put(PutParams {
                key: &ch.key,
                value: v,
                ..Default::default()
            }),
            None => RequestOpParams::DeleteRange(DeleteRangeParams {
                key: &ch.key,
                ..Default::default()
            }),
        })
        .collect()
}

fn txn_frame(
    c: &mut Client,
    id: u64,
    compares: &[(Vec<u8>, i64)],
    success: &[Change],
    failure: &[Change],
) -> Vec<u8> {
    let cmp: Vec<CompareParams<'_>> = compares
        .iter()
        .map(|(key, rev)| CompareParams {
            result: rpc::CompareResult::Equal,
            target: rpc::CompareTarget::Mod,
            key,
            mod_revision: *rev,
            ..Default::default()
        })
        .collect();
    let (success, failure) = (branch_ops(success), branch_ops(failure));
    c.enc
        .txn_request(
            id,
            &TxnParams {
                compare: &cmp,
                success: &success,
                failure: &failure,
            },
        )
        .to_vec()
}

/// What a lease client brings back.
#[derive(Default)]
pub struct LeaseLog {
    pub writes: Vec<WriteRecord>,
    pub leases: Vec<LeaseRecord>,
    pub problems: Vec<String>,
    /// Times TimeToLive said -1 for a lease that still existed (expired,
    /// revocation pending), and of those, times a read then still
    /// returned some of its keys.
    pub ttl_pending_seen: usize,
    pub ttl_pending_with_keys: usize,
}

/// One lease a client holds.
struct OpenLease {
    lease: i64,
    /// Left to expire (never kept alive) rather than revoked.
    expire: bool,
    ttl_s: i64,
    keys: usize,
    granted: Instant,
}

/// Leases, up to `LEASES_OPEN_MAX` at a time per client: grant (with an id
/// the client picks, so a grant with an unknown outcome can be retried),
/// put keys with them one by one, and end each by a revoke (TTL 30 s) or
/// by letting it expire (TTL 1–2 s, never kept alive, so puts race with
/// its expiry); after each end, read its keys. A client ends all of its
/// leases before it stops, so no lease ends after the run.
pub fn lease_client(me: usize, seed: u64, sh: &Shared) -> LeaseLog {
    let mut rng = rng_for(seed, me as u64);
    let mut log = LeaseLog::default();
    let mut conn: Option<Client> = None;
    let mut open: Vec<OpenLease> = Vec::new();
    let mut n = 0i64;
    loop {
        let stopping = sh.stopped();
        if stopping && open.is_empty() {
            return log;
        }
        if !stopping
            && open.len() < LEASES_OPEN_MAX
            && (open.is_empty() || rng.gen_range(0..4) == 0)
        {
            n += 1;
            let lease = ((me as i64 + 1) << 40) | n;
            let expire = rng.gen_range(0..5) < 2;
            let ttl_s = if expire { rng.gen_range(1..=2) } else { 30 };
            let granted = retry(&mut conn, &mut rng, &sh.addrs, |conn| {
                let r = ask(conn, |c, id| {
                    c.enc.lease_grant_request(id, ttl_s, lease).to_vec()
                })?;
                match r.error {
                    None => Some(true),
                    Some((_, e)) if e.contains("lease already exists") => Some(true),
                    Some(_) => None,
                }
            });
            if granted {
                open.push(OpenLease {
                    lease,
                    expire,
                    ttl_s,
                    keys: 0,
                    granted: Instant::now(),
                });
            } else {
                log.problems
                    .push(format!("client {me}: lease {lease:x} could not be granted"));
            }
            continue;
        }
        let i = rng.gen_range(0..open.len());
        let l = &mut open[i];
        if !stopping && l.keys < 4 && rng.gen_bool(0.6) {
            let key = format!("{}{}", lease_key_prefix(l.lease), l.keys).into_bytes();
            let value = format!("l{me}.{:x}.{}", l.lease, l.keys).into_bytes();
            l.keys += 1;
            if conn_to(&mut conn, &mut rng, &sh.addrs).is_none() {
                continue;
            }
            let mut rec = WriteRecord {
                client: me,
                op: WriteOp::Put {
                    key: key.clone(),
                    value: value.clone(),
                    lease: l.lease,
                },
                outcome: Outcome::Unknown,
                revision: 0,
                succeeded: false,
            };
            let lease = l.lease;
            let answer = ask(&mut conn, |c, id| {
                let p = PutParams {
                    key: &key,
                    value: &value,
                    lease,
                    ..Default::default()
                };
                c.enc.put_request(id, &p).to_vec()
            });
            match answer.map(|r| (r.error, r.revision)) {
                Some((None, revision)) => {
                    rec.outcome = Outcome::Ok;
                    rec.revision = revision;
                }
                Some((Some((_, e)), _)) if definite(&e) => rec.outcome = Outcome::Failed,
                Some(_) | None => {}
            }
            log.writes.push(rec);
            continue;
        }
        let (lease, expire, ttl_s, granted) = (l.lease, l.expire, l.ttl_s, l.granted);
        let ended = if expire {
            if conn_to(&mut conn, &mut rng, &sh.addrs).is_none() {
                continue;
            }
            let answer = ask(&mut conn, |c, id| {
                c.enc.lease_time_to_live_request(id, lease, false).to_vec()
            });
            let gone = match answer.map(|r| r.error) {
                Some(None) => {
                    let t = lease_body(&conn);
                    // TTL -1 with the granted TTL still known is an expired
                    // lease whose revocation is pending (docs/watch-lease.md):
                    // its keys may still be there. Gone is TTL -1, granted 0.
                    if t.ttl == -1 && t.granted_ttl != 0 {
                        log.ttl_pending_seen += 1;
                        let prefix = lease_key_prefix(lease).into_bytes();
                        if read_prefix(&mut conn, &prefix).is_ok_and(|(_, kvs)| !kvs.is_empty()) {
                            log.ttl_pending_with_keys += 1;
                        }
                    }
                    t.ttl == -1 && t.granted_ttl == 0
                }
                Some(Some((_, e))) => definite(&e),
                None => false,
            };
            if !gone && granted.elapsed() > Duration::from_millis(SETTLE_MS) {
                log.problems.push(format!(
                    "client {me}: lease {lease:x} (TTL {ttl_s} s) did not expire within \
                     {SETTLE_MS} ms"
                ));
                open.swap_remove(i);
                continue;
            }
            if !gone && stopping {
                std::thread::sleep(Duration::from_millis(50));
            }
            gone.then_some((LeaseEnd::Expired, None))
        } else {
            let mut revoked_at = None;
            let done = retry(&mut conn, &mut rng, &sh.addrs, |conn| {
                let r = ask(conn, |c, id| c.enc.lease_revoke_request(id, lease).to_vec())?;
                match r.error {
                    None => {
                        revoked_at = Some(r.revision);
                        Some(true)
                    }
                    // An earlier attempt with an unknown outcome did it.
                    Some((_, e)) if definite(&e) => Some(true),
                    Some(_) => None,
                }
            });
            if !done {
                log.problems.push(format!(
                    "client {me}: lease {lease:x} could not be revoked within {SETTLE_MS} ms"
                ));
            }
            done.then_some((LeaseEnd::Revoked, revoked_at))
        };
        let Some((end, revoke_revision)) = ended else {
            continue;
        };
        open.swap_remove(i);
        let prefix = lease_key_prefix(lease).into_bytes();
        match read_prefix_retry(&sh.addrs, &prefix) {
            Ok((read_revision, kvs)) => log.leases.push(LeaseRecord {
                client: me,
                lease,
                end,
                revoke_revision,
                read_revision,
                keys_left: kvs.into_iter().map(|kv| kv.key).collect(),
            }),
            Err(e) => log.problems.push(format!("client {me}: {e}")),
        }
    }
}

/// Call `f` on a connection until it returns `Some`, moving to a random
/// member half of the time after a `None`, for up to `SETTLE_MS`. Returns
/// what `f` returned, or false.
fn retry(
    conn: &mut Option<Client>,
    rng: &mut ChaCha8Rng,
    addrs: &[SocketAddr],
    mut f: impl FnMut(&mut Option<Client>) -> Option<bool>,
) -> bool {
    let deadline = Instant::now() + Duration::from_millis(SETTLE_MS);
    while Instant::now() < deadline {
        if conn_to(conn, rng, addrs).is_none() {
            continue;
        }
        if let Some(v) = f(conn) {
            return v;
        }
        if rng.gen_bool(0.5) {
            *conn = None;
        }
    }
    false
}

/// Watch ids of one watcher thread are `me * WATCH_CHAINS_MAX + chain`.
pub const WATCH_CHAINS_MAX: usize = 1_000;

/// A watcher: watches every key of the workload with `prev_kv` through a
/// random member. A *chain* of streams starts from "now" or from an old
/// revision; when a stream ends (member killed, idle for a reply timeout,
/// or after a random number of responses, to move to another member) the
/// chain resumes on a random member from the revision after the last it
/// received. Sometimes it abandons the chain and starts a new one. After
/// the writers stop, its last chain runs until it has the final revision.
pub fn watcher(me: usize, seed: u64, sh: &Shared, first_revision: i64) -> Vec<WatchSegment> {
    let mut rng = rng_for(seed, 1000 + me as u64);
    let mut segs: Vec<WatchSegment> = Vec::new();
    let mut chain = 0;
    // 0: from now.
    let mut next_start = if me % 2 == 0 { 0 } else { first_revision };
    let mut give_up: Option<Instant> = None;
    loop {
        let fin = sh.final_revision.load(Ordering::SeqCst);
        if fin > 0 && next_start > fin {
            return segs;
        }
        if sh.stopped() {
            let at =
                *give_up.get_or_insert_with(|| Instant::now() + Duration::from_millis(SETTLE_MS));
            if Instant::now() > at {
                return segs;
            }
        }
        let member = rng.gen_range(0..sh.addrs.len());
        let Some(mut c) = connect(sh.addrs[member]) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let id = me * WATCH_CHAINS_MAX + chain;
        let Some(mut seg) = open_watch(&mut c, id, member, next_start) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let budget = rng.gen_range(20..300);
        seg.ended = follow(&mut c, &mut seg, sh, budget);
        next_start = seg.last_revision() + 1;
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
    };
    if !w.created || w.canceled {
        seg.ended = format!("refused: {w:?}");
    }
    Some(seg)
}

/// Receive events until the stream ends, or, while the writers run, until
/// `budget` responses came; returns why it ended.
fn follow(c: &mut Client, seg: &mut WatchSegment, sh: &Shared, budget: usize) -> String {
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
        if w.canceled {
            return format!(
                "canceled: {} (compact revision {})",
                w.cancel_reason, w.compact_revision
            );
        }
        if !w.events.is_empty() {
            seg.responses.push(w.events);
        }
    }
}

/// The whole history from `from` through one member's watch, up to
/// `final_revision`.
pub fn read_history(
    addr: SocketAddr,
    from: i64,
    final_revision: i64,
) -> Result<Vec<Event>, String> {
    let deadline = Instant::now() + Duration::from_millis(SETTLE_MS);
    loop {
        let attempt = (|| {
            let mut c = connect(addr).ok_or("cannot connect")?;
            let mut seg = open_watch(&mut c, 0, 0, from).ok_or("watch refused")?;
            while seg.last_revision() < final_revision {
                let r = c
                    .recv()
                    .map_err(|e| format!("after revision {}: {e}", seg.last_revision()))?;
                let w = watch_frame(&c.frame).ok_or("not a watch response")?;
                if w.canceled || r.error.is_some() {
                    return Err(format!("canceled: {w:?} {:?}", r.error));
                }
                seg.responses.push(w.events);
            }
            Ok::<_, String>(seg.events().cloned().collect())
        })();
        match attempt {
            Ok(h) => return Ok(h),
            Err(e) if Instant::now() > deadline => return Err(format!("history from {addr}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The fault injector. In turn: kills the leader with SIGKILL; isolates a
/// random member behind the partition proxies; stops a random member with
/// SIGSTOP; cuts every link into the leader one way (it still sends
/// heartbeats but hears no answer); kills a random member (leader or not).
/// Each fault is held for 1–2 s and undone (restart, heal, SIGCONT), then
/// 0.5–1.5 s of quiet. Returns the faults it injected.
pub fn nemesis(pc: &Mutex<ProxiedCluster>, seed: u64, until: Instant) -> Vec<String> {
    let lock = || pc.lock().unwrap_or_else(|e| e.into_inner());
    let leader = || lock().cluster.wait_leader(Duration::from_secs(20));
    let mut rng = rng_for(seed, 0x5eed);
    let mut faults = Vec::new();
    std::thread::sleep(Duration::from_millis(1_000));
    let mut round = 0;
    while Instant::now() + Duration::from_millis(2_500) < until {
        let hold = Duration::from_millis(rng.gen_range(1_000..2_000));
        let n = lock().cluster.members.len();
        match round % 5 {
            0 | 4 => {
                let k = if round % 5 == 0 {
                    leader()
                } else {
                    rng.gen_range(0..n)
                };
                lock().cluster.members[k].kill9();
                let who = if round % 5 == 0 { "leader " } else { "" };
                faults.push(format!("kill -9 {who}m{}", k + 1));
                std::thread::sleep(hold);
                lock().cluster.members[k].spawn();
            }
            1 => {
                let k = rng.gen_range(0..n);
                lock().isolate(k);
                faults.push(format!("isolate m{}", k + 1));
                std::thread::sleep(hold);
                lock().heal();
            }
            2 => {
                let k = rng.gen_range(0..n);
                lock().cluster.members[k].pause(true);
                faults.push(format!("SIGSTOP m{}", k + 1));
                std::thread::sleep(hold);
                lock().cluster.members[k].pause(false);
            }
            _ => {
                let k = leader();
                {
                    let g = lock();
                    for j in (0..n).filter(|&j| j != k) {
                        g.set_link(j, k, Mode::Drop);
                    }
                }
                faults.push(format!("nothing reaches leader m{}", k + 1));
                std::thread::sleep(hold);
                lock().heal();
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(rng.gen_range(500..1_500)));
    }
    faults
}
