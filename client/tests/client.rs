//! The client against a fake server that speaks cairn's protocol.

mod support;

use std::time::Duration;

use cairn_client::{
    AlarmMember, AlarmType, Client, Compare, CompareResult, ConnectOptions, DeleteOptions, Error,
    GetOptions, Op, PutOptions, ResponseOp, Txn,
};
use support::{Behaviour, FakeServer, CLUSTER_ID};

fn quick() -> ConnectOptions {
    ConnectOptions::default()
        .with_dial_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn put_get_delete_round_trip() {
    let server = FakeServer::start(7, Behaviour::default()).await;
    let client = Client::connect([format!("http://{}", server.address)], quick())
        .await
        .unwrap();
    let put = client.put("foo", "bar", PutOptions::new()).await.unwrap();
    assert_eq!(put.header.cluster_id, CLUSTER_ID);
    assert_eq!(put.header.member_id, 7);
    assert_eq!(put.header.revision, 2);
    let again = client
        .put("foo", "baz", PutOptions::new().with_prev_kv())
        .await
        .unwrap();
    let prev = again.prev_kv.unwrap();
    assert_eq!((prev.value.as_slice(), prev.version), (&b"bar"[..], 1));

    client.put("fop", "x", PutOptions::new()).await.unwrap();
    let got = client
        .get("fo", GetOptions::new().with_prefix())
        .await
        .unwrap();
    assert_eq!(got.count, 2);
    let keys: Vec<&[u8]> = got.kvs.iter().map(|kv| kv.key.as_slice()).collect();
    assert_eq!(keys, [&b"foo"[..], b"fop"]);
    assert_eq!(got.kvs[0].value, b"baz");
    assert_eq!(
        (
            got.kvs[0].create_revision,
            got.kvs[0].mod_revision,
            got.kvs[0].version
        ),
        (2, 3, 2)
    );

    let limited = client
        .get("", GetOptions::new().with_from_key().with_limit(1))
        .await
        .unwrap();
    assert_eq!(
        (limited.kvs.len(), limited.more, limited.count),
        (1, true, 2)
    );

    let deleted = client
        .delete("fo", DeleteOptions::new().with_prefix().with_prev_kv())
        .await
        .unwrap();
    assert_eq!(deleted.deleted, 2);
    assert_eq!(deleted.prev_kvs.len(), 2);
    assert!(client
        .get("foo", GetOptions::new())
        .await
        .unwrap()
        .kvs
        .is_empty());
}

#[tokio::test]
async fn many_requests_in_flight_on_one_connection_answered_out_of_order() {
    const N: usize = 64;
    // The server answers nothing until N requests have arrived, then answers
    // them newest first: this only completes if all N were in flight at
    // once, and only returns the right values if replies are routed by id.
    let server = FakeServer::start(
        1,
        Behaviour {
            reverse_batch: N,
            ..Behaviour::default()
        },
    )
    .await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    let puts: Vec<_> = (0..N)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                c.put(format!("k{i}"), format!("v{i}"), PutOptions::new())
                    .await
            })
        })
        .collect();
    for p in puts {
        p.await.unwrap().unwrap();
    }
    let gets: Vec<_> = (0..N)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { (i, c.get(format!("k{i}"), GetOptions::new()).await) })
        })
        .collect();
    for g in gets {
        let (i, got) = g.await.unwrap();
        assert_eq!(got.unwrap().kvs[0].value, format!("v{i}").into_bytes());
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(server.requests(), 2 * N);
}

