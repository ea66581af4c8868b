//! HPACK header compression (RFC 7541) for HTTP/2: the gRPC server's and
//! the load generator's.
//!
//! [`Decoder`] implements the whole of RFC 7541: both tables, every field
//! representation, Huffman-coded strings and dynamic table size updates.
//!
//! The encoder side is three functions and no state. The server sets its
//! dynamic table to size zero once ([`encode_table_size_zero`]) and then
//! writes every field as a literal without indexing, naming it by its static
//! table index where it has one and writing strings raw. Responses are a few
//! short fields, so what a dynamic table would save is not worth keeping
//! per-connection state in step with the client.
//!
//! ```text
//!   indexed field            1 | index (7+)
//!   literal, indexed         0 1 | name index (6+) | [name] | value
//!   table size update        0 0 1 | max size (5+)
//!   literal, not indexed     0 0 0 0 | name index (4+) | [name] | value
//!   literal, never indexed   0 0 0 1 | name index (4+) | [name] | value
//!   string                   H | length (7+) | bytes (Huffman-coded if H)
//! ```
//!
//! `(N+)` is an integer with an N-bit prefix (RFC 7541 §5.1); a name index of
//! zero means a literal name string follows.

use std::collections::VecDeque;

mod huffman;

/// The largest integer accepted. No index or string length in a header block
/// comes near it; refusing more keeps every sum of lengths far from overflow.
const INT_VALUE_MAX: u64 = (1 << 31) - 1;

/// Bytes an integer may take after its prefix: five carry 35 bits, enough for
/// [`INT_VALUE_MAX`]. A longer integer is refused, whatever its value.
const INT_CONTINUATION_BYTES_MAX: usize = 5;

/// Added to a field's name and value lengths to give its size, both in the
/// dynamic table (RFC 7541 §4.1) and in a header list (RFC 7540 §6.5.2).
const FIELD_OVERHEAD_BYTES: usize = 32;

use crate::limits::HPACK_SCRATCH_BYTES_KEEP_MAX as SCRATCH_BYTES_KEEP_MAX;

/// What can go wrong decoding a header block. Every variant but
/// [`DecodeError::HeaderListTooLarge`] is a connection error of type
/// COMPRESSION_ERROR: the decoder's dynamic table can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The block is malformed: a bad index, an integer that overflows or is
    /// cut short, a string cut short, bad Huffman coding (EOS inside, or
    /// padding longer than seven bits or not all ones), or a table size
    /// update above the allowed maximum or after the block's first field.
    Compression(&'static str),
    /// The decoded header list is larger than the caller's limit, counting
    /// each field as its name and value lengths plus 32 (RFC 7540 §6.5.2).
    /// The whole block was still decoded, so the dynamic table stays in step
    /// with the peer's encoder and the connection can go on.
    HeaderListTooLarge,
}

const INDEX_ZERO: DecodeError = DecodeError::Compression("hpack: index 0");
const INDEX_UNKNOWN: DecodeError = DecodeError::Compression("hpack: index past the table");
const INT_TRUNCATED: DecodeError = DecodeError::Compression("hpack: integer cut short");
const INT_OVERFLOW: DecodeError = DecodeError::Compression("hpack: integer too large");
const STRING_TRUNCATED: DecodeError = DecodeError::Compression("hpack: string cut short");
const SIZE_UPDATE_TOO_LARGE: DecodeError =
    DecodeError::Compression("hpack: table size update above the advertised maximum");
const SIZE_UPDATE_LATE: DecodeError =
    DecodeError::Compression("hpack: table size update after a header field");

/// The static table (RFC 7541 Appendix A); index 1 is the first entry.
const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Decodes the header blocks of one connection, in order.
pub struct Decoder {
    table: DynamicTable,
    /// The SETTINGS_HEADER_TABLE_SIZE we advertise: the most a table size
    /// update may ask for.
    table_bytes_max: usize,
    /// Holds a literal name after Huffman decoding, or a copy of an indexed
    /// name whose entry an insertion may evict.
    name_scratch: Vec<u8>,
    /// Holds a literal value after Huffman decoding.
    value_scratch: Vec<u8>,
}

