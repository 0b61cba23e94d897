//! The stream type: entries ordered by ID (`ms-seq`), each a list of
//! field/value pairs, plus the last ID handed out, so IDs never go back
//! even after deletions and trimming, and its consumer groups
//! (`stream_group`), present only once a group was created. Entries are
//! packed in nodes of up to `stream-node-max-entries` entries or 4 KB
//! (`node`), keyed by their first entry's ID, as Redis keeps them.

use std::collections::BTreeMap;

use super::stream_group::{Groups, UNKNOWN_READ};
use node::Node;

mod fields;
mod node;

pub use fields::{FieldIter, Fields, FieldsBuilder, FieldsRef};

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

#[derive(Clone, Default)]
pub struct StreamValue {
    /// The nodes, by the ID of the first entry appended to each.
    nodes: BTreeMap<StreamId, Node>,
    /// Entries in the stream.
    len: usize,
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
    /// `~`: only whole nodes go, as Redis drops whole listpacks, and never
    /// so many that fewer than MAXLEN entries (or any at or above MINID)
    /// would remain.
    pub approx: bool,
    /// LIMIT (0: none); unset, `~` stops at 100 nodes' worth, as Redis.
    pub limit: Option<usize>,
    /// `stream-node-max-entries` when the clause was given (`usize::MAX`:
    /// no limit; 0: the default, `NODE_ENTRIES`), which sets `~`'s default
    /// LIMIT.
    pub node: usize,
}

impl Trim {
    pub const NODE_ENTRIES: usize = 100;

    /// The node size `node` stands for.
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

/// Redis's `stream-node-max-bytes`: a node takes no entry once its bytes
/// and the entry's fields and values reach this.
const NODE_MAX_BYTES: usize = 4096;

impl StreamValue {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The number of nodes (XINFO's radix-tree-keys).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Appends an entry with an ID above `last_id` (checked by the caller),
    /// in a new node when the newest holds `node_entries` entries (counting
    /// those since removed) or 4 KB.
    pub fn append<'a>(&mut self, id: StreamId, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone, node_entries: usize) {
        let size: usize = pairs.clone().map(|(f, v)| f.len() + v.len()).sum();
        let full = self.nodes.last_key_value().is_none_or(|(_, n)| n.bytes() + size >= NODE_MAX_BYTES || n.added as usize >= node_entries);
        if full {
            if let Some(mut last) = self.nodes.last_entry() {
                last.get_mut().close();
            }
            self.nodes.insert(id, Node::new(pairs.clone()));
        }
        if let Some(mut last) = self.nodes.last_entry() {
            let master = *last.key();
            last.get_mut().push(master, id, pairs);
        }
        self.len += 1;
        self.last_id = id;
        self.added += 1;
    }

    /// The node that holds `id` if any entry does.
    fn node_of(&self, id: StreamId) -> Option<(&StreamId, &Node)> {
        self.nodes.range(..=id).next_back()
    }

    /// The pairs of entry `id`.
    pub fn get(&self, id: StreamId) -> Option<FieldsRef<'_>> {
        let (master, node) = self.node_of(id)?;
        node.entries(*master).take_while(|(e, _)| *e <= id).find(|(e, _)| *e == id).map(|(_, f)| f)
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.get(id).is_some()
    }

    pub fn remove(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else { return false };
        if !node.remove(master, id) {
            return false;
        }
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.len -= 1;
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        true
    }

    /// The ID of the oldest entry (0-0 when empty).
    pub fn first_id(&self) -> StreamId {
        self.iter().next().map(|(id, _)| id).unwrap_or_default()
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (StreamId, FieldsRef<'_>)> {
        self.nodes.iter().flat_map(|(master, node)| node.entries(*master))
    }

    /// Entries with `lo <= id <= hi` (none when `lo > hi`).
    pub fn range(&self, lo: StreamId, hi: StreamId) -> impl DoubleEndedIterator<Item = (StreamId, FieldsRef<'_>)> {
        let from = self.node_of(lo).map_or(lo, |(master, _)| *master);
        self.nodes.range(from..=hi.max(lo)).flat_map(|(master, node)| node.entries(*master)).filter(move |(id, _)| lo <= *id && *id <= hi)
    }

    /// What a trim as `t` says removes (Redis's streamTrim): the oldest
    /// nodes whole while they fit under the threshold and the limit, then,
    /// for an exact trim, the oldest entries of the next node. The number
    /// of whole nodes, the entries they hold, and the entries after them.
    fn trim_plan(&self, t: &Trim) -> (usize, usize, usize) {
        let limit = t.limit.unwrap_or(if t.approx { t.approx_limit() } else { 0 });
        let limit = if limit == 0 { usize::MAX } else { limit };
        let (mut nodes, mut whole) = (0, 0);
        for (master, node) in &self.nodes {
            let len = self.len - whole;
            if t.maxlen.is_some_and(|m| len <= m) {
                break;
            }
            let entries = node.live as usize;
            if whole + entries > limit {
                break;
            }
            let all = match (t.maxlen, t.minid) {
                (Some(m), _) => len - entries >= m,
                (None, Some(id)) => node.last_id(*master) < id,
                (None, None) => false,
            };
            if all {
                nodes += 1;
                whole += entries;
                continue;
            }
            if t.approx {
                break;
            }
            let part = match (t.maxlen, t.minid) {
                (Some(m), _) => len - m,
                (None, Some(id)) => node.entries(*master).take_while(|(e, _)| *e < id).count(),
                (None, None) => 0,
            };
            return (nodes, whole, part);
        }
        (nodes, whole, 0)
    }

    /// How many of the oldest entries a trim as `t` says removes.
    pub fn trim_count(&self, t: &Trim) -> usize {
        let (_, whole, part) = self.trim_plan(t);
        whole + part
    }

    /// Drops the oldest entries as `t` says; how many went.
    pub fn trim(&mut self, t: &Trim) -> usize {
        let (nodes, whole, part) = self.trim_plan(t);
        for _ in 0..nodes {
            self.nodes.pop_first();
        }
        if let (true, Some(mut first)) = (part > 0, self.nodes.first_entry()) {
            first.get_mut().drop_front(part);
        }
        self.len -= whole + part;
        whole + part
    }

    /// Whether an XDEL tombstone may lie between `start` and the end
    /// (Redis's streamRangeHasTombstones with no end).
    pub fn tombstones_after(&self, start: StreamId) -> bool {
        if self.len == 0 || self.max_deleted == StreamId::default() || self.first_id() > self.max_deleted {
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
        if self.len == 0 && id <= self.last_id {
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
                return added - self.len as i64;
            } else if id == first {
                return added - self.len as i64 + 1;
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
            + self.nodes.values().map(|n| std::mem::size_of::<(StreamId, Node)>() + n.heap_size()).sum::<usize>()
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

    /// Redis's suite: after exact trims a `~` trim drops what is left of
    /// the oldest node, then whole nodes, never below the threshold.
    #[test]
    fn approximate_trims_drop_whole_nodes_in_the_order_entries_came() {
        let mut s = StreamValue::default();
        for i in 0..1000 {
            s.append(StreamId { ms: i + 1, seq: 0 }, std::iter::empty(), Trim::NODE_ENTRIES);
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
