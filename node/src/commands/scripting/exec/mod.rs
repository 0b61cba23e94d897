//! Running scripts and functions.
//!
//! A run has a context (`RunCtx`) that `redis.call`, the error handler and
//! the time-limit hook reach through a per-thread slot while the run is in
//! progress (the callbacks are created once per VM, not per run). Where the
//! commands of `redis.call` execute depends on the target:
//!
//! - `Fast`: the script runs as one job on the shard that owns its declared
//!   keys (or the connection's shard when it declares none), and
//!   `redis.call` runs commands directly on that `&mut Shard`. Every key the
//!   script changes is recorded in the database's undo log first. When a
//!   command needs another shard (an undeclared key elsewhere, a multi-shard
//!   or connection-level command), the changes are rolled back — nobody
//!   else could have seen them, the shard was ours — the run is abandoned
//!   and the caller runs the script again in wide mode.
//! - `Wide`: the connection holds a transaction on every shard; the script
//!   runs on the connection's thread, `redis.call` runs local commands on
//!   the borrowed local shard and sends remote ones to their shard as jobs
//!   of that transaction, waiting for each reply. This blocks the thread,
//!   which is safe: every shard is locked by this transaction, so the other
//!   shard threads are free to run its jobs and nothing else can be running
//!   a script anywhere.
//! - `None`: a function library being loaded (no data access).
//!
//! The time limit: an instruction-count hook checks the elapsed time. Past
//! `lua-time-limit` the run registers itself as busy (other connections
//! then answer -BUSY; those of its own thread are served from the hook,
//! see `server::busy`) and from then on honours SCRIPT KILL / FUNCTION KILL.

use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use std::os::raw::{c_int, c_void};

use mlua::{ffi, Function, Lua, Table, Value};

use super::vm::{Raw, Vm};
use crate::commands::{self, exec_one_at, flag, CommandSpec, Coord, Exec, LocalFut};
use crate::resp::Out;
use crate::scripting::convert::{lua_to_resp, push_bytes, push_registry, seti, write_scalar};
use crate::scripting::{flags, Sha};
use crate::shard::scripts::{Busy, Scripting};
use crate::shard::{Engine, Job, Shard, TxId};
use crate::util::now_ms;

mod call;
mod coord;
mod errors;
mod invoke;

use call::abort_error;
pub use call::{number_arg, redis_call_c, redis_pcall_c};
use coord::{Escalate, ScriptCoord};
pub use errors::error_handler;
use invoke::run;
pub use invoke::{entry, load_library};

/// What to run.
pub enum Kind {
    /// An EVAL script by SHA; `body` when the client sent the source.
    Script { sha: Sha, body: Option<Bytes> },
    /// A function registered by a library.
    Function { name: String },
}

/// One EVAL/EVALSHA/FCALL invocation, as sent to the shard that runs it
/// (keys and arguments borrowed from the command when it runs in place).
pub struct Invocation<'a> {
    pub kind: Kind,
    pub keys: Cow<'a, [Bytes]>,
    pub args: Cow<'a, [Bytes]>,
    /// The client's database.
    pub db: usize,
    /// The client's protocol (the reply is written in it).
    pub resp3: bool,
    /// EVAL_RO/FCALL_RO, or a `no-writes` script or function.
    pub read_only: bool,
    /// The script's flags (`flags::*`).
    pub flags: u32,
    /// The command's name (for FUNCTION STATS).
    pub command: &'static str,
    /// `lua-time-limit` in ms (0: none).
    pub limit_ms: u64,
    /// The caller's ACL user, when restricted: every `redis.call` is
    /// checked against it.
    pub acl: Option<crate::commands::acl::Caller>,
}

impl Invocation<'_> {
    /// The invocation with its own copy of the keys and arguments.
    pub fn into_owned(self) -> Invocation<'static> {
        Invocation {
            kind: self.kind,
            keys: Cow::Owned(self.keys.into_owned()),
            args: Cow::Owned(self.args.into_owned()),
            db: self.db,
            resp3: self.resp3,
            read_only: self.read_only,
            flags: self.flags,
            command: self.command,
            limit_ms: self.limit_ms,
            acl: self.acl,
        }
    }
}

