//! Per-key access metadata for eviction: 24 bits per key, read and written
//! as Redis does its `robj.lru`. Under an LRU (or non-LFU) policy they hold
//! the access clock in seconds (wrapping every 194 days); under an LFU
//! policy, the last decrement time in minutes (16 bits) and a logarithmic
//! access counter (8 bits) that `lfu-log-factor` slows and `lfu-decay-time`
//! ages. Every lookup of a key updates them (`Db::lookup`).
//!
//! Which of the two the bits mean, and the LFU parameters, are node-wide:
//! the layers that own the configuration set them here (`set_lfu`,
//! `set_lfu_params`) when it changes.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

/// The largest value of the 24-bit LRU clock.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// A new key's LFU counter, so it is not evicted before it had a chance
/// to be read again.
pub const LFU_INIT_VAL: u32 = 5;

static LFU: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);

thread_local! {
    /// Set while a command of a client in CLIENT NO-TOUCH mode runs on
    /// this thread: its lookups leave the metadata as they are.
    static NO_TOUCH: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with lookups counting as accesses (`touch`) or not.
pub fn touching<R>(touch: bool, f: impl FnOnce() -> R) -> R {
    if touch {
        return f();
    }
    let before = NO_TOUCH.with(|c| c.replace(true));
    let r = f();
    NO_TOUCH.with(|c| c.set(before));
    r
}

/// Whether the metadata count accesses (an LFU policy) rather than time.
pub fn set_lfu(on: bool) {
    LFU.store(on, Relaxed);
}

pub fn is_lfu() -> bool {
    LFU.load(Relaxed)
}

pub fn set_lfu_params(log_factor: u32, decay_minutes: u32) {
    LFU_LOG_FACTOR.store(log_factor, Relaxed);
    LFU_DECAY_TIME.store(decay_minutes, Relaxed);
}

/// The LRU clock at `now` (Unix ms): seconds, 24 bits.
#[inline]
fn lru_clock(now: u64) -> u32 {
    (now / 1000) as u32 & LRU_CLOCK_MAX
}

/// Minutes at `now`, 16 bits (the LFU decrement time).
#[inline]
fn minutes(now: u64) -> u32 {
    (now / 60_000) as u32 & 0xffff
}

/// Metadata of a key created at `now`.
#[inline]
pub fn initial(now: u64) -> u32 {
    if is_lfu() {
        minutes(now) << 8 | LFU_INIT_VAL
    } else {
        lru_clock(now)
    }
}

/// Metadata after an access at `now`.
#[inline]
pub fn accessed(meta: u32, now: u64) -> u32 {
    if NO_TOUCH.with(|c| c.get()) {
        return meta;
    }
    if !is_lfu() {
        return lru_clock(now);
    }
    let counter = log_incr(decayed(meta, now));
    minutes(now) << 8 | counter
}

/// The LFU counter at `now`, after the decay of the minutes since its last
/// decrement (OBJECT FREQ).
pub fn decayed(meta: u32, now: u64) -> u32 {
    decayed_by(meta, now, LFU_DECAY_TIME.load(Relaxed))
}

/// `decayed` with `lfu-decay-time` given.
fn decayed_by(meta: u32, now: u64, decay: u32) -> u32 {
    let (ldt, counter) = (meta >> 8 & 0xffff, meta & 0xff);
    let now_min = minutes(now);
    let elapsed = if now_min >= ldt { now_min - ldt } else { 65535 - ldt + now_min };
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Increments an LFU counter with probability 1 / ((counter - 5) *
/// lfu-log-factor + 1): the more accesses counted, the less likely the
/// next one counts.
fn log_incr(counter: u32) -> u32 {
    log_incr_by(counter, LFU_LOG_FACTOR.load(Relaxed))
}

/// `log_incr` with `lfu-log-factor` given.
fn log_incr_by(counter: u32, factor: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * factor as f64 + 1.0);
    if unit_random() < p {
        counter + 1
    } else {
        counter
    }
}

thread_local! {
    /// xorshift64* state for `unit_random` (seeded once per thread).
    static RNG: Cell<u64> = Cell::new(rand::random::<u64>() | 1);
}

/// A uniform number in [0, 1): every read of a key under an LFU policy
/// draws one, so a few shifts rather than the cryptographic generator.
#[inline]
fn unit_random() -> f64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// The metadata RESTORE gives a key from its IDLETIME (seconds) or FREQ
/// option: FREQ under an LFU policy, IDLETIME under another; `None` when
/// the option that applies is absent.
pub fn restored(idle_secs: Option<i64>, freq: Option<i64>, now: u64) -> Option<u32> {
    if is_lfu() {
        return freq.map(|f| minutes(now) << 8 | f.clamp(0, 255) as u32);
    }
    let idle = idle_secs?.max(0) as u64;
    let clock = lru_clock(now) as i64;
    let mut abs = clock - idle.min(i64::MAX as u64) as i64;
    if abs < 0 {
        abs = abs.rem_euclid(LRU_CLOCK_MAX as i64);
    }
    Some(abs as u32 & LRU_CLOCK_MAX)
}

/// Milliseconds since the last access, as the LRU clock tells (OBJECT
/// IDLETIME, eviction order under LRU policies).
pub fn idle_ms(meta: u32, now: u64) -> u64 {
    let clock = lru_clock(now);
    let meta = meta & LRU_CLOCK_MAX;
    let secs = if clock >= meta { clock - meta } else { clock + (LRU_CLOCK_MAX - meta) };
    secs as u64 * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_touch_leaves_the_metadata() {
        let m = initial(5_000_000);
        assert_eq!(touching(false, || accessed(m, 9_000_000)), m);
        assert_ne!(touching(true, || accessed(m, 9_000_000)), m);
    }

    #[test]
    fn lru_idle_time_wraps() {
        let m = initial(5_000_000);
        assert_eq!(idle_ms(m, 5_000_000), 0);
        assert_eq!(idle_ms(m, 5_010_999), 10_000);
        let near_end = (LRU_CLOCK_MAX as u64 - 1) * 1000;
        let m = lru_clock(near_end);
        assert_eq!(idle_ms(m, near_end + 3000), 2000, "one tick lost at the wrap, as Redis");
    }

    #[test]
    fn unit_randoms_are_uniform_in_the_unit_interval() {
        let n = 100_000;
        let mut below_half = 0;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = unit_random();
            assert!((0.0..1.0).contains(&x));
            below_half += (x < 0.5) as u32;
            sum += x;
        }
        // Binomial and uniform spreads: 10 standard deviations of slack.
        assert!((below_half as i64 - n as i64 / 2).abs() < 1600, "{below_half}");
        assert!((sum / n as f64 - 0.5).abs() < 0.01, "{}", sum / n as f64);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        // With Redis's defaults (log factor 10, decay time 1) given, not
        // the node-wide settings other tests may change meanwhile.
        let now = 120 * 60_000;
        let mut m = minutes(now) << 8 | LFU_INIT_VAL;
        // Reaching counter k takes about 5 (k - 5)^2 accesses: 1,000 make
        // about 19 (100 made 8 or 9, and 7 about once in 50 runs).
        for _ in 0..1000 {
            let c = log_incr_by(decayed_by(m, now, 1), 10);
            m = minutes(now) << 8 | c;
        }
        let c = decayed_by(m, now, 1);
        assert!(c > 10 && c < 30, "{c}");
        // One minute per period with the default decay time.
        assert_eq!(decayed_by(m, now + 3 * 60_000, 1), c - 3);
        assert_eq!(decayed_by(m, now + 600 * 60_000, 1), 0);
        // Decay time 0: never.
        assert_eq!(decayed_by(m, now + 600 * 60_000, 0), c);
    }
}
