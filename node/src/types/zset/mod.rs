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

mod arena;
mod big;
mod index;
mod pack;
mod range;
#[cfg(test)]
mod tests;

use arena::*;
use big::*;
use index::*;
use pack::*;
pub use range::*;

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

    /// The first of two steps prefetching a lookup of `member` in a big
    /// set (see `FieldTable::prefetch_head`); `None` when packed (one
    /// allocation).
    #[inline]
    pub fn prefetch_head(&self, member: &[u8]) -> Option<u64> {
        match &self.0 {
            Repr::Pack(_) => None,
            Repr::Big(b) => Some(u64::from(b.prefetch_head(member))),
        }
    }

    /// The second step of `prefetch_head`.
    #[inline]
    pub fn prefetch_chain(&self, h: u64) {
        if let Repr::Big(b) = &self.0 {
            b.prefetch_chain(h as u32);
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
