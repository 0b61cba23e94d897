//! Running a declared command: a shard handler on its shard (`exec_one_at`),
//! a multi-key command split per shard with its replies combined
//! (`split_by_shard`, `combine_replies`), or any command through a
//! coordinator (`run_command`, used by EXEC and by scripts).

use bytes::Bytes;

use super::{clock, Combine, CommandSpec, Coord, Ctx, Exec, Flow, PartReply};
use crate::error::{CmdError, CmdResult};
use crate::resp::{reply_over, reply_too_big, Out, ReplyBudget};
use crate::shard::{Engine, Shard};
use crate::util::now_ms;

/// Runs one shard command, writing its reply or its error.
pub fn exec_one(sh: &mut Shard, db: usize, spec: &CommandSpec, args: &[Bytes], out: &mut Out) {
    exec_one_at(sh, db, spec, args, out, now_ms());
}

/// `exec_one` at a given time (a batch, or a script, runs every command at
/// its start time, so keys do not expire in the middle of a script, as in
/// Redis). Counts the command on this thread (INFO commandstats) and
/// returns how long its handler ran, in nanoseconds.
pub fn exec_one_at(sh: &mut Shard, db: usize, spec: &CommandSpec, args: &[Bytes], out: &mut Out, now: u64) -> u64 {
    let start = clock::now();
    let failed = exec_uncounted(sh, db, spec, args, out, now);
    let nanos = start.elapsed_nanos();
    super::stats::record(spec, nanos, failed);
    nanos
}

/// `exec_one_at` without the counting (for a batch, which reads the clock
/// once between commands); true when the command failed.
#[inline]
pub fn exec_uncounted(sh: &mut Shard, db: usize, spec: &CommandSpec, args: &[Bytes], out: &mut Out, now: u64) -> bool {
    let f = match spec.exec {
        Exec::Shard(f) | Exec::Split(f, _) => f,
        Exec::Coord(_) | Exec::Script(_) => {
            out.error(&CmdError::err("connection command routed to a shard"));
            return true;
        }
    };
    let journal = journal_mark(sh, db, spec);
    let mut ctx = Ctx { shard: sh, db, now, part: None };
    let mark = out.buf.len();
    let mut failed = false;
    let budget = ReplyBudget::open(budget_mark(spec, mark));
    let result = f(&mut ctx, args, out);
    let result = if budget.finish() { Err(reply_too_big()) } else { result };
    super::notify::after_command(sh, db, spec, args, &out.buf[mark..], result.is_err());
    journal_effect(sh, db, spec, args, journal);
    if let Err(e) = result {
        out.buf.truncate(mark);
        out.error(&e);
        failed = true;
    } else if sh.caller != 0 {
        super::tracking::after_read(sh, spec, args);
    }
    if let Some(e) = jsonpath_overflow() {
        out.buf.truncate(mark);
        out.error(&e);
        failed = true;
    }
    failed
}

/// Where a command's reply budget starts: at `mark` for a command that
/// writes nothing (its reply may be refused whole), nowhere for one that
/// writes (what it took or changed must reach the client: its reply is
/// bounded by the data, not by what it asks to repeat).
#[inline]
fn budget_mark(spec: &CommandSpec, mark: usize) -> usize {
    if spec.has_flag(super::flag::WRITE) {
        ReplyBudget::UNLIMITED
    } else {
        mark
    }
}

/// Before a command journaled by its arguments or its TTL effect (not by
/// the state of the keys it wrote) runs: where the journal stands.
#[inline]
fn journal_mark(sh: &mut Shard, db: usize, spec: &CommandSpec) -> Option<usize> {
    if spec.has_flag(super::flag::JOURNAL_ARGS | super::flag::JOURNAL_TTL) {
        sh.journal_mark(db)
    } else {
        None
    }
}

/// After it ran: journals it as sent (`args`: on a split command, this
/// shard's part) or as its TTL effect, if it wrote.
#[inline]
fn journal_effect(sh: &mut Shard, db: usize, spec: &CommandSpec, args: &[Bytes], mark: Option<usize>) {
    let Some(j) = mark else { return };
    if spec.has_flag(super::flag::JOURNAL_TTL) {
        sh.journal_ttl(db, j, &args[1]);
    } else {
        sh.journal_args(db, j, args);
    }
}

