//! One logical database (as selected by SELECT) within one shard.
//!
//! Entries live in a chunked slab; each hash slot owned by the shard has its
//! own small hash table of slab indices, so a slot's keys can be counted,
//! listed and moved without touching the rest. Keys with a TTL are also kept
//! in an ordered expiry index, which makes active expiry exact and cheap.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::notify::{self, Note, NoteKind};
use super::slab::Slab;
use super::snapshot::DbSnapshot;
use super::{access, SmallBytes, Value};
use crate::slot::{key_slot, SLOTS};

mod evict;
mod persist;
mod prefetch;
mod slots;
mod watch;

/// A key and its value. Its expiry time (absolute Unix ms) lives beside it
/// in the slab, only for keys that have one (`Db::expire_of`).
pub struct Entry {
    pub key: SmallBytes,
    pub value: Value,
}

pub use watch::{raise_after_flush, Watchers};

/// Until when (Unix ms; 0: no) a key whose TTL has passed is left in
/// place: it reads as missing but is not deleted, while CLIENT PAUSE holds
/// the data still (Redis's expireIfNeeded during a pause). Set by
/// `shard::clients`.
pub static KEEP_EXPIRED_UNTIL: AtomicU64 = AtomicU64::new(0);

pub struct Db {
    shard: usize,
    nshards: usize,
    /// The running command's first key (address and length of its bytes,
    /// which live as long as the command) and its slot, as the routing
    /// found it; `slot_of` takes it instead of hashing that key again.
    slot_hint: (usize, usize, u16),
    hasher: FixedState,
    /// One table per slot owned by this shard, indexed by `slot / nshards`.
    tables: slots::SlotTables,
    entries: Slab<Entry>,
    /// (expire_at, slab index) of every key with a TTL.
    expires: BTreeSet<(u64, u32)>,
    /// The sum of the deadlines in `expires` (INFO keyspace's `avg_ttl`).
    expire_sum: u128,
    /// WATCHed keys and the flags of the clients watching them. Every write
    /// path below raises the flags of the key it changes.
    watched: Watchers,
    /// While a script runs on its fast path: how to put back every key it
    /// changed (see `undo_begin`). `None` the rest of the time.
    undo: Option<Box<UndoLog>>,
    /// A cleared log kept for the next script (saves its allocations).
    undo_spare: Option<Box<UndoLog>>,
    /// How many written keys and keys found expired the journal had noted
    /// when the undo log began: a rollback forgets what the undone run
    /// noted (the values are back as they were).
    undo_journal: (usize, usize),
    /// While a migration moves some of this shard's slots away: which, and
    /// the keys of theirs changed since the migration last asked.
    tracking: Option<Box<Tracking>>,
    /// Keys clients are blocked on (BZPOPMIN & co.), and those of them
    /// written since the shard last served its blocked clients.
    wake: std::collections::HashSet<SmallBytes>,
    ready: std::cell::RefCell<Vec<SmallBytes>>,
    /// While a snapshot is being taken: this database's part of it.
    snap: Option<Box<DbSnapshot>>,
    /// Keys deleted because their TTL passed, found by a lookup or the
    /// active cycle, not yet taken into the shard's `expired_keys`.
    expired: u64,
    /// Changes made so far (each key written or deleted counts once per
    /// write path taken): what save points and INFO's
    /// `rdb_changes_since_last_save` count.
    changes: u64,
    /// With the append-only journal on: the keys written since the shard
    /// last took them (`journal_take`), so it can journal their new state.
    journal: Option<Vec<SmallBytes>>,
    /// With the journal on: keys deleted because their TTL had passed
    /// while a command looked them up, since the shard last took them. A
    /// command journaled as sent must be preceded by their DEL (replay
    /// expires nothing: the key would still be there for it).
    journal_expired: Vec<SmallBytes>,
    /// While the frequency sketch is on (`store::sketch`): the slab indices
    /// of the last keys created, newest at `newest_at`, for eviction to
    /// weigh each newcomer against the keys it would displace.
    newest: [u32; NEWEST],
    newest_at: usize,
    /// While keyspace notifications are on: the keys changed, created,
    /// expired or evicted since the shard last took them (`take_notes`).
    notes: Vec<Note>,
    /// What a deletion in progress is (expiry and eviction say so).
    note_kind: NoteKind,
    /// Events a command adds to its declared ones (XADD's `xtrim`, a
    /// consumer created by XREADGROUP): (class, event, key).
    extra_events: Vec<(u32, &'static str, SmallBytes)>,
}

/// Keys created lately that eviction considers besides its samples.
const NEWEST: usize = 8;

/// Change tracking for the slots a migration moves (see `Db::track`).
pub struct Tracking {
    /// Per local slot index: tracked or not.
    slots: Vec<bool>,
    changed: std::collections::HashSet<SmallBytes>,
}

/// The state of each key before its first change since `Db::undo_begin`:
/// its value and expiry, or `None` if it did not exist.
#[derive(Default)]
struct UndoLog {
    /// Keys recorded, once there are too many for a linear scan.
    seen: std::collections::HashSet<SmallBytes>,
    before: Vec<(SmallBytes, Option<(Value, u64)>)>,
}

impl UndoLog {
    const SCAN: usize = 16;

