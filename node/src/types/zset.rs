//! The sorted-set type: members with scores, ordered by (score, member
//! bytes), in one of two encodings.
//!
//! - `listpack` (small sets, Redis's thresholds `zset-max-listpack-entries` /
//!   `-value`): every entry back to back in one byte buffer, sorted.
//!   An entry is `varint(len << 1 | int)`, the score (a zigzag varint when it
//!   is a small integer, else the 8 bytes of the double), then the member.
//!   Operations scan the buffer, as Redis does with its listpack.
//! - `skiplist` (the name Redis gives its large encoding, which we print in
//!   OBJECT ENCODING for compatibility; the structure here is a B+tree):
//!   * member bytes and the score are stored once, in an `Arena` of 64 KiB
//!     chunks; a member's id is its position there (chunk << 16 | offset);
//!   * `BTree` (see `btree.rs`) orders `(score, id)` entries and counts
//!     subtrees, so ranks, rank ranges and score/lex bounds cost O(log n);
//!   * `Index`, a hash index that stores only `(hash, id)` in 8 bytes and
//!     reads member bytes from the arena to confirm a match. It keeps
//!     entries in hash order (ordered linear probing over a multiply-shift
//!     home position), which makes ZSCAN cursors (a hash value) survive
//!     inserts, deletes and resizes.
//!
//!   Deleting marks an arena entry dead; a chunk more than half dead has its
//!   live entries moved to the tail and is freed (the tree and index are
//!   told the new ids), so churn does not leak memory.
//!
//! A set converts from `listpack` to the tree when it grows past the limits
//! and, like Redis, never converts back except when a command builds a new
//! set (ZUNIONSTORE, ZRANGESTORE, ...: `from_sorted`).

use std::hash::BuildHasher;

use foldhash::fast::FixedState;

use super::btree::BTree;

/// Conversion thresholds (from CONFIG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for ZLimits {
    fn default() -> Self {
        ZLimits { max_entries: 128, max_value: 64 }
    }
}

/// The set cannot grow: its member storage reached the 4 GiB an id addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZSetFull;

/// What `upsert` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The member was new and has been added.
    Added,
    /// The member existed and its score changed.
    Updated,
    /// The member existed and the decided score equals the current one.
    Same,
    /// The decision was to change nothing.
    Nop,
}

/// `a < b` in sorted-set order: by score, then by member bytes. Scores are
/// never NaN; -0 and 0 compare equal, as in Redis.
#[inline]
fn less(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> bool {
    s1 < s2 || (s1 == s2 && m1 < m2)
}

// ---------------------------------------------------------------- ranges

/// A score interval as ZRANGEBYSCORE takes it: `(` makes a bound exclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub min_ex: bool,
    pub max: f64,
    pub max_ex: bool,
}