/// A JSONPath gave up at its work limit: whatever the command made of the
/// (empty) matches, the client gets this error.
fn jsonpath_overflow() -> Option<CmdError> {
    crate::types::json::path::take_overflow().then(|| {
        CmdError::err(format!("JSONPath query exceeds the work limit ({} nodes visited or matched)", crate::types::json::path::WORK_LIMIT))
    })
}

/// One shard's part of a split command: its RESP output and what the
/// combining step needs, typed (`None` when the part failed: the output
/// is then its error).
pub struct PartResult {
    pub buf: Vec<u8>,
    pub typed: Option<PartReply>,
}

/// Runs one shard's part of a split command (`split_by_shard`).
pub fn exec_part(sh: &mut Shard, db: usize, spec: &CommandSpec, args: &[Bytes], resp3: bool, now: u64) -> PartResult {
    let mut out = Out::new(resp3);
    let Exec::Split(f, _) = spec.exec else {
        out.error(&CmdError::err("keys of this command must be on one shard"));
        return PartResult { buf: out.buf, typed: None };
    };
    let mut part = PartReply::default();
    let journal = journal_mark(sh, db, spec);
    let mut ctx = Ctx { shard: sh, db, now, part: Some(&mut part) };
    let budget = ReplyBudget::open(budget_mark(spec, 0));
    let failed = f(&mut ctx, args, &mut out).err().or_else(jsonpath_overflow);
    let failed = if budget.finish() { Some(reply_too_big()) } else { failed };
    super::notify::after_command(sh, db, spec, args, &out.buf, failed.is_some());
    journal_effect(sh, db, spec, args, journal);
    if failed.is_none() && sh.caller != 0 {
        super::tracking::after_read(sh, spec, args);
    }
    match failed {
        Some(e) => {
            out.buf.clear();
            out.error_uncounted(&e.to_string());
            PartResult { buf: out.buf, typed: None }
        }
        None => PartResult { buf: out.buf, typed: Some(part) },
    }
}

/// Runs a coordinator handler to its end.
pub async fn run_handler(f: super::CoordFn, cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    match f(cx, args) {
        Flow::Done(r) => r,
        Flow::Wait(fut) => fut.await,
    }
}

/// Runs any command through a coordinator that already holds the shards it
/// needs (EXEC's transaction, a script in wide mode), writing its reply.
pub async fn run_command(cx: &mut dyn Coord, spec: &'static CommandSpec, args: &[Bytes]) {
    let (db, resp3, now) = (cx.db(), cx.out().resp3, cx.now());
    // A tracking client's commands run as its own (`tracking::as_caller`).
    let client = cx.session().filter(|s| s.info.tracking.load(std::sync::atomic::Ordering::Relaxed) != 0).map(|s| s.info.clone());
    // Shard commands count where they run (`exec_one_at`); the others here.
    let start = clock::now();
    let mark = cx.out().buf.len();
    match spec.exec {
        Exec::Shard(_) | Exec::Split(..) => {
            let mut shards = spec.key_indices(args).map(|i| cx.shard_of(&args[i]));
            let single = match shards.next() {
                None => Some(cx.home()),
                Some(f) => shards.all(|s| s == f).then_some(f),
            };
            match single {
                Some(s) => {
                    let argv = args.to_vec();
                    let (reply, nanos) = cx
                        .run_on(s, move |sh| {
                            let mut o = Out::new(resp3);
                            let nanos = match &client {
                                Some(c) => super::tracking::as_caller(sh, c, |sh| exec_one_at(sh, db, spec, &argv, &mut o, now)),
                                None => exec_one_at(sh, db, spec, &argv, &mut o, now),
                            };
                            (o.buf, nanos)
                        })
                        .await;
                    cx.out().buf.extend_from_slice(&reply);
                    observe(cx, spec, args, nanos, true);
                }
                None => {
                    let Exec::Split(_, combine) = spec.exec else {
                        return cx.out().error(&CmdError::err("keys of this command must be on one shard"));
                    };
                    let parts = split_by_shard(cx.engine(), spec, args);
                    let mut replies = Vec::with_capacity(parts.len());
                    for p in &parts {
                        let sub = p.args.clone();
                        let client = client.clone();
                        replies.push(
                            cx.run_on(p.shard, move |sh| match &client {
                                Some(c) => super::tracking::as_caller(sh, c, |sh| exec_part(sh, db, spec, &sub, resp3, now)),
                                None => exec_part(sh, db, spec, &sub, resp3, now),
                            })
                            .await,
                        );
                    }
                    combine_replies(combine, &parts, &replies, cx.out());
                    let nanos = count_here(cx.out(), spec, start, mark);
                    observe(cx, spec, args, nanos, true);
                }
            }
        }
        Exec::Coord(f) => {
            if spec.has_flag(super::flag::BLOCKING) {
                let engine = cx.engine().clone();
                let client = cx.session().map(|s| s.info.clone());
                super::observe::blocking_started(&engine, spec, args, db, client.as_deref());
            }
            cx.set_running(super::notify::running(spec, db, args));
            // Not boxed: a handler that waits returns its future boxed
            // already, which is what lets EXEC run its queued commands
            // through here; those that finish at once (PING, SELECT, ...)
            // allocate nothing.
            if let Err(e) = run_handler(f, cx, args).await {
                cx.out().error(&e);
            }
            cx.set_running(None);
            // A blocking command's own time, without its wait (as Redis
            // counts it).
            let waited = if spec.has_flag(super::flag::BLOCKING) { cx.session().map_or(0, |s| s.info.take_waited()) } else { 0 };
            let nanos = count_minus(cx.out(), spec, start, mark, waited);
            let slow_log = waited == 0 || served(cx.out(), spec, mark);
            observe(cx, spec, args, nanos, slow_log);
        }
        Exec::Script(call) => {
            if let Err(e) = Box::pin(super::scripting::eval(cx, spec, call, args)).await {
                cx.out().error(&e);
            }
            let nanos = count_here(cx.out(), spec, start, mark);
            observe(cx, spec, args, nanos, true);
        }
    }
}

