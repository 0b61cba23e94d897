//! The part of a point-in-time snapshot that one database of one shard
//! owes: which of its slots are already serialised, and the RDB records
//! written but not yet handed to the file writer.
//!
//! A snapshot is taken without a fork and without copying the data. When it
//! starts, every database of every shard gets a `DbSnapshot`; the shard then
//! serialises its slots one by one between commands (`Db::snapshot_step`).
//! A command about to change a key of a slot not serialised yet first
//! writes that key out as it still is and notes it (`early`), so the slot
//! skips it later; a new key is only noted. The file holds each key as it
//! was at the start, whatever happens to it later, and a write pays for
//! one key. The notes are bounded (`EARLY_MAX`): past it, a write
//! serialises its whole slot instead. The memory a snapshot costs is the
//! records waiting in `buf` and those notes, not a copy of the keyspace.

use std::collections::HashSet;

use super::rdb;
use super::{SmallBytes, Value};

/// Keys written out (or created) ahead of their slot, at most; past it,
/// writes serialise whole slots.
const EARLY_MAX: usize = 1 << 16;

pub struct DbSnapshot {
    /// The database's number when the snapshot started (SWAPDB moves the
    /// `Db`, and its snapshot with it).
    pub number: u32,
    /// Keys whose TTL had passed at the start are left out.
    now: u64,
    /// One bit per local slot: serialised already.
    done: Vec<u64>,
    /// The next local slot the step visits.
    next: usize,
    /// Records written and not yet taken.
    pub buf: Vec<u8>,
    /// Keys written so far.
    pub keys: u64,
    /// Keys of slots not serialised yet that were written out (or created)
    /// already: their slot leaves them out.
    early: HashSet<SmallBytes>,
}

impl DbSnapshot {
    pub fn new(number: u32, now: u64, slots: usize) -> DbSnapshot {
        DbSnapshot { number, now, done: vec![0; slots.div_ceil(64)], next: 0, buf: Vec::new(), keys: 0, early: HashSet::new() }
    }

    #[inline]
    pub fn is_done(&self, local: usize) -> bool {
        self.done[local / 64] & (1 << (local % 64)) != 0
    }

    pub fn mark_done(&mut self, local: usize) {
        self.done[local / 64] |= 1 << (local % 64);
    }

    pub fn is_early(&self, key: &[u8]) -> bool {
        !self.early.is_empty() && self.early.contains(key)
    }

    pub fn early_full(&self) -> bool {
        self.early.len() >= EARLY_MAX
    }

    pub fn mark_early(&mut self, key: &[u8]) {
        self.early.insert(SmallBytes::new(key));
    }

    /// Whether `key` was handled ahead of its slot (forgetting it: its slot
    /// is being serialised).
    pub fn take_early(&mut self, key: &[u8]) -> bool {
        !self.early.is_empty() && self.early.remove(key)
    }

    /// The next local slot not serialised yet, at or after the cursor
    /// (advancing the cursor), or `None` when every slot is.
    pub fn next_pending(&mut self, slots: usize) -> Option<usize> {
        while self.next < slots {
            let l = self.next;
            self.next += 1;
            if !self.is_done(l) {
                return Some(l);
            }
        }
        None
    }

    /// Appends one key's record, unless it had expired at the start.
    pub fn write(&mut self, key: &[u8], value: &Value, expire_at: u64) {
        if expire_at != 0 && expire_at <= self.now {
            return;
        }
        // A big value is reserved for at once: grown by doubling, its
        // record would briefly take three times its size.
        let size = value.heap_size();
        if size > 1 << 20 {
            self.buf.reserve(size);
        }
        rdb::write_entry(&mut self.buf, key, value, (expire_at != 0).then_some(expire_at));
        self.keys += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_slots_skip_the_done_ones() {
        let mut s = DbSnapshot::new(0, 0, 130);
        s.mark_done(0);
        s.mark_done(64);
        s.mark_done(129);
        let mut seen = Vec::new();
        while let Some(l) = s.next_pending(130) {
            s.mark_done(l);
            seen.push(l);
        }
        assert_eq!(seen.len(), 127);
        assert!(!seen.contains(&64) && !seen.contains(&0) && !seen.contains(&129));
    }

    #[test]
    fn expired_keys_are_left_out() {
        let mut s = DbSnapshot::new(0, 1000, 1);
        s.write(b"old", &Value::Int(1), 999);
        assert_eq!((s.keys, s.buf.len()), (0, 0));
        s.write(b"live", &Value::Int(1), 1001);
        s.write(b"forever", &Value::Int(1), 0);
        assert_eq!(s.keys, 2);
    }
}
