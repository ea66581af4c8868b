//! The B-tree's key type: short keys live inline in the tree node.
//!
//! A `Box<[u8]>` key costs a separate allocation, and worse, every
//! comparison during a B-tree search follows its pointer to another cache
//! line. Keys of up to [`INLINE_KEY_BYTES`] bytes are therefore stored in the
//! node itself (24 bytes, the same slot size as a boxed key plus its length),
//! and only longer keys go to the heap.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;

/// Longest key stored inline.
pub const INLINE_KEY_BYTES: usize = 22;

/// A key of the index.
#[derive(Clone)]
pub enum Key {
    /// `bytes[..len]` is the key.
    Inline {
        /// Length of the key.
        len: u8,
        /// The key, zero-padded.
        bytes: [u8; INLINE_KEY_BYTES],
    },
    /// A key longer than [`INLINE_KEY_BYTES`].
    Heap(Box<[u8]>),
}

impl Key {
    /// Copies `key` into a new key.
    pub fn new(key: &[u8]) -> Key {
        if key.len() <= INLINE_KEY_BYTES {
            let mut bytes = [0u8; INLINE_KEY_BYTES];
            bytes[..key.len()].copy_from_slice(key);
            Key::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(Box::from(key))
        }
    }

    /// `key` as a key to search the index with, if it is short enough to be
    /// inline (no allocation); a search by `&Key` compares words, one by
    /// `&[u8]` calls memcmp at every step.
    pub fn probe(key: &[u8]) -> Option<Key> {
        (key.len() <= INLINE_KEY_BYTES).then(|| Key::new(key))
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

// Borrow<[u8]> requires that equality and order agree with the bytes'; all
// three impls below compare the bytes and nothing else.
impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (
                Key::Inline { len, bytes },
                Key::Inline {
                    len: other_len,
                    bytes: other_bytes,
                },
            ) => {
                // Zero-padded, two inline keys order as their padded bytes
                // do, except a key and the same key followed by zero bytes,
                // which pad alike: the shorter comes first. Three word
                // compares instead of a call to memcmp, as a B-tree search
                // compares a key at every step.
                let words = |b: &[u8; INLINE_KEY_BYTES]| {
                    let word = |i: usize| {
                        let mut w = [0u8; 8];
                        let end = INLINE_KEY_BYTES.min(i + 8);
                        w[..end - i].copy_from_slice(&b[i..end]);
                        u64::from_be_bytes(w)
                    };
                    (word(0), word(8), word(16))
                };
                words(bytes)
                    .cmp(&words(other_bytes))
                    .then(len.cmp(other_len))
            }
            _ => (**self).cmp(&**other),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &**self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_are_one_slot_and_order_by_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let long = [7u8; 40];
        let keys = [&b""[..], b"a", b"a\0", b"ab", &[7u8; 22], &long, b"b"];
        for a in keys {
            for b in keys {
                assert_eq!(Key::new(a).cmp(&Key::new(b)), a.cmp(b));
                assert_eq!(&*Key::new(a), a);
            }
        }
    }

    /// Keys over a small alphabet with zero bytes, of lengths around the
    /// word boundaries and the inline limit, so that equal prefixes,
    /// trailing zeros and inline-against-heap pairs are common.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(0x80u8), Just(0xffu8)],
            0..=30,
        )
    }

    /// Two keys, mostly alike: the second is the first with one byte
    /// changed, cut short or made longer, so that they differ late.
    fn pair() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        (
            key(),
            key(),
            any::<prop::sample::Index>(),
            any::<u8>(),
            0..3u8,
        )
            .prop_map(|(a, tail, at, byte, how)| {
                let mut b = a.clone();
                match how {
                    0 if !b.is_empty() => {
                        let i = at.index(b.len());
                        b[i] = byte;
                    }
                    1 => {
                        let len = at.index(b.len() + 1);
                        b.truncate(len);
                    }
                    _ => b.extend_from_slice(&tail),
                }
                (a, b)
            })
    }

    proptest! {
        #[test]
        fn word_compares_order_keys_as_their_bytes((a, b) in pair()) {
            prop_assert_eq!(Key::new(&a).cmp(&Key::new(&b)), a.cmp(&b));
            prop_assert_eq!(Key::new(&a) == Key::new(&b), a == b);
        }

        #[test]
        fn a_probe_finds_what_a_byte_search_finds(
            keys in proptest::collection::vec(key(), 0..64),
            wanted in key(),
        ) {
            let tree: std::collections::BTreeMap<Key, usize> =
                keys.iter().enumerate().map(|(i, k)| (Key::new(k), i)).collect();
            let by_bytes = tree.get(&wanted[..]);
            match Key::probe(&wanted) {
                Some(probe) => prop_assert_eq!(tree.get(&probe), by_bytes),
                None => prop_assert!(wanted.len() > INLINE_KEY_BYTES),
            }
        }
    }
}
