//! The per-thread Lua VM and its sandbox.
//!
//! Each shard thread lazily creates one Lua 5.1 state with only the base,
//! table, string and math libraries plus our `bit`, `cjson`, `cmsgpack` and
//! `struct`; `prelude.lua` then builds the `redis` table, turns library
//! tables into read-only views, removes what reaches outside the sandbox
//! (`loadfile`, `dofile`, `load`, `setfenv`, `print`, ...), and sets up the
//! environment scripts run in, where creating a global is an error with
//! Redis's text. Compiled scripts and loaded libraries are cached per VM and
//! dropped when the node-wide generation counters move (SCRIPT FLUSH,
//! FUNCTION LOAD/DELETE/...).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::raw::c_int;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use mlua::chunk::ChunkMode;
use mlua::{ffi, Function, HookTriggers, Lua, LuaOptions, RegistryKey, StdLib, Table, Value, VmState};

use super::exec;
use crate::config::Config;
use crate::scripting::{libs, Sha};
use crate::shard::scripts::{function_key, FunctionInfo, ScriptInfo, Scripting};
use crate::shard::Shard;

/// Calls its upvalue with its arguments and returns what it returns: a C
/// frame in front of a Lua-implemented API function.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> std::os::raw::c_int {
    let n = ffi::lua_gettop(state);
    ffi::luaL_checkstack(state, 2, std::ptr::null());
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, ffi::LUA_MULTRET);
    ffi::lua_gettop(state)
}

/// The global `tonumber`, behaving as Lua 5.1's: with one argument, a
/// string that is a plain decimal integer (the usual case in scripts:
/// counters and amounts read with GET or from ARGV) is read directly rather
/// than through the C library's strtod, which gives the same number. Any
/// other call goes through Lua's own conversion (base 10) or strtoul (other
/// bases), with the argument errors the standard function raises.
unsafe extern "C-unwind" fn tonumber(state: *mut ffi::lua_State) -> c_int {
    if ffi::lua_gettop(state) == 1 && ffi::lua_type(state, 1) == ffi::LUA_TSTRING {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(state, 1, &mut len);
        if !p.is_null() {
            if let Some(n) = plain_integer(std::slice::from_raw_parts(p as *const u8, len)) {
                ffi::lua_pushnumber(state, n);
                return 1;
            }
        }
    }
    // The base is read as a C int, as the standard function does.
    let base = ffi::luaL_optinteger(state, 2, 10) as c_int;
    if base == 10 {
        ffi::luaL_checkany(state, 1);
        if ffi::lua_isnumber(state, 1) != 0 {
            ffi::lua_pushnumber(state, ffi::lua_tonumber(state, 1));
            return 1;
        }
    } else {
        let text = ffi::luaL_checklstring(state, 1, std::ptr::null_mut());
        if !(2..=36).contains(&base) {
            ffi::luaL_argerror(state, 2, c"base out of range".as_ptr());
        }
        let mut end: *mut std::os::raw::c_char = std::ptr::null_mut();
        let n = libc::strtoul(text, &mut end, base);
        if !end.is_null() && end.cast_const() != text {
            while matches!(*end as u8, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
                end = end.add(1);
            }
            if *end == 0 {
                ffi::lua_pushnumber(state, n as ffi::lua_Number);
                return 1;
            }
        }
    }
    ffi::lua_pushnil(state);
    1
}

/// `-?[0-9]{1,15}`: an integer that strtod reads exactly (fewer than 2^53).
fn plain_integer(b: &[u8]) -> Option<f64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |v, &d| v * 10 + (d - b'0') as i64) as f64;
    Some(if digits.len() < b.len() { -v } else { v })
}

/// Lua instructions between two checks of the time limit and kill flag.
const HOOK_EVERY: u32 = 10_000;

