//! The stream type: entries ordered by ID (`ms-seq`), each a list of
//! field/value pairs, plus the last ID handed out, so IDs never go back
//! even after deletions and trimming, and its consumer groups
//! (`stream_group`), present only once a group was created.

use std::collections::BTreeMap;

use super::pack::{self, Pack};
use super::stream_group::{Groups, UNKNOWN_READ};

/// A stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    /// Parses `ms-seq` or `ms` (the sequence defaults to `missing_seq`).
    /// Each part is read as Redis's string2ull reads it: a plain integer,
    /// else what strtoull accepts (leading spaces, a sign).
    pub fn parse(b: &[u8], missing_seq: u64) -> Option<StreamId> {
        if b.len() > 127 {
            return None;
        }
        let s = std::str::from_utf8(b).ok()?;
        match s.split_once('-') {
            Some((ms, seq)) => Some(StreamId { ms: string2ull(ms)?, seq: string2ull(seq)? }),
            None => Some(StreamId { ms: string2ull(s)?, seq: missing_seq }),
        }
    }

    pub fn text(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    pub fn next(&self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            (self.ms != u64::MAX).then(|| StreamId { ms: self.ms + 1, seq: 0 })
        } else {
            Some(StreamId { ms: self.ms, seq: self.seq + 1 })
        }
    }

    pub fn prev(&self) -> Option<StreamId> {
        if self.seq == 0 {
            (self.ms != 0).then(|| StreamId { ms: self.ms - 1, seq: u64::MAX })
        } else {
            Some(StreamId { ms: self.ms, seq: self.seq - 1 })
        }
    }
}

/// Redis's string2ull: a plain integer (not negative), or else what C's
/// strtoull takes whole (leading white space, then an optional plus).
fn string2ull(s: &str) -> Option<u64> {
    if let Ok(n) = s.parse::<i64>() {
        if !s.starts_with('+') {
            return (n >= 0).then_some(n as u64);
        }
    }
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    // (A part never holds a minus: the ID was split at the first one.)
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An entry's field/value pairs, packed in one allocation of their size:
/// the number of pairs (a LEB128 varint), then field, value, field,
/// value... as a `Pack` lays them out. An entry never changes once added.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields(Box<[u8]>);

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Fields {
        let mut b = FieldsBuilder::default();
        for (f, v) in pairs {
            b.push(f, v);
        }
        b.finish()
    }

    /// The number of pairs and where the pairs start.
    fn head(&self) -> (usize, usize) {
        let (mut n, mut shift) = (0usize, 0);
        for (i, &b) in self.0.iter().enumerate() {
            n |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return (n, i + 1);
            }
            shift += 7;
        }
        (0, self.0.len())
    }

    /// The pairs, in order.
    pub fn iter(&self) -> FieldIter<'_> {
        FieldIter(pack::entries(&self.0[self.head().1..]))
    }

    pub fn len(&self) -> usize {
        self.head().0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_size(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v)))).finish()
    }
}

/// Builds `Fields` a pair at a time.
#[derive(Default)]
pub struct FieldsBuilder {
    pack: Pack,
    pairs: usize,
}

impl FieldsBuilder {
    pub fn push(&mut self, f: &[u8], v: &[u8]) {
        self.pack.push_back(f);
        self.pack.push_back(v);
        self.pairs += 1;
    }

    pub fn finish(self) -> Fields {
        let body = self.pack.bytes();
        let mut out = Vec::with_capacity(body.len() + 3);
        let mut n = self.pairs;
        while n >= 0x80 {
            out.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(body);
        Fields(out.into_boxed_slice())
    }
}

/// An entry's pairs.
pub struct FieldIter<'a>(pack::Iter<'a>);

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        Some((self.0.next()?, self.0.next()?))
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = FieldIter<'a>;

    fn into_iter(self) -> FieldIter<'a> {
        self.iter()
    }
}

#[derive(Clone, Default)]
pub struct StreamValue {
    entries: BTreeMap<StreamId, Fields>,
    pub last_id: StreamId,
    /// Entries ever added (XINFO's entries-added).
    pub added: u64,
    /// The highest ID XDEL removed (Redis's max-deleted-entry-id; kept so
    /// a snapshot carries it to Redis and back).
    pub max_deleted: StreamId,
    /// The consumer groups, once there is one.
    pub groups: Option<Box<Groups>>,
}

