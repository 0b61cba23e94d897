//! `Pack`: a sequence of byte strings packed in a single buffer, as a Redis
//! listpack packs them, so an element costs its bytes and two small length
//! headers instead of a slot and, past 22 bytes, an allocation of its own.
//! A list's quicklist nodes hold their elements in one each, a small hash
//! its fields and values (alternating).
//!
//! Each entry is its length as a LEB128 varint, the bytes, then the same
//! varint bytes in reverse order, so the buffer reads from either end. The
//! buffer keeps a gap at the front for pushes at the head; a list node no
//! longer at an end of its list is shrunk to its bytes (`shrink`).

use crate::types::SmallBytes;

/// Up to this many bytes a buffer grows by exactly what it needs.
const SMALL: usize = 256;

#[derive(Clone, Default)]
pub struct Pack {
    /// Entries live in `buf[start..]`; `buf[..start]` is the front gap.
    buf: Vec<u8>,
    start: usize,
}

/// Bytes of the LEB128 varint of `n`.
fn varint_len(n: usize) -> usize {
    varint_size(n as u64)
}

/// Bytes one entry of `len` bytes takes.
pub fn entry_size(len: usize) -> usize {
    len + 2 * varint_len(len)
}

/// Writes one entry into `out` (exactly `entry_size(e.len())` bytes).
pub fn write_entry(out: &mut [u8], e: &[u8]) {
    let h = write_frame(out, e.len());
    out[h..h + e.len()].copy_from_slice(e);
}

/// Writes the length headers of an entry of `len` bytes at both ends of
/// `out` (exactly `entry_size(len)` bytes); where its bytes go.
fn write_frame(out: &mut [u8], len: usize) -> usize {
    let h = varint_len(len);
    let mut n = len;
    for i in 0..h {
        let b = (n & 0x7f) as u8 | if i + 1 < h { 0x80 } else { 0 };
        out[i] = b;
        out[out.len() - 1 - i] = b;
        n >>= 7;
    }
    h
}

/// Bytes of the LEB128 varint of `n` (`put_varint`).
pub fn varint_size(n: u64) -> usize {
    let bits = u64::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Writes `n` as a LEB128 varint at the start of `out`; bytes written.
pub fn put_varint(out: &mut [u8], mut n: u64) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n & 0x7f) as u8 | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// The LEB128 varint at the start of `data` (as `put_varint` wrote it) and
/// its size; (0, len) for bytes that end inside one.
pub fn get_varint(data: &[u8]) -> (u64, usize) {
    let mut n = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        n |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return (n, i + 1);
        }
    }
    (0, data.len())
}

