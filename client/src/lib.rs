//! cairn-client.
