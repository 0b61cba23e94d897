//! The list type. A list keeps the `list-max-listpack-size` (its fill) and
//! `list-compress-depth` it was made with, as each Redis quicklist does,
//! and is laid out as Redis's quicklist (`quick`): nodes of a listpack's
//! worth of elements packed in one buffer each (`pack`), the middle ones
//! LZF-compressed when the depth is above 0.
//!
//! The fill also decides the nodes a snapshot writes the list in and what
//! OBJECT ENCODING reports: `listpack` while the whole list fits one node,
//! `quicklist` beyond (Redis 7.2's names).

mod quick;

use std::borrow::Cow;

use self::quick::{NodeItems, Quick};
use super::pack::Pack;
use super::SmallBytes;

/// A listpack's header and end byte.
const LISTPACK_HEADER: usize = 7;

/// The bytes an element of `len` bytes takes in a listpack (as a string:
/// its encoding header, the bytes and the back-length), as Redis's
/// quicklist estimates it.
pub fn entry_bytes(len: usize) -> usize {
    let header = if len < 64 {
        1
    } else if len < 4096 {
        2
    } else {
        5
    };
    let back = match header + len {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    header + len + back
}

/// `list-max-listpack-size`: positive, the most elements of a node (and at
/// most 8 KB of them); -1 to -5, the most bytes (4, 8, 16, 32 or 64 KB).
/// Clamped as Redis clamps it (`quicklistSetFill`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill(pub i32);

impl Fill {
    pub fn new(v: i64) -> Fill {
        Fill(v.clamp(-5, 1 << 15) as i32)
    }

    /// Whether a node of `count` elements may grow to `bytes` by one more
    /// (Redis's `_quicklistNodeAllowInsert`).
    pub fn allows(self, count: usize, bytes: usize) -> bool {
        const LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
        if self.0 < 0 {
            return bytes <= LEVELS[(-self.0 - 1) as usize];
        }
        bytes <= 8192 && count < self.0 as usize
    }
}

/// How new lists are made: `list-max-listpack-size` and
/// `list-compress-depth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListShape {
    pub fill: Fill,
    pub depth: usize,
}

impl Default for ListShape {
    fn default() -> Self {
        ListShape { fill: Fill(-2), depth: 0 }
    }
}

impl ListShape {
    /// Redis keeps a depth of at most 2^16 - 1.
    pub fn new(fill: i64, depth: u64) -> ListShape {
        ListShape { fill: Fill::new(fill), depth: depth.min(u16::MAX as u64) as usize }
    }
}

#[derive(Clone)]
pub struct ListValue {
    q: Quick,
}

impl Default for ListValue {
    fn default() -> Self {
        ListValue::new(ListShape::default())
    }
}

impl ListValue {
    pub fn new(shape: ListShape) -> ListValue {
        ListValue { q: Quick::new(shape.fill, shape.depth) }
    }

    /// Its quicklist nodes (one allocation each).
    pub fn nodes(&self) -> usize {
        self.q.node_count()
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn fill(&self) -> Fill {
        self.q.fill()
    }

    pub fn push(&mut self, left: bool, v: &[u8]) {
        self.q.push(left, v)
    }

    pub fn pop(&mut self, left: bool) -> Option<SmallBytes> {
        self.q.pop(left)
    }

    pub fn get(&self, i: usize) -> Option<Cow<'_, [u8]>> {
        self.q.get(i)
    }

    pub fn set(&mut self, i: usize, v: &[u8]) -> bool {
        self.q.set(i, v)
    }

    /// Every element, front to back (or back to front with `rev`).
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len().saturating_sub(1))
    }

    /// Elements `start..=end` (`end < len`; empty if `start > end`).
    pub fn range(&self, start: usize, end: usize) -> Iter<'_> {
        let q = &self.q;
        let left = if start <= end && end < self.len() { end - start + 1 } else { 0 };
        let mut front = Cursor::default();
        if left > 0 {
            let (fk, fo) = q.locate(start);
            front = Cursor { node: fk, items: Some(q.node_range(fk, fo, q.node_len(fk))) };
        }
        Iter { q, front, back: None, end, left }
    }

    /// Inserts `v` before element `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, v: &[u8]) {
        self.q.insert(i, v)
    }

    /// Removes up to `limit` elements equal to `want`, the first ones from
    /// the head (or from the tail), in one pass; how many it removed.
    pub fn remove_matching(&mut self, want: &[u8], limit: usize, from_tail: bool) -> usize {
        self.q.remove_matching(want, limit, from_tail)
    }

    /// Keeps elements `start..=end` (already clamped), drops the rest.
    pub fn keep(&mut self, start: usize, end: usize) {
        let len = self.len();
        if start > end || start >= len {
            *self = ListValue::new(ListShape { fill: self.fill(), depth: self.q.depth() });
            return;
        }
        self.q.keep(start, end.min(len - 1));
    }

    /// `listpack` while the whole list fits one node under its fill.
    pub fn encoding(&self) -> &'static str {
        let n = self.len();
        // Each element takes at least 2 bytes, and no fill allows more
        // than 64 KB or 2^15 elements.
        let one_node = n <= 1 << 15 && LISTPACK_HEADER + 2 * n <= 65536 && {
            let mut bytes = LISTPACK_HEADER;
            let mut count = 0;
            self.iter().all(|e| {
                bytes += entry_bytes(e.len());
                count += 1;
                count == 1 || self.fill().allows(count - 1, bytes)
            })
        };
        if one_node {
            "listpack"
        } else {
            "quicklist"
        }
    }

    pub fn heap_size(&self) -> usize {
        self.q.heap_size()
    }
}

