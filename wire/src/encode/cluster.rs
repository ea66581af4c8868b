//! Cluster membership requests and responses.

use flatbuffers::{ForwardsUOffset, Vector, WIPOffset};

use super::{opt_str, str_vector, Builder, Encoder};
use crate::rpc;
use crate::types::{Header, MemberRef};

fn build_member(fbb: &mut Builder, m: &MemberRef<'_>) -> WIPOffset<rpc::Member<'static>> {
    let name = opt_str(fbb, m.name);
    let peer_urls = str_vector(fbb, m.peer_urls);
    let client_urls = str_vector(fbb, m.client_urls);
    rpc::Member::create(
        fbb,
        &rpc::MemberArgs {
            id: m.id,
            name,
            peer_urls,
            client_urls,
            is_learner: m.is_learner,
        },
    )
}

type MemberVector = WIPOffset<Vector<'static, ForwardsUOffset<rpc::Member<'static>>>>;

fn member_vector(fbb: &mut Builder, members: &[MemberRef<'_>]) -> Option<MemberVector> {
    if members.is_empty() {
        return None;
    }
    let offsets: Vec<_> = members.iter().map(|m| build_member(fbb, m)).collect();
    Some(fbb.create_vector(&offsets))
}

impl Encoder {
    pub fn member_add_request(&mut self, id: u64, peer_urls: &[&str], is_learner: bool) -> &[u8] {
        let fbb = self.begin();
        let peer_urls = str_vector(fbb, peer_urls);
        let body = rpc::MemberAddRequest::create(
            fbb,
            &rpc::MemberAddRequestArgs {
                peer_urls,
                is_learner,
            },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::MemberAddRequest, body)
    }

    pub fn member_remove_request(&mut self, id: u64, member_id: u64) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::MemberRemoveRequest::create(fbb, &rpc::MemberRemoveRequestArgs { id: member_id })
                .as_union_value();
        self.finish_request(id, rpc::RequestBody::MemberRemoveRequest, body)
    }

    pub fn member_update_request(&mut self, id: u64, member_id: u64, peer_urls: &[&str]) -> &[u8] {
        let fbb = self.begin();
        let peer_urls = str_vector(fbb, peer_urls);
        let body = rpc::MemberUpdateRequest::create(
            fbb,
            &rpc::MemberUpdateRequestArgs {
                id: member_id,
                peer_urls,
            },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::MemberUpdateRequest, body)
    }

    pub fn member_list_request(&mut self, id: u64, linearizable: bool) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::MemberListRequest::create(fbb, &rpc::MemberListRequestArgs { linearizable })
                .as_union_value();
        self.finish_request(id, rpc::RequestBody::MemberListRequest, body)
    }

    pub fn member_promote_request(&mut self, id: u64, member_id: u64) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::MemberPromoteRequest::create(
            fbb,
            &rpc::MemberPromoteRequestArgs { id: member_id },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::MemberPromoteRequest, body)
    }

    pub fn member_add_response(
        &mut self,
        id: u64,
        header: &Header,
        added: &MemberRef<'_>,
        members: &[MemberRef<'_>],
    ) -> &[u8] {
        let fbb = self.begin();
        let member = Some(build_member(fbb, added));
        let members = member_vector(fbb, members);
        let body =
            rpc::MemberAddResponse::create(fbb, &rpc::MemberAddResponseArgs { member, members })
                .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::MemberAddResponse, body)
    }

    pub fn member_remove_response(
        &mut self,
        id: u64,
        header: &Header,
        members: &[MemberRef<'_>],
    ) -> &[u8] {
        let fbb = self.begin();
        let members = member_vector(fbb, members);
        let body =
            rpc::MemberRemoveResponse::create(fbb, &rpc::MemberRemoveResponseArgs { members })
                .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::MemberRemoveResponse, body)
    }

    pub fn member_update_response(
        &mut self,
        id: u64,
        header: &Header,
        members: &[MemberRef<'_>],
    ) -> &[u8] {
        let fbb = self.begin();
        let members = member_vector(fbb, members);
        let body =
            rpc::MemberUpdateResponse::create(fbb, &rpc::MemberUpdateResponseArgs { members })
                .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::MemberUpdateResponse, body)
    }

    pub fn member_list_response(
        &mut self,
        id: u64,
        header: &Header,
        members: &[MemberRef<'_>],
    ) -> &[u8] {
        let fbb = self.begin();
        let members = member_vector(fbb, members);
        let body = rpc::MemberListResponse::create(fbb, &rpc::MemberListResponseArgs { members })
            .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::MemberListResponse, body)
    }

    pub fn member_promote_response(
        &mut self,
        id: u64,
        header: &Header,
        members: &[MemberRef<'_>],
    ) -> &[u8] {
        let fbb = self.begin();
        let members = member_vector(fbb, members);
        let body =
            rpc::MemberPromoteResponse::create(fbb, &rpc::MemberPromoteResponseArgs { members })
                .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::MemberPromoteResponse, body)
    }
}