impl Decoder {
    /// A decoder with an empty dynamic table. `max_table_size` is the
    /// SETTINGS_HEADER_TABLE_SIZE we advertise (4096 by default), in bytes.
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            table_bytes_max: max_table_size,
            name_scratch: Vec::new(),
            value_scratch: Vec::new(),
        }
    }

    /// Decodes one complete header block (a HEADERS payload joined with its
    /// CONTINUATION payloads) and calls `emit(name, value)` for each field,
    /// in order. The slices are valid only during the call.
    ///
    /// Once the fields so far exceed `max_list_size`, `emit` is not called
    /// again, but the rest of the block is still decoded to keep the
    /// dynamic table in step, and the result is
    /// [`DecodeError::HeaderListTooLarge`], unless the block is also
    /// malformed: then it is [`DecodeError::Compression`].
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list_size: usize,
        mut emit: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let mut list = ListBudget {
            bytes: 0,
            bytes_max: max_list_size,
            exceeded: false,
        };
        let result = self.decode_fields(block, &mut list, &mut emit);
        for scratch in [&mut self.name_scratch, &mut self.value_scratch] {
            if scratch.capacity() > SCRATCH_BYTES_KEEP_MAX {
                *scratch = Vec::new();
            }
        }
        result?;
        if list.exceeded {
            return Err(DecodeError::HeaderListTooLarge);
        }
        Ok(())
    }

    fn decode_fields(
        &mut self,
        block: &[u8],
        list: &mut ListBudget,
        emit: &mut impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let mut pos = 0;
        let mut field_seen = false;
        while let Some(&first) = block.get(pos) {
            if first & 0x80 != 0 {
                let index = read_int(block, &mut pos, 7)?;
                if index == 0 {
                    return Err(INDEX_ZERO);
                }
                let (name, value) = self.table.get(index).ok_or(INDEX_UNKNOWN)?;
                list.admit(name, value, emit);
            } else if first & 0xe0 == 0x20 {
                // RFC 7541 §4.2: only at the start of a block.
                if field_seen {
                    return Err(SIZE_UPDATE_LATE);
                }
                let size = read_int(block, &mut pos, 5)?;
                if size > self.table_bytes_max {
                    return Err(SIZE_UPDATE_TOO_LARGE);
                }
                self.table.set_bytes_max(size);
                continue;
            } else {
                let indexing = first & 0x40 != 0;
                let name_index = read_int(block, &mut pos, if indexing { 6 } else { 4 })?;
                let name: &[u8] = match name_index {
                    0 => read_string(block, &mut pos, &mut self.name_scratch)?,
                    i if i <= STATIC_TABLE.len() => STATIC_TABLE[i - 1].0,
                    i => {
                        // Copied, because inserting the new entry may evict
                        // the one that holds the name (RFC 7541 §4.4).
                        let (name, _) = self.table.get(i).ok_or(INDEX_UNKNOWN)?;
                        self.name_scratch.clear();
                        self.name_scratch.extend_from_slice(name);
                        &self.name_scratch
                    }
                };
                let value = read_string(block, &mut pos, &mut self.value_scratch)?;
                if indexing {
                    self.table.insert(name, value);
                }
                list.admit(name, value, emit);
            }
            field_seen = true;
        }
        Ok(())
    }
}

/// The running size of a header list against its limit.
struct ListBudget {
    bytes: usize,
    bytes_max: usize,
    exceeded: bool,
}

impl ListBudget {
    /// Counts a field, and passes it on if the list is still within its limit.
    fn admit(&mut self, name: &[u8], value: &[u8], emit: &mut impl FnMut(&[u8], &[u8])) {
        self.bytes = self
            .bytes
            .saturating_add(name.len())
            .saturating_add(value.len())
            .saturating_add(FIELD_OVERHEAD_BYTES);
        self.exceeded |= self.bytes > self.bytes_max;
        if !self.exceeded {
            emit(name, value);
        }
    }
}

/// Reads an integer with a `prefix_bits`-bit prefix (RFC 7541 §5.1) at
/// `*pos`, and moves `*pos` past it.
fn read_int(block: &[u8], pos: &mut usize, prefix_bits: u32) -> Result<usize, DecodeError> {
    let mask = (1u8 << prefix_bits) - 1;
    let first = *block.get(*pos).ok_or(INT_TRUNCATED)?;
    *pos += 1;
    let mut value = u64::from(first & mask);
    if value < u64::from(mask) {
        return Ok(value as usize);
    }
    for shift in (0..INT_CONTINUATION_BYTES_MAX as u32).map(|i| i * 7) {
        let byte = *block.get(*pos).ok_or(INT_TRUNCATED)?;
        *pos += 1;
        value += u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            if value > INT_VALUE_MAX {
                return Err(INT_OVERFLOW);
            }
            return usize::try_from(value).map_err(|_| INT_OVERFLOW);
        }
    }
    Err(INT_OVERFLOW)
}

/// Reads a string literal (RFC 7541 §5.2) at `*pos` and moves `*pos` past
/// it. A raw string is returned in place; a Huffman-coded one is decoded
/// into `scratch`.
fn read_string<'a>(
    block: &'a [u8],
    pos: &mut usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], DecodeError> {
    let huffman = block.get(*pos).is_some_and(|&b| b & 0x80 != 0);
    let len = read_int(block, pos, 7)?;
    let end = pos.checked_add(len).ok_or(STRING_TRUNCATED)?;
    let bytes = block.get(*pos..end).ok_or(STRING_TRUNCATED)?;
    *pos = end;
    if !huffman {
        return Ok(bytes);
    }
    scratch.clear();
    huffman::decode(bytes, scratch).map_err(DecodeError::Compression)?;
    Ok(scratch)
}

