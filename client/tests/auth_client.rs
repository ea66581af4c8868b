//! The client library against real `cairn` processes with authentication
//! on: a client with credentials keeps working when its token goes stale
//! (a permission change, an expired token, a restarted member), and so do
//! its watches and lease keepers.

#[path = "support/process.rs"]
mod process;

use std::time::Duration;

use cairn_client::{
    Client, ConnectOptions, Credentials, Error, EventType, GetOptions, KeyRange, LeaseState,
    PermissionType, PutOptions, WatchOptions, Watcher,
};
use process::Cluster;
use tokio::time::{timeout, Instant};

/// Cheap password hashes: the tests log in often.
const BCRYPT_COST: &str = "4";

/// Auth store changes made while alice writes, and her writers and their
/// writes: enough that some writes straddle a change. The pause between
/// changes leaves a refused writer room to log in and resend before the next
/// change even on a loaded machine (it has `AUTH_RETRIES_MAX` tries; at 10 ms
/// a writer was once refused five times in a row, and at 20 ms once more
/// on a slower host with a full build running beside the tests).
const AUTH_CHANGES: usize = 20;
const AUTH_CHANGE_PAUSE: Duration = Duration::from_millis(50);
const WRITERS: usize = 8;
const WRITES_PER_WRITER: u32 = 40;

fn options() -> ConnectOptions {
    ConnectOptions::default()
        .with_dial_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(3))
}

async fn login(cluster: &Cluster, user: &str, password: &str) -> Client {
    Client::connect_with_auth(
        cluster.endpoints(),
        options(),
        None,
        Some(Credentials::new(user, password)),
    )
    .await
    .unwrap()
}

/// `root` (role `root`) and `alice`, who may read and write `app/`; auth on.
async fn set_up_users(cluster: &Cluster) {
    let admin = cluster.client().await;
    admin.user_add("root", "rootpw").await.unwrap();
    admin.role_add("root").await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.role_add("app").await.unwrap();
    admin
        .role_grant_permission_range("app", PermissionType::ReadWrite, b"app/", &KeyRange::Prefix)
        .await
        .unwrap();
    admin.user_add("alice", "alicepw").await.unwrap();
    admin.user_grant_role("alice", "app").await.unwrap();
    admin.auth_enable().await.unwrap();
    assert_eq!(
        admin.get("app/x", GetOptions::new()).await.unwrap_err(),
        Error::UserEmpty
    );
}