    fn has(&self, key: &[u8]) -> bool {
        if self.before.len() < Self::SCAN {
            self.before.iter().any(|(k, _)| &**k == key)
        } else {
            self.seen.contains(key)
        }
    }

    fn record(&mut self, key: SmallBytes, before: Option<(Value, u64)>) {
        if self.before.len() >= Self::SCAN {
            if self.seen.is_empty() {
                self.seen.extend(self.before.iter().map(|(k, _)| k.clone()));
            }
            self.seen.insert(key.clone());
        }
        self.before.push((key, before));
    }

    fn clear(&mut self) {
        self.seen.clear();
        self.before.clear();
    }
}

impl Db {
    pub fn new(shard: usize, nshards: usize, seed: u64) -> Db {
        let nslots = (SLOTS - shard).div_ceil(nshards);
        let tables = slots::SlotTables::new(nslots);
        Db {
            shard,
            nshards,
            slot_hint: (0, 0, 0),
            hasher: FixedState::with_seed(seed),
            tables,
            entries: Slab::default(),
            expires: BTreeSet::new(),
            expire_sum: 0,
            watched: HashMap::new(),
            undo: None,
            undo_spare: None,
            undo_journal: (0, 0),
            tracking: None,
            wake: Default::default(),
            ready: Default::default(),
            snap: None,
            expired: 0,
            changes: 0,
            journal: None,
            journal_expired: Vec::new(),
            notes: Vec::new(),
            note_kind: NoteKind::Changed,
            extra_events: Vec::new(),
            newest: [u32::MAX; NEWEST],
            newest_at: 0,
        }
    }

    #[inline]
    fn local(&self, slot: u16) -> usize {
        debug_assert_eq!(slot as usize % self.nshards, self.shard);
        slot as usize / self.nshards
    }

    /// The slot of `key`: the hint's when `key` is the very bytes it names.
    #[inline]
    fn slot_of(&self, key: &[u8]) -> u16 {
        let (addr, len, slot) = self.slot_hint;
        if len != 0 && key.len() == len && key.as_ptr() as usize == addr {
            slot
        } else {
            key_slot(key)
        }
    }

    /// Lends the slot of `key` (an argument of the command about to run)
    /// until `clear_slot_hint`, which must come before `key` is dropped.
    pub fn set_slot_hint(&mut self, key: &[u8], slot: u16) {
        debug_assert_eq!(key_slot(key), slot);
        self.slot_hint = (key.as_ptr() as usize, key.len(), slot);
    }