/// `run_command` for the journal's replay, which Redis does not count (its
/// AOF loading runs no command through `call`): a coordinator's handler
/// runs uncounted and unobserved.
pub async fn run_command_uncounted(cx: &mut dyn Coord, spec: &'static CommandSpec, args: &[Bytes]) {
    let Exec::Coord(f) = spec.exec else {
        return Box::pin(run_command(cx, spec, args)).await;
    };
    let db = cx.db();
    cx.set_running(super::notify::running(spec, db, args));
    if let Err(e) = run_handler(f, cx, args).await {
        cx.out().error(&e);
    }
    cx.set_running(None);
}

/// `observe::done` for a command run through a coordinator: the client's,
/// or a script's (no session).
fn observe(cx: &mut dyn Coord, spec: &CommandSpec, args: &[Bytes], nanos: u64, slow_log: bool) {
    let engine = cx.engine().clone();
    let db = cx.db();
    let client = cx.session().map(|s| s.info.clone());
    super::observe::done(&engine, spec, args, db, nanos, client.as_deref(), slow_log);
}

/// Whether a blocking command that waited was served: its reply (from
/// `mark`) is neither a timeout's null nor an error, and it is not WAIT or
/// WAITAOF (whose count Redis never logs).
fn served(out: &Out, spec: &CommandSpec, mark: usize) -> bool {
    let reply = out.buf.get(mark..).unwrap_or_default();
    !matches!(spec.name, "wait" | "waitaof") && !reply.starts_with(b"-") && !reply.starts_with(b"*-1") && !reply.starts_with(b"_")
}

/// Counts a command that ran on this thread since `start`, whose reply
/// begins at `mark` in `out` (failed: the reply is an error).
/// Returns the time it took, in nanoseconds.
pub fn count_here(out: &Out, spec: &CommandSpec, start: clock::Ticks, mark: usize) -> u64 {
    count_minus(out, spec, start, mark, 0)
}

/// `count_here`, less `waited` nanoseconds the command spent waiting.
fn count_minus(out: &Out, spec: &CommandSpec, start: clock::Ticks, mark: usize, waited: u64) -> u64 {
    let failed = out.buf.get(mark) == Some(&b'-');
    let nanos = start.elapsed_nanos().saturating_sub(waited);
    super::stats::record(spec, nanos, failed);
    nanos
}

/// One shard's part of a multi-key command split by `split_by_shard`.
pub struct Part {
    pub shard: usize,
    /// The sub-command: the name, then this shard's key groups (then any
    /// arguments after the last key group, such as JSON.MGET's path).
    pub args: Vec<Bytes>,
    /// Positions of its keys among the original command's keys.
    pub positions: Vec<usize>,
}