/// The entry starting at `at` in `data`: (its bytes' range, where the next
/// entry starts).
#[inline]
fn entry_at(data: &[u8], at: usize) -> (std::ops::Range<usize>, usize) {
    let (mut len, mut shift, mut i) = (0usize, 0, at);
    loop {
        let b = data[i];
        len |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let h = i - at;
    (i..i + len, i + len + h)
}

/// Byte offset in `data` of entry `i` of its `count`, walking from the
/// nearer end; `i == count` is the end.
fn offset(data: &[u8], i: usize, count: usize) -> usize {
    if i <= count / 2 {
        (0..i).fold(0, |at, _| entry_at(data, at).1)
    } else {
        (i..count).fold(data.len(), |end, _| entry_before(data, end).1)
    }
}

/// The entry ending at `end` in `data`: (its bytes' range, where it starts).
#[inline]
fn entry_before(data: &[u8], end: usize) -> (std::ops::Range<usize>, usize) {
    let (mut len, mut shift, mut i) = (0usize, 0, end);
    loop {
        i -= 1;
        let b = data[i];
        len |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let h = end - i;
    (i - len..i, i - len - h)
}

impl Pack {
    /// A node's packed bytes as `bytes` returned them (LZF-expanded).
    pub fn from_bytes(buf: Vec<u8>) -> Pack {
        Pack { buf, start: 0 }
    }

    /// The packed entries (what a compressed node compresses).
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    pub fn iter(&self) -> Iter<'_> {
        entries(self.bytes())
    }

    /// Entries `from..to` of the `count` entries.
    pub fn range(&self, from: usize, to: usize, count: usize) -> Iter<'_> {
        let data = self.bytes();
        Iter { data, front: offset(data, from, count), back: offset(data, to, count) }
    }

    fn offset(&self, i: usize, count: usize) -> usize {
        offset(self.bytes(), i, count)
    }

    pub fn get(&self, i: usize, count: usize) -> Option<&[u8]> {
        (i < count).then(|| {
            let data = self.bytes();
            &data[entry_at(data, self.offset(i, count)).0]
        })
    }

    pub fn push_back(&mut self, e: &[u8]) {
        self.push_back_with(e.len(), |out| out.copy_from_slice(e));
    }

    /// Appends an entry of `len` bytes that `fill` writes in place.
    pub fn push_back_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) {
        let n = entry_size(len);
        let at = self.buf.len();
        if at + n <= SMALL {
            // A small buffer (most lists are) grows to fit: the allocator's
            // size classes leave it little room to waste.
            self.buf.reserve_exact(n);
        }
        self.buf.resize(at + n, 0);
        let h = write_frame(&mut self.buf[at..], len);
        fill(&mut self.buf[at + h..at + h + len]);
    }

    /// `push_back` growing the buffer by exactly the entry whatever its
    /// size (a hash's or set's buffer, at most a few KB, has no spare
    /// room; the allocator's size classes make most growths in place).
    pub fn push_back_exact(&mut self, e: &[u8]) {
        self.buf.reserve_exact(entry_size(e.len()));
        self.push_back(e);
    }

    pub fn push_front(&mut self, e: &[u8]) {
        let n = entry_size(e.len());
        if self.start < n {
            // Regrow with a gap in proportion to the data, so that a run
            // of pushes at the head moves the bytes O(log n) times.
            let len = self.buf.len() - self.start;
            let gap = n + (len / 2).max(16);
            let mut buf = Vec::with_capacity(gap + len);
            buf.resize(gap, 0);
            buf.extend_from_slice(self.bytes());
            self.buf = buf;
            self.start = gap;
        }
        self.start -= n;
        write_entry(&mut self.buf[self.start..self.start + n], e);
    }

    pub fn pop_front(&mut self) -> Option<SmallBytes> {
        if self.is_empty() {
            return None;
        }
        let data = self.bytes();
        let (r, next) = entry_at(data, 0);
        let v = SmallBytes::new(&data[r]);
        self.start += next;
        self.reset_if_empty();
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<SmallBytes> {
        if self.is_empty() {
            return None;
        }
        let data = self.bytes();
        let (r, begin) = entry_before(data, data.len());
        let v = SmallBytes::new(&data[r]);
        self.buf.truncate(self.start + begin);
        self.reset_if_empty();
        Some(v)
    }

    /// An emptied buffer forgets its front gap.
    fn reset_if_empty(&mut self) {
        if self.is_empty() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Replaces `remove` bytes at byte offset `at` of the entries (as
    /// `Iter::offset` gives them) with `entry` written as one entry
    /// (none for `None`); in place when the sizes match.
    pub fn splice(&mut self, at: usize, remove: usize, entry: Option<&[u8]>) {
        let at = self.start + at;
        let add = entry.map_or(0, |e| entry_size(e.len()));
        if let (Some(e), true) = (entry, add == remove) {
            write_entry(&mut self.buf[at..at + add], e);
            return;
        }
        let mut bytes = vec![0; add];
        if let Some(e) = entry {
            write_entry(&mut bytes, e);
        }
        self.buf.splice(at..at + remove, bytes);
    }

    /// Sets entry `i` (< count) to `e`.
    pub fn set(&mut self, i: usize, count: usize, e: &[u8]) {
        let at = self.offset(i, count);
        let next = entry_at(self.bytes(), at).1;
        self.splice(at, next - at, Some(e));
    }

    /// Inserts `e` before entry `i` (`i == count` appends).
    pub fn insert(&mut self, i: usize, count: usize, e: &[u8]) {
        let at = self.offset(i, count);
        self.splice(at, 0, Some(e));
    }

    /// Removes entry `i` (< count).
    #[cfg(test)]
    pub fn remove(&mut self, i: usize, count: usize) {
        let at = self.offset(i, count);
        let next = entry_at(self.bytes(), at).1;
        self.splice(at, next - at, None);
    }

    /// Drops the first `n` entries.
    pub fn drop_front(&mut self, n: usize) {
        let data = self.bytes();
        let cut = (0..n).fold(0, |at, _| entry_at(data, at).1);
        self.start += cut;
    }

    /// Keeps the first `n` of `count` entries.
    pub fn truncate(&mut self, n: usize, count: usize) {
        let at = self.offset(n, count);
        self.buf.truncate(self.start + at);
    }

    /// Keeps the entries `keep` accepts (in order, with their index).
    pub fn retain(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) {
        let (mut read, mut write, mut i) = (self.start, self.start, 0);
        while read < self.buf.len() {
            let (r, next) = entry_at(&self.buf, read);
            if keep(i, &self.buf[r]) {
                if write != read {
                    self.buf.copy_within(read..next, write);
                }
                write += next - read;
            }
            read = next;
            i += 1;
        }
        self.buf.truncate(write);
    }

    /// Gives back the front gap and spare capacity.
    pub fn shrink(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.shrink_to_fit();
    }
}

/// The entries of packed bytes (`Pack::bytes`, copied elsewhere).
pub fn entries(data: &[u8]) -> Iter<'_> {
    Iter { data, front: 0, back: data.len() }
}

/// A node's entries in order, from either end.
#[derive(Clone)]
pub struct Iter<'a> {
    data: &'a [u8],
    front: usize,
    back: usize,
}

impl Iter<'_> {
    /// Byte offset of the next entry from the front (for `Pack::splice`).
    pub fn offset(&self) -> usize {
        self.front
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (r, next) = entry_at(self.data, self.front);
        self.front = next;
        Some(&self.data[r])
    }
}

impl DoubleEndedIterator for Iter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let (r, begin) = entry_before(self.data, self.back);
        self.back = begin;
        Some(&self.data[r])
    }
}

