//! The hash type: fields and values packed alternately in one buffer while
//! small (`Pairs`, Redis's `listpack` encoding, same thresholds, about the
//! same bytes), converted once to a `FieldTable` when it grows
//! past `hash-max-listpack-entries` or is given a field or value longer than
//! `hash-max-listpack-value`. Also owns the stable per-field scan position
//! that HSCAN cursors are made of.

use std::hash::BuildHasher;
use std::sync::LazyLock;

use foldhash::fast::FixedState;

use super::field_table::{self, FieldTable};
use super::pack::{self, Pack};
use super::SmallBytes;

#[derive(Clone)]
pub enum HashValue {
    Pairs(Pairs),
    /// Boxed: most hashes are small, and the value's box is then 16 bytes
    /// smaller.
    Table(Box<FieldTable>),
}

/// The compact encoding: field, value, field, value... in one `Pack`,
/// found by a linear scan (at most `hash-max-listpack-entries` pairs, as
/// Redis scans its listpack).
#[derive(Clone, Default)]
pub struct Pairs {
    pack: Pack,
    len: usize,
}

impl Pairs {
    /// Where `field`'s pair is (byte offsets of the field's entry, the
    /// value's and the end of the value's), and its value.
    fn find(&self, field: &[u8]) -> Option<([usize; 3], &[u8])> {
        let mut it = self.pack.iter();
        loop {
            let at = it.offset();
            let f = it.next()?;
            let value_at = it.offset();
            let v = it.next()?;
            if f == field {
                return Some(([at, value_at, it.offset()], v));
            }
        }
    }

    /// Sets a field; true when it is new.
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find(field) {
            Some(([_, at, end], _)) => {
                self.pack.splice(at, end - at, Some(value));
                false
            }
            None => {
                self.pack.push_back_exact(field);
                self.pack.push_back_exact(value);
                self.len += 1;
                true
            }
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some(([at, _, end], _)) = self.find(field) else { return false };
        self.pack.splice(at, end - at, None);
        self.len -= 1;
        true
    }

    /// Pair `i`, found from the nearer end.
    fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        if i >= self.len {
            return None;
        }
        let mut it = self.pack.range(2 * i, 2 * i + 2, 2 * self.len);
        Some((it.next()?, it.next()?))
    }

    pub fn iter(&self) -> PairIter<'_> {
        PairIter { it: self.pack.iter(), left: self.len }
    }
}

/// The pairs of the compact encoding, in order.
pub struct PairIter<'a> {
    it: pack::Iter<'a>,
    left: usize,
}

impl<'a> Iterator for PairIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let f = self.it.next()?;
        let v = self.it.next()?;
        self.left -= 1;
        Some((f, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PairIter<'_> {}

/// Conversion thresholds (from CONFIG).
#[derive(Clone, Copy, Debug)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits { max_entries: 128, max_value: 64 }
    }
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Pairs(Pairs::default())
    }
}

/// Seed of the scan positions: random per process (so clients cannot aim
/// fields at one bucket), fixed for its lifetime (so cursors keep meaning).
static SCAN_STATE: LazyLock<FixedState> = LazyLock::new(|| FixedState::with_seed(rand::random()));

impl HashValue {
    /// An empty hash about to receive `pairs` field/value pairs: created
    /// directly as a table when they cannot all fit the compact encoding.
    pub fn with_capacity(pairs: usize, limits: HashLimits) -> Self {
        if pairs > limits.max_entries {
            HashValue::Table(Box::new(FieldTable::with_capacity(pairs)))
        } else {
            HashValue::Pairs(Pairs::default())
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HashValue::Pairs(p) => p.len,
            HashValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Pairs(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    /// Starts loading where a table keeps `field` (`FieldTable::
    /// prefetch_head`); `None` for the compact encoding, one allocation.
    #[inline]
    pub fn prefetch_head(&self, field: &[u8]) -> Option<u64> {
        match self {
            HashValue::Pairs(_) => None,
            HashValue::Table(t) => Some(t.prefetch_head(field)),
        }
    }

    /// The second step of `prefetch_head`.
    #[inline]
    pub fn prefetch_chain(&self, pos: u64) {
        if let HashValue::Table(t) = self {
            t.prefetch_chain(pos);
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Pairs(p) => p.find(field).map(|(_, v)| v),
            HashValue::Table(t) => t.get(field).map(|v| &**v),
        }
    }

    /// Prepares for a write of `pairs` pairs whose longest field or value is
    /// `longest` bytes: converts to a table up front when the compact
    /// encoding could not hold them (a hint; `set` enforces the limits too).
    pub fn reserve(&mut self, pairs: usize, longest: usize, limits: HashLimits) {
        if let HashValue::Pairs(p) = self {
            if pairs > limits.max_entries || longest > limits.max_value {
                let n = p.len + pairs;
                self.convert(n);
            }
        }
    }

    /// Sets a field; returns true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        if let HashValue::Pairs(p) = self {
            if field.len() <= limits.max_value && value.len() <= limits.max_value {
                let new = p.set(field, value);
                if p.len > limits.max_entries {
                    let n = p.len;
                    self.convert(n);
                }
                return new;
            }
            let n = p.len + 1;
            self.convert(n);
        }
        match self {
            HashValue::Table(t) => t.insert(field, SmallBytes::new(value)),
            HashValue::Pairs(_) => unreachable!("converted above"),
        }
    }

    /// Converts the compact encoding to a table sized for `capacity` fields.
    fn convert(&mut self, capacity: usize) {
        if let HashValue::Pairs(p) = self {
            let mut t = FieldTable::with_capacity(capacity.max(p.len));
            for (f, x) in p.iter() {
                t.insert(f, SmallBytes::new(x));
            }
            *self = HashValue::Table(Box::new(t));
        }
    }

    /// Removes a field; returns true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Pairs(p) => p.remove(field),
            HashValue::Table(t) => t.remove(field).is_some(),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        match self {
            HashValue::Pairs(p) => Iter::Pairs(p.iter()),
            HashValue::Table(t) => Iter::Table(t.iter()),
        }
    }

