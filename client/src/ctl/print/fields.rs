//! The `fields` format: one `"Name" : value` line per field.

use std::io::{self, Write};

use super::{EndpointHealth, EndpointStatus};
use crate::ctl::gofmt::quote;
use crate::WatchResponse;
use crate::{AlarmResponse, DeleteResponse, KeyValue, MemberListResponse, PutResponse};
use crate::{LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse};
use crate::{LeaseTimeToLiveResponse, RangeResponse, ResponseHeader, ResponseOp, TxnResponse};

pub(super) fn header(out: &mut dyn Write, h: &ResponseHeader) -> io::Result<()> {
    writeln!(out, "\"ClusterID\" : {}", h.cluster_id)?;
    writeln!(out, "\"MemberID\" : {}", h.member_id)?;
    writeln!(out, "\"Revision\" : {}", h.revision)?;
    writeln!(out, "\"RaftTerm\" : {}", h.raft_term)
}

fn kv(out: &mut dyn Write, prefix: &str, kv: &KeyValue) -> io::Result<()> {
    writeln!(out, "\"{prefix}Key\" : {}", quote(&kv.key))?;
    writeln!(out, "\"{prefix}CreateRevision\" : {}", kv.create_revision)?;
    writeln!(out, "\"{prefix}ModRevision\" : {}", kv.mod_revision)?;
    writeln!(out, "\"{prefix}Version\" : {}", kv.version)?;
    writeln!(out, "\"{prefix}Value\" : {}", quote(&kv.value))?;
    writeln!(out, "\"{prefix}Lease\" : {}", kv.lease)
}

pub fn get(out: &mut dyn Write, r: &RangeResponse) -> io::Result<()> {
    header(out, &r.header)?;
    for pair in &r.kvs {
        kv(out, "", pair)?;
    }
    writeln!(out, "\"More\" : {}", r.more)?;
    writeln!(out, "\"Count\" : {}", r.count)
}

pub fn put(out: &mut dyn Write, r: &PutResponse) -> io::Result<()> {
    header(out, &r.header)?;
    if let Some(prev) = &r.prev_kv {
        kv(out, "Prev", prev)?;
    }
    Ok(())
}

pub fn del(out: &mut dyn Write, r: &DeleteResponse) -> io::Result<()> {
    header(out, &r.header)?;
    writeln!(out, "\"Deleted\" : {}", r.deleted)?;
    for prev in &r.prev_kvs {
        kv(out, "Prev", prev)?;
    }
    Ok(())
}

pub fn txn(out: &mut dyn Write, r: &TxnResponse) -> io::Result<()> {
    header(out, &r.header)?;
    writeln!(out, "\"Succeeded\" : {}", r.succeeded)?;
    for response in &r.responses {
        match response {
            ResponseOp::Range(r) => get(out, r)?,
            ResponseOp::Put(r) => put(out, r)?,
            ResponseOp::Delete(r) => del(out, r)?,
            ResponseOp::Txn(r) => txn(out, r)?,
        }
    }
    Ok(())
}

pub fn alarm(out: &mut dyn Write, r: &AlarmResponse) -> io::Result<()> {
    header(out, &r.header)?;
    for a in &r.alarms {
        writeln!(out, "\"MemberID\" : {}", a.member_id)?;
        writeln!(out, "\"AlarmType\" : {}", a.alarm.name())?;
        writeln!(out)?;
    }
    Ok(())
}

pub fn member_list(out: &mut dyn Write, r: &MemberListResponse) -> io::Result<()> {
    header(out, &r.header)?;
    for m in &r.members {
        writeln!(out, "\"ID\" : {}", m.id)?;
        writeln!(out, "\"Name\" : {}", quote(m.name.as_bytes()))?;
        for url in &m.peer_urls {
            writeln!(out, "\"PeerURL\" : {}", quote(url.as_bytes()))?;
        }
        for url in &m.client_urls {
            writeln!(out, "\"ClientURL\" : {}", quote(url.as_bytes()))?;
        }
        writeln!(out, "\"IsLearner\" : {}", m.is_learner)?;
        writeln!(out)?;
    }
    Ok(())
}

