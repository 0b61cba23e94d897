//! What eviction needs from a database (`shard::evict` drives it): random
//! samples of its keys with their access metadata, the nearest expiries,
//! the keys created last, and deletion without counting an access. Kept
//! apart from the keyspace's own paths in `db.rs`.

use super::Db;
use crate::store::SmallBytes;

impl Db {
    /// The hash of `key` in this database's tables (what the frequency
    /// sketch is indexed by).
    pub fn key_hash(&self, key: &[u8]) -> u64 {
        self.hash(key)
    }

    /// Sets a key's access metadata (RESTORE's IDLETIME and FREQ).
    pub fn set_access_meta(&mut self, idx: u32, meta: u32) {
        self.entries.set_meta(idx, meta);
    }

    /// Calls `f(key, access metadata, expire_at, slab index)` for up to `n`
    /// keys picked at random, for eviction to choose among (a key may come
    /// twice); at least one when the database has a key (with a TTL, for
    /// `volatile`). `volatile`: keys found from random points of the expiry
    /// index. Otherwise the first live entry from each of `n` random slab
    /// positions: the samples are independent, as Redis's are (the slab is
    /// in insertion order, so neighbours there are keys written together: a
    /// walk from one position saw a batch of hot keys as a whole sample and
    /// could evict one of them).
    pub fn sample(&self, volatile: bool, n: usize, mut f: impl FnMut(&SmallBytes, u32, u64, u32)) {
        if volatile {
            let (Some(&(lo, _)), Some(&(hi, _))) = (self.expires.first(), self.expires.last()) else { return };
            for _ in 0..n {
                let at = if hi > lo { rand::random_range(lo..=hi) } else { lo };
                let Some(&(_, idx)) = self.expires.range((at, 0)..).next() else { continue };
                if let Some(e) = self.entries.get(idx) {
                    f(&e.key, self.entries.meta(idx), self.entries.expiry(idx), idx);
                }
            }
            return;
        }
        let cap = self.entries.capacity_used() as u32;
        if self.entries.is_empty() || cap == 0 {
            return;
        }
        // A sparse slab (most keys deleted since it grew) is walked on until
        // it yields one, so a database with keys always does; all the walks
        // together step over at most the slab's length.
        let mut steps = cap;
        // Positions are drawn a batch at a time and their lines requested
        // together: each is a cache miss on a big keyspace, and they overlap.
        let mut left = n;
        while left > 0 {
            let mut starts = [0u32; 16];
            let starts = &mut starts[..left.min(16)];
            left -= starts.len();
            for s in starts.iter_mut() {
                *s = rand::random_range(0..cap);
                self.entries.prefetch(*s);
            }
            for &start in starts.iter() {
                let live = (0..steps).find_map(|k| {
                    let i = (start + k) % cap;
                    self.entries.get(i).map(|e| (k, i, e))
                });
                let Some((k, i, e)) = live else { return };
                f(&e.key, self.entries.meta(i), self.entries.expiry(i), i);
                steps -= k;
            }
        }
    }

    /// Calls `f(key, access metadata, slab index)` for the keys created last (while
    /// the frequency sketch is on) that still exist.
    pub fn newest(&self, mut f: impl FnMut(&SmallBytes, u32, u32)) {
        for &idx in &self.newest {
            if let Some(e) = self.entries.get(idx) {
                f(&e.key, self.entries.meta(idx), idx);
            }
        }
    }

    /// The keys with the nearest expiry times, up to `n`: (key, expire_at,
    /// slab index).
    pub fn soonest_expiring(&self, n: usize, mut f: impl FnMut(&SmallBytes, u64, u32)) {
        for &(at, idx) in self.expires.iter().take(n) {
            if let Some(e) = self.entries.get(idx) {
                f(&e.key, at, idx);
            }
        }
    }

    /// Whether the entry at slab index `idx` is `key`.
    fn holds_at(&self, idx: u32, key: &[u8]) -> bool {
        self.entries.get(idx).is_some_and(|e| &*e.key == key)
    }

