//! Lease keep-alive, locks and elections against a real `cairn`.

#[path = "support/process.rs"]
mod process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_client::concurrency::{Election, Lock, Observer, Session};
use cairn_client::{Compare, CompareResult, Error, GetOptions, LeaseState, Op, PutOptions, Txn};
use process::Cluster;

/// The shortest TTL the test members grant (1.5 × a 500 ms election
/// timeout, rounded up).
const TTL_S: i64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_holds_a_short_lease_and_reports_its_revocation() {
    let cluster = Cluster::start(1).await;
    let client = cluster.client().await;
    let lease = client.lease_grant(TTL_S, 0).await.unwrap();
    let mut keeper = client.lease_keep_alive(lease.id).await.unwrap();
    client
        .put("kept", "v", PutOptions::new().with_lease(lease.id))
        .await
        .unwrap();
    // Three TTLs: without renewals the key would be gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(matches!(keeper.state(), LeaseState::Alive { ttl } if ttl >= TTL_S));
    let got = client.get("kept", GetOptions::new()).await.unwrap();
    assert_eq!(got.kvs.len(), 1, "the kept lease's key expired");

    client.lease_revoke(lease.id).await.unwrap();
    let why = tokio::time::timeout(Duration::from_secs(5), keeper.lost())
        .await
        .expect("the keeper never noticed the revocation");
    assert_eq!(why, Error::LeaseNotFound);
    assert!(keeper.is_lost());
    // A lease that does not exist cannot be kept.
    assert_eq!(
        client.lease_keep_alive(lease.id).await.unwrap_err(),
        Error::LeaseNotFound
    );
}

