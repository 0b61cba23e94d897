//! One run on the Lua stack: the `entry` C function a run calls under
//! `lua_pcall` (setting KEYS and ARGV, or passing a function its keys and
//! arguments), reading its results into the reply, and running a
//! library's top-level code while it registers functions.

use super::*;

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
pub(super) fn run(vm: &mut Vm, target: Target<'_>, inv: &Invocation, out: &mut Out, func: Option<c_int>) -> bool {
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
