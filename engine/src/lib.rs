//! cairn's server: storage engine (WAL, MVCC index, snapshots) and, on top of
//! it, the thread-per-core server behind the `cairn` binary.

pub mod config;
pub mod failpoint;
pub mod io;
pub mod lease;
pub mod limits;
pub mod mvcc;
pub mod server;
pub mod snap;
pub mod stats;
pub mod steptrace;
pub mod wal;
pub mod watch;
