//! A chunked slab of entries addressed by `u32`. Chunks have a fixed size, so
//! growing never copies existing entries and memory follows the key count
//! closely (a doubling vector would waste up to half its capacity).

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

pub struct Slab<T> {
    chunks: Vec<Vec<Option<T>>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { chunks: Vec::new(), free: Vec::new(), len: 0 }
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

    pub fn insert(&mut self, v: T) -> u32 {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            self.chunks[(i >> CHUNK_BITS) as usize][i as usize & (CHUNK - 1)] = Some(v);
            return i;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            // The first chunk grows gradually so tiny databases stay tiny;
            // later ones are allocated whole.
            let cap = if self.chunks.is_empty() { 16 } else { CHUNK };
            self.chunks.push(Vec::with_capacity(cap));
        }
        let ci = self.chunks.len() - 1;
        let chunk = &mut self.chunks[ci];
        if chunk.len() == chunk.capacity() {
            chunk.reserve_exact(chunk.capacity().min(CHUNK - chunk.len()));
        }
        chunk.push(Some(v));
        ((ci << CHUNK_BITS) | (chunk.len() - 1)) as u32
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
        let v = self.chunks.get_mut((i >> CHUNK_BITS) as usize)?.get_mut(i as usize & (CHUNK - 1))?.take()?;
        self.len -= 1;
        self.free.push(i);
        if self.len == 0 {
            self.chunks.clear();
            self.free = Vec::new();
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_reuse() {
        let mut s = Slab::default();
        let ids: Vec<u32> = (0..3000).map(|i| s.insert(i)).collect();
        assert_eq!(s.len(), 3000);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(s.get(*id), Some(&i));
        }
        assert_eq!(s.remove(ids[5]), Some(5));
        assert_eq!(s.get(ids[5]), None);
        let again = s.insert(99);
        assert_eq!(again, ids[5]);
        assert_eq!(s.get(again), Some(&99));
        for id in ids {
            s.remove(id);
        }
        s.remove(again);
        assert!(s.is_empty());
        assert_eq!(s.capacity_used(), 0);
    }
}
