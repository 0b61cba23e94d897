//! `FieldTable`: the field -> value table behind large hashes, and the
//! member table behind sets (a table of fields with no value).
//!
//! Every field has a 64-bit position (its scan hash). Buckets are indexed by
//! the *top* bits of that position and each bucket's chain is kept sorted by
//! it, so walking the buckets in order visits all fields in increasing
//! position. Growing or shrinking the bucket array only splits or merges
//! neighbouring buckets, which keeps that order; a scan cursor is therefore
//! simply the next position to visit, and it stays valid across inserts,
//! deletes and resizes.
//!
//! Entries live densely in one vector (removal swaps the last entry into the
//! hole), which gives O(1) access by index for random sampling.

use std::marker::PhantomData;

use super::SmallBytes;
use crate::util::{prefetch, prefetch_whole};

/// The position function of a table. Production tables use
/// `ScanPosition`; tests plug in deliberately colliding functions.
pub trait Position {
    fn of(field: &[u8]) -> u64;
}

/// Positions from `HashValue::scan_hash`.
pub struct ScanPosition;

impl Position for ScanPosition {
    #[inline]
    fn of(field: &[u8]) -> u64 {
        super::hash::HashValue::scan_hash(field)
    }
}

/// What a table keeps with each field: a hash's value, or nothing (sets).
pub trait Payload: Clone {
    fn heap_size(&self) -> usize;
}

impl Payload for SmallBytes {
    #[inline]
    fn heap_size(&self) -> usize {
        SmallBytes::heap_size(self)
    }
}

impl Payload for () {
    #[inline]
    fn heap_size(&self) -> usize {
        0
    }
}

const NIL: u32 = u32::MAX;
const MIN_BITS: u32 = 2;

#[derive(Clone)]
struct Node<V> {
    pos: u64,
    next: u32,
    field: SmallBytes,
    value: V,
}

/// Cloning copies every field (COPY makes independent values).
pub struct FieldTable<V: Payload = SmallBytes, P: Position = ScanPosition> {
    /// First node of each bucket's chain (`NIL` when empty); `1 << bits` long.
    heads: Vec<u32>,
    bits: u32,
    nodes: Vec<Node<V>>,
    _pos: PhantomData<P>,
}

impl<V: Payload, P: Position> Clone for FieldTable<V, P> {
    fn clone(&self) -> Self {
        FieldTable { heads: self.heads.clone(), bits: self.bits, nodes: self.nodes.clone(), _pos: PhantomData }
    }
}

impl<V: Payload, P: Position> Default for FieldTable<V, P> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<V: Payload, P: Position> FieldTable<V, P> {
    pub fn with_capacity(n: usize) -> Self {
        let bits = bits_for(n);
        FieldTable { heads: vec![NIL; 1 << bits], bits, nodes: Vec::with_capacity(n), _pos: PhantomData }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    #[inline]
    fn bucket(&self, pos: u64) -> usize {
        (pos >> (64 - self.bits)) as usize
    }

    #[inline]
    fn node(&self, i: u32) -> &Node<V> {
        &self.nodes[i as usize]
    }

    /// Index of the node holding `field`, and of its predecessor in the chain.
    fn find(&self, pos: u64, field: &[u8]) -> Option<(u32, u32)> {
        let mut prev = NIL;
        let mut i = self.heads[self.bucket(pos)];
        while i != NIL {
            let n = self.node(i);
            if n.pos > pos {
                break;
            }
            if n.pos == pos && &*n.field == field {
                return Some((i, prev));
            }
            prev = i;
            i = n.next;
        }
        None
    }

    pub fn get(&self, field: &[u8]) -> Option<&V> {
        let (i, _) = self.find(P::of(field), field)?;
        Some(&self.node(i).value)
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.find(P::of(field), field).is_some()
    }

    /// The first of two steps that prefetch a lookup of `field` (for a
    /// pipelined batch): starts loading its bucket's head and returns the
    /// field's position, for `prefetch_chain`.
    #[inline]
    pub fn prefetch_head(&self, field: &[u8]) -> u64 {
        let pos = P::of(field);
        if let Some(head) = self.heads.get(self.bucket(pos)) {
            prefetch(head);
        }
        pos
    }

    /// The second step: reads the head (loading by now) and starts loading
    /// the first node of the chain, both ends of it.
    #[inline]
    pub fn prefetch_chain(&self, pos: u64) {
        if let Some(n) = self.heads.get(self.bucket(pos)).and_then(|&i| self.nodes.get(i as usize)) {
            prefetch_whole(n);
        }
    }

    /// Sets `field` to `value`; returns true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: V) -> bool {
        let pos = P::of(field);
        let b = self.bucket(pos);
        let mut prev = NIL;
        let mut i = self.heads[b];
        while i != NIL {
            let n = &mut self.nodes[i as usize];
            if n.pos > pos {
                break;
            }
            if n.pos == pos && &*n.field == field {
                n.value = value;
                return false;
            }
            prev = i;
            i = n.next;
        }
        // A hash or set with 2^32 fields would need hundreds of GB; the index
        // type is u32 to keep nodes and buckets small.
        let idx = u32::try_from(self.nodes.len()).ok().filter(|&x| x != NIL).expect("field count fits in u32");
        self.nodes.push(Node { pos, next: i, field: SmallBytes::new(field), value });
        self.link_after(b, prev, idx);
        if self.nodes.len() > self.heads.len() {
            self.rebuild(self.bits + 1);
        }
        true
    }

