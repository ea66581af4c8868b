//! Every limit of the engine, with the reason for its value.
//!
//! Limits are grouped by the module that enforces them. Related limits are
//! tied together with compile-time assertions so that changing one cannot
//! silently break another.

// ---- io ----

// ---- wal ----

// ---- snap ----

// ---- mvcc ----