/// Once a run is being stopped (SCRIPT KILL, a timed-out load), the hook
/// also runs at every new line and backward jump, as Redis's does: a
/// script that catches the stop's error with pcall in a loop meets it
/// again outside the pcall, where nothing catches it.
///
/// # Safety
/// `state` is a live Lua state of this thread whose hook mlua installed.
pub unsafe fn hook_every_line(state: *mut ffi::lua_State) {
    ffi::lua_sethook(state, ffi::lua_gethook(state), ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT, HOOK_EVERY as std::os::raw::c_int);
}

/// Puts the hook back to every `HOOK_EVERY` instructions after such a run.
///
/// # Safety
/// As for `hook_every_line`.
pub unsafe fn hook_restore(state: *mut ffi::lua_State) {
    ffi::lua_sethook(state, ffi::lua_gethook(state), ffi::LUA_MASKCOUNT, HOOK_EVERY as std::os::raw::c_int);
}

pub struct Vm {
    pub lua: Lua,
    /// `run(f, a, b)`: calls `f(a, b)` under the error handler; returns
    /// `true, result` or `false, {err=, source=, line=}`.
    pub runner: Function,
    /// The environment EVAL scripts run in (holds KEYS and ARGV).
    pub env: Table,
    /// Makes a fresh environment for a function library.
    library_env: Function,
    pub scripting: Arc<Scripting>,
    scripts: HashMap<Sha, CachedScript, FastHash>,
    /// The size of `scripts` at which evicted copies are swept out.
    sweep_at: usize,
    /// The compiled script `script_meta` found last, with its function's
    /// registry slot: clients tend to call one script over and over.
    last_script: Option<(Sha, Arc<ScriptInfo>, c_int)>,
    script_gen: u64,
    functions: HashMap<String, CachedFunction, FastHash>,
    lib_gen: u64,
    /// What a run pushes straight from the registry (see `Raw`).
    pub raw: Raw,
    /// Buffers reused from one run to the next.
    pub scratch: exec::Scratch,
    /// The `lua-memory-limit` the Lua state was last given.
    memory_limit: u64,
    /// The heap size past which a run ends with a full collection.
    collect_above: usize,
    /// Runs so far, and the heap the last full collection left.
    runs: u32,
    live: usize,
}

type FastHash = foldhash::fast::RandomState;

/// A run that leaves the heap above this (or above twice what survived
/// the last collection) ends with a full collection: a script's garbage
/// would otherwise stay counted in `used_memory` until the thread idles.
const COLLECT_MIN: usize = 64 << 20;
/// Every this many runs, garbage past `SMALL_GARBAGE` is collected.
const SMALL_EVERY: u32 = 32;
const SMALL_GARBAGE: usize = 16 << 10;

/// A compiled function, held in a registry slot from which a run pushes it
/// (`key.id()`).
pub struct Compiled {
    pub key: RegistryKey,
}

impl Compiled {
    fn new(lua: &Lua, func: Function) -> Result<Compiled, String> {
        let key = lua.create_registry_value(func).map_err(|e| format!("ERR {e}"))?;
        Ok(Compiled { key })
    }
}

/// The fewest scripts a VM caches before it sweeps out evicted copies.
const SWEEP_MIN: usize = 2 * crate::shard::scripts::EVAL_SCRIPTS_MAX;

pub struct CachedScript {
    pub info: Arc<ScriptInfo>,
    /// Compiled on first use on this thread.
    pub func: Option<Compiled>,
}

pub struct CachedFunction {
    pub info: Arc<FunctionInfo>,
    pub func: Compiled,
}

/// The VM's main state and the registry slots of what every run needs, so
/// a run pushes them with `lua_rawgeti` rather than through handles.
pub struct Raw {
    pub state: *mut ffi::lua_State,
    /// `exec::entry`, the C function each run calls under `lua_pcall`.
    pub entry: c_int,
    pub runner: c_int,
    pub env: c_int,
    /// The KEYS and ARGV tables, refilled by each EVAL run (see
    /// `exec::refill`), and the interned names they are set under.
    pub keys: c_int,
    pub argv: c_int,
    pub keys_name: c_int,
    pub argv_name: c_int,
    /// Holds a run's result while it is read through a handle (tables,
    /// errors); `true` otherwise.
    pub slot: RegistryKey,
    /// How many entries the last run put into KEYS and ARGV.
    pub keys_len: usize,
    pub argv_len: usize,
    _keep: Vec<RegistryKey>,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
    /// This thread's VM heap as of its last run or collection.
    static HEAP: Cell<usize> = const { Cell::new(0) };
}

