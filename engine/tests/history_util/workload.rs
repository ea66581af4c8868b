//! The clients of the history test (txns and leases). Each runs
//! on its own thread over the blocking test client, talks to random
//! members, and records what it saw; none of them judges anything.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_wire::{
    rpc, CompareParams, DeleteRangeParams, PutParams, RangeParams, RequestOpParams, TxnParams,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    lease_key_prefix, prefix_end, range_kvs, Change, Kv, LeaseEnd, LeaseRecord, Outcome, WriteOp,
    WriteRecord, FAIL_PREFIX, TXN_PREFIX,
};
use crate::common::{Client, LeaseReply, Reply};

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
    /// The client addresses of the voting members; membership changes
    /// replace them while the clients run.
    addrs: Mutex<Vec<SocketAddr>>,
    pub stop: AtomicBool,
    /// 0 until the writers are done and the final revision is known.
    pub final_revision: AtomicI64,
    /// The last revision the recorder received: the compactor stays at or
    /// below the next one.
    pub recorded: AtomicI64,
}

impl Shared {
    pub fn new(addrs: Vec<SocketAddr>) -> Shared {
        Shared {
            addrs: Mutex::new(addrs),
            stop: AtomicBool::new(false),
            final_revision: AtomicI64::new(0),
            recorded: AtomicI64::new(0),
        }
    }

    /// The members' client addresses now.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.addrs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stop sending clients to `addr` (a member about to be removed).
    pub fn remove_addr(&self, addr: SocketAddr) {
        let mut a = self.addrs.lock().unwrap_or_else(|e| e.into_inner());
        a.retain(|x| *x != addr);
    }

    /// Send clients to `addr` too (a member that joined).
    pub fn add_addr(&self, addr: SocketAddr) {
        let mut a = self.addrs.lock().unwrap_or_else(|e| e.into_inner());
        if !a.contains(&addr) {
            a.push(addr);
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

pub fn rng_for(seed: u64, who: u64) -> ChaCha8Rng {
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
pub fn conn_to<'a>(
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
pub fn ask(
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
    read_prefix_at(conn, prefix, 0)
}

/// [`read_prefix`] at `revision` (0: the latest).
pub fn read_prefix_at(
    conn: &mut Option<Client>,
    prefix: &[u8],
    revision: i64,
) -> Result<(i64, Vec<Kv>), String> {
    let end = prefix_end(prefix);
    let r = ask(conn, |c, id| {
        c.enc
            .range_request(
                id,
                &RangeParams {
                    key: prefix,
                    range_end: &end,
                    revision,
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
        if conn_to(&mut conn, &mut rng, &sh.addrs()).is_none() {
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
            let granted = retry(&mut conn, &mut rng, &sh.addrs(), |conn| {
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
            if conn_to(&mut conn, &mut rng, &sh.addrs()).is_none() {
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
            if conn_to(&mut conn, &mut rng, &sh.addrs()).is_none() {
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
            let done = retry(&mut conn, &mut rng, &sh.addrs(), |conn| {
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
        match read_prefix_retry(&sh.addrs(), &prefix) {
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
