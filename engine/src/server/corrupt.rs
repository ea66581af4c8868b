//! Corruption detection: members compare the hash of their key-value
//! history (`HashKV`) at the same revision, as etcd's
//! `--experimental-initial-corrupt-check` and
//! `--experimental-corrupt-check-time` do.
//!
//! A member asks each peer, over the peer's advertised client URL, for its
//! hash at the peer's latest revision; if the peer is ahead it asks again at
//! its own revision. Both sides then hash the same revision, and when their
//! compaction points agree the hashes must be equal. (Members at different
//! compaction points, or a peer that cannot answer, are skipped this round.)
//!
//! - **Start-up** (`--experimental-initial-corrupt-check`): once the member
//!   knows its peers' client URLs, it compares itself with each; any
//!   mismatch stops the member with etcd's error ("found data inconsistency
//!   with peers"), so a member with damaged state never rejoins.
//! - **Periodic** (`--experimental-corrupt-check-time`): the leader compares
//!   itself with every follower. If it disagrees with more followers than
//!   agree with it, the leader itself is the odd one out; otherwise each
//!   follower that disagrees is. The odd members get the CORRUPT alarm,
//!   raised through the log, which every member applies: like etcd, a
//!   cluster with a CORRUPT alarm refuses every write ("etcdserver: corrupt
//!   cluster") until an operator has replaced the bad member and disarmed
//!   the alarm, so bad data cannot spread through new writes.
//!
//! Hashing walks the whole history at once (as etcd's does); the check is
//! off by default and meant to run every few minutes or hours.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_wire::{decode_response, Encoder, FrameDecoder, ResponseBodyView, CLIENT_PREFACE};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::limits::{CORRUPT_CHECK_PEER_TIMEOUT_MS, CORRUPT_INITIAL_CHECK_WAIT_MS};
use crate::mvcc::Mvcc;

/// etcd's answer to a write while a CORRUPT alarm is raised.
pub const CORRUPT_CLUSTER: &str = "etcdserver: corrupt cluster";

/// Whether a request is refused while a CORRUPT alarm is raised: every
/// write (etcd's corrupt applier refuses the same ones). Alarm requests
/// stay allowed, so the alarm can be disarmed.
pub fn refused_when_corrupt(body: &cairn_wire::RequestBodyView<'_>) -> bool {
    use cairn_wire::RequestBodyView as B;
    matches!(
        body,
        B::Put(_)
            | B::DeleteRange(_)
            | B::Txn(_)
            | B::Compaction(_)
            | B::LeaseGrant(_)
            | B::LeaseRevoke(_)
    )
}

/// The test-only hook behind `--experimental-test-inject-divergent-kv`:
/// write `key=value` into this member's index alone, outside the log.
pub fn inject(mvcc: &mut Mvcc, spec: &str) {
    let (key, value) = spec.split_once('=').unwrap_or((spec, ""));
    tracing::warn!(
        key,
        "TEST HOOK: writing a value into this member only; its state now differs from its peers'"
    );
    let put = crate::mvcc::PutRequest {
        key: key.as_bytes(),
        value: value.as_bytes(),
        ..Default::default()
    };
    if let Err(e) = mvcc.put(&put) {
        tracing::error!("TEST HOOK: the divergent write failed: {e}");
    }
}

/// What comparing with one peer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Mismatch {
        revision: i64,
        mine: u32,
        theirs: u32,
    },
    /// No comparison was possible this round (unreachable, compacted,
    /// different compaction points).
    Skipped(String),
}

/// The outcome of a whole round.
pub struct Round {
    pub initial: bool,
    pub verdicts: Vec<(u64, Verdict)>,
}

/// Which members a leader's round finds corrupt: itself if more followers
/// disagree with it than agree, else every follower that disagrees.
pub fn odd_members(me: u64, verdicts: &[(u64, Verdict)]) -> Vec<u64> {
    let agree = 1 + verdicts
        .iter()
        .filter(|(_, v)| *v == Verdict::Match)
        .count();
    let disagree: Vec<u64> = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Mismatch { .. }))
        .map(|(id, _)| *id)
        .collect();
    if disagree.len() > agree {
        vec![me]
    } else {
        disagree
    }
}

/// Schedules checks and carries their results back to the shard.
pub struct Checker {
    initial_pending: bool,
    initial_deadline: Instant,
    period: Option<Duration>,
    next_periodic: Instant,
    running: bool,
    done: Rc<RefCell<Option<Round>>>,
}

impl Checker {
    pub fn new(initial: bool, period: Duration, now: Instant) -> Checker {
        Checker {
            initial_pending: initial,
            initial_deadline: now + Duration::from_millis(CORRUPT_INITIAL_CHECK_WAIT_MS),
            period: (!period.is_zero()).then_some(period),
            next_periodic: now + period,
            running: false,
            done: Rc::new(RefCell::new(None)),
        }
    }

    /// Whether any check is configured at all.
    pub fn enabled(&self) -> bool {
        self.initial_pending || self.period.is_some()
    }

