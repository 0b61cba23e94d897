//! The access-frequency sketch of the `allkeys-tinylfu` policy (not one of
//! Redis's): a count-min sketch, TinyLFU-style, of every key lookup on this
//! thread's shard, hits and misses alike, so a key's popularity outlives
//! its eviction. Under sampled LRU or Redis's LFU, a popular key that was
//! evicted comes back as cold as a key read once; here its misses kept
//! counting, and it outlasts the one-hit wonders written since.
//!
//! Four rows of saturating 4-bit counts, two to a byte, as wide as the next
//! power of two above four times the shard's key count when eviction last
//! ran (8 to 16 bytes per key held: the sketch must also tell apart the
//! keys not held, and a narrower one measurably lost hit ratio on a key
//! space ten times what fits); every `10 x width` increments all counts
//! are halved, so the sketch follows changes in popularity. Each shard
//! thread has its own (its keys are only looked up there).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

const ROWS: usize = 4;
const MAX_COUNT: u8 = 15;
const MIN_WIDTH: usize = 1024;

/// Whether the policy that uses the sketch is selected (node-wide).
static ON: AtomicBool = AtomicBool::new(false);

struct Sketch {
    /// `ROWS` rows of `width` 4-bit counters, row after row, two per byte
    /// (the even one in the low half).
    counts: Vec<u8>,
    width: usize,
    adds: usize,
}

thread_local! {
    static SKETCH: RefCell<Sketch> = const { RefCell::new(Sketch { counts: Vec::new(), width: 0, adds: 0 }) };
}

impl Sketch {
    fn slot(&self, h: u64, row: usize) -> usize {
        let mixed = h.wrapping_add(row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ (row as u64) << 32);
        row * self.width + ((mixed >> 32) as usize & (self.width - 1))
    }

    fn get(&self, i: usize) -> u8 {
        self.counts[i / 2] >> (4 * (i & 1)) & 0xf
    }

    fn record(&mut self, h: u64) {
        if self.width == 0 {
            self.resize(MIN_WIDTH);
        }
        for r in 0..ROWS {
            let i = self.slot(h, r);
            if self.get(i) < MAX_COUNT {
                self.counts[i / 2] += 1 << (4 * (i & 1));
            }
        }
        self.adds += 1;
        if self.adds >= 10 * self.width {
            // Halves both counters of each byte.
            for c in &mut self.counts {
                *c = (*c >> 1) & 0x77;
            }
            self.adds /= 2;
        }
    }

    fn estimate(&self, h: u64) -> u8 {
        if self.width == 0 {
            return 0;
        }
        (0..ROWS).map(|r| self.get(self.slot(h, r))).min().unwrap_or(0)
    }

    /// Grows to `width` (a power of two). A key's counter in the wider row
    /// is at an index whose low bits are its index in the narrower one, so
    /// each new counter starts from the old counter it extends: estimates
    /// carry over (as upper bounds).
    fn resize(&mut self, width: usize) {
        let old = std::mem::replace(self, Sketch { counts: vec![0; ROWS * width / 2], width, adds: 0 });
        if old.width == 0 {
            return;
        }
        for r in 0..ROWS {
            for i in 0..width {
                let c = old.get(r * old.width + (i & (old.width - 1)));
                let at = r * width + i;
                self.counts[at / 2] |= c << (4 * (at & 1));
            }
        }
        self.adds = old.adds;
    }
}

/// Selects or leaves the policy that uses the sketch; leaving it frees
/// this thread's sketch when it is next used (`fit`).
pub fn set_on(on: bool) {
    ON.store(on, Relaxed);
}

pub fn is_on() -> bool {
    ON.load(Relaxed)
}

/// Counts a lookup of the key whose hash is `h`.
#[inline]
pub fn record(h: u64) {
    SKETCH.with(|s| s.borrow_mut().record(h));
}

/// The key's estimated recent lookups, 0..=15.
pub fn estimate(h: u64) -> u8 {
    SKETCH.with(|s| s.borrow().estimate(h))
}

/// Grows this thread's sketch for a shard holding `keys` keys (keeping
/// what it counted), or frees it when the policy is not selected.
pub fn fit(keys: usize) {
    SKETCH.with(|s| {
        let mut s = s.borrow_mut();
        if !is_on() {
            if s.width != 0 {
                *s = Sketch { counts: Vec::new(), width: 0, adds: 0 };
            }
            return;
        }
        let want = (keys * 4).next_power_of_two().max(MIN_WIDTH);
        if want > s.width {
            s.resize(want);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_estimate_from_below_and_age() {
        let mut s = Sketch { counts: Vec::new(), width: 0, adds: 0 };
        for _ in 0..3 {
            s.record(42);
        }
        assert_eq!(s.estimate(42), 3);
        assert_eq!(s.estimate(7), 0);
        for _ in 0..100 {
            s.record(42);
        }
        assert_eq!(s.estimate(42), MAX_COUNT);
        // Enough other lookups to reach the aging point halve every count.
        for k in 0..(10 * MIN_WIDTH as u64) {
            s.record(1_000_000 + k);
        }
        assert!(s.estimate(42) <= MAX_COUNT / 2 + 1, "{}", s.estimate(42));
    }

    #[test]
    fn growing_keeps_the_counts() {
        let mut s = Sketch { counts: Vec::new(), width: 0, adds: 0 };
        let keys: Vec<u64> = (0..500u64).map(|k| k.wrapping_mul(0x2545_F491_4F6C_DD1D)).collect();
        for (n, &k) in keys.iter().enumerate() {
            for _ in 0..n % 7 {
                s.record(k);
            }
        }
        let before: Vec<u8> = keys.iter().map(|&k| s.estimate(k)).collect();
        s.resize(16 * MIN_WIDTH);
        let after: Vec<u8> = keys.iter().map(|&k| s.estimate(k)).collect();
        assert!(before.iter().zip(&after).all(|(b, a)| a >= b), "never below what was counted");
        assert!(keys.iter().enumerate().all(|(n, &k)| s.estimate(k) as usize >= n % 7));
    }
}
