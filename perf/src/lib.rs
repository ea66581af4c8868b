//! cairn-perf.
