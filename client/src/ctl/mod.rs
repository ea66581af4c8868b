//! cairnctl: etcdctl's commands, flags and output, for cairn.
//!
//! The binary is a thin wrapper over [`main_with`]; everything
//! that decides what cairnctl prints lives here, so it is tested without a
//! process.

pub mod args;
mod auth;
pub mod auth_args;
mod cluster;
pub mod exit;
pub mod gofmt;
pub mod kv_args;
mod lease;
pub mod print;
mod recipes;
pub mod run;
mod snapshot;
pub mod txn_parse;
mod watch;

pub use run::{main_with, run, Io};
