//! The hash type: a flat vector of pairs while small (Redis's `listpack`
//! encoding, same thresholds), converted once to a hash table when it grows
//! past `hash-max-listpack-entries` or holds a value longer than
//! `hash-max-listpack-value`.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashMap;

use crate::store::SmallBytes;

#[derive(Clone)]
pub enum HashValue {
    Pairs(Vec<(SmallBytes, SmallBytes)>),
    Table(HashMap<SmallBytes, SmallBytes, RandomState>),
}

/// Conversion thresholds (from CONFIG).
#[derive(Clone, Copy, Debug)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits { max_entries: 128, max_value: 64 }
    }
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Pairs(Vec::new())
    }
}

impl HashValue {
    pub fn len(&self) -> usize {
        match self {
            HashValue::Pairs(v) => v.len(),
            HashValue::Table(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Pairs(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Pairs(v) => v.iter().find(|(f, _)| &**f == field).map(|(_, v)| &**v),
            HashValue::Table(m) => m.get(field).map(|v| &**v),
        }
    }

    /// Sets a field; returns true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        if let HashValue::Pairs(v) = self {
            if let Some(slot) = v.iter_mut().find(|(f, _)| &**f == field) {
                slot.1 = SmallBytes::new(value);
                if value.len() > limits.max_value {
                    self.convert();
                }
                return false;
            }
            if v.len() < limits.max_entries && field.len() <= limits.max_value && value.len() <= limits.max_value {
                v.push((SmallBytes::new(field), SmallBytes::new(value)));
                return true;
            }
            self.convert();
        }
        match self {
            HashValue::Table(m) => m.insert(SmallBytes::new(field), SmallBytes::new(value)).is_none(),
            HashValue::Pairs(_) => unreachable!("converted above"),
        }
    }

    fn convert(&mut self) {
        if let HashValue::Pairs(v) = self {
            let mut m = HashMap::with_capacity_and_hasher(v.len() + 1, RandomState::default());
            m.extend(std::mem::take(v));
            *self = HashValue::Table(m);
        }
    }

    /// Removes a field; returns true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Pairs(v) => match v.iter().position(|(f, _)| &**f == field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            HashValue::Table(m) => m.remove(field).is_some(),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            HashValue::Pairs(v) => Box::new(v.iter().map(|(f, v)| (&**f, &**v))),
            HashValue::Table(m) => Box::new(m.iter().map(|(f, v)| (&**f, &**v))),
        }
    }

    /// The pair at position `i` of iteration order (for random picks).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self {
            HashValue::Pairs(v) => v.get(i).map(|(f, v)| (&**f, &**v)),
            HashValue::Table(m) => m.iter().nth(i).map(|(f, v)| (&**f, &**v)),
        }
    }

    /// A stable 64-bit position for `field` used by HSCAN cursors: fields are
    /// visited in order of this hash, so a cursor survives inserts, deletes
    /// and table growth without skipping fields that existed throughout.
    pub fn scan_hash(field: &[u8]) -> u64 {
        // A fixed seed: the cursor must mean the same thing across calls.
        foldhash::fast::FixedState::with_seed(0x5eed_da55_e1f1_7000).hash_one(field)
    }

    pub fn heap_size(&self) -> usize {
        match self {
            HashValue::Pairs(v) => v.capacity() * 48 + v.iter().map(|(f, x)| f.heap_size() + x.heap_size()).sum::<usize>(),
            HashValue::Table(m) => m.capacity() * 49 + m.iter().map(|(f, x)| f.heap_size() + x.heap_size()).sum::<usize>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_past_thresholds() {
        let limits = HashLimits { max_entries: 4, max_value: 8 };
        let mut h = HashValue::default();
        for i in 0..4 {
            assert!(h.set(format!("f{i}").as_bytes(), b"v", limits));
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(!h.set(b"f0", b"v2", limits));
        assert!(h.set(b"f4", b"v", limits));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
        assert_eq!(h.get(b"f0"), Some(&b"v2"[..]));

        let mut h = HashValue::default();
        h.set(b"a", b"short", limits);
        h.set(b"a", b"much longer than eight", limits);
        assert_eq!(h.encoding(), "hashtable");
        assert!(h.remove(b"a"));
        assert!(h.is_empty());
    }
}