#[tokio::test]
async fn a_request_without_an_answer_times_out() {
    let server = FakeServer::start(
        1,
        Behaviour {
            silent: true,
            ..Behaviour::default()
        },
    )
    .await;
    let options = quick().with_request_timeout(Duration::from_millis(200));
    let client = Client::connect([&server.address], options).await.unwrap();
    let err = client.get("k", GetOptions::new()).await.unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert_eq!(err.to_string(), "context deadline exceeded");
    // The connection itself is fine: the next request goes out on it.
    let err = client.put("k", "v", PutOptions::new()).await.unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn a_broken_connection_fails_writes_and_the_client_fails_over() {
    let first = FakeServer::start(
        1,
        Behaviour {
            hang_up_at_request: Some(2),
            ..Behaviour::default()
        },
    )
    .await;
    let second = FakeServer::start(2, Behaviour::default()).await;
    let client = Client::connect([&first.address, &second.address], quick())
        .await
        .unwrap();
    assert_eq!(client.connected_endpoint().unwrap().address, first.address);
    assert_eq!(
        client
            .put("a", "1", PutOptions::new())
            .await
            .unwrap()
            .header
            .member_id,
        1
    );

    // The second request kills the connection: a write is not resent (it
    // may have been applied), its error says a retry may work.
    let err = client.put("b", "2", PutOptions::new()).await.unwrap_err();
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
    assert!(err.is_retriable());

    // The next call dials the next endpoint.
    let put = client.put("b", "2", PutOptions::new()).await.unwrap();
    assert_eq!(put.header.member_id, 2);
    assert_eq!(client.connected_endpoint().unwrap().address, second.address);
}

#[tokio::test]
async fn a_read_on_a_broken_connection_is_resent_to_the_next_endpoint() {
    let first = FakeServer::start(
        1,
        Behaviour {
            hang_up_at_request: Some(1),
            ..Behaviour::default()
        },
    )
    .await;
    let second = FakeServer::start(2, Behaviour::default()).await;
    let client = Client::connect([&first.address, &second.address], quick())
        .await
        .unwrap();
    let got = client.get("k", GetOptions::new()).await.unwrap();
    assert_eq!(got.header.member_id, 2);
    let status = client.status().await.unwrap();
    assert_eq!(status.header.member_id, 2);
}

#[tokio::test]
async fn when_a_server_goes_away_the_client_reconnects_elsewhere() {
    let first = FakeServer::start(1, Behaviour::default()).await;
    let second = FakeServer::start(2, Behaviour::default()).await;
    let client = Client::connect([&first.address, &second.address], quick())
        .await
        .unwrap();
    assert_eq!(client.status().await.unwrap().header.member_id, 1);
    first.stop();
    // The idle connection's loss is noticed by the reader task, or by the
    // first request on it; either way the read ends up on the second server.
    let status = client.status().await.unwrap();
    assert_eq!(status.header.member_id, 2);
}

#[tokio::test]
async fn no_reachable_endpoint_is_a_dial_timeout() {
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().to_string()
    };
    let options = quick().with_dial_timeout(Duration::from_millis(300));
    let err = Client::connect([&closed], options).await.unwrap_err();
    assert!(matches!(err, Error::DialTimeout { .. }), "{err:?}");
    assert!(err.is_retriable());

    // With a live endpoint later in the list, connect skips the dead one.
    let live = FakeServer::start(3, Behaviour::default()).await;
    let client = Client::connect([&closed, &live.address], options)
        .await
        .unwrap();
    assert_eq!(client.status().await.unwrap().header.member_id, 3);

    let err = Client::connect(["https://127.0.0.1:1"], options)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
}

