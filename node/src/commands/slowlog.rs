//! SLOWLOG: the node's log of slow commands (`shard::slowlog`), filled by
//! the pipeline for commands that ran at least `slowlog-log-slower-than` µs.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, flag::*, sub, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::clients::ClientInfo;
use crate::shard::Engine;
use crate::util::eq_ic;

const SLOWLOG: Exec = Exec::Coord(handler!(|cx, a| slowlog(cx, a)));
const ADM: &[&str] = &["admin", "slow", "dangerous"];

pub static COMMANDS: &[CommandSpec] =
    &[cmd("slowlog", -2, 0, (0, 0, 0), &["slow"], "server", "A container for slow log commands.", SLOWLOG).subcommands(&[
        sub("slowlog|get", -2, ADMIN | LOADING | STALE, (0, 0, 0), ADM, "Returns the slow log's entries.", SLOWLOG)
            .tips(&["request_policy:all_nodes", "nondeterministic_output"]),
        sub("slowlog|len", 2, ADMIN | LOADING | STALE, (0, 0, 0), ADM, "Returns the number of entries in the slow log.", SLOWLOG).tips(&[
            "request_policy:all_nodes",
            "response_policy:agg_sum",
            "nondeterministic_output",
        ]),
        sub("slowlog|reset", 2, ADMIN | LOADING | STALE, (0, 0, 0), ADM, "Clears all entries from the slow log.", SLOWLOG)
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        sub("slowlog|help", 2, LOADING | STALE, (0, 0, 0), &["slow"], "Show helpful text about the different subcommands", SLOWLOG),
    ])];

/// Logs a command line that ran `nanos` when that is at least
/// `slowlog-log-slower-than` (one load when it is not). `client`: the
/// connection that sent it; `None` for a script's call (Redis's `?:0`).
/// Commands that skip the slow log (EXEC) are not logged; a blocking one
/// is logged once it is served or times out, with its own time and not its
/// wait (as Redis logs it on unblocking); passwords are redacted.
#[inline]
pub fn log_if_slow(engine: &Engine, spec: &CommandSpec, args: &[Bytes], nanos: u64, client: Option<&ClientInfo>) {
    let limit = engine.cfg.slowlog_log_slower_than.load(Relaxed);
    if limit < 0 || nanos / 1000 < limit as u64 {
        return;
    }
    push(engine, spec, args, nanos / 1000, client);
}

#[cold]
fn push(engine: &Engine, spec: &CommandSpec, args: &[Bytes], usec: u64, client: Option<&ClientInfo>) {
    if spec.has_flag(SKIP_SLOWLOG) {
        return;
    }
    let (addr, name) = match client {
        Some(c) => (c.addr.as_str(), c.name()),
        None => ("?:0", String::new()),
    };
    let max_len = engine.cfg.slowlog_max_len.load(Relaxed) as usize;
    let redacted;
    let args = match super::observe::redact(spec, args) {
        Some(r) => {
            redacted = r;
            &redacted[..]
        }
        None => args,
    };
    engine.stats.slowlog.push(args, usec, addr, name, max_len);
}

fn slowlog(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let log = &cx.engine().clone().stats.slowlog;
    let sub = &args[1];
    if eq_ic(sub, "get") && args.len() <= 3 {
        const RANGE: &str = "count should be greater than or equal to -1";
        let count = match args.get(2) {
            None => Some(10),
            Some(a) => match std::str::from_utf8(a).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(-1) => None,
                Some(n) if n >= 0 => Some(n as usize),
                _ => return Err(CmdError::err(RANGE)),
            },
        };
        let entries = log.get(count);
        let out = cx.out();
        out.array(entries.len());
        for e in entries {
            out.array(6);
            out.int(e.id as i64);
            out.int(e.time as i64);
            out.int(e.duration_us as i64);
            out.array(e.argv.len());
            for a in &e.argv {
                out.bulk(a);
            }
            out.bulk(e.addr.as_bytes());
            out.bulk(e.name.as_bytes());
        }
    } else if eq_ic(sub, "len") && args.len() == 2 {
        cx.out().int(log.len() as i64);
    } else if eq_ic(sub, "reset") && args.len() == 2 {
        log.reset();
        cx.out().ok();
    } else if eq_ic(sub, "help") && args.len() == 2 {
        let lines = [
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ];
        cx.out().help(&lines);
    } else {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}