/// A trimming clause of XADD and XTRIM: MAXLEN or MINID, exact (`=`) or
/// approximate (`~`), with its LIMIT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trim {
    pub maxlen: Option<usize>,
    pub minid: Option<StreamId>,
    /// `~`: only whole nodes of `node` entries go, as Redis drops whole
    /// listpacks (nodes counted in the order entries were added), and
    /// never so many that fewer than MAXLEN entries (or any at or above
    /// MINID) would remain.
    pub approx: bool,
    /// LIMIT (0: none); unset, `~` stops at 100 nodes' worth, as Redis.
    pub limit: Option<usize>,
    /// Entries per node (`stream-node-max-entries`; `usize::MAX`: no
    /// limit; 0: the default, `NODE_ENTRIES`).
    pub node: usize,
}

impl Trim {
    pub const NODE_ENTRIES: usize = 100;

    /// The node size this clause trims by.
    fn node_entries(&self) -> usize {
        if self.node == 0 {
            Self::NODE_ENTRIES
        } else {
            self.node
        }
    }

    /// Redis's default LIMIT for `~`: 100 nodes' worth, at least 10000
    /// when nodes are unlimited and at most 1000000.
    fn approx_limit(&self) -> usize {
        match self.node_entries() {
            usize::MAX => 10_000,
            n => n.saturating_mul(100).min(1_000_000),
        }
    }
}

impl StreamValue {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends an entry with an ID above `last_id` (checked by the caller).
    pub fn append(&mut self, id: StreamId, fields: Fields) {
        self.entries.insert(id, fields);
        self.last_id = id;
        self.added += 1;
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.entries.contains_key(&id)
    }

    pub fn remove(&mut self, id: StreamId) -> bool {
        let found = self.entries.remove(&id).is_some();
        if found && id > self.max_deleted {
            self.max_deleted = id;
        }
        found
    }

