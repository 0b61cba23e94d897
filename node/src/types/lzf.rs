//! LZF compression of strings (what Redis writes with `rdbcompression
//! yes`, and how it keeps the middle of a compressed list), without
//! per-call set-up.
//!
//! The format: a control byte below 32 starts a run of `ctrl + 1` literal
//! bytes; otherwise its top three bits hold a match length minus 2 (7: a
//! following byte adds to it), and its low five bits with the next byte an
//! offset minus 1 back into the output. Matches are found through a hash
//! table of the positions of 3-byte sequences. The table belongs to the
//! thread and is never cleared: an entry left by an earlier string is only
//! a candidate, used when it lies before the current position and its
//! bytes match, so stale entries cost nothing but a comparison. (A table
//! allocated and zeroed per string made snapshot and journal writes of
//! small values spend most of their time in memset.)

use std::cell::RefCell;

const HLOG: u32 = 14;
const MAX_LIT: usize = 32;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

thread_local! {
    static TABLE: RefCell<Box<[u32]>> = RefCell::new(vec![0u32; 1 << HLOG].into_boxed_slice());
    /// Where `with_compressed` puts its output (kept for the next string).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with `input` compressed, or `None` when compressing would not
/// save at least 4 bytes (Redis's rule), through a buffer kept per thread.
pub fn with_compressed<R>(input: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        s.clear();
        let ok = input.len() > 4 && compress(input, input.len() - 4, &mut s);
        let r = f(ok.then_some(&s[..]));
        if s.capacity() > 1 << 20 {
            *s = Vec::new();
        }
        r
    })
}

/// `data` decompressed, which must come to exactly `len` bytes.
pub fn decompress(data: &[u8], len: usize) -> Option<Vec<u8>> {
    ::lzf::decompress(data, len).ok().filter(|v| v.len() == len)
}

#[inline]
fn hash(b: &[u8]) -> usize {
    let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
    (v.wrapping_mul(2_654_435_761) >> (32 - HLOG)) as usize
}

/// The length (at least 3, at most `most`) of the match at `i` of the
/// earlier position `r` whose first three bytes are equal: compared eight
/// bytes at a time (repetitive values, which compress, have long matches).
#[inline]
fn match_len(input: &[u8], r: usize, i: usize, most: usize) -> usize {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&input[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let mut len = 3;
    // r < i and len + 8 <= most <= input.len() - i keep both words inside.
    while len + 8 <= most {
        let diff = word(r + len) ^ word(i + len);
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < most && input[r + len] == input[i + len] {
        len += 1;
    }
    len
}

fn literals(out: &mut Vec<u8>, mut lit: &[u8]) {
    while !lit.is_empty() {
        let n = lit.len().min(MAX_LIT);
        out.push((n - 1) as u8);
        out.extend_from_slice(&lit[..n]);
        lit = &lit[n..];
    }
}

/// Appends `input` compressed to `out` if that takes at most `max` bytes;
/// otherwise leaves `out` as it was and returns false.
pub fn compress(input: &[u8], max: usize, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let n = input.len();
    let fits = TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let (mut i, mut lit) = (0usize, 0usize);
        while i + 2 < n {
            let h = hash(&input[i..]);
            let r = t[h] as usize;
            t[h] = i as u32;
            if r < i && i - r - 1 < MAX_OFF && input[r..r + 3] == input[i..i + 3] {
                literals(out, &input[lit..i]);
                let len = match_len(input, r, i, (n - i).min(MAX_REF));
                let (off, l) = (i - r - 1, len - 2);
                if l < 7 {
                    out.push((l << 5) as u8 | (off >> 8) as u8);
                } else {
                    out.push((7 << 5) | (off >> 8) as u8);
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                i += len;
                lit = i;
                if out.len() - start > max {
                    return false;
                }
                continue;
            }
            i += 1;
        }
        literals(out, &input[lit..]);
        out.len() - start <= max
    });
    if !fits {
        out.truncate(start);
    }
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) -> Option<usize> {
        let mut out = vec![9, 9];
        if !compress(data, data.len(), &mut out) {
            assert_eq!(out, [9, 9], "a refused compression leaves the output alone");
            return None;
        }
        let back = lzf::decompress(&out[2..], data.len()).expect("decompresses");
        assert_eq!(back, data);
        Some(out.len() - 2)
    }

    #[test]
    fn compresses_what_repeats_and_decompresses_exactly() {
        assert!(round_trip(&[b'v'; 100]).is_some_and(|n| n < 12));
        assert!(round_trip(&b"abcabcabcabcabcabcabcabcabcabcabc".repeat(40)).is_some_and(|n| n < 40));
        let text: Vec<u8> = (0..5000).flat_map(|i: u32| format!("order:{i} status=paid total={}.99;", i % 97).into_bytes()).collect();
        assert!(round_trip(&text).is_some_and(|n| n < text.len() / 2));
        // Long runs exercise the extended length and the longest match.
        assert!(round_trip(&[0u8; 10_000]).is_some());
        // Random bytes do not shrink: refused, output untouched.
        let noise: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
        assert_eq!(round_trip(&noise), None);
    }

    #[test]
    fn word_matches_measure_what_byte_matches_do() {
        // Runs of a few symbols: matches of every length, ending anywhere
        // within a word.
        let data: Vec<u8> = (0..2000u32).map(|i| b"ab"[((i * i / 7) % 11 == 0) as usize]).collect();
        for i in 1..data.len() - 3 {
            for r in i.saturating_sub(40)..i {
                if data[r..r + 3] != data[i..i + 3] {
                    continue;
                }
                let most = (data.len() - i).min(MAX_REF);
                let mut naive = 3;
                while naive < most && data[r + naive] == data[i + naive] {
                    naive += 1;
                }
                assert_eq!(match_len(&data, r, i, most), naive, "r {r} i {i}");
            }
        }
    }

    #[test]
    fn a_table_left_by_other_strings_does_no_harm() {
        for seed in 0..200u32 {
            let data: Vec<u8> = (0..300 + seed as usize).map(|i| b"abcdxyz"[((i * 7 + seed as usize) ^ (i % 3)) % 7]).collect();
            round_trip(&data);
        }
    }
}
