//! cairn-perf: the load generator that compares cairn with etcd.
//!
//! One set of workloads (`put`, `range`, `txn-put`, `txn-mixed`, `stm`,
//! `lease-keepalive`) is written against the [`Target`] trait and driven
//! over many clients sharing a few connections, with etcd's benchmark
//! tool's flags; the watch workloads (`watch`, `watch-latency`,
//! `watch-catchup`) use [`watch::WatchTarget`], and `mvcc put` drives
//! cairn's MVCC index in process ([`mvcc_bench`]). Two targets implement
//! the traits: [`etcd::EtcdConn`] (etcd's v3 gRPC API) and
//! [`cairn::CairnConn`] (cairn's native protocol through `cairn-client`), so
//! both systems see exactly the same request stream. `cairn-perf compare` starts a local etcd and a local
//! cairn and runs the workload against each in turn.
//!
//! A run is a [`Plan`] driven by [`driver::drive`]: a closed loop, or with a
//! rate an open loop whose latencies are measured from each request's
//! scheduled start (correcting coordinated omission). Latencies go into an
//! HDR histogram; the [`Summary`] prints like etcd's benchmark tool's.
//!
//! Any type implementing [`Target`] can be driven, which is how the tests
//! check the harness itself:
//!
//! ```
//! use bytes::Bytes;
//! use cairn_perf::driver::{LoadShape, Plan, Stop, Warmup};
//! use cairn_perf::keys::{value, KeySpace};
//! use cairn_perf::target::{OpError, RangeOptions, RangeResult, Target};
//! use cairn_perf::workload::Workload;
//!
//! #[derive(Clone)]
//! struct Instant;
//!
//! impl Target for Instant {
//!     async fn put(&self, _key: Bytes, _value: Bytes) -> Result<(), OpError> {
//!         Ok(())
//!     }
//!     async fn range(&self, _: Bytes, _: Bytes, _: RangeOptions) -> Result<RangeResult, OpError> {
//!         Ok(RangeResult::default())
//!     }
//!     async fn txn_put(&self, _puts: Vec<(Bytes, Bytes)>) -> Result<(), OpError> {
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let plan = Plan {
//!     workload: Workload::Put,
//!     keys: KeySpace::new(8, 1000, false).unwrap(),
//!     value: value(256).unwrap(),
//!     shape: LoadShape { clients: 4, stop: Stop::Total(100), rate_per_sec: None, warmup: Warmup::None },
//! };
//! let summary = cairn_perf::run::run_on(&[Instant], "instant", &[], &plan, false).await.unwrap();
//! assert_eq!(summary.successes, 100);
//! println!("{}", cairn_perf::text::render(&summary));
//! # });
//! ```

pub mod access;
pub mod cairn;
pub mod check;
pub mod cli;
pub mod compare;
pub mod config;
pub mod cpu;
pub mod driver;
pub mod error;
pub mod etcd;
pub mod html;
pub mod keys;
pub mod leader;
pub mod limits;
pub mod mvcc_bench;
pub mod progress;
pub mod recorder;
pub mod run;
pub mod server;
pub mod server_usage;
pub mod summary;
pub mod target;
pub mod text;
pub mod watch;
pub mod workload;
pub mod workload_args;

pub use driver::Plan;
pub use error::PerfError;
pub use summary::Summary;
pub use target::Target;
