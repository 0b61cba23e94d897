//! `SmallBytes`: a 24-byte byte string that keeps up to 22 bytes inline and
//! only allocates for longer content. Keys, short values and hash fields use
//! it, so a typical small key costs no heap allocation of its own. A big
//! string value may also keep the buffer its argument arrived in
//! (`Shared`), so storing it costs no copy.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

const INLINE: usize = 22;

#[derive(Clone)]
pub enum SmallBytes {
    Inline {
        len: u8,
        data: [u8; INLINE],
    },
    Heap(Box<[u8]>),
    /// A big argument's own buffer, kept as it arrived (never a slice of a
    /// larger buffer: the parser gives big arguments exact allocations).
    Shared(Box<bytes::Bytes>),
}

impl SmallBytes {
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..b.len()].copy_from_slice(b);
            SmallBytes::Inline { len: b.len() as u8, data }
        } else {
            SmallBytes::Heap(b.into())
        }
    }

    pub fn from_vec(v: Vec<u8>) -> Self {
        if v.len() <= INLINE {
            Self::new(&v)
        } else {
            SmallBytes::Heap(v.into_boxed_slice())
        }
    }

    /// Keeps a big argument's buffer without copying it; a short one is
    /// copied as `new` does.
    pub fn from_arg(b: &bytes::Bytes) -> Self {
        if b.len() >= crate::resp::parse::BIG_ARG {
            SmallBytes::Shared(Box::new(b.clone()))
        } else {
            SmallBytes::new(b)
        }
    }

    #[cfg(test)]
    pub fn is_inline(&self) -> bool {
        matches!(self, SmallBytes::Inline { .. })
    }

    /// Heap bytes owned beyond the 24-byte struct itself.
    pub fn heap_size(&self) -> usize {
        match self {
            SmallBytes::Inline { .. } => 0,
            SmallBytes::Heap(b) => b.len(),
            SmallBytes::Shared(b) => b.len() + std::mem::size_of::<bytes::Bytes>(),
        }
    }
}

impl Deref for SmallBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, data } => &data[..*len as usize],
            SmallBytes::Heap(b) => b,
            SmallBytes::Shared(b) => b,
        }
    }
}

impl Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
impl Eq for SmallBytes {}

impl std::hash::Hash for SmallBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SmallBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(b: &[u8]) -> Self {
        SmallBytes::new(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_round_trip() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        for n in [0usize, 1, 22, 23, 100] {
            let v: Vec<u8> = (0..n as u8).collect();
            let s = SmallBytes::new(&v);
            assert_eq!(&*s, &v[..]);
            assert_eq!(s.is_inline(), n <= 22);
        }
    }
}
