//! Byte-level building blocks of our binary encodings (DUMP payloads and the
//! value types' own serialisations): LEB128 length varints, length-prefixed
//! byte strings, and a bounds-checked reader.

/// Appends `n` as an unsigned LEB128 varint.
pub fn put_len(out: &mut Vec<u8>, n: usize) {
    let mut n = n as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

/// A cursor over encoded bytes; every read is bounds-checked and `None`
/// means the input is malformed.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.remaining() {
            return None;
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Some(b)
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// An unsigned LEB128 varint that fits in a usize, in its shortest form.
    pub fn len(&mut self) -> Option<usize> {
        let mut n: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = (b & 0x7f) as u64;
            if i == 9 && bits > 1 {
                return None;
            }
            n |= bits << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return None; // padded encoding
                }
                return usize::try_from(n).ok();
            }
        }
        None
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_padding() {
        for n in [0usize, 1, 127, 128, 300, 1 << 20, usize::MAX] {
            let mut v = Vec::new();
            put_len(&mut v, n);
            assert_eq!(Reader::new(&v).len(), Some(n));
        }
        assert_eq!(Reader::new(&[0x80, 0x00]).len(), None);
        assert_eq!(Reader::new(&[0x80]).len(), None);
        let mut v = Vec::new();
        put_bytes(&mut v, b"abc");
        let mut r = Reader::new(&v);
        assert_eq!(r.bytes(), Some(&b"abc"[..]));
        assert_eq!(r.remaining(), 0);
    }
}
