//! The member index of the large encoding: `(hash, id)` pairs in hash order
//! (ordered linear probing), so ZSCAN cursors survive resizes.

// ---------------------------------------------------------------- index

pub(super) const EMPTY: u64 = u64::MAX;
/// A segment splits in two rather than grow past this many home slots, so
/// the index never reallocates more than ~128 KiB at once (no large
/// transient copies, no long pauses on growth).
pub(super) const SEG_MAX_HOMES: usize = 1 << 14;

/// Member -> id, storing `(hash32 << 32) | id` per slot (8 bytes).
///
/// The 32-bit hash space is cut into contiguous ranges, one `Seg` each. A
/// segment is an ordered linear-probing table: an entry sits at or after its
/// home slot (its hash scaled into the segment's slots), with no empty slot
/// in between, entries are kept sorted by hash, and they never wrap around
/// (the vector grows at its end instead). Lookups stop at the first empty
/// slot or larger hash. Walking segments and slots in order visits entries
/// in hash order, so ZSCAN's cursor is simply a hash value.
#[derive(Clone)]
pub(super) struct Index {
    pub(super) segs: Vec<Seg>,
    pub(super) len: usize,
}

impl Default for Index {
    fn default() -> Self {
        Index { segs: vec![Seg::new(0, 1 << 32, 0)], len: 0 }
    }
}

#[derive(Clone)]
pub(super) struct Seg {
    /// The hash range covered: `lo..hi`.
    pub(super) lo: u64,
    pub(super) hi: u64,
    pub(super) slots: Vec<u64>,
    pub(super) homes: usize,
    pub(super) len: usize,
}

#[inline]
pub(super) fn slot_hash(v: u64) -> u32 {
    (v >> 32) as u32
}

impl Seg {
    pub(super) fn new(lo: u64, hi: u64, homes: usize) -> Seg {
        let n = if homes == 0 { 0 } else { homes + 8 + homes / 64 };
        Seg { lo, hi, slots: vec![EMPTY; n], homes, len: 0 }
    }

    #[inline]
    pub(super) fn home(&self, h: u32) -> usize {
        (((h as u64 - self.lo) * self.homes as u64) / (self.hi - self.lo)) as usize
    }

    pub(super) fn find(&self, h: u32, eq: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        let mut i = self.home(h);
        while let Some(&v) = self.slots.get(i) {
            if v == EMPTY || slot_hash(v) > h {
                return None;
            }
            if slot_hash(v) == h && eq(v as u32) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    pub(super) fn insert(&mut self, v: u64) {
        let h = slot_hash(v);
        let mut i = self.home(h);
        while i < self.slots.len() && self.slots[i] != EMPTY && slot_hash(self.slots[i]) <= h {
            i += 1;
        }
        let mut j = i;
        while j < self.slots.len() && self.slots[j] != EMPTY {
            j += 1;
        }
        if j == self.slots.len() {
            self.slots.reserve_exact(16);
            self.slots.push(EMPTY);
        }
        self.slots.copy_within(i..j, i + 1);
        self.slots[i] = v;
        self.len += 1;
    }

    /// Empties slot `i`, pulling back the entries displaced past it.
    pub(super) fn remove_at(&mut self, mut i: usize) {
        loop {
            let next = i + 1;
            match self.slots.get(next) {
                Some(&v) if v != EMPTY && self.home(slot_hash(v)) <= i => {
                    self.slots[i] = v;
                    i = next;
                }
                _ => break,
            }
        }
        self.slots[i] = EMPTY;
        self.len -= 1;
    }

    pub(super) fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().copied().filter(|&v| v != EMPTY)
    }

    /// A segment for `lo..hi` with `homes` home slots holding `entries`
    /// (`len` of them, sorted by hash).
    pub(super) fn build(lo: u64, hi: u64, entries: impl Iterator<Item = u64>, len: usize, homes: usize) -> Seg {
        let mut seg = Seg::new(lo, hi, homes);
        let mut next = 0;
        for v in entries {
            let pos = seg.home(slot_hash(v)).max(next);
            while pos >= seg.slots.len() {
                seg.slots.push(EMPTY);
            }
            seg.slots[pos] = v;
            next = pos + 1;
        }
        seg.len = len;
        seg
    }

    /// Home slots for `len` entries after a rebuild (load 5/8).
    pub(super) fn homes_for(len: usize) -> usize {
        (len * 8 / 5).max(8)
    }

    /// The two halves of the hash range.
    pub(super) fn split(&self) -> (Seg, Seg) {
        let mid = self.lo + (self.hi - self.lo) / 2;
        let left = self.entries().take_while(|&v| (slot_hash(v) as u64) < mid).count();
        let right = self.len - left;
        (
            Seg::build(self.lo, mid, self.entries().take(left), left, Seg::homes_for(left)),
            Seg::build(mid, self.hi, self.entries().skip(left), right, Seg::homes_for(right)),
        )
    }

    pub(super) fn resized(&self, homes: usize) -> Seg {
        Seg::build(self.lo, self.hi, self.entries(), self.len, homes)
    }
}

impl Index {
    /// The segment covering hash `h`.
    #[inline]
    pub(super) fn seg_of(&self, h: u32) -> usize {
        self.segs.partition_point(|s| s.hi <= h as u64)
    }

