//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL,
//! FCALL_RO and FUNCTION. How scripts run (fast path on one shard, undo-log
//! escalation, wide mode) is in `scripting::exec`; this module parses the
//! commands, checks flags and picks the path. SCRIPT and FUNCTION, which
//! manage the caches, are in `manage`.

use std::borrow::Cow;
use std::os::raw::c_int;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, cmd_numkeys, flag::*, sub, BusyAnswer, CommandSpec, Coord, Exec, ScriptCall};
use crate::config::Config;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
pub mod exec;
pub mod functions;
mod manage;
pub mod vm;

use crate::scripting::{flags, parse_sha, sha1_hex};
use crate::shard::clients::ClientInfo;
use crate::shard::Shard;
use crate::slot::key_slot;
use crate::util::parse_i64;
use exec::{Invocation, Kind, Outcome};
pub use manage::*;
use vm::{with_vm, with_vm_on, Vm};

const SC: &[&str] = &["slow", "scripting"];
/// FUNCTION's subcommands that change the libraries.
const SCW: &[&str] = &["write", "slow", "scripting"];
const HELP: &str = "Returns helpful text about the different subcommands.";

const SCRIPT: Exec = Exec::Coord(handler!(|cx, a| script(cx, a)));
const FUNCTION: Exec = Exec::Coord(handler!(async |cx, a| function_journaled(cx, a)));

pub static COMMANDS: &[CommandSpec] = &[
    cmd_numkeys(
        "eval",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | MAY_REPLICATE,
        2,
        SC,
        "scripting",
        "Executes a server-side Lua script.",
        Exec::Script(ScriptCall::Eval { sha: false, ro: false }),
    )
    .key_flags(&["RW", "access", "update"]),
    cmd_numkeys(
        "evalsha",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | MAY_REPLICATE,
        2,
        SC,
        "scripting",
        "Executes a server-side Lua script by SHA1 digest.",
        Exec::Script(ScriptCall::Eval { sha: true, ro: false }),
    )
    .key_flags(&["RW", "access", "update"]),
    cmd_numkeys(
        "eval_ro",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | READONLY,
        2,
        SC,
        "scripting",
        "Executes a read-only server-side Lua script.",
        Exec::Script(ScriptCall::Eval { sha: false, ro: true }),
    )
    .key_flags(&["RO", "access"]),
    cmd_numkeys(
        "evalsha_ro",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | READONLY,
        2,
        SC,
        "scripting",
        "Executes a read-only server-side Lua script by SHA1 digest.",
        Exec::Script(ScriptCall::Eval { sha: true, ro: true }),
    )
    .key_flags(&["RO", "access"]),
    cmd("script", -2, 0, (0, 0, 0), &["slow"], "scripting", "A container for Lua scripts management commands.", SCRIPT).subcommands(&[
        sub("script|load", 3, NOSCRIPT | STALE, (0, 0, 0), SC, "Loads a server-side Lua script to the script cache.", SCRIPT)
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        sub("script|exists", -3, NOSCRIPT, (0, 0, 0), SC, "Determines whether server-side Lua scripts exist in the script cache.", SCRIPT)
            .tips(&["request_policy:all_shards", "response_policy:agg_logical_and"]),
        sub("script|flush", -2, NOSCRIPT, (0, 0, 0), SC, "Removes all server-side Lua scripts from the script cache.", SCRIPT)
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        sub("script|kill", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), SC, "Terminates a server-side Lua script during execution.", SCRIPT)
            .tips(&["request_policy:all_shards", "response_policy:one_succeeded"])
            .when_busy(|engine, _a, _authed, out| kill_busy(engine, out, false)),
        sub("script|debug", 3, NOSCRIPT, (0, 0, 0), SC, "Sets the debug mode of server-side Lua scripts.", SCRIPT),
        sub("script|help", 2, LOADING | STALE, (0, 0, 0), SC, HELP, SCRIPT),
    ]),
    cmd_numkeys(
        "fcall",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | MAY_REPLICATE,
        2,
        SC,
        "scripting",
        "Invokes a function.",
        Exec::Script(ScriptCall::Fcall { ro: false }),
    )
    .key_flags(&["RW", "access", "update"]),
    cmd_numkeys(
        "fcall_ro",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | READONLY,
        2,
        SC,
        "scripting",
        "Invokes a read-only function.",
        Exec::Script(ScriptCall::Fcall { ro: true }),
    )
    .key_flags(&["RO", "access"]),
    cmd("function", -2, 0, (0, 0, 0), &["slow"], "scripting", "A container for function commands.", FUNCTION).subcommands(&[
        sub("function|load", -3, WRITE | DENYOOM | NOSCRIPT, (0, 0, 0), SCW, "Creates a library.", FUNCTION)
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        sub("function|delete", 3, WRITE | NOSCRIPT, (0, 0, 0), SCW, "Deletes a library and its functions.", FUNCTION)
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        sub("function|flush", -2, WRITE | NOSCRIPT, (0, 0, 0), SCW, "Deletes all libraries and functions.", FUNCTION)
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        sub("function|list", -2, NOSCRIPT, (0, 0, 0), SC, "Returns information about all libraries.", FUNCTION)
            .tips(&["nondeterministic_output_order"]),
        sub("function|dump", 2, NOSCRIPT, (0, 0, 0), SC, "Dumps all libraries into a serialized binary payload.", FUNCTION),
        sub("function|restore", -3, WRITE | DENYOOM | NOSCRIPT, (0, 0, 0), SCW, "Restores all libraries from a payload.", FUNCTION)
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        sub("function|stats", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), SC, "Returns information about a function during execution.", FUNCTION)
            .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"])
            .when_busy(|engine, _a, _authed, out| {
                function_stats(&engine.scripting, out);
                Ok(BusyAnswer::Replied)
            }),
        sub("function|kill", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), SC, "Terminates a function during execution.", FUNCTION)
            .tips(&["request_policy:all_shards", "response_policy:one_succeeded"])
            .when_busy(|engine, _a, _authed, out| kill_busy(engine, out, true)),
        sub("function|help", 2, LOADING | STALE, (0, 0, 0), SC, HELP, FUNCTION),
    ]),
];

