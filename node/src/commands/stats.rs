//! Per-command statistics (INFO commandstats, errorstats): each thread
//! counts what runs on it, in a plain array indexed by the command's
//! position in the table (`index`); INFO sums the shards' arrays, CONFIG
//! RESETSTAT zeroes them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::CommandSpec;
use crate::shard::latency::Hist;

/// One command's counters (`usec` kept in nanoseconds), and its latency
/// histogram once it has one (`latency-tracking`).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct CmdStat {
    pub calls: u64,
    pub nanos: u64,
    pub rejected: u64,
    pub failed: u64,
    pub hist: Option<Hist>,
}

impl CmdStat {
    fn add(&mut self, o: &CmdStat) {
        self.calls += o.calls;
        self.nanos += o.nanos;
        self.rejected += o.rejected;
        self.failed += o.failed;
        if let Some(h) = &o.hist {
            self.hist.get_or_insert_with(Hist::default).merge(h);
        }
    }
}

/// One thread's counters: per command (by `index`), and error replies by
/// their code (`ERR`, `WRONGTYPE`, ...).
#[derive(Clone, Default, Debug)]
pub struct Stats {
    pub cmds: Vec<CmdStat>,
    pub errors: Vec<(String, u64)>,
    /// Every error reply, including those of codes past the 128th.
    pub total_errors: u64,
}

/// Redis keeps at most this many distinct error codes.
const MAX_ERROR_CODES: usize = 128;

impl Stats {
    pub fn merge(&mut self, o: &Stats) {
        if self.cmds.len() < o.cmds.len() {
            self.cmds.resize(o.cmds.len(), CmdStat::default());
        }
        for (a, b) in self.cmds.iter_mut().zip(&o.cmds) {
            a.add(b);
        }
        self.total_errors += o.total_errors;
        for (code, n) in &o.errors {
            match self.errors.iter_mut().find(|(c, _)| c == code) {
                Some((_, m)) => *m += n,
                None => self.errors.push((code.clone(), *n)),
            }
        }
    }

    #[inline]
    fn slot(&mut self, i: usize) -> &mut CmdStat {
        if i >= self.cmds.len() {
            self.cmds.resize(specs().len(), CmdStat::default());
        }
        &mut self.cmds[i]
    }
}

thread_local! {
    static STATS: RefCell<Stats> = const { RefCell::new(Stats { cmds: Vec::new(), errors: Vec::new(), total_errors: 0 }) };
}

type Index = HashMap<usize, u16, foldhash::fast::FixedState>;

/// Every declaration (containers and subcommands), in table order: what
/// `index` numbers.
pub fn specs() -> &'static [&'static CommandSpec] {
    &tables().0
}

fn tables() -> &'static (Vec<&'static CommandSpec>, Index) {
    static T: OnceLock<(Vec<&'static CommandSpec>, Index)> = OnceLock::new();
    T.get_or_init(|| {
        let specs: Vec<&'static CommandSpec> = super::all().flat_map(|c| std::iter::once(c).chain(c.subs)).collect();
        let index = specs.iter().enumerate().map(|(i, c)| (std::ptr::from_ref(*c) as usize, i as u16)).collect();
        (specs, index)
    })
}

/// The command's position among `specs`, assigned once when the table is
/// first used (by its address: declarations are statics).
#[inline]
pub fn index(spec: &CommandSpec) -> usize {
    tables().1.get(&(std::ptr::from_ref(spec) as usize)).map_or(usize::MAX, |&i| i as usize)
}

/// A command ran on this thread for `nanos`; `failed`: it replied an error.
#[inline]
pub fn record(spec: &CommandSpec, nanos: u64, failed: bool) {
    let i = index(spec);
    if i == usize::MAX {
        return;
    }
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        let c = s.slot(i);
        c.calls += 1;
        c.nanos += nanos;
        c.failed += u64::from(failed);
    });
}

/// A command's latency for its histogram (LATENCY HISTOGRAM, INFO
/// latencystats), on this thread.
#[inline]
pub fn record_latency(spec: &CommandSpec, nanos: u64) {
    let i = index(spec);
    if i == usize::MAX {
        return;
    }
    STATS.with(|s| s.borrow_mut().slot(i).hist.get_or_insert_with(Hist::default).record(nanos));
}

