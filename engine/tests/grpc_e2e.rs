//! The etcd v3 gRPC API and the HTTP endpoints on cairn's client port,
//! driven by a real gRPC client (tonic over the project's own etcd message
//! declarations) against the real `cairn` binary.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use cairn_wire::etcdpb as pb;
use common::Server;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
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

/// A bidirectional stream: the sender of requests and the responses.
async fn bidi<Req, Resp>(
    ch: &Channel,
    path: &'static str,
) -> Result<(mpsc::Sender<Req>, tonic::Streaming<Resp>), Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let resp = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            PathAndQuery::from_static(path),
            codec,
        )
        .await?;
    Ok((tx, resp.into_inner()))
}

async fn put(ch: &Channel, key: &str, value: &str, lease: i64) -> pb::PutResponse {
    let req = pb::PutRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        lease,
        ..Default::default()
    };
    unary(ch, pb::path::KV_PUT, req).await.unwrap()
}

async fn get(ch: &Channel, req: pb::RangeRequest) -> pb::RangeResponse {
    unary(ch, pb::path::KV_RANGE, req).await.unwrap()
}

fn range(key: &str, range_end: &str) -> pb::RangeRequest {
    pb::RangeRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        range_end: Bytes::copy_from_slice(range_end.as_bytes()),
        ..Default::default()
    }
}

