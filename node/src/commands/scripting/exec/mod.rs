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
use crate::commands::session::Session;
use crate::commands::{self, exec_one_at, flag, CommandSpec, Coord, Exec, LocalFut};
use crate::error::CmdResult;
use crate::resp::Out;
use crate::scripting::convert::{lua_to_resp, push_bytes, push_registry, seti, write_scalar};
use crate::scripting::{flags, Sha};
use crate::shard::scripts::{Busy, Scripting};
use crate::shard::{Engine, Job, Shard, TxId};
use crate::util::now_ms;

mod call;
mod coord;
mod errors;

use call::abort_error;
pub use call::{number_arg, redis_call_c, redis_pcall_c};
use coord::{Escalate, ScriptCoord};
pub use errors::error_handler;

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

/// Pushes a Lua array of byte strings.
///
/// # Safety
/// `state` must be valid with room for two more values.
unsafe fn push_list(state: *mut ffi::lua_State, items: &[Bytes]) {
    ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as c_int, 0);
    for (i, it) in items.iter().enumerate() {
        push_bytes(state, it);
        seti(state, -2, i + 1);
    }
}

/// How errors name what ran: the script's SHA or the function's name.
enum Name<'a> {
    Sha(Sha),
    Function(&'a str),
}

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Sha(s) => f.write_str(std::str::from_utf8(s).unwrap_or_default()),
            Name::Function(n) => f.write_str(n),
        }
    }
}

/// What `entry` needs, passed to it as a light userdata.
struct EntryArgs<'a> {
    raw: &'a mut Raw,
    func: c_int,
    keys: &'a [Bytes],
    args: &'a [Bytes],
    is_script: bool,
}

/// Refills the reused table in registry slot `id` with `items` (leaving it
/// on the stack) and returns the new length. The table held `prev` items
/// when the last run started; a script may have changed it since (other
/// keys, a metatable), and then it is replaced by a fresh one, as it is when
/// it has grown much larger than what it now holds. Either way the script
/// sees a plain array of exactly `items`, as with a new table.
///
/// # Safety
/// Runs inside `entry` (protected): may raise on allocation failure.
unsafe fn refill(state: *mut ffi::lua_State, id: c_int, items: &[Bytes], prev: usize) -> usize {
    push_registry(state, id);
    let t = ffi::lua_gettop(state);
    let mut clean = prev <= 64 || items.len() * 4 >= prev;
    if clean && ffi::lua_getmetatable(state, t) != 0 {
        ffi::lua_pop(state, 1);
        clean = false;
    }
    if clean {
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, t) != 0 {
            ffi::lua_pop(state, 1);
            let k = if ffi::lua_type(state, -1) == ffi::LUA_TNUMBER { ffi::lua_tonumber(state, -1) } else { 0.0 };
            if k.fract() != 0.0 || k < 1.0 || k > prev as f64 {
                ffi::lua_pop(state, 1);
                clean = false;
                break;
            }
        }
    }
    let mut stale = prev;
    if !clean {
        ffi::lua_pop(state, 1);
        ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as c_int, 0);
        ffi::lua_pushvalue(state, -1);
        ffi::lua_rawseti_(state, ffi::LUA_REGISTRYINDEX, id);
        stale = 0;
    }
    for (i, it) in items.iter().enumerate() {
        push_bytes(state, it);
        seti(state, t, i + 1);
    }
    for i in items.len() + 1..=stale {
        ffi::lua_pushnil(state);
        seti(state, t, i);
    }
    items.len()
}

