//! The set type: a table of members (short ones inline; a `FieldTable`
//! without values, so SSCAN has stable cursors and random picks are O(1)),
//! and the
//! encoding Redis would hold it in, which OBJECT ENCODING reports and a
//! snapshot writes: `intset` while every member is an integer and there are
//! at most `set-max-intset-entries` (512), `listpack` while small (at most
//! 128 members of at most 64 bytes, Redis 7.2's fixed defaults),
//! `hashtable` beyond. As in Redis, a set never goes back to a smaller
//! encoding when members leave.

use super::field_table::FieldTable;
use super::SmallBytes;
use crate::util::canonical_int;

/// `set-max-listpack-entries` and `set-max-listpack-value`.
const LISTPACK_ENTRIES: usize = 128;
const LISTPACK_VALUE: usize = 64;

/// The configured `set-max-intset-entries`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLimits {
    pub intset_max: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        SetLimits { intset_max: 512 }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Enc {
    #[default]
    Intset,
    Listpack,
    Table,
}

#[derive(Clone, Default)]
pub struct SetValue {
    members: FieldTable<()>,
    enc: Enc,
}

impl SetValue {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds a member; true when it was new.
    pub fn add(&mut self, m: &[u8], limits: SetLimits) -> bool {
        if !self.members.insert(m, ()) {
            return false;
        }
        self.grow(m, limits);
        true
    }

    /// Moves to a larger encoding when the new member `m` does not fit the
    /// current one (Redis's `setTypeAdd` conversions).
    fn grow(&mut self, m: &[u8], limits: SetLimits) {
        let n = self.members.len();
        if self.enc == Enc::Intset && (canonical_int(m).is_none() || n > limits.intset_max) {
            let small = n <= LISTPACK_ENTRIES && self.members.iter().all(|(m, _)| m.len() <= LISTPACK_VALUE);
            self.enc = if small { Enc::Listpack } else { Enc::Table };
        }
        if self.enc == Enc::Listpack && (n > LISTPACK_ENTRIES || m.len() > LISTPACK_VALUE) {
            self.enc = Enc::Table;
        }
    }

    /// Whether the set is (still) an intset: all integers, few enough.
    pub fn is_intset(&self) -> bool {
        self.enc == Enc::Intset
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        self.members.remove(m).is_some()
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        self.members.contains(m)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.members.iter().map(|(m, _)| m)
    }

    /// Visits every member in the order Redis replies with them: an
    /// intset's in increasing order, others as stored.
    pub fn ordered<'a>(&'a self, f: impl FnMut(&'a [u8])) {
        if self.enc != Enc::Intset {
            return self.iter().for_each(f);
        }
        let mut ints: Vec<(i64, &[u8])> = self.iter().map(|m| (canonical_int(m).unwrap_or_default(), m)).collect();
        ints.sort_unstable_by_key(|e| e.0);
        ints.into_iter().map(|e| e.1).for_each(f);
    }

    /// The member at index `i` (0..len) in O(1), for random picks.
    pub fn nth(&self, i: usize) -> Option<&[u8]> {
        self.members.nth(i).map(|(m, _)| m)
    }

    /// Removes and returns `n` members chosen at random (all when `n` is
    /// at least the size), in random order: O(n), whatever the set's size.
    pub fn pop_random(&mut self, n: usize, rng: &mut impl rand::Rng) -> Vec<SmallBytes> {
        if n >= self.members.len() {
            return self.members.drain().map(|(m, _)| m).collect();
        }
        (0..n).filter_map(|_| self.members.remove_nth(rng.random_range(0..self.members.len())).map(|(m, _)| m)).collect()
    }

    /// One SSCAN step from `cursor` visiting about `count` members; returns
    /// the next cursor (0 when done). The small encodings are returned
    /// whole, with cursor 0, whatever the cursor (as Redis does).
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8])) -> u64 {
        if self.enc != Enc::Table {
            self.ordered(f);
            return 0;
        }
        self.members.scan(cursor, count, |m, _| f(m))
    }

    pub fn encoding(&self) -> &'static str {
        match self.enc {
            Enc::Intset => "intset",
            Enc::Listpack => "listpack",
            Enc::Table => "hashtable",
        }
    }

    pub fn heap_size(&self) -> usize {
        self.members.heap_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_encodings() {
        let mut s = SetValue::default();
        let l = SetLimits::default();
        assert!(s.add(b"1", l) && s.add(b"2", l) && !s.add(b"1", l));
        assert_eq!(s.encoding(), "intset");
        s.add(b"x", l);
        assert_eq!(s.encoding(), "listpack");
        assert!(s.remove(b"x") && !s.remove(b"x"));
        assert_eq!(s.len(), 2);
        assert_eq!(s.encoding(), "listpack", "no way back, as in Redis");
        let m = s.pop_random(1, &mut rand::rng()).remove(0);
        assert!(!s.contains(&m) && s.len() == 1);
    }

    #[test]
    fn pop_random_takes_distinct_members() {
        let mut s = SetValue::default();
        for i in 0..1000 {
            s.add(i.to_string().as_bytes(), SetLimits::default());
        }
        let mut rng = rand::rng();
        let got = s.pop_random(300, &mut rng);
        assert_eq!(got.len(), 300);
        assert_eq!(s.len(), 700);
        let distinct: std::collections::HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), 300);
        assert!(got.iter().all(|m| !s.contains(m)));
        assert_eq!(s.pop_random(5000, &mut rng).len(), 700);
        assert!(s.is_empty());
    }

    #[test]
    fn the_intset_limit_is_the_configured_one() {
        let mut s = SetValue::default();
        let l = SetLimits { intset_max: 3 };
        for m in ["1", "2", "3"] {
            s.add(m.as_bytes(), l);
        }
        assert!(s.is_intset());
        s.add(b"4", l);
        assert_eq!(s.encoding(), "listpack");
        let mut big = SetValue::default();
        for i in 0..200 {
            big.add(i.to_string().as_bytes(), SetLimits::default());
        }
        assert_eq!(big.encoding(), "intset");
        big.add(b"x", SetLimits::default());
        assert_eq!(big.encoding(), "hashtable");
        let mut long = SetValue::default();
        long.add(&[b'x'; 65], SetLimits::default());
        assert_eq!(long.encoding(), "hashtable");
    }
}