    /// The ID of the oldest entry (0-0 when empty).
    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&StreamId, &Fields)> {
        self.entries.iter()
    }

    /// Entries with `lo <= id <= hi` (none when `lo > hi`).
    pub fn range(&self, lo: StreamId, hi: StreamId) -> impl DoubleEndedIterator<Item = (&StreamId, &Fields)> {
        self.entries.range(lo..=hi.max(lo)).filter(move |(k, _)| **k <= hi)
    }

    /// How many of the oldest entries a trim removes (see `Trim`).
    pub fn trim_count(&self, t: &Trim) -> usize {
        let limit = t.limit.unwrap_or(if t.approx { t.approx_limit() } else { 0 });
        let limit = if limit == 0 { usize::MAX } else { limit };
        let len = self.entries.len();
        if !t.approx {
            let by_len = t.maxlen.map_or(0, |m| len.saturating_sub(m));
            let by_id = t.minid.map_or(0, |m| self.entries.range(..m).count());
            return by_len.max(by_id).min(limit);
        }
        // Whole nodes only, never below the threshold. Nodes hold
        // `node_entries` entries in the order they were added, so the
        // oldest may be partly gone (an exact trim or XADD's own trim left
        // the rest): it holds what remains of its share.
        let per = t.node_entries();
        let gone = (self.added as usize).saturating_sub(len);
        let mut first = if per == usize::MAX { per } else { per - gone % per };
        let mut n = 0;
        loop {
            let node = (len - n).min(std::mem::replace(&mut first, per));
            if node == 0 || n + node > limit {
                return n;
            }
            let whole = match (t.maxlen, t.minid) {
                (Some(m), _) => len - n - node >= m,
                (None, Some(m)) => self.entries.keys().nth(n + node - 1).is_some_and(|last| *last < m),
                (None, None) => false,
            };
            if !whole {
                return n;
            }
            n += node;
        }
    }

    /// Drops the oldest entries as `t` says; how many went.
    pub fn trim(&mut self, t: &Trim) -> usize {
        let n = self.trim_count(t);
        for _ in 0..n {
            self.entries.pop_first();
        }
        n
    }

    /// Whether an XDEL tombstone may lie between `start` and the end
    /// (Redis's streamRangeHasTombstones with no end).
    pub fn tombstones_after(&self, start: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted == StreamId::default() || self.first_id() > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// The logical read counter of `id` when it can be known (Redis's
    /// streamEstimateDistanceFromFirstEverEntry), else `UNKNOWN_READ`.
    pub fn estimate_read(&self, id: StreamId) -> i64 {
        let added = self.added as i64;
        if self.added == 0 {
            return 0;
        }
        if self.entries.is_empty() && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        } else if id > self.last_id {
            return UNKNOWN_READ;
        }
        let first = self.first_id();
        if self.max_deleted == StreamId::default() || self.max_deleted < first {
            if id < first {
                return added - self.entries.len() as i64;
            } else if id == first {
                return added - self.entries.len() as i64 + 1;
            }
        }
        UNKNOWN_READ
    }

    /// A group's lag (XINFO GROUPS), `None` when it cannot be known.
    pub fn lag(&self, last_id: StreamId, entries_read: i64) -> Option<i64> {
        if self.added == 0 {
            return Some(0);
        }
        if entries_read != UNKNOWN_READ && !self.tombstones_after(last_id) {
            return Some(self.added as i64 - entries_read);
        }
        let e = self.estimate_read(last_id);
        (e != UNKNOWN_READ).then(|| self.added as i64 - e)
    }

    pub fn heap_size(&self) -> usize {
        self.groups.as_ref().map_or(0, |g| g.heap_size())
            + self.entries.values().map(|f| std::mem::size_of::<(StreamId, Fields)>() + f.heap_size()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_reads_them() {
        let id = |ms, seq| Some(StreamId { ms, seq });
        assert_eq!(StreamId::parse(b"1-2", 0), id(1, 2));
        assert_eq!(StreamId::parse(b"7", 9), id(7, 9));
        assert_eq!(StreamId::parse(b" 1", 0), id(1, 0));
        assert_eq!(StreamId::parse(b"+1-+2", 0), id(1, 2));
        assert_eq!(StreamId::parse(b"18446744073709551615-0", 0), id(u64::MAX, 0));
        for bad in [&b""[..], b"-", b"+", b"1-", b"-1", b"1-x", b"1 ", b"18446744073709551616", b"1--1", b" -1"] {
            assert_eq!(StreamId::parse(bad, 0), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn fields_keep_their_pairs_and_count() {
        assert!(Fields::new().is_empty() && Fields::new().iter().next().is_none());
        let f = Fields::from_pairs([(&b"sku"[..], &b"s1"[..]), (b"", b"x".as_slice())]);
        assert_eq!(f.len(), 2);
        assert_eq!(f.iter().collect::<Vec<_>>(), [(&b"sku"[..], &b"s1"[..]), (&b""[..], &b"x"[..])]);
        let names: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
        let many = Fields::from_pairs(names.iter().map(|n| (n.as_bytes(), n.as_bytes())));
        assert_eq!(many.len(), 300);
        assert!(many.iter().map(|(f, _)| f).eq(names.iter().map(|n| n.as_bytes())));
        assert_eq!(many.heap_size(), 2 + names.iter().map(|n| 2 * (n.len() + 2)).sum::<usize>());
    }

    /// Redis's suite: after exact trims a `~` trim drops what is left of
    /// the oldest node, then whole nodes, never below the threshold.
    #[test]
    fn approximate_trims_drop_whole_nodes_in_the_order_entries_came() {
        let mut s = StreamValue::default();
        for i in 0..1000 {
            s.append(StreamId { ms: i + 1, seq: 0 }, Fields::new());
        }
        let trim = |s: &mut StreamValue, maxlen, approx| s.trim(&Trim { maxlen: Some(maxlen), approx, ..Trim::default() });
        assert_eq!(trim(&mut s, 666, false), 334);
        assert_eq!(trim(&mut s, 555, false), 111);
        assert_eq!(trim(&mut s, 444, true), 55);
        assert_eq!(s.len(), 500);
        assert_eq!(trim(&mut s, 400, true), 100);
        assert_eq!(trim(&mut s, 399, true), 0);
        assert_eq!(s.len(), 400);
    }
}