    #[inline]
    fn link_after(&mut self, bucket: usize, prev: u32, idx: u32) {
        if prev == NIL {
            self.heads[bucket] = idx;
        } else {
            self.nodes[prev as usize].next = idx;
        }
    }

    /// Removes `field`; returns its value if it was present.
    pub fn remove(&mut self, field: &[u8]) -> Option<V> {
        let pos = P::of(field);
        let (i, prev) = self.find(pos, field)?;
        Some(self.unlink(i, prev).1)
    }

    /// Removes the entry at index `i` of the dense entry vector (O(1) but
    /// for its chain: for random pops); returns its field and value.
    pub fn remove_nth(&mut self, i: usize) -> Option<(SmallBytes, V)> {
        let n = self.nodes.get(i)?;
        let (pos, idx) = (n.pos, i as u32);
        let mut prev = NIL;
        let mut j = self.heads[self.bucket(pos)];
        while j != idx {
            prev = j;
            j = self.node(j).next;
        }
        Some(self.unlink(idx, prev))
    }

    /// Unlinks node `i` (whose chain predecessor is `prev`) and takes it
    /// out of the dense vector, moving the last node into its slot.
    fn unlink(&mut self, i: u32, prev: u32) -> (SmallBytes, V) {
        let next = self.node(i).next;
        self.link_after(self.bucket(self.node(i).pos), prev, next);
        let last = (self.nodes.len() - 1) as u32;
        if i != last {
            // The last node moves into slot `i`: repoint whoever links to it.
            let b = self.bucket(self.node(last).pos);
            let mut j = self.heads[b];
            if j == last {
                self.heads[b] = i;
            } else {
                while j != NIL {
                    let n = &mut self.nodes[j as usize];
                    if n.next == last {
                        n.next = i;
                        break;
                    }
                    j = n.next;
                }
            }
        }
        let removed = self.nodes.swap_remove(i as usize);
        self.maybe_shrink();
        (removed.field, removed.value)
    }

    fn maybe_shrink(&mut self) {
        let len = self.nodes.len();
        if self.bits > MIN_BITS && len * 8 < self.heads.len() {
            self.rebuild(bits_for(len));
        }
        if self.nodes.capacity() > 64 && len * 4 < self.nodes.capacity() {
            self.nodes.shrink_to(len * 2);
        }
    }

    /// Re-buckets every node into `1 << bits` buckets. Walking the old
    /// buckets in order yields the nodes in increasing position, so each new
    /// chain is built sorted by appending at its tail.
    fn rebuild(&mut self, bits: u32) {
        let old = std::mem::replace(&mut self.heads, vec![NIL; 1 << bits]);
        self.bits = bits;
        let mut cur = usize::MAX;
        let mut tail = NIL;
        for head in old {
            let mut i = head;
            while i != NIL {
                let n = &mut self.nodes[i as usize];
                let next = n.next;
                n.next = NIL;
                let b = (n.pos >> (64 - bits)) as usize;
                if b == cur {
                    self.nodes[tail as usize].next = i;
                } else {
                    self.heads[b] = i;
                    cur = b;
                }
                tail = i;
                i = next;
            }
        }
    }

