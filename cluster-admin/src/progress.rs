//! Progress of slot moves on stderr: one line redrawn in place on a
//! terminal, plain lines every few seconds (and at each phase change)
//! otherwise, and a closing line per move.

use std::io::Write;
use std::time::{Duration, Instant};

use damselfly_proto::admin::MoveProgress;

/// How often the line is redrawn on a terminal.
const TTY_EVERY: Duration = Duration::from_millis(100);
/// How often a line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What a finished move carried.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moved {
    pub keys: u64,
    pub bytes: u64,
    /// Longest write pause of the cut-over, in ms.
    pub pause_ms: u64,
    pub seconds: f64,
}

impl Moved {
    /// The totals of several moves (the longest pause, the summed time).
    pub fn add(&mut self, other: &Moved) {
        self.keys += other.keys;
        self.bytes += other.bytes;
        self.pause_ms = self.pause_ms.max(other.pause_ms);
        self.seconds += other.seconds;
    }

    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "keys": self.keys,
            "bytes": self.bytes,
            "pause_ms": self.pause_ms,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
        })
    }
}

/// The progress display of one move, writing to `out`.
pub struct Progress<W: Write> {
    out: W,
    tty: bool,
    label: String,
    start: Instant,
    last_draw: Option<Instant>,
    phase: String,
    /// Length of the line currently drawn in place.
    drawn: usize,
}

impl Progress<std::io::Stderr> {
    /// A display on stderr, redrawn in place when stderr is a terminal.
    pub fn stderr(label: String) -> Self {
        use std::io::IsTerminal;
        let err = std::io::stderr();
        let tty = err.is_terminal();
        Progress::new(err, tty, label, Instant::now())
    }
}

impl<W: Write> Progress<W> {
    pub fn new(out: W, tty: bool, label: String, start: Instant) -> Self {
        Progress { out, tty, label, start, last_draw: None, phase: String::new(), drawn: 0 }
    }

    /// Shows `p`, received at `now`, if it is time to (always at a new phase).
    pub fn update(&mut self, p: &MoveProgress, now: Instant) {
        let every = if self.tty { TTY_EVERY } else { PLAIN_EVERY };
        let due = self.last_draw.is_none_or(|t| now.duration_since(t) >= every);
        if !due && p.phase == self.phase {
            return;
        }
        self.phase.clone_from(&p.phase);
        self.last_draw = Some(now);
        let line = progress_line(&self.label, p, now.duration_since(self.start));
        // Progress output is best effort: a closed stderr must not stop a move.
        let _ = if self.tty {
            let pad = self.drawn.saturating_sub(line.len());
            self.drawn = line.len();
            write!(self.out, "\r{line}{:pad$}", "")
        } else {
            writeln!(self.out, "{line}")
        };
        let _ = self.out.flush();
    }

    /// Ends the display with the closing line of a move that carried `m`.
    pub fn finish(&mut self, m: &Moved) {
        self.end_line();
        let _ = writeln!(self.out, "{}: done, {}", self.label, moved_text(m));
    }

    /// Ends the display of a move that failed (the caller reports why).
    pub fn fail(&mut self) {
        self.end_line();
    }

    fn end_line(&mut self) {
        if self.tty && self.drawn > 0 {
            let _ = write!(self.out, "\r{:w$}\r", "", w = self.drawn);
            self.drawn = 0;
        }
    }
}

/// `label: phase, N keys, SIZE, T s`.
pub fn progress_line(label: &str, p: &MoveProgress, elapsed: Duration) -> String {
    let phase = if p.phase.is_empty() { "starting" } else { &p.phase };
    format!("{label}: {phase}, {} keys, {}, {:.1} s", p.keys_sent, human_bytes(p.bytes_sent), elapsed.as_secs_f64())
}

/// `N keys, SIZE in T s (K keys/s), writes paused P ms`.
pub fn moved_text(m: &Moved) -> String {
    let rate = if m.seconds > 0.0 { format!(" ({:.0} keys/s)", m.keys as f64 / m.seconds) } else { String::new() };
    format!("{} keys, {} in {:.1} s{rate}, writes paused {} ms", m.keys, human_bytes(m.bytes), m.seconds, m.pause_ms)
}

/// Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(keys: u64, bytes: u64, phase: &str) -> MoveProgress {
        MoveProgress { keys_sent: keys, bytes_sent: bytes, phase: phase.into(), ..Default::default() }
    }

    #[test]
    fn bytes_read_easily() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(100 * 1024 * 1024), "100.0 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 + 1024 * 1024 * 1024 / 5), "3.2 GiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn lines() {
        let line = progress_line("a -> b, 100 slots", &p(1200, 2 * 1024 * 1024, "snapshot"), Duration::from_millis(2500));
        assert_eq!(line, "a -> b, 100 slots: snapshot, 1200 keys, 2.0 MiB, 2.5 s");
        assert!(progress_line("x", &p(0, 0, ""), Duration::ZERO).starts_with("x: starting, 0 keys"));
        let m = Moved { keys: 1000, bytes: 2048, pause_ms: 7, seconds: 2.0 };
        assert_eq!(moved_text(&m), "1000 keys, 2.0 KiB in 2.0 s (500 keys/s), writes paused 7 ms");
    }

    #[test]
    fn plain_output_prints_every_few_seconds_and_at_phase_changes() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        {
            let mut pr = Progress::new(&mut out, false, "m".into(), t0);
            pr.update(&p(1, 10, "snapshot"), t0);
            pr.update(&p(2, 20, "snapshot"), t0 + Duration::from_secs(1));
            pr.update(&p(3, 30, "snapshot"), t0 + Duration::from_secs(6));
            pr.update(&p(4, 40, "catch-up"), t0 + Duration::from_millis(6100));
            pr.finish(&Moved { keys: 4, bytes: 40, pause_ms: 3, seconds: 6.2 });
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("m: snapshot, 1 keys"));
        assert!(lines[1].starts_with("m: snapshot, 3 keys"));
        assert!(lines[2].starts_with("m: catch-up, 4 keys"));
        assert_eq!(lines[3], "m: done, 4 keys, 40 B in 6.2 s (1 keys/s), writes paused 3 ms");
        assert!(!text.contains('\r'));
    }

    #[test]
    fn terminal_output_redraws_one_line() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        {
            let mut pr = Progress::new(&mut out, true, "m".into(), t0);
            pr.update(&p(100, 10, "snapshot"), t0);
            pr.update(&p(200, 10, "snapshot"), t0 + Duration::from_millis(10));
            pr.update(&p(5, 10, "cut-over"), t0 + Duration::from_millis(20));
            pr.finish(&Moved::default());
        }
        let text = String::from_utf8(out).unwrap();
        // Drawn twice (the second update came too soon), then cleared, then one closing line.
        assert_eq!(text.matches("keys, 10 B").count(), 2, "{text:?}");
        assert!(!text.contains("200 keys"));
        assert!(text.contains("\rm: cut-over, 5 keys"));
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with("\rm: done, 0 keys, 0 B in 0.0 s, writes paused 0 ms\n"));
    }
}
