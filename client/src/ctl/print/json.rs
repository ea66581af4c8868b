//! The `json` format: etcd's response structs as Go's `encoding/json` writes
//! them. Field names are the protobuf JSON tags, every zero field is omitted
//! (`omitempty`), 64-bit numbers are plain numbers, bytes are base64.

use std::io::{self, Write};

use base64::Engine as _;

use super::{EndpointHealth, EndpointStatus};
use crate::ctl::gofmt::json_string;
use crate::{AlarmResponse, DeleteResponse, KeyValue, Member, MemberListResponse, PutResponse};
use crate::{EventType, TxnResponse, WatchResponse};
use crate::{LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse};
use crate::{LeaseTimeToLiveResponse, RangeResponse, ResponseHeader, ResponseOp, StatusResponse};

/// A JSON object under construction, fields in insertion order.
#[derive(Default)]
pub(super) struct Object {
    fields: Vec<(String, String)>,
}

impl Object {
    pub(super) fn raw(mut self, name: &str, json: String) -> Self {
        self.fields.push((name.to_string(), json));
        self
    }
    pub(super) fn int(self, name: &str, value: i64) -> Self {
        if value == 0 {
            return self;
        }
        self.raw(name, value.to_string())
    }
    pub(super) fn uint(self, name: &str, value: u64) -> Self {
        if value == 0 {
            return self;
        }
        self.raw(name, value.to_string())
    }
    pub(super) fn flag(self, name: &str, value: bool) -> Self {
        if !value {
            return self;
        }
        self.raw(name, "true".to_string())
    }
    pub(super) fn string(self, name: &str, value: &str) -> Self {
        if value.is_empty() {
            return self;
        }
        self.raw(name, json_string(value.as_bytes()))
    }
    pub(super) fn bytes(self, name: &str, value: &[u8]) -> Self {
        if value.is_empty() {
            return self;
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        self.raw(name, format!("\"{encoded}\""))
    }
    pub(super) fn array(self, name: &str, items: Vec<String>) -> Self {
        if items.is_empty() {
            return self;
        }
        self.raw(name, format!("[{}]", items.join(",")))
    }
    pub(super) fn strings(self, name: &str, items: &[String]) -> Self {
        self.array(
            name,
            items.iter().map(|s| json_string(s.as_bytes())).collect(),
        )
    }
    pub(super) fn finish(self) -> String {
        let body: Vec<String> = self
            .fields
            .into_iter()
            .map(|(name, value)| format!("{}:{value}", json_string(name.as_bytes())))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

pub(super) fn header(h: &ResponseHeader) -> String {
    header_fields(Object::default(), h).finish()
}

/// The header's fields added to `o`: etcd's lease responses embed the
/// header struct, so Go's JSON lifts its fields to the top level.
fn header_fields(o: Object, h: &ResponseHeader) -> Object {
    o.uint("cluster_id", h.cluster_id)
        .uint("member_id", h.member_id)
        .int("revision", h.revision)
        .uint("raft_term", h.raft_term)
}

fn kv(kv: &KeyValue) -> String {
    Object::default()
        .bytes("key", &kv.key)
        .int("create_revision", kv.create_revision)
        .int("mod_revision", kv.mod_revision)
        .int("version", kv.version)
        .bytes("value", &kv.value)
        .int("lease", kv.lease)
        .finish()
}

fn range_json(r: &RangeResponse) -> String {
    Object::default()
        .raw("header", header(&r.header))
        .array("kvs", r.kvs.iter().map(kv).collect())
        .flag("more", r.more)
        .int("count", r.count)
        .finish()
}

fn put_json(r: &PutResponse) -> String {
    let o = Object::default().raw("header", header(&r.header));
    match &r.prev_kv {
        Some(prev) => o.raw("prev_kv", kv(prev)),
        None => o,
    }
    .finish()
}

fn del_json(r: &DeleteResponse) -> String {
    Object::default()
        .raw("header", header(&r.header))
        .int("deleted", r.deleted)
        .array("prev_kvs", r.prev_kvs.iter().map(kv).collect())
        .finish()
}

fn txn_json(r: &TxnResponse) -> String {
    let responses = r
        .responses
        .iter()
        .map(|op| {
            // Go marshals the protobuf oneof as its wrapper struct.
            let (name, body) = match op {
                ResponseOp::Range(r) => ("ResponseRange", range_json(r)),
                ResponseOp::Put(r) => ("ResponsePut", put_json(r)),
                ResponseOp::Delete(r) => ("ResponseDeleteRange", del_json(r)),
                ResponseOp::Txn(r) => ("ResponseTxn", txn_json(r)),
            };
            let inner = Object::default().raw(name, body).finish();
            Object::default().raw("Response", inner).finish()
        })
        .collect();
    Object::default()
        .raw("header", header(&r.header))
        .flag("succeeded", r.succeeded)
        .array("responses", responses)
        .finish()
}

pub(super) fn line(out: &mut dyn Write, json: String) -> io::Result<()> {
    out.write_all(json.as_bytes())?;
    out.write_all(b"\n")
}

pub fn get(out: &mut dyn Write, r: &RangeResponse) -> io::Result<()> {
    line(out, range_json(r))
}

pub fn put(out: &mut dyn Write, r: &PutResponse) -> io::Result<()> {
    line(out, put_json(r))
}

pub fn del(out: &mut dyn Write, r: &DeleteResponse) -> io::Result<()> {
    line(out, del_json(r))
}

pub fn txn(out: &mut dyn Write, r: &TxnResponse) -> io::Result<()> {
    line(out, txn_json(r))
}

pub fn alarm(out: &mut dyn Write, r: &AlarmResponse) -> io::Result<()> {
    let alarms = r
        .alarms
        .iter()
        .map(|a| {
            Object::default()
                .uint("memberID", a.member_id)
                .int("alarm", i64::from(a.alarm.number()))
                .finish()
        })
        .collect();
    let json = Object::default()
        .raw("header", header(&r.header))
        .array("alarms", alarms)
        .finish();
    line(out, json)
}

fn member(m: &Member) -> String {
    Object::default()
        .uint("ID", m.id)
        .string("name", &m.name)
        .strings("peerURLs", &m.peer_urls)
        .strings("clientURLs", &m.client_urls)
        .flag("isLearner", m.is_learner)
        .finish()
}

pub fn member_list(out: &mut dyn Write, r: &MemberListResponse) -> io::Result<()> {
    let json = Object::default()
        .raw("header", header(&r.header))
        .array("members", r.members.iter().map(member).collect())
        .finish();
    line(out, json)
}

/// etcdctl's hand-written JSON for `member list --hex -w json`: IDs as hex
/// strings, the revision left out, and its "clientURLS" spelling.
pub fn member_list_hex(out: &mut dyn Write, r: &MemberListResponse) -> io::Result<()> {
    let h = &r.header;
    let mut json = format!(
        "{{\"header\":{{\"cluster_id\":\"{:x}\",\"member_id\":\"{:x}\",\"raft_term\":{}}}",
        h.cluster_id, h.member_id, h.raft_term
    );
    let members: Vec<String> = r
        .members
        .iter()
        .map(|m| {
            let urls = |list: &[String]| {
                let items: Vec<String> = list.iter().map(|u| json_string(u.as_bytes())).collect();
                // Go marshals a nil slice as null.
                if items.is_empty() {
                    "null".to_string()
                } else {
                    format!("[{}]", items.join(","))
                }
            };
            format!(
                "{{\"ID\":\"{:x}\",\"name\":\"{}\",\"peerURLs\":{},\"clientURLS\":{}}}",
                m.id,
                m.name,
                urls(&m.peer_urls),
                urls(&m.client_urls)
            )
        })
        .collect();
    if !members.is_empty() {
        json.push_str(&format!(",\"members\":[{}]", members.join(",")));
    }
    json.push('}');
    line(out, json)
}

pub fn endpoint_health(out: &mut dyn Write, list: &[EndpointHealth]) -> io::Result<()> {
    let items: Vec<String> = list
        .iter()
        .map(|h| {
            Object::default()
                .raw("endpoint", json_string(h.endpoint.as_bytes()))
                .raw("health", h.health.to_string())
                .raw("took", json_string(h.took.as_bytes()))
                .string("error", &h.error)
                .finish()
        })
        .collect();
    line(out, format!("[{}]", items.join(",")))
}

fn status(st: &StatusResponse) -> String {
    Object::default()
        .raw("header", header(&st.header))
        .string("version", &st.version)
        .int("dbSize", st.db_size)
        .uint("leader", st.leader)
        .uint("raftIndex", st.raft_index)
        .uint("raftTerm", st.raft_term)
        .uint("raftAppliedIndex", st.raft_applied_index)
        .strings("errors", &st.errors)
        .int("dbSizeInUse", st.db_size_in_use)
        .flag("isLearner", st.is_learner)
        .finish()
}

pub fn endpoint_status(out: &mut dyn Write, list: &[EndpointStatus]) -> io::Result<()> {
    let items: Vec<String> = list
        .iter()
        .map(|s| {
            Object::default()
                .raw("Endpoint", json_string(s.endpoint.as_bytes()))
                .raw("Status", status(&s.status))
                .finish()
        })
        .collect();
    line(out, format!("[{}]", items.join(",")))
}

pub fn lease_grant(out: &mut dyn Write, r: &LeaseGrantResponse) -> io::Result<()> {
    let json = header_fields(Object::default(), &r.header)
        .raw("ID", r.id.to_string())
        .raw("TTL", r.ttl.to_string())
        .raw("Error", json_string(r.error.as_bytes()))
        .finish();
    line(out, json)
}

pub fn lease_revoke(out: &mut dyn Write, r: &LeaseRevokeResponse) -> io::Result<()> {
    line(
        out,
        Object::default().raw("header", header(&r.header)).finish(),
    )
}

pub fn lease_keep_alive(out: &mut dyn Write, r: &LeaseKeepAliveResponse) -> io::Result<()> {
    let json = header_fields(Object::default(), &r.header)
        .raw("ID", r.id.to_string())
        .raw("TTL", r.ttl.to_string())
        .finish();
    line(out, json)
}

pub fn lease_time_to_live(out: &mut dyn Write, r: &LeaseTimeToLiveResponse) -> io::Result<()> {
    // No omitempty here: a lease without keys has "keys":null.
    let keys = if r.keys.is_empty() {
        "null".to_string()
    } else {
        let items: Vec<String> = r
            .keys
            .iter()
            .map(|k| {
                format!(
                    "\"{}\"",
                    base64::engine::general_purpose::STANDARD.encode(k)
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    };
    let json = header_fields(Object::default(), &r.header)
        .raw("id", r.id.to_string())
        .raw("ttl", r.ttl.to_string())
        .raw("granted-ttl", r.granted_ttl.to_string())
        .raw("keys", keys)
        .finish();
    line(out, json)
}

pub fn lease_leases(out: &mut dyn Write, r: &LeaseLeasesResponse) -> io::Result<()> {
    let items: Vec<String> = r
        .leases
        .iter()
        .map(|id| format!("{{\"id\":{id}}}"))
        .collect();
    let json = header_fields(Object::default(), &r.header)
        .raw("leases", format!("[{}]", items.join(",")))
        .finish();
    line(out, json)
}

/// etcdctl prints clientv3's WatchResponse struct: Go field names, no
/// omitempty at the top level, "Events":null when there are none.
pub fn watch(out: &mut dyn Write, r: &WatchResponse) -> io::Result<()> {
    let events = if r.events.is_empty() {
        "null".to_string()
    } else {
        let items: Vec<String> = r
            .events
            .iter()
            .map(|e| {
                let o = Object::default()
                    .int("type", if e.kind == EventType::Delete { 1 } else { 0 })
                    .raw("kv", kv(&e.kv));
                match &e.prev_kv {
                    Some(prev) => o.raw("prev_kv", kv(prev)),
                    None => o,
                }
                .finish()
            })
            .collect();
        format!("[{}]", items.join(","))
    };
    let json = Object::default()
        .raw("Header", header(&r.header))
        .raw("Events", events)
        .raw("CompactRevision", r.compact_revision.to_string())
        .raw("Canceled", r.canceled.to_string())
        .raw("Created", r.created.to_string())
        .finish();
    line(out, json)
}

pub fn member_add(out: &mut dyn Write, r: &crate::MemberAddResponse) -> io::Result<()> {
    let json = Object::default()
        .raw("header", header(&r.header))
        .raw("member", member(&r.member))
        .array("members", r.members.iter().map(member).collect())
        .finish();
    line(out, json)
}

pub fn member_change(out: &mut dyn Write, r: &MemberListResponse) -> io::Result<()> {
    member_list(out, r)
}

pub fn header_only(out: &mut dyn Write, h: &ResponseHeader) -> io::Result<()> {
    line(out, Object::default().raw("header", header(h)).finish())
}

pub fn endpoint_hashkv(out: &mut dyn Write, list: &[super::EndpointHashKv]) -> io::Result<()> {
    let items: Vec<String> = list
        .iter()
        .map(|h| {
            let hash = Object::default()
                .raw("header", header(&h.hash.header))
                .uint("hash", u64::from(h.hash.hash))
                .int("compact_revision", h.hash.compact_revision)
                .int("hash_revision", h.hash.hash_revision)
                .finish();
            Object::default()
                .raw("Endpoint", json_string(h.endpoint.as_bytes()))
                .raw("HashKV", hash)
                .finish()
        })
        .collect();
    line(out, format!("[{}]", items.join(",")))
}