/// Result of a fast-path attempt.
pub enum Outcome {
    /// The reply, in the client's protocol.
    Reply(Vec<u8>),
    /// The script needs other shards: its changes were rolled back; run it
    /// again in wide mode.
    Escalate,
}

pub enum Target<'a> {
    None,
    Fast(&'a mut Shard),
    Wide { local: &'a mut Shard, engine: &'a Arc<Engine>, tx: TxId },
}

impl Target<'_> {
    /// The node, to log ACL denials in (none while a library loads).
    fn engine(&self) -> Option<&Engine> {
        match self {
            Target::None => None,
            Target::Fast(sh) => sh.engine.as_deref(),
            Target::Wide { engine, .. } => Some(engine),
        }
    }
}

/// `redis.acl_check_cmd`: whether the running script's caller may run
/// the command line `args`; `None` for a command that does not exist.
pub fn acl_allows(args: &[Bytes]) -> Option<bool> {
    let spec = commands::lookup_args(args).ok()?;
    let allowed = current(|ctx| match ctx.inv.and_then(|i| i.acl.as_ref()) {
        Some(c) => commands::acl::check(&c.user, spec, args).is_ok(),
        None => true,
    });
    Some(allowed.unwrap_or(true))
}

/// A function registered while a library loads.
pub struct Registered {
    pub name: String,
    pub func: Function,
    pub flags: u32,
    pub description: Option<String>,
}

/// Serves the other clients of a thread its busy script holds (the
/// connection layer registers it at start: `server::busy`); returns how
/// long until it should run again.
pub static BUSY_SERVICE: std::sync::OnceLock<fn() -> Duration> = std::sync::OnceLock::new();

/// Buffers a VM reuses from one run, and one `redis.call`, to the next.
pub struct Scratch {
    /// The reply of the running `redis.call`.
    reply: Out,
    /// The arguments of the running `redis.call`: their bytes (one buffer,
    /// reclaimed once the previous call's handles are gone), lengths and
    /// handles.
    arg_bytes: BytesMut,
    arg_lens: Vec<usize>,
    argv: Vec<Bytes>,
    /// Databases of the fast-path shard whose undo log is recording.
    undo_dbs: Vec<usize>,
    /// The last command names `redis.call` looked up.
    commands: CommandCache,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            reply: Out { buf: Vec::new(), resp3: false },
            arg_bytes: BytesMut::new(),
            arg_lens: Vec::new(),
            argv: Vec::new(),
            undo_dbs: Vec::new(),
            commands: CommandCache::default(),
        }
    }
}

impl Scratch {
    /// Drops buffers a run grew beyond what is worth keeping (a large
    /// reply or argument list), so a VM holds on to no more than a few
    /// kilobytes between runs.
    fn trim(&mut self) {
        if self.reply.buf.capacity() > REPLY_BUF_KEEP {
            self.reply.buf = Vec::new();
        }
        if self.arg_bytes.capacity() > ARG_BUF_KEEP {
            self.arg_bytes = BytesMut::new();
        }
        if self.argv.capacity() > ARGS_KEEP {
            self.argv = Vec::new();
            self.arg_lens = Vec::new();
        }
    }
}

/// The argument buffer is dropped rather than kept past this size: its
/// handles may outlive the call (a command keeping an argument), and a
/// large buffer should not stay pinned by them.
const ARG_BUF_KEEP: usize = 4096;
/// Largest `redis.call` reply buffer kept between runs.
const REPLY_BUF_KEEP: usize = 64 * 1024;
/// Most `redis.call` arguments whose vectors are kept between runs.
const ARGS_KEEP: usize = 1024;

