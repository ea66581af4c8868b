//! etcd's key-range conventions, resolved once into B-tree bounds.

use std::ops::Bound;

/// Start and end bounds of a B-tree range over byte keys.
pub type Bounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The keys a `(key, range_end)` pair selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span<'a> {
    /// Empty `range_end`: just `key`.
    One(&'a [u8]),
    /// `range_end == "\0"`: every key ≥ `key`.
    From(&'a [u8]),
    /// `[key, range_end)` with `key < range_end`.
    Between(&'a [u8], &'a [u8]),
    /// `range_end <= key`: nothing.
    Empty,
}

impl<'a> Span<'a> {
    /// Resolves etcd's forms of `range_end`.
    pub fn new(key: &'a [u8], range_end: &'a [u8]) -> Span<'a> {
        match range_end {
            [] => Span::One(key),
            [0] => Span::From(key),
            end if end > key => Span::Between(key, end),
            _ => Span::Empty,
        }
    }

    /// B-tree bounds, or `None` for the empty span (a B-tree range with
    /// start > end would panic).
    pub fn bounds(self) -> Option<Bounds<'a>> {
        match self {
            Span::One(k) => Some((Bound::Included(k), Bound::Included(k))),
            Span::From(k) => Some((Bound::Included(k), Bound::Unbounded)),
            Span::Between(k, e) => Some((Bound::Included(k), Bound::Excluded(e))),
            Span::Empty => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_range_end_forms() {
        assert_eq!(Span::new(b"a", b""), Span::One(b"a"));
        assert_eq!(Span::new(b"a", b"\0"), Span::From(b"a"));
        assert_eq!(Span::new(b"\0", b"\0"), Span::From(b"\0"));
        assert_eq!(Span::new(b"a", b"b"), Span::Between(b"a", b"b"));
        assert_eq!(Span::new(b"b", b"a"), Span::Empty);
        assert_eq!(Span::new(b"a", b"a"), Span::Empty);
    }
}
