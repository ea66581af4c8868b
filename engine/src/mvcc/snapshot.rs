//! Online snapshots: the index as of one revision, streamed in bounded
//! chunks while writes continue, and rebuilt by [`Mvcc::restore`].
//!
//! A chunk (all integers little-endian; the byte diagram is in
//! `docs/mvcc.md`):
//!
//! ```text
//! header  magic "CMVS" | format u16 | flags u16 (bit 0: last chunk) |
//!         seq u64 | at_rev i64 | compact_rev i64 | records u32 | body_len u32
//! body    records: key_len u32 | key | versions u32 | versions ...
//!         version: main i64 | sub u32 | kind u8 (0 put, 1 tombstone) |
//!                  create i64 | version i64 | lease i64 | value_len u32 | value
//! trailer crc32 (IEEE) of header and body
//! ```
//!
//! A key's versions may continue in the next chunk (a record for the same
//! key again), so that one key with a long history cannot make a chunk
//! unbounded: a chunk exceeds `max_bytes` by at most one version.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::history::{History, Stored};
use super::{relink_lease, Error, Key, Mvcc, MvccConfig};

/// Version of the chunk format written by [`Mvcc::snapshot_chunk`].
pub const SNAPSHOT_FORMAT_VERSION: u16 = 1;

const MAGIC: [u8; 4] = *b"CMVS";
const HEADER_BYTES: usize = 40;
const TRAILER_BYTES: usize = 4;
const FLAG_LAST: u16 = 1;
/// Fixed bytes of one encoded version besides its value.
const VERSION_FIXED_BYTES: usize = 8 + 4 + 1 + 8 + 8 + 8 + 4;

/// A length as the u32 the formats use. Keys and values are bounded by the
/// request size limit, far below 4 GiB, so a longer one is a bug.
pub(super) fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or_else(|_| panic!("length {len} exceeds u32"))
}

