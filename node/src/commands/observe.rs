//! What operators see of a command that ran: the one hook every execution
//! path calls once a command has run (`done`) — batched on a shard, split
//! over shards, through a coordinator (EXEC's queue, a script's
//! `redis.call`) — feeding the slow log, the per-command latency
//! histograms, the latency monitor and MONITOR (per-command counters are
//! kept by `stats::record`, next to the timing). Each consumer costs one
//! relaxed load when it is off.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{flag, CommandSpec};
use crate::shard::clients::ClientInfo;
use crate::shard::monitor::Source;
use crate::shard::Engine;
use crate::util::eq_ic;

/// A command ran on database `db` (as it is after the command: SELECT's
/// line shows the new one, as in Redis) for `nanos` (not counting the time
/// a blocking command waited). `client`: the
/// connection that sent it; `None` for a script's call. `slow_log`: false
/// for a blocking command that waited and was not served (Redis 7.0 logs
/// a blocked command when it is served, never when it times out or is
/// unblocked).
#[inline]
pub fn done(engine: &Engine, spec: &CommandSpec, args: &[Bytes], db: usize, nanos: u64, client: Option<&ClientInfo>, slow_log: bool) {
    if slow_log {
        super::slowlog::log_if_slow(engine, spec, args, nanos, client);
    }
    if engine.cfg.latency_tracking.load(Relaxed) {
        super::stats::record_latency(spec, nanos);
    }
    // (A blocking command's `nanos` leave its wait out, as Redis counts.)
    let event = if spec.has_flag(flag::FAST) { "fast-command" } else { "command" };
    engine.latency.add_if_needed(&engine.cfg, event, nanos / 1_000_000);
    if engine.monitors.on() {
        feed_monitors(engine, spec, args, db, client);
    }
}

/// MONITOR's line for a command that ran, unless it is an administrative
/// command (too dangerous to show, as Redis judges), shows itself
/// (`skip_monitor`: the script commands, `script_started`) or was shown
/// when it started (a blocking command, `blocking_started`).
#[cold]
fn feed_monitors(engine: &Engine, spec: &CommandSpec, args: &[Bytes], db: usize, client: Option<&ClientInfo>) {
    if spec.has_flag(flag::ADMIN) || spec.has_flag(flag::SKIP_MONITOR) || spec.has_flag(flag::BLOCKING) {
        return;
    }
    let src = client.map_or(Source::Lua, |c| Source::Client(&c.addr));
    match redact(spec, args) {
        Some(r) => engine.monitors.feed(&engine.cfg, db, src, &r),
        None => engine.monitors.feed(&engine.cfg, db, src, args),
    }
}

/// A blocking command (BLPOP, XREAD, WAIT, ...) starts: Redis shows it
/// when it is called, before whatever later wakes it.
pub fn blocking_started(engine: &Engine, spec: &CommandSpec, args: &[Bytes], db: usize, client: Option<&ClientInfo>) {
    if engine.monitors.on() && !spec.has_flag(flag::ADMIN) {
        let src = client.map_or(Source::Lua, |c| Source::Client(&c.addr));
        engine.monitors.feed(&engine.cfg, db, src, args);
    }
}

/// A script command (EVAL, EVALSHA, FCALL, their `_RO` forms) starts:
/// its line goes before the commands it calls, as Redis shows it.
pub fn script_started(engine: &Engine, args: &[Bytes], db: usize, client: Option<&ClientInfo>) {
    if engine.monitors.on() {
        let src = client.map_or(Source::Lua, |c| Source::Client(&c.addr));
        engine.monitors.feed(&engine.cfg, db, src, args);
    }
}

/// The arguments Redis hides from the slow log and MONITOR: AUTH's,
/// HELLO's AUTH credentials, ACL SETUSER's rules, CONFIG SET's values of
/// requirepass, masterauth and masteruser, MIGRATE's AUTH password and AUTH2 user and
/// password (the administrative commands that carry secrets are never
/// shown at all).
pub fn redact(spec: &CommandSpec, args: &[Bytes]) -> Option<Vec<Bytes>> {
    const R: Bytes = Bytes::from_static(b"(redacted)");
    match spec.name {
        "auth" => Some(std::iter::once(args[0].clone()).chain(args[1..].iter().map(|_| R)).collect()),
        // Everything after the user name (passwords are among the rules).
        "acl|setuser" => Some(args[..2].iter().cloned().chain(args[2..].iter().map(|_| R)).collect()),
        // A sensitive parameter's value (Redis's SENSITIVE_CONFIG ones).
        "config|set" => {
            let mut v = args.to_vec();
            let mut any = false;
            for i in (2..v.len().saturating_sub(1)).step_by(2) {
                if ["requirepass", "masterauth", "masteruser"].iter().any(|n| eq_ic(&v[i], n)) {
                    v[i + 1] = R;
                    any = true;
                }
            }
            any.then_some(v)
        }
        "hello" => {
            let at = args.iter().position(|a| eq_ic(a, "auth"))?;
            let mut v = args.to_vec();
            for a in v.iter_mut().skip(at + 1).take(2) {
                *a = R;
            }
            Some(v)
        }
        "migrate" => {
            let mut v = args.to_vec();
            let mut hit = false;
            let mut i = 6;
            while i < v.len() {
                let n = if eq_ic(&v[i], "auth") {
                    1
                } else if eq_ic(&v[i], "auth2") {
                    2
                } else if eq_ic(&v[i], "keys") {
                    break;
                } else {
                    0
                };
                for a in v.iter_mut().skip(i + 1).take(n) {
                    *a = R;
                    hit = true;
                }
                i += 1 + n;
            }
            hit.then_some(v)
        }
        _ => None,
    }
}
