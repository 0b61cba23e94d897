//! The latency monitor (LATENCY LATEST / HISTORY / GRAPH / DOCTOR) and the
//! per-command latency histograms (LATENCY HISTOGRAM, INFO latencystats).
//!
//! Events are Redis's (`latency.c`): an event (`command`, `fast-command`,
//! `expire-cycle`, `eviction-cycle`, `aof-write`, ...) that took at least
//! `latency-monitor-threshold` milliseconds adds a sample to its series,
//! which keeps the worst latency of each second for the last 160 seconds
//! that had one, and the all-time maximum. With the threshold at 0 (the
//! default) nothing is recorded; the check is one relaxed load.
//!
//! `Hist` is a latency histogram laid out as Redis's HdrHistogram (lowest
//! discernible value 1 ns, highest 1 s, two significant digits): values are
//! nanoseconds at Redis's microsecond resolution, so LATENCY HISTOGRAM's
//! power-of-two buckets and INFO's percentiles come out as Redis computes
//! them.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use crate::config::Config;

/// Samples kept per event (Redis's LATENCY_TS_LEN).
pub const SERIES_LEN: usize = 160;

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds (0: unused).
    pub time: u64,
    /// Milliseconds.
    pub latency: u64,
}

/// One event's series.
#[derive(Clone, Debug)]
pub struct Series {
    pub samples: [Sample; SERIES_LEN],
    /// Where the next new sample goes.
    pub idx: usize,
    /// The worst latency since the series began.
    pub max: u64,
}

impl Series {
    fn new() -> Series {
        Series { samples: [Sample::default(); SERIES_LEN], idx: 0, max: 0 }
    }

    /// Adds a sample at `now` (Unix seconds): the second's worst is kept.
    pub fn add(&mut self, now: u64, latency: u64) {
        self.max = self.max.max(latency);
        let prev = (self.idx + SERIES_LEN - 1) % SERIES_LEN;
        if self.samples[prev].time == now {
            self.samples[prev].latency = self.samples[prev].latency.max(latency);
            return;
        }
        self.samples[self.idx] = Sample { time: now, latency };
        self.idx = (self.idx + 1) % SERIES_LEN;
    }

    /// The samples in use, oldest first.
    pub fn in_order(&self) -> impl Iterator<Item = &Sample> {
        (0..SERIES_LEN).map(move |j| &self.samples[(self.idx + j) % SERIES_LEN]).filter(|s| s.time != 0)
    }

    /// The most recent sample.
    pub fn last(&self) -> Sample {
        self.samples[(self.idx + SERIES_LEN - 1) % SERIES_LEN]
    }
}

/// The node's latency events, by name.
#[derive(Default)]
pub struct Latency {
    events: Mutex<BTreeMap<&'static str, Series>>,
}

impl Latency {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Series>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `event` when it took `ms` milliseconds and that reaches a
    /// threshold that is set (Redis's latencyAddSampleIfNeeded).
    #[inline]
    pub fn add_if_needed(&self, cfg: &Config, event: &'static str, ms: u64) {
        let t = cfg.latency_monitor_threshold.load(Relaxed);
        if t > 0 && ms >= t {
            self.add(event, ms);
        }
    }

    #[cold]
    pub fn add(&self, event: &'static str, ms: u64) {
        let now = crate::util::now_ms() / 1000;
        self.lock().entry(event).or_insert_with(Series::new).add(now, ms);
    }

    /// Every event's series (copies), by name.
    pub fn all(&self) -> Vec<(&'static str, Series)> {
        self.lock().iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    pub fn get(&self, event: &[u8]) -> Option<(&'static str, Series)> {
        self.lock().iter().find(|(k, _)| k.as_bytes() == event).map(|(k, v)| (*k, v.clone()))
    }

    /// Forgets the events named (case-insensitively), or all; how many.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut m = self.lock();
        let before = m.len();
        m.retain(|k, _| event.is_some_and(|e| !k.as_bytes().eq_ignore_ascii_case(e)));
        before - m.len()
    }
}

