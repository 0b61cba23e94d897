//! The `listpack` encoding of small sorted sets: varint-framed entries back
//! to back in one sorted byte buffer.

use super::*;

// ---------------------------------------------------------------- varints

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads a varint at `*p`, advancing it; `None` when truncated or too long.
pub(super) fn get_varint(b: &[u8], p: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*p)?;
        *p += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

pub(super) fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Scores stored as integers in the compact encoding (exactly
/// representable). Like Redis's listpack, which stores integral scores as
/// integers, this turns -0 into 0; the tree encoding keeps -0.
pub(super) fn small_int(score: f64) -> Option<i64> {
    pub(super) const LIMIT: f64 = (1u64 << 53) as f64;
    (score.fract() == 0.0 && score.abs() <= LIMIT).then_some(score as i64)
}

// ---------------------------------------------------------------- listpack

/// The compact encoding: `[count: u32 LE]` then the entries, sorted.
#[derive(Clone)]
pub(super) struct Pack {
    pub(super) buf: Vec<u8>,
}

impl Pack {
    pub(super) fn new() -> Pack {
        Pack { buf: vec![0; 4] }
    }

    pub(super) fn len(&self) -> usize {
        u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize
    }

    pub(super) fn set_len(&mut self, n: usize) {
        self.buf[..4].copy_from_slice(&(n as u32).to_le_bytes());
    }

    /// Decodes the entry at `p`: (score, member, end of entry).
    #[inline]
    pub(super) fn entry(&self, mut p: usize) -> (f64, &[u8], usize) {
        let b = &self.buf;
        let hdr = get_varint(b, &mut p).unwrap_or(0);
        let score = if hdr & 1 == 1 {
            unzigzag(get_varint(b, &mut p).unwrap_or(0)) as f64
        } else {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&b[p..p + 8]);
            p += 8;
            f64::from_le_bytes(raw)
        };
        let len = (hdr >> 1) as usize;
        (score, &b[p..p + len], p + len)
    }

    pub(super) fn encode(out: &mut Vec<u8>, score: f64, member: &[u8]) {
        match small_int(score) {
            Some(n) => {
                put_varint(out, ((member.len() as u64) << 1) | 1);
                put_varint(out, zigzag(n));
            }
            None => {
                put_varint(out, (member.len() as u64) << 1);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        out.extend_from_slice(member);
    }

    /// Iterates (offset, score, member, end).
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, f64, &[u8], usize)> + '_ {
        let mut p = 4;
        std::iter::from_fn(move || {
            if p >= self.buf.len() {
                return None;
            }
            let start = p;
            let (s, m, end) = self.entry(p);
            p = end;
            Some((start, s, m, end))
        })
    }

    /// Start offsets of the entries, plus the end of the buffer.
    pub(super) fn offsets(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.iter().map(|e| e.0).collect();
        v.push(self.buf.len());
        v
    }

    /// (rank, offset, end, score) of `member`.
    pub(super) fn find(&self, member: &[u8]) -> Option<(usize, usize, usize, f64)> {
        self.iter().enumerate().find(|(_, e)| e.2 == member).map(|(r, e)| (r, e.0, e.3, e.1))
    }

    pub(super) fn insert(&mut self, score: f64, member: &[u8]) {
        let at = self.iter().find(|e| !less(e.1, e.2, score, member)).map(|e| e.0).unwrap_or(self.buf.len());
        let mut enc = Vec::with_capacity(member.len() + 12);
        Pack::encode(&mut enc, score, member);
        self.buf.reserve_exact(enc.len());
        self.buf.splice(at..at, enc);
        let n = self.len();
        self.set_len(n + 1);
    }

    /// Removes the entries in the byte range `from..to` (`n` of them).
    pub(super) fn remove_bytes(&mut self, from: usize, to: usize, n: usize) {
        self.buf.drain(from..to);
        let left = self.len() - n;
        self.set_len(left);
        if self.buf.capacity() > self.buf.len() + 64 {
            self.buf.shrink_to_fit();
        }
    }

    /// Visits the entries satisfying a prefix predicate and counts them.
    pub(super) fn partition_point(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        self.iter().take_while(|e| pred(e.1, e.2)).count()
    }
}
