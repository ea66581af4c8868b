//! cairn-raft.
