//! What snapshots and the journal need from a database: the part of a
//! snapshot it owes (`store::snapshot`; the write paths call the
//! `snapshot_before_*` hooks), the keys written since the journal last
//! took them, and its change count. Kept apart from the keyspace's own
//! paths in `db.rs`.

use super::super::snapshot::{DbSnapshot, Direct};
use super::{Db, Entry};
use crate::slot::key_slot;
use crate::store::SmallBytes;

/// The most written keys whose room `journal_give_back` keeps for the
/// next job (a big job's vector is dropped).
const KEPT_KEYS: usize = 1024;

impl Db {
    /// How many written keys the journal has noted so far (a mark for
    /// `journal_forget_since`), if it is on. (A script rolled back and run
    /// again leaves nothing of its first run: `undo_rollback` and
    /// `Shard::journal_script_end`.)
    pub fn journal_mark(&self) -> Option<usize> {
        self.journal.as_ref().map(|j| j.len())
    }

    /// Forgets the keys noted since `mark` (a command journaled as sent);
    /// whether there were any.
    pub fn journal_forget_since(&mut self, mark: usize) -> bool {
        match &mut self.journal {
            Some(j) if j.len() > mark => {
                j.truncate(mark);
                true
            }
            _ => false,
        }
    }

    /// Starts (or stops) noting written keys for the journal.
    pub fn journal_on(&mut self, on: bool) {
        self.journal = on.then(Vec::new);
        self.journal_expired = Vec::new();
    }

    /// The keys deleted on lookup because their TTL had passed, since the
    /// last call (see `journal_expired`).
    pub fn journal_take_expired(&mut self) -> Vec<SmallBytes> {
        std::mem::take(&mut self.journal_expired)
    }

    /// Forgets them (their deletion is journaled as their state).
    pub fn journal_clear_expired(&mut self) {
        self.journal_expired.clear();
    }

    /// Forgets the keys written since the last call (their records would
    /// go nowhere), keeping the room for the next ones.
    pub fn journal_forget(&mut self) {
        if let Some(j) = &mut self.journal {
            j.clear();
        }
        self.journal_expired.clear();
    }

    /// The keys written since the last call (each once), if journaling.
    pub fn journal_take(&mut self) -> Vec<SmallBytes> {
        match &mut self.journal {
            Some(j) if !j.is_empty() => {
                let mut keys = std::mem::take(j);
                if keys.len() > 1 {
                    keys.sort_unstable();
                    keys.dedup();
                }
                keys
            }
            _ => Vec::new(),
        }
    }

    /// Gives back the vector `journal_take` returned, emptied, so that the
    /// next job's keys reuse its room (one allocation less per job).
    pub fn journal_give_back(&mut self, mut keys: Vec<SmallBytes>) {
        if let Some(j) = &mut self.journal {
            if j.capacity() == 0 && keys.capacity() <= KEPT_KEYS {
                keys.clear();
                *j = keys;
            }
        }
    }

    /// The entry of `key` and its expiry time as they are, expired or not,
    /// without counting an access (the journal records what the keyspace
    /// holds).
    pub fn entry_as_is(&self, key: &[u8]) -> Option<(&Entry, Option<u64>)> {
        let i = self.find(key)?;
        Some((self.entries.get(i)?, self.expire_of(i)))
    }

    /// Changes made to this database so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Starts this database's part of a snapshot as database `number`
    /// (see `store::snapshot`).
    /// Records go to `direct` past a bound (none: all kept for the step).
    pub fn snapshot_begin(&mut self, number: u32, now: u64, direct: Option<Direct>) {
        self.snap = Some(Box::new(DbSnapshot::new(number, now, self.tables.len(), direct)));
    }

    pub fn snapshotting(&self) -> bool {
        self.snap.is_some()
    }

    /// Serialises slots in order until `budget` bytes wait to be taken or
    /// every slot is serialised; true once every slot is.
    pub fn snapshot_step(&mut self, budget: usize) -> bool {
        let slots = self.tables.len();
        loop {
            let Some(s) = &mut self.snap else { return true };
            if s.pending() >= budget {
                return false;
            }
            match s.next_pending(slots) {
                Some(l) => self.snapshot_slot(l),
                None => return true,
            }
        }
    }

    /// The records written since the last call, with the snapshot's
    /// database number: (number, RDB records, string keys still to encode
    /// as `rdb::deferred` frames).
    pub fn snapshot_take(&mut self) -> Option<(u32, Vec<u8>, Vec<u8>)> {
        let s = self.snap.as_mut()?;
        if s.pending() == 0 {
            return None;
        }
        Some((s.number, std::mem::take(&mut s.buf), std::mem::take(&mut s.strings)))
    }

