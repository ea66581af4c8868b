//! Auth over gRPC with a tonic client against the real `cairn` binary: the
//! token sent as etcd's `token` metadata reaches the shard from every
//! service, streams included (Watch creates, Lock's recipe steps), and the
//! shard's auth errors come back with etcd's codes and texts.

mod common;

use std::str::FromStr;

use bytes::Bytes;
use cairn_wire::etcdpb as pb;
use common::Server;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};

fn request<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = token {
        req.metadata_mut()
            .insert("token", MetadataValue::from_str(t).unwrap());
    }
    req
}

async fn call<Req, Resp>(
    ch: &Channel,
    path: &'static str,
    token: Option<&str>,
    req: Req,
) -> Result<Resp, Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    grpc.unary(request(req, token), PathAndQuery::from_static(path), codec)
        .await
        .map(tonic::Response::into_inner)
}

/// Call an Auth method that answers only a header.
async fn admin<Req>(ch: &Channel, path: &'static str, token: Option<&str>, req: Req)
where
    Req: prost::Message + Send + Sync + 'static,
{
    let _: pb::HeaderOnlyResponse = call(ch, path, token, req)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
}

async fn login(ch: &Channel, name: &str, password: &str) -> String {
    let req = pb::AuthenticateRequest {
        name: name.into(),
        password: password.into(),
    };
    let r: pb::AuthenticateResponse = call(ch, pb::path::AUTHENTICATE, None, req).await.unwrap();
    assert!(!r.token.is_empty());
    r.token
}

fn put(key: &str, value: &str) -> pb::PutRequest {
    pb::PutRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        ..Default::default()
    }
}

fn watch_prefix(prefix: &str) -> pb::WatchRequest {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    pb::WatchRequest {
        request_union: Some(pb::WatchRequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: Bytes::copy_from_slice(prefix.as_bytes()),
                range_end: Bytes::from(end),
                ..Default::default()
            },
        )),
    }
}

/// Open a watch stream with `token` and send `first`.
async fn watch(
    ch: &Channel,
    token: &str,
    first: pb::WatchRequest,
) -> (
    mpsc::Sender<pb::WatchRequest>,
    tonic::Streaming<pb::WatchResponse>,
) {
    let (tx, rx) = mpsc::channel(4);
    tx.send(first).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<pb::WatchRequest, pb::WatchResponse>::default();
    let resp = grpc
        .streaming(
            request(ReceiverStream::new(rx), Some(token)),
            PathAndQuery::from_static(pb::path::WATCH),
            codec,
        )
        .await
        .unwrap();
    (tx, resp.into_inner())
}