    pub fn clear_slot_hint(&mut self) {
        self.slot_hint = (0, 0, 0);
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of the main index (the per-slot hash tables and the entry
    /// slab's bookkeeping) and of the expiry index (the ordered set of
    /// deadlines, counted at its B-tree's element size plus a third for
    /// node slack, and the slab's expiry arrays): MEMORY STATS'
    /// `overhead.hashtable.main` and `.expires`.
    pub fn overhead(&self) -> (usize, usize) {
        let tables = self.tables.heap_size();
        let (slab, expiry_arrays) = self.entries.overhead();
        let deadlines = self.expires.len() * std::mem::size_of::<(u64, u32)>() * 4 / 3;
        (tables + slab, deadlines + expiry_arrays)
    }

    pub fn volatile_len(&self) -> usize {
        self.expires.len()
    }

    /// Whether `key` is stored (expired or not; nothing is deleted).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// The average time left of the keys with a TTL, in ms (INFO
    /// keyspace's `avg_ttl`; 0 when none).
    pub fn avg_ttl(&self, now: u64) -> u64 {
        match self.expires.len() {
            0 => 0,
            n => ((self.expire_sum / n as u128) as u64).saturating_sub(now),
        }
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        self.find_in(key, self.slot_of(key))
    }

    fn find_in(&self, key: &[u8], slot: u16) -> Option<u32> {
        let local = self.local(slot);
        let h = self.hash(key);
        let entries = &self.entries;
        self.tables[local].find(h, |&i| entries.get(i).is_some_and(|e| &*e.key == key)).copied()
    }

    /// Finds a live key, deleting it first if its TTL has passed. Counts as
    /// an access (the key's LRU/LFU metadata are updated).
    pub fn lookup(&mut self, key: &[u8], now: u64) -> Option<u32> {
        if super::sketch::is_on() {
            super::sketch::record(self.hash(key));
        }
        let idx = self.lookup_quiet(key, now)?;
        let meta = self.entries.meta(idx);
        self.entries.set_meta(idx, access::accessed(meta, now));
        Some(idx)
    }

    /// `lookup` without counting an access (EXISTS, OBJECT, eviction).
    pub fn lookup_quiet(&mut self, key: &[u8], now: u64) -> Option<u32> {
        let idx = self.find(key)?;
        let at = self.entries.expiry(idx);
        if at != 0 && at <= now {
            if now < KEEP_EXPIRED_UNTIL.load(Relaxed) {
                return None;
            }
            self.remove_expired(idx);
            return None;
        }
        Some(idx)
    }

    /// The keys deleted for their TTL since the last call.
    pub fn take_expired(&mut self) -> u64 {
        std::mem::take(&mut self.expired)
    }

    /// A live key's entry and access metadata, without counting an access.
    pub fn peek(&mut self, key: &[u8], now: u64) -> Option<(&Entry, u32)> {
        let idx = self.lookup_quiet(key, now)?;
        Some((self.entries.get(idx)?, self.entries.meta(idx)))
    }

    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        let idx = self.lookup(key, now)?;
        self.entries.get(idx)
    }

    /// Mutable access to a live key's entry, for a write: watchers are told.
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let idx = self.lookup(key, now)?;
        self.touch_idx(idx);
        self.entries.get_mut(idx)
    }

    /// The expiry time (absolute Unix ms) of the key at `idx`, if it has one.
    #[inline]
    pub fn expire_of(&self, idx: u32) -> Option<u64> {
        Some(self.entries.expiry(idx)).filter(|&at| at != 0)
    }

    pub fn exists(&mut self, key: &[u8], now: u64) -> bool {
        self.lookup_quiet(key, now).is_some()
    }

    pub fn entry(&self, idx: u32) -> &Entry {
        self.entries.get(idx).expect("live slab index")
    }

    /// Mutable access to an entry, for a write: watchers of the key are told.
    pub fn entry_mut(&mut self, idx: u32) -> &mut Entry {
        self.touch_idx(idx);
        self.entries.get_mut(idx).expect("live slab index")
    }

    /// Mutable access to an entry for a change of representation only
    /// (SORT switching a sorted set to its tree encoding, as Redis does):
    /// nothing a client reads changes, so watchers, blocked clients and a
    /// migration's change tracking are not told.
    pub fn entry_repr_mut(&mut self, idx: u32) -> &mut Entry {
        self.entries.get_mut(idx).expect("live slab index")
    }

    /// Marks `key` ready when clients are blocked on it, and tells its
    /// watchers that it changed.
    #[inline]
    fn touch(&mut self, key: &[u8]) {
        if !self.wake.is_empty() && self.wake.contains(key) {
            self.ready.borrow_mut().push(SmallBytes::new(key));
        }
        if !self.watched.is_empty() {
            watch::raise(&mut self.watched, key, false);
        }
    }

