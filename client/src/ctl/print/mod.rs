//! cairnctl's output, byte for byte like etcdctl's in each `--write-out`
//! format: `simple` (what a shell script reads), `json` (etcd's protobuf
//! structs through Go's `encoding/json`: zero fields omitted, bytes in
//! base64), `fields` (`"Key" : value` lines) and `table` (for the
//! cluster-level commands only, as in etcdctl).

mod auth;
mod fields;
mod json;
mod simple;
pub(crate) mod table;

use std::io::Write;

pub use auth::AuthChange;

use crate::ctl::exit::CtlError;
use crate::WatchResponse;
use crate::{AlarmResponse, DeleteResponse, MemberListResponse, PutResponse, RangeResponse};
use crate::{LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse};
use crate::{LeaseRevokeResponse, LeaseTimeToLiveResponse, StatusResponse, TxnResponse};

/// The `--write-out` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Simple,
    Json,
    Fields,
    Table,
    /// Accepted by etcdctl; cairn has no protobuf encoding of its responses.
    Protobuf,
}

impl OutputFormat {
    pub fn parse(name: &str) -> Result<OutputFormat, CtlError> {
        match name {
            "simple" => Ok(OutputFormat::Simple),
            "json" => Ok(OutputFormat::Json),
            "fields" => Ok(OutputFormat::Fields),
            "table" => Ok(OutputFormat::Table),
            "protobuf" => Ok(OutputFormat::Protobuf),
            _ => Err(CtlError::bad_feature("unsupported output format")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            OutputFormat::Simple => "simple",
            OutputFormat::Json => "json",
            OutputFormat::Fields => "fields",
            OutputFormat::Table => "table",
            OutputFormat::Protobuf => "protobuf",
        }
    }
}

/// What a command prints, for checking the format before sending anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Get,
    Put,
    Del,
    Txn,
    Alarm,
    MemberList,
    EndpointHealth,
    EndpointStatus,
    /// Any lease command.
    Lease,
    Watch,
    /// member add, remove, update, promote.
    MemberChange,
    EndpointHashKv,
    MoveLeader,
    /// user, role and auth commands etcdctl prints in every format but table.
    Auth,
    /// `user get`, `user list`, `auth status`: no fields form in etcdctl.
    AuthNoFields,
}

/// One endpoint's health, as `endpoint health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    pub endpoint: String,
    pub health: bool,
    /// How long the health check took, in Go's duration text ("1.2ms").
    pub took: String,
    /// Empty when healthy.
    pub error: String,
}

/// One endpoint's status, as `endpoint status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    pub endpoint: String,
    pub status: StatusResponse,
}

/// One endpoint's KV hash, as `endpoint hashkv` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHashKv {
    pub endpoint: String,
    pub hash: crate::HashKvResponse,
}

/// Which membership change a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Removed,
    Updated,
    Promoted,
}

/// Prints responses in one output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printer {
    pub format: OutputFormat,
    /// `--hex`: keys and values as `\x..` escapes (simple format; member
    /// IDs in hex for json member list).
    pub hex: bool,
    /// `--print-value-only`.
    pub value_only: bool,
}

impl Printer {
    pub fn new(format: OutputFormat, hex: bool) -> Printer {
        Printer {
            format,
            hex,
            value_only: false,
        }
    }

    /// Fails as etcdctl does when this format cannot print `shape`. Called
    /// before a request is sent, so an unprintable write is not applied.
    pub fn require(&self, shape: Shape) -> Result<(), CtlError> {
        let supported = match self.format {
            OutputFormat::Simple | OutputFormat::Json => true,
            // etcdctl's fields printer has no membership changes and no
            // move-leader.
            OutputFormat::Fields => !matches!(
                shape,
                Shape::MemberChange | Shape::MoveLeader | Shape::AuthNoFields
            ),
            OutputFormat::Table => matches!(
                shape,
                Shape::MemberList
                    | Shape::EndpointHealth
                    | Shape::EndpointStatus
                    | Shape::EndpointHashKv
            ),
            OutputFormat::Protobuf => false,
        };
        if supported {
            Ok(())
        } else {
            Err(CtlError::bad_feature(format!(
                "{} not supported as output format",
                self.format.name()
            )))
        }
    }

    pub fn get(&self, out: &mut dyn Write, r: &RangeResponse) -> Result<(), CtlError> {
        self.require(Shape::Get)?;
        match self.format {
            OutputFormat::Json => json::get(out, r)?,
            OutputFormat::Fields => fields::get(out, r)?,
            _ => simple::get(out, self.hex, self.value_only, r)?,
        }
        Ok(())
    }

