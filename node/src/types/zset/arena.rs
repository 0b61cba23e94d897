//! The arena of the large encoding: member bytes and scores in 64 KiB
//! chunks, ids that are positions, compaction of half-dead chunks.

use super::*;

// ---------------------------------------------------------------- arena

pub(super) const CHUNK_BITS: u32 = 16;
pub(super) const CHUNK_SIZE: usize = 1 << CHUNK_BITS;
pub(super) const MAX_CHUNKS: usize = 1 << (32 - CHUNK_BITS);
/// Members longer than this get an allocation of their own; the arena entry
/// holds its index in `Arena::large`.
pub(super) const LARGE_MEMBER: usize = 1024;
pub(super) const FLAG_DEAD: u64 = 1;
pub(super) const FLAG_LARGE: u64 = 2;

#[derive(Clone, Default)]
pub(super) struct Chunk {
    pub(super) data: Vec<u8>,
    /// Bytes of dead entries.
    pub(super) dead: u32,
}

/// Member bytes and scores of a large set, packed in chunks. An entry is
/// `varint(payload_len << 2 | large << 1 | dead)`, the score (8 bytes), and
/// the payload: the member, or a u32 index into `large`.
#[derive(Clone, Default)]
pub(super) struct Arena {
    pub(super) chunks: Vec<Chunk>,
    pub(super) free_chunks: Vec<u32>,
    pub(super) tail: u32,
    pub(super) large: Vec<Box<[u8]>>,
    pub(super) free_large: Vec<u32>,
}

#[inline]
pub(super) fn split_id(id: u32) -> (usize, usize) {
    ((id >> CHUNK_BITS) as usize, (id as usize) & (CHUNK_SIZE - 1))
}

impl Arena {
    /// Header value, header length, and payload offset of the entry at `id`.
    #[inline]
    pub(super) fn header(&self, id: u32) -> (u64, usize) {
        let (c, off) = split_id(id);
        let mut p = off;
        let hdr = get_varint(&self.chunks[c].data, &mut p).unwrap_or(0);
        (hdr, p)
    }

    /// Starts loading the entry `id` (header, score and a short member).
    #[inline]
    pub(super) fn prefetch(&self, id: u32) {
        let (c, off) = split_id(id);
        if let Some(b) = self.chunks.get(c).and_then(|c| c.data.get(off)) {
            crate::util::prefetch(b);
        }
    }

