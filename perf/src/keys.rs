//! Which keys a workload touches and what it writes.
//!
//! Keys are zero-padded decimal numbers of exactly `key_size` bytes
//! (`00004711` for key 4711 at size 8), so they are readable with
//! `etcdctl get` and the key written for an index can be recomputed to check
//! a run afterwards. Keys are drawn uniformly from `[0, key_space_size)`, or
//! in order (wrapping) with `--sequential-keys`, as in etcd's benchmark tool.

use bytes::Bytes;

use crate::error::PerfError;
use crate::limits::{KEY_INDEX_DIGITS_MAX, KEY_SIZE_MAX, VAL_SIZE_MAX};

/// The key space of a run and how keys are picked from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KeySpace {
    pub key_size: usize,
    pub key_space_size: u64,
    pub sequential: bool,
}

impl KeySpace {
    /// Checks that `key_size` bytes can spell every index of the key space.
    pub fn new(key_size: usize, key_space_size: u64, sequential: bool) -> Result<Self, PerfError> {
        if key_space_size == 0 {
            return Err(PerfError::config("--key-space-size must be at least 1"));
        }
        if key_size == 0 || key_size > KEY_SIZE_MAX {
            return Err(PerfError::config(format!(
                "--key-size must be between 1 and {KEY_SIZE_MAX}"
            )));
        }
        let digits = decimal_digits(key_space_size - 1);
        if key_size < digits {
            return Err(PerfError::config(format!(
                "--key-size {key_size} is too short for a key space of {key_space_size} \
                 keys (keys are decimal; {digits} bytes needed)"
            )));
        }
        Ok(KeySpace {
            key_size,
            key_space_size,
            sequential,
        })
    }

    /// The key of index `index` (which must lie in the key space).
    pub fn key(&self, index: u64) -> Bytes {
        assert!(
            index < self.key_space_size,
            "key index outside the key space"
        );
        Bytes::from(format!("{index:0width$}", width = self.key_size))
    }

    /// The key for the `sequence`-th request of a run: in order when
    /// sequential, otherwise drawn from `rng`.
    pub fn pick(&self, sequence: u64, rng: &mut SplitMix64) -> Bytes {
        let index = if self.sequential {
            sequence % self.key_space_size
        } else {
            rng.below(self.key_space_size)
        };
        self.key(index)
    }
}

fn decimal_digits(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    assert!(digits <= KEY_INDEX_DIGITS_MAX);
    digits
}

/// The value every put writes: `val_size` printable bytes. One value is
/// shared by all requests (as in etcd's benchmark tool), so generating values
/// costs the load generator nothing during the run.
pub fn value(val_size: usize) -> Result<Bytes, PerfError> {
    if val_size > VAL_SIZE_MAX {
        return Err(PerfError::config(format!(
            "--val-size must be at most {VAL_SIZE_MAX}"
        )));
    }
    let mut rng = SplitMix64::new(0x5eed);
    let bytes: Vec<u8> = (0..val_size).map(|_| b'a' + rng.below(26) as u8).collect();
    Ok(Bytes::from(bytes))
}

/// A tiny, fast, seedable generator (Steele, Lea and Flood's SplitMix64):
/// each client owns one, so picking keys takes no lock and no syscall.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[0, bound)`; the modulo bias is below 2^-40 for any key
    /// space a run can have, far under measurement noise.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0);
        self.next_u64() % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_padded_decimal_of_the_asked_size() {
        let space = KeySpace::new(8, 100_000, false).unwrap();
        assert_eq!(&space.key(4711)[..], b"00004711");
        assert_eq!(space.key(99_999).len(), 8);
        let wide = KeySpace::new(32, 10, false).unwrap();
        assert_eq!(wide.key(7).len(), 32);
    }

    #[test]
    fn too_short_keys_and_empty_spaces_are_refused() {
        assert!(KeySpace::new(4, 100_000, false).is_err());
        assert!(KeySpace::new(5, 100_000, false).is_ok());
        assert!(KeySpace::new(8, 0, false).is_err());
        assert!(KeySpace::new(0, 1, false).is_err());
    }

    #[test]
    fn sequential_keys_wrap_and_random_keys_stay_inside() {
        let seq = KeySpace::new(3, 5, true).unwrap();
        let mut rng = SplitMix64::new(1);
        let picked: Vec<Bytes> = (0..7).map(|i| seq.pick(i, &mut rng)).collect();
        assert_eq!(&picked[5][..], b"000");
        assert_eq!(&picked[6][..], b"001");
        let random = KeySpace::new(2, 10, false).unwrap();
        let mut seen = [false; 10];
        for i in 0..1_000 {
            let key = random.pick(i, &mut rng);
            let index: usize = std::str::from_utf8(&key).unwrap().parse().unwrap();
            seen[index] = true;
        }
        assert!(
            seen.iter().all(|s| *s),
            "every key of a small space is drawn"
        );
    }

    #[test]
    fn values_have_the_asked_size() {
        assert_eq!(value(256).unwrap().len(), 256);
        assert!(value(0).unwrap().is_empty());
        assert!(value(VAL_SIZE_MAX + 1).is_err());
    }
}