    /// Called before every change to the entry at `idx`: tells its watchers
    /// and, while an undo log is active, records its current state.
    #[inline]
    fn touch_idx(&mut self, idx: u32) {
        self.changes += 1;
        if notify::on() {
            if let Some(e) = self.entries.get(idx) {
                notify::push(&mut self.notes, &e.key, self.note_kind);
            }
        }
        if self.snap.is_some() {
            self.snapshot_before_change(idx);
        }
        if let Some(j) = &mut self.journal {
            if let Some(e) = self.entries.get(idx) {
                j.push(e.key.clone());
            }
        }
        if !self.wake.is_empty() {
            if let Some(e) = self.entries.get(idx) {
                if self.wake.contains(&e.key) {
                    self.ready.borrow_mut().push(e.key.clone());
                }
            }
        }
        if self.tracking.is_some() {
            if let Some(e) = self.entries.get(idx) {
                let key = e.key.clone();
                self.note_change(&key);
            }
        }
        if !self.watched.is_empty() {
            if let Some(e) = self.entries.get(idx) {
                watch::raise(&mut self.watched, &e.key, self.note_kind == NoteKind::Expired);
            }
        }
        if let Some(u) = &mut self.undo {
            if let Some(e) = self.entries.get(idx) {
                if !u.has(&e.key) {
                    u.record(e.key.clone(), Some((e.value.clone(), self.entries.expiry(idx))));
                }
            }
        }
    }

    /// Starts recording, for each key changed from now on, its state before
    /// the first change, so `undo_rollback` can restore it. Used by scripts on
    /// their single-shard fast path: if a script turns out to need other
    /// shards, its changes so far are undone (nobody else could see them)
    /// and it runs again under a wider lock.
    pub fn undo_begin(&mut self) {
        self.undo = Some(self.undo_spare.take().unwrap_or_default());
        self.undo_journal = (self.journal.as_ref().map_or(0, Vec::len), self.journal_expired.len());
    }

    /// Stops recording and keeps every change.
    pub fn undo_commit(&mut self) {
        if let Some(mut log) = self.undo.take() {
            if log.before.capacity() <= 1024 {
                log.clear();
                self.undo_spare = Some(log);
            }
        }
    }

    /// Stops recording and puts every recorded key back as it was.
    pub fn undo_rollback(&mut self) {
        let Some(mut log) = self.undo.take() else { return };
        for (key, before) in log.before.drain(..).rev() {
            if let Some(idx) = self.find(&key) {
                self.remove_idx(idx);
            }
            if let Some((value, expire_at)) = before {
                self.insert_new(&key, value, expire_at);
            }
        }
        // Nobody saw those changes: no events for them, nothing to journal.
        self.notes.clear();
        self.extra_events.clear();
        if let Some(j) = &mut self.journal {
            j.truncate(self.undo_journal.0);
        }
        self.journal_expired.truncate(self.undo_journal.1);
        log.clear();
        self.undo_spare = Some(log);
    }

    /// Inserts a key known to be absent.
    pub fn insert_new(&mut self, key: &[u8], value: Value, expire_at: u64) -> u32 {
        self.changes += 1;
        if notify::on() {
            notify::push(&mut self.notes, key, NoteKind::New);
        }
        let local = self.local(self.slot_of(key));
        if let Some(j) = &mut self.journal {
            j.push(SmallBytes::new(key));
        }
        self.touch(key);
        if self.tracking.is_some() {
            self.note_change(key);
        }
        if let Some(u) = &mut self.undo {
            if !u.has(key) {
                u.record(SmallBytes::new(key), None);
            }
        }
        let h = self.hash(key);
        let meta = access::initial(crate::util::now_ms());
        let idx = self.entries.insert(Entry { key: SmallBytes::new(key), value }, meta);
        if super::sketch::is_on() {
            self.newest_at = (self.newest_at + 1) % NEWEST;
            self.newest[self.newest_at] = idx;
            super::sketch::fit(self.len());
        }
        if expire_at != 0 {
            self.entries.set_expiry(idx, expire_at);
            self.expires.insert((expire_at, idx));
            self.expire_sum += u128::from(expire_at);
        }
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.tables[local].insert_unique(h, idx, |&i| hasher.hash_one(&*entries.get(i).expect("indexed").key));
        if self.snap.is_some() {
            self.snapshot_after_insert(local, idx);
        }
        idx
    }

    /// Sets `key` to `value`. The TTL is cleared unless `keep_ttl`.
    /// Returns the slab index.
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool, now: u64) -> u32 {
        match self.lookup(key, now) {
            Some(idx) => {
                if !keep_ttl {
                    self.set_expire(idx, 0);
                }
                self.entry_mut(idx).value = value;
                idx
            }
            None => self.insert_new(key, value, 0),
        }
    }

