//! `IntSet`: a sorted array of distinct integers stored at the narrowest
//! width that holds them all (2, 4 or 8 bytes), as Redis's intset is: the
//! small set of integers (product IDs, user IDs) found by binary search.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntSet {
    W16(Vec<i16>),
    W32(Vec<i32>),
    W64(Vec<i64>),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::W16(Vec::new())
    }
}

fn search<T: Copy + Into<i64>>(v: &[T], x: i64) -> Result<usize, usize> {
    v.binary_search_by(|e| (*e).into().cmp(&x))
}

fn widen<T: Copy + Into<i64>, U: From<T>>(v: &[T], extra: usize) -> Vec<U> {
    let mut out = Vec::with_capacity(v.len() + extra);
    out.extend(v.iter().map(|&e| U::from(e)));
    out
}

/// Inserts `x` at `at`, growing the array by exactly one element.
fn insert_exact<T>(v: &mut Vec<T>, at: usize, x: T) {
    v.reserve_exact(1);
    v.insert(at, x);
}

impl IntSet {
    pub fn len(&self) -> usize {
        match self {
            IntSet::W16(v) => v.len(),
            IntSet::W32(v) => v.len(),
            IntSet::W64(v) => v.len(),
        }
    }

    /// The `i`th smallest.
    pub fn get(&self, i: usize) -> Option<i64> {
        match self {
            IntSet::W16(v) => v.get(i).map(|&x| x.into()),
            IntSet::W32(v) => v.get(i).map(|&x| x.into()),
            IntSet::W64(v) => v.get(i).copied(),
        }
    }

    fn find(&self, x: i64) -> Result<usize, usize> {
        match self {
            IntSet::W16(v) => search(v, x),
            IntSet::W32(v) => search(v, x),
            IntSet::W64(v) => search(v, x),
        }
    }

    pub fn contains(&self, x: i64) -> bool {
        self.find(x).is_ok()
    }

    /// Adds `x`; true when it was new. Widens the array when `x` does not
    /// fit its width.
    pub fn insert(&mut self, x: i64) -> bool {
        let Err(at) = self.find(x) else { return false };
        match self {
            IntSet::W16(v) => match i16::try_from(x) {
                Ok(x) => insert_exact(v, at, x),
                Err(_) => match i32::try_from(x) {
                    Ok(x) => {
                        let mut w: Vec<i32> = widen(v, 1);
                        w.insert(at, x);
                        *self = IntSet::W32(w);
                    }
                    Err(_) => {
                        let mut w: Vec<i64> = widen(v, 1);
                        w.insert(at, x);
                        *self = IntSet::W64(w);
                    }
                },
            },
            IntSet::W32(v) => match i32::try_from(x) {
                Ok(x) => insert_exact(v, at, x),
                Err(_) => {
                    let mut w: Vec<i64> = widen(v, 1);
                    w.insert(at, x);
                    *self = IntSet::W64(w);
                }
            },
            IntSet::W64(v) => insert_exact(v, at, x),
        }
        true
    }

    /// Removes `x`; true when it was there. The width stays (as Redis's).
    pub fn remove(&mut self, x: i64) -> bool {
        match self.find(x) {
            Ok(at) => {
                self.remove_at(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes and returns the `i`th smallest.
    pub fn remove_at(&mut self, i: usize) -> i64 {
        match self {
            IntSet::W16(v) => v.remove(i).into(),
            IntSet::W32(v) => v.remove(i).into(),
            IntSet::W64(v) => v.remove(i),
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or_default())
    }

    pub fn heap_size(&self) -> usize {
        match self {
            IntSet::W16(v) => v.capacity() * 2,
            IntSet::W32(v) => v.capacity() * 4,
            IntSet::W64(v) => v.capacity() * 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_distinct_and_widening() {
        let mut s = IntSet::default();
        for x in [5, -3, 5, 100, 0] {
            s.insert(x);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), [-3, 0, 5, 100]);
        assert!(matches!(s, IntSet::W16(_)));
        assert_eq!(s.heap_size(), 8);
        assert!(s.insert(70_000));
        assert!(matches!(s, IntSet::W32(_)));
        assert!(s.insert(i64::MIN));
        assert!(matches!(s, IntSet::W64(_)));
        assert_eq!(s.iter().collect::<Vec<_>>(), [i64::MIN, -3, 0, 5, 100, 70_000]);
        assert!(s.contains(70_000) && !s.contains(6));
        assert!(s.remove(5) && !s.remove(5));
        assert_eq!(s.remove_at(0), i64::MIN);
        assert_eq!(s.len(), 4);
        assert_eq!(s.get(3), Some(70_000));
        let mut w = IntSet::default();
        w.insert(1);
        w.insert(i64::MAX);
        assert_eq!(w.iter().collect::<Vec<_>>(), [1, i64::MAX]);
    }
}