/// The dynamic table (RFC 7541 §2.3.2, §4).
///
/// Names and values live in one byte buffer, oldest first. Eviction only
/// moves `start` forward; the buffer is compacted when appending would take
/// it past twice the largest table size, so no entry costs an allocation
/// once the buffer has grown, and compaction copies at most one table's
/// worth of bytes per table's worth inserted.
struct DynamicTable {
    /// Oldest first: dynamic index 1 is the back.
    entries: VecDeque<Entry>,
    bytes: Vec<u8>,
    /// Bytes before this belong to evicted entries.
    start: usize,
    /// Sum of the entries' sizes (name + value + 32 each).
    size_bytes: usize,
    /// The limit set by the last table size update.
    size_bytes_max: usize,
    /// `bytes` is compacted rather than grown past this.
    buffer_bytes_max: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    offset: usize,
    name_len: usize,
    value_len: usize,
}

impl Entry {
    fn end(&self) -> usize {
        self.offset + self.name_len + self.value_len
    }

    fn size(&self) -> usize {
        self.name_len + self.value_len + FIELD_OVERHEAD_BYTES
    }
}

impl DynamicTable {
    fn new(size_bytes_max: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            bytes: Vec::new(),
            start: 0,
            size_bytes: 0,
            size_bytes_max,
            buffer_bytes_max: size_bytes_max.saturating_mul(2),
        }
    }

    /// The field at `index` of the combined index space: the static table
    /// from 1, then the dynamic table, newest first.
    fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        if let Some(&field) = index.checked_sub(1).and_then(|i| STATIC_TABLE.get(i)) {
            return Some(field);
        }
        let age = index.checked_sub(STATIC_TABLE.len() + 1)?;
        let entry = self.entries.get(self.entries.len().checked_sub(age + 1)?)?;
        let name_end = entry.offset + entry.name_len;
        Some((
            self.bytes.get(entry.offset..name_end)?,
            self.bytes.get(name_end..entry.end())?,
        ))
    }

    fn set_bytes_max(&mut self, size_bytes_max: usize) {
        self.size_bytes_max = size_bytes_max;
        while self.size_bytes > self.size_bytes_max && self.evict_oldest() {}
    }

    /// Adds a field, evicting the oldest entries to make room. A field larger
    /// than the whole table empties it and is not added (RFC 7541 §4.4).
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name
            .len()
            .saturating_add(value.len())
            .saturating_add(FIELD_OVERHEAD_BYTES);
        if size > self.size_bytes_max {
            while self.evict_oldest() {}
            return;
        }
        while self.size_bytes.saturating_add(size) > self.size_bytes_max && self.evict_oldest() {}
        let len = name.len() + value.len();
        if self.bytes.len() + len > self.buffer_bytes_max {
            self.bytes.drain(..self.start);
            for entry in &mut self.entries {
                entry.offset -= self.start;
            }
            self.start = 0;
        }
        let entry = Entry {
            offset: self.bytes.len(),
            name_len: name.len(),
            value_len: value.len(),
        };
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.entries.push_back(entry);
        self.size_bytes += size;
        debug_assert!(self.size_bytes <= self.size_bytes_max);
    }

    /// Drops the oldest entry; false if the table was empty.
    fn evict_oldest(&mut self) -> bool {
        let Some(entry) = self.entries.pop_front() else {
            return false;
        };
        self.size_bytes -= entry.size();
        if self.entries.is_empty() {
            self.bytes.clear();
            self.start = 0;
        } else {
            self.start = entry.end();
        }
        true
    }
}

/// Appends an integer with a `prefix_bits`-bit prefix; `first` holds the
/// bits above the prefix.
fn write_int(first: u8, prefix_bits: u32, value: usize, out: &mut Vec<u8>) {
    let mask = (1usize << prefix_bits) - 1;
    if value < mask {
        out.push(first | value as u8);
        return;
    }
    out.push(first | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a raw (not Huffman-coded) string literal.
fn write_string(bytes: &[u8], out: &mut Vec<u8>) {
    write_int(0, 7, bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Appends a dynamic table size update to zero. Call it once, at the start
/// of the server's first header block: the server never indexes a field, and
/// this lets the client drop its copy of the table.
pub fn encode_table_size_zero(out: &mut Vec<u8>) {
    out.push(0x20);
}

/// Appends a `:status` field: one byte for the codes in the static table
/// (200, 204, 206, 304, 400, 404, 500), else a literal without indexing.
pub fn encode_status(code: u16, out: &mut Vec<u8>) {
    let index = match code {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => 0,
    };
    if index != 0 {
        out.push(0x80 | index);
        return;
    }
    let mut digits = [0u8; 5];
    let mut rest = code;
    let mut first = digits.len();
    loop {
        first -= 1;
        digits[first] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    // Index 8 is the first `:status` entry; only its name is used.
    write_int(0, 4, 8, out);
    write_string(&digits[first..], out);
}

/// Appends a literal field without indexing, naming it by its static table
/// index if it has one. Strings are written raw. HTTP/2 needs `name` in
/// lower case; that is the caller's to ensure.
pub fn encode_field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    match STATIC_TABLE.iter().position(|&(n, _)| n == name) {
        Some(i) => write_int(0, 4, i + 1, out),
        None => {
            out.push(0);
            write_string(name, out);
        }
    }
    write_string(value, out);
}

#[cfg(test)]
mod tests;
