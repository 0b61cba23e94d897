//! A chunked slab of entries addressed by `u32`. Chunks have a fixed size, so
//! growing never copies existing entries and memory follows the key count
//! closely (a doubling vector would waste up to half its capacity).
//!
//! Each position also has 24 bits of metadata (`meta`), kept beside the
//! entries in a parallel array per chunk: packed three bytes per position,
//! where a field in `T` would cost eight with padding.
//!
//! And each position has a `u64` expiry time (0: none) in a per-chunk array
//! that exists only while some position of the chunk has one, so keys
//! without a TTL pay nothing for it.
//!
//! A full chunk whose positions are all free again (keys that came and went
//! together: a burst of cache entries expiring) gives back its memory; its
//! positions stay in the free list, and the first one reused brings the
//! chunk back.

use crate::util::{prefetch, prefetch_whole};

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

pub struct Slab<T> {
    chunks: Vec<Vec<Option<T>>>,
    /// Per chunk, the 24-bit metadata of each position (little endian).
    meta: Vec<Vec<[u8; 3]>>,
    /// Per chunk, the positions holding a value.
    live: Vec<u16>,
    /// Per chunk, the expiry times of its positions and how many are not 0;
    /// `None` while none is.
    expiry: Vec<Option<Expiry>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { chunks: Vec::new(), meta: Vec::new(), live: Vec::new(), expiry: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of addressable positions (occupied or free).
    pub fn capacity_used(&self) -> usize {
        match self.chunks.last() {
            None => 0,
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.len(),
        }
    }

    /// Bytes of bookkeeping besides the stored values: the access metadata
    /// (3 bytes a position), the free list, the chunks' room not holding a
    /// value (free positions and spare capacity), and, separately, the
    /// per-chunk expiry arrays. (MEMORY STATS' per-database overheads.)
    pub fn overhead(&self) -> (usize, usize) {
        let slot = std::mem::size_of::<Option<T>>();
        let meta: usize = self.meta.iter().map(|m| m.capacity() * 3).sum();
        let room: usize = self.chunks.iter().map(|c| c.capacity()).sum::<usize>().saturating_sub(self.len) * slot;
        let expiry: usize = self.expiry.iter().flatten().map(|e| e.at.capacity() * 8).sum();
        (meta + room + self.free.capacity() * 4, expiry)
    }

    /// Stores `v` with metadata `meta` (24 bits); returns its position.
    pub fn insert(&mut self, v: T, meta: u32) -> u32 {
        self.len += 1;
        let m = meta_bytes(meta);
        if let Some(i) = self.free.pop() {
            let (c, o) = ((i >> CHUNK_BITS) as usize, i as usize & (CHUNK - 1));
            if self.chunks[c].is_empty() {
                // A chunk given back (every one of its positions is free).
                self.chunks[c] = std::iter::repeat_with(|| None).take(CHUNK).collect();
                self.meta[c] = vec![[0; 3]; CHUNK];
            }
            self.chunks[c][o] = Some(v);
            self.meta[c][o] = m;
            self.live[c] += 1;
            return i;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            // The first chunk grows gradually so tiny databases stay tiny;
            // later ones are allocated whole.
            let cap = if self.chunks.is_empty() { 16 } else { CHUNK };
            self.chunks.push(Vec::with_capacity(cap));
            self.meta.push(Vec::with_capacity(cap));
            self.live.push(0);
            self.expiry.push(None);
        }
        let ci = self.chunks.len() - 1;
        self.live[ci] += 1;
        let chunk = &mut self.chunks[ci];
        let meta = &mut self.meta[ci];
        if chunk.len() == chunk.capacity() {
            let more = chunk.capacity().min(CHUNK - chunk.len());
            chunk.reserve_exact(more);
            meta.reserve_exact(more);
        }
        chunk.push(Some(v));
        meta.push(m);
        ((ci << CHUNK_BITS) | (chunk.len() - 1)) as u32
    }

    /// Asks the CPU to start loading position `i`, its metadata and its
    /// expiry time (if its chunk has any) into the cache, so several random
    /// positions' misses overlap (eviction sampling reads a handful of them
    /// at once, a pipelined batch its keys' entries). Does nothing for a
    /// position never used.
    #[inline]
    pub fn prefetch(&self, i: u32) {
        let (c, o) = ((i >> CHUNK_BITS) as usize, i as usize & (CHUNK - 1));
        if let (Some(slot), Some(meta)) = (self.chunks.get(c).and_then(|c| c.get(o)), self.meta.get(c).and_then(|m| m.get(o))) {
            prefetch_whole(slot);
            prefetch(meta.as_ptr());
        }
        if let Some(Some(e)) = self.expiry.get(c) {
            if let Some(at) = e.at.get(o) {
                prefetch(at as *const u64);
            }
        }
    }

    /// The metadata of position `i` (0 for a position never used).
    #[inline]
    pub fn meta(&self, i: u32) -> u32 {
        match self.meta.get((i >> CHUNK_BITS) as usize).and_then(|c| c.get(i as usize & (CHUNK - 1))) {
            Some(&[a, b, c]) => u32::from_le_bytes([a, b, c, 0]),
            None => 0,
        }
    }

    #[inline]
    pub fn set_meta(&mut self, i: u32, meta: u32) {
        if let Some(m) = self.meta.get_mut((i >> CHUNK_BITS) as usize).and_then(|c| c.get_mut(i as usize & (CHUNK - 1))) {
            *m = meta_bytes(meta);
        }
    }

    /// The expiry time of position `i` (0: none).
    #[inline]
    pub fn expiry(&self, i: u32) -> u64 {
        match self.expiry.get((i >> CHUNK_BITS) as usize) {
            Some(Some(e)) => e.at.get(i as usize & (CHUNK - 1)).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// Sets the expiry time of position `i` (0: none); returns the old one.
    pub fn set_expiry(&mut self, i: u32, at: u64) -> u64 {
        let c = (i >> CHUNK_BITS) as usize;
        let o = i as usize & (CHUNK - 1);
        let (Some(slot), Some(chunk)) = (self.expiry.get_mut(c), self.chunks.get(c)) else { return 0 };
        if o >= chunk.len() {
            return 0;
        }
        let Some(e) = slot else {
            if at != 0 {
                // As long as the chunk is now (the first one grows).
                let mut times = vec![0; chunk.capacity()];
                times[o] = at;
                *slot = Some(Expiry { at: times, count: 1 });
            }
            return 0;
        };
        if o >= e.at.len() {
            if at == 0 {
                return 0;
            }
            e.at.resize(chunk.capacity(), 0);
        }
        let old = std::mem::replace(&mut e.at[o], at);
        match (old != 0, at != 0) {
            (false, true) => e.count += 1,
            (true, false) => e.count -= 1,
            _ => {}
        }
        if e.count == 0 {
            *slot = None;
        }
        old
    }

    #[inline]
    pub fn get(&self, i: u32) -> Option<&T> {
        self.chunks.get((i >> CHUNK_BITS) as usize)?.get(i as usize & (CHUNK - 1))?.as_ref()
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.chunks.get_mut((i >> CHUNK_BITS) as usize)?.get_mut(i as usize & (CHUNK - 1))?.as_mut()
    }

    pub fn remove(&mut self, i: u32) -> Option<T> {
        let c = (i >> CHUNK_BITS) as usize;
        let v = self.chunks.get_mut(c)?.get_mut(i as usize & (CHUNK - 1))?.take()?;
        self.set_expiry(i, 0);
        self.len -= 1;
        self.free.push(i);
        self.live[c] -= 1;
        if self.len == 0 {
            self.chunks.clear();
            self.meta.clear();
            self.live.clear();
            self.expiry.clear();
            self.free = Vec::new();
        } else if self.live[c] == 0 && self.chunks[c].len() == CHUNK {
            // Every position of a full chunk is in the free list: only the
            // storage goes (a partly filled last chunk keeps growing).
            self.chunks[c] = Vec::new();
            self.meta[c] = Vec::new();
        }
        Some(v)
    }
}

/// The expiry times of one chunk's positions.
struct Expiry {
    at: Vec<u64>,
    /// Positions whose time is not 0.
    count: u32,
}

#[inline]
fn meta_bytes(meta: u32) -> [u8; 3] {
    let [a, b, c, _] = meta.to_le_bytes();
    [a, b, c]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_reuse() {
        let mut s = Slab::default();
        let ids: Vec<u32> = (0..3000).map(|i| s.insert(i, i as u32 * 5000)).collect();
        assert_eq!(s.meta(ids[2999]), (2999 * 5000) & 0xff_ffff);
        s.set_meta(ids[7], 0xabcdef);
        assert_eq!(s.meta(ids[7]), 0xabcdef);
        assert_eq!(s.len(), 3000);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(s.get(*id), Some(&i));
        }
        assert_eq!(s.remove(ids[5]), Some(5));
        assert_eq!(s.get(ids[5]), None);
        let again = s.insert(99, 1);
        assert_eq!(s.meta(again), 1);
        assert_eq!(again, ids[5]);
        assert_eq!(s.get(again), Some(&99));
        for id in ids {
            s.remove(id);
        }
        s.remove(again);
        assert!(s.is_empty());
        assert_eq!(s.capacity_used(), 0);
    }

    #[test]
    fn a_chunk_emptied_gives_back_its_memory_and_comes_back_on_reuse() {
        let mut s = Slab::default();
        let ids: Vec<u32> = (0..3 * CHUNK as u32).map(|i| s.insert(i, i)).collect();
        // The middle chunk empties (its positions in any order).
        for &id in ids[CHUNK..2 * CHUNK].iter().rev() {
            assert_eq!(s.remove(id), Some(id));
        }
        assert!(s.chunks[1].capacity() == 0 && s.meta[1].capacity() == 0);
        assert_eq!(s.get(ids[CHUNK + 5]), None);
        assert_eq!(s.meta(ids[CHUNK + 5]), 0);
        assert_eq!(s.expiry(ids[CHUNK + 5]), 0);
        assert_eq!(s.set_expiry(ids[CHUNK + 5], 9), 0);
        assert_eq!(s.len(), 2 * CHUNK);
        // Reuse brings it back, one position at a time.
        let again = s.insert(7, 3);
        assert_eq!(again, ids[CHUNK]);
        assert_eq!((s.get(again), s.meta(again)), (Some(&7), 3));
        assert_eq!(s.chunks[1].len(), CHUNK);
        let more: Vec<u32> = (0..CHUNK as u32).map(|i| s.insert(i, 0)).collect();
        assert!(more[..CHUNK - 1].iter().all(|&i| i >> CHUNK_BITS == 1));
        assert_eq!(more[CHUNK - 1] >> CHUNK_BITS, 3);
        for &id in ids[..CHUNK].iter().chain(&ids[2 * CHUNK..]) {
            assert_eq!(s.get(id), Some(&id));
        }
    }

    #[test]
    fn expiry_array_exists_only_while_used() {
        let mut s = Slab::default();
        let ids: Vec<u32> = (0..2000).map(|i| s.insert(i, 0)).collect();
        assert!(s.expiry.iter().all(Option::is_none));
        assert_eq!(s.set_expiry(ids[1500], 0), 0);
        assert!(s.expiry.iter().all(Option::is_none));
        assert_eq!(s.set_expiry(ids[1500], 77), 0);
        assert_eq!(s.set_expiry(ids[1501], 78), 0);
        assert_eq!(s.expiry(ids[1500]), 77);
        assert_eq!(s.expiry(ids[3]), 0);
        assert!(s.expiry[0].is_none() && s.expiry[1].is_some());
        assert_eq!(s.set_expiry(ids[1500], 0), 77);
        assert!(s.expiry[1].is_some());
        // A removed position's time goes with it, and the array when empty.
        s.remove(ids[1501]);
        assert!(s.expiry[1].is_none());
        let again = s.insert(5, 0);
        assert_eq!(again, ids[1501]);
        assert_eq!(s.expiry(again), 0);
        assert_eq!(s.expiry(u32::MAX), 0);
        assert_eq!(s.set_expiry(u32::MAX, 9), 0);
    }
}