fn watch_create(key: &str, range_end: &str, start_revision: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::WatchRequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                range_end: Bytes::copy_from_slice(range_end.as_bytes()),
                start_revision,
                ..Default::default()
            },
        )),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn kv_txn_watch_and_leases_work_through_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    runtime().block_on(async {
        let ch = channel(&server).await;
        let first = put(&ch, "a", "1", 0).await;
        let h = first.header.unwrap();
        assert!(h.cluster_id != 0 && h.member_id != 0 && h.raft_term != 0);
        put(&ch, "b", "2", 0).await;
        let got = get(&ch, range("a", "c")).await;
        assert_eq!(got.count, 2);
        assert_eq!(&got.kvs[1].value[..], b"2");

        // A txn whose compare fails runs its failure branch.
        let txn = pb::TxnRequest {
            compare: vec![pb::Compare {
                key: Bytes::from_static(b"a"),
                target: pb::CompareTarget::Value as i32,
                result: pb::CompareResult::Equal as i32,
                target_union: Some(pb::TargetUnion::Value(Bytes::from_static(b"nope"))),
                ..Default::default()
            }],
            success: vec![],
            failure: vec![pb::RequestOp {
                request: Some(pb::Request::Range(range("b", ""))),
            }],
        };
        let t: pb::TxnResponse = unary(&ch, pb::path::KV_TXN, txn).await.unwrap();
        assert!(!t.succeeded);
        match &t.responses[0].response {
            Some(pb::Response::Range(r)) => assert_eq!(&r.kvs[0].value[..], b"2"),
            other => panic!("unexpected {other:?}"),
        }
        let dup = pb::TxnRequest {
            success: vec![
                pb::RequestOp {
                    request: Some(pb::Request::Put(pb::PutRequest {
                        key: "d".into(),
                        ..Default::default()
                    })),
                },
                pb::RequestOp {
                    request: Some(pb::Request::Put(pb::PutRequest {
                        key: "d".into(),
                        ..Default::default()
                    })),
                },
            ],
            ..Default::default()
        };
        let e = unary::<_, pb::TxnResponse>(&ch, pb::path::KV_TXN, dup)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(
            e.message(),
            "etcdserver: duplicate key given in txn request"
        );

        // A watch from the first revision replays history, then goes live.
        let (tx, mut events) = bidi::<pb::WatchRequest, pb::WatchResponse>(&ch, pb::path::WATCH)
            .await
            .unwrap();
        tx.send(watch_create("a", "c", h.revision)).await.unwrap();
        let created = events.next().await.unwrap().unwrap();
        assert!(created.created);
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let w = events.next().await.unwrap().unwrap();
            seen.extend(w.events.into_iter().map(|e| e.kv.unwrap().key));
            if seen.len() == 2 {
                put(&ch, "a", "3", 0).await;
            }
        }
        assert_eq!(seen, [&b"a"[..], b"b", b"a"]);

        // Leases: grant, attach, keep alive over the stream, revoke.
        let g: pb::LeaseGrantResponse = unary(
            &ch,
            pb::path::LEASE_GRANT,
            pb::LeaseGrantRequest { ttl: 30, id: 0 },
        )
        .await
        .unwrap();
        assert!(g.id > 0 && g.ttl >= 30);
        put(&ch, "leased", "x", g.id).await;
        let (ka, mut kas) = bidi::<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>(
            &ch,
            pb::path::LEASE_KEEP_ALIVE,
        )
        .await
        .unwrap();
        for _ in 0..2 {
            ka.send(pb::LeaseKeepAliveRequest { id: g.id })
                .await
                .unwrap();
            let r = kas.next().await.unwrap().unwrap();
            assert_eq!((r.id, r.ttl), (g.id, g.ttl));
        }
        let _: pb::LeaseRevokeResponse = unary(
            &ch,
            pb::path::LEASE_REVOKE,
            pb::LeaseRevokeRequest { id: g.id },
        )
        .await
        .unwrap();
        assert_eq!(get(&ch, range("leased", "")).await.count, 0);
        let e = unary::<_, pb::LeaseRevokeResponse>(
            &ch,
            pb::path::LEASE_REVOKE,
            pb::LeaseRevokeRequest { id: g.id },
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::NotFound, "etcdserver: requested lease not found")
        );

        // clientv3's WithRequireLeader metadata: served while a leader is known.
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.unwrap();
        let mut req = tonic::Request::new(range("a", ""));
        req.metadata_mut()
            .insert("hasleader", "true".parse().unwrap());
        let codec = tonic_prost::ProstCodec::<pb::RangeRequest, pb::RangeResponse>::default();
        let r = grpc
            .unary(req, PathAndQuery::from_static(pb::path::KV_RANGE), codec)
            .await
            .unwrap();
        assert_eq!(r.into_inner().count, 1);

        // Compacted history: OutOfRange with etcd's text.
        let now = put(&ch, "c", "1", 0).await.header.unwrap().revision;
        let _: pb::CompactionResponse = unary(
            &ch,
            pb::path::KV_COMPACT,
            pb::CompactionRequest {
                revision: now,
                physical: false,
            },
        )
        .await
        .unwrap();
        let e = unary::<_, pb::RangeResponse>(
            &ch,
            pb::path::KV_RANGE,
            pb::RangeRequest {
                revision: 2,
                ..range("a", "")
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::OutOfRange);
        assert_eq!(
            e.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
    });
}

#[test]
fn list_then_watch_from_the_next_revision_misses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    runtime().block_on(async {
        let ch = channel(&server).await;
        let writes_per_writer = 150;
        let mut writers = Vec::new();
        for w in 0..2 {
            let ch = ch.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..writes_per_writer {
                    put(&ch, &format!("pods/{w}-{}", i % 7), &i.to_string(), 0).await;
                }
            }));
        }
        // List while the writers run, then watch from the list's revision + 1.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let list = get(&ch, range("pods/", "pods0")).await;
        let listed_at = list.header.unwrap().revision;
        let (tx, mut events) = bidi::<pb::WatchRequest, pb::WatchResponse>(&ch, pb::path::WATCH)
            .await
            .unwrap();
        tx.send(watch_create("pods/", "pods0", listed_at + 1))
            .await
            .unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let last = get(&ch, range("pods/", "pods0"))
            .await
            .header
            .unwrap()
            .revision;
        let mut revisions = Vec::new();
        while revisions.last().copied().unwrap_or(listed_at) < last {
            let w = tokio::time::timeout(Duration::from_secs(20), events.next())
                .await
                .expect("the watch delivers every write")
                .unwrap()
                .unwrap();
            assert!(!w.canceled, "watch canceled: {}", w.cancel_reason);
            revisions.extend(w.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision));
        }
        // Every write is one revision; the writers are the only writers.
        let want: Vec<i64> = (listed_at + 1..=last).collect();
        assert_eq!(revisions, want);
    });
}

