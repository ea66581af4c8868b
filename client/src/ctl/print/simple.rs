//! The `simple` format: what shell scripts read.

use std::io::{self, Write};

use super::{alarm_text, lease_hex, member_rows, status_rows, EndpointHealth, EndpointStatus};
use crate::{AlarmResponse, DeleteResponse, KeyValue, MemberListResponse, PutResponse};
use crate::{
    LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseTimeToLiveResponse,
};
use crate::{RangeResponse, ResponseOp, TxnResponse, WatchResponse};

/// A key line and a value line (only the value with `--print-value-only`);
/// raw bytes, or `\x..` escapes with `--hex`.
fn kv(out: &mut dyn Write, hex: bool, value_only: bool, kv: &KeyValue) -> io::Result<()> {
    if !value_only {
        bytes_line(out, hex, &kv.key)?;
    }
    bytes_line(out, hex, &kv.value)
}

fn bytes_line(out: &mut dyn Write, hex: bool, bytes: &[u8]) -> io::Result<()> {
    if hex {
        for b in bytes {
            write!(out, "\\x{b:02x}")?;
        }
    } else {
        out.write_all(bytes)?;
    }
    out.write_all(b"\n")
}

pub fn get(out: &mut dyn Write, hex: bool, value_only: bool, r: &RangeResponse) -> io::Result<()> {
    for pair in &r.kvs {
        kv(out, hex, value_only, pair)?;
    }
    Ok(())
}

pub fn put(out: &mut dyn Write, hex: bool, value_only: bool, r: &PutResponse) -> io::Result<()> {
    writeln!(out, "OK")?;
    if let Some(prev) = &r.prev_kv {
        kv(out, hex, value_only, prev)?;
    }
    Ok(())
}

pub fn del(out: &mut dyn Write, hex: bool, value_only: bool, r: &DeleteResponse) -> io::Result<()> {
    writeln!(out, "{}", r.deleted)?;
    for prev in &r.prev_kvs {
        kv(out, hex, value_only, prev)?;
    }
    Ok(())
}

/// `SUCCESS` or `FAILURE`, then each op's response after an empty line. A
/// nested txn's response is printed the same way, in place.
pub fn txn(out: &mut dyn Write, hex: bool, value_only: bool, r: &TxnResponse) -> io::Result<()> {
    writeln!(out, "{}", if r.succeeded { "SUCCESS" } else { "FAILURE" })?;
    for response in &r.responses {
        writeln!(out)?;
        match response {
            ResponseOp::Range(r) => get(out, hex, value_only, r)?,
            ResponseOp::Put(r) => put(out, hex, value_only, r)?,
            ResponseOp::Delete(r) => del(out, hex, value_only, r)?,
            ResponseOp::Txn(r) => txn(out, hex, value_only, r)?,
        }
    }
    Ok(())
}

pub fn alarm(out: &mut dyn Write, r: &AlarmResponse) -> io::Result<()> {
    for a in &r.alarms {
        writeln!(out, "{}", alarm_text(a))?;
    }
    Ok(())
}

pub fn member_list(out: &mut dyn Write, r: &MemberListResponse) -> io::Result<()> {
    for row in member_rows(r) {
        writeln!(out, "{}", row.join(", "))?;
    }
    Ok(())
}

pub fn endpoint_health(
    out: &mut dyn Write,
    err: &mut dyn Write,
    list: &[EndpointHealth],
) -> io::Result<()> {
    for h in list {
        if h.error.is_empty() {
            writeln!(
                out,
                "{} is healthy: successfully committed proposal: took = {}",
                h.endpoint, h.took
            )?;
        } else {
            writeln!(
                err,
                "{} is unhealthy: failed to commit proposal: {}",
                h.endpoint, h.error
            )?;
        }
    }
    Ok(())
}

pub fn endpoint_status(out: &mut dyn Write, list: &[EndpointStatus]) -> io::Result<()> {
    for row in status_rows(list) {
        writeln!(out, "{}", row.join(", "))?;
    }
    Ok(())
}

pub fn lease_grant(out: &mut dyn Write, r: &LeaseGrantResponse) -> io::Result<()> {
    writeln!(
        out,
        "lease {} granted with TTL({}s)",
        lease_hex(r.id),
        r.ttl
    )
}

pub fn lease_revoke(out: &mut dyn Write, id: i64) -> io::Result<()> {
    writeln!(out, "lease {} revoked", lease_hex(id))
}

pub fn lease_keep_alive(out: &mut dyn Write, r: &LeaseKeepAliveResponse) -> io::Result<()> {
    writeln!(
        out,
        "lease {} keepalived with TTL({})",
        lease_hex(r.id),
        r.ttl
    )
}

pub fn lease_time_to_live(
    out: &mut dyn Write,
    r: &LeaseTimeToLiveResponse,
    with_keys: bool,
) -> io::Result<()> {
    if r.granted_ttl == 0 && r.ttl == -1 {
        return writeln!(out, "lease {} already expired", lease_hex(r.id));
    }
    write!(
        out,
        "lease {} granted with TTL({}s), remaining({}s)",
        lease_hex(r.id),
        r.granted_ttl,
        r.ttl
    )?;
    if with_keys {
        // Go prints a []string as "[a b]".
        out.write_all(b", attached keys([")?;
        for (i, key) in r.keys.iter().enumerate() {
            if i > 0 {
                out.write_all(b" ")?;
            }
            out.write_all(key)?;
        }
        out.write_all(b"])")?;
    }
    writeln!(out)
}

pub fn lease_leases(out: &mut dyn Write, r: &LeaseLeasesResponse) -> io::Result<()> {
    writeln!(out, "found {} leases", r.leases.len())?;
    for id in &r.leases {
        writeln!(out, "{}", lease_hex(*id))?;
    }
    Ok(())
}

/// Per event: the type, the previous pair (with `--prev-kv`), the pair.
pub fn watch(
    out: &mut dyn Write,
    hex: bool,
    value_only: bool,
    r: &WatchResponse,
) -> io::Result<()> {
    for e in &r.events {
        writeln!(out, "{}", e.kind.name())?;
        if let Some(prev) = &e.prev_kv {
            kv(out, hex, value_only, prev)?;
        }
        kv(out, hex, value_only, &e.kv)?;
    }
    Ok(())
}
