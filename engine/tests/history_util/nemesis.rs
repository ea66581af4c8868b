//! The fault injector of the history test.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use super::members;
use super::workload::{rng_for, Shared};
use crate::common::proxy::Mode;
use crate::common::ProxiedCluster;

/// Which faults run (`CAIRN_HISTORY_MEMBERSHIP=0` turns membership
/// changes off).
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub membership: bool,
}

/// What the fault injector did.
#[derive(Debug, Default)]
pub struct NemesisLog {
    pub faults: Vec<String>,
    pub membership_changes: usize,
    pub problems: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    KillLeader,
    Membership,
    Isolate,
    Stop,
    OneWay,
    KillAny,
}

/// The fault injector. In turn: kills the leader with SIGKILL; replaces a
/// member (the leader or a follower; alternately through a learner that
/// is promoted before the old member is removed, and by removing the old
/// member before adding a voter, see [`members`]); isolates a random
/// member behind the partition proxies; stops a random member with
/// SIGSTOP; cuts every link into the leader one way (it still sends
/// heartbeats but hears no answer); kills a random member (leader or
/// not). Each fault but the membership change is held for 1–2 s and
/// undone (restart, heal, SIGCONT); after each, 0.5–1.5 s of quiet.
pub fn nemesis(
    pc: &Mutex<ProxiedCluster>,
    sh: &Shared,
    seed: u64,
    until: Instant,
    f: Faults,
) -> NemesisLog {
    let lock = || pc.lock().unwrap_or_else(|e| e.into_inner());
    let leader = || lock().cluster.wait_leader(Duration::from_secs(20));
    let mut rng = rng_for(seed, 0x5eed);
    let mut log = NemesisLog::default();
    let kinds: Vec<Kind> = [
        Kind::KillLeader,
        Kind::Membership,
        Kind::Isolate,
        Kind::Stop,
        Kind::OneWay,
        Kind::KillAny,
    ]
    .into_iter()
    .filter(|k| f.membership || *k != Kind::Membership)
    .collect();
    let mut next_member = lock().cluster.members.len() + 1;
    std::thread::sleep(Duration::from_millis(1_000));
    let mut round = 0;
    while Instant::now() + Duration::from_millis(2_500) < until {
        let hold = Duration::from_millis(rng.gen_range(1_000..2_000));
        let n = lock().cluster.members.len();
        let name = |k: usize| lock().cluster.members[k].name.clone();
        match kinds[round % kinds.len()] {
            kind @ (Kind::KillLeader | Kind::KillAny) => {
                let k = if kind == Kind::KillLeader {
                    leader()
                } else {
                    rng.gen_range(0..n)
                };
                lock().cluster.members[k].kill9();
                let who = if kind == Kind::KillLeader {
                    "leader "
                } else {
                    ""
                };
                log.faults.push(format!("kill -9 {who}{}", name(k)));
                std::thread::sleep(hold);
                lock().cluster.members[k].spawn();
            }
            Kind::Membership => {
                let learner = log.membership_changes % 2 == 0;
                let new = format!("m{next_member}");
                next_member += 1;
                log.membership_changes += 1;
                let mut problems = Vec::new();
                match members::replace(pc, sh, &mut rng, learner, &new, &mut problems) {
                    Ok(done) => log.faults.push(done),
                    Err(e) => problems.push(format!("membership change to add {new}: {e}")),
                }
                log.problems.extend(problems);
            }
            Kind::Isolate => {
                let k = rng.gen_range(0..n);
                lock().isolate(k);
                log.faults.push(format!("isolate {}", name(k)));
                std::thread::sleep(hold);
                lock().heal();
            }
            Kind::Stop => {
                let k = rng.gen_range(0..n);
                lock().cluster.members[k].pause(true);
                log.faults.push(format!("SIGSTOP {}", name(k)));
                std::thread::sleep(hold);
                lock().cluster.members[k].pause(false);
            }
            Kind::OneWay => {
                let k = leader();
                {
                    let g = lock();
                    for j in (0..n).filter(|&j| j != k) {
                        g.set_link(j, k, Mode::Drop);
                    }
                }
                log.faults
                    .push(format!("nothing reaches leader {}", name(k)));
                std::thread::sleep(hold);
                lock().heal();
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(rng.gen_range(500..1_500)));
    }
    log
}