    /// Changes a key's TTL (0 removes it).
    pub fn set_expire(&mut self, idx: u32, expire_at: u64) {
        self.touch_idx(idx);
        let old = self.entries.set_expiry(idx, expire_at);
        if old != 0 {
            self.expires.remove(&(old, idx));
            self.expire_sum -= u128::from(old);
        }
        if expire_at != 0 {
            self.expires.insert((expire_at, idx));
            self.expire_sum += u128::from(expire_at);
        }
    }

    pub fn remove(&mut self, key: &[u8], now: u64) -> Option<Entry> {
        let idx = self.lookup(key, now)?;
        self.remove_idx(idx)
    }

    /// Deletes a key whose TTL has passed.
    fn remove_expired(&mut self, idx: u32) -> Option<Entry> {
        if self.journal.is_some() {
            if let Some(e) = self.entries.get(idx) {
                self.journal_expired.push(e.key.clone());
            }
        }
        self.expired += 1;
        self.note_kind = NoteKind::Expired;
        let e = self.remove_idx(idx);
        self.note_kind = NoteKind::Changed;
        e
    }

    /// The keys noted since the last call (see `store::notify`).
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// Moves the notes to the end of `out`, keeping this database's buffer
    /// for the next ones.
    pub fn move_notes_into(&mut self, out: &mut Vec<Note>) {
        if out.is_empty() {
            // The usual case (one database written): no copy.
            std::mem::swap(out, &mut self.notes);
        } else {
            out.append(&mut self.notes);
        }
    }

    pub fn has_notes(&self) -> bool {
        !self.notes.is_empty() || !self.extra_events.is_empty()
    }

    /// Adds an event to the running command's (kept only while keyspace
    /// notifications are on).
    pub fn push_event(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if notify::events() {
            self.extra_events.push((class, event, SmallBytes::new(key)));
        }
    }

    /// The events `push_event` added since the last call.
    pub fn take_events(&mut self) -> Vec<(u32, &'static str, SmallBytes)> {
        std::mem::take(&mut self.extra_events)
    }

    pub fn remove_idx(&mut self, idx: u32) -> Option<Entry> {
        self.touch_idx(idx);
        let e = self.entries.get(idx)?;
        let local = self.local(key_slot(&e.key));
        let h = self.hash(&e.key);
        if let Ok(found) = self.tables[local].find_entry(h, |&i| i == idx) {
            found.remove();
        }
        let table = &mut self.tables[local];
        if table.is_empty() {
            // A slot emptied holds nothing (there are 16384 of them), nor
            // its chunk of tables once all of them are empty.
            *table = HashTable::new();
            self.tables.release_if_empty(local);
        } else if table.capacity() > 64 && table.len() < table.capacity() / 8 {
            // A slot mostly emptied gives back its room (shrink_map's rule).
            let (entries, hasher) = (&self.entries, &self.hasher);
            table.shrink_to(table.len() * 2, |&i| hasher.hash_one(&*entries.get(i).expect("indexed").key));
        }
        let at = self.entries.expiry(idx);
        let e = self.entries.remove(idx)?;
        if at != 0 {
            self.expires.remove(&(at, idx));
            self.expire_sum -= u128::from(at);
        }
        Some(e)
    }

    /// Deletes up to `budget` keys whose TTL is at or before `now`; returns
    /// how many were deleted.
    pub fn expire_cycle(&mut self, now: u64, budget: usize) -> usize {
        let mut n = 0;
        while n < budget {
            let Some(&(at, idx)) = self.expires.first() else { break };
            if at > now {
                break;
            }
            self.remove_expired(idx);
            n += 1;
        }
        n
    }

    /// Number of keys stored in `slot` (expired but not yet reclaimed keys
    /// included, as Redis's COUNTKEYSINSLOT).
    pub fn slot_len(&self, slot: u16) -> usize {
        self.tables[self.local(slot)].len()
    }

    /// Every key stored in `slot` (expired ones included).
    pub fn slot_keys(&self, slot: u16) -> Vec<SmallBytes> {
        let t = &self.tables[self.local(slot)];
        t.iter().filter_map(|&i| self.entries.get(i)).map(|e| e.key.clone()).collect()
    }

    /// Deletes up to `max` keys of `slot`; returns how many.
    pub fn drain_slot(&mut self, slot: u16, max: usize) -> usize {
        let local = self.local(slot);
        let victims: Vec<u32> = self.tables[local].iter().take(max).copied().collect();
        for &i in &victims {
            self.remove_idx(i);
        }
        victims.len()
    }

