//! HyperLogLog with Redis's parameters and estimator, so PFCOUNT gives the
//! same estimates as Redis: 16384 registers of 6 bits, MurmurHash64A (seed
//! 0xadc83b19) of each element, and Ertl's improved raw estimator. Stored as
//! a string in Redis's layouts ("HYLL" header): sparse (runs of registers)
//! while it fits in `hll-sparse-max-bytes` and no register is over 32, then
//! dense (registers packed six bits each, least significant bits first),
//! which it stays.

/// Registers: 2^14.
const P: u32 = 14;
const M: usize = 1 << P;
/// Bits of the hash left after the register index.
const Q: u32 = 64 - P;
const HEADER: usize = 16;
/// Bytes of a dense HyperLogLog.
pub const DENSE_LEN: usize = HEADER + (M * 6).div_ceil(8);

/// Redis's MurmurHash64A.
fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const MUL: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(MUL);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(MUL);
        k ^= k >> R;
        k = k.wrapping_mul(MUL);
        h ^= k;
        h = h.wrapping_mul(MUL);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate().rev() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(MUL);
    }
    h ^= h >> R;
    h = h.wrapping_mul(MUL);
    h ^= h >> R;
    h
}

/// The register an element goes to and the value it offers.
fn position(elem: &[u8]) -> (usize, u8) {
    let hash = murmur64a(elem, 0xadc83b19);
    let index = (hash & (M as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Redis's default `hll-sparse-max-bytes`.
pub const SPARSE_MAX_DEFAULT: u64 = 3000;

/// A HyperLogLog held as its registers, and whether its string is dense.
#[derive(Clone)]
pub struct Hll {
    regs: Vec<u8>,
    dense: bool,
}

impl Default for Hll {
    fn default() -> Self {
        Hll { regs: vec![0; M], dense: false }
    }
}

/// Why a string is not a usable HyperLogLog, as Redis tells them apart.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Not one at all: no "HYLL" header, an unknown encoding, or a dense
    /// one of the wrong length (WRONGTYPE).
    NotHll,
    /// A sparse one whose runs do not cover exactly the registers
    /// (INVALIDOBJ).
    Corrupt,
}

impl Hll {
    /// Adds an element; whether a register changed.
    pub fn add(&mut self, elem: &[u8]) -> bool {
        let (i, v) = position(elem);
        if self.regs[i] < v {
            self.regs[i] = v;
            true
        } else {
            false
        }
    }

    /// Takes the larger of each register; the result is dense when
    /// either was (Redis's PFMERGE).
    pub fn merge(&mut self, other: &Hll) {
        for (a, b) in self.regs.iter_mut().zip(&other.regs) {
            *a = (*a).max(*b);
        }
        self.dense |= other.dense;
    }

    /// The cardinality estimate (Ertl's improved estimator, as Redis).
    pub fn count(&self) -> u64 {
        let mut hist = [0u32; 64];
        for &r in &self.regs {
            hist[r as usize] += 1;
        }
        let m = M as f64;
        let mut z = m * tau((m - hist[Q as usize + 1] as f64) / m);
        for k in (1..=Q as usize).rev() {
            z += hist[k] as f64;
            z *= 0.5;
        }
        z += m * sigma(hist[0] as f64 / m);
        let alpha_inf = 0.5 / std::f64::consts::LN_2;
        (alpha_inf * m * m / z).round() as u64
    }

    /// The string: sparse while it fits in `sparse_max` bytes (and no
    /// register is over 32), else dense. The cached cardinality in the
    /// header is marked stale (its top bit), so Redis recomputes it.
    pub fn to_bytes(&self, sparse_max: u64) -> Vec<u8> {
        if !self.dense {
            if let Some(b) = self.to_sparse(sparse_max) {
                return b;
            }
        }
        let mut out = vec![0u8; DENSE_LEN];
        out[..4].copy_from_slice(b"HYLL");
        out[15] = 0x80;
        for (i, &v) in self.regs.iter().enumerate() {
            let bit = i * 6;
            let (byte, shift) = (HEADER + bit / 8, bit % 8);
            out[byte] |= v << shift;
            if shift > 2 {
                out[byte + 1] |= v >> (8 - shift);
            }
        }
        out
    }

    /// The sparse layout, if it fits in `max` bytes.
    fn to_sparse(&self, max: u64) -> Option<Vec<u8>> {
        let mut out = vec![0u8; HEADER];
        out[..4].copy_from_slice(b"HYLL");
        out[4] = 1;
        out[15] = 0x80;
        let mut i = 0;
        while i < M {
            let v = self.regs[i];
            let mut run = self.regs[i..].iter().take_while(|&&r| r == v).count();
            i += run;
            while run > 0 {
                let n = if v == 0 {
                    let n = run.min(16384);
                    if n > 64 {
                        out.extend_from_slice(&[0x40 | ((n - 1) >> 8) as u8, ((n - 1) & 0xff) as u8]);
                    } else {
                        out.push((n - 1) as u8);
                    }
                    n
                } else if v <= 32 {
                    let n = run.min(4);
                    out.push(0x80 | ((v - 1) << 2) | (n - 1) as u8);
                    n
                } else {
                    return None;
                };
                run -= n;
            }
            if out.len() as u64 > max {
                return None;
            }
        }
        Some(out)
    }

    /// Reads Redis's dense or sparse layout.
    /// The cardinality cached in a valid header (bytes 8-15, little-endian),
    /// when it is not marked stale (top bit of byte 15). Like Redis, a
    /// valid cache is trusted without reading the registers.
    pub fn cached_count(b: &[u8]) -> Option<u64> {
        let header_ok = b.len() >= HEADER && &b[..4] == b"HYLL" && (b[4] == 1 || (b[4] == 0 && b.len() == DENSE_LEN));
        let cache: [u8; 8] = b.get(8..HEADER)?.try_into().ok()?;
        (header_ok && cache[7] & 0x80 == 0).then(|| u64::from_le_bytes(cache))
    }

    /// Where the header's cached cardinality is, and the bit of its last
    /// byte that marks it stale.
    pub const CACHE: std::ops::Range<usize> = 8..HEADER;
    pub const STALE: u8 = 0x80;

    pub fn from_bytes(b: &[u8]) -> Result<Hll, Invalid> {
        if b.len() < HEADER || &b[..4] != b"HYLL" || b[4] > 1 {
            return Err(Invalid::NotHll);
        }
        if b[4] == 1 {
            return Self::from_sparse(&b[HEADER..]).ok_or(Invalid::Corrupt);
        }
        if b.len() != DENSE_LEN {
            return Err(Invalid::NotHll);
        }
        let mut regs = vec![0u8; M];
        for (i, r) in regs.iter_mut().enumerate() {
            let bit = i * 6;
            let (byte, shift) = (HEADER + bit / 8, bit % 8);
            let lo = (b[byte] >> shift) as u16;
            let hi = if shift > 2 { (b[byte + 1] as u16) << (8 - shift) } else { 0 };
            *r = ((lo | hi) & 63) as u8;
        }
        Ok(Hll { regs, dense: true })
    }
}

impl Hll {
    /// The registers (PFDEBUG GETREG).
    pub fn registers(&self) -> &[u8] {
        &self.regs
    }

    /// Whether its string is (or will be written) dense.
    pub fn is_dense(&self) -> bool {
        self.dense
    }

    /// Writes it dense from now on (PFDEBUG TODENSE, GETREG).
    pub fn make_dense(&mut self) {
        self.dense = true;
    }

    /// A sparse string's opcodes as PFDEBUG DECODE lists them: `z:<n>`
    /// (ZERO), `Z:<n>` (XZERO), `v:<value>,<n>` (VAL); `None` when the
    /// string is not a sparse HyperLogLog.
    pub fn describe_sparse(b: &[u8]) -> Option<String> {
        if b.len() < HEADER || &b[..4] != b"HYLL" || b[4] != 1 {
            return None;
        }
        let ops = &b[HEADER..];
        let mut out = Vec::new();
        let mut p = 0;
        while p < ops.len() {
            let op = ops[p];
            if op & 0xc0 == 0 {
                out.push(format!("z:{}", (op & 0x3f) as usize + 1));
                p += 1;
            } else if op & 0xc0 == 0x40 {
                let lo = *ops.get(p + 1)? as usize;
                out.push(format!("Z:{}", (((op & 0x3f) as usize) << 8 | lo) + 1));
                p += 2;
            } else {
                out.push(format!("v:{},{}", ((op >> 2) & 0x1f) + 1, (op & 0x3) + 1));
                p += 1;
            }
        }
        Some(out.join(" "))
    }

    /// The sparse layout's opcodes: ZERO `00xxxxxx` (x+1 zero registers),
    /// XZERO `01xxxxxx yyyyyyyy` (xy+1 zeros), VAL `1vvvvvxx` (x+1
    /// registers of value v+1); they must cover exactly every register.
    fn from_sparse(ops: &[u8]) -> Option<Hll> {
        let mut regs = vec![0u8; M];
        let (mut i, mut p) = (0usize, 0usize);
        while p < ops.len() {
            let b = ops[p];
            let (run, val) = if b & 0xc0 == 0 {
                p += 1;
                ((b & 0x3f) as usize + 1, 0)
            } else if b & 0xc0 == 0x40 {
                let lo = *ops.get(p + 1)? as usize;
                p += 2;
                ((((b & 0x3f) as usize) << 8 | lo) + 1, 0)
            } else {
                p += 1;
                ((b & 0x3) as usize + 1, ((b >> 2) & 0x1f) + 1)
            };
            let end = i.checked_add(run).filter(|&e| e <= M)?;
            regs[i..end].fill(val);
            i = end;
        }
        (i == M).then_some(Hll { regs, dense: false })
    }
}

/// PFSELFTEST, as Redis's: (1) registers of random values read back the
/// same through the dense layout (six bits each, none touching its
/// neighbours); (2) adding 1 to 10,000,000 distinct elements to a dense
/// and a sparse sketch, at each power of ten the sparse layout is used
/// while small, both layouts give the same count, and the estimate is
/// within six standard errors (1 at 10 elements). `seed` varies the
/// registers and elements from run to run.
pub fn self_test(seed: u64, sparse_max: u64) -> Result<(), String> {
    let mut rng = seed | 1;
    let mut next = || {
        // xorshift64: enough to spread register values and elements.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut h = Hll { regs: vec![0; M], dense: true };
    for _ in 0..SELF_TEST_CYCLES {
        for r in h.regs.iter_mut() {
            *r = (next() & 63) as u8;
        }
        let back = Hll::from_bytes(&h.to_bytes(sparse_max)).map_err(|e| format!("TESTFAILED dense layout unreadable: {e:?}"))?;
        if let Some(i) = (0..M).find(|&i| back.regs[i] != h.regs[i]) {
            return Err(format!("TESTFAILED Register error at index {i}: expected {}, got {}", h.regs[i], back.regs[i]));
        }
    }
    let mut dense = Hll { regs: vec![0; M], dense: true };
    let mut sparse = Hll::default();
    let relerr = 1.04 / (M as f64).sqrt();
    let salt = next();
    let mut checkpoint = 1u64;
    for j in 1..=10_000_000u64 {
        let ele = (j ^ salt).to_le_bytes();
        dense.add(&ele);
        sparse.add(&ele);
        if j != checkpoint {
            continue;
        }
        let sparse_bytes = sparse.to_bytes(sparse_max);
        if j < sparse_max / 2 && sparse_bytes[4] != 1 {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let read = |b: &[u8]| Hll::from_bytes(b).map(|h| h.count()).map_err(|e| format!("TESTFAILED unreadable: {e:?}"));
        let count = read(&dense.to_bytes(sparse_max))?;
        if count != read(&sparse_bytes)? {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let maxerr = if j == 10 { 1 } else { (relerr * 6.0 * j as f64).ceil() as u64 };
        let abserr = j.abs_diff(count);
        if abserr > maxerr {
            return Err(format!("TESTFAILED Too big error. card:{j} abserr:{abserr}"));
        }
        checkpoint *= 10;
    }
    Ok(())
}

/// Rounds of PFSELFTEST's register check (Redis's HLL_TEST_CYCLES).
const SELF_TEST_CYCLES: usize = 1000;

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_its_self_test() {
        assert_eq!(self_test(0x9e3779b97f4a7c15, SPARSE_MAX_DEFAULT), Ok(()));
    }

    #[test]
    fn counts_and_round_trips() {
        let mut h = Hll::default();
        assert_eq!(h.count(), 0);
        for i in 0..1000 {
            h.add(format!("e{i}").as_bytes());
        }
        let n = h.count();
        assert!((980..=1020).contains(&n), "{n}");
        let sparse = h.to_bytes(SPARSE_MAX_DEFAULT);
        assert_eq!(sparse[4], 1);
        assert!(sparse.len() as u64 <= SPARSE_MAX_DEFAULT);
        let back = Hll::from_bytes(&sparse).unwrap();
        assert_eq!((back.count(), back.dense), (n, false));
        // Over the limit: dense, and dense it stays.
        let dense = h.to_bytes(100);
        assert_eq!((dense.len(), dense[4]), (DENSE_LEN, 0));
        let back = Hll::from_bytes(&dense).unwrap();
        assert_eq!((back.count(), back.dense), (n, true));
        assert_eq!(back.to_bytes(SPARSE_MAX_DEFAULT).len(), DENSE_LEN);
        assert_eq!(Hll::from_bytes(b"HYLLnope").err(), Some(Invalid::NotHll));
        // A dense header on a string of another length.
        let mut short = sparse.clone();
        short[4] = 0;
        assert_eq!(Hll::from_bytes(&short).err(), Some(Invalid::NotHll));
        // A register over 32 does not fit the sparse layout.
        let mut big = Hll::default();
        big.regs[7] = 33;
        assert_eq!(big.to_bytes(SPARSE_MAX_DEFAULT).len(), DENSE_LEN);
    }

    /// A sparse HyperLogLog as Redis writes it (PFADD h a b c on Redis 7.0).
    #[test]
    fn reads_redis_sparse_layout() {
        let mut b = b"HYLL\x01\x00\x00\x00".to_vec();
        b.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0x80]);
        let mut h = Hll::default();
        for e in [&b"a"[..], b"b", b"c"] {
            h.add(e);
        }
        // Encode the registers sparsely: runs of zeros and single values.
        let mut i = 0;
        while i < M {
            if h.regs[i] == 0 {
                let mut run = 0;
                while i + run < M && h.regs[i + run] == 0 && run < 16384 {
                    run += 1;
                }
                let r = run - 1;
                b.extend_from_slice(&[0x40 | (r >> 8) as u8, r as u8]);
                i += run;
            } else {
                b.push(0x80 | ((h.regs[i] - 1) << 2));
                i += 1;
            }
        }
        let back = Hll::from_bytes(&b).expect("sparse");
        assert_eq!(back.count(), 3);
        assert_eq!(back.regs, h.regs);
        assert_eq!(Hll::from_bytes(&b[..b.len() - 1]).err(), Some(Invalid::Corrupt));
        let mut long = b.clone();
        long.push(0);
        assert_eq!(Hll::from_bytes(&long).err(), Some(Invalid::Corrupt));
    }
}