/// A few command names as scripts spelled them, with their specs: scripts
/// call the same handful of commands over and over. Names of up to 16 bytes
/// are kept as one zero-padded integer (with the length, so trailing NULs
/// stay distinct); longer ones go to the command table every time.
#[derive(Default)]
struct CommandCache {
    entries: [(u8, u128, Option<&'static CommandSpec>); 8],
    next: usize,
}

impl CommandCache {
    fn lookup(&mut self, name: &[u8]) -> Option<&'static CommandSpec> {
        if name.len() > 16 {
            return commands::lookup(name);
        }
        let mut bytes = [0u8; 16];
        bytes[..name.len()].copy_from_slice(name);
        let key = (name.len() as u8, u128::from_le_bytes(bytes));
        if let Some(&(_, _, Some(spec))) = self.entries.iter().find(|e| (e.0, e.1) == key) {
            return Some(spec);
        }
        let spec = commands::lookup(name)?;
        self.entries[self.next] = (key.0, key.1, Some(spec));
        self.next = (self.next + 1) % self.entries.len();
        Some(spec)
    }
}

pub struct RunCtx<'a> {
    target: Target<'a>,
    scripting: &'a Scripting,
    scratch: &'a mut Scratch,
    inv: Option<&'a Invocation<'a>>,
    db: usize,
    /// The protocol the script speaks (`redis.setresp`).
    resp3: bool,
    read_only: bool,
    /// Deny-OOM commands are refused (compatibility-mode script started
    /// while memory was over the limit).
    oom: bool,
    wrote: bool,
    escalate: bool,
    killed: bool,
    load_timeout: bool,
    /// Coarse monotonic time at the start, for the time limit.
    started: Duration,
    /// Unix ms at the start: commands see this time throughout the run.
    now: u64,
    limit: Option<Duration>,
    busy: Option<Busy>,
    /// Script time at which the busy run next serves its thread's clients.
    next_service: Duration,
    registered: Vec<Registered>,
    /// The running state, once the run is being stopped and its hook runs
    /// at every line (`vm::hook_every_line`); put back when it ends.
    stopping: Option<*mut ffi::lua_State>,
}

/// A monotonic clock read for the time limit: the coarse clock, which
/// needs no hardware counter read (a few ms of resolution are plenty for a
/// limit in ms).
fn coarse_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes the current time into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A library must finish loading within this time.
const LOAD_LIMIT: Duration = Duration::from_millis(500);

thread_local! {
    static CURRENT: Cell<*mut RunCtx<'static>> = const { Cell::new(std::ptr::null_mut()) };
}

/// Makes `ctx` the current run while `f` runs (restored on unwind too).
fn with_ctx<R>(ctx: &mut RunCtx<'_>, f: impl FnOnce() -> R) -> R {
    struct Reset(*mut RunCtx<'static>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    // The lifetime is erased only for storage in the slot; the pointer is
    // used only while `f` runs, during which `ctx` is borrowed here.
    let p: *mut RunCtx<'static> = (ctx as *mut RunCtx<'_>).cast();
    let prev = CURRENT.with(|c| c.replace(p));
    let _reset = Reset(prev);
    let r = f();
    if let Some(state) = ctx.stopping.take() {
        // SAFETY: the state the hook was changed on, still alive.
        unsafe { super::vm::hook_restore(state) };
    }
    r
}

