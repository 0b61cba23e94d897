//! A cheap clock for timing commands (INFO commandstats, SLOWLOG): the
//! CPU's time-stamp counter where there is one (about 10 ns a read, less
//! than half of `Instant::now`), converted to nanoseconds with a rate
//! measured once against the monotonic clock. Elsewhere, `Instant`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A reading; only differences mean anything.
#[derive(Clone, Copy, Debug)]
pub struct Ticks(u64);

/// Nanoseconds per tick, as a 32.32 fixed-point number; 0 until measured.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);

#[inline]
pub fn now() -> Ticks {
    Ticks(raw())
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn raw() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86-64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn raw() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

impl Ticks {
    /// Nanoseconds from `self` to `later` (0 if the counter went back, as
    /// it can when a thread moves to another core of an unsynchronized
    /// machine).
    #[inline]
    pub fn nanos_to(self, later: Ticks) -> u64 {
        let d = later.0.saturating_sub(self.0);
        ((d as u128 * rate() as u128) >> 32) as u64
    }

    #[inline]
    pub fn elapsed_nanos(self) -> u64 {
        self.nanos_to(now())
    }
}

#[inline]
fn rate() -> u64 {
    match NS_PER_TICK.load(Relaxed) {
        0 => calibrate(),
        r => r,
    }
}

/// Measures the counter's rate against the monotonic clock (a few
/// milliseconds, once; the server does it at start-up).
#[cold]
pub fn calibrate() -> u64 {
    if cfg!(not(target_arch = "x86_64")) {
        NS_PER_TICK.store(1 << 32, Relaxed);
        return 1 << 32;
    }
    let (t0, r0) = (Instant::now(), raw());
    std::thread::sleep(Duration::from_millis(5));
    let (ns, r1) = (t0.elapsed().as_nanos() as u64, raw());
    let ticks = r1.saturating_sub(r0).max(1);
    let rate = (((ns as u128) << 32) / ticks as u128).max(1) as u64;
    NS_PER_TICK.store(rate, Relaxed);
    rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_like_the_monotonic_clock() {
        calibrate();
        let (i, t) = (Instant::now(), now());
        std::thread::sleep(Duration::from_millis(20));
        let (want, got) = (i.elapsed().as_nanos() as u64, t.elapsed_nanos());
        assert!(got > want * 9 / 10 && got < want * 11 / 10, "{got} ns for {want} ns");
    }
}