/// A command was refused before it ran (arity, NOAUTH, OOM, routing, BUSY).
pub fn reject(spec: &CommandSpec) {
    let i = index(spec);
    if i == usize::MAX {
        return;
    }
    STATS.with(|s| s.borrow_mut().slot(i).rejected += 1);
}

/// An error reply (its text, without the leading `-`): counted by its code,
/// the first word when a space ends it within 32 bytes, else `ERR`
/// (Redis's rule).
pub fn error_reply(text: &[u8]) {
    let head = &text[..text.len().min(32)];
    let code = match head.iter().position(|&b| b == b' ') {
        Some(n) => &text[..n],
        None => b"ERR",
    };
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        s.total_errors += 1;
        if let Some((_, n)) = s.errors.iter_mut().find(|(c, _)| c.as_bytes() == code) {
            *n += 1;
        } else if s.errors.len() < MAX_ERROR_CODES {
            s.errors.push((String::from_utf8_lossy(code).into_owned(), 1));
        }
    });
}

/// An error reply already written as RESP (`-CODE text\r\n`).
pub fn error_resp(buf: &[u8]) {
    if let Some(rest) = buf.strip_prefix(b"-") {
        error_reply(rest.strip_suffix(b"\r\n").unwrap_or(rest));
    }
}

/// INFO's `# Commandstats` and `# Errorstats` sections, from the sum of
/// the threads' counters.
pub fn write_commandstats(text: &mut String, s: &Stats) {
    use std::fmt::Write;
    text.push_str("# Commandstats\r\n");
    for (spec, c) in specs().iter().zip(&s.cmds) {
        if c.calls == 0 && c.rejected == 0 && c.failed == 0 {
            continue;
        }
        let usec = c.nanos / 1000;
        let per_call = if c.calls == 0 { 0.0 } else { c.nanos as f64 / 1000.0 / c.calls as f64 };
        let _ = write!(
            text,
            "cmdstat_{}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            spec.name, c.calls, c.rejected, c.failed
        );
    }
    text.push_str("\r\n");
}

pub fn write_errorstats(text: &mut String, s: &Stats) {
    use std::fmt::Write;
    text.push_str("# Errorstats\r\n");
    let mut errors: Vec<&(String, u64)> = s.errors.iter().collect();
    errors.sort();
    for (code, n) in errors {
        let _ = write!(text, "errorstat_{code}:count={n}\r\n");
    }
    text.push_str("\r\n");
}

/// This thread's counters.
pub fn snapshot() -> Stats {
    STATS.with(|s| s.borrow().clone())
}

/// This thread's counters without the latency histograms (24 KB each):
/// what INFO needs unless it prints `latencystats`, so that the memory it
/// reports is not swollen by its own copies of them.
pub fn counters() -> Stats {
    STATS.with(|s| {
        let s = s.borrow();
        let cmds = s.cmds.iter().map(|c| CmdStat { hist: None, ..c.clone() }).collect();
        Stats { cmds, errors: s.errors.clone(), total_errors: s.total_errors }
    })
}

/// Takes this thread's counters, leaving them zero (a thread INFO does
/// not sum hands them to a shard thread: `absorb`).
pub fn take() -> Stats {
    STATS.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// Adds counters taken on another thread to this thread's.
pub fn absorb(o: &Stats) {
    STATS.with(|s| s.borrow_mut().merge(o));
}

/// Zeroes this thread's counters.
pub fn reset() {
    STATS.with(|s| *s.borrow_mut() = Stats::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declaration_has_an_index() {
        for (i, c) in specs().iter().enumerate() {
            assert_eq!(index(c), i, "{}", c.name);
        }
        let get = super::super::lookup(b"get").unwrap();
        assert_eq!(specs()[index(get)].name, "get");
    }

    #[test]
    fn counts_on_this_thread() {
        reset();
        let get = super::super::lookup(b"get").unwrap();
        record(get, 1500, false);
        record(get, 500, true);
        reject(get);
        error_reply(b"WRONGTYPE Operation against a key");
        error_reply(b"NOSPACEATALLinthistextthatislongerthan32");
        let s = snapshot();
        assert_eq!(s.cmds[index(get)], CmdStat { calls: 2, nanos: 2000, rejected: 1, failed: 1, hist: None });
        assert_eq!(s.errors, vec![("WRONGTYPE".to_string(), 1), ("ERR".to_string(), 1)]);
        assert_eq!(s.total_errors, 2);
        reset();
        assert!(snapshot().cmds.is_empty());
    }
}
