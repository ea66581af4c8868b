//! Membership changes during the history run: a member of the proxied
//! cluster is replaced by a fresh one (new name, empty data dir, its own
//! partition proxy), either by removing it and then adding a voter, or by
//! adding a learner, promoting it once it caught up, and then removing
//! the old member. The new member takes the old one's slot, so the fault
//! injector's other faults reach it, and the clients are sent to it once
//! it answers a linearizable read.
//!
//! Every request is made idempotent by looking at the member list first,
//! so one whose answer was lost can be sent again.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_wire::{decode_response, ResponseBodyView};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::workload::{connect, read_prefix, Shared, SETTLE_MS};
use super::PREFIX;
use crate::common::proxy::Proxy;
use crate::common::{free_port, Client, ProxiedCluster, Server};

/// (id, first peer URL, is learner) of one member.
type Row = (u64, String, bool);

fn rows(frame: &[u8]) -> Result<Vec<Row>, String> {
    let view = decode_response(frame).map_err(|e| e.to_string())?;
    let list = match view.body {
        Ok(ResponseBodyView::MemberList(r)) => r.members(),
        Ok(ResponseBodyView::MemberAdd(r)) => r.members(),
        Ok(ResponseBodyView::MemberRemove(r)) => r.members(),
        Ok(ResponseBodyView::MemberPromote(r)) => r.members(),
        Ok(_) => return Err("not a member response".into()),
        Err(e) => return Err(e.message.to_string()),
    };
    Ok(list
        .into_iter()
        .flatten()
        .map(|m| {
            let url = m.peer_urls().and_then(|u| u.iter().next()).unwrap_or("");
            (m.id(), url.to_string(), m.is_learner())
        })
        .collect())
}

/// Send `frame` and return the member list of its answer.
fn member_call(c: &mut Client, frame: Vec<u8>) -> Result<Vec<Row>, String> {
    let r = c.call(frame).map_err(|e| e.to_string())?;
    if let Some((_, m)) = r.error {
        return Err(m);
    }
    rows(&c.frame)
}

fn member_list(c: &mut Client) -> Result<Vec<Row>, String> {
    let id = c.id();
    let f = c.enc.member_list_request(id, true).to_vec();
    member_call(c, f)
}

/// Run `step` on a connection to the leader until it returns
/// `Ok(Some(_))`, for up to `SETTLE_MS`.
fn on_leader<T>(
    pc: &Mutex<ProxiedCluster>,
    what: &str,
    mut step: impl FnMut(&mut Client) -> Result<Option<T>, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + Duration::from_millis(SETTLE_MS);
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        let addr = {
            let g = pc.lock().unwrap_or_else(|e| e.into_inner());
            let i = g.cluster.wait_leader(Duration::from_millis(SETTLE_MS));
            g.cluster.members[i].addr
        };
        if let Some(mut c) = connect(addr) {
            match step(&mut c) {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => last = "not yet".into(),
                Err(e) => last = e,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what}: {last}"))
}

/// Add a member with `url` (a learner or a voter); returns its id.
fn add(pc: &Mutex<ProxiedCluster>, url: &str, learner: bool) -> Result<u64, String> {
    on_leader(pc, "member add", |c| {
        if let Some(m) = member_list(c)?.into_iter().find(|m| m.1 == url) {
            return Ok(Some(m.0));
        }
        let id = c.id();
        let f = c.enc.member_add_request(id, &[url], learner).to_vec();
        let list = member_call(c, f)?;
        Ok(list.into_iter().find(|m| m.1 == url).map(|m| m.0))
    })
}

fn promote(pc: &Mutex<ProxiedCluster>, member: u64) -> Result<(), String> {
    on_leader(pc, "member promote", |c| {
        if member_list(c)?.iter().any(|m| m.0 == member && !m.2) {
            return Ok(Some(()));
        }
        let id = c.id();
        let f = c.enc.member_promote_request(id, member).to_vec();
        // "in sync with leader": not caught up yet; asked again.
        member_call(c, f).map(|_| None)
    })
}

fn remove(pc: &Mutex<ProxiedCluster>, member: u64) -> Result<(), String> {
    on_leader(pc, "member remove", |c| {
        if !member_list(c)?.iter().any(|m| m.0 == member) {
            return Ok(Some(()));
        }
        let id = c.id();
        let f = c.enc.member_remove_request(id, member).to_vec();
        member_call(c, f).map(|_| None)
    })
}

/// A new member process listening for peers on `peer_port` (behind the
/// proxy at `url`), started to join the running cluster; `skip` is a slot
/// whose member was removed.
fn joiner(
    pc: &ProxiedCluster,
    skip: Option<usize>,
    name: &str,
    (url, peer_port): (&str, u16),
    dir: &std::path::Path,
) -> Server {
    let mut initial: Vec<String> = pc
        .cluster
        .members
        .iter()
        .zip(&pc.proxies)
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, (m, p))| format!("{}=http://127.0.0.1:{}", m.name, p.port))
        .collect();
    initial.push(format!("{name}={url}"));
    let mut s = Server {
        child: None,
        addr: format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("a loopback address"),
        data_dir: dir.to_path_buf(),
        peer_port,
        extra: [
            "--initial-cluster",
            &initial.join(","),
            "--initial-cluster-state",
            "existing",
            "--initial-cluster-token",
            "e2e-proxied",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        name: name.into(),
        wait_put: false,
    };
    s.spawn();
    s
}

