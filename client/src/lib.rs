//! cairn-client: an async (tokio) client for cairn, and the `cairnctl` tool.
//!
//! The API mirrors etcd's `clientv3`: [`Client::put`], [`Client::get`],
//! [`Client::delete`], [`Client::txn`], [`Client::compact`], leases
//! ([`Client::lease_grant`] and friends), watches ([`Client::watch`] returns
//! a [`Watcher`]), maintenance ([`Client::status`], alarms) and
//! [`Client::member_list`], and users, roles and authentication
//! ([`Client::connect_with_auth`], [`Client::user_add`] and friends, see
//! the `auth` calls on [`Client`]). Options are
//! builders; responses are plain owned structs ([`RangeResponse`],
//! [`KeyValue`], ...); failures are one enum, [`Error`], whose text is what
//! etcd's tools print.
//!
//! One [`Client`] holds one connection at a time to one of its endpoints.
//! Every call is a request on that connection; many calls may be in flight
//! at once (the client is `Clone` and cheap to share between tasks), and
//! the server may answer them in any order. When the connection breaks, the
//! requests in flight fail with a retriable error
//! ([`Error::ConnectionLost`]) — except reads, which are resent once — and
//! the next call connects to the next reachable endpoint.
//!
//! ```no_run
//! use cairn_client::{Client, ConnectOptions, GetOptions, PutOptions};
//!
//! # async fn example() -> Result<(), cairn_client::Error> {
//! let client = Client::connect(["127.0.0.1:2379"], ConnectOptions::default()).await?;
//! client.put("greeting", "hello", PutOptions::new()).await?;
//! let got = client.get("greeting", GetOptions::new()).await?;
//! assert_eq!(got.kvs[0].value, b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! Transactions compose compares and operations, including nested txns:
//!
//! ```no_run
//! use cairn_client::{Client, Compare, CompareResult, Op, PutOptions, Txn};
//!
//! # async fn example(client: Client) -> Result<(), cairn_client::Error> {
//! // Create "lock" only if it does not exist yet.
//! let txn = Txn::new()
//!     .when([Compare::create_revision("lock", CompareResult::Equal, 0)])
//!     .and_then([Op::put("lock", "me", PutOptions::new())]);
//! let response = client.txn(txn).await?;
//! println!("acquired: {}", response.succeeded);
//! # Ok(())
//! # }
//! ```

pub mod concurrency;
pub mod limits;

mod auth;
mod auth_codec;
mod client;
mod codec;
mod conn;
mod endpoint;
mod error;
mod lease;
mod options;
mod tls;
mod txn;
mod types;
mod watch;

#[cfg(feature = "cli")]
pub mod ctl;

pub use auth::{
    AuthResponse, AuthStatusResponse, AuthenticateResponse, Credentials, Permission,
    PermissionType, RoleGetResponse, RoleListResponse, UserGetResponse, UserListResponse,
};
pub use client::{Client, ConnectOptions, Keepalive};
pub use endpoint::Endpoint;
pub use error::{Code, Error, Result};
pub use lease::{LeaseKeeper, LeaseState};
pub use options::{
    prefix_range_end, DeleteOptions, GetOptions, KeyRange, PutOptions, SortOrder, SortTarget,
    WatchOptions,
};
pub use tls::TlsOptions;
pub use txn::{Compare, CompareResult, CompareTarget, Op, Txn};
pub use types::*;
pub use watch::Watcher;
