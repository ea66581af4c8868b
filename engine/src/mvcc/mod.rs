//! The MVCC index: key → revision history with etcd semantics.
