//! A small fake cairn server for the client's tests: it speaks the real
//! protocol (preface, frames, cairn-wire messages) and answers from an
//! in-memory map, with knobs to misbehave (answer late, out of order, never,
//! or hang up).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_wire::{
    decode_request, rpc, Builder, Encoder, FrameDecoder, Header, KeyValueRef, RequestBodyView,
    RequestOpView, StatusResult, CLIENT_PREFACE,
};
use flatbuffers::{UnionWIPOffset, WIPOffset};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

mod cluster;
mod watch;

pub const CLUSTER_ID: u64 = 0xc1;

/// How the fake misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Hold answers until this many requests arrived on the connection, then
    /// send them in reverse order (0 or 1: answer at once).
    pub reverse_batch: usize,
    /// Never answer anything.
    pub silent: bool,
    /// Close the connection (without answering) when this request arrives.
    pub hang_up_at_request: Option<usize>,
    /// Answer each request only after this long.
    pub delay: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Kv {
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    value: Vec<u8>,
    lease: i64,
}

#[derive(Default)]
struct State {
    kv: BTreeMap<Vec<u8>, Kv>,
    revision: i64,
    compacted: i64,
    connections: usize,
    requests: usize,
    alarms: Vec<(u64, rpc::AlarmType)>,
    /// Lease id -> granted TTL (the fake's leases never count down).
    leases: BTreeMap<i64, i64>,
    watchers: Vec<watch::FakeWatcher>,
    members: Vec<cluster::FakeMember>,
    next_watch_id: i64,
    member_id: u64,
    tasks: Vec<JoinHandle<()>>,
}

pub struct FakeServer {
    pub address: String,
    pub member_id: u64,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl FakeServer {
    pub async fn start(member_id: u64, behaviour: Behaviour) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State {
            revision: 1,
            member_id,
            members: vec![cluster::founding_member(member_id)],
            ..State::default()
        }));
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let conn_state = accept_state.clone();
                let b = behaviour.clone();
                let task = tokio::spawn(serve(socket, conn_state, b, member_id));
                let mut s = accept_state.lock().unwrap();
                s.connections += 1;
                s.tasks.push(task);
            }
        });
        FakeServer {
            address,
            member_id,
            state,
            accept,
        }
    }

    /// Stops accepting and drops every connection.
    pub fn stop(&self) {
        self.accept.abort();
        for t in self.state.lock().unwrap().tasks.drain(..) {
            t.abort();
        }
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// Drops every connection but keeps accepting new ones.
    pub fn drop_connections(&self) {
        let mut s = self.state.lock().unwrap();
        for t in s.tasks.drain(..) {
            t.abort();
        }
        s.watchers.clear();
    }

    /// Cancels every watch from the server side, with `reason`.
    pub fn cancel_watches(&self, reason: &str) {
        watch::cancel_all(&mut self.state.lock().unwrap(), reason);
    }

    /// Watches the server holds, over all connections.
    pub fn watchers(&self) -> usize {
        self.state.lock().unwrap().watchers.len()
    }

    pub fn raise_alarm(&self, alarm: rpc::AlarmType) {
        let member = self.member_id;
        self.state.lock().unwrap().alarms.push((member, alarm));
    }
}

/// Aborts a task when dropped, so aborting a connection's task also ends
/// its writer (and closes the socket).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Frames waiting for a connection's writer (answers and watch events).
const OUTBOX_FRAMES_MAX: usize = 4096;

async fn serve(socket: TcpStream, state: Arc<Mutex<State>>, b: Behaviour, member_id: u64) {
    // Answers and watch events are separate small writes: without this,
    // Nagle's algorithm holds the second until the client's delayed ACK.
    let _ = socket.set_nodelay(true);
    let (mut reader, mut writer) = socket.into_split();
    let mut preface = [0u8; 8];
    if reader.read_exact(&mut preface).await.is_err() || preface != CLIENT_PREFACE {
        return;
    }
    let (outbox, mut outgoing) = mpsc::channel::<Vec<u8>>(OUTBOX_FRAMES_MAX);
    let _writer = AbortOnDrop(tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    }));
    let mut decoder = FrameDecoder::for_requests();
    let mut encoder = Encoder::new();
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut seen = 0usize;
    loop {
        let n = match reader.read(decoder.read_buf()).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if decoder.commit(n).is_err() {
            return;
        }
        let mut answers = Vec::new();
        while let Ok(Some(frame)) = decoder.next_frame() {
            seen += 1;
            if b.hang_up_at_request == Some(seen) {
                return;
            }
            let request = decode_request(frame).expect("the client sent a valid frame");
            let answer = {
                let mut s = state.lock().unwrap();
                s.requests += 1;
                let conn = Conn {
                    outbox: outbox.clone(),
                    member_id,
                };
                answer(&mut s, &mut encoder, &conn, request.id, request.body)
            };
            answers.push(answer);
        }
        if b.silent {
            continue;
        }
        if let Some(delay) = b.delay {
            tokio::time::sleep(delay).await;
        }
        if b.reverse_batch > 1 {
            held.extend(answers);
            if held.len() < b.reverse_batch {
                continue;
            }
            answers = held.drain(..).rev().collect();
        }
        // An empty answer was already queued by the request's handler.
        for a in answers.into_iter().filter(|a| !a.is_empty()) {
            if outbox.send(a).await.is_err() {
                return;
            }
        }
    }
}