    /// Marks `key` as one clients are blocked on (or no longer, `false`).
    pub fn set_wake(&mut self, key: &[u8], on: bool) {
        if on {
            self.wake.insert(SmallBytes::new(key));
        } else {
            self.wake.remove(key);
            crate::util::shrink_map(&mut self.wake);
        }
    }

    /// Marks `key` for the shard to serve its blocked clients after the
    /// current job.
    pub fn mark_ready(&self, key: &[u8]) {
        self.ready.borrow_mut().push(SmallBytes::new(key));
    }

    /// Hands the blocked-on keys over before the database is dropped
    /// (FLUSHDB); the waiters stay blocked.
    pub fn take_wake(&mut self) -> std::collections::HashSet<SmallBytes> {
        std::mem::take(&mut self.wake)
    }

    pub fn set_wake_all(&mut self, wake: std::collections::HashSet<SmallBytes>) {
        self.wake = wake;
    }

    /// The keys clients are blocked on that were written since the last call.
    pub fn take_ready(&mut self) -> Vec<SmallBytes> {
        std::mem::take(self.ready.get_mut())
    }

    /// Starts recording which keys of `slots` (owned by this shard) change,
    /// for a migration moving them away: every write path notes its key.
    pub fn track(&mut self, slots: &[u16]) {
        let mut t = Tracking { slots: vec![false; self.tables.len()], changed: Default::default() };
        for &s in slots {
            let l = self.local(s);
            t.slots[l] = true;
        }
        self.tracking = Some(Box::new(t));
    }

    /// The keys of the tracked slots changed since the last call.
    pub fn take_changed(&mut self) -> Vec<SmallBytes> {
        match &mut self.tracking {
            Some(t) => t.changed.drain().collect(),
            None => Vec::new(),
        }
    }

    /// Stops tracking.
    pub fn untrack(&mut self) {
        self.tracking = None;
    }

    /// Hands the tracking over before the database is dropped (FLUSHDB):
    /// every key of a tracked slot counts as changed.
    pub fn take_tracking(&mut self) -> Option<Box<Tracking>> {
        let mut t = self.tracking.take()?;
        for (l, table) in self.tables.iter().enumerate() {
            if t.slots[l] {
                t.changed.extend(table.iter().filter_map(|&i| self.entries.get(i)).map(|e| e.key.clone()));
            }
        }
        Some(t)
    }

    pub fn set_tracking(&mut self, t: Option<Box<Tracking>>) {
        self.tracking = t;
    }

    fn note_change(&mut self, key: &[u8]) {
        let l = self.slot_of(key) as usize / self.nshards;
        if let Some(t) = &mut self.tracking {
            if t.slots.get(l).copied().unwrap_or(false) {
                t.changed.insert(SmallBytes::new(key));
            }
        }
    }

    /// Calls `f` with every live key of `slot`.
    pub fn for_each_in_slot(&self, slot: u16, now: u64, mut f: impl FnMut(&Entry)) {
        for &i in self.tables[self.local(slot)].iter() {
            if let Some(e) = self.entries.get(i) {
                let at = self.entries.expiry(i);
                if at == 0 || at > now {
                    f(e);
                }
            }
        }
    }

    /// Calls `f` with every key held, its TTL passed or not (as DEBUG
    /// DIGEST walks Redis's dictionary), and whether it has one.
    pub fn for_each_held(&self, mut f: impl FnMut(&Entry, bool)) {
        for table in self.tables.iter() {
            for &i in table.iter() {
                if let Some(e) = self.entries.get(i) {
                    f(e, self.entries.expiry(i) != 0);
                }
            }
        }
    }

    /// The slots owned by this shard, in ascending order.
    pub fn slots(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.tables.len()).map(move |l| (l * self.nshards + self.shard) as u16)
    }

    /// A random live key, if any (bounded number of probes).
    pub fn random_key(&mut self, now: u64) -> Option<SmallBytes> {
        if self.entries.is_empty() {
            return None;
        }
        let cap = self.entries.capacity_used() as u32;
        for _ in 0..1000 {
            let i = rand::random_range(0..cap);
            let Some(e) = self.entries.get(i) else { continue };
            let at = self.entries.expiry(i);
            if at != 0 && at <= now {
                self.remove_expired(i);
                if self.entries.is_empty() {
                    return None;
                }
                continue;
            }
            return Some(e.key.clone());
        }
        None
    }
}

#[cfg(test)]
mod tests;
