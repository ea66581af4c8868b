//! etcd's server-side recipes over gRPC (`v3lockpb.Lock`,
//! `v3electionpb.Election`), driven by a tonic client against the real
//! `cairn` binary: holders are served in queue order, a waiter whose client
//! gives up leaves the queue, and observers see every leader and
//! proclamation.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_wire::etcdpb as pb;
use common::Server;
use tokio_stream::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

async fn channel(server: &Server) -> Channel {
    Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn unary<Req, Resp>(ch: &Channel, path: &'static str, req: Req) -> Result<Resp, Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    grpc.unary(
        tonic::Request::new(req),
        PathAndQuery::from_static(path),
        codec,
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn observe(ch: &Channel, name: &str) -> tonic::Streaming<pb::LeaderResponse> {
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<pb::LeaderRequest, pb::LeaderResponse>::default();
    let req = pb::LeaderRequest {
        name: Bytes::copy_from_slice(name.as_bytes()),
    };
    grpc.server_streaming(
        tonic::Request::new(req),
        PathAndQuery::from_static(pb::path::OBSERVE),
        codec,
    )
    .await
    .unwrap()
    .into_inner()
}

async fn grant(ch: &Channel) -> i64 {
    let req = pb::LeaseGrantRequest { ttl: 60, id: 0 };
    let r: pb::LeaseGrantResponse = unary(ch, pb::path::LEASE_GRANT, req).await.unwrap();
    r.id
}

async fn lock(ch: &Channel, name: &str, lease: i64) -> Result<pb::LockResponse, Status> {
    let req = pb::LockRequest {
        name: Bytes::copy_from_slice(name.as_bytes()),
        lease,
    };
    unary(ch, pb::path::LOCK, req).await
}

async fn unlock(ch: &Channel, key: &Bytes) -> i64 {
    let req = pb::UnlockRequest { key: key.clone() };
    let r: pb::HeaderOnlyResponse = unary(ch, pb::path::UNLOCK, req).await.unwrap();
    r.header.unwrap().revision
}

/// The keys under `prefix`, in key order.
async fn keys(ch: &Channel, prefix: &str) -> Vec<pb::KeyValue> {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    let req = pb::RangeRequest {
        key: Bytes::copy_from_slice(prefix.as_bytes()),
        range_end: Bytes::from(end),
        ..Default::default()
    };
    let r: pb::RangeResponse = unary(ch, pb::path::KV_RANGE, req).await.unwrap();
    r.kvs
}

fn key_of(prefix: &str, lease: i64) -> Bytes {
    Bytes::from(format!("{prefix}{lease:x}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn lock_serves_holders_in_queue_order_and_a_waiter_that_gives_up_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    runtime().block_on(async {
        let ch = channel(&server).await;
        let (l1, l2, l3) = (grant(&ch).await, grant(&ch).await, grant(&ch).await);
        let first = lock(&ch, "job", l1).await.unwrap();
        assert_eq!(first.key, key_of("job/", l1), "etcd's key layout");

        // A second holder waits for the first to unlock.
        let ch2 = ch.clone();
        let second = tokio::spawn(async move { lock(&ch2, "job", l2).await });
        // A third one queues, then its client gives up.
        let ch3 = ch.clone();
        let third = tokio::spawn(async move { lock(&ch3, "job", l3).await });
        let deadline = Instant::now() + Duration::from_secs(10);
        while keys(&ch, "job/").await.len() < 3 {
            assert!(Instant::now() < deadline, "the waiters never queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        third.abort();
        while keys(&ch, "job/").await.len() > 2 {
            assert!(
                Instant::now() < deadline,
                "a waiter whose client left stays queued"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!second.is_finished(), "the lock is still held");
        let unlocked_at = unlock(&ch, &first.key).await;
        let second = second.await.unwrap().unwrap();
        assert_eq!(second.key, key_of("job/", l2));
        assert!(second.header.unwrap().revision >= unlocked_at);
        let held: Vec<Bytes> = keys(&ch, "job/")
            .await
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        assert_eq!(held, std::slice::from_ref(&second.key));
        unlock(&ch, &second.key).await;

        // Lease 0: the server grants the holder a lease, as etcd's does.
        let own = lock(&ch, "solo", 0).await.unwrap();
        let kv = keys(&ch, "solo/").await;
        assert_eq!(kv.len(), 1);
        assert_ne!(kv[0].lease, 0);
        assert_eq!(own.key, kv[0].key);
        unlock(&ch, &own.key).await;

        let e = lock(&ch, "job", 0x1234_5678).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        assert_eq!(e.message(), "etcdserver: requested lease not found");
    });
}

#[test]
fn election_elects_in_order_and_observers_see_every_leader_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    runtime().block_on(async {
        let ch = channel(&server).await;
        let name = Bytes::from_static(b"sched");
        let leader_req = pb::LeaderRequest { name: name.clone() };
        let e = unary::<_, pb::LeaderResponse>(&ch, pb::path::LEADER, leader_req.clone())
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::Unknown, "election: no leader")
        );
        // Observing before anyone stands sees the first candidate.
        let mut observer = observe(&ch, "sched").await;

        let (l1, l2) = (grant(&ch).await, grant(&ch).await);
        let campaign = |lease: i64, value: &'static str| pb::CampaignRequest {
            name: name.clone(),
            lease,
            value: Bytes::from_static(value.as_bytes()),
        };
        let won: pb::CampaignResponse = unary(&ch, pb::path::CAMPAIGN, campaign(l1, "a"))
            .await
            .unwrap();
        let leader1 = won.leader.unwrap();
        assert_eq!(leader1.key, key_of("sched/", l1));
        assert_eq!((leader1.name.clone(), leader1.lease), (name.clone(), l1));
        let seen = observer.next().await.unwrap().unwrap();
        assert_eq!(&seen.kv.unwrap().value[..], b"a");

        let proclaim = |leader: Option<pb::LeaderKey>, value: &'static str| pb::ProclaimRequest {
            leader,
            value: Bytes::from_static(value.as_bytes()),
        };
        let _: pb::HeaderOnlyResponse = unary(
            &ch,
            pb::path::PROCLAIM,
            proclaim(Some(leader1.clone()), "b"),
        )
        .await
        .unwrap();
        let seen = observer.next().await.unwrap().unwrap();
        assert_eq!(&seen.kv.unwrap().value[..], b"b");
        let now: pb::LeaderResponse = unary(&ch, pb::path::LEADER, leader_req.clone())
            .await
            .unwrap();
        assert_eq!(&now.kv.unwrap().value[..], b"b");

        // A second candidate is elected when the leader resigns.
        let ch2 = ch.clone();
        let c2 = campaign(l2, "c");
        let second = tokio::spawn(async move {
            unary::<_, pb::CampaignResponse>(&ch2, pb::path::CAMPAIGN, c2).await
        });
        let resign = pb::ResignRequest {
            leader: Some(leader1.clone()),
        };
        let _: pb::HeaderOnlyResponse = unary(&ch, pb::path::RESIGN, resign).await.unwrap();
        let leader2 = second.await.unwrap().unwrap().leader.unwrap();
        assert_eq!(leader2.key, key_of("sched/", l2));
        let seen = observer.next().await.unwrap().unwrap();
        let kv = seen.kv.unwrap();
        assert_eq!((kv.key, &kv.value[..]), (leader2.key.clone(), &b"c"[..]));

        // The old leader can no longer proclaim; a request without a
        // leader key is refused with etcd's text.
        let e = unary::<_, pb::HeaderOnlyResponse>(
            &ch,
            pb::path::PROCLAIM,
            proclaim(Some(leader1), "late"),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::Unknown, "election: not leader")
        );
        let e = unary::<_, pb::HeaderOnlyResponse>(&ch, pb::path::PROCLAIM, proclaim(None, "x"))
            .await
            .unwrap_err();
        assert_eq!(e.message(), "\"leader\" field must be provided");
    });
}