/// The -BUSY reply, naming the command that can stop what is running.
pub fn busy_error(function: bool) -> CmdError {
    if function {
        CmdError::Other("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.".into())
    } else {
        CmdError::Other("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.".into())
    }
}

fn noscript() -> CmdError {
    CmdError::Other("NOSCRIPT No matching script. Please use EVAL.".into())
}

/// Validates `numkeys` at args[2]; returns it.
fn numkeys(args: &[Bytes], not_int: CmdError) -> CmdResult<usize> {
    let n = parse_i64(&args[2]).map_err(|_| not_int)?;
    if n > (args.len() - 3) as i64 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    if n < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    Ok(n as usize)
}

/// Refuses a script with the write flag under a *_RO command, and (for
/// scripts with a shebang or functions) a writing script without
/// `allow-oom` while memory is over `maxmemory`.
fn check_flags(cfg: &Config, f: u32, ro: bool) -> CmdResult {
    if f & flags::EVAL_COMPAT != 0 || f & flags::NO_WRITES != 0 {
        return Ok(());
    }
    if ro {
        return Err(CmdError::err("Can not execute a script with write flag using *_ro command."));
    }
    if f & flags::ALLOW_OOM == 0 && crate::shard::evict::oom(cfg) {
        return Err(CmdError::Other("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'".into()));
    }
    Ok(())
}

/// A parsed, checked script invocation.
pub struct Prepared<'a> {
    pub inv: Invocation<'a>,
    /// Known to reach beyond its declared keys' shard (or allowed to span
    /// shards): run it in wide mode straight away.
    pub wide: bool,
    /// The registry slot of the compiled script in the VM that prepared it,
    /// when already compiled (valid for that VM only).
    pub func: Option<c_int>,
}

