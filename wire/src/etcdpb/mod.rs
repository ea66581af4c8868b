//! etcd's v3 gRPC messages (`etcdserverpb`, `mvccpb`, `authpb`, `v3lockpb`,
//! `v3electionpb`, `grpc.health.v1`),
//! declared with prost's derive so that the bytes on the wire match etcd's
//! `rpc.proto`, `kv.proto` and the standard health service: same field
//! numbers, same types, same enum values. Declaring them in Rust keeps
//! `protoc` out of the build; the field numbers are the contract.
//!
//! Enabled by the `etcd-proto` feature: the native flatbuffers users never
//! compile prost. Both the server's gRPC front end and the load generator's
//! etcd target use these declarations.
//!
//! ```
//! use cairn_wire::etcdpb::{PutRequest, RangeRequest};
//! use prost::Message;
//!
//! let put = PutRequest { key: "foo".into(), value: "bar".into(), ..Default::default() };
//! let bytes = put.encode_to_vec();
//! // Field 1 (key), length-delimited, 3 bytes.
//! assert_eq!(&bytes[..2], &[0x0a, 3]);
//! assert_eq!(PutRequest::decode(bytes.as_slice())?, put);
//! assert!(RangeRequest::decode(&b"\xff"[..]).is_err());
//! # Ok::<(), prost::DecodeError>(())
//! ```

mod auth;
mod cluster;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod watch;

pub use auth::*;
pub use cluster::*;
pub use kv::*;
pub use lease::*;
pub use lock::*;
pub use maintenance::*;
pub use watch::*;

/// The full gRPC method paths (`/package.Service/Method`) etcd serves.
pub mod path {
    pub const KV_RANGE: &str = "/etcdserverpb.KV/Range";
    pub const KV_PUT: &str = "/etcdserverpb.KV/Put";
    pub const KV_DELETE_RANGE: &str = "/etcdserverpb.KV/DeleteRange";
    pub const KV_TXN: &str = "/etcdserverpb.KV/Txn";
    pub const KV_COMPACT: &str = "/etcdserverpb.KV/Compact";
    pub const WATCH: &str = "/etcdserverpb.Watch/Watch";
    pub const LEASE_GRANT: &str = "/etcdserverpb.Lease/LeaseGrant";
    pub const LEASE_REVOKE: &str = "/etcdserverpb.Lease/LeaseRevoke";
    pub const LEASE_KEEP_ALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";
    pub const LEASE_TIME_TO_LIVE: &str = "/etcdserverpb.Lease/LeaseTimeToLive";
    pub const LEASE_LEASES: &str = "/etcdserverpb.Lease/LeaseLeases";
    pub const MEMBER_ADD: &str = "/etcdserverpb.Cluster/MemberAdd";
    pub const MEMBER_REMOVE: &str = "/etcdserverpb.Cluster/MemberRemove";
    pub const MEMBER_UPDATE: &str = "/etcdserverpb.Cluster/MemberUpdate";
    pub const MEMBER_LIST: &str = "/etcdserverpb.Cluster/MemberList";
    pub const MEMBER_PROMOTE: &str = "/etcdserverpb.Cluster/MemberPromote";
    pub const ALARM: &str = "/etcdserverpb.Maintenance/Alarm";
    pub const STATUS: &str = "/etcdserverpb.Maintenance/Status";
    pub const DEFRAGMENT: &str = "/etcdserverpb.Maintenance/Defragment";
    pub const HASH: &str = "/etcdserverpb.Maintenance/Hash";
    pub const HASH_KV: &str = "/etcdserverpb.Maintenance/HashKV";
    pub const SNAPSHOT: &str = "/etcdserverpb.Maintenance/Snapshot";
    pub const MOVE_LEADER: &str = "/etcdserverpb.Maintenance/MoveLeader";
    pub const AUTH_ENABLE: &str = "/etcdserverpb.Auth/AuthEnable";
    pub const AUTH_DISABLE: &str = "/etcdserverpb.Auth/AuthDisable";
    pub const AUTH_STATUS: &str = "/etcdserverpb.Auth/AuthStatus";
    pub const AUTHENTICATE: &str = "/etcdserverpb.Auth/Authenticate";
    pub const USER_ADD: &str = "/etcdserverpb.Auth/UserAdd";
    pub const USER_GET: &str = "/etcdserverpb.Auth/UserGet";
    pub const USER_LIST: &str = "/etcdserverpb.Auth/UserList";
    pub const USER_DELETE: &str = "/etcdserverpb.Auth/UserDelete";
    pub const USER_CHANGE_PASSWORD: &str = "/etcdserverpb.Auth/UserChangePassword";
    pub const USER_GRANT_ROLE: &str = "/etcdserverpb.Auth/UserGrantRole";
    pub const USER_REVOKE_ROLE: &str = "/etcdserverpb.Auth/UserRevokeRole";
    pub const ROLE_ADD: &str = "/etcdserverpb.Auth/RoleAdd";
    pub const ROLE_GET: &str = "/etcdserverpb.Auth/RoleGet";
    pub const ROLE_LIST: &str = "/etcdserverpb.Auth/RoleList";
    pub const ROLE_DELETE: &str = "/etcdserverpb.Auth/RoleDelete";
    pub const ROLE_GRANT_PERMISSION: &str = "/etcdserverpb.Auth/RoleGrantPermission";
    pub const ROLE_REVOKE_PERMISSION: &str = "/etcdserverpb.Auth/RoleRevokePermission";
    pub const LOCK: &str = "/v3lockpb.Lock/Lock";
    pub const UNLOCK: &str = "/v3lockpb.Lock/Unlock";
    pub const CAMPAIGN: &str = "/v3electionpb.Election/Campaign";
    pub const PROCLAIM: &str = "/v3electionpb.Election/Proclaim";
    pub const LEADER: &str = "/v3electionpb.Election/Leader";
    pub const OBSERVE: &str = "/v3electionpb.Election/Observe";
    pub const RESIGN: &str = "/v3electionpb.Election/Resign";
    pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
    pub const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, prost::Enumeration)]
#[repr(i32)]
pub enum ServingStatus {
    Unknown = 0,
    Serving = 1,
    NotServing = 2,
    ServiceUnknown = 3,
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub status: i32,
}
