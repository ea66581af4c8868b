//! Maps keyed by small integer ids (HTTP/2 stream ids, request ids), which
//! are looked up once or twice per request: SipHash, the standard map's
//! default, costs more than the lookup itself. One multiplication and one
//! fold spread an id over both the low bits a table indexes by and the
//! high bits it tags entries with. Only for keys that callers cannot pick at will to
//! collide: stream ids must increase, request ids are the server's own.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by an integer id.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

/// 2^64 divided by the golden ratio, odd: multiplying by it permutes the
/// low bits of the key and mixes every bit into the high ones.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The product's low bits depend only on the key's low bits (stream
        // ids are all odd); its well-mixed high half is folded into them.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SPREAD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_ids_spread_over_low_and_high_bits() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1u32..=1024)
            .step_by(2)
            .map(|id| build.hash_one(id))
            .collect();
        // A table of 512 slots indexes by the low 9 bits. Stream ids are
        // all odd: without the fold only the 256 odd slots would be used.
        // Random hashes would fill about 324.
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 511).collect();
        assert!(low.len() > 300, "{} slots of 512 used", low.len());
        // Tags come from the top 7 bits: every value used.
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(high.len(), 128);
    }

    #[test]
    fn a_map_keyed_by_ids_finds_what_it_holds() {
        let mut m: IdMap<u64, u64> = IdMap::default();
        for id in 0..10_000u64 {
            m.insert(id * 3, id);
        }
        assert!((0..10_000u64).all(|id| m.get(&(id * 3)) == Some(&id)));
        assert_eq!(m.get(&1), None);
    }
}