async fn next_put(watcher: &mut Watcher) -> (Vec<u8>, Vec<u8>) {
    let response = timeout(Duration::from_secs(20), watcher.next())
        .await
        .expect("no watch event within 20 s")
        .unwrap()
        .expect("the watch ended");
    let event = &response.events[0];
    assert_eq!(event.kind, EventType::Put);
    (event.kv.key.clone(), event.kv.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_change_reauthenticates_and_retries() {
    let cluster = Cluster::start_with(1, &["--bcrypt-cost", BCRYPT_COST]).await;
    set_up_users(&cluster).await;
    let root = login(&cluster, "root", "rootpw").await;
    let alice = login(&cluster, "alice", "alicepw").await;
    assert_eq!(alice.user(), Some("alice"));
    alice.put("app/x", "1", PutOptions::new()).await.unwrap();
    let mut watcher = alice
        .watch("app/", WatchOptions::new().with_prefix())
        .await
        .unwrap();
    assert_eq!(
        alice.get("cfg", GetOptions::new()).await.unwrap_err(),
        Error::PermissionDenied
    );

    // Every change of the auth store makes alice's token's view of it
    // old; her next calls must still succeed.
    root.role_grant_permission("app", PermissionType::Read, "cfg", "")
        .await
        .unwrap();
    root.put("cfg", "v", PutOptions::new()).await.unwrap();
    let got = alice.get("cfg", GetOptions::new()).await.unwrap();
    assert_eq!(got.kvs[0].value, b"v");
    root.user_add("bob", "bobpw").await.unwrap();
    alice.put("app/y", "2", PutOptions::new()).await.unwrap();
    // The watch created before the changes goes on.
    assert_eq!(
        next_put(&mut watcher).await,
        (b"app/y".to_vec(), b"2".to_vec())
    );

    // Writes in flight while the auth store changes are admitted under
    // the old store and refused when they apply ("revision of auth store
    // is old"); the client logs in again and resends them.
    let changes = {
        let root = root.clone();
        tokio::spawn(async move {
            for i in 0..AUTH_CHANGES {
                root.user_add(&format!("user{i}"), "pw").await.unwrap();
                // Changes now and then, not back to back: a store changing
                // without pause starves writers, as it would in etcd.
                tokio::time::sleep(AUTH_CHANGE_PAUSE).await;
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let alice = alice.clone();
        writers.push(tokio::spawn(async move {
            let mut i = 0u32;
            while i < WRITES_PER_WRITER {
                alice
                    .put(format!("app/w{w}"), i.to_string(), PutOptions::new())
                    .await
                    .unwrap();
                i += 1;
            }
        }));
    }
    changes.await.unwrap();
    for writer in writers {
        writer.await.unwrap();
    }

    // Losing the permission is reported as such, not retried away.
    root.role_revoke_permission("app", "cfg", "").await.unwrap();
    assert_eq!(
        alice.get("cfg", GetOptions::new()).await.unwrap_err(),
        Error::PermissionDenied
    );
    // A wrong password fails the connect.
    let wrong = Client::connect_with_auth(
        cluster.endpoints(),
        options(),
        None,
        Some(Credentials::new("alice", "nope")),
    )
    .await;
    assert_eq!(wrong.unwrap_err(), Error::AuthFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_replaced_and_the_watch_goes_on() {
    let cluster =
        Cluster::start_with(1, &["--bcrypt-cost", BCRYPT_COST, "--auth-token-ttl", "1"]).await;
    set_up_users(&cluster).await;
    let alice = login(&cluster, "alice", "alicepw").await;
    let mut watcher = alice
        .watch("app/", WatchOptions::new().with_prefix())
        .await
        .unwrap();
    alice.put("app/a", "1", PutOptions::new()).await.unwrap();
    assert_eq!(
        next_put(&mut watcher).await,
        (b"app/a".to_vec(), b"1".to_vec())
    );
    // Unused for longer than its TTL, the token is forgotten: the server
    // answers "invalid auth token" and the client logs in again.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    alice.put("app/b", "2", PutOptions::new()).await.unwrap();
    assert_eq!(
        next_put(&mut watcher).await,
        (b"app/b".to_vec(), b"2".to_vec())
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let got = alice.get("app/b", GetOptions::new()).await.unwrap();
    assert_eq!(got.kvs[0].value, b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restart_reauthenticates_watches_and_lease_keepers() {
    let mut cluster = Cluster::start_with(1, &["--bcrypt-cost", BCRYPT_COST]).await;
    set_up_users(&cluster).await;
    let root = login(&cluster, "root", "rootpw").await;
    let alice = login(&cluster, "alice", "alicepw").await;
    let mut watcher = alice
        .watch("app/", WatchOptions::new().with_prefix())
        .await
        .unwrap();
    let lease = root.lease_grant(4, 0).await.unwrap();
    let keeper = root.lease_keep_alive(lease.id).await.unwrap();
    root.put("app/1", "a", PutOptions::new().with_lease(lease.id))
        .await
        .unwrap();
    assert_eq!(
        next_put(&mut watcher).await,
        (b"app/1".to_vec(), b"a".to_vec())
    );

    // The restarted member knows no token: every connection is new and
    // must log in again.
    cluster.members[0].restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match root.put("app/2", "b", PutOptions::new()).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline && (e.is_retriable() || e == Error::Timeout) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("put after the restart: {e}"),
        }
    }
    assert_eq!(
        next_put(&mut watcher).await,
        (b"app/2".to_vec(), b"b".to_vec())
    );
    assert!(watcher.resumed() >= 1);
    let got = alice.get("app/2", GetOptions::new()).await.unwrap();
    assert_eq!(got.kvs[0].value, b"b");

    // The keeper renewed through the restart: the lease and its key live
    // on well past the lease's 4 s TTL.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        matches!(keeper.state(), LeaseState::Alive { .. }),
        "{:?}",
        keeper.state()
    );
    let got = alice.get("app/1", GetOptions::new()).await.unwrap();
    assert_eq!(got.kvs.len(), 1, "the leased key expired");
}