/// The connection a request arrived on.
pub(crate) struct Conn {
    outbox: mpsc::Sender<Vec<u8>>,
    member_id: u64,
}

fn header(s: &State, member_id: u64) -> Header {
    Header {
        cluster_id: CLUSTER_ID,
        member_id,
        revision: s.revision,
        raft_term: 2,
    }
}

/// etcd's ranges: empty end = one key, "\0" = every key from `key` on.
fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        _ => key >= start && key < end,
    }
}

pub(crate) struct Failure(pub(crate) rpc::ErrorCode, pub(crate) &'static str);

const COMPACTED: Failure = Failure(
    rpc::ErrorCode::OutOfRange,
    "etcdserver: mvcc: required revision has been compacted",
);
const FUTURE: Failure = Failure(
    rpc::ErrorCode::OutOfRange,
    "etcdserver: mvcc: required revision is a future revision",
);
const LEASE_NOT_FOUND: Failure = Failure(
    rpc::ErrorCode::NotFound,
    "etcdserver: requested lease not found",
);
const KEY_NOT_FOUND: Failure =
    Failure(rpc::ErrorCode::InvalidArgument, "etcdserver: key not found");

fn answer(
    s: &mut State,
    enc: &mut Encoder,
    conn: &Conn,
    id: u64,
    body: RequestBodyView<'_>,
) -> Vec<u8> {
    let member_id = conn.member_id;
    let result: Result<Vec<u8>, Failure> = (|| match body {
        RequestBodyView::Range(r) => {
            let (key, end) = (cairn_wire::bytes(r.key()), cairn_wire::bytes(r.range_end()));
            check_revision(s, r.revision())?;
            let (kvs, count) = range(s, key, end, r.limit(), r.keys_only());
            let refs: Vec<KeyValueRef<'_>> = kvs.iter().map(|(k, v)| kv_ref(k, v)).collect();
            let h = header(s, member_id);
            let result = cairn_wire::RangeResult {
                kvs: if r.count_only() { &[] } else { &refs },
                more: (count as usize) > refs.len(),
                count,
            };
            Ok(enc.range_response(id, &h, &result).to_vec())
        }
        RequestBodyView::Put(p) => {
            let (key, value) = (cairn_wire::bytes(p.key()), cairn_wire::bytes(p.value()));
            let prev = put(s, key, value, p.lease(), p.ignore_value())?;
            let h = header(s, member_id);
            let prev_kv = if p.prev_kv() { prev.as_ref() } else { None };
            let result = cairn_wire::PutResult {
                prev_kv: prev_kv.map(|v| kv_ref(key, v)),
            };
            Ok(enc.put_response(id, &h, &result).to_vec())
        }
        RequestBodyView::DeleteRange(d) => {
            let (key, end) = (cairn_wire::bytes(d.key()), cairn_wire::bytes(d.range_end()));
            let deleted = delete(s, key, end);
            let refs: Vec<KeyValueRef<'_>> = deleted.iter().map(|(k, v)| kv_ref(k, v)).collect();
            let h = header(s, member_id);
            let result = cairn_wire::DeleteRangeResult {
                deleted: refs.len() as i64,
                prev_kvs: if d.prev_kv() { &refs } else { &[] },
            };
            Ok(enc.delete_range_response(id, &h, &result).to_vec())
        }
        RequestBodyView::Txn(t) => {
            // One revision for the whole txn if it writes, as etcd does.
            let before = s.revision;
            let executed = run_txn(s, t)?;
            if s.revision > before {
                s.revision = before + 1;
            }
            let h = header(s, member_id);
            Ok(enc
                .response_with(id, &h, |fbb| {
                    let body = build_txn_result(fbb, &executed);
                    (rpc::ResponseBody::TxnResponse, body)
                })
                .to_vec())
        }
        RequestBodyView::Compaction(c) => {
            if c.revision() <= s.compacted {
                return Err(COMPACTED);
            }
            if c.revision() > s.revision {
                return Err(FUTURE);
            }
            s.compacted = c.revision();
            let h = header(s, member_id);
            Ok(enc.compaction_response(id, &h).to_vec())
        }
        RequestBodyView::Status(_) => {
            let h = header(s, member_id);
            let errors: Vec<String> = s
                .alarms
                .iter()
                .map(|(m, a)| {
                    format!(
                        "memberID:{m} alarm:{} ",
                        a.variant_name().unwrap_or("?").to_uppercase()
                    )
                })
                .collect();
            let error_refs: Vec<&str> = errors.iter().map(String::as_str).collect();
            let st = StatusResult {
                version: "0.1.0",
                db_size: 20480,
                leader: member_id,
                raft_index: 24,
                raft_term: 2,
                raft_applied_index: 24,
                errors: &error_refs,
                db_size_in_use: 16384,
                is_learner: false,
            };
            Ok(enc.status_response(id, &h, &st).to_vec())
        }
        RequestBodyView::Alarm(a) => {
            if a.action() == rpc::AlarmAction::Deactivate {
                s.alarms
                    .retain(|(m, t)| !(*m == a.member_id() && *t == a.alarm()));
                let h = header(s, member_id);
                return Ok(enc
                    .alarm_response(id, &h, &[(a.member_id(), a.alarm())])
                    .to_vec());
            }
            let h = header(s, member_id);
            let alarms = s.alarms.clone();
            Ok(enc.alarm_response(id, &h, &alarms).to_vec())
        }
        RequestBodyView::LeaseGrant(g) => {
            let lease = if g.id() != 0 {
                g.id()
            } else {
                0x2040_a20c_4156_5900 + s.leases.len() as i64
            };
            s.leases.insert(lease, g.ttl());
            let h = header(s, member_id);
            Ok(enc
                .lease_grant_response(id, &h, lease, g.ttl(), "")
                .to_vec())
        }
        RequestBodyView::LeaseRevoke(r) => {
            if s.leases.remove(&r.id()).is_none() {
                return Err(LEASE_NOT_FOUND);
            }
            let attached: Vec<Vec<u8>> =
                s.kv.iter()
                    .filter(|(_, v)| v.lease == r.id())
                    .map(|(k, _)| k.clone())
                    .collect();
            if !attached.is_empty() {
                s.revision += 1;
            }
            for k in attached {
                s.kv.remove(&k);
            }
            let h = header(s, member_id);
            Ok(enc.lease_revoke_response(id, &h).to_vec())
        }
        RequestBodyView::LeaseKeepAlive(k) => {
            let ttl = s.leases.get(&k.id()).copied().unwrap_or(0);
            let h = header(s, member_id);
            Ok(enc.lease_keep_alive_response(id, &h, k.id(), ttl).to_vec())
        }
        RequestBodyView::LeaseTimeToLive(t) => {
            let (ttl, granted) = match s.leases.get(&t.id()) {
                Some(g) => (*g - 1, *g),
                None => (-1, 0),
            };
            let keys: Vec<&[u8]> = if t.keys() {
                s.kv.iter()
                    .filter(|(_, v)| v.lease == t.id())
                    .map(|(k, _)| k.as_slice())
                    .collect()
            } else {
                Vec::new()
            };
            let h = header(s, member_id);
            let r = cairn_wire::LeaseTimeToLiveResult {
                id: t.id(),
                ttl,
                granted_ttl: granted,
                keys: &keys,
            };
            Ok(enc.lease_time_to_live_response(id, &h, &r).to_vec())
        }
        RequestBodyView::LeaseLeases(_) => {
            let h = header(s, member_id);
            let ids: Vec<i64> = s.leases.keys().copied().collect();
            Ok(enc.lease_leases_response(id, &h, &ids).to_vec())
        }
        RequestBodyView::WatchCreate(w) => Ok(watch::create(s, enc, conn, id, w)),
        RequestBodyView::WatchCancel(c) => Ok(watch::cancel(s, enc, conn, id, c.watch_id())),
        RequestBodyView::WatchProgress(_) => {
            let h = header(s, member_id);
            let r = cairn_wire::WatchResult {
                watch_id: -1,
                ..Default::default()
            };
            Ok(enc.watch_response(id, &h, &r).to_vec())
        }
        other => match cluster::answer(s, enc, conn, id, &other) {
            Some(result) => result,
            None => panic!("fake server does not serve {}", other.type_name()),
        },
    })();
    match result {
        Ok(frame) => frame,
        Err(Failure(code, message)) => {
            let h = header(s, member_id);
            enc.error_response(id, Some(&h), code, message).to_vec()
        }
    }
}

fn check_revision(s: &State, revision: i64) -> Result<(), Failure> {
    if revision > s.revision {
        return Err(FUTURE);
    }
    if revision > 0 && revision < s.compacted {
        return Err(COMPACTED);
    }
    Ok(())
}

fn kv_ref<'a>(key: &'a [u8], v: &'a Kv) -> KeyValueRef<'a> {
    KeyValueRef {
        key,
        create_revision: v.create_revision,
        mod_revision: v.mod_revision,
        version: v.version,
        value: &v.value,
        lease: v.lease,
    }
}

fn range(
    s: &State,
    key: &[u8],
    end: &[u8],
    limit: i64,
    keys_only: bool,
) -> (Vec<(Vec<u8>, Kv)>, i64) {
    let all: Vec<(Vec<u8>, Kv)> =
        s.kv.iter()
            .filter(|(k, _)| in_range(k, key, end))
            .map(|(k, v)| {
                let mut v = v.clone();
                if keys_only {
                    v.value.clear();
                }
                (k.clone(), v)
            })
            .collect();
    let count = all.len() as i64;
    let taken = if limit > 0 {
        all.into_iter().take(limit as usize).collect()
    } else {
        all
    };
    (taken, count)
}

fn put(
    s: &mut State,
    key: &[u8],
    value: &[u8],
    lease: i64,
    ignore_value: bool,
) -> Result<Option<Kv>, Failure> {
    if lease != 0 && !s.leases.contains_key(&lease) {
        return Err(LEASE_NOT_FOUND);
    }
    let prev = s.kv.get(key).cloned();
    if ignore_value && prev.is_none() {
        return Err(KEY_NOT_FOUND);
    }
    s.revision += 1;
    let rev = s.revision;
    let entry = match &prev {
        Some(p) => Kv {
            create_revision: p.create_revision,
            mod_revision: rev,
            version: p.version + 1,
            value: if ignore_value {
                p.value.clone()
            } else {
                value.to_vec()
            },
            lease,
        },
        None => Kv {
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            value: value.to_vec(),
            lease,
        },
    };
    s.kv.insert(key.to_vec(), entry.clone());
    watch::notify(s, key, Some(&entry), prev.as_ref());
    Ok(prev)
}

fn delete(s: &mut State, key: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Kv)> {
    let keys: Vec<Vec<u8>> =
        s.kv.keys()
            .filter(|k| in_range(k, key, end))
            .cloned()
            .collect();
    if !keys.is_empty() {
        s.revision += 1;
    }
    let deleted: Vec<(Vec<u8>, Kv)> = keys
        .into_iter()
        .map(|k| {
            let v = s.kv.remove(&k).expect("key listed above");
            (k, v)
        })
        .collect();
    for (k, v) in &deleted {
        watch::notify(s, k, None, Some(v));
    }
    deleted
}

/// What one txn op did, owned, for encoding after the state lock's work.
enum Executed {
    Range(Vec<(Vec<u8>, Kv)>, i64),
    Put(Option<(Vec<u8>, Kv)>),
    Delete(Vec<(Vec<u8>, Kv)>, bool),
    Txn(bool, Vec<Executed>),
}

fn run_txn(s: &mut State, t: rpc::TxnRequest<'_>) -> Result<(bool, Vec<Executed>), Failure> {
    let succeeded = t.compare().into_iter().flatten().all(|c| compare(s, c));
    let ops = if succeeded { t.success() } else { t.failure() };
    let mut done = Vec::new();
    for op in RequestOpView::all(ops) {
        let op = op.expect("verified by decode_request");
        done.push(match op {
            RequestOpView::Range(r) => {
                let (kvs, count) = range(
                    s,
                    cairn_wire::bytes(r.key()),
                    cairn_wire::bytes(r.range_end()),
                    r.limit(),
                    r.keys_only(),
                );
                Executed::Range(kvs, count)
            }
            RequestOpView::Put(p) => {
                let key = cairn_wire::bytes(p.key());
                let prev = put(
                    s,
                    key,
                    cairn_wire::bytes(p.value()),
                    p.lease(),
                    p.ignore_value(),
                )?;
                Executed::Put(if p.prev_kv() {
                    prev.map(|v| (key.to_vec(), v))
                } else {
                    None
                })
            }
            RequestOpView::DeleteRange(d) => Executed::Delete(
                delete(
                    s,
                    cairn_wire::bytes(d.key()),
                    cairn_wire::bytes(d.range_end()),
                ),
                d.prev_kv(),
            ),
            RequestOpView::Txn(inner) => {
                let (ok, ops) = run_txn(s, inner)?;
                Executed::Txn(ok, ops)
            }
        });
    }
    Ok((succeeded, done))
}

fn compare(s: &State, c: rpc::Compare<'_>) -> bool {
    let kv = s.kv.get(cairn_wire::bytes(c.key()));
    let ord = match c.target() {
        rpc::CompareTarget::Value => {
            let actual: &[u8] = kv.map(|v| v.value.as_slice()).unwrap_or(&[]);
            actual.cmp(cairn_wire::bytes(c.value()))
        }
        rpc::CompareTarget::Version => kv.map_or(0, |v| v.version).cmp(&c.version()),
        rpc::CompareTarget::Create => kv
            .map_or(0, |v| v.create_revision)
            .cmp(&c.create_revision()),
        rpc::CompareTarget::Mod => kv.map_or(0, |v| v.mod_revision).cmp(&c.mod_revision()),
        _ => kv.map_or(0, |v| v.lease).cmp(&c.lease()),
    };
    match c.result() {
        rpc::CompareResult::Equal => ord.is_eq(),
        rpc::CompareResult::Greater => ord.is_gt(),
        rpc::CompareResult::Less => ord.is_lt(),
        _ => ord.is_ne(),
    }
}

fn kv_offset(fbb: &mut Builder, k: &[u8], v: &Kv) -> WIPOffset<rpc::KeyValue<'static>> {
    let key = Some(fbb.create_vector(k));
    let value = if v.value.is_empty() {
        None
    } else {
        Some(fbb.create_vector(&v.value))
    };
    rpc::KeyValue::create(
        fbb,
        &rpc::KeyValueArgs {
            key,
            create_revision: v.create_revision,
            mod_revision: v.mod_revision,
            version: v.version,
            value,
            lease: v.lease,
        },
    )
}

