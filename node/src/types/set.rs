//! The set type, held in the encoding Redis would hold it in (which
//! OBJECT ENCODING reports and a snapshot writes): `intset` while every
//! member is an integer and there are at most `set-max-intset-entries`
//! (512) — a sorted array of 2-, 4- or 8-byte integers (`IntSet`);
//! `listpack` while small (at most 128 members of at most 64 bytes, Redis
//! 7.2's fixed defaults) — the members packed in one buffer (`Pack`);
//! `hashtable` beyond — a `FieldTable` without values, so SSCAN has stable
//! cursors and random picks are O(1). As in Redis, a set never goes back
//! to a smaller encoding when members leave.

use std::ops::Deref;

use super::field_table::FieldTable;
use super::intset::IntSet;
use super::pack::Pack;
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

#[derive(Clone)]
pub struct SetValue {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Ints(IntSet),
    Packed {
        pack: Pack,
        len: usize,
    },
    /// Boxed: most sets are small, and the value's box is then 16 bytes
    /// smaller.
    Table(Box<FieldTable<()>>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue { repr: Repr::Ints(IntSet::default()) }
    }
}

/// A member as a set yields it: borrowed bytes, or an intset's integer
/// written out.
pub enum Member<'a> {
    Bytes(&'a [u8]),
    Int { text: [u8; 20], len: u8 },
}

impl Member<'_> {
    fn int(v: i64) -> Member<'static> {
        let mut buf = itoa::Buffer::new();
        let t = buf.format(v).as_bytes();
        let mut text = [0; 20];
        text[..t.len()].copy_from_slice(t);
        Member::Int { text, len: t.len() as u8 }
    }
}

impl Deref for Member<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Member::Bytes(b) => b,
            Member::Int { text, len } => &text[..*len as usize],
        }
    }
}

