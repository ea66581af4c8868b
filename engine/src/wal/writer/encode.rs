//! Encoding records into a batch buffer.

use zerocopy::IntoBytes;

use super::super::format::{
    record_crc, EntryPrefix, HardStatePayload, RecordHeader, SnapshotPayload, ENTRY_PREFIX_BYTES,
    KIND_ENTRY, KIND_HARD_STATE, KIND_SNAPSHOT, RECORD_HEADER_BYTES,
};
use super::Record;

/// Writes a record (header with CRC, then payload) into `out`, which is
/// exactly as long as the record.
pub(super) fn write_record(seed: u32, kind: u8, payload: &[u8], out: &mut [u8]) {
    let h = RecordHeader {
        crc: 0.into(),
        len: (payload.len() as u32).into(),
        kind,
        reserved: [0; 3],
    };
    out[..RECORD_HEADER_BYTES].copy_from_slice(h.as_bytes());
    out[RECORD_HEADER_BYTES..].copy_from_slice(payload);
    let crc = record_crc(seed, &out[4..RECORD_HEADER_BYTES], payload);
    out[..4].copy_from_slice(&crc.to_le_bytes());
}

/// Encodes `r` into `out` with a zero CRC; the CRC is filled in when the
/// batch is sealed and its segment (hence the CRC seed) is known.
pub(super) fn encode(r: &Record<'_>, out: &mut [u8]) {
    let (kind, body_len) = match r {
        Record::Entry { payload, .. } => (KIND_ENTRY, ENTRY_PREFIX_BYTES + payload.len()),
        Record::HardState(_) => (KIND_HARD_STATE, std::mem::size_of::<HardStatePayload>()),
        Record::Snapshot(_) => (KIND_SNAPSHOT, std::mem::size_of::<SnapshotPayload>()),
    };
    let h = RecordHeader {
        crc: 0.into(),
        len: (body_len as u32).into(),
        kind,
        reserved: [0; 3],
    };
    out[..RECORD_HEADER_BYTES].copy_from_slice(h.as_bytes());
    let body = &mut out[RECORD_HEADER_BYTES..];
    match *r {
        Record::Entry {
            index,
            term,
            kind,
            payload,
        } => {
            let p = EntryPrefix {
                index: index.into(),
                term: term.into(),
                kind,
            };
            body[..ENTRY_PREFIX_BYTES].copy_from_slice(p.as_bytes());
            body[ENTRY_PREFIX_BYTES..].copy_from_slice(payload);
        }
        Record::HardState(hs) => {
            let p = HardStatePayload {
                term: hs.term.into(),
                vote: hs.vote.into(),
                commit: hs.commit.into(),
            };
            body.copy_from_slice(p.as_bytes());
        }
        Record::Snapshot(m) => {
            let p = SnapshotPayload {
                index: m.index.into(),
                term: m.term.into(),
            };
            body.copy_from_slice(p.as_bytes());
        }
    }
}