    /// A finished round, if one came back.
    pub fn take_result(&mut self) -> Option<Round> {
        let r = self.done.borrow_mut().take();
        if r.is_some() {
            self.running = false;
        }
        r
    }

    /// Called on every tick. `peers` are the other members with a known
    /// client address; `all_known` says whether every member's is known.
    pub fn tick(
        &mut self,
        now: Instant,
        leader: bool,
        have_leader: bool,
        peers: Vec<(u64, SocketAddr)>,
        all_known: bool,
        mvcc: &Rc<RefCell<Mvcc>>,
    ) {
        if self.running {
            return;
        }
        let initial =
            self.initial_pending && have_leader && (all_known || now >= self.initial_deadline);
        let periodic = leader && self.period.is_some() && now >= self.next_periodic;
        if !initial && !periodic {
            return;
        }
        if initial {
            self.initial_pending = false;
        }
        if let Some(p) = self.period {
            self.next_periodic = now + p;
        }
        if peers.is_empty() {
            return;
        }
        self.running = true;
        let done = self.done.clone();
        let mvcc = mvcc.clone();
        glommio::spawn_local(async move {
            let mut verdicts = Vec::with_capacity(peers.len());
            for (id, addr) in peers {
                verdicts.push((id, compare(&mvcc, addr).await));
            }
            *done.borrow_mut() = Some(Round { initial, verdicts });
        })
        .detach();
    }
}

/// Compare this member's hash with the peer's at a revision both have.
async fn compare(mvcc: &Rc<RefCell<Mvcc>>, addr: SocketAddr) -> Verdict {
    let theirs = match fetch(addr, 0).await {
        Ok(h) => h,
        Err(e) => return Verdict::Skipped(e),
    };
    let my_rev = mvcc.borrow().current_revision();
    let theirs = if theirs.revision > my_rev {
        match fetch(addr, my_rev).await {
            Ok(h) => h,
            Err(e) => return Verdict::Skipped(e),
        }
    } else {
        theirs
    };
    let mine = match mvcc.borrow().hash_kv(theirs.revision) {
        Ok(h) => h,
        Err(e) => return Verdict::Skipped(format!("own hash at {}: {e}", theirs.revision)),
    };
    if mine.compact_revision != theirs.compact_revision {
        return Verdict::Skipped(format!(
            "compacted at {} here and at {} there",
            mine.compact_revision, theirs.compact_revision
        ));
    }
    if mine.hash == theirs.hash {
        Verdict::Match
    } else {
        Verdict::Mismatch {
            revision: theirs.revision,
            mine: mine.hash,
            theirs: theirs.hash,
        }
    }
}

/// A peer's answer to HashKV.
struct PeerHash {
    hash: u32,
    revision: i64,
    compact_revision: i64,
}

/// One HashKV request on a fresh connection to a peer's client address.
async fn fetch(addr: SocketAddr, revision: i64) -> Result<PeerHash, String> {
    let limit = Duration::from_millis(CORRUPT_CHECK_PEER_TIMEOUT_MS);
    let work = async {
        let result = async {
            let mut sock = glommio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            let mut out = CLIENT_PREFACE.to_vec();
            out.extend_from_slice(Encoder::new().hash_kv_request(1, revision));
            sock.write_all(&out)
                .await
                .map_err(|e| format!("write to {addr}: {e}"))?;
            let mut decoder = FrameDecoder::for_responses();
            loop {
                if let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
                    let view = decode_response(frame).map_err(|e| e.to_string())?;
                    return match view.body {
                        Ok(ResponseBodyView::HashKv(h)) => Ok(PeerHash {
                            hash: h.hash(),
                            revision: h.hash_revision(),
                            compact_revision: h.compact_revision(),
                        }),
                        Ok(other) => Err(format!("unexpected {}", other.type_name())),
                        Err(e) => Err(e.message.to_string()),
                    };
                }
                let n = sock
                    .read(decoder.read_buf())
                    .await
                    .map_err(|e| format!("read from {addr}: {e}"))?;
                if n == 0 {
                    return Err(format!("{addr} closed the connection"));
                }
                decoder.commit(n).map_err(|e| e.to_string())?;
            }
        }
        .await;
        Ok::<_, glommio::GlommioError<()>>(result)
    };
    match glommio::timer::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("{addr} did not answer within {limit:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatch() -> Verdict {
        Verdict::Mismatch {
            revision: 5,
            mine: 1,
            theirs: 2,
        }
    }

    #[test]
    fn the_minority_is_corrupt() {
        // Leader agrees with one follower, not the other: the other is bad.
        let v = vec![(2, Verdict::Match), (3, mismatch())];
        assert_eq!(odd_members(1, &v), vec![3]);
        // Leader disagrees with both followers: the leader is bad.
        let v = vec![(2, mismatch()), (3, mismatch())];
        assert_eq!(odd_members(1, &v), vec![1]);
        // Unknowns count for nobody.
        let v = vec![(2, Verdict::Skipped("down".into())), (3, Verdict::Match)];
        assert!(odd_members(1, &v).is_empty());
        // Two members: the follower is flagged, as etcd does.
        assert_eq!(odd_members(1, &[(2, mismatch())]), vec![2]);
    }
}
