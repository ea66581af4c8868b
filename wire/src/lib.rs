//! cairn-wire.