/// Holds compaction's freeing of history for as long as it lives.
#[derive(Debug)]
struct Hold(Arc<AtomicUsize>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a chunk starts: a key and the first of its versions to write.
#[derive(Debug)]
struct Cursor {
    key: Box<[u8]>,
    rev: (i64, u32),
}

/// A snapshot in progress: the revision it captures, where the next chunk
/// starts, and a hold on compaction. Drop it (finished or not) to release
/// the hold; the index then frees what compactions dropped meanwhile.
#[derive(Debug)]
pub struct Snapshot {
    at_rev: i64,
    compact_rev: i64,
    /// The next chunk's first (key, version) — `None` with `seq == 0` means
    /// "from the first key"; `None` later means done.
    cursor: Option<Cursor>,
    seq: u64,
    done: bool,
    hold: Hold,
}

impl Snapshot {
    /// The revision this snapshot captures.
    pub fn revision(&self) -> i64 {
        self.at_rev
    }

    /// The compaction point recorded in it.
    pub fn compact_revision(&self) -> i64 {
        self.compact_rev
    }

    /// Whether the last chunk has been produced.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl Mvcc {
    /// Starts a snapshot of the state at `at_rev` (≤ 0: the current
    /// revision) and holds compaction until the returned [`Snapshot`] is
    /// dropped.
    pub fn snapshot_begin(&self, at_rev: i64) -> Result<Snapshot, Error> {
        let at_rev = self.read_revision(at_rev, self.current_rev)?;
        self.holds.fetch_add(1, Ordering::AcqRel);
        Ok(Snapshot {
            at_rev,
            compact_rev: self.compact_rev,
            cursor: None,
            seq: 0,
            done: false,
            hold: Hold(Arc::clone(&self.holds)),
        })
    }

    /// Produces the snapshot's next chunk, of about `max_bytes` (at least
    /// one version per chunk), or `None` once the last chunk was produced.
    /// Writes may be applied between calls.
    pub fn snapshot_chunk(&self, snap: &mut Snapshot, max_bytes: usize) -> Option<Vec<u8>> {
        if snap.done {
            return None;
        }
        assert!(
            Arc::ptr_eq(&snap.hold.0, &self.holds),
            "a snapshot is continued on the index it was begun on"
        );
        let mut chunk = Vec::with_capacity(HEADER_BYTES + max_bytes.min(1 << 24));
        chunk.resize(HEADER_BYTES, 0);
        let mut records = 0u32;
        let mut next: Option<Cursor> = None;

        let start = match &snap.cursor {
            Some(cursor) => Bound::Included(&cursor.key[..]),
            None => Bound::Unbounded,
        };
        'keys: for (key, history) in self.tree.range::<[u8], _>((start, Bound::Unbounded)) {
            let from = history.kept_from(snap.compact_rev);
            let resume = match &snap.cursor {
                Some(cursor) if cursor.key[..] == key[..] => Some(cursor.rev),
                _ => None,
            };
            let versions = history.versions()[from..]
                .iter()
                .take_while(|s| s.main <= snap.at_rev)
                .filter(|s| resume.is_none_or(|r| s.rev() >= r));
            let mut count_at: Option<usize> = None;
            let mut count = 0u32;
            for s in versions {
                let size = VERSION_FIXED_BYTES + s.value.len();
                let body = chunk.len() - HEADER_BYTES;
                if body > 0 && body + size > max_bytes {
                    next = Some(Cursor {
                        key: Box::from(&key[..]),
                        rev: s.rev(),
                    });
                    if let Some(at) = count_at {
                        chunk[at..at + 4].copy_from_slice(&count.to_le_bytes());
                    }
                    break 'keys;
                }
                if count_at.is_none() {
                    chunk.extend_from_slice(&len_u32(key.len()).to_le_bytes());
                    chunk.extend_from_slice(key);
                    count_at = Some(chunk.len());
                    chunk.extend_from_slice(&0u32.to_le_bytes());
                    records += 1;
                }
                encode_version(&mut chunk, s);
                count += 1;
            }
            if let Some(at) = count_at {
                chunk[at..at + 4].copy_from_slice(&count.to_le_bytes());
            }
        }

        let last = next.is_none();
        let body_len = len_u32(chunk.len() - HEADER_BYTES);
        let mut header = [0u8; HEADER_BYTES];
        header[0..4].copy_from_slice(&MAGIC);
        header[4..6].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
        header[6..8].copy_from_slice(&(if last { FLAG_LAST } else { 0 }).to_le_bytes());
        header[8..16].copy_from_slice(&snap.seq.to_le_bytes());
        header[16..24].copy_from_slice(&snap.at_rev.to_le_bytes());
        header[24..32].copy_from_slice(&snap.compact_rev.to_le_bytes());
        header[32..36].copy_from_slice(&records.to_le_bytes());
        header[36..40].copy_from_slice(&body_len.to_le_bytes());
        chunk[..HEADER_BYTES].copy_from_slice(&header);
        let crc = crc32fast::hash(&chunk);
        chunk.extend_from_slice(&crc.to_le_bytes());

        snap.seq += 1;
        snap.cursor = next;
        snap.done = last;
        Some(chunk)
    }

    /// Rebuilds an index from a snapshot's chunks, in order. The index is
    /// at the snapshot's revision with its compaction point; reads, hashes
    /// and replays at every kept revision answer as the source did.
    pub fn restore<I, B>(config: MvccConfig, chunks: I) -> Result<Mvcc, Error>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut keys: Vec<(Key, History)> = Vec::new();
        let mut meta: Option<(i64, i64)> = None;
        let mut seen_last = false;
        let mut seq = 0u64;
        for chunk in chunks {
            let chunk = chunk.as_ref();
            let err = |offset: usize, reason: &'static str| Error::CorruptSnapshot {
                chunk_seq: seq,
                offset,
                reason,
            };
            if seen_last {
                return Err(err(0, "chunk after the last chunk"));
            }
            let (flags, at_rev, compact_rev, records, body) = decode_header(chunk, seq)?;
            match meta {
                None => {
                    if at_rev < 1 || compact_rev > at_rev {
                        return Err(err(16, "impossible revisions"));
                    }
                    meta = Some((at_rev, compact_rev));
                }
                Some(m) if m != (at_rev, compact_rev) => {
                    return Err(err(16, "revisions differ from the first chunk"));
                }
                Some(_) => {}
            }
            seen_last = flags & FLAG_LAST != 0;
            let mut r = Reader {
                buf: body,
                pos: 0,
                seq,
            };
            for _ in 0..records {
                let key_len = r.u32()? as usize;
                let key = r.bytes(key_len)?;
                if key.is_empty() {
                    return Err(r.err("empty key"));
                }
                let count = r.u32()?;
                if count == 0 {
                    return Err(r.err("record without versions"));
                }
                let continues = match keys.last() {
                    Some((last, _)) if &last[..] == key => true,
                    Some((last, _)) if &last[..] > key => return Err(r.err("keys out of order")),
                    _ => false,
                };
                for i in 0..count {
                    let s = r.version()?;
                    if s.main < 1 || s.main > at_rev {
                        return Err(r.err("version outside the snapshot's revisions"));
                    }
                    match keys.last_mut() {
                        Some((_, history)) if continues || i > 0 => {
                            if history.latest().rev() >= s.rev() {
                                return Err(r.err("versions out of order"));
                            }
                            history.push(s);
                        }
                        _ => keys.push((Key::new(key), History::One(s))),
                    }
                }
            }
            if r.pos != body.len() {
                return Err(r.err("bytes after the last record"));
            }
            seq += 1;
        }
        let Some((at_rev, compact_rev)) = meta else {
            return Err(Error::CorruptSnapshot {
                chunk_seq: 0,
                offset: 0,
                reason: "no chunks",
            });
        };
        if !seen_last {
            return Err(Error::CorruptSnapshot {
                chunk_seq: seq,
                offset: 0,
                reason: "the last chunk is missing",
            });
        }

        let mut mvcc = Mvcc::new(config);
        mvcc.current_rev = at_rev;
        mvcc.compact_rev = compact_rev;
        mvcc.trimmed_rev = compact_rev;
        let mut size = 0u64;
        for (key, history) in &mut keys {
            size += history
                .versions()
                .iter()
                .map(|s| s.size_bytes(key.len()))
                .sum::<u64>();
            if let Some(live) = history.live() {
                relink_lease(&mut mvcc.leases, key, 0, live.lease);
            }
            if let History::Many(v) = history {
                v.shrink_to_fit();
            }
        }
        // Keys arrive sorted, so this is a linear bulk build.
        let tree: BTreeMap<Key, History> = keys.into_iter().collect();
        mvcc.tree = tree;
        mvcc.size_bytes = size;
        Ok(mvcc)
    }
}

