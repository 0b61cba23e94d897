//! The list type: a deque of elements, each a `SmallBytes` (short elements
//! inline). OBJECT ENCODING reports Redis's names: `listpack` while the
//! list is small (at most 128 elements of at most 64 bytes), `quicklist`
//! beyond.

use std::collections::VecDeque;

use super::SmallBytes;

#[derive(Clone, Default)]
pub struct ListValue {
    items: VecDeque<SmallBytes>,
}

impl ListValue {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push(&mut self, left: bool, v: &[u8]) {
        let v = SmallBytes::new(v);
        if left {
            self.items.push_front(v)
        } else {
            self.items.push_back(v)
        }
    }

    pub fn pop(&mut self, left: bool) -> Option<SmallBytes> {
        if left {
            self.items.pop_front()
        } else {
            self.items.pop_back()
        }
    }

    pub fn get(&self, i: usize) -> Option<&SmallBytes> {
        self.items.get(i)
    }

    pub fn set(&mut self, i: usize, v: &[u8]) -> bool {
        match self.items.get_mut(i) {
            Some(slot) => {
                *slot = SmallBytes::new(v);
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &SmallBytes> + ExactSizeIterator {
        self.items.iter()
    }

    pub fn insert(&mut self, i: usize, v: &[u8]) {
        self.items.insert(i, SmallBytes::new(v));
    }

    pub fn remove(&mut self, i: usize) {
        self.items.remove(i);
    }

    /// Keeps elements `start..=end` (already clamped), drops the rest.
    pub fn keep(&mut self, start: usize, end: usize) {
        if start > end || start >= self.items.len() {
            self.items.clear();
            return;
        }
        self.items.truncate(end + 1);
        self.items.drain(..start);
    }

    pub fn encoding(&self) -> &'static str {
        if self.items.len() <= 128 && self.items.iter().all(|e| e.len() <= 64) {
            "listpack"
        } else {
            "quicklist"
        }
    }

    pub fn heap_size(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<SmallBytes>() + self.items.iter().map(|e| e.heap_size()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deque_operations() {
        let mut l = ListValue::default();
        for (left, v) in [(false, "b"), (true, "a"), (false, "c")] {
            l.push(left, v.as_bytes());
        }
        let all: Vec<&[u8]> = l.iter().map(|e| &**e).collect();
        assert_eq!(all, [b"a".as_slice(), b"b", b"c"]);
        assert_eq!(l.encoding(), "listpack");
        l.keep(1, 1);
        assert_eq!(l.len(), 1);
        assert_eq!(&**l.get(0).unwrap(), b"b");
        l.keep(5, 9);
        assert!(l.is_empty());
        l.push(false, &[b'x'; 65]);
        assert_eq!(l.encoding(), "quicklist");
    }
}