/// Bytes this thread's Lua heap held after its last run or collection (0
/// before the first script): INFO's `used_memory_lua`.
pub fn heap_size() -> usize {
    HEAP.with(Cell::get)
}

/// Runs `f` with this thread's VM, creating it on first use.
pub fn with_vm<R>(scripting: &Arc<Scripting>, cfg: &Config, f: impl FnOnce(&mut Vm) -> R) -> R {
    VM.with(|cell| {
        let mut slot = cell.borrow_mut();
        let vm = slot.get_or_insert_with(|| new_vm(scripting));
        vm.refresh(cfg);
        f(vm)
    })
}

/// Runs a full garbage collection in this thread's VM, if it has one and
/// no script is running.
pub fn collect_garbage() {
    VM.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            if let Some(vm) = slot.as_mut() {
                vm.collect();
            }
        }
    })
}

/// `with_vm` for code running on a shard: `f` gets the shard back.
pub fn with_vm_on<R>(sh: &mut Shard, f: impl FnOnce(&mut Vm, &mut Shard) -> R) -> R {
    VM.with(|cell| {
        let mut slot = cell.borrow_mut();
        let vm = slot.get_or_insert_with(|| new_vm(&sh.scripting));
        vm.refresh(&sh.cfg);
        f(vm, sh)
    })
}

fn new_vm(scripting: &Arc<Scripting>) -> Vm {
    match Vm::new(scripting.clone()) {
        Ok(vm) => {
            HEAP.with(|h| h.set(vm.lua.used_memory()));
            vm
        }
        // Only an allocation failure while building the sandbox gets here.
        Err(e) => panic!("cannot create the Lua VM: {e}"),
    }
}

impl Vm {
    pub fn new(scripting: Arc<Scripting>) -> mlua::Result<Vm> {
        let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::new())?;
        let g = lua.globals();
        // SAFETY: follows the Lua C API contract (see there).
        g.raw_set("tonumber", unsafe { lua.create_c_function(tonumber)? })?;
        g.raw_set("bit", libs::bit::open(&lua)?)?;
        g.raw_set("cjson", libs::cjson::open(&lua)?)?;
        g.raw_set("cmsgpack", libs::cmsgpack::open(&lua)?)?;
        g.raw_set("struct", libs::structlib::open(&lua)?)?;

