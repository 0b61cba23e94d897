//! The replication backlog: the last `repl-backlog-size` bytes of the
//! replication stream, so that a replica whose link broke can continue
//! from where it was (`PSYNC <replid> <offset>` answered `+CONTINUE`)
//! instead of a full resync.
//!
//! Offsets are Redis's: the stream's bytes are numbered from 1, the
//! replication offset counts the bytes produced so far, and a replica asks
//! for the first byte it has not had (its offset + 1).

use std::collections::VecDeque;

pub use crate::config::repl::BACKLOG_MIN_SIZE as MIN_SIZE;

pub struct Backlog {
    buf: VecDeque<u8>,
    size: usize,
    /// Created (by the first replica, or when this node synchronised with
    /// its primary) and not freed by `repl-backlog-ttl`.
    pub active: bool,
}

impl Backlog {
    pub fn new(size: u64) -> Backlog {
        Backlog { buf: VecDeque::new(), size: clamp(size), active: false }
    }

    /// Starts (or restarts) an empty backlog.
    pub fn activate(&mut self) {
        self.buf = VecDeque::new();
        self.active = true;
    }

    /// Frees it (`repl-backlog-ttl` passed without replicas).
    pub fn free(&mut self) {
        self.buf = VecDeque::new();
        self.active = false;
    }

    /// Appends stream bytes, forgetting the oldest past the size.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.active {
            return;
        }
        let keep = &bytes[bytes.len().saturating_sub(self.size)..];
        let over = (self.buf.len() + keep.len()).saturating_sub(self.size);
        self.buf.drain(..over);
        self.buf.extend(keep);
    }

    /// Bytes it holds allocated (INFO's `mem_replication_backlog`).
    pub fn memory(&self) -> usize {
        self.buf.capacity()
    }

    /// The stream's bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> u64 {
        self.buf.len() as u64
    }

    /// `repl-backlog-size` changed: the oldest bytes over it go.
    pub fn resize(&mut self, size: u64) {
        self.size = clamp(size);
        let over = self.buf.len().saturating_sub(self.size);
        self.buf.drain(..over);
        self.buf.shrink_to(self.size);
    }

    /// The number of the first byte held, when the stream so far is `end`
    /// bytes long (`repl_backlog_first_byte_offset`).
    pub fn first_byte(&self, end: u64) -> u64 {
        (end + 1).saturating_sub(self.histlen())
    }

    /// The stream from byte `from` (numbered from 1) to `end`, if the
    /// backlog holds all of it (`from` may be `end + 1`: nothing is owed).
    pub fn since(&self, from: u64, end: u64) -> Option<Vec<u8>> {
        if !self.active || from < self.first_byte(end) || from > end + 1 {
            return None;
        }
        let skip = (from - self.first_byte(end)) as usize;
        Some(self.buf.range(skip..).copied().collect())
    }
}

fn clamp(size: u64) -> usize {
    usize::try_from(size.max(MIN_SIZE)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_size_bytes() {
        let mut b = Backlog::new(1);
        b.activate();
        let chunk = vec![7u8; 10_000];
        b.push(&chunk);
        b.push(&chunk);
        assert_eq!(b.histlen(), MIN_SIZE);
        assert_eq!(b.first_byte(20_000), 20_000 - MIN_SIZE + 1);
        assert!(b.since(1, 20_000).is_none());
        assert_eq!(b.since(20_000, 20_000).map(|v| v.len()), Some(1));
        assert_eq!(b.since(20_001, 20_000), Some(vec![]));
        assert!(b.since(20_002, 20_000).is_none());
    }

    #[test]
    fn offsets_follow_the_stream() {
        let mut b = Backlog::new(MIN_SIZE);
        // Created when the stream was already 100 bytes long.
        b.activate();
        assert_eq!(b.first_byte(100), 101);
        b.push(b"abcdef");
        assert_eq!(b.since(101, 106).as_deref(), Some(&b"abcdef"[..]));
        assert_eq!(b.since(104, 106).as_deref(), Some(&b"def"[..]));
        assert!(b.since(100, 106).is_none());
        b.free();
        assert!(b.since(107, 106).is_none());
    }

    #[test]
    fn resizing_drops_the_oldest() {
        let mut b = Backlog::new(MIN_SIZE * 2);
        b.activate();
        let data: Vec<u8> = (0..MIN_SIZE * 2).map(|i| i as u8).collect();
        b.push(&data);
        b.resize(0);
        assert_eq!(b.histlen(), MIN_SIZE);
        let end = MIN_SIZE * 2;
        assert_eq!(b.since(end, end), Some(vec![data[data.len() - 1]]));
    }
}