/// The entries of packed bytes owned by the iterator (a compressed node
/// expanded for a read), each copied out.
pub struct OwnedIter {
    data: Vec<u8>,
    front: usize,
    back: usize,
}

impl OwnedIter {
    /// Entries `from..to` of the `count` entries packed in `data`.
    pub fn range(data: Vec<u8>, from: usize, to: usize, count: usize) -> OwnedIter {
        let (front, back) = (offset(&data, from, count), offset(&data, to, count));
        OwnedIter { data, front, back }
    }
}

impl OwnedIter {
    /// One step of the borrowed iterator over the owned bytes, copied out.
    fn step(&mut self, from_back: bool) -> Option<Vec<u8>> {
        let mut it = Iter { data: &self.data, front: self.front, back: self.back };
        let e = if from_back { it.next_back() } else { it.next() }?.to_vec();
        (self.front, self.back) = (it.front, it.back);
        Some(e)
    }
}

impl Iterator for OwnedIter {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        self.step(false)
    }
}

impl DoubleEndedIterator for OwnedIter {
    fn next_back(&mut self) -> Option<Vec<u8>> {
        self.step(true)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    #[test]
    fn varints_and_sizes() {
        assert_eq!(entry_size(0), 2);
        assert_eq!(entry_size(127), 129);
        assert_eq!(entry_size(128), 132);
        assert_eq!(entry_size(20_000), 20_006);
    }

    #[test]
    fn varints_round_trip() {
        let mut buf = [0u8; 10];
        for n in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let len = put_varint(&mut buf, n);
            assert_eq!(len, varint_size(n));
            assert_eq!(get_varint(&buf[..len]), (n, len));
        }
        // Bytes that end inside a varint read as nothing.
        assert_eq!(get_varint(&[0x80, 0x80]), (0, 2));
    }

    /// Random operations against a deque of vectors, with element lengths
    /// around the varint boundaries.
    #[test]
    fn matches_a_deque() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        let mut p = Pack::default();
        let mut m: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..20_000 {
            let len = [0, 1, 22, 23, 126, 127, 128, 129, 300, 16_383, 16_384][rnd(11)];
            let v = vec![(step % 251) as u8; len];
            let n = m.len();
            match rnd(11) {
                0 => {
                    p.push_front(&v);
                    m.push_front(v);
                }
                1 | 2 => {
                    p.push_back(&v);
                    m.push_back(v);
                }
                3 => assert_eq!(p.pop_front().map(|e| e.to_vec()), m.pop_front()),
                4 => assert_eq!(p.pop_back().map(|e| e.to_vec()), m.pop_back()),
                5 if n > 0 => {
                    let i = rnd(n);
                    p.set(i, n, &v);
                    m[i] = v;
                }
                6 => {
                    let i = rnd(n + 1);
                    p.insert(i, n, &v);
                    m.insert(i, v);
                }
                7 if n > 0 => {
                    let i = rnd(n);
                    p.remove(i, n);
                    m.remove(i);
                }
                8 if n > 2 && rnd(20) == 0 => {
                    let k = rnd(n / 2);
                    p.drop_front(k);
                    m.drain(..k);
                    let keep = rnd(m.len() + 1);
                    p.truncate(keep, m.len());
                    m.truncate(keep);
                }
                9 if rnd(10) == 0 => {
                    let byte = (rnd(251)) as u8;
                    p.retain(|i, e| i % 3 != 0 || e.first() != Some(&byte));
                    let mut i = 0;
                    m.retain(|e| {
                        let keep = i % 3 != 0 || e.first() != Some(&byte);
                        i += 1;
                        keep
                    });
                }
                10 if rnd(50) == 0 => p.shrink(),
                _ if n > 0 => {
                    let i = rnd(n);
                    assert_eq!(p.get(i, n), Some(&m[i][..]));
                }
                _ => {}
            }
            assert_eq!(p.is_empty(), m.is_empty());
            if step % 97 == 0 {
                assert!(p.iter().eq(m.iter().map(|e| &e[..])));
                assert!(p.iter().rev().eq(m.iter().rev().map(|e| &e[..])));
                let owned: Vec<Vec<u8>> = OwnedIter::range(p.bytes().to_vec(), 0, m.len(), m.len()).rev().collect();
                assert!(owned.iter().eq(m.iter().rev()));
                let (a, b) = (m.len() / 3, m.len() / 3 + m.len() / 2);
                assert!(p.range(a, b, m.len()).eq(m.range(a..b).map(|e| &e[..])));
                assert!(OwnedIter::range(p.bytes().to_vec(), a, b, m.len()).rev().eq(m.range(a..b).rev().cloned()));
            }
        }
    }

    #[test]
    fn shrink_gives_back_the_gap() {
        let mut p = Pack::default();
        for i in 0..100u8 {
            p.push_front(&[i; 10]);
        }
        assert!(p.heap_size() > 100 * 12);
        p.shrink();
        assert_eq!(p.heap_size(), 100 * 12);
        assert_eq!(p.get(0, 100), Some(&[99u8; 10][..]));
    }
}