/// Splits a multi-key command into one sub-command per shard, ascending by
/// shard (the order locks are taken in).
pub fn split_by_shard(engine: &Engine, spec: &CommandSpec, args: &[Bytes]) -> Vec<Part> {
    let step = spec.step();
    let mut parts: Vec<Part> = Vec::new();
    let mut last_key = None;
    for (n, ki) in spec.key_indices(args).enumerate() {
        let shard = engine.shard_of(&args[ki]);
        let part = match parts.iter_mut().position(|p| p.shard == shard) {
            Some(i) => &mut parts[i],
            None => {
                parts.push(Part { shard, args: vec![args[0].clone()], positions: Vec::new() });
                parts.last_mut().expect("just pushed")
            }
        };
        part.args.extend(args[ki..(ki + step).min(args.len())].iter().cloned());
        part.positions.push(n);
        last_key = Some(ki);
    }
    let trailing = last_key.map_or(args.len(), |k| (k + step).min(args.len()));
    for p in &mut parts {
        p.args.extend(args[trailing..].iter().cloned());
    }
    parts.sort_by_key(|p| p.shard);
    parts
}

/// Writes the reply of a split command from its parts' results: the first
/// error if any, else the sum of their counts, OK, or their elements in key
/// order (each part marked where its elements end; nothing is parsed).
pub fn combine_replies(combine: Combine, parts: &[Part], replies: &[PartResult], out: &mut Out) {
    let mut typed = Vec::with_capacity(replies.len());
    for r in replies {
        match &r.typed {
            Some(t) => typed.push(t),
            None => {
                super::stats::error_resp(&r.buf);
                out.buf.extend_from_slice(&r.buf);
                return;
            }
        }
    }
    match combine {
        Combine::Ok => out.ok(),
        Combine::Sum => out.int(typed.iter().map(|t| t.count).sum()),
        Combine::Array => {
            // Each part kept within reply-max-bytes; together too.
            if reply_over(replies.iter().map(|r| r.buf.len()).sum()) {
                out.error(&reply_too_big());
                return;
            }
            let nkeys: usize = parts.iter().map(|p| p.positions.len()).sum();
            let mut slots: Vec<&[u8]> = vec![&[]; nkeys];
            for ((r, t), part) in replies.iter().zip(&typed).zip(parts) {
                // The header's end, then each element's.
                if t.ends.len() != part.positions.len() + 1 {
                    out.error(&CmdError::err("a shard's reply to a multi-key command could not be combined"));
                    return;
                }
                for (w, &pos) in t.ends.windows(2).zip(&part.positions) {
                    slots[pos] = &r.buf[w[0]..w[1]];
                }
            }
            out.array(slots.len());
            for s in slots {
                out.buf.extend_from_slice(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(shard: usize, positions: &[usize]) -> Part {
        Part { shard, args: Vec::new(), positions: positions.to_vec() }
    }

    fn reply(buf: &[u8], count: i64, ends: &[usize]) -> PartResult {
        PartResult { buf: buf.to_vec(), typed: Some(PartReply { count, ends: ends.to_vec() }) }
    }

    #[test]
    fn parts_combine_from_typed_results() {
        // Keys 0 and 2 on one shard, key 1 on another.
        let parts = [part(0, &[0, 2]), part(1, &[1])];
        let a = reply(b"*2\r\n$1\r\na\r\n$-1\r\n", 0, &[4, 11, 16]);
        let b = reply(b"*1\r\n$1\r\nb\r\n", 0, &[4, 11]);
        let mut out = Out::new(false);
        combine_replies(Combine::Array, &parts, &[a, b], &mut out);
        assert_eq!(out.buf, b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n");

        let mut out = Out::new(false);
        combine_replies(Combine::Sum, &parts, &[reply(b":2\r\n", 2, &[]), reply(b":1\r\n", 1, &[])], &mut out);
        assert_eq!(out.buf, b":3\r\n");

        // A part that did not mark its elements is a fault to report.
        let mut out = Out::new(false);
        combine_replies(Combine::Array, &parts, &[reply(b"*2\r\n", 0, &[4]), reply(b"*1\r\n$1\r\nb\r\n", 0, &[4, 11])], &mut out);
        assert!(out.buf.starts_with(b"-ERR a shard's reply"));

        // The first failed part's error is the reply.
        let failed = PartResult { buf: b"-WRONGTYPE x\r\n".to_vec(), typed: None };
        let mut out = Out::new(false);
        combine_replies(Combine::Sum, &parts, &[reply(b":2\r\n", 2, &[]), failed], &mut out);
        assert_eq!(out.buf, b"-WRONGTYPE x\r\n");
    }
}
