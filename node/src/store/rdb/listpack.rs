//! Redis's compact blobs as they appear inside RDB strings: listpacks
//! (written and read), ziplists (read: RDB files before version 10) and
//! intsets (written and read). Readers check every length against the blob
//! and return `Err` with what is wrong; they never panic.

use crate::util::canonical_int;

/// One listpack or ziplist element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    /// The element as bytes (integers formatted into `buf`).
    pub fn bytes<'b>(&'b self, buf: &'b mut itoa::Buffer) -> &'b [u8] {
        match self {
            Elem::Int(n) => buf.format(*n).as_bytes(),
            Elem::Str(s) => s,
        }
    }

    pub fn to_owned_bytes(self) -> Vec<u8> {
        self.bytes(&mut itoa::Buffer::new()).to_vec()
    }

    /// The element as an integer (a string must be a canonical one).
    pub fn int(&self) -> Option<i64> {
        match self {
            Elem::Int(n) => Some(*n),
            Elem::Str(s) => canonical_int(s),
        }
    }
}

const LP_HEADER: usize = 6;
const LP_EOF: u8 = 0xff;
/// The header's element count when it does not fit 16 bits.
const LP_COUNT_UNKNOWN: u16 = u16::MAX;

/// A listpack being built.
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        ListpackWriter::new()
    }
}