#[test]
fn grpc_lock_and_etcdctls_client_side_lock_exclude_each_other() {
    use std::process::{Command, Stdio};
    let on_path = Command::new("sh")
        .args(["-c", "command -v etcdctl"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !on_path {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install etcd-client for this test"
        );
        eprintln!("etcdctl is not installed; interop test not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    runtime().block_on(async {
        let ch = channel(&server).await;
        let held = lock(&ch, "shared", grant(&ch).await).await.unwrap();
        // etcdctl runs etcd's client-side recipe on the same keys: it
        // queues behind the gRPC holder and runs its command once the
        // holder unlocks.
        let etcdctl = Command::new("etcdctl")
            .args(["--endpoints", &server.addr.to_string()])
            .args(["lock", "shared", "echo", "got it"])
            .env("ETCDCTL_API", "3")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed if an assertion fails before it exits.
        let mut etcdctl = KillOnDrop(Some(etcdctl));
        let deadline = Instant::now() + Duration::from_secs(10);
        while keys(&ch, "shared/").await.len() < 2 {
            assert!(Instant::now() < deadline, "etcdctl never queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let running = etcdctl.0.as_mut().unwrap().try_wait().unwrap().is_none();
        assert!(running, "etcdctl took a held lock");
        unlock(&ch, &held.key).await;
        let child = etcdctl.0.take().unwrap();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "got it\n");
    });
}

struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
