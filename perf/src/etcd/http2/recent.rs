//! Header blocks the server sent lately, with the fields they decoded to.
//!
//! A gRPC server answers every call with the same few header blocks
//! (`:status 200` and the content type; `grpc-status 0`), byte for byte
//! once its encoder's dynamic table holds what it indexes. A block that
//! neither inserts into the dynamic table nor resizes it decodes to the
//! same fields for as long as the table stays as it is, and decoding it
//! again would leave the table as it is; so a block seen before is not
//! decoded again while no block in between changed the table.
//!
//! ```text
//!   1 | index (7+)                        indexed field: table unchanged
//!   0 1 | name index (6+) | ...           literal, indexed: inserts
//!   0 0 1 | max size (5+)                 size update: resizes
//!   0 0 0 x | name index (4+) | [name] | value
//!                                         literal, not indexed: unchanged
//! ```

use crate::etcd::grpc::Fields;
use crate::limits::{HTTP2_RECENT_BLOCKS_MAX, HTTP2_RECENT_BLOCK_BYTES_MAX};

#[derive(Default)]
pub(super) struct RecentBlocks {
    /// Oldest first.
    blocks: Vec<(Vec<u8>, Fields)>,
}

impl RecentBlocks {
    /// The fields of `block`, if it was seen since the table last changed.
    pub(super) fn get(&self, block: &[u8]) -> Option<&Fields> {
        self.blocks
            .iter()
            .find(|(seen, _)| seen.as_slice() == block)
            .map(|(_, fields)| fields)
    }

    /// `block` was just decoded, to `fields` when it was used: it is
    /// remembered if it left the table as it was; if it changed the table,
    /// every block remembered before may now mean something else.
    pub(super) fn decoded(&mut self, block: &[u8], fields: Option<&Fields>) {
        if changes_table(block) {
            self.blocks.clear();
            return;
        }
        let Some(fields) = fields else {
            return;
        };
        if block.len() > HTTP2_RECENT_BLOCK_BYTES_MAX {
            return;
        }
        if self.blocks.len() == HTTP2_RECENT_BLOCKS_MAX {
            self.blocks.remove(0);
        }
        self.blocks.push((block.to_vec(), fields.clone()));
    }
}

/// Whether decoding `block` changes the dynamic table: it holds a literal
/// with incremental indexing or a table size update. A block this cannot
/// read counts as changing it.
fn changes_table(block: &[u8]) -> bool {
    let mut pos = 0;
    while let Some(&first) = block.get(pos) {
        let skipped = if first & 0x80 != 0 {
            skip_int(block, &mut pos, 7).map(drop)
        } else if first & 0x60 != 0 {
            return true;
        } else {
            match skip_int(block, &mut pos, 4) {
                Some(0) => skip_string(block, &mut pos).and_then(|()| skip_string(block, &mut pos)),
                Some(_) => skip_string(block, &mut pos),
                None => None,
            }
        };
        if skipped.is_none() {
            return true;
        }
    }
    false
}

/// Moves past an integer with a `prefix_bits`-bit prefix (RFC 7541 §5.1)
/// and returns it; `None` if it is cut short or longer than a decoder
/// accepts.
fn skip_int(block: &[u8], pos: &mut usize, prefix_bits: u32) -> Option<usize> {
    /// Continuation bytes a decoder accepts: 35 bits.
    const CONTINUATION_BYTES_MAX: usize = 5;
    let mask = (1u8 << prefix_bits) - 1;
    let first = *block.get(*pos)?;
    *pos += 1;
    let mut value = usize::from(first & mask);
    if value < usize::from(mask) {
        return Some(value);
    }
    for shift in (0..CONTINUATION_BYTES_MAX).map(|i| i * 7) {
        let byte = *block.get(*pos)?;
        *pos += 1;
        value = value.checked_add(usize::from(byte & 0x7f).checked_shl(shift as u32)?)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Moves past a string literal (RFC 7541 §5.2).
fn skip_string(block: &[u8], pos: &mut usize) -> Option<()> {
    let len = skip_int(block, pos, 7)?;
    *pos = pos.checked_add(len).filter(|&end| end <= block.len())?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_wire::hpack;

    fn fields(status: &[u8]) -> Fields {
        let mut fields = Fields::default();
        fields.record(b":status", status);
        fields
    }

    #[test]
    fn blocks_that_leave_the_table_alone_are_told_apart_from_those_that_change_it() {
        let mut plain = Vec::new();
        hpack::encode_status(200, &mut plain);
        hpack::encode_field(b"content-type", b"application/grpc", &mut plain);
        hpack::encode_field(b"grpc-status", b"0", &mut plain);
        // A never-indexed literal with a long (Huffman bit set) value.
        plain.extend_from_slice(&[0x10, 1, b'x', 0x80 | 0x7f, 1]);
        plain.extend_from_slice(&[b'y'; 128]);
        assert!(!changes_table(&plain));
        let mut resized = Vec::new();
        hpack::encode_table_size_zero(&mut resized);
        resized.extend_from_slice(&plain);
        assert!(changes_table(&resized));
        // `content-type: application/grpc`, inserted (static name 31).
        let mut inserting = vec![0x40 | 31];
        inserting.push(16);
        inserting.extend_from_slice(b"application/grpc");
        assert!(changes_table(&inserting));
        assert!(changes_table(&plain[..plain.len() - 1]), "cut short");
    }

    #[test]
    fn a_block_is_remembered_until_another_changes_the_table() {
        let mut recent = RecentBlocks::default();
        let a = [0x88];
        let b = [0x89];
        recent.decoded(&a, Some(&fields(b"200")));
        recent.decoded(&b, Some(&fields(b"204")));
        assert_eq!(
            recent.get(&a).map(|f| format!("{f:?}")),
            Some(format!("{:?}", fields(b"200")))
        );
        assert!(recent.get(&b).is_some());
        assert!(recent.get(&[0x8a]).is_none());
        // A dynamic table entry inserted: what index 62 meant may change.
        recent.decoded(&[0x40 | 31, 1, b'x'], Some(&fields(b"200")));
        assert!(recent.get(&a).is_none() && recent.get(&b).is_none());
        // A block not used (too large) still counts for the table.
        recent.decoded(&a, Some(&fields(b"200")));
        recent.decoded(&[0x3f, 0xe1, 0x1f], None);
        assert!(recent.get(&a).is_none());
    }

    #[test]
    fn only_a_few_short_blocks_are_kept() {
        let mut recent = RecentBlocks::default();
        for i in 0..=HTTP2_RECENT_BLOCKS_MAX as u8 {
            recent.decoded(&[0x80 | (i + 1)], Some(&Fields::default()));
        }
        assert!(recent.get(&[0x81]).is_none(), "the oldest went");
        assert!(recent.get(&[0x82]).is_some());
        let mut long = vec![0x00, 1, b'n', 0x7f];
        let value_len = HTTP2_RECENT_BLOCK_BYTES_MAX;
        long.push((value_len - 127) as u8 | 0x80);
        long.push(((value_len - 127) >> 7) as u8);
        long.extend(std::iter::repeat_n(b'v', value_len));
        assert!(!changes_table(&long));
        recent.decoded(&long, Some(&Fields::default()));
        assert!(recent.get(&long).is_none());
    }
}