    /// Whether the entry at slab index `idx` is still `key` and live (an
    /// expired one is removed as expired): an eviction candidate is checked
    /// where it was sampled, without a lookup.
    pub fn live_at(&mut self, idx: u32, key: &[u8], now: u64) -> bool {
        if !self.holds_at(idx, key) {
            return false;
        }
        let at = self.entries.expiry(idx);
        if at != 0 && at <= now {
            self.remove_expired(idx);
            return false;
        }
        true
    }

    /// Deletes `key`, found at slab index `idx`, for eviction (no access
    /// counted, no expiry check); whether it was there.
    pub fn evict_at(&mut self, idx: u32, key: &[u8]) -> bool {
        if !self.holds_at(idx, key) {
            return false;
        }
        self.note_kind = super::NoteKind::Evicted;
        let gone = self.remove_idx(idx).is_some();
        self.note_kind = super::NoteKind::Changed;
        gone
    }

    /// Deletes `key` for eviction (no access counted, no expiry check);
    /// whether it existed.
    pub fn evict(&mut self, key: &[u8]) -> bool {
        match self.find(key) {
            Some(idx) => self.evict_at(idx, key),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{access, Db, Value};

    fn db() -> Db {
        Db::new(0, 1, 7)
    }

    #[test]
    fn reads_and_writes_count_as_accesses_but_exists_does_not() {
        let mut d = db();
        // A new key's metadata take the wall clock.
        let base = crate::util::now_ms();
        d.set(b"k", Value::string(b"v"), false, base);
        let meta = |d: &mut Db| d.peek(b"k", 0).unwrap().1;
        let now = base + 3_600_000;
        assert!(d.exists(b"k", now));
        assert!(access::idle_ms(meta(&mut d), now) >= 3_000_000, "EXISTS does not touch");
        d.get(b"k", now);
        assert_eq!(access::idle_ms(meta(&mut d), now), 0);
        d.set(b"k", Value::string(b"w"), false, now + 5_000);
        assert_eq!(access::idle_ms(meta(&mut d), now + 5_000), 0, "an overwrite keeps the slot and touches it");
    }

    #[test]
    fn sampling_and_eviction() {
        let mut d = db();
        for i in 0..1000 {
            let idx = d.set(format!("k{i}").as_bytes(), Value::string(b"v"), false, 0);
            if i % 10 == 0 {
                d.set_expire(idx, 10_000 + i);
            }
        }
        let mut n = 0;
        d.sample(false, 5, |_, _, _, _| n += 1);
        assert_eq!(n, 5);
        // Mostly deleted: sampling still finds the few keys left.
        let mut sparse = db();
        for i in 0..5000 {
            sparse.set(format!("s{i}").as_bytes(), Value::string(b"v"), false, 0);
        }
        for i in 0..4998 {
            sparse.remove(format!("s{i}").as_bytes(), 0);
        }
        for _ in 0..50 {
            let mut got = 0;
            sparse.sample(false, 5, |_, _, _, _| got += 1);
            assert!(got >= 1);
        }
        // Samples are independent of insertion order: five keys written
        // together (the first tenth) almost never make a whole sample
        // ((1/10)^5 each; a walk from one position made one in ten).
        let mut together = 0;
        for _ in 0..200 {
            let mut first_tenth = 0;
            d.sample(false, 5, |_, _, _, idx| first_tenth += usize::from(idx < 100));
            together += usize::from(first_tenth == 5);
        }
        assert!(together < 5, "{together} of 200 samples were keys written together");
        let mut seen = Vec::new();
        d.sample(true, 20, |k, _, at, _| seen.push((k.clone(), at)));
        assert_eq!(seen.len(), 20);
        assert!(seen.iter().all(|(_, at)| *at >= 10_000), "only keys with a TTL");
        let mut soon = Vec::new();
        d.soonest_expiring(2, |k, _, _| soon.push(k.to_vec()));
        assert_eq!(soon, [b"k0".to_vec(), b"k10".to_vec()]);
        assert!(d.evict(b"k0"));
        assert!(!d.evict(b"k0"));
        assert_eq!((d.len(), d.volatile_len()), (999, 99));
    }
}