        let natives = lua.create_table()?;
        // SAFETY: both follow the Lua C API contract (see there).
        natives.raw_set("call", unsafe { lua.create_c_function(exec::redis_call_c)? })?;
        natives.raw_set("pcall", unsafe { lua.create_c_function(exec::redis_pcall_c)? })?;
        natives.raw_set("err_handler", lua.create_function(exec::error_handler)?)?;
        natives.raw_set(
            "sha1hex",
            lua.create_function(|lua, s: mlua::LuaString| lua.create_string(crate::scripting::sha1_hex(&s.as_bytes())))?,
        )?;
        natives.raw_set(
            "log",
            lua.create_function(|_, (level, msg): (i64, String)| {
                exec::log(level, &msg);
                Ok(())
            })?,
        )?;
        natives.raw_set(
            "setresp",
            lua.create_function(|_, v: i64| {
                exec::set_resp(v == 3);
                Ok(())
            })?,
        )?;
        let command_exists = scripting.command_exists;
        natives.raw_set("command_exists", lua.create_function(move |_, name: String| Ok(command_exists(name.as_bytes())))?)?;
        natives.raw_set(
            "acl_check",
            lua.create_function(|_, args: mlua::Variadic<mlua::LuaString>| {
                let argv: Vec<bytes::Bytes> = args.iter().map(|a| bytes::Bytes::copy_from_slice(&a.as_bytes())).collect();
                Ok(exec::acl_allows(&argv))
            })?,
        )?;
        natives.raw_set(
            "register",
            lua.create_function(|_, (name, f, flags, desc): (String, Function, Vec<String>, Option<String>)| {
                Ok(exec::register_function(name, f, flags, desc))
            })?,
        )?;
        natives.raw_set(
            "wrap",
            lua.create_function(|lua, f: Function| {
                // SAFETY: pushes one C closure over the argument, which is on
                // the stack; nothing is owned by the closure body.
                unsafe { lua.exec_raw::<Function>(f, |state| ffi::lua_pushcclosure(state, trampoline, 1)) }
            })?,
        )?;
        let version_num = version_number(crate::REDIS_VERSION);
        let (runner, env, library_env): (Function, Table, Function) =
            lua.load(include_str!("prelude.lua")).set_name("=redis").call((natives, crate::REDIS_VERSION, version_num))?;
        // Global: coroutines created by scripts inherit it, so they are
        // bound by the time limit too.
        lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), |lua, _| exec::hook(lua).map(|()| VmState::Continue))?;
        let (script_gen, lib_gen) = (scripting.script_gen.load(Relaxed), scripting.lib_gen.load(Relaxed));
        let raw = Raw::new(&lua, &runner, &env)?;
        Ok(Vm {
            lua,
            runner,
            env,
            library_env,
            scripting,
            scripts: HashMap::default(),
            sweep_at: SWEEP_MIN,
            last_script: None,
            script_gen,
            functions: HashMap::default(),
            lib_gen,
            raw,
            scratch: exec::Scratch::default(),
            memory_limit: 0,
            collect_above: COLLECT_MIN,
            runs: 0,
            live: 0,
        })
    }

    /// Drops what this VM compiled if SCRIPT FLUSH or a library change
    /// happened since, and applies a changed `lua-memory-limit`.
    fn refresh(&mut self, cfg: &Config) {
        let limit = cfg.lua_memory_limit.load(Relaxed);
        if limit != self.memory_limit {
            // Refused only when Lua runs as a module, which it never does here.
            if self.lua.set_memory_limit(usize::try_from(limit).unwrap_or(usize::MAX)).is_ok() {
                self.memory_limit = limit;
                // The next run ends with a collection that sets the threshold.
                self.collect_above = 0;
            }
        }
        let sg = self.scripting.script_gen.load(Relaxed);
        if sg != self.script_gen {
            self.scripts.clear();
            self.last_script = None;
            self.script_gen = sg;
            self.lua.expire_registry_values();
            self.collect();
        }
        let lg = self.scripting.lib_gen.load(Relaxed);
        if lg != self.lib_gen {
            self.functions.clear();
            self.lib_gen = lg;
            self.lua.expire_registry_values();
            // What a replaced or deleted library kept goes now.
            self.collect();
        }
    }

    /// Called after every run: collects at once when the run left a big
    /// heap behind (or hit `lua-memory-limit`), and every few runs when
    /// small runs' garbage has piled up (as Redis steps its collector every
    /// 50 scripts: Lua's own pace lets the heap reach twice what is live).
    pub fn after_run(&mut self) {
        self.runs = self.runs.wrapping_add(1);
        let used = self.lua.used_memory();
        let piled = self.runs.is_multiple_of(SMALL_EVERY) && used > self.live + SMALL_GARBAGE;
        if used > self.collect_above || piled {
            self.collect();
            // Under a limit, a quarter of it: a run that failed at the
            // limit leaves at least about that much garbage.
            let floor = match self.memory_limit {
                0 => COLLECT_MIN,
                limit => COLLECT_MIN.min(usize::try_from(limit / 4).unwrap_or(usize::MAX)),
            };
            self.collect_above = floor.max(self.live.saturating_mul(2));
        }
        HEAP.with(|h| h.set(self.lua.used_memory()));
    }

    /// A full collection; what survives is `live` and the published heap.
    fn collect(&mut self) {
        self.lua.gc_collect().ok();
        self.live = self.lua.used_memory();
        HEAP.with(|h| h.set(self.live));
    }

    /// The cached script `sha`: from this VM, or from the node's cache.
    /// A copy of a script the node evicted is dropped here (NOSCRIPT).
    pub fn script(&mut self, sha: &Sha) -> Option<&mut CachedScript> {
        let evicted = self.scripts.get(sha).map(|c| c.info.evicted.load(Relaxed));
        if evicted == Some(true) {
            self.scripts.remove(sha);
        }
        if evicted != Some(false) {
            let info = self.scripting.script(sha)?;
            self.cache(*sha, CachedScript { info, func: None });
        }
        let cached = self.scripts.get_mut(sha)?;
        cached.info.touch();
        Some(cached)
    }

    /// Keeps a script in this VM's cache. Copies of scripts the node
    /// evicted are dropped whenever the cache has doubled since the last
    /// sweep, so it stays within twice the node's.
    fn cache(&mut self, sha: Sha, c: CachedScript) {
        self.scripts.insert(sha, c);
        if self.scripts.len() > self.sweep_at {
            self.scripts.retain(|_, c| !c.info.evicted.load(Relaxed));
            self.lua.expire_registry_values();
            self.sweep_at = (self.scripts.len() * 2).max(SWEEP_MIN);
        }
    }

    /// A cached script's flags, whether it is known to need the wide lock,
    /// and its function's registry slot once compiled in this VM.
    pub fn script_meta(&mut self, sha: &Sha) -> Option<(u32, bool, Option<c_int>)> {
        if let Some((last, info, id)) = &self.last_script {
            if last == sha && !info.evicted.load(Relaxed) {
                info.touch();
                return Some((info.flags, info.wide.load(Relaxed), Some(*id)));
            }
        }
        let cached = self.script(sha)?;
        let (info, id) = (cached.info.clone(), cached.func.as_ref().map(|f| f.key.id()));
        let meta = (info.flags, info.wide.load(Relaxed), id);
        if let Some(id) = id {
            self.last_script = Some((*sha, info, id));
        }
        Some(meta)
    }

    /// Looks `body` up by its SHA, or checks that it compiles and adds it to
    /// the node's cache (as EVAL and SCRIPT LOAD do). Errors are replies.
    /// `load`: for SCRIPT LOAD, which the node never evicts.
    pub fn script_for_body(&mut self, sha: &Sha, body: &Bytes, load: bool) -> Result<Arc<ScriptInfo>, String> {
        if let Some(s) = self.script(sha) {
            let info = s.info.clone();
            if load {
                self.scripting.add_script(*sha, body.clone(), info.flags, true);
            }
            return Ok(info);
        }
        let (flags, shebang_len) = crate::scripting::parse_shebang(body).map_err(|e| format!("ERR {e}"))?;
        let func = Compiled::new(&self.lua, self.compile(&body[shebang_len..])?)?;
        let info = self.scripting.add_script(*sha, body.clone(), flags, load);
        self.cache(*sha, CachedScript { info: info.clone(), func: Some(func) });
        Ok(info)
    }

    /// The registry slot of a cached script's compiled function.
    pub fn script_function(&mut self, sha: &Sha) -> Result<c_int, String> {
        let Some(cached) = self.script(sha) else {
            return Err("NOSCRIPT No matching script. Please use EVAL.".into());
        };
        if let Some(f) = &cached.func {
            return Ok(f.key.id());
        }
        let info = cached.info.clone();
        let (_, shebang_len) = crate::scripting::parse_shebang(&info.body).map_err(|e| format!("ERR {e}"))?;
        let f = Compiled::new(&self.lua, self.compile(&info.body[shebang_len..])?)?;
        let id = f.key.id();
        if let Some(c) = self.scripts.get_mut(sha) {
            c.func = Some(f);
        }
        Ok(id)
    }

    fn compile(&self, code: &[u8]) -> Result<Function, String> {
        // The shebang line was cut but its newline kept: line numbers hold.
        self.lua
            .load(code)
            .set_name("@user_script")
            // Precompiled bytecode is not verified by Lua 5.1 and can read
            // and write outside the VM: scripts are text only. Redis's Lua
            // parses such a chunk as text and fails on its first byte; we
            // answer with the same message.
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = compile_message(&e);
                let msg = if msg.contains("attempt to load a binary chunk") {
                    "user_script:1: unexpected symbol near 'char(27)'".to_string()
                } else {
                    msg
                };
                format!("ERR Error compiling script (new function): {msg}")
            })
    }

    /// A function registered by a library, loading the library into this VM
    /// if needed.
    pub fn function(&mut self, name: &str) -> Result<(Arc<FunctionInfo>, c_int), String> {
        if let Some(c) = self.functions.get(&*function_key(name)) {
            return Ok((c.info.clone(), c.func.key.id()));
        }
        let Some((_, code)) = self.scripting.function(name) else {
            return Err("ERR Function not found".into());
        };
        let (_, registered) = self.load_library(&code)?;
        let libs = self.scripting.libraries();
        let mut compiled = Vec::with_capacity(registered.len());
        for r in registered {
            if let Some(info) = libs.funcs.get(&*function_key(&r.name)) {
                compiled.push((r.name, info.clone(), r.func));
            }
        }
        drop(libs);
        for (name, info, func) in compiled {
            let func = Compiled::new(&self.lua, func)?;
            self.functions.insert(function_key(&name).into_owned(), CachedFunction { info, func });
        }
        self.functions.get(&*function_key(name)).map(|c| (c.info.clone(), c.func.key.id())).ok_or_else(|| "ERR Function not found".into())
    }

    /// A function's flags and whether it is known to need the wide lock.
    pub fn function_meta(&mut self, name: &str) -> Result<(u32, bool), String> {
        if let Some(c) = self.functions.get(&*function_key(name)) {
            return Ok((c.info.flags, c.info.wide.load(Relaxed)));
        }
        let (info, _) = self.function(name)?;
        Ok((info.flags, info.wide.load(Relaxed)))
    }

    /// Records that a script or function had to be run again under the
    /// wide lock, so later runs take it straight away.
    pub fn mark_wide(&mut self, kind: &exec::Kind) {
        match kind {
            exec::Kind::Script { sha, .. } => {
                if let Some(c) = self.script(sha) {
                    c.info.wide.store(true, Relaxed);
                }
            }
            exec::Kind::Function { name } => {
                if let Some(c) = self.functions.get(&*function_key(name)) {
                    c.info.wide.store(true, Relaxed);
                }
            }
        }
    }

    /// Compiles and runs a library's code, collecting the functions it
    /// registers. Returns the library name and the functions.
    pub fn load_library(&mut self, code: &[u8]) -> Result<(String, Vec<exec::Registered>), String> {
        let meta = super::functions::parse_metadata(code).map_err(|e| format!("ERR {e}"))?;
        let (env, finish): (Table, Function) = self.library_env.call(()).map_err(|e| format!("ERR {e}"))?;
        let chunk = self
            .lua
            .load(&code[meta.header_len..])
            .set_name("@user_function")
            .set_mode(ChunkMode::Text)
            .set_environment(env)
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", compile_message(&e)))?;
        let registered = exec::load_library(self, chunk)?;
        finish.call::<()>(()).map_err(|e| format!("ERR {e}"))?;
        if registered.is_empty() {
            return Err("ERR No functions registered".into());
        }
        Ok((meta.name, registered))
    }
}

