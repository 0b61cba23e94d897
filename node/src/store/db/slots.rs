//! A database's key index by hash slot: one hash table per slot the shard
//! owns, allocated `CHUNK` slots at a time as keys arrive there. An empty
//! database holds 2 KB of chunk pointers instead of a table header per
//! slot (512 KB for the 16384 slots), and a lookup reads the chunk pointer
//! from that small, hot array before the table it names.

use std::ops::{Index, IndexMut};

use hashbrown::HashTable;

/// Slots per chunk of tables.
const CHUNK: usize = 64;

/// What a slot without a chunk reads as.
static EMPTY: HashTable<u32> = HashTable::new();

pub struct SlotTables {
    chunks: Vec<Option<Box<[HashTable<u32>; CHUNK]>>>,
    len: usize,
}

impl SlotTables {
    /// Tables for `len` slots, none allocated.
    pub fn new(len: usize) -> SlotTables {
        SlotTables { chunks: (0..len.div_ceil(CHUNK)).map(|_| None).collect(), len }
    }

    /// How many slots (local indices `0..len`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Every slot's table, by local index (empty ones included).
    pub fn iter(&self) -> impl Iterator<Item = &HashTable<u32>> {
        (0..self.len).map(|l| &self[l])
    }

    /// Gives back the chunk of slot `l` when none of its tables holds
    /// anything any more (called when a slot's table empties).
    pub fn release_if_empty(&mut self, l: usize) {
        let c = &mut self.chunks[l / CHUNK];
        if c.as_ref().is_some_and(|t| t.iter().all(|t| t.capacity() == 0)) {
            *c = None;
        }
    }

    /// The bytes the allocated chunks and the chunk pointers take, and
    /// the tables' buckets (each a `u32` and a control byte).
    pub fn heap_size(&self) -> usize {
        let chunk = std::mem::size_of::<[HashTable<u32>; CHUNK]>();
        let chunks = self.chunks.iter().flatten().count() * chunk + self.chunks.len() * std::mem::size_of::<usize>();
        let buckets: usize = self.chunks.iter().flatten().flat_map(|c| c.iter()).map(|t| t.capacity()).sum();
        chunks + buckets * (std::mem::size_of::<u32>() + 1)
    }
}

impl Index<usize> for SlotTables {
    type Output = HashTable<u32>;

    #[inline]
    fn index(&self, l: usize) -> &HashTable<u32> {
        match &self.chunks[l / CHUNK] {
            Some(c) => &c[l % CHUNK],
            None => &EMPTY,
        }
    }
}

/// Writing a slot's table allocates its chunk.
impl IndexMut<usize> for SlotTables {
    #[inline]
    fn index_mut(&mut self, l: usize) -> &mut HashTable<u32> {
        let c = self.chunks[l / CHUNK].get_or_insert_with(|| Box::new(std::array::from_fn(|_| HashTable::new())));
        &mut c[l % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_allocated_as_slots_are_written() {
        let mut t = SlotTables::new(16384);
        assert_eq!(t.len(), 16384);
        let empty = t.heap_size();
        assert!(empty <= 256 * 8, "{empty}");
        assert!(t[5000].is_empty());
        t[5000].insert_unique(7, 1, |&i| i as u64);
        assert_eq!(t[5000].len(), 1);
        assert!(t[5001].is_empty() && t[4999].is_empty());
        assert_eq!(t.iter().map(|x| x.len()).sum::<usize>(), 1);
        assert!(t.heap_size() > empty);
        t.release_if_empty(5000);
        assert!(t.heap_size() > empty, "a table still holds a key");
        t[5000] = HashTable::new();
        t.release_if_empty(5000);
        assert_eq!(t.heap_size(), empty, "the emptied chunk is given back");
    }
}
