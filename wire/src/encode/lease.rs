//! Lease requests and responses.

use super::{opt_bytes, opt_str, Encoder};
use crate::rpc;
use crate::types::Header;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseTimeToLiveResult<'a> {
    pub id: i64,
    /// Remaining seconds; -1 if expired.
    pub ttl: i64,
    pub granted_ttl: i64,
    pub keys: &'a [&'a [u8]],
}

impl Encoder {
    /// `lease_id` 0 lets the server pick.
    pub fn lease_grant_request(&mut self, id: u64, ttl: i64, lease_id: i64) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::LeaseGrantRequest::create(fbb, &rpc::LeaseGrantRequestArgs { ttl, id: lease_id })
                .as_union_value();
        self.finish_request(id, rpc::RequestBody::LeaseGrantRequest, body)
    }

    pub fn lease_revoke_request(&mut self, id: u64, lease_id: i64) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::LeaseRevokeRequest::create(fbb, &rpc::LeaseRevokeRequestArgs { id: lease_id })
                .as_union_value();
        self.finish_request(id, rpc::RequestBody::LeaseRevokeRequest, body)
    }

    pub fn lease_keep_alive_request(&mut self, id: u64, lease_id: i64) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::LeaseKeepAliveRequest::create(
            fbb,
            &rpc::LeaseKeepAliveRequestArgs { id: lease_id },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::LeaseKeepAliveRequest, body)
    }

    pub fn lease_time_to_live_request(&mut self, id: u64, lease_id: i64, keys: bool) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::LeaseTimeToLiveRequest::create(
            fbb,
            &rpc::LeaseTimeToLiveRequestArgs { id: lease_id, keys },
        )
        .as_union_value();
        self.finish_request(id, rpc::RequestBody::LeaseTimeToLiveRequest, body)
    }

    pub fn lease_leases_request(&mut self, id: u64) -> &[u8] {
        let fbb = self.begin();
        let body =
            rpc::LeaseLeasesRequest::create(fbb, &rpc::LeaseLeasesRequestArgs {}).as_union_value();
        self.finish_request(id, rpc::RequestBody::LeaseLeasesRequest, body)
    }

    /// `error` is etcd's per-grant error text, empty on success.
    pub fn lease_grant_response(
        &mut self,
        id: u64,
        header: &Header,
        lease_id: i64,
        ttl: i64,
        error: &str,
    ) -> &[u8] {
        let fbb = self.begin();
        let error = opt_str(fbb, error);
        let body = rpc::LeaseGrantResponse::create(
            fbb,
            &rpc::LeaseGrantResponseArgs {
                id: lease_id,
                ttl,
                error,
            },
        )
        .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::LeaseGrantResponse, body)
    }

    pub fn lease_revoke_response(&mut self, id: u64, header: &Header) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::LeaseRevokeResponse::create(fbb, &rpc::LeaseRevokeResponseArgs {})
            .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::LeaseRevokeResponse, body)
    }

    /// `ttl` 0 tells the client the lease no longer exists.
    pub fn lease_keep_alive_response(
        &mut self,
        id: u64,
        header: &Header,
        lease_id: i64,
        ttl: i64,
    ) -> &[u8] {
        let fbb = self.begin();
        let body = rpc::LeaseKeepAliveResponse::create(
            fbb,
            &rpc::LeaseKeepAliveResponseArgs { id: lease_id, ttl },
        )
        .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::LeaseKeepAliveResponse, body)
    }

    pub fn lease_time_to_live_response(
        &mut self,
        id: u64,
        header: &Header,
        r: &LeaseTimeToLiveResult<'_>,
    ) -> &[u8] {
        let fbb = self.begin();
        let keys = if r.keys.is_empty() {
            None
        } else {
            let offsets: Vec<_> = r
                .keys
                .iter()
                .map(|k| {
                    let key = opt_bytes(fbb, k);
                    rpc::LeaseKey::create(fbb, &rpc::LeaseKeyArgs { key })
                })
                .collect();
            Some(fbb.create_vector(&offsets))
        };
        let body = rpc::LeaseTimeToLiveResponse::create(
            fbb,
            &rpc::LeaseTimeToLiveResponseArgs {
                id: r.id,
                ttl: r.ttl,
                granted_ttl: r.granted_ttl,
                keys,
            },
        )
        .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::LeaseTimeToLiveResponse, body)
    }

    pub fn lease_leases_response(&mut self, id: u64, header: &Header, leases: &[i64]) -> &[u8] {
        let fbb = self.begin();
        let leases = if leases.is_empty() {
            None
        } else {
            Some(fbb.create_vector(leases))
        };
        let body = rpc::LeaseLeasesResponse::create(fbb, &rpc::LeaseLeasesResponseArgs { leases })
            .as_union_value();
        self.finish_response(id, header, rpc::ResponseBody::LeaseLeasesResponse, body)
    }
}