pub fn endpoint_health(out: &mut dyn Write, list: &[EndpointHealth]) -> io::Result<()> {
    for h in list {
        writeln!(out, "\"Endpoint\" : {}", quote(h.endpoint.as_bytes()))?;
        writeln!(out, "\"Health\" : {}", h.health)?;
        writeln!(out, "\"Took\" : {}", h.took)?;
        writeln!(out, "\"Error\" : {}", h.error)?;
        writeln!(out)?;
    }
    Ok(())
}

pub fn endpoint_status(out: &mut dyn Write, list: &[EndpointStatus]) -> io::Result<()> {
    for s in list {
        let st = &s.status;
        header(out, &st.header)?;
        writeln!(out, "\"Version\" : {}", quote(st.version.as_bytes()))?;
        writeln!(out, "\"DBSize\" : {}", st.db_size)?;
        writeln!(out, "\"Leader\" : {}", st.leader)?;
        writeln!(out, "\"IsLearner\" : {}", st.is_learner)?;
        writeln!(out, "\"RaftIndex\" : {}", st.raft_index)?;
        writeln!(out, "\"RaftTerm\" : {}", st.raft_term)?;
        writeln!(out, "\"RaftAppliedIndex\" : {}", st.raft_applied_index)?;
        // Go prints a []string as "[a b]".
        writeln!(out, "\"Errors\" : [{}]", st.errors.join(" "))?;
        writeln!(out, "\"Endpoint\" : {}", quote(s.endpoint.as_bytes()))?;
        writeln!(out)?;
    }
    Ok(())
}

pub fn lease_grant(out: &mut dyn Write, r: &LeaseGrantResponse) -> io::Result<()> {
    header(out, &r.header)?;
    writeln!(out, "\"ID\" : {}", r.id)?;
    writeln!(out, "\"TTL\" : {}", r.ttl)
}

pub fn lease_revoke(out: &mut dyn Write, r: &LeaseRevokeResponse) -> io::Result<()> {
    header(out, &r.header)
}

pub fn lease_keep_alive(out: &mut dyn Write, r: &LeaseKeepAliveResponse) -> io::Result<()> {
    header(out, &r.header)?;
    writeln!(out, "\"ID\" : {}", r.id)?;
    writeln!(out, "\"TTL\" : {}", r.ttl)
}

pub fn lease_time_to_live(out: &mut dyn Write, r: &LeaseTimeToLiveResponse) -> io::Result<()> {
    header(out, &r.header)?;
    writeln!(out, "\"ID\" : {}", r.id)?;
    writeln!(out, "\"TTL\" : {}", r.ttl)?;
    writeln!(out, "\"GrantedTTL\" : {}", r.granted_ttl)?;
    for key in &r.keys {
        writeln!(out, "\"Key\" : {}", quote(key))?;
    }
    Ok(())
}

pub fn lease_leases(out: &mut dyn Write, r: &LeaseLeasesResponse) -> io::Result<()> {
    header(out, &r.header)?;
    for id in &r.leases {
        writeln!(out, "\"ID\" : {id}")?;
    }
    Ok(())
}

pub fn watch(out: &mut dyn Write, r: &WatchResponse) -> io::Result<()> {
    header(out, &r.header)?;
    for e in &r.events {
        writeln!(out, "\"Type\" : {}", e.kind.name())?;
        if let Some(prev) = &e.prev_kv {
            kv(out, "Prev", prev)?;
        }
        kv(out, "", &e.kv)?;
    }
    Ok(())
}

pub fn endpoint_hashkv(out: &mut dyn Write, list: &[super::EndpointHashKv]) -> io::Result<()> {
    for h in list {
        header(out, &h.hash.header)?;
        writeln!(out, "\"Endpoint\" : {}", quote(h.endpoint.as_bytes()))?;
        writeln!(out, "\"Hash\" : {}", h.hash.hash)?;
        writeln!(out)?;
    }
    Ok(())
}