    /// The pair at index `i` (0..len), for random picks: O(1) in a table,
    /// a walk of at most `hash-max-listpack-entries` pairs when compact.
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self {
            HashValue::Pairs(p) => p.nth(i),
            HashValue::Table(t) => t.nth(i).map(|(f, v)| (f, &**v)),
        }
    }

    /// One HSCAN step from `cursor` visiting about `count` fields; returns
    /// the next cursor (0 when done). The compact encoding is small enough
    /// to return whole, with cursor 0, whatever the cursor (as Redis does).
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8], &'a [u8])) -> u64 {
        match self {
            HashValue::Pairs(p) => {
                p.iter().for_each(|(k, x)| f(k, x));
                0
            }
            HashValue::Table(t) => t.scan(cursor, count, |k, v| f(k, v)),
        }
    }

    /// A stable 64-bit position for `field` used by HSCAN cursors: fields are
    /// visited in order of this hash, so a cursor survives inserts, deletes
    /// and table growth without skipping fields that existed throughout.
    #[inline]
    pub fn scan_hash(field: &[u8]) -> u64 {
        SCAN_STATE.hash_one(field)
    }

    pub fn heap_size(&self) -> usize {
        match self {
            HashValue::Pairs(p) => p.pack.heap_size(),
            HashValue::Table(t) => std::mem::size_of::<FieldTable>() + t.heap_size(),
        }
    }
}