/// Removes up to `limit` elements equal to `want` from the `count`
/// elements of `items`, the first ones from the head (or the tail), in one
/// pass; how many it removed.
fn remove_matches(items: &mut Pack, count: usize, want: &[u8], limit: usize, from_tail: bool) -> usize {
    // The index of the last match that goes (from the head: matches after
    // it stay; from the tail: matches before it stay); none when fewer than
    // `limit` match.
    let mut seen = 0;
    let mut last = |e: &[u8]| {
        seen += usize::from(e == want);
        seen == limit
    };
    let cut = if from_tail { items.iter().rev().position(&mut last).map(|p| count - 1 - p) } else { items.iter().position(&mut last) };
    let mut removed = 0;
    items.retain(|i, e| {
        let keep = e != want
            || match (cut, from_tail) {
                (None, _) => false,
                (Some(c), false) => i > c,
                (Some(c), true) => i < c,
            };
        removed += usize::from(!keep);
        keep
    });
    debug_assert!(removed <= count);
    removed
}

#[derive(Default)]
struct Cursor<'a> {
    node: usize,
    items: Option<NodeItems<'a>>,
}

/// A list's elements in order, borrowed where they are held as they are
/// and copied out of compressed nodes.
pub struct Iter<'a> {
    q: &'a Quick,
    front: Cursor<'a>,
    /// Placed at `end` by the first `next_back` (most reads never ask).
    back: Option<Cursor<'a>>,
    end: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, [u8]>;

    fn next(&mut self) -> Option<Cow<'a, [u8]>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        loop {
            if let Some(e) = self.front.items.as_mut().and_then(Iterator::next) {
                return Some(e);
            }
            self.front.node += 1;
            self.front.items = Some(self.q.node_items(self.front.node));
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let q = self.q;
        let back = self.back.get_or_insert_with(|| {
            let (k, off) = q.locate(self.end);
            Cursor { node: k, items: Some(q.node_range(k, 0, off + 1)) }
        });
        loop {
            if let Some(e) = back.items.as_mut().and_then(DoubleEndedIterator::next_back) {
                return Some(e);
            }
            back.node -= 1;
            back.items = Some(q.node_items(back.node));
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deque_operations() {
        let mut l = ListValue::default();
        for (left, v) in [(false, "b"), (true, "a"), (false, "c")] {
            l.push(left, v.as_bytes());
        }
        let all: Vec<Vec<u8>> = l.iter().map(|e| e.to_vec()).collect();
        assert_eq!(all, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(l.encoding(), "listpack");
        l.keep(1, 1);
        assert_eq!(l.len(), 1);
        assert_eq!(&l.get(0).unwrap()[..], b"b");
        l.keep(5, 9);
        assert!(l.is_empty());
    }

    #[test]
    fn remove_matching_takes_the_first_from_either_end() {
        let mut l = ListValue::default();
        for v in ["a", "b", "a", "c", "a", "b", "a"] {
            l.push(false, v.as_bytes());
        }
        let all = |l: &ListValue| l.iter().map(|e| String::from_utf8_lossy(&e).into_owned()).collect::<Vec<_>>().concat();
        assert_eq!(l.remove_matching(b"a", 2, false), 2);
        assert_eq!(all(&l), "bcaba");
        assert_eq!(l.remove_matching(b"a", 1, true), 1);
        assert_eq!(all(&l), "bcab");
        assert_eq!(l.remove_matching(b"b", usize::MAX, false), 2);
        assert_eq!(all(&l), "ca");
        assert_eq!(l.remove_matching(b"z", 1, false), 0);
    }

    #[test]
    fn the_encoding_follows_the_fill() {
        let mut l = ListValue::new(ListShape::new(4, 0));
        for _ in 0..4 {
            l.push(false, b"x");
        }
        assert_eq!(l.encoding(), "listpack");
        l.push(false, b"x");
        assert_eq!(l.encoding(), "quicklist");
        // -2: 8 KB of listpack.
        let mut l = ListValue::default();
        l.push(false, &[b'x'; 8000]);
        assert_eq!(l.encoding(), "listpack");
        l.push(false, &[b'x'; 200]);
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(Fill::new(-9), Fill(-5));
        assert_eq!(Fill::new(1 << 20), Fill(1 << 15));
    }

    /// Ranges and reverse iteration agree between the two layouts.
    #[test]
    fn both_layouts_read_alike() {
        let mut flat = ListValue::new(ListShape::new(3, 0));
        let mut quick = ListValue::new(ListShape::new(3, 1));
        for i in 0..100 {
            let v = format!("element-{i}-{}", "z".repeat(i % 70));
            flat.push(i % 3 == 0, v.as_bytes());
            quick.push(i % 3 == 0, v.as_bytes());
        }
        for (a, b) in [(0, 99), (5, 5), (10, 47), (98, 99), (3, 2)] {
            let f: Vec<Vec<u8>> = flat.range(a, b).map(|e| e.to_vec()).collect();
            let q: Vec<Vec<u8>> = quick.range(a, b).map(|e| e.to_vec()).collect();
            assert_eq!(f, q, "range {a}..={b}");
            let f: Vec<Vec<u8>> = flat.range(a, b).rev().map(|e| e.to_vec()).collect();
            let q: Vec<Vec<u8>> = quick.range(a, b).rev().map(|e| e.to_vec()).collect();
            assert_eq!(f, q, "reversed range {a}..={b}");
            assert_eq!(quick.range(a, b).len(), f.len());
        }
        let mut it = quick.iter();
        let (first, last) = (it.next().map(|e| e.to_vec()), it.next_back().map(|e| e.to_vec()));
        assert_eq!(first, flat.get(0).map(|e| e.to_vec()));
        assert_eq!(last, flat.get(99).map(|e| e.to_vec()));
        assert_eq!(it.count(), 98);
        assert_eq!(quick.encoding(), "quicklist");
    }
}
