//! Plain HTTP/1 on the client port, as etcd serves it next to gRPC:
//! `GET /health`, `/version` and `/metrics`. One request per connection
//! (answered with `Connection: close`), a bounded request head, and a
//! deadline for both the request and the answer.
//!
//! `/health` is etcd's: false while no leader is known or an alarm is
//! raised, otherwise true once a linearizable read of the key `health`
//! succeeds (so a member cut off from its quorum reports false).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use cairn_wire::{decode_response, rpc, RangeParams, ResponseBodyView};
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::grpc::Session;
use super::metrics;
use super::route::Router;
use super::Shared;
use crate::limits;

/// The etcd release whose API cairn serves, with cairn's own version as
/// semver build metadata: clients that compare versions (feature gates)
/// see 3.4.23, people see that it is cairn.
pub const ETCD_SERVER_VERSION: &str = concat!("3.4.23+cairn.", env!("CARGO_PKG_VERSION"));

/// The cluster version etcd 3.4 reports.
pub const ETCD_CLUSTER_VERSION: &str = "3.4.0";

struct Reply {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn ok(content_type: &'static str, body: String) -> Reply {
        Reply {
            status: "200 OK",
            content_type,
            body,
        }
    }

    fn plain(status: &'static str, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
        }
    }
}

/// Serve one HTTP/1 request and close.
pub async fn serve<S>(_shared: Arc<Shared>, router: Rc<Router>, mut io: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Duration::from_millis(limits::HTTP_TIMEOUT_MS);
    let head = glommio::timer::timeout(deadline, async { Ok(read_head(&mut io).await) }).await;
    let reply = match head {
        Ok(Some(head)) => {
            let (method, path) = request_line(&head);
            let answer =
                glommio::timer::timeout(deadline, async { Ok(route(&router, method, path).await) })
                    .await;
            let head_only = method == "HEAD";
            match answer {
                Ok(mut r) => {
                    if head_only {
                        r.body.clear();
                    }
                    r
                }
                Err(_) => Reply::plain("503 Service Unavailable", "timed out\n"),
            }
        }
        Ok(None) => Reply::plain(
            "431 Request Header Fields Too Large",
            "request head too large\n",
        ),
        Err(_) => return,
    };
    let text = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        reply.status,
        reply.content_type,
        reply.body.len(),
        reply.body
    );
    let _ = io.write_all(text.as_bytes()).await;
    let _ = io.flush().await;
}

/// The request head (up to the blank line), `None` if it outgrows the
/// limit or the client stops early.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> Option<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() > limits::HTTP_HEAD_BYTES_MAX {
            return None;
        }
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The method and the path without its query.
fn request_line(head: &str) -> (&str, &str) {
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    (method, target.split('?').next().unwrap_or(""))
}

async fn route(router: &Rc<Router>, method: &str, path: &str) -> Reply {
    let known = matches!(path, "/health" | "/version" | "/metrics");
    if known && method != "GET" && method != "HEAD" {
        return Reply::plain("405 Method Not Allowed", "Method Not Allowed\n");
    }
    match path {
        "/version" => Reply::ok(
            "application/json",
            format!(
                "{{\"etcdserver\":\"{ETCD_SERVER_VERSION}\",\"etcdcluster\":\"{ETCD_CLUSTER_VERSION}\"}}"
            ),
        ),
        "/health" => {
            let body = match health(router).await {
                Ok(()) => "{\"health\":\"true\"}".to_owned(),
                Err(reason) => format!("{{\"health\":\"false\",\"reason\":\"{reason}\"}}"),
            };
            // etcd answers 200 either way (503 only from /health?serializable
            // variants of later releases); the body says which.
            Reply::ok("text/plain; charset=utf-8", body)
        }
        "/metrics" => match scrape(router).await {
            Ok(s) => Reply::ok("text/plain; version=0.0.4", metrics::render(&s)),
            Err(e) => Reply::plain("503 Service Unavailable", &format!("{e}\n")),
        },
        _ => Reply::plain("404 Not Found", "404 page not found\n"),
    }
}

async fn health(router: &Rc<Router>) -> Result<(), String> {
    let s = scrape(router).await?;
    if s.alarms > 0 {
        return Err("ALARM ACTIVE".to_owned());
    }
    if s.leader == 0 {
        return Err("RAFT NO LEADER".to_owned());
    }
    let session = Session::open(router.clone());
    let (id, f) = session.encode(|e, id| {
        e.range_request(
            id,
            &RangeParams {
                key: b"health",
                limit: 1,
                ..Default::default()
            },
        )
    });
    let answer = session.call(id, f).await;
    session.close().await;
    let answer = answer.map_err(|st| st.message)?;
    match decode_response(&answer).map(|v| v.body) {
        Ok(Ok(_)) => Ok(()),
        // etcd counts a permission error as healthy: the member answered.
        Ok(Err(e)) if e.code == rpc::ErrorCode::PermissionDenied => Ok(()),
        Ok(Err(e)) => Err(e.message.to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Ask the shard for the numbers `/metrics` and `/health` report.
async fn scrape(router: &Rc<Router>) -> Result<metrics::Snapshot, String> {
    let session = Session::open(router.clone());
    let result = scrape_with(&session).await;
    session.close().await;
    result
}

async fn scrape_with(session: &Session) -> Result<metrics::Snapshot, String> {
    let mut snap = metrics::Snapshot::default();
    let (id, f) = session.encode(|e, id| e.status_request(id));
    let answer = session.call(id, f).await.map_err(|st| st.message)?;
    let view = decode_response(&answer).map_err(|e| e.to_string())?;
    match view.body {
        Ok(ResponseBodyView::Status(st)) => {
            snap.member_id = view.header.member_id;
            snap.revision = view.header.revision;
            snap.leader = st.leader();
            snap.raft_term = st.raft_term();
            snap.raft_index = st.raft_index();
            snap.raft_applied_index = st.raft_applied_index();
            snap.db_size_bytes = st.db_size();
            snap.db_size_in_use_bytes = st.db_size_in_use();
            snap.alarms = st.errors().map_or(0, |e| e.len());
        }
        Ok(_) => return Err("unexpected response type".to_owned()),
        Err(e) => return Err(e.message.to_owned()),
    }
    // Every key: from the smallest key to the end of the keyspace.
    let (id, f) = session.encode(|e, id| {
        e.range_request(
            id,
            &RangeParams {
                key: b"\0",
                range_end: b"\0",
                count_only: true,
                serializable: true,
                ..Default::default()
            },
        )
    });
    let answer = session.call(id, f).await.map_err(|st| st.message)?;
    if let Ok(Ok(ResponseBodyView::Range(r))) = decode_response(&answer).map(|v| v.body) {
        snap.keys = r.count();
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_drops_the_query() {
        assert_eq!(
            request_line("GET /health?serializable=true HTTP/1.1\r\nHost: x"),
            ("GET", "/health")
        );
        assert_eq!(request_line(""), ("", ""));
    }
}
