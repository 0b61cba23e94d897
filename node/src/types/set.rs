//! The set type: a hash set of members (short ones inline). OBJECT ENCODING
//! reports Redis's names: `intset` while every member is an integer and
//! there are at most 512, `listpack` while small (at most 128 members of at
//! most 64 bytes), `hashtable` beyond.

use hashbrown::HashSet;

use super::SmallBytes;

#[derive(Clone, Default)]
pub struct SetValue {
    members: HashSet<SmallBytes>,
}

impl SetValue {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds a member; true when it was new.
    pub fn add(&mut self, m: &[u8]) -> bool {
        if self.members.contains(m) {
            return false;
        }
        self.members.insert(SmallBytes::new(m))
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        self.members.remove(m)
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        self.members.contains(m)
    }

    pub fn iter(&self) -> impl Iterator<Item = &SmallBytes> {
        self.members.iter()
    }

    /// Removes and returns an arbitrary member.
    pub fn pop_any(&mut self, skip: usize) -> Option<SmallBytes> {
        let m = self.members.iter().nth(skip % self.members.len().max(1))?.clone();
        self.members.remove(&m[..]);
        Some(m)
    }

    pub fn encoding(&self) -> &'static str {
        let ints = self.members.iter().all(|m| crate::util::canonical_int(m).is_some());
        if ints && self.members.len() <= 512 {
            "intset"
        } else if self.members.len() <= 128 && self.members.iter().all(|m| m.len() <= 64) {
            "listpack"
        } else {
            "hashtable"
        }
    }

    pub fn heap_size(&self) -> usize {
        self.members.capacity() * (std::mem::size_of::<SmallBytes>() + 1) + self.members.iter().map(|m| m.heap_size()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_encodings() {
        let mut s = SetValue::default();
        assert!(s.add(b"1") && s.add(b"2") && !s.add(b"1"));
        assert_eq!(s.encoding(), "intset");
        s.add(b"x");
        assert_eq!(s.encoding(), "listpack");
        assert!(s.remove(b"x") && !s.remove(b"x"));
        assert_eq!(s.len(), 2);
        let m = s.pop_any(7).unwrap();
        assert!(!s.contains(&m) && s.len() == 1);
    }
}
