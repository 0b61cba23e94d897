//! Prefetching for a pipelined batch: starting the loads of the index
//! lines and entries (and big values' member slots) its commands will
//! look up, so the cache misses of the batch overlap.

use hashbrown::HashTable;

use super::Db;

impl Db {
    /// Starts loading what looking up each key (with its slot; keys of
    /// other shards are passed over) will read: its slot's table header,
    /// the table's probe group and the entries whose tags match, with their
    /// metadata and expiry times (once for a run of the same key). A
    /// batch's cache misses then overlap instead of stalling each command
    /// in turn (at 100k keys and more, the lookups' misses were a third of
    /// a pipelined GET's CPU). Changes nothing; a hint to the CPU only.
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = (&'k [u8], u16)>) {
        const STEP: usize = 16;
        let mut probes = [(0usize, 0u64); STEP];
        let mut n = 0;
        let entries = &self.entries;
        let probe = |probes: &[(usize, u64)]| {
            for &(local, h) in probes {
                self.tables[local].find(h, |&i| {
                    entries.prefetch(i);
                    false
                });
            }
        };
        // A key named again right after itself (a pipeline of LPUSHes to
        // one list) is loaded by the first look already.
        let mut last: &[u8] = &[];
        for (key, slot) in keys {
            if slot as usize % self.nshards != self.shard || std::mem::replace(&mut last, key) == key {
                continue;
            }
            let local = self.local(slot);
            let table = &self.tables[local];
            crate::util::prefetch(table as *const HashTable<u32>);
            probes[n] = (local, self.hash(key));
            n += 1;
            if n == STEP {
                probe(&probes);
                n = 0;
            }
        }
        probe(&probes[..n]);
    }

    /// Starts loading, for each (key, slot, member), where the key's hash,
    /// set or sorted set keeps the member, in two steps over the batch (the bucket,
    /// then the first node of its chain) so the misses overlap. Follows
    /// `prefetch` of the same keys; keys not stored are passed over.
    pub fn prefetch_members<'k>(&self, items: impl Iterator<Item = (&'k [u8], u16, &'k [u8])>) {
        const STEP: usize = 16;
        let mut found = [(0u32, 0u64); STEP];
        let mut n = 0;
        let chain = |found: &[(u32, u64)]| {
            for &(i, pos) in found {
                if let Some(e) = self.entries.get(i) {
                    e.value.prefetch_member_chain(pos);
                }
            }
        };
        for (key, slot, member) in items {
            let Some(i) = self.find_in(key, slot) else { continue };
            let Some(pos) = self.entries.get(i).and_then(|e| e.value.prefetch_member(member)) else { continue };
            found[n] = (i, pos);
            n += 1;
            if n == STEP {
                chain(&found);
                n = 0;
            }
        }
        chain(&found[..n]);
    }
}