/// One contender: take the lock `rounds` times, each time incrementing the
/// shared counter with a fenced read-modify-write.
async fn contend(cluster: &Cluster, rounds: usize, inside: Arc<AtomicBool>) -> Vec<i64> {
    let client = cluster.client().await;
    let session = Session::new(&client, 2).await.unwrap();
    let mut lock = Lock::new(&session, "counter-lock");
    let mut revisions = Vec::new();
    for _ in 0..rounds {
        lock.lock().await.unwrap();
        assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
        revisions.push(lock.revision());
        let read = client.get("counter", GetOptions::new()).await.unwrap();
        let (value, mod_revision) = read.kvs.first().map_or((0, 0), |kv| {
            let text = String::from_utf8_lossy(&kv.value).to_string();
            (text.parse::<i64>().unwrap(), kv.mod_revision)
        });
        tokio::task::yield_now().await;
        let write = Txn::new()
            .when([
                lock.is_owner(),
                Compare::mod_revision("counter", CompareResult::Equal, mod_revision),
            ])
            .and_then([Op::put(
                "counter",
                (value + 1).to_string(),
                PutOptions::new(),
            )]);
        assert!(
            client.txn(write).await.unwrap().succeeded,
            "a fenced write failed"
        );
        inside.store(false, Ordering::SeqCst);
        lock.unlock().await.unwrap();
    }
    session.close().await.unwrap();
    revisions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_hold_the_lock_one_at_a_time() {
    const CONTENDERS: usize = 4;
    const ROUNDS: usize = 5;
    let cluster = Arc::new(Cluster::start(1).await);
    let inside = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let (cluster, inside) = (cluster.clone(), inside.clone());
            tokio::spawn(async move { contend(&cluster, ROUNDS, inside).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for t in tasks {
        revisions.extend(t.await.unwrap());
    }
    let client = cluster.client().await;
    let counter = client.get("counter", GetOptions::new()).await.unwrap();
    assert_eq!(
        counter.kvs[0].value,
        (CONTENDERS * ROUNDS).to_string().as_bytes()
    );
    // Every hold had its own fencing revision.
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), CONTENDERS * ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_lock_passes_on_when_its_lease_expires() {
    let cluster = Cluster::start(1).await;
    let client = cluster.client().await;
    let dead = Session::new(&client, TTL_S).await.unwrap();
    let mut held = Lock::new(&dead, "job");
    held.lock().await.unwrap();
    assert_eq!(
        held.key(),
        format!("job/{:x}", dead.lease_id()).as_bytes(),
        "etcd's key layout"
    );
    let stale_fence = held.is_owner();

    let waiter_client = cluster.client().await;
    let waiter = tokio::spawn(async move {
        let session = Session::new(&waiter_client, 5).await.unwrap();
        let mut lock = Lock::new(&session, "job");
        lock.lock().await.unwrap();
        let revision = lock.revision();
        (session, lock, revision)
    });
    // The waiter queues behind the holder and stays there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the lock was taken while held");

    // The holder "dies": its renewals stop, the lease runs out.
    drop(dead);
    let (_session, mut lock, revision) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the lock never passed on")
        .unwrap();
    assert!(revision > held.revision());
    // The dead holder's fenced write is refused; the new holder's passes.
    let stale =
        Txn::new()
            .when([stale_fence])
            .and_then([Op::put("job-state", "stale", PutOptions::new())]);
    assert!(!client.txn(stale).await.unwrap().succeeded);
    let fresh = Txn::new().when([lock.is_owner()]).and_then([Op::put(
        "job-state",
        "fresh",
        PutOptions::new(),
    )]);
    assert!(client.txn(fresh).await.unwrap().succeeded);

    // try_lock by a third session fails while held, succeeds after unlock.
    let third = Session::new(&client, 5).await.unwrap();
    let mut other = Lock::new(&third, "job");
    assert_eq!(other.try_lock().await.unwrap_err(), Error::Locked);
    lock.unlock().await.unwrap();
    other.try_lock().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_passes_on_resignation_and_on_lease_expiry() {
    let cluster = Cluster::start(1).await;
    let client = cluster.client().await;
    let mut observer = Observer::new(&client, "sched");
    let no_leader = Election::new(&Session::new(&client, 5).await.unwrap(), "sched");
    assert_eq!(
        no_leader.leader().await.unwrap_err(),
        Error::ElectionNoLeader
    );

    let a_session = Session::new(&client, 5).await.unwrap();
    let mut a = Election::new(&a_session, "sched");
    a.campaign("a").await.unwrap();
    let seen = observer.next().await.unwrap();
    assert_eq!(
        (seen.key.as_slice(), seen.value.as_slice()),
        (a.key(), &b"a"[..])
    );

    // b queues behind a; c (short-lived) behind b.
    let b_client = cluster.client().await;
    let b_task = tokio::spawn(async move {
        let session = Session::new(&b_client, TTL_S).await.unwrap();
        let mut b = Election::new(&session, "sched");
        b.campaign("b").await.unwrap();
        (session, b)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c_client = cluster.client().await;
    let c_task = tokio::spawn(async move {
        let session = Session::new(&c_client, 5).await.unwrap();
        let mut c = Election::new(&session, "sched");
        c.campaign("c").await.unwrap();
        (session, c)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b_task.is_finished() && !c_task.is_finished());

    a.proclaim("a2").await.unwrap();
    assert_eq!(observer.next().await.unwrap().value, b"a2");
    a.resign().await.unwrap();
    assert_eq!(
        a.proclaim("late").await.unwrap_err(),
        Error::ElectionNotLeader
    );

    let (b_session, b) = tokio::time::timeout(Duration::from_secs(5), b_task)
        .await
        .expect("b was not elected after a resigned")
        .unwrap();
    let seen = observer.next().await.unwrap();
    assert_eq!(
        (seen.key.as_slice(), seen.value.as_slice()),
        (b.key(), &b"b"[..])
    );

    // b dies without resigning: c is elected once b's lease expires.
    drop(b_session);
    let (_c_session, mut c) = tokio::time::timeout(Duration::from_secs(10), c_task)
        .await
        .expect("c was not elected after b's lease expired")
        .unwrap();
    let seen = observer.next().await.unwrap();
    assert_eq!(
        (seen.key.as_slice(), seen.value.as_slice()),
        (c.key(), &b"c"[..])
    );
    assert_eq!(c.leader().await.unwrap().value, b"c");
    c.proclaim("c2").await.unwrap();
    assert_eq!(observer.next().await.unwrap().value, b"c2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_killed_cairnctl_passes_on_after_its_ttl() {
    use std::io::BufRead;
    let cluster = Cluster::start(1).await;
    let mut holder = std::process::Command::new(env!("CARGO_BIN_EXE_cairnctl"))
        .args(["--endpoints", &cluster.endpoints()[0]])
        .args(["lock", "--ttl", "1", "deploy"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // cairnctl prints the owner key once it holds the lock.
    let mut line = String::new();
    let stdout = holder.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let line = tokio::task::spawn_blocking(move || {
        reader.read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let held_key = line.trim_end().to_string();
    assert!(held_key.starts_with("deploy/"), "{held_key:?}");

    let client = cluster.client().await;
    let session = Session::new(&client, 5).await.unwrap();
    let mut lock = Lock::new(&session, "deploy");
    assert_eq!(lock.try_lock().await.unwrap_err(), Error::Locked);
    holder.kill().unwrap();
    holder.wait().unwrap();
    tokio::time::timeout(Duration::from_secs(10), lock.lock())
        .await
        .expect("the killed holder's lock never passed on")
        .unwrap();
    let left = client.get(held_key, GetOptions::new()).await.unwrap();
    assert!(
        left.kvs.is_empty(),
        "the dead holder's key outlived its lease"
    );
}