impl Raw {
    fn new(lua: &Lua, runner: &Function, env: &Table) -> mlua::Result<Raw> {
        let mut keep = Vec::new();
        let mut reg = |v: Value| -> mlua::Result<c_int> {
            let key = lua.create_registry_value(v)?;
            let id = key.id();
            keep.push(key);
            Ok(id)
        };
        // SAFETY: follows the Lua C API contract (see there).
        let entry = reg(Value::Function(unsafe { lua.create_c_function(exec::entry)? }))?;
        let runner = reg(Value::Function(runner.clone()))?;
        let env_id = reg(Value::Table(env.clone()))?;
        let (keys_t, argv_t) = (lua.create_table()?, lua.create_table()?);
        env.raw_set("KEYS", &keys_t)?;
        env.raw_set("ARGV", &argv_t)?;
        let keys = reg(Value::Table(keys_t))?;
        let argv = reg(Value::Table(argv_t))?;
        let keys_name = reg(Value::String(lua.create_string("KEYS")?))?;
        let argv_name = reg(Value::String(lua.create_string("ARGV")?))?;
        let slot = lua.create_registry_value(true)?;
        Ok(Raw {
            state: lua.state(),
            entry,
            runner,
            env: env_id,
            keys,
            argv,
            keys_name,
            argv_name,
            slot,
            keys_len: 0,
            argv_len: 0,
            _keep: keep,
        })
    }
}