#[test]
fn the_token_reaches_the_shard_from_every_service() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = Channel::from_shared(format!("http://{}", server.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let user = |name: &str| pb::AuthUserAddRequest {
            name: name.into(),
            password: "pw".into(),
            ..Default::default()
        };
        let grant = |user: &str, role: &str| pb::AuthUserGrantRoleRequest {
            user: user.into(),
            role: role.into(),
        };
        let role = |name: &str| pb::AuthRoleAddRequest { name: name.into() };
        admin(&ch, pb::path::USER_ADD, None, user("root")).await;
        admin(&ch, pb::path::ROLE_ADD, None, role("root")).await;
        admin(&ch, pb::path::USER_GRANT_ROLE, None, grant("root", "root")).await;
        admin(&ch, pb::path::USER_ADD, None, user("bob")).await;
        admin(&ch, pb::path::ROLE_ADD, None, role("w")).await;
        let perm = pb::AuthRoleGrantPermissionRequest {
            name: "w".into(),
            perm: Some(pb::Permission {
                perm_type: pb::PermissionType::Readwrite as i32,
                key: "w/".into(),
                range_end: "w0".into(),
            }),
        };
        admin(&ch, pb::path::ROLE_GRANT_PERMISSION, None, perm).await;
        admin(&ch, pb::path::USER_GRANT_ROLE, None, grant("bob", "w")).await;
        let got: pb::AuthRoleGetResponse = call(
            &ch,
            pb::path::ROLE_GET,
            None,
            pb::AuthRoleNameRequest { role: "w".into() },
        )
        .await
        .unwrap();
        assert_eq!(got.perm.len(), 1);
        assert_eq!(&got.perm[0].key[..], b"w/");
        admin(&ch, pb::path::AUTH_ENABLE, None, pb::AuthEmptyRequest {}).await;
        let status: pb::AuthStatusResponse =
            call(&ch, pb::path::AUTH_STATUS, None, pb::AuthEmptyRequest {})
                .await
                .unwrap();
        assert!(status.enabled);

        let bob = login(&ch, "bob", "pw").await;
        let e = call::<_, pb::AuthenticateResponse>(
            &ch,
            pb::path::AUTHENTICATE,
            None,
            pb::AuthenticateRequest {
                name: "bob".into(),
                password: "wrong".into(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);

        // KV: allowed inside bob's range, denied outside it, refused
        // without a token and with a made-up one.
        let _: pb::PutResponse = call(&ch, pb::path::KV_PUT, Some(&bob), put("w/a", "1"))
            .await
            .unwrap();
        let e = call::<_, pb::PutResponse>(&ch, pb::path::KV_PUT, Some(&bob), put("x", "1"))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::PermissionDenied, "etcdserver: permission denied")
        );
        let e = call::<_, pb::PutResponse>(&ch, pb::path::KV_PUT, None, put("w/a", "2"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = call::<_, pb::PutResponse>(&ch, pb::path::KV_PUT, Some("nope.1"), put("w/a", "2"))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::Unauthenticated, "etcdserver: invalid auth token")
        );

        // Watch: a create carries the stream's token.
        let (_tx, mut events) = watch(&ch, &bob, watch_prefix("w/")).await;
        let created = events.next().await.unwrap().unwrap();
        assert!(created.created && !created.canceled, "{created:?}");
        let _: pb::PutResponse = call(&ch, pb::path::KV_PUT, Some(&bob), put("w/b", "2"))
            .await
            .unwrap();
        let got = events.next().await.unwrap().unwrap();
        assert_eq!(&got.events[0].kv.as_ref().unwrap().key[..], b"w/b");
        let (_tx2, mut denied) = watch(&ch, &bob, watch_prefix("x")).await;
        let refused = denied.next().await.unwrap().unwrap();
        assert!(refused.canceled, "{refused:?}");
        assert!(
            refused.cancel_reason.contains("permission denied"),
            "{refused:?}"
        );

        // Lock: every step of the recipe carries the call's token.
        let lease: pb::LeaseGrantResponse = call(
            &ch,
            pb::path::LEASE_GRANT,
            Some(&bob),
            pb::LeaseGrantRequest { ttl: 60, id: 0 },
        )
        .await
        .unwrap();
        let lock = |name: &str| pb::LockRequest {
            name: Bytes::copy_from_slice(name.as_bytes()),
            lease: lease.id,
        };
        let held: pb::LockResponse = call(&ch, pb::path::LOCK, Some(&bob), lock("w/lk"))
            .await
            .unwrap();
        assert!(held.key.starts_with(b"w/lk/"));
        let e = call::<_, pb::LockResponse>(&ch, pb::path::LOCK, Some(&bob), lock("x/lk"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);

        // Only root administers auth.
        let e = call::<_, pb::AuthUserListResponse>(
            &ch,
            pb::path::USER_LIST,
            Some(&bob),
            pb::AuthEmptyRequest {},
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let root = login(&ch, "root", "pw").await;
        let users: pb::AuthUserListResponse = call(
            &ch,
            pb::path::USER_LIST,
            Some(&root),
            pb::AuthEmptyRequest {},
        )
        .await
        .unwrap();
        assert_eq!(users.users, ["bob", "root"]);
        admin(
            &ch,
            pb::path::AUTH_DISABLE,
            Some(&root),
            pb::AuthEmptyRequest {},
        )
        .await;
        let _: pb::PutResponse = call(&ch, pb::path::KV_PUT, None, put("x", "free"))
            .await
            .unwrap();
    });
}