/// Iterator over (field, value) pairs in storage order.
pub enum Iter<'a> {
    Pairs(PairIter<'a>),
    Table(field_table::Iter<'a, SmallBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Pairs(i) => i.next(),
            Iter::Table(i) => i.next().map(|(f, v)| (f, &**v)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Pairs(i) => i.size_hint(),
            Iter::Table(i) => i.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn converts_past_thresholds() {
        let limits = HashLimits { max_entries: 4, max_value: 8 };
        let mut h = HashValue::default();
        for i in 0..4 {
            assert!(h.set(format!("f{i}").as_bytes(), b"v", limits));
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(!h.set(b"f0", b"v2", limits));
        assert_eq!(h.encoding(), "listpack", "updates within limits keep the encoding");
        assert!(h.set(b"f4", b"v", limits));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
        assert_eq!(h.get(b"f0"), Some(&b"v2"[..]));
        for i in 1..5 {
            assert_eq!(h.get(format!("f{i}").as_bytes()), Some(&b"v"[..]));
        }

        // A value over the limit, new field or update.
        let mut h = HashValue::default();
        h.set(b"a", b"short", limits);
        h.set(b"a", b"much longer than eight", limits);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"much longer than eight"[..]));
        assert!(h.remove(b"a"));
        assert!(h.is_empty());

        // A field name over the limit; exactly at the limit stays compact.
        let mut h = HashValue::default();
        h.set(b"12345678", b"12345678", limits);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"123456789", b"v", limits);
        assert_eq!(h.encoding(), "hashtable");

        // Limits lowered after creation apply on the next write.
        let mut h = HashValue::default();
        for i in 0..4 {
            h.set(format!("f{i}").as_bytes(), b"v", limits);
        }
        h.set(b"f0", b"v", HashLimits { max_entries: 2, max_value: 8 });
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 4);
    }

    /// The compact encoding against an ordered model: updates in place,
    /// removals keep the order (as a listpack does), values of every size.
    #[test]
    fn pairs_match_an_ordered_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut p = Pairs::default();
        let mut m: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for _ in 0..5000 {
            let f = format!("f{}", rng.random_range(0..40)).into_bytes();
            let v = vec![b'v'; rng.random_range(0..200)];
            if rng.random_bool(0.6) {
                let new = match m.iter_mut().find(|(k, _)| *k == f) {
                    Some(e) => {
                        e.1 = v.clone();
                        false
                    }
                    None => {
                        m.push((f.clone(), v.clone()));
                        true
                    }
                };
                assert_eq!(p.set(&f, &v), new);
            } else {
                let at = m.iter().position(|(k, _)| *k == f);
                if let Some(i) = at {
                    m.remove(i);
                }
                assert_eq!(p.remove(&f), at.is_some());
            }
            assert!(p.iter().eq(m.iter().map(|(f, v)| (&f[..], &v[..]))));
            assert_eq!(p.iter().len(), m.len());
            let i = rng.random_range(0..m.len() + 1);
            assert_eq!(p.nth(i), m.get(i).map(|(f, v)| (&f[..], &v[..])));
        }
    }

    #[test]
    fn a_hash_value_fits_a_48_byte_box() {
        assert!(std::mem::size_of::<HashValue>() <= 48, "{}", std::mem::size_of::<HashValue>());
    }

    #[test]
    fn reserve_converts_up_front() {
        let limits = HashLimits { max_entries: 4, max_value: 8 };
        let mut h = HashValue::default();
        h.reserve(2, 3, limits);
        assert_eq!(h.encoding(), "listpack");
        h.reserve(5, 3, limits);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = HashValue::default();
        h.set(b"a", b"1", limits);
        h.reserve(1, 9, limits);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"1"[..]));
        assert_eq!(HashValue::with_capacity(5, limits).encoding(), "hashtable");
        assert_eq!(HashValue::with_capacity(4, limits).encoding(), "listpack");
    }

    #[test]
    fn zero_limits_always_use_a_table() {
        let limits = HashLimits { max_entries: 0, max_value: 64 };
        let mut h = HashValue::default();
        h.set(b"f", b"v", limits);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn iteration_and_nth_agree() {
        for n in [3usize, 300] {
            let mut h = HashValue::default();
            for i in 0..n {
                h.set(format!("f{i}").as_bytes(), format!("v{i}").as_bytes(), HashLimits::default());
            }
            let by_iter: Vec<_> = h.iter().collect();
            let by_nth: Vec<_> = (0..h.len()).filter_map(|i| h.nth(i)).collect();
            assert_eq!(by_iter, by_nth);
            assert_eq!(h.iter().len(), n);
            assert!(h.nth(n).is_none());
        }
    }

    #[test]
    fn compact_scan_returns_everything_at_once() {
        let mut h = HashValue::default();
        for i in 0..10 {
            h.set(format!("f{i}").as_bytes(), b"v", HashLimits::default());
        }
        let mut n = 0;
        assert_eq!(h.scan(12345, 2, |_, _| n += 1), 0);
        assert_eq!(n, 10);
    }

    /// The property test of `field_table` at the `HashValue` level, across
    /// the conversion: random writes and deletes between HSCAN steps, checked
    /// against a std `HashMap`.
    #[test]
    fn scan_survives_mutation_and_conversion() {
        let limits = HashLimits { max_entries: 16, max_value: 64 };
        for seed in 0..10 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut h = HashValue::default();
            let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            for _ in 0..15 {
                let mut stable: Vec<Vec<u8>> = model.keys().cloned().collect();
                let mut returned: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
                let mut cursor = 0;
                for step in 0.. {
                    assert!(step < 5000, "scan does not terminate");
                    for _ in 0..rng.random_range(0..30) {
                        let f = format!("k{}", rng.random_range(0..800)).into_bytes();
                        if rng.random_bool(0.6) {
                            let v = format!("{}", rng.random::<u16>()).into_bytes();
                            assert_eq!(h.set(&f, &v, limits), model.insert(f, v).is_none());
                        } else {
                            assert_eq!(h.remove(&f), model.remove(&f).is_some());
                            stable.retain(|x| *x != f);
                        }
                    }
                    cursor = h.scan(cursor, rng.random_range(1..20), |f, v| {
                        returned.insert(f.to_vec(), v.to_vec());
                    });
                    if cursor == 0 {
                        break;
                    }
                }
                for f in &stable {
                    assert!(returned.contains_key(f), "seed {seed}: missed {:?}", String::from_utf8_lossy(f));
                }
                assert_eq!(h.len(), model.len());
            }
            for (f, v) in &model {
                assert_eq!(h.get(f), Some(&v[..]));
            }
        }
    }

    #[test]
    fn scan_hash_is_stable() {
        assert_eq!(HashValue::scan_hash(b"field"), HashValue::scan_hash(b"field"));
        assert_ne!(HashValue::scan_hash(b"field"), HashValue::scan_hash(b"field2"));
    }
}