    /// The entry at index `i` of the dense entry vector (O(1); for random
    /// sampling).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &V)> {
        self.nodes.get(i).map(|n| (&*n.field, &n.value))
    }

    pub fn iter(&self) -> Iter<'_, V> {
        Iter(self.nodes.iter())
    }

    /// Takes every entry out, leaving the table empty.
    pub fn drain(&mut self) -> impl Iterator<Item = (SmallBytes, V)> + '_ {
        self.heads = vec![NIL; 1 << MIN_BITS];
        self.bits = MIN_BITS;
        std::mem::take(&mut self.nodes).into_iter().map(|n| (n.field, n.value))
    }

    /// Visits fields in increasing position starting at position `cursor`:
    /// at least `count` of them (fewer only at the end), then any further
    /// fields sharing the last visited position, so that a group of equal
    /// positions is never split between calls. Returns the position to
    /// resume from, or 0 when the end was reached.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8], &'a V)) -> u64 {
        let mut visited = 0usize;
        let mut last = None;
        for b in self.bucket(cursor)..self.heads.len() {
            let mut i = self.heads[b];
            while i != NIL {
                let n = self.node(i);
                if n.pos >= cursor {
                    if visited >= count && last != Some(n.pos) {
                        // n.pos > last >= cursor, so this is never 0.
                        return n.pos;
                    }
                    f(&n.field, &n.value);
                    visited += 1;
                    last = Some(n.pos);
                }
                i = n.next;
            }
        }
        0
    }

    pub fn heap_size(&self) -> usize {
        self.heads.capacity() * std::mem::size_of::<u32>()
            + self.nodes.capacity() * std::mem::size_of::<Node<V>>()
            + self.nodes.iter().map(|n| n.field.heap_size() + n.value.heap_size()).sum::<usize>()
    }

    /// Checks the structural invariants (tests only).
    #[cfg(test)]
    pub fn check(&self) {
        assert_eq!(self.heads.len(), 1 << self.bits);
        assert!(self.nodes.len() <= self.heads.len());
        let mut seen = 0;
        let mut prev_pos = None;
        for (b, &head) in self.heads.iter().enumerate() {
            let mut i = head;
            while i != NIL {
                let n = self.node(i);
                assert_eq!(self.bucket(n.pos), b, "node in the wrong bucket");
                assert!(prev_pos.is_none_or(|p| p <= n.pos), "chains out of order");
                prev_pos = Some(n.pos);
                assert_eq!(n.pos, P::of(&n.field));
                seen += 1;
                i = n.next;
            }
        }
        assert_eq!(seen, self.nodes.len(), "every node is linked exactly once");
    }
}

/// Smallest bucket-count exponent giving a load factor of at most 1.
fn bits_for(n: usize) -> u32 {
    n.max(1).next_power_of_two().trailing_zeros().max(MIN_BITS)
}