impl ScoreRange {
    /// Parses `min` and `max` the way Redis's `zslParseRange` does (C
    /// `strtod` on the text after an optional `(`; NaN refused).
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, min_ex) = parse_score_bound(min)?;
        let (max, max_ex) = parse_score_bound(max)?;
        Some(ScoreRange { min, min_ex, max, max_ex })
    }

    /// Whether `s` is at or above the lower bound.
    #[inline]
    pub fn above_min(&self, s: f64) -> bool {
        if self.min_ex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    /// Whether `s` is at or below the upper bound.
    #[inline]
    pub fn below_max(&self, s: f64) -> bool {
        if self.max_ex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

fn parse_score_bound(b: &[u8]) -> Option<(f64, bool)> {
    let (text, ex) = match b.first() {
        Some(b'(') => (&b[1..], true),
        _ => (b, false),
    };
    let v = strtod_whole(text)?;
    Some((v, ex))
}

/// C's `strtod` used on a whole argument: leading whitespace allowed, the
/// empty string reads as 0, `inf`/`infinity` in any case, no NaN.
pub fn strtod_whole(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if s.is_empty() {
        return Some(0.0);
    }
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if unsigned.starts_with("nan") || lower.len() - unsigned.len() > 1 {
        return None;
    }
    let v: f64 = match unsigned {
        "inf" | "infinity" => {
            if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        _ => lower.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// One end of a lexicographic range: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexBound<'a> {
    NegInf,
    PosInf,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

impl<'a> LexBound<'a> {
    pub fn parse(b: &'a [u8]) -> Option<LexBound<'a>> {
        match b.first()? {
            b'+' if b.len() == 1 => Some(LexBound::PosInf),
            b'-' if b.len() == 1 => Some(LexBound::NegInf),
            b'[' => Some(LexBound::Incl(&b[1..])),
            b'(' => Some(LexBound::Excl(&b[1..])),
            _ => None,
        }
    }
}

/// A lexicographic interval as ZRANGEBYLEX takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexRange<'a> {
    pub min: LexBound<'a>,
    pub max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    pub fn parse(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
        Some(LexRange { min: LexBound::parse(min)?, max: LexBound::parse(max)? })
    }

    /// Whether `m` lies before the lower bound.
    #[inline]
    fn before_min(&self, m: &[u8]) -> bool {
        match self.min {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(x) => m < x,
            LexBound::Excl(x) => m <= x,
        }
    }

    /// Whether `m` is at or before the upper bound.
    #[inline]
    fn within_max(&self, m: &[u8]) -> bool {
        match self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(x) => m <= x,
            LexBound::Excl(x) => m < x,
        }
    }
}

// ---------------------------------------------------------------- varints

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads a varint at `*p`, advancing it; `None` when truncated or too long.
fn get_varint(b: &[u8], p: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*p)?;
        *p += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Scores stored as integers in the compact encoding (exactly
/// representable). Like Redis's listpack, which stores integral scores as
/// integers, this turns -0 into 0; the tree encoding keeps -0.
fn small_int(score: f64) -> Option<i64> {
    const LIMIT: f64 = (1u64 << 53) as f64;
    (score.fract() == 0.0 && score.abs() <= LIMIT).then_some(score as i64)
}

// ---------------------------------------------------------------- listpack

/// The compact encoding: `[count: u32 LE]` then the entries, sorted.
#[derive(Clone)]
struct Pack {
    buf: Vec<u8>,
}

impl Pack {
    fn new() -> Pack {
        Pack { buf: vec![0; 4] }
    }

    fn len(&self) -> usize {
        u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize
    }

    fn set_len(&mut self, n: usize) {
        self.buf[..4].copy_from_slice(&(n as u32).to_le_bytes());
    }

    /// Decodes the entry at `p`: (score, member, end of entry).
    #[inline]
    fn entry(&self, mut p: usize) -> (f64, &[u8], usize) {
        let b = &self.buf;
        let hdr = get_varint(b, &mut p).unwrap_or(0);
        let score = if hdr & 1 == 1 {
            unzigzag(get_varint(b, &mut p).unwrap_or(0)) as f64
        } else {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&b[p..p + 8]);
            p += 8;
            f64::from_le_bytes(raw)
        };
        let len = (hdr >> 1) as usize;
        (score, &b[p..p + len], p + len)
    }

    fn encode(out: &mut Vec<u8>, score: f64, member: &[u8]) {
        match small_int(score) {
            Some(n) => {
                put_varint(out, ((member.len() as u64) << 1) | 1);
                put_varint(out, zigzag(n));
            }
            None => {
                put_varint(out, (member.len() as u64) << 1);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        out.extend_from_slice(member);
    }

    /// Iterates (offset, score, member, end).
    fn iter(&self) -> impl Iterator<Item = (usize, f64, &[u8], usize)> + '_ {
        let mut p = 4;
        std::iter::from_fn(move || {
            if p >= self.buf.len() {
                return None;
            }
            let start = p;
            let (s, m, end) = self.entry(p);
            p = end;
            Some((start, s, m, end))
        })
    }

    /// Start offsets of the entries, plus the end of the buffer.
    fn offsets(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.iter().map(|e| e.0).collect();
        v.push(self.buf.len());
        v
    }

    /// (rank, offset, end, score) of `member`.
    fn find(&self, member: &[u8]) -> Option<(usize, usize, usize, f64)> {
        self.iter().enumerate().find(|(_, e)| e.2 == member).map(|(r, e)| (r, e.0, e.3, e.1))
    }

    fn insert(&mut self, score: f64, member: &[u8]) {
        let at = self.iter().find(|e| !less(e.1, e.2, score, member)).map(|e| e.0).unwrap_or(self.buf.len());
        let mut enc = Vec::with_capacity(member.len() + 12);
        Pack::encode(&mut enc, score, member);
        self.buf.reserve_exact(enc.len());
        self.buf.splice(at..at, enc);
        let n = self.len();
        self.set_len(n + 1);
    }

    /// Removes the entries in the byte range `from..to` (`n` of them).
    fn remove_bytes(&mut self, from: usize, to: usize, n: usize) {
        self.buf.drain(from..to);
        let left = self.len() - n;
        self.set_len(left);
        if self.buf.capacity() > self.buf.len() + 64 {
            self.buf.shrink_to_fit();
        }
    }

    /// Visits the entries satisfying a prefix predicate and counts them.
    fn partition_point(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        self.iter().take_while(|e| pred(e.1, e.2)).count()
    }
}

// ---------------------------------------------------------------- arena

const CHUNK_BITS: u32 = 16;
const CHUNK_SIZE: usize = 1 << CHUNK_BITS;
const MAX_CHUNKS: usize = 1 << (32 - CHUNK_BITS);
/// Members longer than this get an allocation of their own; the arena entry
/// holds its index in `Arena::large`.
const LARGE_MEMBER: usize = 1024;
const FLAG_DEAD: u64 = 1;
const FLAG_LARGE: u64 = 2;

#[derive(Clone, Default)]
struct Chunk {
    data: Vec<u8>,
    /// Bytes of dead entries.
    dead: u32,
}

/// Member bytes and scores of a large set, packed in chunks. An entry is
/// `varint(payload_len << 2 | large << 1 | dead)`, the score (8 bytes), and
/// the payload: the member, or a u32 index into `large`.
#[derive(Clone, Default)]
struct Arena {
    chunks: Vec<Chunk>,
    free_chunks: Vec<u32>,
    tail: u32,
    large: Vec<Box<[u8]>>,
    free_large: Vec<u32>,
}

#[inline]
fn split_id(id: u32) -> (usize, usize) {
    ((id >> CHUNK_BITS) as usize, (id as usize) & (CHUNK_SIZE - 1))
}

impl Arena {
    /// Header value, header length, and payload offset of the entry at `id`.
    #[inline]
    fn header(&self, id: u32) -> (u64, usize) {
        let (c, off) = split_id(id);
        let mut p = off;
        let hdr = get_varint(&self.chunks[c].data, &mut p).unwrap_or(0);
        (hdr, p)
    }

    #[inline]
    fn score(&self, id: u32) -> f64 {
        let (c, _) = split_id(id);
        let (_, p) = self.header(id);
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&self.chunks[c].data[p..p + 8]);
        f64::from_le_bytes(raw)
    }

    fn set_score(&mut self, id: u32, score: f64) {
        let (c, _) = split_id(id);
        let (_, p) = self.header(id);
        self.chunks[c].data[p..p + 8].copy_from_slice(&score.to_le_bytes());
    }

    #[inline]
    fn member(&self, id: u32) -> &[u8] {
        let (c, _) = split_id(id);
        let (hdr, p) = self.header(id);
        let len = (hdr >> 2) as usize;
        let payload = &self.chunks[c].data[p + 8..p + 8 + len];
        if hdr & FLAG_LARGE != 0 {
            let i = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
            &self.large[i as usize]
        } else {
            payload
        }
    }

    /// Total size of the entry at `id`.
    fn entry_size(&self, id: u32) -> usize {
        let (c, off) = split_id(id);
        let (hdr, p) = self.header(id);
        let _ = c;
        p - off + 8 + (hdr >> 2) as usize
    }

    /// Space for `size` bytes in the tail chunk (starting a new one when it
    /// is full); returns the id the entry will have.
    fn reserve(&mut self, size: usize) -> Option<u32> {
        if self.chunks.is_empty() {
            self.chunks.push(Chunk { data: Vec::with_capacity(size.max(64)), dead: 0 });
            self.tail = 0;
        }
        let t = self.tail as usize;
        if self.chunks[t].data.len() + size > CHUNK_SIZE {
            let next = match self.free_chunks.pop() {
                Some(c) => c as usize,
                None => {
                    if self.chunks.len() >= MAX_CHUNKS {
                        return None;
                    }
                    self.chunks.push(Chunk::default());
                    self.chunks.len() - 1
                }
            };
            self.chunks[next] = Chunk { data: Vec::with_capacity(CHUNK_SIZE), dead: 0 };
            self.tail = next as u32;
        }
        let t = self.tail as usize;
        let data = &mut self.chunks[t].data;
        if data.len() + size > data.capacity() {
            // The first chunk of a set grows gradually, so small sets stay small.
            let want = (data.capacity() * 2).max(data.len() + size).min(CHUNK_SIZE);
            data.reserve_exact(want - data.len());
        }
        Some(((t as u32) << CHUNK_BITS) | data.len() as u32)
    }

    fn alloc(&mut self, score: f64, member: &[u8]) -> Option<u32> {
        let large = member.len() > LARGE_MEMBER;
        let payload_len = if large { 4 } else { member.len() };
        let hdr = ((payload_len as u64) << 2) | if large { FLAG_LARGE } else { 0 };
        let size = varint_len(hdr) + 8 + payload_len;
        let id = self.reserve(size)?;
        let payload: [u8; 4] = if large {
            let boxed: Box<[u8]> = member.into();
            let i = match self.free_large.pop() {
                Some(i) => {
                    self.large[i as usize] = boxed;
                    i
                }
                None => {
                    self.large.push(boxed);
                    (self.large.len() - 1) as u32
                }
            };
            i.to_le_bytes()
        } else {
            [0; 4]
        };
        let data = &mut self.chunks[self.tail as usize].data;
        put_varint(data, hdr);
        data.extend_from_slice(&score.to_le_bytes());
        data.extend_from_slice(if large { &payload } else { member });
        Some(id)
    }

    /// Marks an entry dead. Returns the chunk to compact when that chunk is
    /// now more than half dead.
    fn free(&mut self, id: u32, keep_large: bool) -> Option<usize> {
        let (c, off) = split_id(id);
        let (hdr, p) = self.header(id);
        if hdr & FLAG_LARGE != 0 && !keep_large {
            let d = &self.chunks[c].data;
            let i = u32::from_le_bytes([d[p + 8], d[p + 9], d[p + 10], d[p + 11]]);
            self.large[i as usize] = Box::default();
            self.free_large.push(i);
        }
        let size = p - off + 8 + (hdr >> 2) as usize;
        let chunk = &mut self.chunks[c];
        chunk.data[off] |= FLAG_DEAD as u8;
        chunk.dead += size as u32;
        if chunk.dead as usize == chunk.data.len() && c == self.tail as usize {
            // Everything in the tail is dead: start it over.
            chunk.data.clear();
            chunk.dead = 0;
            return None;
        }
        (c != self.tail as usize && chunk.dead as usize * 2 > chunk.data.len()).then_some(c)
    }

    /// Ids of the live entries of chunk `c`.
    fn live_in(&self, c: usize) -> Vec<u32> {
        let data = &self.chunks[c].data;
        let mut v = Vec::new();
        let mut p = 0;
        while p < data.len() {
            let start = p;
            let hdr = get_varint(data, &mut p).unwrap_or(0);
            p += 8 + (hdr >> 2) as usize;
            if hdr & FLAG_DEAD == 0 {
                v.push(((c as u32) << CHUNK_BITS) | start as u32);
            }
        }
        v
    }

    /// Copies the entry `id` to the tail; the old copy becomes dead.
    fn relocate(&mut self, id: u32) -> Option<u32> {
        let (c, off) = split_id(id);
        let size = self.entry_size(id);
        let bytes: Vec<u8> = self.chunks[c].data[off..off + size].to_vec();
        let new = self.reserve(size)?;
        self.chunks[self.tail as usize].data.extend_from_slice(&bytes);
        self.free(id, true);
        Some(new)
    }

    /// Frees a chunk whose entries are all dead.
    fn release(&mut self, c: usize) {
        self.chunks[c] = Chunk::default();
        self.free_chunks.push(c as u32);
    }

    fn heap_size(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(|c| c.data.capacity()).sum::<usize>()
            + self.free_chunks.capacity() * 4
            + self.large.capacity() * 16
            + self.large.iter().map(|b| b.len()).sum::<usize>()
            + self.free_large.capacity() * 4
    }
}

// ---------------------------------------------------------------- index

const EMPTY: u64 = u64::MAX;
/// A segment splits in two rather than grow past this many home slots, so
/// the index never reallocates more than ~128 KiB at once (no large
/// transient copies, no long pauses on growth).
const SEG_MAX_HOMES: usize = 1 << 14;

/// Member -> id, storing `(hash32 << 32) | id` per slot (8 bytes).
///
/// The 32-bit hash space is cut into contiguous ranges, one `Seg` each. A
/// segment is an ordered linear-probing table: an entry sits at or after its
/// home slot (its hash scaled into the segment's slots), with no empty slot
/// in between, entries are kept sorted by hash, and they never wrap around
/// (the vector grows at its end instead). Lookups stop at the first empty
/// slot or larger hash. Walking segments and slots in order visits entries
/// in hash order, so ZSCAN's cursor is simply a hash value.
#[derive(Clone)]
struct Index {
    segs: Vec<Seg>,
    len: usize,
}

impl Default for Index {
    fn default() -> Self {
        Index { segs: vec![Seg::new(0, 1 << 32, 0)], len: 0 }
    }
}

#[derive(Clone)]
struct Seg {
    /// The hash range covered: `lo..hi`.
    lo: u64,
    hi: u64,
    slots: Vec<u64>,
    homes: usize,
    len: usize,
}

#[inline]
fn slot_hash(v: u64) -> u32 {
    (v >> 32) as u32
}

impl Seg {
    fn new(lo: u64, hi: u64, homes: usize) -> Seg {
        let n = if homes == 0 { 0 } else { homes + 8 + homes / 64 };
        Seg { lo, hi, slots: vec![EMPTY; n], homes, len: 0 }
    }

    #[inline]
    fn home(&self, h: u32) -> usize {
        (((h as u64 - self.lo) * self.homes as u64) / (self.hi - self.lo)) as usize
    }

    fn find(&self, h: u32, eq: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        let mut i = self.home(h);
        while let Some(&v) = self.slots.get(i) {
            if v == EMPTY || slot_hash(v) > h {
                return None;
            }
            if slot_hash(v) == h && eq(v as u32) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    fn insert(&mut self, v: u64) {
        let h = slot_hash(v);
        let mut i = self.home(h);
        while i < self.slots.len() && self.slots[i] != EMPTY && slot_hash(self.slots[i]) <= h {
            i += 1;
        }
        let mut j = i;
        while j < self.slots.len() && self.slots[j] != EMPTY {
            j += 1;
        }
        if j == self.slots.len() {
            self.slots.reserve_exact(16);
            self.slots.push(EMPTY);
        }
        self.slots.copy_within(i..j, i + 1);
        self.slots[i] = v;
        self.len += 1;
    }

    /// Empties slot `i`, pulling back the entries displaced past it.
    fn remove_at(&mut self, mut i: usize) {
        loop {
            let next = i + 1;
            match self.slots.get(next) {
                Some(&v) if v != EMPTY && self.home(slot_hash(v)) <= i => {
                    self.slots[i] = v;
                    i = next;
                }
                _ => break,
            }
        }
        self.slots[i] = EMPTY;
        self.len -= 1;
    }

    fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().copied().filter(|&v| v != EMPTY)
    }

    /// A segment for `lo..hi` with `homes` home slots holding `entries`
    /// (`len` of them, sorted by hash).
    fn build(lo: u64, hi: u64, entries: impl Iterator<Item = u64>, len: usize, homes: usize) -> Seg {
        let mut seg = Seg::new(lo, hi, homes);
        let mut next = 0;
        for v in entries {
            let pos = seg.home(slot_hash(v)).max(next);
            while pos >= seg.slots.len() {
                seg.slots.push(EMPTY);
            }
            seg.slots[pos] = v;
            next = pos + 1;
        }
        seg.len = len;
        seg
    }

    /// Home slots for `len` entries after a rebuild (load 5/8).
    fn homes_for(len: usize) -> usize {
        (len * 8 / 5).max(8)
    }

    /// The two halves of the hash range.
    fn split(&self) -> (Seg, Seg) {
        let mid = self.lo + (self.hi - self.lo) / 2;
        let left = self.entries().take_while(|&v| (slot_hash(v) as u64) < mid).count();
        let right = self.len - left;
        (
            Seg::build(self.lo, mid, self.entries().take(left), left, Seg::homes_for(left)),
            Seg::build(mid, self.hi, self.entries().skip(left), right, Seg::homes_for(right)),
        )
    }

    fn resized(&self, homes: usize) -> Seg {
        Seg::build(self.lo, self.hi, self.entries(), self.len, homes)
    }
}

impl Index {
    /// The segment covering hash `h`.
    #[inline]
    fn seg_of(&self, h: u32) -> usize {
        self.segs.partition_point(|s| s.hi <= h as u64)
    }

    /// Position (segment, slot) of the entry with hash `h` for which `eq(id)` holds.
    #[inline]
    fn find(&self, h: u32, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, usize)> {
        let si = self.seg_of(h);
        self.segs[si].find(h, &mut eq).map(|i| (si, i))
    }

    fn insert(&mut self, h: u32, id: u32) {
        let mut si = self.seg_of(h);
        let seg = &self.segs[si];
        if (seg.len + 1) * 8 > seg.homes * 7 {
            let grown = if seg.homes < 1024 { (seg.homes * 2).max(8) } else { seg.homes + seg.homes / 4 };
            if grown > SEG_MAX_HOMES && seg.hi - seg.lo > 1 {
                let (a, b) = seg.split();
                self.segs[si] = a;
                self.segs.insert(si + 1, b);
                si = self.seg_of(h);
                let seg = &self.segs[si];
                if (seg.len + 1) * 8 > seg.homes * 7 {
                    self.segs[si] = seg.resized(seg.homes * 2);
                }
            } else {
                self.segs[si] = seg.resized(grown);
            }
        }
        self.segs[si].insert(((h as u64) << 32) | id as u64);
        self.len += 1;
    }

    fn remove_at(&mut self, (si, i): (usize, usize)) {
        self.segs[si].remove_at(i);
        self.len -= 1;
        let seg = &self.segs[si];
        if seg.len == 0 && self.segs.len() > 1 {
            // Hand the empty range to a neighbour.
            let gone = self.segs.remove(si);
            let (ni, lo, hi) = if si > 0 { (si - 1, self.segs[si - 1].lo, gone.hi) } else { (0, gone.lo, self.segs[0].hi) };
            let n = &self.segs[ni];
            self.segs[ni] = Seg::build(lo, hi, n.entries(), n.len, n.homes);
        } else if seg.homes > 64 && seg.len * 4 < seg.homes {
            self.segs[si] = seg.resized(Seg::homes_for(seg.len));
        }
    }

    fn set_at(&mut self, (si, i): (usize, usize), h: u32, id: u32) {
        self.segs[si].slots[i] = ((h as u64) << 32) | id as u64;
    }

    /// Calls `f(id)` for entries in hash order starting at `cursor` (0 =
    /// start, else a hash + 1) until at least `count` were visited and the
    /// hash changes. Returns the next cursor, 0 when done.
    fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(u32)) -> u64 {
        if cursor > u32::MAX as u64 + 1 {
            return 0;
        }
        let from = cursor.saturating_sub(1) as u32;
        let mut seen = 0;
        let mut last = None;
        for seg in &self.segs[self.seg_of(from)..] {
            let start = if (from as u64) >= seg.lo { seg.home(from) } else { 0 };
            for &v in seg.slots.get(start..).unwrap_or(&[]) {
                if v == EMPTY || slot_hash(v) < from {
                    continue;
                }
                let h = slot_hash(v);
                if seen >= count && last != Some(h) {
                    return h as u64 + 1;
                }
                f(v as u32);
                seen += 1;
                last = Some(h);
            }
        }
        0
    }

    fn heap_size(&self) -> usize {
        self.segs.capacity() * std::mem::size_of::<Seg>() + self.segs.iter().map(|s| s.slots.capacity() * 8).sum::<usize>()
    }
}

// ---------------------------------------------------------------- tree encoding

#[derive(Clone)]
struct Big {
    tree: BTree,
    index: Index,
    arena: Arena,
    hasher: FixedState,
}

impl Big {
    fn new() -> Big {
        Big { tree: BTree::default(), index: Index::default(), arena: Arena::default(), hasher: FixedState::with_seed(rand::random()) }
    }

    #[inline]
    fn hash(&self, member: &[u8]) -> u32 {
        (self.hasher.hash_one(member) >> 32) as u32
    }

    /// (index position, id) of `member`.
    fn find(&self, member: &[u8]) -> Option<((usize, usize), u32)> {
        let arena = &self.arena;
        let mut found = 0;
        let pos = self.index.find(self.hash(member), |id| {
            found = id;
            arena.member(id) == member
        })?;
        Some((pos, found))
    }

    /// Number of entries ordered before (score, member).
    fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        let arena = &self.arena;
        self.tree.partition_point(|s, id| less(s, arena.member(id), score, member))
    }

    fn insert_new(&mut self, score: f64, member: &[u8]) -> Result<(), ZSetFull> {
        let rank = self.rank_of(score, member);
        self.insert_at(rank, score, member)
    }

    /// Inserts a new member known to belong at `rank`.
    fn insert_at(&mut self, rank: usize, score: f64, member: &[u8]) -> Result<(), ZSetFull> {
        let id = self.arena.alloc(score, member).ok_or(ZSetFull)?;
        let h = self.hash(member);
        self.index.insert(h, id);
        self.tree.insert(rank, score, id);
        Ok(())
    }

    fn change_score(&mut self, id: u32, old: f64, new: f64) {
        let member = self.arena.member(id);
        let rank = self.rank_of(old, member);
        debug_assert_eq!(self.tree.get(rank).map(|e| e.1), Some(id));
        let prev_ok = rank == 0 || self.tree.get(rank - 1).is_some_and(|(s, p)| less(s, self.arena.member(p), new, member));
        let next_ok = self.tree.get(rank + 1).is_none_or(|(s, n)| less(new, member, s, self.arena.member(n)));
        if prev_ok && next_ok {
            self.tree.set_score(rank, new);
        } else {
            self.tree.remove(rank);
            let member = self.arena.member(id);
            let at = self.rank_of(new, member);
            self.tree.insert(at, new, id);
        }
        self.arena.set_score(id, new);
    }

    /// Removes the entry at `rank`, showing it to `f` first.
    fn remove_rank(&mut self, rank: usize, f: impl FnOnce(&[u8], f64)) {
        let (score, id) = self.tree.remove(rank);
        let member = self.arena.member(id);
        f(member, score);
        let h = self.hash(member);
        if let Some(pos) = self.index.find(h, |x| x == id) {
            self.index.remove_at(pos);
        }
        self.forget(id);
    }

    fn remove_member(&mut self, member: &[u8]) -> Option<f64> {
        let (pos, id) = self.find(member)?;
        let score = self.arena.score(id);
        let rank = self.rank_of(score, member);
        self.tree.remove(rank);
        self.index.remove_at(pos);
        self.forget(id);
        Some(score)
    }

    /// Frees the arena entry of a member already out of the tree and index.
    fn forget(&mut self, id: u32) {
        if let Some(c) = self.arena.free(id, false) {
            self.compact(c);
        }
    }

    /// Moves the live entries of chunk `c` to the tail and frees it.
    fn compact(&mut self, c: usize) {
        for old in self.arena.live_in(c) {
            let score = self.arena.score(old);
            let member = self.arena.member(old);
            let rank = self.rank_of(score, member);
            let h = self.hash(member);
            let Some(new) = self.arena.relocate(old) else { return };
            self.tree.set_id(rank, new);
            if let Some(pos) = self.index.find(h, |x| x == old) {
                self.index.set_at(pos, h, new);
            }
        }
        self.arena.release(c);
    }

    fn heap_size(&self) -> usize {
        std::mem::size_of::<Big>() + self.tree.heap_size() + self.index.heap_size() + self.arena.heap_size()
    }
}

// ---------------------------------------------------------------- ZSet

#[derive(Clone)]
enum Repr {
    Pack(Pack),
    Big(Box<Big>),
}

/// A sorted set.
#[derive(Clone)]
pub struct ZSet(Repr);

impl Default for ZSet {
    fn default() -> Self {
        ZSet(Repr::Pack(Pack::new()))
    }
}

impl ZSet {
    /// A new empty set in the encoding Redis would pick for a set about to
    /// receive `size_hint` members of at most `len_hint` bytes.
    pub fn with_hint(size_hint: usize, len_hint: usize, limits: ZLimits) -> ZSet {
        if size_hint <= limits.max_entries && len_hint <= limits.max_value {
            ZSet::default()
        } else {
            ZSet(Repr::Big(Box::new(Big::new())))
        }
    }

    /// Builds a set from entries in ascending (score, member) order without
    /// duplicates, choosing the encoding from its final size.
    pub fn from_sorted<M: AsRef<[u8]>>(items: &[(M, f64)], limits: ZLimits) -> Result<ZSet, ZSetFull> {
        let longest = items.iter().map(|(m, _)| m.as_ref().len()).max().unwrap_or(0);
        if items.len() <= limits.max_entries && longest <= limits.max_value {
            let mut p = Pack::new();
            let total: usize = items.iter().map(|(m, _)| m.as_ref().len() + 10).sum();
            p.buf.reserve_exact(total);
            for (m, s) in items {
                Pack::encode(&mut p.buf, *s, m.as_ref());
            }
            p.set_len(items.len());
            p.buf.shrink_to_fit();
            Ok(ZSet(Repr::Pack(p)))
        } else {
            let mut b = Box::new(Big::new());
            for (i, (m, s)) in items.iter().enumerate() {
                b.insert_at(i, *s, m.as_ref())?;
            }
            Ok(ZSet(Repr::Big(b)))
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Pack(p) => p.len(),
            Repr::Big(b) => b.tree.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING prints: `listpack` for the compact encoding;
    /// `skiplist` (Redis's name for its large encoding, kept so tools that
    /// check it keep working) for our B+tree encoding.
    pub fn encoding(&self) -> &'static str {
        match &self.0 {
            Repr::Pack(_) => "listpack",
            Repr::Big(_) => "skiplist",
        }
    }

    /// Whether the compact encoding is in use.
    pub fn is_compact(&self) -> bool {
        matches!(self.0, Repr::Pack(_))
    }

    /// Heap bytes owned by the set.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<ZSet>()
            + match &self.0 {
                Repr::Pack(p) => p.buf.capacity(),
                Repr::Big(b) => b.heap_size(),
            }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.0 {
            Repr::Pack(p) => p.find(member).map(|e| e.3),
            Repr::Big(b) => b.find(member).map(|(_, id)| b.arena.score(id)),
        }
    }

    /// The member's rank (0-based, ascending order) and score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.0 {
            Repr::Pack(p) => p.find(member).map(|e| (e.0, e.3)),
            Repr::Big(b) => {
                let (_, id) = b.find(member)?;
                let s = b.arena.score(id);
                Some((b.rank_of(s, member), s))
            }
        }
    }

    /// Adds or updates `member`. `decide` gets the current score (`None`
    /// when absent) and returns the score to store, or `None` to leave the
    /// set unchanged. Converts to the tree encoding when the set outgrows
    /// `limits`.
    pub fn upsert(&mut self, member: &[u8], limits: ZLimits, decide: impl FnOnce(Option<f64>) -> Option<f64>) -> Result<Outcome, ZSetFull> {
        match &mut self.0 {
            Repr::Pack(p) => match p.find(member) {
                Some((_, from, to, cur)) => {
                    let Some(new) = decide(Some(cur)) else { return Ok(Outcome::Nop) };
                    // As in Redis, an equal score (0 for -0 included) is no change.
                    if new == cur {
                        return Ok(Outcome::Same);
                    }
                    p.remove_bytes(from, to, 1);
                    p.insert(new, member);
                    Ok(Outcome::Updated)
                }
                None => {
                    let Some(new) = decide(None) else { return Ok(Outcome::Nop) };
                    if p.len() < limits.max_entries && member.len() <= limits.max_value {
                        p.insert(new, member);
                    } else {
                        self.convert()?;
                        if let Repr::Big(b) = &mut self.0 {
                            b.insert_new(new, member)?;
                        }
                    }
                    Ok(Outcome::Added)
                }
            },
            Repr::Big(b) => match b.find(member) {
                Some((_, id)) => {
                    let cur = b.arena.score(id);
                    let Some(new) = decide(Some(cur)) else { return Ok(Outcome::Nop) };
                    if new == cur {
                        return Ok(Outcome::Same);
                    }
                    b.change_score(id, cur, new);
                    Ok(Outcome::Updated)
                }
                None => {
                    let Some(new) = decide(None) else { return Ok(Outcome::Nop) };
                    b.insert_new(new, member)?;
                    Ok(Outcome::Added)
                }
            },
        }
    }

    /// Sets `member`'s score; returns true when the member is new.
    #[cfg(test)]
    pub fn insert(&mut self, member: &[u8], score: f64, limits: ZLimits) -> Result<bool, ZSetFull> {
        Ok(self.upsert(member, limits, |_| Some(score))? == Outcome::Added)
    }

    /// Switches to the tree encoding for good (SORT does, as Redis's
    /// does: OBJECT ENCODING then says `skiplist`).
    pub fn to_tree(&mut self) -> Result<(), ZSetFull> {
        self.convert()
    }

    /// Switches to the tree encoding.
    fn convert(&mut self) -> Result<(), ZSetFull> {
        if let Repr::Pack(p) = &self.0 {
            let mut b = Box::new(Big::new());
            for (i, (_, s, m, _)) in p.iter().enumerate() {
                b.insert_at(i, s, m)?;
            }
            self.0 = Repr::Big(b);
        }
        Ok(())
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.0 {
            Repr::Pack(p) => {
                let (_, from, to, s) = p.find(member)?;
                p.remove_bytes(from, to, 1);
                Some(s)
            }
            Repr::Big(b) => b.remove_member(member),
        }
    }

    /// The entry at `rank` (ascending).
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.0 {
            Repr::Pack(p) => p.iter().nth(rank).map(|e| (e.2, e.1)),
            Repr::Big(b) => b.tree.get(rank).map(|(s, id)| (b.arena.member(id), s)),
        }
    }

    /// Number of leading entries satisfying a prefix predicate on (score, member).
    fn partition_point(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        match &self.0 {
            Repr::Pack(p) => p.partition_point(pred),
            Repr::Big(b) => b.tree.partition_point(|s, id| pred(s, b.arena.member(id))),
        }
    }

    /// The ranks `[start, end)` of the entries within `r` (empty when end <= start).
    pub fn score_ranks(&self, r: &ScoreRange) -> (usize, usize) {
        let start = self.partition_point(|s, _| !r.above_min(s));
        let end = self.partition_point(|s, _| r.below_max(s));
        (start, end.max(start))
    }

    /// The ranks `[start, end)` of the entries within the lex range `r`.
    /// Meaningful when all scores are equal (as in Redis).
    pub fn lex_ranks(&self, r: &LexRange) -> (usize, usize) {
        let start = self.partition_point(|_, m| r.before_min(m));
        let end = self.partition_point(|_, m| r.within_max(m));
        (start, end.max(start))
    }

    /// Calls `f(member, score)` for ranks `start..end`, ascending, or
    /// descending from `end - 1` when `rev`.
    pub fn for_range<'s>(&'s self, start: usize, end: usize, rev: bool, mut f: impl FnMut(&'s [u8], f64)) {
        let end = end.min(self.len());
        if start >= end {
            return;
        }
        match &self.0 {
            Repr::Pack(p) => {
                if rev {
                    let offs = p.offsets();
                    for r in (start..end).rev() {
                        let (s, m, _) = p.entry(offs[r]);
                        f(m, s);
                    }
                } else {
                    for (_, s, m, _) in p.iter().skip(start).take(end - start) {
                        f(m, s);
                    }
                }
            }
            Repr::Big(b) => {
                let mut left = end - start;
                let from = if rev { end - 1 } else { start };
                b.tree.for_each(from, rev, |s, id| {
                    f(b.arena.member(id), s);
                    left -= 1;
                    left > 0
                });
            }
        }
    }

    /// Every entry in ascending order.
    pub fn for_each<'s>(&'s self, f: impl FnMut(&'s [u8], f64)) {
        self.for_range(0, self.len(), false, f);
    }

    /// Removes ranks `start..end`; returns how many were removed.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match &mut self.0 {
            Repr::Pack(p) => {
                let offs = p.offsets();
                p.remove_bytes(offs[start], offs[end], end - start);
            }
            Repr::Big(b) => {
                for _ in start..end {
                    b.remove_rank(start, |_, _| {});
                }
            }
        }
        end - start
    }

    /// Removes the lowest (or highest, with `max`) entry, showing it to `f`.
    pub fn pop(&mut self, max: bool, f: impl FnOnce(&[u8], f64)) -> bool {
        let n = self.len();
        if n == 0 {
            return false;
        }
        let rank = if max { n - 1 } else { 0 };
        match &mut self.0 {
            Repr::Pack(p) => {
                let offs = p.offsets();
                let (s, m, _) = p.entry(offs[rank]);
                f(m, s);
                p.remove_bytes(offs[rank], offs[rank + 1], 1);
            }
            Repr::Big(b) => b.remove_rank(rank, f),
        }
        true
    }

    /// One ZSCAN step. The compact encoding returns everything at once
    /// (cursor 0), as Redis does; the tree encoding walks members in hash
    /// order, `count` at a time (more when several share a hash), and its
    /// cursors stay valid across inserts, deletes and resizes.
    pub fn scan<'s>(&'s self, cursor: u64, count: usize, mut f: impl FnMut(&'s [u8], f64)) -> u64 {
        match &self.0 {
            Repr::Pack(_) => {
                self.for_each(f);
                0
            }
            Repr::Big(b) => b.index.scan(cursor, count.max(1), |id| f(b.arena.member(id), b.arena.score(id))),
        }
    }

    /// Serialises the set (encoding-independent): a version byte, the count,
    /// then per entry in ascending order the score (8 bytes, little endian),
    /// the member length and the member bytes.
    pub fn dump_into(&self, out: &mut Vec<u8>) {
        out.push(1);
        put_varint(out, self.len() as u64);
        self.for_each(|m, s| {
            out.extend_from_slice(&s.to_le_bytes());
            put_varint(out, m.len() as u64);
            out.extend_from_slice(m);
        });
    }

    /// Reads what `dump_into` wrote, with Redis's default encoding limits;
    /// `None` for malformed input.
    pub fn from_dump(bytes: &[u8]) -> Option<ZSet> {
        Self::from_dump_with(bytes, ZLimits::default())
    }

    /// `from_dump` with explicit encoding limits.
    pub fn from_dump_with(bytes: &[u8], limits: ZLimits) -> Option<ZSet> {
        if bytes.first() != Some(&1) {
            return None;
        }
        let mut p = 1;
        let n = get_varint(bytes, &mut p)? as usize;
        // Each entry takes at least 9 bytes: refuse impossible counts early.
        if n > bytes.len() / 9 {
            return None;
        }
        let mut items: Vec<(&[u8], f64)> = Vec::with_capacity(n);
        for _ in 0..n {
            let raw: [u8; 8] = bytes.get(p..p + 8)?.try_into().ok()?;
            let s = f64::from_le_bytes(raw);
            p += 8;
            let len = get_varint(bytes, &mut p)? as usize;
            let m = bytes.get(p..p.checked_add(len)?)?;
            p += len;
            if s.is_nan() || items.last().is_some_and(|&(pm, ps)| !less(ps, pm, s, m)) {
                return None;
            }
            items.push((m, s));
        }
        if p != bytes.len() {
            return None;
        }
        ZSet::from_sorted(&items, limits).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The reference model: member -> score, and the sorted order derived
    /// from it.
    #[derive(Default)]
    struct Model {
        map: BTreeMap<Vec<u8>, f64>,
    }

    impl Model {
        fn sorted(&self) -> Vec<(Vec<u8>, f64)> {
            let mut v: Vec<(Vec<u8>, f64)> = self.map.iter().map(|(m, s)| (m.clone(), *s)).collect();
            v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
            v
        }
    }

    fn contents(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        let mut v = Vec::new();
        z.for_each(|m, s| v.push((m.to_vec(), s)));
        v
    }

    fn check(z: &ZSet, model: &Model) {
        let want = model.sorted();
        assert_eq!(z.len(), want.len());
        assert_eq!(contents(z), want);
        if let Repr::Big(b) = &z.0 {
            b.tree.check();
            assert_eq!(b.index.len, want.len());
        }
    }

    fn member(rng: &mut StdRng, universe: u32, long_every: u32) -> Vec<u8> {
        let n = rng.random_range(0..universe);
        let mut m = format!("m{n}").into_bytes();
        if long_every > 0 && n % long_every == 0 {
            // A few long members, some beyond the arena's inline limit.
            let extra = if n % (long_every * 3) == 0 { 1500 } else { 70 };
            m.extend(std::iter::repeat_n(b'x', extra));
        }
        m
    }

    fn score(rng: &mut StdRng) -> f64 {
        match rng.random_range(0..10) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => 0.0,
            3 => -0.0,
            4 => rng.random_range(-5..5) as f64,
            5 => rng.random_range(-1e12..1e12),
            _ => rng.random_range(-100.0..100.0),
        }
    }

    /// Random operation sequences against the model. Sizes swing above and
    /// below the listpack threshold so both encodings and the conversion
    /// between them are exercised; every query is compared too.
    fn run(seed: u64, limits: ZLimits, universe: u32, long_every: u32, steps: usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut z = ZSet::with_hint(0, 0, limits);
        let mut model = Model::default();
        let mut saw_both = (false, false);
        for step in 0..steps {
            // Phases: grow, then shrink, then grow again...
            let growing = (step / (steps / 6).max(1)).is_multiple_of(2);
            let op = rng.random_range(0..100);
            match op {
                0..=44 => {
                    let add = rng.random_bool(if growing { 0.85 } else { 0.15 });
                    if add {
                        let m = member(&mut rng, universe, long_every);
                        let s = score(&mut rng);
                        let was = model.map.insert(m.clone(), s);
                        let new = z.insert(&m, s, limits).expect("room");
                        assert_eq!(new, was.is_none());
                    } else if let Some(m) = model.map.keys().nth(rng.random_range(0..model.map.len().max(1))).cloned() {
                        assert_eq!(z.remove(&m), model.map.remove(&m));
                    }
                }
                45..=54 => {
                    // ZINCRBY-like update through upsert.
                    let m = member(&mut rng, universe, long_every);
                    let d = rng.random_range(-3.0..3.0f64).round();
                    let cur = model.map.get(&m).copied();
                    let out = z.upsert(&m, limits, |c| Some(c.unwrap_or(0.0) + d)).expect("room");
                    let want = cur.unwrap_or(0.0) + d;
                    model.map.insert(m.clone(), want);
                    match cur {
                        None => assert_eq!(out, Outcome::Added),
                        Some(c) if c == want => assert_eq!(out, Outcome::Same),
                        Some(_) => assert_eq!(out, Outcome::Updated),
                    }
                    assert_eq!(z.score(&m), Some(want));
                }
                55..=62 => {
                    let m = member(&mut rng, universe, long_every);
                    let want = model.sorted();
                    let r = want.iter().position(|e| e.0 == m);
                    assert_eq!(z.rank(&m), r.map(|r| (r, want[r].1)));
                    assert_eq!(z.score(&m), model.map.get(&m).copied());
                }
                63..=70 => {
                    let want = model.sorted();
                    let (a, b) = (score(&mut rng), score(&mut rng));
                    let r = ScoreRange { min: a.min(b), min_ex: rng.random_bool(0.5), max: a.max(b), max_ex: rng.random_bool(0.5) };
                    let (s, e) = z.score_ranks(&r);
                    let inside: Vec<_> =
                        want.iter().enumerate().filter(|(_, x)| r.above_min(x.1) && r.below_max(x.1)).map(|(i, _)| i).collect();
                    assert_eq!(e - s, inside.len(), "{r:?}");
                    if let Some(&first) = inside.first() {
                        assert_eq!(s, first);
                    }
                    let rev = rng.random_bool(0.5);
                    let mut got = Vec::new();
                    z.for_range(s, e, rev, |m, sc| got.push((m.to_vec(), sc)));
                    let mut exp: Vec<_> = want[s..e.max(s)].to_vec();
                    if rev {
                        exp.reverse();
                    }
                    assert_eq!(got, exp);
                }
                71..=76 => {
                    // Lex ranges, on the model's member order (meaningful
                    // when all scores are equal; checked for consistency
                    // with a set of equal scores below).
                    let want = model.sorted();
                    if want.iter().all(|e| e.1 == want[0].1) {
                        let a = member(&mut rng, universe, long_every);
                        let b = member(&mut rng, universe, long_every);
                        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                        let r = LexRange { min: LexBound::Incl(&lo), max: LexBound::Excl(&hi) };
                        let (s, e) = z.lex_ranks(&r);
                        let n = want.iter().filter(|x| x.0 >= lo && x.0 < hi).count();
                        assert_eq!(e - s, n);
                    }
                }
                77..=82 => {
                    let max = rng.random_bool(0.5);
                    let want = model.sorted();
                    let mut got = None;
                    let popped = z.pop(max, |m, s| got = Some((m.to_vec(), s)));
                    assert_eq!(popped, !want.is_empty());
                    if let Some(g) = got {
                        let e = if max { want.last() } else { want.first() };
                        assert_eq!(Some(&g), e);
                        model.map.remove(&g.0);
                    }
                }
                83..=86 => {
                    let n = model.map.len();
                    if n > 0 {
                        let a = rng.random_range(0..n);
                        let b = (a + rng.random_range(0..4)).min(n);
                        let want = model.sorted();
                        for (m, _) in &want[a..b] {
                            model.map.remove(m);
                        }
                        assert_eq!(z.remove_ranks(a, b), b - a);
                    }
                }
                87..=90 => {
                    let want = model.sorted();
                    if !want.is_empty() {
                        let r = rng.random_range(0..want.len());
                        assert_eq!(z.get(r).map(|(m, s)| (m.to_vec(), s)), Some(want[r].clone()));
                    }
                }
                91..=93 => {
                    // A complete scan returns every member at least once.
                    let mut seen = HashSet::new();
                    let mut cursor = 0;
                    loop {
                        cursor = z.scan(cursor, rng.random_range(1..20), |m, s| {
                            assert_eq!(model.map.get(m), Some(&s));
                            seen.insert(m.to_vec());
                        });
                        if cursor == 0 {
                            break;
                        }
                    }
                    assert_eq!(seen.len(), model.map.len());
                }
                _ => {
                    let mut buf = Vec::new();
                    z.dump_into(&mut buf);
                    let back = ZSet::from_dump_with(&buf, limits).expect("round trip");
                    assert_eq!(contents(&back), model.sorted());
                }
            }
            if z.is_compact() {
                saw_both.0 = true;
            } else {
                saw_both.1 = true;
            }
            if step % 50 == 0 {
                check(&z, &model);
            }
            if z.is_empty() {
                // An emptied key is deleted by the commands; start afresh.
                z = ZSet::with_hint(0, 0, limits);
            }
        }
        check(&z, &model);
        assert!(saw_both.0 && saw_both.1, "both encodings exercised");
    }

    #[test]
    fn model_small_threshold() {
        run(1, ZLimits { max_entries: 16, max_value: 8 }, 60, 0, 20_000);
    }

    #[test]
    fn model_with_long_members() {
        run(2, ZLimits { max_entries: 16, max_value: 64 }, 80, 7, 20_000);
    }

    #[test]
    fn model_default_limits() {
        run(3, ZLimits::default(), 400, 0, 30_000);
    }

    #[test]
    fn model_equal_scores_lex() {
        // All scores equal: lex ranges are meaningful.
        let limits = ZLimits { max_entries: 8, max_value: 64 };
        let mut rng = StdRng::seed_from_u64(4);
        for round in 0..40 {
            let mut z = ZSet::default();
            let mut names: Vec<Vec<u8>> =
                (0..rng.random_range(1..60)).map(|i| format!("{:03}", (i * 7 + round) % 101).into_bytes()).collect();
            for n in &names {
                z.insert(n, 0.0, limits).expect("room");
            }
            names.sort();
            names.dedup();
            let bounds =
                [b"-".to_vec(), b"+".to_vec(), b"[010".to_vec(), b"(010".to_vec(), b"[050".to_vec(), b"(077".to_vec(), b"[".to_vec()];
            for lo in &bounds {
                for hi in &bounds {
                    let r = LexRange::parse(lo, hi).expect("valid");
                    let (s, e) = z.lex_ranks(&r);
                    let want: Vec<&Vec<u8>> = names.iter().filter(|m| !r.before_min(m) && r.within_max(m)).collect();
                    assert_eq!(e - s, want.len(), "{lo:?} {hi:?}");
                    let mut got = Vec::new();
                    z.for_range(s, e, false, |m, _| got.push(m.to_vec()));
                    assert_eq!(got.iter().collect::<Vec<_>>(), want);
                }
            }
        }
    }

    #[test]
    fn churn_compacts_the_arena() {
        let limits = ZLimits::default();
        let mut z = ZSet::default();
        let mut rng = StdRng::seed_from_u64(5);
        let mut live: Vec<Vec<u8>> = Vec::new();
        for i in 0..30_000u32 {
            let m = format!("member-{i:010}").into_bytes();
            z.insert(&m, rng.random_range(0.0..1e6), limits).expect("room");
            live.push(m);
        }
        let full = z.heap_size();
        // Delete four in five at random, then check the memory came back.
        let mut kept = Vec::new();
        for m in live {
            if rng.random_range(0..5) == 0 {
                kept.push(m);
            } else {
                assert!(z.remove(&m).is_some());
            }
        }
        assert_eq!(z.len(), kept.len());
        for m in &kept {
            assert!(z.score(m).is_some());
        }
        if let Repr::Big(b) = &z.0 {
            b.tree.check();
            let arena_live: usize = (0..b.arena.chunks.len()).map(|c| b.arena.live_in(c).len()).sum();
            assert_eq!(arena_live, kept.len());
            assert!(!b.arena.free_chunks.is_empty(), "half-dead chunks were compacted and freed");
        }
        assert!(z.heap_size() < full / 2, "{} of {}", z.heap_size(), full);
    }

    #[test]
    fn scan_cursor_survives_resizes() {
        let limits = ZLimits { max_entries: 0, max_value: 0 };
        let mut z = ZSet::default();
        for i in 0..2000 {
            z.insert(format!("a{i}").as_bytes(), i as f64, limits).expect("room");
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = z.scan(cursor, 10, |m, _| {
                seen.insert(m.to_vec());
            });
            // Grow and shrink the set between calls.
            round += 1;
            if round % 2 == 0 {
                for j in 0..50 {
                    z.insert(format!("b{round}-{j}").as_bytes(), 0.0, limits).expect("room");
                }
            } else {
                for j in 0..50 {
                    z.remove(format!("b{}-{j}", round - 1).as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..2000 {
            assert!(seen.contains(format!("a{i}").as_bytes()), "a{i} missed");
        }
    }

    #[test]
    fn index_segments_split_and_merge() {
        let limits = ZLimits::default();
        let mut z = ZSet::default();
        let n = 100_000u32;
        for i in 0..n {
            z.insert(format!("k{i}").as_bytes(), i as f64, limits).expect("room");
        }
        let Repr::Big(b) = &z.0 else { panic!("tree encoding") };
        assert!(b.index.segs.len() > 4, "{} segments", b.index.segs.len());
        let mut cover = 0;
        for s in &b.index.segs {
            assert_eq!(s.lo, cover, "segments are contiguous");
            cover = s.hi;
            assert!(s.homes <= SEG_MAX_HOMES);
            let hs: Vec<u32> = s.entries().map(slot_hash).collect();
            assert!(hs.windows(2).all(|w| w[0] <= w[1]), "sorted by hash");
            assert!(hs.iter().all(|&h| (h as u64) >= s.lo && (h as u64) < s.hi));
            assert_eq!(hs.len(), s.len);
        }
        assert_eq!(cover, 1 << 32);
        for i in (0..n).step_by(7) {
            assert_eq!(z.score(format!("k{i}").as_bytes()), Some(i as f64));
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = z.scan(cursor, 100, |m, _| {
                seen.insert(m.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), n as usize);
        for i in 0..n - 10 {
            assert!(z.remove(format!("k{i}").as_bytes()).is_some());
        }
        let Repr::Big(b) = &z.0 else { panic!("tree encoding") };
        assert_eq!(b.index.len, 10);
        assert!(b.index.heap_size() < 64 * 1024, "shrunk: {}", b.index.heap_size());
        for i in n - 10..n {
            assert_eq!(z.score(format!("k{i}").as_bytes()), Some(i as f64));
        }
    }

    #[test]
    fn dump_round_trip_and_bad_input() {
        let limits = ZLimits::default();
        for n in [0usize, 1, 5, 128, 129, 3000] {
            let mut z = ZSet::default();
            for i in 0..n {
                z.insert(format!("m{i}").as_bytes(), (i as f64) * 1.5 - 7.0, limits).expect("room");
            }
            z.insert(b"long", f64::INFINITY, limits).expect("room");
            let mut buf = Vec::new();
            z.dump_into(&mut buf);
            let back = ZSet::from_dump(&buf).expect("round trip");
            assert_eq!(contents(&back), contents(&z));
            assert_eq!(back.encoding(), z.encoding());
            // Truncations and garbage never panic and are refused.
            for cut in 0..buf.len().min(64) {
                assert!(ZSet::from_dump(&buf[..cut]).is_none());
            }
            let mut extra = buf.clone();
            extra.push(0);
            assert!(ZSet::from_dump(&extra).is_none());
        }
        assert!(ZSet::from_dump(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_none());
        let mut nan = vec![1, 1];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        nan.extend_from_slice(&[1, b'a']);
        assert!(ZSet::from_dump(&nan).is_none());
    }

    #[test]
    fn encoding_follows_limits() {
        let limits = ZLimits { max_entries: 3, max_value: 5 };
        let mut z = ZSet::with_hint(1, 1, limits);
        assert_eq!(z.encoding(), "listpack");
        for m in [b"a", b"b", b"c"] {
            z.insert(m, 1.0, limits).expect("room");
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"d", 1.0, limits).expect("room");
        assert_eq!(z.encoding(), "skiplist");
        let mut z = ZSet::default();
        z.insert(b"toolong", 1.0, limits).expect("room");
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(ZSet::with_hint(4, 1, limits).encoding(), "skiplist");
        assert_eq!(ZSet::from_sorted(&[(b"a", 1.0), (b"b", 2.0)], limits).expect("room").encoding(), "listpack");
    }

    #[test]
    fn ranges_parse_like_redis() {
        let r = ScoreRange::parse(b"(1.5", b"+inf").expect("valid");
        assert!(r.min_ex && r.min == 1.5 && r.max == f64::INFINITY && !r.max_ex);
        assert!(ScoreRange::parse(b"nan", b"1").is_none());
        assert!(ScoreRange::parse(b"1x", b"2").is_none());
        assert_eq!(ScoreRange::parse(b"", b"(").map(|r| (r.min, r.max, r.max_ex)), Some((0.0, 0.0, true)));
        assert_eq!(ScoreRange::parse(b" 5", b"-INF").map(|r| (r.min, r.max)), Some((5.0, f64::NEG_INFINITY)));
        assert!(LexRange::parse(b"a", b"+").is_none());
        assert!(LexRange::parse(b"++", b"+").is_none());
        assert_eq!(LexRange::parse(b"[a", b"(b").map(|r| (r.min, r.max)), Some((LexBound::Incl(b"a"), LexBound::Excl(b"b"))));
    }

    #[test]
    fn small_int_scores_are_compact_and_exact() {
        let limits = ZLimits::default();
        let mut z = ZSet::default();
        for (i, s) in [0.0, -0.0, 1.0, -1.0, 9007199254740992.0, 9007199254740994.0, 0.5, -1e300].iter().enumerate() {
            z.insert(format!("m{i}").as_bytes(), *s, limits).expect("room");
        }
        // -0 is stored as the integer 0 in the compact encoding, as in Redis.
        assert_eq!(z.score(b"m1").map(|s| s.is_sign_negative()), Some(false));
        let mut t = ZSet::with_hint(1000, 0, limits);
        t.insert(b"neg", -0.0, limits).expect("room");
        assert_eq!(t.score(b"neg").map(|s| s.is_sign_negative()), Some(true));
        assert_eq!(z.score(b"m5"), Some(9007199254740994.0));
        assert_eq!(z.score(b"m7"), Some(-1e300));
    }
}
