//! Maintenance requests and responses: Status, Alarm, HashKV, Snapshot,
//! MoveLeader, Defragment.

use super::{opt_bytes, opt_str, str_vector, Encoder};
use crate::rpc;
use crate::types::Header;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusResult<'a> {
    pub version: &'a str,
    pub db_size: i64,
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    pub errors: &'a [&'a str],
    pub db_size_in_use: i64,
    pub is_learner: bool,
}

impl Encoder {
    pub fn status_request(&mut self, id: u64) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::StatusRequest::create(fbb, &rpc::StatusRequestArgs {}).as_union_value();
        self.finish_request(id, rpc::RequestBody::StatusRequest, body)
    }

    /// `member_id` 0 means every member; `alarm` None with action Get lists all.
    pub fn alarm_request(
        &mut self,
        id: u64,
        action: rpc::AlarmAction,
        member_id: u64,
        alarm: rpc::AlarmType,
    ) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::AlarmRequest::create(
            fbb,
            &rpc::AlarmRequestArgs {
                action,
                member_id,
                alarm,
            },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::AlarmRequest, body)
    }

    pub fn hash_kv_request(&mut self, id: u64, revision: i64) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::HashKVRequest::create(fbb, &rpc::HashKVRequestArgs { revision }).as_union_value();
        self.finish_request(id, rpc::RequestBody::HashKVRequest, body)
    }

    pub fn snapshot_request(&mut self, id: u64) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::SnapshotRequest::create(fbb, &rpc::SnapshotRequestArgs {}).as_union_value();
        self.finish_request(id, rpc::RequestBody::SnapshotRequest, body)
    }

    pub fn move_leader_request(&mut self, id: u64, target_id: u64) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::MoveLeaderRequest::create(fbb, &rpc::MoveLeaderRequestArgs { target_id })
            .as_union_value();
        self.finish_request(id, rpc::RequestBody::MoveLeaderRequest, body)
    }

    pub fn defragment_request(&mut self, id: u64) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::DefragmentRequest::create(fbb, &rpc::DefragmentRequestArgs {}).as_union_value();
        self.finish_request(id, rpc::RequestBody::DefragmentRequest, body)
    }

    pub fn status_response(&mut self, id: u64, header: &Header, r: &StatusResult<'_>) -> &[u8] {
        let fbb = self.begin();
        let version = opt_str(fbb, r.version);
        let errors = str_vector(fbb, r.errors);
        let body = rpc::StatusResponse::create(
            fbb,
            &rpc::StatusResponseArgs {
                version,
                db_size: r.db_size,
                leader: r.leader,
                raft_index: r.raft_index,
                raft_term: r.raft_term,
                raft_applied_index: r.raft_applied_index,
                errors,
                db_size_in_use: r.db_size_in_use,
                is_learner: r.is_learner,
            },
        )
        .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::StatusResponse, body)
    }

    /// The alarms raised, as (member id, alarm) pairs.
    pub fn alarm_response(
        &mut self,
        id: u64,
        header: &Header,
        alarms: &[(u64, rpc::AlarmType)],
    ) -> &[u8] {
        let fbb = self.begin();
        let alarms = if alarms.is_empty() {
            None
        } else {
            let offsets: Vec<_> = alarms
                .iter()
                .map(|&(member_id, alarm)| {
                    rpc::AlarmMember::create(fbb, &rpc::AlarmMemberArgs { member_id, alarm })
                })
                .collect();
            Some(fbb.create_vector(&offsets))
        };
        let body =
            rpc::AlarmResponse::create(fbb, &rpc::AlarmResponseArgs { alarms }).as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::AlarmResponse, body)
    }

    pub fn hash_kv_response(
        &mut self,
        id: u64,
        header: &Header,
        hash: u32,
        compact_revision: i64,
        hash_revision: i64,
    ) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::HashKVResponse::create(
            fbb,
            &rpc::HashKVResponseArgs {
                hash,
                compact_revision,
                hash_revision,
            },
        )
        .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::HashKVResponse, body)
    }

    /// One chunk of a snapshot stream (all chunks carry the snapshot
    /// request's id); the last has `remaining_bytes` 0.
    pub fn snapshot_response(
        &mut self,
        id: u64,
        header: &Header,
        remaining_bytes: u64,
        blob: &[u8],
        version: &str,
    ) -> &[u8] {
        let fbb = self.begin();
        let blob = opt_bytes(fbb, blob);
        let version = opt_str(fbb, version);
        let body = rpc::SnapshotResponse::create(
            fbb,
            &rpc::SnapshotResponseArgs {
                remaining_bytes,
                blob,
                version,
            },
        )
        .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::SnapshotResponse, body)
    }

    pub fn move_leader_response(&mut self, id: u64, header: &Header) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::MoveLeaderResponse::create(fbb, &rpc::MoveLeaderResponseArgs {}).as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::MoveLeaderResponse, body)
    }

    pub fn defragment_response(&mut self, id: u64, header: &Header) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::DefragmentResponse::create(fbb, &rpc::DefragmentResponseArgs {}).as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::DefragmentResponse, body)
    }
}
