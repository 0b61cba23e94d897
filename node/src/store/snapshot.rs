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
//! one key. A note is a bit per slab position. The memory a snapshot
//! costs is the records waiting in `buf` and those bits, not a copy of the
//! keyspace.
//! Both are bounded: once `buf` holds `SPILL` bytes it goes straight to the
//! file (`Direct`, from the shard thread), and a big value's record is
//! written there in `SPILL`-sized chunks as it is encoded, never whole.

use std::sync::{Arc, Mutex, PoisonError};

use super::rdb;
use super::Value;

/// Records a database's snapshot holds at most before they go straight to
/// the file; also the chunk a big value's record is written in.
pub const SPILL: usize = 256 << 10;

/// The snapshot file as a shard thread may write it directly: records of
/// database `db`, appended whole (the sink writes the SELECTDB they need).
/// A failure is kept by the sink and fails the snapshot.
pub trait RecordSink: Send {
    fn put(&mut self, db: u32, bytes: &[u8]);
}

/// The running snapshot's file, shared by its writer thread and the shards.
pub type Direct = Arc<Mutex<dyn RecordSink>>;

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
    /// String keys not encoded yet (`rdb::deferred` frames): the file's
    /// writer encodes them, not the shard thread.
    pub strings: Vec<u8>,
    /// Keys written so far.
    pub keys: u64,
    /// One bit per slab position: the key there, of a slot not serialised
    /// yet, was written out (or created) already, and its slot leaves it
    /// out. A position freed and reused meanwhile keeps its bit, which is
    /// right: the key that reuses it is new, or its slot is done.
    early: Vec<u64>,
    /// Where records go once `buf` is full, and big records as they are
    /// encoded (none in unit tests: everything stays in `buf`).
    direct: Option<Direct>,
}

impl DbSnapshot {
    pub fn new(number: u32, now: u64, slots: usize, direct: Option<Direct>) -> DbSnapshot {
        DbSnapshot {
            number,
            now,
            done: vec![0; slots.div_ceil(64)],
            next: 0,
            buf: Vec::new(),
            strings: Vec::new(),
            keys: 0,
            early: Vec::new(),
            direct,
        }
    }

    #[inline]
    pub fn is_done(&self, local: usize) -> bool {
        self.done[local / 64] & (1 << (local % 64)) != 0
    }

    pub fn mark_done(&mut self, local: usize) {
        self.done[local / 64] |= 1 << (local % 64);
    }

    /// Whether the key at slab position `idx` was handled ahead of its slot.
    #[inline]
    pub fn is_early(&self, idx: u32) -> bool {
        self.early.get(idx as usize / 64).is_some_and(|w| w & (1 << (idx % 64)) != 0)
    }

    pub fn mark_early(&mut self, idx: u32) {
        let w = idx as usize / 64;
        if w >= self.early.len() {
            self.early.resize(w + 1, 0);
        }
        self.early[w] |= 1 << (idx % 64);
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

    /// Appends one key's record, unless it had expired at the start. With
    /// a file to write to, a big value's record goes there in chunks as it
    /// is encoded, and `buf` goes there once it holds `SPILL` bytes.
    pub fn write(&mut self, key: &[u8], value: &Value, expire_at: u64) {
        if expire_at != 0 && expire_at <= self.now {
            return;
        }
        let at = (expire_at != 0).then_some(expire_at);
        self.keys += 1;
        if let Some(s) = deferrable(value) {
            rdb::deferred::push(&mut self.strings, key, s, expire_at);
            if self.strings.len() >= SPILL && self.direct.is_some() {
                // The writer is behind: encode them here rather than hold more.
                rdb::deferred::encode(&self.strings, &mut self.buf);
                self.strings.clear();
                self.spill_if_full();
            }
            return;
        }
        let Some(direct) = &self.direct else {
            return rdb::write_entry(&mut self.buf, key, value, at);
        };
        if value.heap_size() > SPILL {
            let mut file = direct.lock().unwrap_or_else(PoisonError::into_inner);
            let db = self.number;
            // What waits goes first: a record is written whole, in order.
            file.put(db, &self.buf);
            self.buf.clear();
            rdb::write_entry_spilling(&mut self.buf, key, value, at, SPILL, &mut |chunk| {
                file.put(db, chunk);
                chunk.clear();
            });
            file.put(db, &self.buf);
            self.buf.clear();
            return;
        }
        rdb::write_entry(&mut self.buf, key, value, at);
        self.spill_if_full();
    }

    /// Records and frames waiting to be taken, in bytes.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.strings.len()
    }

    /// Sends `buf` to the file once it holds `SPILL` bytes.
    fn spill_if_full(&mut self) {
        let Some(direct) = &self.direct else { return };
        if self.buf.len() >= SPILL {
            direct.lock().unwrap_or_else(PoisonError::into_inner).put(self.number, &self.buf);
            self.buf.clear();
            if self.buf.capacity() > 2 * SPILL {
                self.buf.shrink_to(SPILL);
            }
        }
    }
}

/// A string value the writer may encode: any but the big ones, which go
/// to the file in one piece as they are encoded (see `write`), never
/// copied whole.
fn deferrable(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Str(s) if s.len() <= DEFER_MAX => Some(s),
        _ => None,
    }
}

/// The longest string value handed to the writer unencoded.
const DEFER_MAX: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SmallBytes;

    #[test]
    fn pending_slots_skip_the_done_ones() {
        let mut s = DbSnapshot::new(0, 0, 130, None);
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
        let mut s = DbSnapshot::new(0, 1000, 1, None);
        s.write(b"old", &Value::Int(1), 999);
        s.write(b"old string", &Value::Str(SmallBytes::new(b"v")), 999);
        assert_eq!((s.keys, s.pending()), (0, 0));
        s.write(b"live", &Value::Int(1), 1001);
        s.write(b"forever", &Value::Int(1), 0);
        assert_eq!(s.keys, 2);
    }
}