/// Parses EVAL/EVALSHA/EVAL_RO/EVALSHA_RO/FCALL/FCALL_RO with this
/// thread's VM (which caches scripts and functions), checking numkeys, the
/// script's existence and its flags.
pub fn prepare<'a>(
    vm: &mut Vm,
    spec: &'static CommandSpec,
    call: ScriptCall,
    args: &'a [Bytes],
    db: usize,
    resp3: bool,
    cfg: &Config,
) -> CmdResult<Prepared<'a>> {
    let limit_ms = cfg.lua_time_limit.load(Relaxed);
    let mut func = None;
    let command = spec.name;
    let (kind, f, wide, ro, nk) = match call {
        ScriptCall::Fcall { ro } => {
            let name = String::from_utf8_lossy(&args[1]).into_owned();
            let (f, wide) = vm.function_meta(&name).map_err(CmdError::Other)?;
            let nk = numkeys(args, CmdError::err("Bad number of keys provided"))?;
            (Kind::Function { name }, f, wide, ro, nk)
        }
        ScriptCall::Eval { sha: by_sha, ro } => {
            let nk = numkeys(args, CmdError::NotInteger)?;
            let (sha, body, f, wide) = if by_sha {
                let sha = parse_sha(&args[1]).ok_or_else(noscript)?;
                let (f, wide, id) = vm.script_meta(&sha).ok_or_else(noscript)?;
                func = id;
                (sha, None, f, wide)
            } else {
                let body = args[1].clone();
                let sha = sha1_hex(&body);
                let (f, wide) = vm.script_for_body(&sha, &body, false).map(|i| (i.flags, i.wide.load(Relaxed))).map_err(CmdError::Other)?;
                (sha, Some(body), f, wide)
            };
            (Kind::Script { sha, body }, f, wide, ro, nk)
        }
    };
    check_flags(cfg, f, ro)?;
    let no_writes = f & flags::NO_WRITES != 0 && (f & flags::EVAL_COMPAT == 0 || matches!(kind, Kind::Function { .. }));
    let inv = Invocation {
        kind,
        keys: Cow::Borrowed(&args[3..3 + nk]),
        args: Cow::Borrowed(&args[3 + nk..]),
        db,
        resp3,
        read_only: ro || no_writes,
        flags: f,
        command,
        limit_ms,
        // The caller's user, set by the caller that knows it.
        acl: None,
    };
    Ok(Prepared { wide: wide || f & flags::ALLOW_CROSS_SLOT != 0, inv, func })
}

/// Whether an EVAL/EVALSHA call's script, or an FCALL's function, declares
/// `allow-cross-slot-keys` (then, in cluster mode, its keys may span slots
/// this node serves).
pub fn allows_cross_slot(scripting: &crate::shard::scripts::Scripting, spec: &CommandSpec, args: &[Bytes]) -> bool {
    declared_flags(scripting, spec, args).is_some_and(|f| f & flags::ALLOW_CROSS_SLOT != 0)
}

/// Whether a command counts as `denyoom` (refused while the node is out
/// of memory): its declaration says so, or it runs a script or function
/// that declares flags without `no-writes` or `allow-oom` (Redis's
/// scriptFlagsToCmdFlags; scripts without a shebang keep EVAL's flags).
pub fn denies_oom(scripting: &crate::shard::scripts::Scripting, spec: &CommandSpec, args: &[Bytes]) -> bool {
    if spec.has_flag(crate::commands::flag::DENYOOM) {
        return true;
    }
    declared_flags(scripting, spec, args).is_some_and(|f| f & flags::EVAL_COMPAT == 0 && f & (flags::NO_WRITES | flags::ALLOW_OOM) == 0)
}

/// Whether an EVAL/EVALSHA/FCALL (not their `_RO` forms) runs a script or
/// function that declares flags without `no-writes`: it counts as a write
/// command (refused up front on a read-only replica).
pub fn declares_writes(scripting: &crate::shard::scripts::Scripting, spec: &CommandSpec, args: &[Bytes]) -> bool {
    !spec.name.ends_with("_ro")
        && declared_flags(scripting, spec, args).is_some_and(|f| f & flags::EVAL_COMPAT == 0 && f & flags::NO_WRITES == 0)
}

/// Whether a command may write or replicate, for CLIENT PAUSE WRITE: a
/// `write` or `may_replicate` one, except that a script or function that
/// declares flags may only if they lack `no-writes` (Redis's
/// scriptFlagsToCmdFlags), whatever the command's own flags.
pub fn may_write(scripting: &crate::shard::scripts::Scripting, spec: &CommandSpec, args: &[Bytes]) -> bool {
    if matches!(spec.exec, Exec::Script(_)) {
        if let Some(f) = declared_flags(scripting, spec, args).filter(|f| f & flags::EVAL_COMPAT == 0) {
            return f & flags::NO_WRITES == 0;
        }
    }
    spec.has_flag(crate::commands::flag::WRITE) || spec.has_flag(crate::commands::flag::MAY_REPLICATE)
}

