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
        (**self).cmp(&**other)
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
}