fn build_txn_result(
    fbb: &mut Builder,
    (succeeded, ops): &(bool, Vec<Executed>),
) -> WIPOffset<UnionWIPOffset> {
    build_txn_table(fbb, *succeeded, ops).as_union_value()
}

fn build_txn_table(
    fbb: &mut Builder,
    succeeded: bool,
    ops: &[Executed],
) -> WIPOffset<rpc::TxnResponse<'static>> {
    let mut offsets = Vec::new();
    for op in ops {
        let (kind, body) = match op {
            Executed::Range(kvs, count) => {
                let items: Vec<_> = kvs.iter().map(|(k, v)| kv_offset(fbb, k, v)).collect();
                let kvs = Some(fbb.create_vector(&items));
                let r = rpc::RangeResponse::create(
                    fbb,
                    &rpc::RangeResponseArgs {
                        kvs,
                        more: false,
                        count: *count,
                    },
                );
                (rpc::ResponseOpKind::RangeResponse, r.as_union_value())
            }
            Executed::Put(prev) => {
                let prev_kv = prev.as_ref().map(|(k, v)| kv_offset(fbb, k, v));
                let r = rpc::PutResponse::create(fbb, &rpc::PutResponseArgs { prev_kv });
                (rpc::ResponseOpKind::PutResponse, r.as_union_value())
            }
            Executed::Delete(deleted, with_prev) => {
                let prev_kvs = if *with_prev {
                    let items: Vec<_> = deleted.iter().map(|(k, v)| kv_offset(fbb, k, v)).collect();
                    Some(fbb.create_vector(&items))
                } else {
                    None
                };
                let r = rpc::DeleteRangeResponse::create(
                    fbb,
                    &rpc::DeleteRangeResponseArgs {
                        deleted: deleted.len() as i64,
                        prev_kvs,
                    },
                );
                (rpc::ResponseOpKind::DeleteRangeResponse, r.as_union_value())
            }
            Executed::Txn(ok, inner) => {
                let t = build_txn_table(fbb, *ok, inner);
                (rpc::ResponseOpKind::TxnResponse, t.as_union_value())
            }
        };
        offsets.push(rpc::ResponseOp::create(
            fbb,
            &rpc::ResponseOpArgs {
                response_type: kind,
                response: Some(body),
            },
        ));
    }
    let responses = if offsets.is_empty() {
        None
    } else {
        Some(fbb.create_vector(&offsets))
    };
    rpc::TxnResponse::create(
        fbb,
        &rpc::TxnResponseArgs {
            succeeded,
            responses,
        },
    )
}
