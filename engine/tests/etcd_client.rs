//! The `etcd-client` crate, a widely used third-party etcd v3 client, driving
//! the real `cairn` binary over its gRPC API: KV, txn, watch from an earlier
//! revision, and the lease life cycle. Every assertion is what etcd itself
//! answers to the same calls, so a program written against etcd with this
//! client runs unchanged against cairn.

mod common;

use std::future::Future;
use std::time::Duration;

use common::Server;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, Error, EventType, GetOptions, PutOptions, Txn,
    TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};

/// How long one awaited reply may take before the test fails instead of
/// hanging; far above any healthy reply time.
const REPLY_WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(REPLY_WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("no reply to {what} within {REPLY_WAIT:?}"),
    }
}

async fn connect(server: &Server) -> Client {
    let endpoint = format!("http://{}", server.addr);
    within("connect", Client::connect([endpoint], None))
        .await
        .unwrap()
}

fn keys(kvs: &[etcd_client::KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key_str().unwrap()).collect()
}

/// The next `n` events on `stream`, with the type, key and value of each.
async fn next_events(stream: &mut WatchStream, n: usize) -> Vec<(EventType, String, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let resp = within("watch", stream.message()).await.unwrap();
        let resp = resp.expect("the watch stream ended");
        assert!(!resp.canceled(), "watch canceled: {}", resp.cancel_reason());
        for ev in resp.events() {
            let kv = ev.kv().expect("an event carries its key");
            out.push((
                ev.event_type(),
                kv.key_str().unwrap().to_owned(),
                kv.value_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(out.len(), n, "more events than expected: {out:?}");
    out
}

#[tokio::test]
async fn kv_and_txn_through_etcd_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut client = connect(&server).await;

    let first = client.put("fruit/apple", "red", None).await.unwrap();
    let h = first.header().unwrap();
    assert!(h.cluster_id() != 0 && h.member_id() != 0 && h.raft_term() != 0);
    let rev_apple = h.revision();
    client.put("fruit/banana", "yellow", None).await.unwrap();
    // Shares the prefix's bytes up to the slash only: outside "fruit/".
    client.put("fruits", "many", None).await.unwrap();

    // A single key.
    let got = client.get("fruit/apple", None).await.unwrap();
    assert_eq!(got.count(), 1);
    let kv = &got.kvs()[0];
    assert_eq!(kv.value_str().unwrap(), "red");
    assert_eq!(
        (kv.create_revision(), kv.mod_revision()),
        (rev_apple, rev_apple)
    );
    assert_eq!(kv.version(), 1);
    assert_eq!(got.header().unwrap().revision(), rev_apple + 2);

    // A prefix, in key order.
    let got = client
        .get("fruit/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.count(), 2);
    assert_eq!(keys(got.kvs()), ["fruit/apple", "fruit/banana"]);
    assert!(!got.more());

    // An overwrite returns the previous value when asked and bumps the version.
    let put = client
        .put(
            "fruit/apple",
            "green",
            Some(PutOptions::new().with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(put.prev_key().unwrap().value_str().unwrap(), "red");
    let got = client.get("fruit/apple", None).await.unwrap();
    assert_eq!(got.kvs()[0].version(), 2);
    assert_eq!(got.kvs()[0].create_revision(), rev_apple);

    // A missing key: no kvs, count 0.
    let got = client.get("fruit/cherry", None).await.unwrap();
    assert_eq!((got.count(), got.kvs().len()), (0, 0));

    // A txn whose compare holds runs its success branch.
    let txn = Txn::new()
        .when([Compare::value("fruit/apple", CompareOp::Equal, "green")])
        .and_then([
            TxnOp::put("fruit/apple", "ripe", None),
            TxnOp::get("fruit/apple", None),
        ])
        .or_else([TxnOp::get("fruits", None)]);
    let resp = client.txn(txn).await.unwrap();
    assert!(resp.succeeded());
    let ops = resp.op_responses();
    assert_eq!(ops.len(), 2);
    assert!(matches!(ops[0], TxnOpResponse::Put(_)));
    match &ops[1] {
        TxnOpResponse::Get(g) => assert_eq!(g.kvs()[0].value_str().unwrap(), "ripe"),
        other => panic!("expected a get response, got {other:?}"),
    }
    let rev_txn = resp.header().unwrap().revision();

    // A txn whose compare fails runs its failure branch and writes nothing.
    let txn = Txn::new()
        .when([Compare::version("fruit/apple", CompareOp::Equal, 1)])
        .and_then([TxnOp::delete("fruit/apple", None)])
        .or_else([TxnOp::get("fruits", None)]);
    let resp = client.txn(txn).await.unwrap();
    assert!(!resp.succeeded());
    match &resp.op_responses()[..] {
        [TxnOpResponse::Get(g)] => assert_eq!(g.kvs()[0].value_str().unwrap(), "many"),
        other => panic!("expected one get response, got {other:?}"),
    }
    assert_eq!(resp.header().unwrap().revision(), rev_txn);
    let got = client.get("fruit/apple", None).await.unwrap();
    assert_eq!(got.kvs()[0].value_str().unwrap(), "ripe");

    // Delete one key, then a prefix with the deleted pairs returned.
    let del = client.delete("fruits", None).await.unwrap();
    assert_eq!(del.deleted(), 1);
    let del = client
        .delete(
            "fruit/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(del.deleted(), 2);
    assert_eq!(keys(del.prev_kvs()), ["fruit/apple", "fruit/banana"]);
    let got = client
        .get("fruit", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.count(), 0, "left: {:?}", keys(got.kvs()));
    // Deleting nothing is not an error and does not move the revision.
    let before = del.header().unwrap().revision();
    let del = client.delete("fruits", None).await.unwrap();
    assert_eq!(del.deleted(), 0);
    assert_eq!(del.header().unwrap().revision(), before);
}

#[tokio::test]
async fn watch_from_an_earlier_revision_replays_then_follows() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut client = connect(&server).await;

    let start = client.put("w/a", "1", None).await.unwrap();
    let start_rev = start.header().unwrap().revision();
    client.put("w/b", "2", None).await.unwrap();
    client.put("other", "x", None).await.unwrap();
    client.delete("w/a", None).await.unwrap();

    let opts = WatchOptions::new()
        .with_prefix()
        .with_start_revision(start_rev);
    let mut stream = within("watch", client.watch("w/", Some(opts)))
        .await
        .unwrap();
    // etcd's first reply to a create request says the watch exists.
    let created = within("watch", stream.message()).await.unwrap().unwrap();
    assert!(created.created());
    assert!(created.events().is_empty());

    // History since `start_rev` under the prefix, in revision order.
    let replayed = next_events(&mut stream, 3).await;
    assert_eq!(
        replayed,
        [
            (EventType::Put, "w/a".to_owned(), "1".to_owned()),
            (EventType::Put, "w/b".to_owned(), "2".to_owned()),
            (EventType::Delete, "w/a".to_owned(), String::new()),
        ]
    );

    // Then writes made after the watch started, and none outside the prefix.
    client.put("other", "y", None).await.unwrap();
    client.put("w/c", "3", None).await.unwrap();
    client.delete("w/b", None).await.unwrap();
    let live = next_events(&mut stream, 2).await;
    assert_eq!(
        live,
        [
            (EventType::Put, "w/c".to_owned(), "3".to_owned()),
            (EventType::Delete, "w/b".to_owned(), String::new()),
        ]
    );

    // Cancelling ends the watch with a canceled reply.
    let watch_id = created.watch_id();
    within("cancel", stream.cancel(watch_id)).await.unwrap();
    let canceled = within("cancel", stream.message()).await.unwrap().unwrap();
    assert!(canceled.canceled());
    assert_eq!(canceled.watch_id(), watch_id);
}

#[tokio::test]
async fn lease_grant_keep_alive_time_to_live_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut client = connect(&server).await;

    let ttl_s = 60;
    let grant = client.lease_grant(ttl_s, None).await.unwrap();
    assert!(grant.id() > 0);
    assert_eq!(grant.ttl(), ttl_s);
    assert_eq!(grant.error(), "");
    let id = grant.id();

    // One keep-alive round trip renews the lease to its full TTL.
    let (mut keeper, mut responses) = within("keep-alive", client.lease_keep_alive(id))
        .await
        .unwrap();
    assert_eq!(keeper.id(), id);
    within("keep-alive", keeper.keep_alive()).await.unwrap();
    let renewed = within("keep-alive", responses.message())
        .await
        .unwrap()
        .expect("a keep-alive reply");
    assert_eq!((renewed.id(), renewed.ttl()), (id, ttl_s));

    // A key attached to the lease.
    client
        .put("session", "alive", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    let got = client.get("session", None).await.unwrap();
    assert_eq!(got.kvs()[0].lease(), id);

    let ttl = client
        .lease_time_to_live(
            id,
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .unwrap();
    assert_eq!(ttl.id(), id);
    assert_eq!(ttl.granted_ttl(), ttl_s);
    assert!(ttl.ttl() > 0 && ttl.ttl() <= ttl_s, "ttl {}", ttl.ttl());
    assert_eq!(ttl.keys(), [b"session".to_vec()]);

    let leases = client.leases().await.unwrap();
    let ids: Vec<i64> = leases.leases().iter().map(|l| l.id()).collect();
    assert_eq!(ids, [id]);

    // Revoking deletes the attached key at once.
    client.lease_revoke(id).await.unwrap();
    let got = client.get("session", None).await.unwrap();
    assert_eq!(got.count(), 0);

    // etcd answers time-to-live of a lease that is gone with TTL -1, and a
    // second revoke with NotFound.
    let ttl = client.lease_time_to_live(id, None).await.unwrap();
    assert_eq!(ttl.ttl(), -1);
    match client.lease_revoke(id).await {
        Err(Error::GRpcStatus(status)) => {
            assert_eq!(status.code(), tonic::Code::NotFound);
            assert_eq!(status.message(), "etcdserver: requested lease not found");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    // And the client's keep-alive refuses a lease that is gone.
    assert!(client.lease_keep_alive(id).await.is_err());
    // A put naming it fails as in etcd.
    match client
        .put("session", "again", Some(PutOptions::new().with_lease(id)))
        .await
    {
        Err(Error::GRpcStatus(status)) => {
            assert_eq!(status.code(), tonic::Code::NotFound);
            assert_eq!(status.message(), "etcdserver: requested lease not found");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}