pub struct Iter<'a, V>(std::slice::Iter<'a, Node<V>>);

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a [u8], &'a V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|n| (&*n.field, &n.value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use rand::{Rng, SeedableRng};

    use super::*;

    /// Only 16 distinct positions, spread over the whole range: long chains
    /// and many equal positions.
    struct Colliding;
    impl Position for Colliding {
        fn of(field: &[u8]) -> u64 {
            let s: u64 = field.iter().map(|&b| b as u64).sum();
            ((s % 16) << 60) | 0x0123_4567
        }
    }

    fn v(x: &[u8]) -> SmallBytes {
        SmallBytes::new(x)
    }

    fn field(i: u64) -> Vec<u8> {
        format!("field:{i}").into_bytes()
    }

    #[test]
    fn prefetch_steps_change_nothing() {
        let mut t = FieldTable::<SmallBytes, ScanPosition>::default();
        assert_eq!(t.prefetch_head(b"x"), ScanPosition::of(b"x"));
        t.prefetch_chain(ScanPosition::of(b"x"));
        for i in 0..100 {
            t.insert(&field(i), v(b"v"));
        }
        for i in 0..200 {
            let pos = t.prefetch_head(&field(i));
            t.prefetch_chain(pos);
            t.prefetch_chain(!pos);
        }
        t.check();
        assert_eq!(t.len(), 100);
    }

    fn basic<P: Position>() {
        let mut t = FieldTable::<SmallBytes, P>::default();
        for i in 0..1000 {
            assert!(t.insert(&field(i), v(format!("v{i}").as_bytes())));
        }
        t.check();
        assert_eq!(t.len(), 1000);
        assert!(!t.insert(&field(7), v(b"new")));
        assert_eq!(t.get(&field(7)).map(|x| &x[..]), Some(&b"new"[..]));
        assert_eq!(t.get(&field(8)).map(|x| &x[..]), Some(&b"v8"[..]));
        assert_eq!(t.get(b"absent"), None);
        for i in (0..1000).step_by(3) {
            assert!(t.remove(&field(i)).is_some());
            assert!(t.remove(&field(i)).is_none());
        }
        t.check();
        assert_eq!(t.len(), 666);
        for i in 0..1000 {
            assert_eq!(t.get(&field(i)).is_some(), i % 3 != 0, "field {i}");
        }
        for i in 0..1000 {
            t.remove(&field(i));
        }
        t.check();
        assert!(t.is_empty());
        assert_eq!(t.bits, MIN_BITS, "shrinks back when emptied");
    }

    #[test]
    fn node_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Node<SmallBytes>>(), 64);
        assert_eq!(std::mem::size_of::<Node<()>>(), 40);
    }

    #[test]
    fn insert_get_remove() {
        basic::<ScanPosition>();
        basic::<Colliding>();
    }

    #[test]
    fn scan_visits_in_position_order_and_keeps_groups_whole() {
        let mut t = FieldTable::<SmallBytes, Colliding>::default();
        for i in 0..200 {
            t.insert(&field(i), v(b"v"));
        }
        let mut cursor = 0;
        let mut seen = Vec::new();
        let mut calls = 0;
        loop {
            let mut batch = Vec::new();
            cursor = t.scan(cursor, 3, |f, _| batch.push(Colliding::of(f)));
            calls += 1;
            assert!(batch.len() >= 3 || cursor == 0);
            if cursor != 0 {
                assert!(batch.iter().all(|&p| p < cursor), "a group was split");
            }
            seen.extend(batch);
            if cursor == 0 || calls > 100 {
                break;
            }
        }
        assert_eq!(cursor, 0);
        assert_eq!(seen.len(), 200);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    }

    /// Random inserts, updates and deletes interleaved with scan steps,
    /// checked against a std `HashMap`: every field present for a whole scan
    /// is returned by it, with its current value, and nothing that was never
    /// there is returned.
    fn scan_under_mutation<P: Position>(seed: u64) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut t = FieldTable::<SmallBytes, P>::default();
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for _ in 0..20 {
            // Fields present when the scan starts, minus those removed later.
            let mut stable: HashMap<Vec<u8>, ()> = model.keys().map(|k| (k.clone(), ())).collect();
            let mut ever: HashMap<Vec<u8>, ()> = stable.clone();
            let mut returned: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
            let mut cursor = 0;
            let mut steps = 0;
            loop {
                for _ in 0..rng.random_range(0..40) {
                    let f = field(rng.random_range(0..3000));
                    if rng.random_bool(0.55) {
                        let v = rng.random_range(0..1000u32).to_string().into_bytes();
                        assert_eq!(t.insert(&f, SmallBytes::new(&v)), model.insert(f.clone(), v).is_none());
                        ever.insert(f, ());
                    } else {
                        assert_eq!(t.remove(&f).map(|v| v.to_vec()), model.remove(&f));
                        stable.remove(&f);
                    }
                }
                let count = rng.random_range(1..50);
                cursor = t.scan(cursor, count, |f, v| {
                    assert_eq!(model.get(f).map(|x| &x[..]), Some(&v[..]), "scan returned a stale value");
                    assert!(ever.contains_key(f), "scan returned a field that never existed");
                    *returned.entry(f.to_vec()).or_default() += 1;
                });
                steps += 1;
                if cursor == 0 {
                    break;
                }
                assert!(steps < 10_000, "scan does not terminate");
            }
            t.check();
            for f in stable.keys() {
                assert!(returned.contains_key(f), "scan missed {:?}", String::from_utf8_lossy(f));
            }
            assert!(returned.values().all(|&n| n == 1), "a field was returned twice");
            assert_eq!(t.len(), model.len());
        }
        for (f, v) in &model {
            assert_eq!(t.get(f).map(|x| &x[..]), Some(&v[..]));
        }
    }

    #[test]
    fn scan_is_complete_under_random_mutation() {
        for seed in 0..8 {
            scan_under_mutation::<ScanPosition>(seed);
            scan_under_mutation::<Colliding>(seed);
        }
    }

    #[test]
    fn positions_spread_evenly_over_buckets() {
        let mut t = FieldTable::<SmallBytes, ScanPosition>::default();
        for i in 0..100_000 {
            t.insert(&field(i), v(b"v"));
        }
        let chain = |head: u32| {
            let (mut n, mut i) = (0, head);
            while i != NIL {
                n += 1;
                i = t.node(i).next;
            }
            n
        };
        let longest = t.heads.iter().map(|&h| chain(h)).max().unwrap_or(0);
        assert!(longest <= 16, "longest chain {longest}");
    }

    #[test]
    fn nth_covers_every_entry() {
        let mut t = FieldTable::<SmallBytes, ScanPosition>::with_capacity(10);
        for i in 0..50 {
            t.insert(&field(i), v(b"v"));
        }
        t.remove(&field(3));
        let mut all: Vec<Vec<u8>> = (0..t.len()).filter_map(|i| t.nth(i).map(|(f, _)| f.to_vec())).collect();
        all.sort();
        let mut want: Vec<Vec<u8>> = (0..50).filter(|&i| i != 3).map(field).collect();
        want.sort();
        assert_eq!(all, want);
        assert!(t.nth(49).is_none());
        assert_eq!(t.iter().len(), 49);
    }
}