    #[inline]
    pub(super) fn score(&self, id: u32) -> f64 {
        let (c, _) = split_id(id);
        let (_, p) = self.header(id);
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&self.chunks[c].data[p..p + 8]);
        f64::from_le_bytes(raw)
    }

    pub(super) fn set_score(&mut self, id: u32, score: f64) {
        let (c, _) = split_id(id);
        let (_, p) = self.header(id);
        self.chunks[c].data[p..p + 8].copy_from_slice(&score.to_le_bytes());
    }

    #[inline]
    pub(super) fn member(&self, id: u32) -> &[u8] {
        let (c, _) = split_id(id);
        let (hdr, p) = self.header(id);
        let len = (hdr >> 2) as usize;
        let payload = &self.chunks[c].data[p + 8..p + 8 + len];
        if hdr & FLAG_LARGE != 0 {
            let i = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
            &self.large[i as usize]
        } else {
            payload
        }
    }

    /// Total size of the entry at `id`.
    pub(super) fn entry_size(&self, id: u32) -> usize {
        let (c, off) = split_id(id);
        let (hdr, p) = self.header(id);
        let _ = c;
        p - off + 8 + (hdr >> 2) as usize
    }

    /// Space for `size` bytes in the tail chunk (starting a new one when it
    /// is full); returns the id the entry will have.
    pub(super) fn reserve(&mut self, size: usize) -> Option<u32> {
        if self.chunks.is_empty() {
            self.chunks.push(Chunk { data: Vec::with_capacity(size.max(64)), dead: 0 });
            self.tail = 0;
        }
        let t = self.tail as usize;
        if self.chunks[t].data.len() + size > CHUNK_SIZE {
            let next = match self.free_chunks.pop() {
                Some(c) => c as usize,
                None => {
                    if self.chunks.len() >= MAX_CHUNKS {
                        return None;
                    }
                    self.chunks.push(Chunk::default());
                    self.chunks.len() - 1
                }
            };
            self.chunks[next] = Chunk { data: Vec::with_capacity(CHUNK_SIZE), dead: 0 };
            self.tail = next as u32;
        }
        let t = self.tail as usize;
        let data = &mut self.chunks[t].data;
        if data.len() + size > data.capacity() {
            // The first chunk of a set grows gradually, so small sets stay small.
            let want = (data.capacity() * 2).max(data.len() + size).min(CHUNK_SIZE);
            data.reserve_exact(want - data.len());
        }
        Some(((t as u32) << CHUNK_BITS) | data.len() as u32)
    }

    pub(super) fn alloc(&mut self, score: f64, member: &[u8]) -> Option<u32> {
        let large = member.len() > LARGE_MEMBER;
        let payload_len = if large { 4 } else { member.len() };
        let hdr = ((payload_len as u64) << 2) | if large { FLAG_LARGE } else { 0 };
        let size = varint_len(hdr) + 8 + payload_len;
        let id = self.reserve(size)?;
        let payload: [u8; 4] = if large {
            let boxed: Box<[u8]> = member.into();
            let i = match self.free_large.pop() {
                Some(i) => {
                    self.large[i as usize] = boxed;
                    i
                }
                None => {
                    self.large.push(boxed);
                    (self.large.len() - 1) as u32
                }
            };
            i.to_le_bytes()
        } else {
            [0; 4]
        };
        let data = &mut self.chunks[self.tail as usize].data;
        put_varint(data, hdr);
        data.extend_from_slice(&score.to_le_bytes());
        data.extend_from_slice(if large { &payload } else { member });
        Some(id)
    }

    /// Marks an entry dead. Returns the chunk to compact when that chunk is
    /// now more than half dead.
    pub(super) fn free(&mut self, id: u32, keep_large: bool) -> Option<usize> {
        let (c, off) = split_id(id);
        let (hdr, p) = self.header(id);
        if hdr & FLAG_LARGE != 0 && !keep_large {
            let d = &self.chunks[c].data;
            let i = u32::from_le_bytes([d[p + 8], d[p + 9], d[p + 10], d[p + 11]]);
            self.large[i as usize] = Box::default();
            self.free_large.push(i);
        }
        let size = p - off + 8 + (hdr >> 2) as usize;
        let chunk = &mut self.chunks[c];
        chunk.data[off] |= FLAG_DEAD as u8;
        chunk.dead += size as u32;
        if chunk.dead as usize == chunk.data.len() && c == self.tail as usize {
            // Everything in the tail is dead: start it over.
            chunk.data.clear();
            chunk.dead = 0;
            return None;
        }
        (c != self.tail as usize && chunk.dead as usize * 2 > chunk.data.len()).then_some(c)
    }

    /// Ids of the live entries of chunk `c`.
    pub(super) fn live_in(&self, c: usize) -> Vec<u32> {
        let data = &self.chunks[c].data;
        let mut v = Vec::new();
        let mut p = 0;
        while p < data.len() {
            let start = p;
            let hdr = get_varint(data, &mut p).unwrap_or(0);
            p += 8 + (hdr >> 2) as usize;
            if hdr & FLAG_DEAD == 0 {
                v.push(((c as u32) << CHUNK_BITS) | start as u32);
            }
        }
        v
    }

    /// Copies the entry `id` to the tail; the old copy becomes dead.
    pub(super) fn relocate(&mut self, id: u32) -> Option<u32> {
        let (c, off) = split_id(id);
        let size = self.entry_size(id);
        let bytes: Vec<u8> = self.chunks[c].data[off..off + size].to_vec();
        let new = self.reserve(size)?;
        self.chunks[self.tail as usize].data.extend_from_slice(&bytes);
        self.free(id, true);
        Some(new)
    }

    /// Frees a chunk whose entries are all dead.
    pub(super) fn release(&mut self, c: usize) {
        self.chunks[c] = Chunk::default();
        self.free_chunks.push(c as u32);
    }

    pub(super) fn heap_size(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(|c| c.data.capacity()).sum::<usize>()
            + self.free_chunks.capacity() * 4
            + self.large.capacity() * 16
            + self.large.iter().map(|b| b.len()).sum::<usize>()
            + self.free_large.capacity() * 4
    }
}