/// Two significant digits: 256 sub-buckets, the upper half of each bucket
/// counted (HdrHistogram's layout for a lowest value of 1).
const SUB_HALF_MAG: u32 = 7;
const SUB_HALF: usize = 1 << SUB_HALF_MAG;
/// Values are clamped to [1 ns, 1 s] as Redis records them.
pub const HIST_MIN: u64 = 1;
pub const HIST_MAX: u64 = 1_000_000_000;
const HIST_LEN: usize = (bucket_of(HIST_MAX) as usize + 2) * SUB_HALF;

const fn bucket_of(v: u64) -> u32 {
    63 - (v | 255).leading_zeros() - SUB_HALF_MAG
}

/// A command's latency histogram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hist {
    counts: Box<[u64]>,
    pub total: u64,
}

impl Default for Hist {
    fn default() -> Hist {
        Hist { counts: vec![0; HIST_LEN].into_boxed_slice(), total: 0 }
    }
}

fn index_of(v: u64) -> usize {
    let b = bucket_of(v);
    let sub = (v >> b) as usize;
    (((b as usize) + 1) << SUB_HALF_MAG) + sub - SUB_HALF
}

/// The lowest value counted at index `i`, and the size of its range.
fn value_at(i: usize) -> (u64, u64) {
    let mut b = (i >> SUB_HALF_MAG) as i64 - 1;
    let mut sub = (i & (SUB_HALF - 1)) + SUB_HALF;
    if b < 0 {
        sub -= SUB_HALF;
        b = 0;
    }
    ((sub as u64) << b, 1u64 << b)
}

fn highest_equivalent(v: u64) -> u64 {
    let (low, size) = value_at(index_of(v));
    low + size - 1
}

impl Hist {
    /// Records a command that ran `nanos`, at Redis's resolution (whole
    /// microseconds).
    #[inline]
    pub fn record(&mut self, nanos: u64) {
        let v = (nanos / 1000 * 1000).clamp(HIST_MIN, HIST_MAX);
        self.counts[index_of(v)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
    }

    /// Calls per bucket for ascending upper bounds `bounds` (ns): each
    /// bound's calls not under the bound before it (Prometheus's buckets,
    /// at the histogram's precision: a recorded value counts under the
    /// bound whose sub-bucket holds it). Calls above the last bound are
    /// `total` minus the sum.
    pub fn per_bound(&self, bounds: &[u64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds.len());
        let mut i = 0;
        for &b in bounds {
            let upto = index_of(b.clamp(HIST_MIN, HIST_MAX));
            let mut n = 0;
            while i <= upto && i < self.counts.len() {
                n += self.counts[i];
                i += 1;
            }
            out.push(n);
        }
        out
    }

    /// LATENCY HISTOGRAM's buckets: (upper bound in µs, calls at or under
    /// it), for the power-of-two bounds from 1024 ns where the count grows
    /// (HdrHistogram's logarithmic iteration, as Redis's fillCommandCDF).
    pub fn cdf(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut level = 1024u64;
        let mut cum = 0;
        let mut prev = 0;
        let mut i = 0;
        while cum < self.total {
            // Everything at indices up to the level's own.
            let upto = index_of(level.min(HIST_MAX * 2));
            while i <= upto && i < self.counts.len() {
                cum += self.counts[i];
                i += 1;
            }
            if cum > prev {
                out.push((highest_equivalent(level) / 1000, cum));
            }
            prev = cum;
            level *= 2;
        }
        out
    }

    /// The value at percentile `p` (0..=100) in nanoseconds, as
    /// hdr_value_at_percentile.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let want = ((p.min(100.0) / 100.0 * self.total as f64) + 0.5) as u64;
        let want = want.max(1);
        let mut cum = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cum += c;
            if cum >= want {
                let (low, size) = value_at(i);
                return if p == 0.0 { low } else { low + size - 1 };
            }
        }
        0
    }
}