/// Remove the member in slot `k`: clients stop using it first; it must
/// exit (with an error, like etcd) once it learns of its removal.
fn remove_slot(
    pc: &Mutex<ProxiedCluster>,
    sh: &Shared,
    k: usize,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    let lock = || pc.lock().unwrap_or_else(|e| e.into_inner());
    let (addr, id, name) = {
        let g = lock();
        (
            g.cluster.members[k].addr,
            g.ids[k],
            g.cluster.members[k].name.clone(),
        )
    };
    sh.remove_addr(addr);
    remove(pc, id)?;
    let child = lock().cluster.members[k].child.take();
    if let Some(mut child) = child {
        let deadline = Instant::now() + Duration::from_millis(SETTLE_MS);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if status.success() {
                        problems.push(format!("removed member {name} exited with success"));
                    }
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) | Err(_) => {
                    problems.push(format!("removed member {name} kept running"));
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Wait until `addr` answers a linearizable read, then send clients to it.
fn admit(sh: &Shared, addr: SocketAddr, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_millis(SETTLE_MS);
    loop {
        let mut conn = connect(addr);
        if conn.is_some() && read_prefix(&mut conn, PREFIX).is_ok() {
            sh.add_addr(addr);
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("new member {name} never answered a read"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Replace the leader or a random follower by a new member named `name`;
/// through a learner if `learner`. Returns what was done.
pub fn replace(
    pc: &Mutex<ProxiedCluster>,
    sh: &Shared,
    rng: &mut ChaCha8Rng,
    learner: bool,
    name: &str,
    problems: &mut Vec<String>,
) -> Result<String, String> {
    let lock = || pc.lock().unwrap_or_else(|e| e.into_inner());
    let (k, old, was_leader) = {
        let g = lock();
        let n = g.cluster.members.len();
        let leader = g.cluster.wait_leader(Duration::from_millis(SETTLE_MS));
        let k = if rng.gen_bool(0.5) {
            leader
        } else {
            (leader + rng.gen_range(1..n)) % n
        };
        (k, g.cluster.members[k].name.clone(), k == leader)
    };
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let port = free_port();
    let proxy = Proxy::start(format!("127.0.0.1:{port}").parse().expect("loopback"));
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let who = if was_leader { "leader " } else { "" };
    let id = if learner {
        let id = add(pc, &url, true)?;
        {
            // In the cluster from now on, so that it is found once it leads.
            let mut g = lock();
            let server = joiner(&g, None, name, (&url, port), dir.path());
            g.cluster.members.push(server);
            g.proxies.push(proxy);
            g.ids.push(id);
            g.cluster.keep_dir(dir);
        }
        promote(pc, id)?;
        remove_slot(pc, sh, k, problems)?;
        // The new member takes the old one's slot.
        let mut g = lock();
        g.cluster.members.swap_remove(k);
        g.proxies.swap_remove(k);
        g.ids.swap_remove(k);
        id
    } else {
        remove_slot(pc, sh, k, problems)?;
        let id = add(pc, &url, false)?;
        let server = joiner(&lock(), Some(k), name, (&url, port), dir.path());
        install(pc, k, server, proxy, id, dir);
        id
    };
    let addr = lock().cluster.members[k].addr;
    admit(sh, addr, name)?;
    Ok(if learner {
        format!("learner {name} ({id:x}) promoted, {who}{old} removed")
    } else {
        format!("{who}{old} removed, {name} ({id:x}) added")
    })
}

fn install(
    pc: &Mutex<ProxiedCluster>,
    k: usize,
    server: Server,
    proxy: Proxy,
    id: u64,
    dir: tempfile::TempDir,
) {
    let mut g = pc.lock().unwrap_or_else(|e| e.into_inner());
    g.cluster.members[k] = server;
    g.proxies[k] = proxy;
    g.ids[k] = id;
    g.cluster.keep_dir(dir);
}
