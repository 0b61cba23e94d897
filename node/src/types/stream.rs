//! The stream type (without consumer groups): entries ordered by ID
//! (`ms-seq`), each a list of field/value pairs, plus the last ID handed
//! out, so IDs never go back even after deletions and trimming.

use std::collections::BTreeMap;

use super::SmallBytes;

/// A stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    /// Parses `ms-seq` or `ms` (the sequence defaults to `missing_seq`).
    pub fn parse(b: &[u8], missing_seq: u64) -> Option<StreamId> {
        let s = std::str::from_utf8(b).ok()?;
        match s.split_once('-') {
            Some((ms, seq)) => Some(StreamId { ms: ms.parse().ok()?, seq: seq.parse().ok()? }),
            None => Some(StreamId { ms: s.parse().ok()?, seq: missing_seq }),
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

pub type Fields = Vec<(SmallBytes, SmallBytes)>;

#[derive(Clone, Default)]
pub struct StreamValue {
    entries: BTreeMap<StreamId, Fields>,
    pub last_id: StreamId,
    /// Entries ever added (XINFO's entries-added).
    pub added: u64,
    /// The highest ID XDEL removed (Redis's max-deleted-entry-id; kept so
    /// a snapshot carries it to Redis and back).
    pub max_deleted: StreamId,
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

    /// Drops the oldest entries while more than `maxlen` remain, or while
    /// their IDs are below `minid`; how many went.
    pub fn trim(&mut self, maxlen: Option<usize>, minid: Option<StreamId>, limit: usize) -> usize {
        let mut n = 0;
        while limit == 0 || n < limit {
            let Some((&first, _)) = self.entries.iter().next() else { break };
            let over = maxlen.is_some_and(|m| self.entries.len() > m) || minid.is_some_and(|m| first < m);
            if !over {
                break;
            }
            self.entries.remove(&first);
            n += 1;
        }
        n
    }

    pub fn heap_size(&self) -> usize {
        self.entries.values().map(|f| 48 + f.len() * 48 + f.iter().map(|(a, b)| a.heap_size() + b.heap_size()).sum::<usize>()).sum()
    }
}