/// LATENCY GRAPH's drawing: Redis's sparkline (`sparkline.c`), 80 columns,
/// 4 rows, filled, each sample labelled with how long ago it was.
pub fn graph(event: &str, s: &Series, now: u64) -> String {
    const COLS: usize = 80;
    const ROWS: usize = 4;
    let samples: Vec<(f64, String)> = s
        .in_order()
        .map(|x| {
            let e = now.saturating_sub(x.time);
            let label = if e < 60 {
                format!("{e}s")
            } else if e < 3600 {
                format!("{}m", e / 60)
            } else if e < 86400 {
                format!("{}h", e / 3600)
            } else {
                format!("{}d", e / 86400)
            };
            (x.latency as f64, label)
        })
        .collect();
    let lat = |f: fn(u64, u64) -> u64| s.in_order().map(|x| x.latency).reduce(f).unwrap_or(0);
    let (high, low) = (lat(u64::max), lat(u64::min));
    let mut out = format!("{event} - high {high} ms, low {low} ms (all time high {} ms)\n", s.max);
    out.push_str(&"-".repeat(COLS));
    out.push('\n');
    // The sequence's own min and max (sparklineSequenceAddSample).
    let (mut min, mut max) = (0.0f64, 0.0f64);
    for (n, (v, _)) in samples.iter().enumerate() {
        if n == 0 {
            (min, max) = (*v, *v);
        } else if *v < min {
            min = *v;
        } else if *v > max {
            max = *v;
        }
    }
    let mut j = 0;
    while j < samples.len() {
        let len = (samples.len() - j).min(COLS);
        if j != 0 {
            out.push('\n');
        }
        render_range(&mut out, &samples[j..j + len], min, max, ROWS);
        j += COLS;
    }
    out
}

/// sparklineRenderRange with SPARKLINE_FILL.
fn render_range(out: &mut String, seq: &[(f64, String)], min: f64, max: f64, rows: usize) {
    const FILL: &[u8] = b"_o#";
    let charset_len = FILL.len() as i64;
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let steps = charset_len * rows as i64;
    let mut row = 0usize;
    loop {
        let mut go = false;
        let mut chars = vec![b' '; seq.len()];
        for (j, (value, label)) in seq.iter().enumerate() {
            let relval = value - min;
            let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            let step = step.clamp(0, steps - 1);
            if row < rows {
                let idx = step - (rows - row - 1) as i64 * charset_len;
                go = true;
                if (0..charset_len).contains(&idx) {
                    chars[j] = FILL[idx as usize];
                } else if idx >= charset_len {
                    chars[j] = b'|';
                }
            } else {
                // One blank line between the graph and the labels.
                if row - rows < 1 {
                    go = true;
                    break;
                }
                let at = row - rows - 1;
                if let Some(&c) = label.as_bytes().get(at) {
                    go = true;
                    chars[j] = c;
                }
            }
        }
        if !go {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn per_bound_splits_calls_between_bounds() {
        let mut h = super::Hist::default();
        for ns in [500, 1_000, 3_000, 3_000, 900_000_000] {
            h.record(ns);
        }
        // 500 ns is recorded as 1 ns (whole microseconds, at least 1 ns).
        assert_eq!(h.per_bound(&[1_000, 2_000, 4_000, 1_000_000]), vec![2, 0, 2, 0]);
        assert_eq!(h.total, 5);
    }

    use super::*;

    #[test]
    fn series_keeps_each_seconds_worst() {
        let mut s = Series::new();
        s.add(10, 5);
        s.add(10, 3);
        s.add(10, 7);
        s.add(11, 2);
        let v: Vec<Sample> = s.in_order().copied().collect();
        assert_eq!(v, [Sample { time: 10, latency: 7 }, Sample { time: 11, latency: 2 }]);
        assert_eq!(s.max, 7);
        for t in 0..200 {
            s.add(100 + t, 1);
        }
        assert_eq!(s.in_order().count(), SERIES_LEN);
        assert_eq!(s.last(), Sample { time: 299, latency: 1 });
    }

    #[test]
    fn histogram_buckets_are_redis_ones() {
        let mut h = Hist::default();
        for us in [0u64, 1, 1, 2, 3, 40, 1000, 5_000_000] {
            h.record(us * 1000 + 300);
        }
        // Redis's bounds: 1024 ns -> 1 µs, 2048 -> 2, 4096 -> 4, ...
        // 32768 ns -> 33, 65536 -> 66, 1048576 -> 1056; above 1 s: clamped.
        assert_eq!(h.cdf(), [(1, 3), (2, 4), (4, 5), (66, 6), (1056, 7), (1082130, 8)]);
        assert_eq!(h.total, 8);
        assert_eq!(h.percentile(50.0), 2007);
        assert_eq!(h.percentile(100.0), 1_000_000_000 + (1 << 22) - 1 - (1_000_000_000 % (1 << 22)));
    }
}