/// A set's members (an intset's in increasing order).
pub enum Iter<'a> {
    Ints { set: &'a IntSet, next: usize },
    Packed { it: crate::types::pack::Iter<'a>, left: usize },
    Table(crate::types::field_table::Iter<'a, ()>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    #[inline]
    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            Iter::Ints { set, next } => {
                let v = set.get(*next)?;
                *next += 1;
                Some(Member::int(v))
            }
            Iter::Packed { it, left } => {
                let m = it.next()?;
                *left -= 1;
                Some(Member::Bytes(m))
            }
            Iter::Table(it) => it.next().map(|(m, _)| Member::Bytes(m)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::Ints { set, next } => set.len() - next,
            Iter::Packed { left, .. } => *left,
            Iter::Table(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl SetValue {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.len(),
            Repr::Packed { len, .. } => *len,
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a member; true when it was new. Moves to a larger encoding when
    /// the member does not fit the current one (Redis's `setTypeAdd`
    /// conversions).
    pub fn add(&mut self, m: &[u8], limits: SetLimits) -> bool {
        if let Repr::Ints(s) = &mut self.repr {
            if let Some(v) = canonical_int(m) {
                if !s.insert(v) {
                    return false;
                }
                let n = s.len();
                if n > limits.intset_max {
                    // Integers are at most 20 bytes written out.
                    self.convert(n <= LISTPACK_ENTRIES);
                }
                return true;
            }
            // Not an integer, so not a member yet.
            let n = self.len() + 1;
            let small = n <= LISTPACK_ENTRIES && m.len() <= LISTPACK_VALUE;
            self.convert(small);
        }
        if let Repr::Packed { pack, len } = &mut self.repr {
            if pack.iter().any(|e| e == m) {
                return false;
            }
            if *len < LISTPACK_ENTRIES && m.len() <= LISTPACK_VALUE {
                pack.push_back_exact(m);
                *len += 1;
                return true;
            }
            self.convert(false);
        }
        match &mut self.repr {
            Repr::Table(t) => t.insert(m, ()),
            _ => unreachable!("converted to a table above"),
        }
    }

    /// Moves the members to the listpack encoding (`small`) or a table.
    fn convert(&mut self, small: bool) {
        let repr = if small {
            let mut pack = Pack::default();
            self.iter().for_each(|m| pack.push_back_exact(&m));
            Repr::Packed { pack, len: self.len() }
        } else {
            let mut t = FieldTable::with_capacity(self.len() + 1);
            self.iter().for_each(|m| {
                t.insert(&m, ());
            });
            Repr::Table(Box::new(t))
        };
        self.repr = repr;
    }

    /// Whether the set is (still) an intset: all integers, few enough.
    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Ints(_))
    }

    /// The members of an intset, in increasing order.
    pub fn ints(&self) -> Option<impl Iterator<Item = i64> + '_> {
        match &self.repr {
            Repr::Ints(s) => Some(s.iter()),
            _ => None,
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(s) => canonical_int(m).is_some_and(|v| s.remove(v)),
            Repr::Packed { pack, len } => {
                let mut it = pack.iter();
                loop {
                    let at = it.offset();
                    let Some(e) = it.next() else { return false };
                    if e == m {
                        let end = it.offset();
                        pack.splice(at, end - at, None);
                        *len -= 1;
                        return true;
                    }
                }
            }
            Repr::Table(t) => t.remove(m).is_some(),
        }
    }

    /// Starts loading where a table keeps `m` (`FieldTable::prefetch_head`);
    /// `None` for the compact encodings, one allocation each.
    #[inline]
    pub fn prefetch_head(&self, m: &[u8]) -> Option<u64> {
        match &self.repr {
            Repr::Table(t) => Some(t.prefetch_head(m)),
            _ => None,
        }
    }

    /// The second step of `prefetch_head`.
    #[inline]
    pub fn prefetch_chain(&self, pos: u64) {
        if let Repr::Table(t) = &self.repr {
            t.prefetch_chain(pos);
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(s) => canonical_int(m).is_some_and(|v| s.contains(v)),
            Repr::Packed { pack, .. } => pack.iter().any(|e| e == m),
            Repr::Table(t) => t.contains(m),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(set) => Iter::Ints { set, next: 0 },
            Repr::Packed { pack, len } => Iter::Packed { it: pack.iter(), left: *len },
            Repr::Table(t) => Iter::Table(t.iter()),
        }
    }

    /// The member at index `i` (0..len), for random picks: O(1) but in a
    /// listpack (a walk of at most 128 members, as Redis's).
    pub fn nth(&self, i: usize) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Ints(s) => s.get(i).map(Member::int),
            Repr::Packed { pack, len } => pack.get(i, *len).map(Member::Bytes),
            Repr::Table(t) => t.nth(i).map(|(m, _)| Member::Bytes(m)),
        }
    }

    /// Removes the member at index `i` (< len).
    fn remove_nth(&mut self, i: usize) -> SmallBytes {
        match &mut self.repr {
            Repr::Ints(s) => SmallBytes::new(&Member::int(s.remove_at(i))),
            Repr::Packed { pack, len } => {
                let mut it = pack.range(i, i + 1, *len);
                let at = it.offset();
                let m = SmallBytes::new(it.next().unwrap_or_default());
                let end = it.offset();
                pack.splice(at, end - at, None);
                *len -= 1;
                m
            }
            Repr::Table(t) => t.remove_nth(i).map_or_else(|| SmallBytes::new(b""), |(m, _)| m),
        }
    }

    /// Removes and returns `n` members chosen at random (all when `n` is
    /// at least the size), in random order: O(n) in a table, whatever its
    /// size.
    pub fn pop_random(&mut self, n: usize, rng: &mut impl rand::Rng) -> Vec<SmallBytes> {
        if n >= self.len() {
            let all = self.iter().map(|m| SmallBytes::new(&m)).collect();
            // Empty, in the same encoding (a set never goes back).
            self.repr = match &self.repr {
                Repr::Ints(_) => Repr::Ints(IntSet::default()),
                Repr::Packed { .. } => Repr::Packed { pack: Pack::default(), len: 0 },
                Repr::Table(_) => Repr::Table(Box::default()),
            };
            return all;
        }
        (0..n).map(|_| self.remove_nth(rng.random_range(0..self.len()))).collect()
    }

    /// One SSCAN step from `cursor` visiting about `count` members; returns
    /// the next cursor (0 when done). The small encodings are returned
    /// whole, with cursor 0, whatever the cursor (as Redis does).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match &self.repr {
            Repr::Table(t) => t.scan(cursor, count, |m, _| f(m)),
            _ => {
                self.iter().for_each(|m| f(&m));
                0
            }
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Packed { .. } => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.heap_size(),
            Repr::Packed { pack, .. } => pack.heap_size(),
            Repr::Table(t) => std::mem::size_of::<FieldTable<()>>() + t.heap_size(),
        }
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

    /// Random adds, removals, lookups and pops against a std set, through
    /// every encoding (small intset limit, members that are integers or
    /// not, short or over the listpack's 64 bytes).
    #[test]
    fn matches_a_std_set_through_the_encodings() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for round in 0..40 {
            let limits = SetLimits { intset_max: [3, 50, 512][round % 3] };
            let mut s = SetValue::default();
            let mut m: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
            let mut rank = 0;
            for _ in 0..600 {
                let v: Vec<u8> = match rng.random_range(0..10) {
                    0 if round % 4 == 0 => format!("member-{}", rng.random_range(0..200)).into_bytes(),
                    1 if round % 8 == 0 => vec![b'x'; 65 + rng.random_range(0..3)],
                    _ => rng.random_range(-300i64..300).to_string().into_bytes(),
                };
                match rng.random_range(0..10) {
                    0..=5 => assert_eq!(s.add(&v, limits), m.insert(v.clone())),
                    6 | 7 => assert_eq!(s.remove(&v), m.remove(&v)),
                    8 => assert_eq!(s.contains(&v), m.contains(&v)),
                    _ => {
                        for p in s.pop_random(rng.random_range(0..3), &mut rng) {
                            assert!(m.remove(&p[..]), "popped {p:?}, not a member");
                        }
                    }
                }
                let enc = ["intset", "listpack", "hashtable"].iter().position(|e| *e == s.encoding()).unwrap_or(0);
                assert!(enc >= rank, "an encoding went back");
                rank = enc;
                assert_eq!(s.len(), m.len());
            }
            let mut got: Vec<Vec<u8>> = s.iter().map(|x| x.to_vec()).collect();
            got.sort();
            let mut want: Vec<Vec<u8>> = m.into_iter().collect();
            want.sort();
            assert_eq!(got, want);
            let ints: Option<Vec<i64>> = s.ints().map(Iterator::collect);
            if let Some(v) = ints {
                assert!(v.windows(2).all(|w| w[0] < w[1]), "an intset lists in increasing order");
            }
        }
    }

    #[test]
    fn a_set_value_fits_a_48_byte_box() {
        assert!(std::mem::size_of::<SetValue>() <= 48, "{}", std::mem::size_of::<SetValue>());
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