    pub fn put(&self, out: &mut dyn Write, r: &PutResponse) -> Result<(), CtlError> {
        self.require(Shape::Put)?;
        match self.format {
            OutputFormat::Json => json::put(out, r)?,
            OutputFormat::Fields => fields::put(out, r)?,
            _ => simple::put(out, self.hex, self.value_only, r)?,
        }
        Ok(())
    }

    pub fn del(&self, out: &mut dyn Write, r: &DeleteResponse) -> Result<(), CtlError> {
        self.require(Shape::Del)?;
        match self.format {
            OutputFormat::Json => json::del(out, r)?,
            OutputFormat::Fields => fields::del(out, r)?,
            _ => simple::del(out, self.hex, self.value_only, r)?,
        }
        Ok(())
    }

    pub fn txn(&self, out: &mut dyn Write, r: &TxnResponse) -> Result<(), CtlError> {
        self.require(Shape::Txn)?;
        match self.format {
            OutputFormat::Json => json::txn(out, r)?,
            OutputFormat::Fields => fields::txn(out, r)?,
            _ => simple::txn(out, self.hex, self.value_only, r)?,
        }
        Ok(())
    }

    pub fn alarm(&self, out: &mut dyn Write, r: &AlarmResponse) -> Result<(), CtlError> {
        self.require(Shape::Alarm)?;
        match self.format {
            OutputFormat::Json => json::alarm(out, r)?,
            OutputFormat::Fields => fields::alarm(out, r)?,
            _ => simple::alarm(out, r)?,
        }
        Ok(())
    }

    pub fn member_list(&self, out: &mut dyn Write, r: &MemberListResponse) -> Result<(), CtlError> {
        self.require(Shape::MemberList)?;
        match self.format {
            OutputFormat::Json if self.hex => json::member_list_hex(out, r)?,
            OutputFormat::Json => json::member_list(out, r)?,
            OutputFormat::Fields => fields::member_list(out, r)?,
            OutputFormat::Table => table::member_list(out, r)?,
            _ => simple::member_list(out, r)?,
        }
        Ok(())
    }

    /// Healthy endpoints go to `out`; in the simple format unhealthy ones go
    /// to `err` (etcdctl prints them on stderr).
    pub fn endpoint_health(
        &self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        list: &[EndpointHealth],
    ) -> Result<(), CtlError> {
        self.require(Shape::EndpointHealth)?;
        match self.format {
            OutputFormat::Json => json::endpoint_health(out, list)?,
            OutputFormat::Fields => fields::endpoint_health(out, list)?,
            OutputFormat::Table => table::endpoint_health(out, list)?,
            _ => simple::endpoint_health(out, err, list)?,
        }
        Ok(())
    }

    pub fn endpoint_status(
        &self,
        out: &mut dyn Write,
        list: &[EndpointStatus],
    ) -> Result<(), CtlError> {
        self.require(Shape::EndpointStatus)?;
        match self.format {
            OutputFormat::Json => json::endpoint_status(out, list)?,
            OutputFormat::Fields => fields::endpoint_status(out, list)?,
            OutputFormat::Table => table::endpoint_status(out, list)?,
            _ => simple::endpoint_status(out, list)?,
        }
        Ok(())
    }
}

impl Printer {
    pub fn lease_grant(&self, out: &mut dyn Write, r: &LeaseGrantResponse) -> Result<(), CtlError> {
        self.require(Shape::Lease)?;
        match self.format {
            OutputFormat::Json => json::lease_grant(out, r)?,
            OutputFormat::Fields => fields::lease_grant(out, r)?,
            _ => simple::lease_grant(out, r)?,
        }
        Ok(())
    }

    pub fn lease_revoke(
        &self,
        out: &mut dyn Write,
        id: i64,
        r: &LeaseRevokeResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::Lease)?;
        match self.format {
            OutputFormat::Json => json::lease_revoke(out, r)?,
            OutputFormat::Fields => fields::lease_revoke(out, r)?,
            _ => simple::lease_revoke(out, id)?,
        }
        Ok(())
    }

    pub fn lease_keep_alive(
        &self,
        out: &mut dyn Write,
        r: &LeaseKeepAliveResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::Lease)?;
        match self.format {
            OutputFormat::Json => json::lease_keep_alive(out, r)?,
            OutputFormat::Fields => fields::lease_keep_alive(out, r)?,
            _ => simple::lease_keep_alive(out, r)?,
        }
        Ok(())
    }

    pub fn lease_time_to_live(
        &self,
        out: &mut dyn Write,
        r: &LeaseTimeToLiveResponse,
        with_keys: bool,
    ) -> Result<(), CtlError> {
        self.require(Shape::Lease)?;
        match self.format {
            OutputFormat::Json => json::lease_time_to_live(out, r)?,
            OutputFormat::Fields => fields::lease_time_to_live(out, r)?,
            _ => simple::lease_time_to_live(out, r, with_keys)?,
        }
        Ok(())
    }

    pub fn lease_leases(
        &self,
        out: &mut dyn Write,
        r: &LeaseLeasesResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::Lease)?;
        match self.format {
            OutputFormat::Json => json::lease_leases(out, r)?,
            OutputFormat::Fields => fields::lease_leases(out, r)?,
            _ => simple::lease_leases(out, r)?,
        }
        Ok(())
    }
}