#[test]
fn bad_grpc_input_gets_a_status_and_the_server_keeps_serving() {
    #[derive(Clone, PartialEq, prost::Message)]
    struct NotARange {
        // Field 3 of RangeRequest is an int64; bytes there do not decode.
        #[prost(bytes = "vec", tag = "3")]
        limit: Vec<u8>,
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    runtime().block_on(async {
        let ch = channel(&server).await;
        let e = unary::<_, pb::RangeResponse>(&ch, "/etcdserverpb.KV/Nope", range("a", ""))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented);
        let e = unary::<_, pb::RangeResponse>(&ch, "/no.Such/Method", range("a", ""))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented);
        let e = unary::<_, pb::RangeResponse>(&ch, "/v3lockpb.Lock/Nope", range("a", ""))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented);
        let e =
            unary::<_, pb::RangeResponse>(&ch, pb::path::KV_RANGE, NotARange { limit: vec![1] })
                .await
                .unwrap_err();
        assert_eq!(e.code(), Code::Internal);
        assert!(
            e.message().starts_with("grpc: error unmarshalling request"),
            "{}",
            e.message()
        );
        let huge = pb::PutRequest {
            key: "big".into(),
            value: Bytes::from(vec![7u8; 3 << 20]),
            ..Default::default()
        };
        let e = unary::<_, pb::PutResponse>(&ch, pb::path::KV_PUT, huge)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);

        // Many streams opened and dropped at once (the client resets them).
        let mut streams = Vec::new();
        for i in 0..200 {
            let (tx, rx) = bidi::<pb::WatchRequest, pb::WatchResponse>(&ch, pb::path::WATCH)
                .await
                .unwrap();
            tx.send(watch_create(&format!("w{i}"), "", 0))
                .await
                .unwrap();
            streams.push((tx, rx));
        }
        let (_, first) = &mut streams[0];
        assert!(first.next().await.unwrap().unwrap().created);
        drop(streams);

        // The same connection and a new one still serve.
        assert!(put(&ch, "after", "ok", 0).await.header.is_some());
        let other = channel(&server).await;
        assert_eq!(
            &get(&other, range("after", "")).await.kvs[0].value[..],
            b"ok"
        );
        let health: pb::HealthCheckResponse = unary(
            &other,
            pb::path::HEALTH_CHECK,
            pb::HealthCheckRequest::default(),
        )
        .await
        .unwrap();
        assert_eq!(health.status, pb::ServingStatus::Serving as i32);
    });
}

fn http_get(server: &Server, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
fn http_health_version_and_metrics_are_served_on_the_client_port() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        http_get(&server, "/health"),
        ("HTTP/1.1 200 OK".into(), "{\"health\":\"true\"}".into())
    );
    let (status, version) = http_get(&server, "/version");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(version.starts_with("{\"etcdserver\":\"3.4."), "{version}");
    assert!(
        version.ends_with(",\"etcdcluster\":\"3.4.0\"}"),
        "{version}"
    );

    let (status, metrics) = http_get(&server, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("etcd_server_has_leader"), 1.0);
    assert_eq!(value("etcd_server_is_leader"), 1.0);
    // The start-up check wrote one key.
    assert_eq!(value("etcd_debugging_mvcc_keys_total"), 1.0);
    assert!(value("etcd_server_proposals_applied_total") >= 1.0);
    assert!(value("etcd_mvcc_db_total_size_in_bytes") > 0.0);
    // The start-up put was synced; the member saw itself become leader.
    assert!(value("etcd_disk_wal_fsync_duration_seconds_count") >= 1.0);
    assert_eq!(value("etcd_server_leader_changes_seen_total"), 1.0);

    assert_eq!(http_get(&server, "/nope").0, "HTTP/1.1 404 Not Found");
}
