//! MONITOR: the node-wide list of monitoring connections and the lines
//! they are sent. Every command, whatever shard or thread runs it, is
//! offered here once it ran (`feed`); the check that nobody monitors is one
//! relaxed load (`Monitors::on`).
//!
//! A line is Redis's (`replicationFeedMonitors`): `+<sec>.<usec> [<db>
//! <addr>] "arg" ...`, each argument quoted as `sdscatrepr` quotes it, `lua`
//! instead of the address for a script's commands. The lines not yet
//! written to a monitor's socket count against its output limit
//! (`ClientInfo::out_pending`, as a subscriber's messages do); a monitor
//! found over it is closed instead of being sent more. Redis weighs a
//! monitor as a `normal` client, whose class is unlimited by default; when
//! it is, the `pubsub` class's limits apply (a monitor, like a subscriber,
//! receives a stream it does not ask for), so a monitor that does not read
//! never grows memory without bound.
//!
//! A script that runs on its shard's fast path may be abandoned and run
//! again holding every shard (docs/ARCHITECTURE.md, Scripting): while it
//! runs, its lines are held on the thread (`hold`) and sent when the run
//! stands, dropped when it is abandoned.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::clients::ClientInfo;
use crate::config::{Config, OutputLimit, CLASS_NORMAL, CLASS_PUBSUB};

/// Where a command came from, as its line shows it.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A client connection (its peer address).
    Client(&'a str),
    /// A script's `redis.call`.
    Lua,
}

struct Monitor {
    tx: UnboundedSender<Bytes>,
    info: Arc<ClientInfo>,
}

#[derive(Default)]
pub struct Monitors {
    /// How many monitors are registered: what the command path reads.
    count: AtomicUsize,
    list: Mutex<Vec<Monitor>>,
}

/// Lines held on this thread while a fast-path script runs (`hold`).
struct Held {
    lines: Vec<Bytes>,
    bytes: usize,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Past this many bytes, held lines are sent at once (the hold bounds
/// memory, not just duplicates).
const HOLD_MAX: usize = 1 << 20;

impl Monitors {
    /// Whether anybody monitors (one relaxed load).
    #[inline]
    pub fn on(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Monitor>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a monitoring connection; false when it already monitors.
    pub fn add(&self, info: &Arc<ClientInfo>, tx: &UnboundedSender<Bytes>) -> bool {
        let mut l = self.lock();
        if l.iter().any(|m| m.info.id == info.id) {
            return false;
        }
        l.push(Monitor { tx: tx.clone(), info: info.clone() });
        self.count.store(l.len(), Relaxed);
        true
    }

    pub fn remove(&self, id: u64) {
        let mut l = self.lock();
        l.retain(|m| m.info.id != id);
        self.count.store(l.len(), Relaxed);
    }

    /// Whether the client `id` monitors (CLIENT LIST's `O` flag).
    pub fn is_monitor(&self, id: u64) -> bool {
        self.on() && self.lock().iter().any(|m| m.info.id == id)
    }

    /// Sends the line of a command that ran on database `db` to every
    /// monitor (held instead while a fast-path script runs on this thread).
    #[cold]
    pub fn feed(&self, cfg: &Config, db: usize, src: Source<'_>, args: &[Bytes]) {
        let line = Bytes::from(format_line(crate::util::now_us(), db, src, args));
        let held = HELD.with(|h| match h.borrow_mut().as_mut() {
            Some(h) if h.bytes + line.len() <= HOLD_MAX => {
                h.bytes += line.len();
                h.lines.push(line.clone());
                true
            }
            _ => false,
        });
        if !held {
            self.send(cfg, &[line]);
        }
    }

    fn send(&self, cfg: &Config, lines: &[Bytes]) {
        let limit = limit(cfg);
        let now = crate::util::now_ms();
        let size: usize = lines.iter().map(|l| l.len()).sum();
        let mut l = self.lock();
        l.retain(|m| {
            if m.info.killed.load(Relaxed) {
                return false;
            }
            if m.info.output_over(m.info.out_pending.load(Relaxed) + size, limit, now) {
                tracing::warn!(client = m.info.id, addr = %m.info.addr, "closing a monitor over its output buffer limit");
                m.info.close_async();
                return false;
            }
            m.info.out_pending.fetch_add(size, Relaxed);
            lines.iter().all(|line| m.tx.send(line.clone()).is_ok())
        });
        self.count.store(l.len(), Relaxed);
    }

    /// Starts holding this thread's lines (a fast-path script begins).
    pub fn hold(&self) {
        HELD.with(|h| *h.borrow_mut() = Some(Held { lines: Vec::new(), bytes: 0 }));
    }

    /// Stops holding: the lines are sent when `keep`, dropped otherwise.
    pub fn release(&self, cfg: &Config, keep: bool) {
        let Some(held) = HELD.with(|h| h.borrow_mut().take()) else { return };
        if keep && !held.lines.is_empty() {
            self.send(cfg, &held.lines);
        }
    }
}

/// The output limit a monitor is held to (see the module's comment).
fn limit(cfg: &Config) -> &OutputLimit {
    let normal = &cfg.output_limits[CLASS_NORMAL];
    if normal.hard.load(Relaxed) == 0 && normal.soft.load(Relaxed) == 0 {
        &cfg.output_limits[CLASS_PUBSUB]
    } else {
        normal
    }
}

/// One monitor line, `+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`
/// with its CRLF; `now_us`: Unix time in microseconds.
pub fn format_line(now_us: u64, db: usize, src: Source<'_>, args: &[Bytes]) -> Vec<u8> {
    let mut s = String::with_capacity(48 + args.iter().map(|a| a.len() + 3).sum::<usize>());
    let _ = write!(s, "+{}.{:06} ", now_us / 1_000_000, now_us % 1_000_000);
    match src {
        Source::Client(addr) => {
            let _ = write!(s, "[{db} {addr}] ");
        }
        Source::Lua => {
            let _ = write!(s, "[{db} lua] ");
        }
    }
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        repr(&mut s, a);
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// Quotes bytes as Redis's `sdscatrepr` does.
pub fn repr(s: &mut String, bytes: &[u8]) {
    s.push('"');
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_as_redis() {
        let args = [Bytes::from_static(b"set"), Bytes::from_static(b"k\"\\"), Bytes::from_static(b"\x00\x07\x08\t\r\n\xffa ")];
        let line = format_line(1_339_518_083_107_412, 0, Source::Client("127.0.0.1:60866"), &args);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "+1339518083.107412 [0 127.0.0.1:60866] \"set\" \"k\\\"\\\\\" \"\\x00\\a\\b\\t\\r\\n\\xffa \"\r\n"
        );
        let line = format_line(5_000_007, 3, Source::Lua, &[Bytes::from_static(b"get")]);
        assert_eq!(line, b"+5.000007 [3 lua] \"get\"\r\n");
    }
}