/// Whether a command may run on a stale replica (its `stale` flag); a
/// script or function that declares flags may when it declares
/// `allow-stale` (Redis's scriptFlagsToCmdFlags), a script without flags
/// never (Redis's scriptPrepareForRun).
pub fn allows_stale(scripting: &crate::shard::scripts::Scripting, spec: &CommandSpec, args: &[Bytes]) -> bool {
    match declared_flags(scripting, spec, args) {
        Some(f) => f & flags::EVAL_COMPAT == 0 && f & flags::ALLOW_STALE != 0,
        None => spec.has_flag(crate::commands::flag::STALE),
    }
}

/// The flags an EVAL/EVALSHA call's script, or an FCALL's function,
/// declares, when it can be known before running it.
fn declared_flags(scripting: &crate::shard::scripts::Scripting, spec: &CommandSpec, args: &[Bytes]) -> Option<u32> {
    match spec.exec {
        Exec::Script(ScriptCall::Eval { sha: false, .. }) => {
            args.get(1).and_then(|b| crate::scripting::parse_shebang(b).ok()).map(|(f, _)| f)
        }
        Exec::Script(ScriptCall::Eval { sha: true, .. }) => {
            args.get(1).and_then(|a| crate::scripting::parse_sha(a)).and_then(|sha| scripting.script(&sha)).map(|i| i.flags)
        }
        Exec::Script(ScriptCall::Fcall { .. }) => {
            args.get(1).and_then(|n| std::str::from_utf8(n).ok()).and_then(|n| scripting.function(n)).map(|(f, _)| f.flags)
        }
        _ => None,
    }
}

/// EVAL & co. and FCALL & co. as part of a pipeline batch, on the shard
/// that owns the declared keys (the connection routed it there). Returns
/// false, having written nothing, when the connection must run it in wide
/// mode instead.
pub fn run_on_shard(
    sh: &mut Shard,
    db: usize,
    spec: &'static CommandSpec,
    call: ScriptCall,
    args: &[Bytes],
    out: &mut Out,
    client: &std::sync::Arc<ClientInfo>,
) -> bool {
    // MONITOR: the script's line, then its commands' lines, held until
    // the run stands (dropped if it starts over in wide mode).
    let monitors = sh.engine.clone().filter(|e| e.monitors.on());
    if let Some(e) = &monitors {
        e.monitors.hold();
        super::observe::script_started(e, args, db, Some(client));
    }
    let ran = run_on_shard_inner(sh, db, spec, call, args, out, client);
    if let Some(e) = &monitors {
        e.monitors.release(&e.cfg, ran);
    }
    ran
}

fn run_on_shard_inner(
    sh: &mut Shard,
    db: usize,
    spec: &'static CommandSpec,
    call: ScriptCall,
    args: &[Bytes],
    out: &mut Out,
    client: &std::sync::Arc<ClientInfo>,
) -> bool {
    with_vm_on(sh, |vm, sh| {
        let mut prep = match prepare(vm, spec, call, args, db, out.resp3, &sh.cfg) {
            Ok(p) => p,
            Err(e) => {
                out.error(&e);
                return true;
            }
        };
        if prep.wide {
            return false;
        }
        prep.inv.acl = crate::commands::acl::Caller::of(client);
        exec::run_fast_with(vm, sh, &prep.inv, out, prep.func)
    })
}

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO run by the
/// connection: inside EXEC, for keys on several shards, or after the shard
/// found that the script needs every shard.
pub async fn eval(cx: &mut dyn Coord, spec: &'static CommandSpec, call: ScriptCall, args: &[Bytes]) -> CmdResult {
    let (db, resp3) = (cx.db(), cx.out().resp3);
    let engine = cx.engine().clone();
    let client = cx.session().map(|s| s.info.clone());
    super::observe::script_started(&engine, args, db, client.as_deref());
    let acl = cx.session().and_then(|s| crate::commands::acl::Caller::of(&s.info));
    let mut prep = with_vm(&engine.scripting, &engine.cfg, |vm| prepare(vm, spec, call, args, db, resp3, &engine.cfg))?;
    prep.inv.acl = acl;
    run(cx, prep.inv.into_owned(), prep.wide).await;
    Ok(())
}