/// The C function a run calls under `lua_pcall`, with an `EntryArgs` as
/// its argument: sets KEYS and ARGV (EVAL) or passes keys and arguments
/// (FCALL), then calls the runner. Returns the runner's two results.
///
/// # Safety
/// Called by Lua as a C function, only from `run`.
pub unsafe extern "C-unwind" fn entry(state: *mut ffi::lua_State) -> c_int {
    let a = ffi::lua_touserdata(state, 1) as *mut EntryArgs<'_>;
    ffi::lua_settop(state, 0);
    if a.is_null() {
        return 0;
    }
    // SAFETY: `run` passes a live `EntryArgs`, used only here.
    let a = &mut *a;
    ffi::lua_checkstack(state, 8);
    push_registry(state, a.raw.runner);
    push_registry(state, a.func);
    if a.is_script {
        // Stack: runner, func, KEYS, ARGV, env.
        a.raw.keys_len = refill(state, a.raw.keys, a.keys, a.raw.keys_len);
        a.raw.argv_len = refill(state, a.raw.argv, a.args, a.raw.argv_len);
        push_registry(state, a.raw.env);
        push_registry(state, a.raw.keys_name);
        ffi::lua_pushvalue(state, 3);
        ffi::lua_rawset(state, 5);
        push_registry(state, a.raw.argv_name);
        ffi::lua_pushvalue(state, 4);
        ffi::lua_rawset(state, 5);
        ffi::lua_settop(state, 2);
        ffi::lua_call(state, 1, 2);
    } else {
        // Functions get fresh tables: a library may keep them.
        push_list(state, a.keys);
        push_list(state, a.args);
        ffi::lua_call(state, 3, 2);
    }
    2
}

/// Runs an invocation, writing its reply into `out`; false (nothing
/// written, changes rolled back) when it needs wide mode.
fn run(vm: &mut Vm, target: Target<'_>, inv: &Invocation, out: &mut Out, func: Option<c_int>) -> bool {
    let done = run_script(vm, target, inv, out, func);
    vm.after_run();
    done
}