    /// Keys this database's part of the running snapshot wrote so far.
    pub fn snapshot_keys(&self) -> u64 {
        self.snap.as_ref().map_or(0, |s| s.keys)
    }

    /// Ends this database's part (finished or abandoned); returns the
    /// number of keys it wrote.
    pub fn snapshot_end(&mut self) -> u64 {
        self.snap.take().map_or(0, |s| s.keys)
    }

    /// Before the entry at `idx` changes while a snapshot runs: unless its
    /// slot is serialised already, the key is written out as it still is
    /// (and its slot will skip it).
    #[cold]
    pub(super) fn snapshot_before_change(&mut self, idx: u32) {
        if self.snap.as_ref().is_none_or(|s| s.is_early(idx)) {
            return;
        }
        let Some(e) = self.entries.get(idx) else { return };
        let local = self.local(key_slot(&e.key));
        let Some(s) = &mut self.snap else { return };
        if s.is_done(local) {
            return;
        }
        s.write(&e.key, &e.value, self.entries.expiry(idx));
        s.mark_early(idx);
    }

    /// After a new key was created at slab position `idx` of local slot
    /// `local` while a snapshot runs: the snapshot, which did not have it,
    /// must not pick it up later.
    #[cold]
    pub(super) fn snapshot_after_insert(&mut self, local: usize, idx: u32) {
        let Some(s) = &mut self.snap else { return };
        if !s.is_done(local) {
            s.mark_early(idx);
        }
    }

    /// Serialises local slot `local` as it is now, unless it already is,
    /// leaving out the keys written out (or created) ahead of it.
    fn snapshot_slot(&mut self, local: usize) {
        let Some(s) = &mut self.snap else { return };
        if s.is_done(local) {
            return;
        }
        s.mark_done(local);
        for &i in self.tables[local].iter() {
            if s.is_early(i) {
                continue;
            }
            if let Some(e) = self.entries.get(i) {
                s.write(&e.key, &e.value, self.entries.expiry(i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Db;
    use crate::store::{SmallBytes, Value};

    fn db() -> Db {
        Db::new(0, 1, 7)
    }

    /// What a snapshot begun now holds once finished, while the keys change
    /// under it (per-key hooks; new keys reusing freed slab positions).
    fn snapshot_after(d: &mut Db, change: impl FnOnce(&mut Db)) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
        use crate::store::rdb;
        d.snapshot_begin(0, 1, None);
        // Serialise a few slots first, then change keys, then finish.
        d.snapshot_step(1);
        change(d);
        while !d.snapshot_step(1 << 20) {}
        let (_, mut body, strings) = d.snapshot_take().unwrap_or_default();
        rdb::deferred::encode(&strings, &mut body);
        d.snapshot_end();
        let mut file = Vec::new();
        rdb::write_header(&mut file, &[]);
        rdb::write_select_db(&mut file, 0);
        file.extend_from_slice(&body);
        rdb::write_eof(&mut file);
        file.extend_from_slice(&[0; 8]);
        let mut r = rdb::Reader::new(&file[..]).expect("header");
        let mut out = std::collections::BTreeMap::new();
        while let Some(item) = r.next().expect("a valid snapshot") {
            if let rdb::Item::Entry { key, value: Value::Str(v), .. } = item {
                assert!(out.insert(key, v.to_vec()).is_none(), "a key written twice");
            }
        }
        out
    }

    #[test]
    fn a_snapshot_holds_the_state_at_its_start() {
        let mut d = db();
        for i in 0..3000 {
            d.set(format!("k{i}").as_bytes(), Value::Str(SmallBytes::new(b"old")), false, 0);
        }
        let snap = snapshot_after(&mut d, |d| {
            for i in 0..3000 {
                match i % 3 {
                    0 => d.set(format!("k{i}").as_bytes(), Value::Str(SmallBytes::new(b"new")), false, 0),
                    1 => d.remove(format!("k{i}").as_bytes(), 0).map_or(0, |_| 0),
                    _ => d.insert_new(format!("fresh{i}").as_bytes(), Value::Str(SmallBytes::new(b"new")), 0),
                };
            }
        });
        assert_eq!(snap.len(), 3000, "every key of the start, and none created since");
        assert!(snap.iter().all(|(k, v)| k.starts_with(b"k") && v == b"old"));
    }
}