impl ListpackWriter {
    pub fn new() -> ListpackWriter {
        ListpackWriter { buf: vec![0; LP_HEADER], count: 0 }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Replaces the first element, which must be a 7-bit integer, with
    /// another one (a count known only once the rest is written).
    pub fn set_first_uint7(&mut self, v: u8) {
        debug_assert!(self.count > 0 && self.buf[LP_HEADER] < 128 && v < 128);
        self.buf[LP_HEADER] = v & 0x7f;
    }

    /// Bytes of the listpack if finished now.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Appends a string; one holding a canonical integer is stored as an
    /// integer, as Redis does.
    pub fn push(&mut self, s: &[u8]) {
        match canonical_int(s) {
            Some(n) => self.push_int(n),
            None => self.push_str(s),
        }
    }

    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.extend_from_slice(&[0xe0 | (n >> 8) as u8, n as u8]);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.finish_entry(start);
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1i64 << 13) + v } else { v } as u16;
            self.buf.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
        } else if (-32768..=32767).contains(&v) {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            self.buf.push(0xf2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let l = (self.buf.len() - start) as u64;
        let mut back = [0u8; 5];
        let n = encode_backlen(&mut back, l);
        self.buf.extend_from_slice(&back[..n]);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(LP_EOF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count).unwrap_or(LP_COUNT_UNKNOWN);
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// The bytes of `l` as a listpack back-length (most significant 7-bit group
/// first; every byte but the first carries the continuation bit).
fn encode_backlen(buf: &mut [u8; 5], l: u64) -> usize {
    let n = match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    for (i, b) in buf[..n].iter_mut().enumerate() {
        let v = l >> (7 * (n - 1 - i));
        *b = if i == 0 { v as u8 } else { (v & 127) as u8 | 128 };
    }
    n
}

/// Every element of a listpack, after checking its structure: header size,
/// each entry's encoding and back-length, the terminator, and the count in
/// the header (when it is not the "unknown" marker).
pub fn read_listpack(lp: &[u8]) -> Result<Vec<Elem<'_>>, &'static str> {
    if lp.len() < LP_HEADER + 1 {
        return Err("listpack shorter than its header");
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() {
        return Err("listpack size header does not match its length");
    }
    let declared = u16::from_le_bytes([lp[4], lp[5]]);
    let end = lp.len() - 1;
    if lp[end] != LP_EOF {
        return Err("listpack not terminated");
    }
    let mut out = Vec::with_capacity((declared as usize).min(lp.len() / 2));
    let mut p = LP_HEADER;
    while p < end {
        let start = p;
        let b = lp[p];
        let need = |p: usize, n: usize| if p + n <= end { Ok(()) } else { Err("listpack entry runs past the end") };
        let elem = if b & 0x80 == 0 {
            p += 1;
            Elem::Int(b as i64)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            need(p + 1, n)?;
            p += 1 + n;
            Elem::Str(&lp[p - n..p])
        } else if b & 0xe0 == 0xc0 {
            need(p, 2)?;
            let u = (((b & 0x1f) as i64) << 8) | lp[p + 1] as i64;
            p += 2;
            Elem::Int(if u >= 1 << 12 { u - (1 << 13) } else { u })
        } else if b & 0xf0 == 0xe0 {
            need(p, 2)?;
            let n = (((b & 0x0f) as usize) << 8) | lp[p + 1] as usize;
            need(p + 2, n)?;
            p += 2 + n;
            Elem::Str(&lp[p - n..p])
        } else {
            let int_len = match b {
                0xf0 => {
                    need(p, 5)?;
                    let n = u32::from_le_bytes([lp[p + 1], lp[p + 2], lp[p + 3], lp[p + 4]]) as usize;
                    need(p + 5, n)?;
                    p += 5 + n;
                    out.push(Elem::Str(&lp[p - n..p]));
                    check_backlen(lp, &mut p, start, end)?;
                    continue;
                }
                0xf1 => 2,
                0xf2 => 3,
                0xf3 => 4,
                0xf4 => 8,
                _ => return Err("unknown listpack entry encoding"),
            };
            need(p + 1, int_len)?;
            let mut raw = [0u8; 8];
            raw[..int_len].copy_from_slice(&lp[p + 1..p + 1 + int_len]);
            // Sign-extend from the stored width.
            let shift = 64 - 8 * int_len as u32;
            let v = ((u64::from_le_bytes(raw) << shift) as i64) >> shift;
            p += 1 + int_len;
            Elem::Int(v)
        };
        out.push(elem);
        check_backlen(lp, &mut p, start, end)?;
    }
    if declared != LP_COUNT_UNKNOWN && declared as usize != out.len() {
        return Err("listpack element count does not match its header");
    }
    Ok(out)
}

fn check_backlen(lp: &[u8], p: &mut usize, start: usize, end: usize) -> Result<(), &'static str> {
    let mut want = [0u8; 5];
    let n = encode_backlen(&mut want, (*p - start) as u64);
    if *p + n > end || lp[*p..*p + n] != want[..n] {
        return Err("listpack entry back-length is wrong");
    }
    *p += n;
    Ok(())
}

/// Every element of a ziplist (the pre-listpack encoding), checked like a
/// listpack: sizes, previous-entry lengths, terminator, count.
pub fn read_ziplist(zl: &[u8]) -> Result<Vec<Elem<'_>>, &'static str> {
    const HEADER: usize = 10;
    if zl.len() < HEADER + 1 {
        return Err("ziplist shorter than its header");
    }
    let total = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    if total != zl.len() {
        return Err("ziplist size header does not match its length");
    }
    let tail = u32::from_le_bytes([zl[4], zl[5], zl[6], zl[7]]) as usize;
    let declared = u16::from_le_bytes([zl[8], zl[9]]);
    let end = zl.len() - 1;
    if zl[end] != 0xff {
        return Err("ziplist not terminated");
    }
    let mut out = Vec::with_capacity((declared as usize).min(zl.len() / 2));
    let (mut p, mut prev_len, mut last_start) = (HEADER, 0usize, HEADER);
    while p < end {
        let start = p;
        let need = |p: usize, n: usize| if p + n <= end { Ok(()) } else { Err("ziplist entry runs past the end") };
        // Length of the previous entry.
        let stored_prev = if zl[p] < 254 {
            p += 1;
            zl[p - 1] as usize
        } else if zl[p] == 254 {
            need(p, 5)?;
            p += 5;
            u32::from_le_bytes([zl[p - 4], zl[p - 3], zl[p - 2], zl[p - 1]]) as usize
        } else {
            return Err("bad ziplist previous-entry length");
        };
        if stored_prev != prev_len {
            return Err("ziplist previous-entry length is wrong");
        }
        need(p, 1)?;
        let b = zl[p];
        let elem = match b >> 6 {
            0..=2 => {
                let (n, hdr) = match b >> 6 {
                    0 => ((b & 0x3f) as usize, 1),
                    1 => {
                        need(p, 2)?;
                        ((((b & 0x3f) as usize) << 8) | zl[p + 1] as usize, 2)
                    }
                    _ => {
                        if b != 0x80 {
                            return Err("unknown ziplist string encoding");
                        }
                        need(p, 5)?;
                        (u32::from_be_bytes([zl[p + 1], zl[p + 2], zl[p + 3], zl[p + 4]]) as usize, 5)
                    }
                };
                need(p + hdr, n)?;
                p += hdr + n;
                Elem::Str(&zl[p - n..p])
            }
            _ => {
                let width = match b {
                    0xc0 => 2,
                    0xd0 => 4,
                    0xe0 => 8,
                    0xf0 => 3,
                    0xfe => 1,
                    0xf1..=0xfd => 0,
                    _ => return Err("unknown ziplist integer encoding"),
                };
                if width == 0 {
                    p += 1;
                    Elem::Int((b & 0x0f) as i64 - 1)
                } else {
                    need(p + 1, width)?;
                    let mut raw = [0u8; 8];
                    raw[..width].copy_from_slice(&zl[p + 1..p + 1 + width]);
                    let shift = 64 - 8 * width as u32;
                    p += 1 + width;
                    Elem::Int(((u64::from_le_bytes(raw) << shift) as i64) >> shift)
                }
            }
        };
        out.push(elem);
        prev_len = p - start;
        last_start = start;
    }
    if !out.is_empty() && tail != last_start {
        return Err("ziplist tail offset is wrong");
    }
    if declared != u16::MAX && declared as usize != out.len() {
        return Err("ziplist element count does not match its header");
    }
    Ok(out)
}

/// An intset of `values` (sorted ascending, no duplicates) in the
/// narrowest width that holds them all.
pub fn write_intset(values: &[i64]) -> Vec<u8> {
    let width: usize = if values.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if values.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// The members of an intset, checked: a known width, a size that matches
/// the count, members strictly ascending.
pub fn read_intset(b: &[u8]) -> Result<Vec<i64>, &'static str> {
    if b.len() < 8 {
        return Err("intset shorter than its header");
    }
    let width = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err("unknown intset encoding");
    }
    let n = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if (b.len() - 8) / width != n || !(b.len() - 8).is_multiple_of(width) {
        return Err("intset size does not match its count");
    }
    let mut out = Vec::with_capacity(n);
    for c in b[8..].chunks_exact(width) {
        let mut raw = [0u8; 8];
        raw[..width].copy_from_slice(c);
        let shift = 64 - 8 * width as u32;
        let v = ((u64::from_le_bytes(raw) << shift) as i64) >> shift;
        if out.last().is_some_and(|&last| last >= v) {
            return Err("intset members out of order");
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlen_matches_redis() {
        let mut b = [0u8; 5];
        assert_eq!(encode_backlen(&mut b, 5), 1);
        assert_eq!(b[0], 5);
        assert_eq!(encode_backlen(&mut b, 500), 2);
        assert_eq!(&b[..2], &[500u64 >> 7, (500 & 127) | 128].map(|x| x as u8));
        assert_eq!(encode_backlen(&mut b, 20000), 3);
        assert_eq!(&b[..3], &[(20000u64 >> 14) as u8, ((20000 >> 7) & 127 | 128) as u8, (20000 & 127 | 128) as u8]);
        assert_eq!(encode_backlen(&mut b, 300_000_000), 5);
        assert_eq!(b[0], (300_000_000u64 >> 28) as u8);
    }

    #[test]
    fn listpack_round_trip_every_encoding() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 100];
        let mut w = ListpackWriter::new();
        let ints = [
            0,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            32768,
            8_388_607,
            -8_388_608,
            8_388_608,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ];
        for v in ints {
            w.push_int(v);
        }
        w.push(b"");
        w.push(b"hello");
        w.push(&mid);
        w.push(&long);
        w.push(b"007");
        w.push(b"-12");
        let lp = w.finish();
        let got = read_listpack(&lp).unwrap();
        let mut want: Vec<Elem> = ints.iter().map(|&v| Elem::Int(v)).collect();
        want.extend([Elem::Str(b""), Elem::Str(b"hello"), Elem::Str(&mid), Elem::Str(&long), Elem::Str(b"007"), Elem::Int(-12)]);
        assert_eq!(got, want);
        // Truncations and flipped bytes never panic.
        for n in 0..lp.len() {
            let _ = read_listpack(&lp[..n]);
        }
        for i in 0..lp.len().min(300) {
            let mut bad = lp.clone();
            bad[i] ^= 0x5a;
            let _ = read_listpack(&bad);
        }
    }

    /// A ziplist made by Redis 6 (RPUSH l a 1 -300 70000 hello).
    #[test]
    fn reads_a_redis_ziplist() {
        let mut zl = vec![0u8; 10];
        let entries: &[&[u8]] =
            &[&[0x01, b'a'], &[0xf2], &[0xc0, 0xd4, 0xfe], &[0xf0, 0x70, 0x11, 0x01], &[0x05, b'h', b'e', b'l', b'l', b'o']];
        let mut prev = 0;
        let mut tail = 0;
        for e in entries {
            tail = zl.len();
            zl.push(prev as u8);
            zl.extend_from_slice(e);
            prev = e.len() + 1;
        }
        zl.push(0xff);
        let total = zl.len() as u32;
        zl[..4].copy_from_slice(&total.to_le_bytes());
        zl[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
        zl[8..10].copy_from_slice(&5u16.to_le_bytes());
        let got = read_ziplist(&zl).unwrap();
        assert_eq!(got, vec![Elem::Str(b"a"), Elem::Int(1), Elem::Int(-300), Elem::Int(70000), Elem::Str(b"hello")]);
        for n in 0..zl.len() {
            assert!(read_ziplist(&zl[..n]).is_err());
        }
    }

    #[test]
    fn intsets() {
        for vals in [vec![1i64, 2, 3], vec![-40000, 5], vec![i64::MIN, 0, i64::MAX], vec![]] {
            let b = write_intset(&vals);
            assert_eq!(read_intset(&b).unwrap(), vals);
        }
        assert_eq!(&write_intset(&[1, 2])[..], &[2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2, 0]);
        assert!(read_intset(&write_intset(&[2])[..9]).is_err());
        assert!(read_intset(&[2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0]).is_err());
        assert!(read_intset(&[3, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