    /// Starts loading the home slot of hash `h` (the first of two prefetch
    /// steps of a lookup).
    #[inline]
    pub(super) fn prefetch_home(&self, h: u32) {
        if let Some(seg) = self.segs.get(self.seg_of(h)) {
            if let Some(v) = seg.slots.get(seg.home(h)) {
                crate::util::prefetch(v);
            }
        }
    }

    /// The ids of the entries with hash `h` (the second step: reads the
    /// slots the first loaded).
    #[inline]
    pub(super) fn each_with_hash(&self, h: u32, mut f: impl FnMut(u32)) {
        if let Some(seg) = self.segs.get(self.seg_of(h)) {
            let _ = seg.find(h, &mut |id| {
                f(id);
                false
            });
        }
    }

    /// Position (segment, slot) of the entry with hash `h` for which `eq(id)` holds.
    #[inline]
    pub(super) fn find(&self, h: u32, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, usize)> {
        let si = self.seg_of(h);
        self.segs[si].find(h, &mut eq).map(|i| (si, i))
    }

    pub(super) fn insert(&mut self, h: u32, id: u32) {
        let mut si = self.seg_of(h);
        let seg = &self.segs[si];
        if (seg.len + 1) * 8 > seg.homes * 7 {
            let grown = if seg.homes < 1024 { (seg.homes * 2).max(8) } else { seg.homes + seg.homes / 4 };
            if grown > SEG_MAX_HOMES && seg.hi - seg.lo > 1 {
                let (a, b) = seg.split();
                self.segs[si] = a;
                self.segs.insert(si + 1, b);
                si = self.seg_of(h);
                let seg = &self.segs[si];
                if (seg.len + 1) * 8 > seg.homes * 7 {
                    self.segs[si] = seg.resized(seg.homes * 2);
                }
            } else {
                self.segs[si] = seg.resized(grown);
            }
        }
        self.segs[si].insert(((h as u64) << 32) | id as u64);
        self.len += 1;
    }

    pub(super) fn remove_at(&mut self, (si, i): (usize, usize)) {
        self.segs[si].remove_at(i);
        self.len -= 1;
        let seg = &self.segs[si];
        if seg.len == 0 && self.segs.len() > 1 {
            // Hand the empty range to a neighbour.
            let gone = self.segs.remove(si);
            let (ni, lo, hi) = if si > 0 { (si - 1, self.segs[si - 1].lo, gone.hi) } else { (0, gone.lo, self.segs[0].hi) };
            let n = &self.segs[ni];
            self.segs[ni] = Seg::build(lo, hi, n.entries(), n.len, n.homes);
        } else if seg.homes > 64 && seg.len * 4 < seg.homes {
            self.segs[si] = seg.resized(Seg::homes_for(seg.len));
        }
    }

    pub(super) fn set_at(&mut self, (si, i): (usize, usize), h: u32, id: u32) {
        self.segs[si].slots[i] = ((h as u64) << 32) | id as u64;
    }

    /// Calls `f(id)` for entries in hash order starting at `cursor` (0 =
    /// start, else a hash + 1) until at least `count` were visited and the
    /// hash changes. Returns the next cursor, 0 when done.
    pub(super) fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(u32)) -> u64 {
        if cursor > u32::MAX as u64 + 1 {
            return 0;
        }
        let from = cursor.saturating_sub(1) as u32;
        let mut seen = 0;
        let mut last = None;
        for seg in &self.segs[self.seg_of(from)..] {
            let start = if (from as u64) >= seg.lo { seg.home(from) } else { 0 };
            for &v in seg.slots.get(start..).unwrap_or(&[]) {
                if v == EMPTY || slot_hash(v) < from {
                    continue;
                }
                let h = slot_hash(v);
                if seen >= count && last != Some(h) {
                    return h as u64 + 1;
                }
                f(v as u32);
                seen += 1;
                last = Some(h);
            }
        }
        0
    }

    pub(super) fn heap_size(&self) -> usize {
        self.segs.capacity() * std::mem::size_of::<Seg>() + self.segs.iter().map(|s| s.slots.capacity() * 8).sum::<usize>()
    }
}