fn encode_version(out: &mut Vec<u8>, s: &Stored) {
    out.extend_from_slice(&s.main.to_le_bytes());
    out.extend_from_slice(&s.sub.to_le_bytes());
    out.push(u8::from(s.tombstone));
    out.extend_from_slice(&s.create.to_le_bytes());
    out.extend_from_slice(&s.version.to_le_bytes());
    out.extend_from_slice(&s.lease.to_le_bytes());
    out.extend_from_slice(&len_u32(s.value.len()).to_le_bytes());
    out.extend_from_slice(&s.value);
}

/// Checks a chunk's frame and returns (flags, at_rev, compact_rev,
/// record count, body).
fn decode_header(chunk: &[u8], seq: u64) -> Result<(u16, i64, i64, u32, &[u8]), Error> {
    let err = |offset: usize, reason: &'static str| Error::CorruptSnapshot {
        chunk_seq: seq,
        offset,
        reason,
    };
    if chunk.len() < HEADER_BYTES + TRAILER_BYTES {
        return Err(err(0, "shorter than a chunk header"));
    }
    let le_u16 = |at: usize| u16::from_le_bytes([chunk[at], chunk[at + 1]]);
    let le_u32 = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&chunk[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let le_i64 = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&chunk[at..at + 8]);
        i64::from_le_bytes(b)
    };
    if chunk[0..4] != MAGIC {
        return Err(err(0, "bad magic"));
    }
    if le_u16(4) != SNAPSHOT_FORMAT_VERSION {
        return Err(err(4, "unknown format version"));
    }
    let body_len = le_u32(36) as usize;
    if HEADER_BYTES + body_len + TRAILER_BYTES != chunk.len() {
        return Err(err(36, "body length does not match the chunk length"));
    }
    let crc_at = HEADER_BYTES + body_len;
    if crc32fast::hash(&chunk[..crc_at]) != le_u32(crc_at) {
        return Err(err(crc_at, "checksum mismatch"));
    }
    if le_i64(8) as u64 != seq {
        return Err(err(8, "chunk out of sequence"));
    }
    Ok((
        le_u16(6),
        le_i64(16),
        le_i64(24),
        le_u32(32),
        &chunk[HEADER_BYTES..crc_at],
    ))
}

/// A bounds-checked cursor over a chunk body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    seq: u64,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> Error {
        Error::CorruptSnapshot {
            chunk_seq: self.seq,
            offset: HEADER_BYTES + self.pos,
            reason,
        }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| self.err("record runs past the chunk body"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, Error> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn version(&mut self) -> Result<Stored, Error> {
        let main = self.i64()?;
        let sub = self.u32()?;
        let [kind] = self.array::<1>()?;
        let create = self.i64()?;
        let version = self.i64()?;
        let lease = self.i64()?;
        let value_len = self.u32()? as usize;
        let value = self.bytes(value_len)?;
        let tombstone = match kind {
            0 => false,
            1 => true,
            _ => return Err(self.err("unknown version kind")),
        };
        if tombstone && (create != 0 || version != 0 || lease != 0 || !value.is_empty()) {
            return Err(self.err("tombstone with contents"));
        }
        if !tombstone && (version < 1 || create < 1 || create > main) {
            return Err(self.err("put with impossible version or create revision"));
        }
        Ok(Stored {
            main,
            sub,
            tombstone,
            create,
            version,
            lease,
            value: Box::from(value),
        })
    }
}