#[tokio::test]
async fn server_errors_map_to_etcds_errors() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    for i in 0..5 {
        client
            .put("k", format!("{i}"), PutOptions::new())
            .await
            .unwrap();
    }
    client.compact(4, false).await.unwrap();
    let err = client
        .get("k", GetOptions::new().with_revision(2))
        .await
        .unwrap_err();
    assert_eq!(err, Error::Compacted);
    assert_eq!(
        err.to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    assert!(!err.is_retriable());
    let err = client
        .get("k", GetOptions::new().with_revision(1000))
        .await
        .unwrap_err();
    assert_eq!(err, Error::FutureRevision);
    assert_eq!(client.compact(3, true).await.unwrap_err(), Error::Compacted);
    let err = client
        .put("missing", "", PutOptions::new().with_ignore_value())
        .await
        .unwrap_err();
    assert_eq!(err, Error::KeyNotFound);
    assert_eq!(err.to_string(), "etcdserver: key not found");
    // An error answers one request only: the connection goes on.
    assert_eq!(
        client.get("k", GetOptions::new()).await.unwrap().kvs[0].value,
        b"4"
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn txns_with_compares_branches_and_nesting() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    client.put("key1", "v1", PutOptions::new()).await.unwrap();

    let nested = Txn::new()
        .when([Compare::value("key1", CompareResult::Equal, "v1")])
        .and_then([Op::put("inner", "yes", PutOptions::new())]);
    let txn = Txn::new()
        .when([
            Compare::mod_revision("key1", CompareResult::Greater, 0),
            Compare::version("key1", CompareResult::Equal, 1),
        ])
        .and_then([
            Op::put("key1", "v2", PutOptions::new().with_prev_kv()),
            Op::get("key1", GetOptions::new()),
            Op::txn(nested),
        ])
        .or_else([Op::put("key1", "created", PutOptions::new())]);
    let r = client.txn(txn).await.unwrap();
    assert!(r.succeeded);
    assert_eq!(r.header.revision, 3);
    assert_eq!(r.responses.len(), 3);
    let ResponseOp::Put(put) = &r.responses[0] else {
        panic!("{:?}", r.responses[0])
    };
    assert_eq!(put.prev_kv.as_ref().unwrap().value, b"v1");
    // Responses inside a txn carry only the revision in their header.
    assert_eq!(put.header.revision, 3);
    assert_eq!(put.header.cluster_id, 0);
    let ResponseOp::Range(get) = &r.responses[1] else {
        panic!()
    };
    assert_eq!(get.kvs[0].value, b"v2");
    let ResponseOp::Txn(inner) = &r.responses[2] else {
        panic!()
    };
    // The inner compare saw the outer put's value.
    assert!(!inner.succeeded);
    assert!(inner.responses.is_empty());

    let failing = Txn::new()
        .when([Compare::value("key1", CompareResult::Equal, "nope")])
        .or_else([Op::delete("key1", DeleteOptions::new().with_prev_kv())]);
    let r = client.txn(failing).await.unwrap();
    assert!(!r.succeeded);
    let ResponseOp::Delete(del) = &r.responses[0] else {
        panic!()
    };
    assert_eq!(del.deleted, 1);
}

#[tokio::test]
async fn status_alarms_and_members() {
    let server = FakeServer::start(0x2e12, Behaviour::default()).await;
    server.raise_alarm(cairn_wire::rpc::AlarmType::NoSpace);
    let client = Client::connect([&server.address], quick()).await.unwrap();
    let status = client.status().await.unwrap();
    assert_eq!(status.leader, 0x2e12);
    assert_eq!(status.errors, ["memberID:11794 alarm:NOSPACE "]);
    let alarms = client.alarm_list().await.unwrap();
    assert_eq!(
        alarms.alarms,
        [AlarmMember {
            member_id: 0x2e12,
            alarm: AlarmType::NoSpace
        }]
    );
    let disarmed = client.alarm_disarm(AlarmMember::default()).await.unwrap();
    assert_eq!(disarmed.alarms.len(), 1);
    assert!(client.alarm_list().await.unwrap().alarms.is_empty());
    let members = client.member_list().await.unwrap();
    assert_eq!(members.members.len(), 1);
    assert_eq!(members.members[0].name, "default");
    assert_eq!(members.members[0].client_urls, ["http://127.0.0.1:23790"]);
}

#[tokio::test]
async fn leases_grant_attach_renew_list_and_revoke() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let client = Client::connect([&server.address], quick()).await.unwrap();
    let grant = client.lease_grant(60, 0).await.unwrap();
    assert_eq!(grant.ttl, 60);
    assert!(grant.error.is_empty());
    client
        .put("lk", "v", PutOptions::new().with_lease(grant.id))
        .await
        .unwrap();
    let ttl = client.lease_time_to_live(grant.id, true).await.unwrap();
    assert_eq!(
        (ttl.granted_ttl, ttl.keys.clone()),
        (60, vec![b"lk".to_vec()])
    );
    assert_eq!(
        client.lease_keep_alive_once(grant.id).await.unwrap().ttl,
        60
    );
    assert_eq!(client.lease_leases().await.unwrap().leases, [grant.id]);
    client.lease_revoke(grant.id).await.unwrap();
    assert!(client
        .get("lk", GetOptions::new())
        .await
        .unwrap()
        .kvs
        .is_empty());
    assert_eq!(
        client.lease_revoke(grant.id).await.unwrap_err(),
        Error::LeaseNotFound
    );
    assert_eq!(client.lease_keep_alive_once(grant.id).await.unwrap().ttl, 0);
    let err = client
        .put("k", "v", PutOptions::new().with_lease(grant.id))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");
}
