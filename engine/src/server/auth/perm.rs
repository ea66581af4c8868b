//! Key-range permissions: the union of a user's granted ranges, and whether
//! it covers a requested key or range.
//!
//! A range is `[key, end)` with etcd's conventions: an empty `end` means the
//! single key `key`, and `end == [0]` means "every key from `key` on". A
//! requested range is permitted only if the union of the granted ranges
//! covers all of it; a single key needs only to fall inside one of them.

use std::cmp::Ordering;

/// One end of a half-open interval: a key, or past every key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bound {
    Key(Vec<u8>),
    Infinite,
}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Bound::Key(a), Bound::Key(b)) => a.cmp(b),
            (Bound::Key(_), Bound::Infinite) => Ordering::Less,
            (Bound::Infinite, Bound::Key(_)) => Ordering::Greater,
            (Bound::Infinite, Bound::Infinite) => Ordering::Equal,
        }
    }
}

/// The smallest key after `key`: `key` followed by a zero byte.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(key.len() + 1);
    v.extend_from_slice(key);
    v.push(0);
    v
}

/// `[key, end)` in etcd's encoding, as a half-open interval; `None` if it
/// holds no key at all (end at or before key).
fn interval(key: &[u8], end: &[u8]) -> Option<(Vec<u8>, Bound)> {
    let end = match end {
        [] => Bound::Key(successor(key)),
        [0] => Bound::Infinite,
        e => Bound::Key(e.to_vec()),
    };
    (Bound::Key(key.to_vec()) < end).then(|| (key.to_vec(), end))
}

/// A union of disjoint, non-adjacent intervals, sorted by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    spans: Vec<(Vec<u8>, Bound)>,
}

impl RangeSet {
    /// The union of `ranges`, each `(key, range_end)` in etcd's encoding.
    pub fn from_ranges<'a>(ranges: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> RangeSet {
        let mut all: Vec<(Vec<u8>, Bound)> = ranges
            .into_iter()
            .filter_map(|(k, e)| interval(k, e))
            .collect();
        all.sort();
        let mut spans: Vec<(Vec<u8>, Bound)> = Vec::with_capacity(all.len());
        for (start, end) in all {
            if let Some(last) = spans.last_mut() {
                // Overlapping or touching: extend the last span.
                if Bound::Key(start.clone()) <= last.1 {
                    if end > last.1 {
                        last.1 = end;
                    }
                    continue;
                }
            }
            spans.push((start, end));
        }
        RangeSet { spans }
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Whether every key of `[key, end)` (etcd's encoding) is in the set.
    /// An empty requested range (end before key) asks for nothing, but is
    /// checked as its first key, as etcd does, so that it reveals nothing
    /// about keys the user may not read.
    pub fn covers(&self, key: &[u8], end: &[u8]) -> bool {
        let (start, end) =
            interval(key, end).unwrap_or_else(|| (key.to_vec(), Bound::Key(successor(key))));
        // The last span starting at or before `start`.
        let i = self
            .spans
            .partition_point(|(s, _)| s.as_slice() <= start.as_slice());
        if i == 0 {
            return false;
        }
        let (_, span_end) = &self.spans[i - 1];
        *span_end >= end && Bound::Key(start) < *span_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(r: &[(&str, &str)]) -> RangeSet {
        RangeSet::from_ranges(r.iter().map(|(k, e)| (k.as_bytes(), e.as_bytes())))
    }

    #[test]
    fn a_single_key_grant_covers_only_that_key() {
        let s = set(&[("foo", "")]);
        assert!(s.covers(b"foo", b""));
        assert!(!s.covers(b"foo0", b""));
        assert!(!s.covers(b"fo", b""));
        assert!(
            !s.covers(b"foo", b"fop"),
            "a range beyond the key is not covered"
        );
    }

    #[test]
    fn a_prefix_grant_covers_ranges_inside_it() {
        let s = set(&[("a/", "a0")]);
        assert!(s.covers(b"a/", b"a0"));
        assert!(s.covers(b"a/x", b""));
        assert!(s.covers(b"a/b", b"a/c"));
        assert!(!s.covers(b"a/", b"a1"));
        assert!(!s.covers(b"a", b""));
        assert!(!s.covers(b"a0", b""));
    }

    #[test]
    fn adjacent_grants_merge_and_gaps_do_not() {
        let s = set(&[("a", "c"), ("c", "e")]);
        assert!(s.covers(b"a", b"e"));
        let gap = set(&[("a", "c"), ("d", "e")]);
        assert!(!gap.covers(b"a", b"e"));
        assert!(gap.covers(b"d", b"e"));
        assert!(!gap.covers(b"c", b""));
    }

    #[test]
    fn from_key_grants_and_requests() {
        let s = set(&[("m", "\0")]);
        assert!(s.covers(b"m", b"\0"));
        assert!(s.covers(b"zzz", b""));
        assert!(!s.covers(b"a", b"\0"));
        let all = set(&[("", "\0")]);
        assert!(all.covers(b"", b"\0"));
        assert!(all.covers(b"anything", b""));
        let bounded = set(&[("m", "z")]);
        assert!(
            !bounded.covers(b"m", b"\0"),
            "an open request needs an open grant"
        );
    }

    #[test]
    fn an_empty_set_covers_nothing() {
        let s = set(&[]);
        assert!(s.is_empty());
        assert!(!s.covers(b"", b""));
        assert!(!s.covers(b"a", b"\0"));
    }

    #[test]
    fn merging_matches_a_brute_force_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let key = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<u8> {
            (0..rng.gen_range(0..3))
                .map(|_| rng.gen_range(b'a'..b'e'))
                .collect()
        };
        for _ in 0..2000 {
            let grants: Vec<(Vec<u8>, Vec<u8>)> = (0..rng.gen_range(0..5))
                .map(|_| {
                    let k = key(&mut rng);
                    let e = match rng.gen_range(0..4) {
                        0 => Vec::new(),
                        1 => vec![0],
                        _ => key(&mut rng),
                    };
                    (k, e)
                })
                .collect();
            let s = RangeSet::from_ranges(grants.iter().map(|(k, e)| (k.as_slice(), e.as_slice())));
            // Every short key is in the set iff some grant holds it.
            let holds = |k: &[u8], (gk, ge): &(Vec<u8>, Vec<u8>)| match ge.as_slice() {
                [] => k == gk.as_slice(),
                [0] => k >= gk.as_slice(),
                e => k >= gk.as_slice() && k < e,
            };
            for _ in 0..20 {
                let k = key(&mut rng);
                assert_eq!(
                    s.covers(&k, b""),
                    grants.iter().any(|g| holds(&k, g)),
                    "{grants:?} {k:?}"
                );
            }
        }
    }
}