/// Gives `f` the current run, if any. The slot is emptied while `f` runs,
/// so a nested call (a Lua callback reached from inside `f`) finds none
/// rather than a second mutable reference.
fn current<R>(f: impl FnOnce(&mut RunCtx<'_>) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.replace(std::ptr::null_mut()));
    if p.is_null() {
        return None;
    }
    struct Restore(*mut RunCtx<'static>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(p);
    // SAFETY: `p` was set by `with_ctx` from a live `&mut RunCtx` that stays
    // borrowed until `with_ctx` returns, and the slot is empty while this
    // reference exists, so it is the only one.
    let ctx = unsafe { &mut *p };
    Some(f(ctx))
}

pub fn log(level: i64, msg: &str) {
    match level {
        0 => tracing::debug!(target: "script", "{msg}"),
        1 => tracing::info!(target: "script", "{msg}"),
        2 => tracing::info!(target: "script", "{msg}"),
        _ => tracing::warn!(target: "script", "{msg}"),
    }
}

pub fn set_resp(resp3: bool) {
    current(|ctx| ctx.resp3 = resp3);
}

/// Checks a function name: letters, digits and underscores, not empty.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `redis.register_function` while a library loads; an error text or None.
pub fn register_function(name: String, func: Function, flag_names: Vec<String>, description: Option<String>) -> Option<String> {
    const ONLY_LOAD: &str = "ERR redis.register_function can only be called on FUNCTION LOAD command";
    let r = current(|ctx| {
        // A function that kept a reference to the loading `redis` table
        // runs with a target; only a load has none.
        if !matches!(ctx.target, Target::None) {
            return Some(ONLY_LOAD.into());
        }
        if !valid_name(&name) {
            // Redis words this check with the library-name text.
            return Some(
                "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into(),
            );
        }
        if ctx.registered.iter().any(|r| r.name == name) {
            return Some("ERR Function already exists in the library".into());
        }
        let mut f = 0;
        for n in &flag_names {
            match flags::by_name(n.as_bytes()) {
                Some(bit) => f |= bit,
                None => return Some("ERR unknown flag given".into()),
            }
        }
        ctx.registered.push(Registered { name, func, flags: f, description });
        None
    });
    r.unwrap_or_else(|| Some(ONLY_LOAD.into()))
}

/// The instruction-count hook: enforces the time limit and SCRIPT KILL.
pub fn hook(lua: &Lua) -> mlua::Result<()> {
    current(|ctx| {
        let r = ctx.check_time();
        if r.is_err() && ctx.stopping.is_none() {
            // SAFETY: the state running this hook, on this thread.
            let state = lua.state();
            unsafe { super::vm::hook_every_line(state) };
            ctx.stopping = Some(state);
        }
        r
    })
    .unwrap_or(Ok(()))
}

impl<'a> RunCtx<'a> {
    fn new(target: Target<'a>, scripting: &'a Scripting, inv: Option<&'a Invocation<'a>>, scratch: &'a mut Scratch) -> RunCtx<'a> {
        let (db, read_only, limit, mut oom) = match inv {
            Some(i) => (i.db, i.read_only, (i.limit_ms > 0).then(|| Duration::from_millis(i.limit_ms)), i.flags & flags::EVAL_COMPAT != 0),
            None => (0, true, Some(LOAD_LIMIT), false),
        };
        if oom {
            oom = over_maxmemory(&target);
        }
        RunCtx {
            target,
            scripting,
            scratch,
            inv,
            db,
            resp3: false,
            read_only,
            oom,
            wrote: false,
            escalate: false,
            killed: false,
            load_timeout: false,
            started: coarse_now(),
            now: now_ms(),
            limit,
            busy: None,
            next_service: Duration::ZERO,
            registered: Vec::new(),
            stopping: None,
        }
    }

    fn check_time(&mut self) -> mlua::Result<()> {
        if self.escalate || self.killed || self.load_timeout {
            return Err(abort_error());
        }
        let Some(limit) = self.limit else { return Ok(()) };
        let elapsed = coarse_now().saturating_sub(self.started);
        if elapsed < limit {
            return Ok(());
        }
        let Some(inv) = self.inv else {
            self.load_timeout = true;
            return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
        };
        if self.busy.is_none() {
            let function = match &inv.kind {
                Kind::Function { name } => Some(name.clone()),
                Kind::Script { .. } => None,
            };
            // The client's command as sent (FUNCTION STATS shows it).
            let script = match &inv.kind {
                Kind::Function { name } => Bytes::copy_from_slice(name.as_bytes()),
                Kind::Script { body: Some(body), .. } => body.clone(),
                Kind::Script { sha, body: None } => Bytes::copy_from_slice(&sha[..]),
            };
            let numkeys = Bytes::copy_from_slice(itoa::Buffer::new().format(inv.keys.len()).as_bytes());
            let mut command = vec![Bytes::from_static(inv.command.as_bytes()), script, numkeys];
            command.extend(inv.keys.iter().cloned());
            command.extend(inv.args.iter().cloned());
            tracing::warn!("a script has been running for {} ms; other clients get -BUSY until it ends", limit.as_millis());
            let thread = match &self.target {
                Target::Fast(sh) | Target::Wide { local: sh, .. } => sh.id,
                Target::None => 0,
            };
            let started = Instant::now().checked_sub(elapsed).unwrap_or_else(Instant::now);
            self.busy = Some(self.scripting.mark_busy(function, command, started, self.wrote, thread));
        }
        // The other clients of this thread (and new ones) cannot be polled
        // while the script holds the thread: serve them from here, so they
        // get -BUSY and can reach SCRIPT KILL.
        if elapsed >= self.next_service {
            // The hook writes replies of this thread's earlier commands:
            // their broadcasts go first.
            if let Target::Fast(sh) | Target::Wide { local: sh, .. } = &mut self.target {
                sh.send_broadcasts();
            }
            let wait = BUSY_SERVICE.get().map_or(Duration::from_millis(20), |serve| serve());
            self.next_service = coarse_now().saturating_sub(self.started) + wait;
        }
        if self.busy.as_ref().is_some_and(|b| b.kill.load(Relaxed)) {
            self.killed = true;
            return Err(abort_error());
        }
        Ok(())
    }

    /// Stops recording undo information and keeps the changes (or rolls
    /// them back).
    fn finish_undo(&mut self, rollback: bool) {
        if let Target::Fast(sh) = &mut self.target {
            for &d in &self.scratch.undo_dbs {
                if rollback {
                    sh.db(d).undo_rollback();
                } else {
                    sh.db(d).undo_commit();
                }
            }
            if !self.scratch.undo_dbs.is_empty() {
                sh.release_events(!rollback);
                sh.journal_script_end(rollback);
            }
        }
        self.scratch.undo_dbs.clear();
    }
}

fn over_maxmemory(target: &Target) -> bool {
    let cfg = match target {
        Target::Fast(sh) | Target::Wide { local: sh, .. } => &sh.cfg,
        Target::None => return false,
    };
    crate::shard::evict::oom(cfg)
}

/// Runs an invocation on the fast path: on `sh`, which owns its declared
/// keys. Rolls back and asks for wide mode when it needs more.
pub fn run_fast(sh: &mut Shard, inv: &Invocation) -> Outcome {
    // MONITOR: the commands' lines are held until the run stands.
    let monitors = sh.engine.clone().filter(|e| e.monitors.on());
    if let Some(e) = &monitors {
        e.monitors.hold();
    }
    let outcome = with_script_keys(sh, inv, |sh| {
        super::vm::with_vm_on(sh, |vm, sh| {
            let mut out = Out::new(inv.resp3);
            if run(vm, Target::Fast(sh), inv, &mut out, None) {
                Outcome::Reply(out.buf)
            } else {
                Outcome::Escalate
            }
        })
    });
    if let Some(e) = &monitors {
        e.monitors.release(&e.cfg, matches!(outcome, Outcome::Reply(_)));
    }
    outcome
}

/// `run_fast` for a caller that already holds this thread's VM; writes the
/// reply into `out` and returns true, or returns false (nothing written)
/// when the script needs wide mode. `func`: the registry slot of the
/// compiled script or function in this VM, when the caller looked it up.
pub fn run_fast_with(vm: &mut Vm, sh: &mut Shard, inv: &Invocation, out: &mut Out, func: Option<c_int>) -> bool {
    with_script_keys(sh, inv, |sh| run(vm, Target::Fast(sh), inv, out, func))
}

/// Runs `f` with the script's declared keys as `Shard::script_keys` when
/// a tracking client runs it (client-side caching remembers those).
fn with_script_keys<R>(sh: &mut Shard, inv: &Invocation, f: impl FnOnce(&mut Shard) -> R) -> R {
    if sh.caller == 0 {
        return f(sh);
    }
    let saved = sh.script_keys.replace(inv.keys.to_vec());
    let r = f(sh);
    sh.script_keys = saved;
    r
}

/// Runs an invocation in wide mode: the caller's transaction `tx` holds
/// every shard; `local` is this thread's shard.
pub fn run_wide(local: &mut Shard, engine: &Arc<Engine>, tx: TxId, inv: &Invocation) -> Vec<u8> {
    super::vm::with_vm_on(local, |vm, local| {
        let mut out = Out::new(inv.resp3);
        if !run(vm, Target::Wide { local, engine, tx }, inv, &mut out, None) {
            out.error_text("ERR script could not run");
        }
        out.buf
    })
}

#[cfg(test)]
mod tests;