/// The message of a compile error, as Lua words it (`user_script:1: ...`).
fn compile_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `7.2.4` -> 0x070204, as REDIS_VERSION_NUM.
fn version_number(v: &str) -> i64 {
    v.split('.').take(3).fold(0, |acc, p| acc * 256 + p.parse::<i64>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonumber_as_lua() {
        // Ours in the sandbox against the standard one in a plain state,
        // each expression shown with Lua's tostring.
        let vm = Vm::new(Scripting::new(crate::commands::is_command)).unwrap();
        let stock = Lua::new();
        let run = |lua: &Lua, env: Option<&Table>, expr: &str| -> String {
            let mut chunk = lua.load(format!("return tostring({expr})")).set_name("=t");
            if let Some(env) = env {
                chunk = chunk.set_environment(env.clone());
            }
            match chunk.call::<Value>(()) {
                Ok(v) => v.to_string().unwrap_or_default(),
                Err(e) => format!("error: {}", e.to_string().lines().next().unwrap_or_default()),
            }
        };
        let cases: &[(&str, &str)] = &[
            ("tonumber('42')", "42"),
            ("tonumber('-42')", "-42"),
            ("1 / tonumber('-0')", "-inf"),
            ("tonumber('007')", "7"),
            ("tonumber('999999999999999') - 999999999999998", "1"),
            ("tonumber('-123456789012345') + 123456789012344", "-1"),
            ("tonumber('12345678901234567890')", "1.2345678901235e+19"),
            ("tonumber(' 12 ')", "12"),
            ("tonumber('1e3')", "1000"),
            ("tonumber('0x10')", "16"),
            ("tonumber('1.5')", "1.5"),
            ("tonumber('')", "nil"),
            ("tonumber('-')", "nil"),
            ("tonumber('--1')", "nil"),
            ("tonumber('12a')", "nil"),
            ("tonumber(12)", "12"),
            ("tonumber({})", "nil"),
            ("tonumber('ff', 16)", "255"),
            ("tonumber(' z ', 36)", "35"),
            ("tonumber('8', 8)", "nil"),
            ("tonumber('10', 10)", "10"),
            ("tonumber('10', nil)", "10"),
            ("tonumber('10', '16')", "16"),
            ("tonumber()", "error: runtime error: t:1: bad argument #1 to 'tonumber' (value expected)"),
            ("tonumber('1', 99)", "error: runtime error: t:1: bad argument #2 to 'tonumber' (base out of range)"),
            ("tonumber('1', 'x')", "error: runtime error: t:1: bad argument #2 to 'tonumber' (number expected, got string)"),
            ("tonumber({}, 16)", "error: runtime error: t:1: bad argument #1 to 'tonumber' (string expected, got table)"),
        ];
        for (expr, want) in cases {
            assert_eq!(run(&vm.lua, Some(&vm.env), expr), *want, "{expr}");
            assert_eq!(run(&stock, None, expr), *want, "standard: {expr}");
        }
    }

    #[test]
    fn version_numbers() {
        assert_eq!(version_number("7.2.4"), 0x070204);
    }
}