impl Printer {
    pub fn watch(&self, out: &mut dyn Write, r: &WatchResponse) -> Result<(), CtlError> {
        self.require(Shape::Watch)?;
        match self.format {
            OutputFormat::Json => json::watch(out, r)?,
            OutputFormat::Fields => fields::watch(out, r)?,
            _ => simple::watch(out, self.hex, self.value_only, r)?,
        }
        Ok(())
    }
}

impl Printer {
    pub fn member_add(
        &self,
        out: &mut dyn Write,
        r: &crate::MemberAddResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::MemberChange)?;
        match self.format {
            OutputFormat::Json => json::member_add(out, r)?,
            _ => writeln!(
                out,
                "Member {:16x} added to cluster {:16x}",
                r.member.id, r.header.cluster_id
            )?,
        }
        Ok(())
    }

    pub fn member_change(
        &self,
        out: &mut dyn Write,
        change: MemberChange,
        id: u64,
        r: &MemberListResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::MemberChange)?;
        let verb = match change {
            MemberChange::Removed => "removed from",
            MemberChange::Updated => "updated in",
            MemberChange::Promoted => "promoted in",
        };
        match self.format {
            OutputFormat::Json => json::member_change(out, r)?,
            _ => writeln!(
                out,
                "Member {id:16x} {verb} cluster {:16x}",
                r.header.cluster_id
            )?,
        }
        Ok(())
    }

    pub fn endpoint_hashkv(
        &self,
        out: &mut dyn Write,
        list: &[EndpointHashKv],
    ) -> Result<(), CtlError> {
        self.require(Shape::EndpointHashKv)?;
        match self.format {
            OutputFormat::Json => json::endpoint_hashkv(out, list)?,
            OutputFormat::Fields => fields::endpoint_hashkv(out, list)?,
            OutputFormat::Table => table::endpoint_hashkv(out, list)?,
            _ => {
                for h in list {
                    writeln!(out, "{}, {}", h.endpoint, h.hash.hash)?;
                }
            }
        }
        Ok(())
    }

    pub fn move_leader(
        &self,
        out: &mut dyn Write,
        leader: u64,
        target: u64,
        r: &crate::EmptyResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::MoveLeader)?;
        match self.format {
            OutputFormat::Json => json::header_only(out, &r.header)?,
            _ => writeln!(out, "Leadership transferred from {leader:x} to {target:x}")?,
        }
        Ok(())
    }
}

/// A lease ID as etcdctl prints it (Go's `%016x` of an int64).
pub fn lease_hex(id: i64) -> String {
    if id < 0 {
        format!("-{:015x}", id.unsigned_abs())
    } else {
        format!("{id:016x}")
    }
}

/// An alarm in Go protobuf's compact text form, as etcd puts it in status
/// errors and etcdctl prints it: zero fields omitted, each field followed by
/// a space ("memberID:13668033151171901709 alarm:NOSPACE ").
pub fn alarm_text(alarm: &crate::AlarmMember) -> String {
    let mut text = String::new();
    if alarm.member_id != 0 {
        text.push_str(&format!("memberID:{} ", alarm.member_id));
    }
    if alarm.alarm != crate::AlarmType::None {
        text.push_str(&format!("alarm:{} ", alarm.alarm.name()));
    }
    text
}

/// The rows etcdctl's member list prints (simple and table formats).
fn member_rows(r: &MemberListResponse) -> Vec<Vec<String>> {
    r.members
        .iter()
        .map(|m| {
            let status = if m.name.is_empty() {
                "unstarted"
            } else {
                "started"
            };
            vec![
                format!("{:x}", m.id),
                status.to_string(),
                m.name.clone(),
                m.peer_urls.join(","),
                m.client_urls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect()
}

/// The rows etcdctl's endpoint status prints (simple and table formats).
fn status_rows(list: &[EndpointStatus]) -> Vec<Vec<String>> {
    list.iter()
        .map(|s| {
            let st = &s.status;
            vec![
                s.endpoint.clone(),
                format!("{:x}", st.header.member_id),
                st.version.clone(),
                crate::ctl::gofmt::humanize_bytes(u64::try_from(st.db_size).unwrap_or(0)),
                (st.leader == st.header.member_id).to_string(),
                st.is_learner.to_string(),
                st.raft_term.to_string(),
                st.raft_index.to_string(),
                st.raft_applied_index.to_string(),
                st.errors.join(", "),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests;