/// Runs an invocation: on the shard of its declared keys when they share
/// one (falling back to wide mode if it reaches further), otherwise — or
/// when known to reach further, or inside EXEC — holding every shard.
async fn run(cx: &mut dyn Coord, inv: Invocation<'static>, known_wide: bool) {
    let mut inv = inv;
    let in_exec = cx.in_exec();
    if !in_exec && !known_wide && inv.flags & flags::ALLOW_CROSS_SLOT == 0 {
        let mut shards = inv.keys.iter().map(|k| cx.shard_of(k));
        let target = match shards.next() {
            None => Some(cx.home()),
            Some(first) => shards.all(|s| s == first).then_some(first),
        };
        if let Some(s) = target {
            let mut tries = 0;
            loop {
                let (outcome, back) = cx
                    .run_on(s, move |sh| {
                        // Checked on the shard: see slot::gate.
                        let held =
                            sh.cluster.as_ref().is_some_and(|m| inv.keys.iter().any(|k| !m.gate.admits_for(key_slot(k), !inv.read_only)));
                        let o = (!held).then(|| exec::run_fast(sh, &inv));
                        (o, inv)
                    })
                    .await;
                inv = back;
                match outcome {
                    Some(Outcome::Reply(r)) => {
                        cx.out().buf.extend_from_slice(&r);
                        return;
                    }
                    Some(Outcome::Escalate) => break,
                    None => {
                        // A migration's cut-over holds the keys' slot.
                        tries += 1;
                        if let Err(e) = wait_for_gate(cx, &inv, Some(key_slot(&inv.keys[0])), tries).await {
                            cx.out().error(&e);
                            return;
                        }
                    }
                }
            }
        }
    }
    let all: Vec<usize> = (0..cx.engine().nshards()).collect();
    cx.lock(&all).await;
    // In cluster mode, a script holding every shard may touch keys it did
    // not declare: while a migration's cut-over holds any slot, release,
    // wait and route the declared keys again.
    let mut tries = 0;
    while !in_exec && gate_closed(cx, &inv) {
        cx.release();
        tries += 1;
        if let Err(e) = wait_for_gate(cx, &inv, None, tries).await {
            cx.out().error(&e);
            return;
        }
        cx.lock(&all).await;
    }
    let engine = cx.engine().clone();
    let txid = cx.tx_id();
    let home = cx.home();
    let tracking = cx.session().map(|s| (s.info.id, s.info.tracking.load(Relaxed))).filter(|&(_, t)| super::tracking::remembers_reads(t));
    let keys = if tracking.is_some() { inv.keys.to_vec() } else { Vec::new() };
    let reply = cx.run_on(home, move |sh| exec::run_wide(sh, &engine, txid, &inv)).await;
    // A tracking client's script that ran across shards: its declared
    // keys are tracked while the shards are still held (on the fast path
    // its read commands track them; here whether or not it read, which
    // can only cost the client an invalidation it did not need).
    if let Some((id, _)) = tracking {
        for key in keys {
            let shard = cx.engine().shard_of(&key);
            cx.run_on(shard, move |sh| sh.track_read(&key, id)).await;
        }
    }
    cx.out().buf.extend_from_slice(&reply);
}

/// Cluster mode: whether a cut-over holds any slot, or a slot of the
/// script's declared keys is not admitted here.
fn gate_closed(cx: &mut dyn Coord, inv: &Invocation) -> bool {
    let Some(c) = cx.session().and_then(|s| s.cluster.as_ref()) else { return false };
    c.map.gate.any_closed() || inv.keys.iter().any(|k| !c.map.gate.admits_for(key_slot(k), !inv.read_only))
}

/// Waits (once, bounded) for a migration's cut-over of `slot` (any, for
/// `None`) to end, then routes the script's declared keys again.
async fn wait_for_gate(cx: &mut dyn Coord, inv: &Invocation<'_>, slot: Option<u16>, tries: usize) -> CmdResult {
    let Some(c) = cx.session().and_then(|s| s.cluster.as_mut()) else { return Ok(()) };
    if tries > 60 {
        return Err(CmdError::Other("TRYAGAIN the slot is still being migrated".into()));
    }
    let map = c.map.clone();
    map.gate.wait_open(slot, std::time::Duration::from_secs(1)).await;
    let c = cx.session().and_then(|s| s.cluster.as_mut()).ok_or(CmdError::Syntax)?;
    c.keys_served_here(&inv.keys)
}