fn run_script(vm: &mut Vm, target: Target<'_>, inv: &Invocation, out: &mut Out, func: Option<c_int>) -> bool {
    let (func, name) = match &inv.kind {
        Kind::Script { sha, body } => {
            if let Some(body) = body {
                if let Err(e) = vm.script_for_body(sha, body, false) {
                    out.error_text(&e);
                    return true;
                }
            }
            match func.map_or_else(|| vm.script_function(sha), Ok) {
                Ok(f) => (f, Name::Sha(*sha)),
                Err(e) => {
                    out.error_text(&e);
                    return true;
                }
            }
        }
        Kind::Function { name } => match func.map_or_else(|| vm.function(name).map(|(_, f)| f), Ok) {
            Ok(f) => (f, Name::Function(name)),
            Err(e) => {
                out.error_text(&e);
                return true;
            }
        },
    };
    let is_script = matches!(inv.kind, Kind::Script { .. });
    let Vm { lua, raw, scratch, scripting, .. } = vm;
    let scripting = &**scripting;
    let state = raw.state;
    let slot = raw.slot.id();
    let mut ctx = RunCtx::new(target, scripting, Some(inv), scratch);
    let mut args = EntryArgs { raw, func, keys: &inv.keys, args: &inv.args, is_script };
    // SAFETY: `state` is this VM's main state, used on this thread only;
    // the stack is restored to `top` on every path below. `entry` runs
    // protected, so nothing raises out of `lua_pcall`.
    let top = unsafe { ffi::lua_gettop(state) };
    let rc = with_ctx(&mut ctx, || unsafe {
        ffi::lua_checkstack(state, 4);
        push_registry(state, args.raw.entry);
        ffi::lua_pushlightuserdata(state, &mut args as *mut EntryArgs<'_> as *mut c_void);
        ffi::lua_pcall(state, 1, 2, 0)
    });
    if let Some(b) = ctx.busy.take() {
        scripting.unmark_busy(b.id);
    }
    let (killed, resp3) = (ctx.killed, ctx.resp3);
    if ctx.escalate {
        ctx.finish_undo(true);
        drop(ctx);
        // SAFETY: drops what the call left.
        unsafe { ffi::lua_settop(state, top) };
        vm.mark_wide(&inv.kind);
        return false;
    }
    ctx.finish_undo(false);
    drop(ctx);
    vm.scratch.trim();
    // SAFETY: the stack holds the two results (or the error) above `top`;
    // the values are read with non-raising functions, and moving one into
    // the registry slot (which exists) allocates nothing.
    let ok = unsafe {
        if rc != 0 {
            let msg = if ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(state, -1, &mut len);
                String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len)).into_owned()
            } else {
                "unknown error".to_string()
            };
            ffi::lua_settop(state, top);
            let kind = if rc == ffi::LUA_ERRMEM { "memory error" } else { "runtime error" };
            out.error_text(&format!("ERR Error running script {name}, {kind}: {msg}"));
            return true;
        }
        let ok = ffi::lua_toboolean(state, -2) != 0;
        if ok && write_scalar(state, -1, out, resp3) {
            ffi::lua_settop(state, top);
            return true;
        }
        // A table, or a failure: read through a handle.
        ffi::lua_rawseti_(state, ffi::LUA_REGISTRYINDEX, slot);
        ffi::lua_settop(state, top);
        ok
    };
    let value = lua.registry_value::<Value>(&raw.slot).unwrap_or(Value::Nil);
    // SAFETY: puts the placeholder back into the slot.
    unsafe {
        ffi::lua_pushboolean(state, 1);
        ffi::lua_rawseti_(state, ffi::LUA_REGISTRYINDEX, slot);
    }
    match (ok, value) {
        (true, v) => {
            // A table may hold one big string many times.
            let mark = out.buf.len();
            let budget = crate::resp::ReplyBudget::open(mark);
            lua_to_resp(&v, out, resp3);
            if budget.finish() {
                out.buf.truncate(mark);
                out.error(&crate::resp::reply_too_big());
            }
        }
        (false, Value::Table(t)) => {
            let msg = if killed {
                "ERR Script killed by user with SCRIPT KILL...".to_string()
            } else {
                match t.raw_get::<Value>("err") {
                    Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                    _ => "ERR unknown error".into(),
                }
            };
            let source = t.raw_get::<Option<String>>("source").ok().flatten();
            let line = t.raw_get::<Option<i64>>("line").ok().flatten();
            let text = match (source, line) {
                (Some(src), Some(line)) => format!("{} script: {name}, on {src}:{line}.", msg.trim_end_matches(['\r', '\n'])),
                _ => msg,
            };
            let text = text.strip_prefix('-').unwrap_or(&text);
            if crate::scripting::convert::error_counted(&t) {
                out.error_uncounted(text);
            } else {
                out.error_text(text);
            }
        }
        (false, other) => {
            let msg = other.to_string().unwrap_or_default();
            // Lua's own text for a failed allocation, which `lua-memory-limit` causes.
            let hint = if msg == "not enough memory" { " (a script's Lua heap is bounded by lua-memory-limit)" } else { "" };
            out.error_text(&format!("ERR Error running script {name}, {msg}{hint}"))
        }
    }
    true
}

/// Runs a library's top-level code (already compiled with its library
/// environment), collecting what it registers.
pub fn load_library(vm: &mut Vm, chunk: Function) -> Result<Vec<Registered>, String> {
    let Vm { scripting, scratch, runner, .. } = vm;
    let mut ctx = RunCtx::new(Target::None, scripting, None, scratch);
    let result = with_ctx(&mut ctx, || runner.call::<(bool, Value)>((chunk, Value::Nil, Value::Nil)));
    match result {
        Ok((true, _)) => Ok(std::mem::take(&mut ctx.registered)),
        Ok((false, v)) => {
            let msg = if ctx.load_timeout {
                "ERR FUNCTION LOAD timeout".to_string()
            } else {
                match &v {
                    Value::Table(t) => match t.raw_get::<Value>("err") {
                        Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                        _ => "unknown error".into(),
                    },
                    other => other.to_string().unwrap_or_default(),
                }
            };
            Err(format!("ERR Error registering functions: {msg}"))
        }
        Err(e) => Err(format!("ERR Error registering functions: {e}")),
    }
}

#[cfg(test)]
mod tests;
