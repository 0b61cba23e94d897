//! `redis.call` / `redis.pcall`: reading a command from the Lua stack,
//! running it where it belongs (`RunCtx::dispatch`) and pushing its reply
//! back, and how number arguments are written.

use super::*;

pub(super) fn abort_error() -> mlua::Error {
    mlua::Error::RuntimeError("script aborted".into())
}

/// `redis.call`: runs the command and raises the error table of a failed
/// one. A C function (so a script's `return redis.call(...)` is not a tail
/// call that would hide the script's frame from error locations) working on
/// the Lua stack directly: arguments are read and the reply pushed without
/// intermediate handles.
///
/// # Safety
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn redis_call_c(state: *mut ffi::lua_State) -> c_int {
    call_c(state, true)
}

/// `redis.pcall`: as `redis.call`, but a failed command's error table is
/// returned rather than raised.
///
/// # Safety
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn redis_pcall_c(state: *mut ffi::lua_State) -> c_int {
    call_c(state, false)
}

/// The body of both: the Rust work (reading arguments, running the command)
/// happens inside `current`, which reads the Lua stack without raising;
/// only then is the reply pushed and, maybe, raised. When Lua raises (out of
/// memory, or the error itself) this frame holds nothing that needs dropping.
unsafe fn call_c(state: *mut ffi::lua_State, raise: bool) -> c_int {
    const NO_RUN: &[u8] = b"-ERR redis.call is not available here\r\n";
    let n = ffi::lua_gettop(state);
    let reply: Option<Option<(*const u8, usize)>> = current(|ctx| {
        // SAFETY: `state` is the running Lua state; `call_stack` only reads it.
        match unsafe { ctx.call_stack(state, n) } {
            Ok(()) => Some((ctx.scratch.reply.buf.as_ptr(), ctx.scratch.reply.buf.len())),
            Err(Escalate) => None,
        }
    });
    let (ptr, len) = match reply {
        None => (NO_RUN.as_ptr(), NO_RUN.len()),
        Some(Some(r)) => r,
        Some(None) => {
            ffi::lua_pushstring(state, c"script aborted".as_ptr());
            ffi::lua_error(state);
        }
    };
    // SAFETY: the buffer belongs to the VM's scratch space, which outlives
    // this call and is not touched while the reply is pushed.
    let reply = std::slice::from_raw_parts(ptr, len);
    let failed = reply.first() == Some(&b'-');
    // The arguments were copied: their slots make room for the reply (a
    // call with thousands of them leaves none under Lua's C stack limit).
    ffi::lua_settop(state, 0);
    let mut pos = 0;
    crate::scripting::convert::push_resp(state, reply, &mut pos, 0);
    if failed && raise {
        ffi::lua_error(state);
    }
    1
}

impl RunCtx<'_> {
    /// Runs the command whose arguments are the `n` values on the Lua
    /// stack, leaving its reply (or an error reply) in `self.out`.
    /// `Err(Escalate)` when the run is abandoned (escalation or kill).
    ///
    /// # Safety
    /// `state` must be the running Lua state. Only non-raising Lua API
    /// functions are used on it.
    unsafe fn call_stack(&mut self, state: *mut ffi::lua_State, n: c_int) -> Result<(), Escalate> {
        if self.escalate || self.killed {
            return Err(Escalate);
        }
        let s = &mut *self.scratch;
        s.reply.buf.clear();
        s.reply.resp3 = self.resp3;
        if n < 1 {
            s.reply.error_text("ERR Please specify at least one argument for this redis lib call");
            return Ok(());
        }
        // All arguments share one buffer, reused from call to call.
        s.argv.clear();
        s.arg_lens.clear();
        if s.arg_bytes.capacity() > ARG_BUF_KEEP {
            s.arg_bytes = BytesMut::new();
        }
        let mut number = itoa::Buffer::new();
        for i in 1..=n {
            let start = s.arg_bytes.len();
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    if !p.is_null() {
                        s.arg_bytes.extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
                    }
                }
                ffi::LUA_TNUMBER => {
                    let v = ffi::lua_tonumber(state, i);
                    match integral_arg(v) {
                        Some(i) => s.arg_bytes.extend_from_slice(number.format(i).as_bytes()),
                        None => s.arg_bytes.extend_from_slice(&number_arg(v)),
                    }
                }
                _ => {
                    s.arg_bytes.clear();
                    s.reply.error_text("ERR Lua redis lib command arguments must be strings or integers");
                    return Ok(());
                }
            }
            s.arg_lens.push(s.arg_bytes.len() - start);
        }
        let mut all = s.arg_bytes.split().freeze();
        for &len in &s.arg_lens {
            let arg = all.split_to(len);
            // A big argument may be stored as it is (SET keeps it without a
            // copy): give it a buffer of its own, not a share of this one.
            s.argv.push(if len >= crate::resp::parse::BIG_ARG { Bytes::copy_from_slice(&arg) } else { arg });
        }
        drop(all);
        let fail = |s: &mut Scratch, msg: &str| {
            s.argv.clear();
            s.reply.error_text(msg);
            Ok(())
        };
        // A container's subcommand has its own arity and flags (CLIENT KILL
        // is noscript, OBJECT ENCODING is not).
        let Some(spec) = s.commands.lookup(&s.argv[0]).and_then(|c| c.resolve(&s.argv)) else {
            return fail(s, "ERR Unknown Redis command called from script");
        };
        // Refused from here on: a rejected call of the command (Redis's
        // ERROR_COMMAND_REJECTED in scriptCall).
        let reject = |s: &mut Scratch, msg: &str| {
            commands::stats::reject(spec);
            fail(s, msg)
        };
        if !spec.arity_ok(s.argv.len()) {
            return reject(s, "ERR Wrong number of args calling Redis command from script");
        }
        if spec.has_flag(flag::NOSCRIPT) {
            return reject(s, "ERR This Redis command is not allowed from script");
        }
        if !spec.has_flag(flag::STALE) && self.target.engine().is_some_and(|e| e.repl.stale(&e.cfg)) {
            return reject(s, "ERR Can not execute the command on a stale replica");
        }
        if let Some(caller) = self.inv.and_then(|i| i.acl.as_ref()) {
            if let Err(e) = caller.check(self.target.engine(), spec, &s.argv) {
                return reject(s, &e);
            }
        }
        let write = spec.has_flag(flag::WRITE);
        // (Commands that may replicate count as writes here, so that a
        // read-only script can run under CLIENT PAUSE WRITE, as in Redis.)
        if (write || spec.has_flag(flag::MAY_REPLICATE)) && self.read_only {
            return reject(s, "ERR Write commands are not allowed from read-only scripts.");
        }
        if write && self.target.engine().is_some_and(|e| e.repl.read_only(&e.cfg)) {
            return reject(s, "READONLY You can't write against a read only replica.");
        }
        // Scripts without flags meet `min-replicas-to-write` at their
        // first write (once one went through, the script may finish).
        if write && !self.wrote && self.target.engine().is_some_and(|e| !e.repl.enough_replicas(&e.cfg)) {
            return reject(s, &crate::error::CmdError::NoReplicas.to_string());
        }
        if self.oom && !self.wrote && spec.has_flag(flag::DENYOOM) {
            return reject(s, "OOM command not allowed when used memory > 'maxmemory'.");
        }
        if let Target::None = self.target {
            return fail(s, "ERR redis.call is not available while loading a library");
        }
        if write {
            self.wrote = true;
            if let Some(b) = &self.busy {
                b.wrote.store(true, Relaxed);
            }
        }
        let mut argv = std::mem::take(&mut s.argv);
        let mut out = std::mem::replace(&mut s.reply, Out { buf: Vec::new(), resp3: false });
        let done = self.dispatch(spec, &argv, &mut out);
        argv.clear();
        self.scratch.reply = out;
        self.scratch.argv = argv;
        if done.is_err() {
            self.escalate = true;
        }
        done
    }

    /// Runs one command wherever it belongs, writing its reply.
    fn dispatch(&mut self, spec: &'static CommandSpec, argv: &[Bytes], out: &mut Out) -> Result<(), Escalate> {
        let now = self.now;
        let acl = self.inv.and_then(|i| i.acl.as_ref()).map(|c| c.user.clone());
        match &mut self.target {
            Target::None => Ok(()),
            Target::Fast(sh) => match spec.exec {
                Exec::Shard(_) | Exec::Split(..) => {
                    let (me, n) = (sh.id, sh.nshards());
                    if n > 1 && spec.key_indices(argv).any(|i| crate::slot::key_slot(&argv[i]) as usize % n != me) {
                        return Err(Escalate);
                    }
                    let db = self.db;
                    if !self.scratch.undo_dbs.contains(&db) {
                        if self.scratch.undo_dbs.is_empty() {
                            sh.hold_events();
                            sh.journal_script_begin();
                        }
                        sh.db(db).undo_begin();
                        self.scratch.undo_dbs.push(db);
                    }
                    let nanos = exec_one_at(sh, db, spec, argv, out, now);
                    if let Some(engine) = &sh.engine {
                        commands::observe::done(engine, spec, argv, db, nanos, None, true);
                    }
                    Ok(())
                }
                // A command that changes what others see outside the
                // shard (PUBLISH, FLUSHALL...) must not run twice, and a
                // fast run may start over: those go straight to wide mode.
                // The others run here until they need a shard.
                Exec::Coord(_) | Exec::Script(_) if spec.has_flag(flag::WRITE) || spec.has_flag(flag::PUBSUB) => Err(Escalate),
                Exec::Coord(_) | Exec::Script(_) => {
                    let Some(engine) = sh.engine.clone() else { return Err(Escalate) };
                    let mut cx =
                        ScriptCoord { engine, local: sh, tx: None, db: &mut self.db, out, now, escalate: false, running: None, acl };
                    cx.run(spec, argv)
                }
            },
            Target::Wide { local, engine, tx } => {
                let mut cx = ScriptCoord {
                    engine: (*engine).clone(),
                    local,
                    tx: Some(*tx),
                    db: &mut self.db,
                    out,
                    now,
                    escalate: false,
                    running: None,
                    acl,
                };
                cx.run(spec, argv)
            }
        }
    }
}

/// A number argument to `redis.call`, as Redis 7.2 writes it: integral
/// values in integer form, others in the shortest form that reads back the
/// same, laid out as its `fpconv_dtoa` does (plain up to a few zeros,
/// scientific otherwise: `1e+20`, `0.00001`, `1.5`).
pub fn number_arg(n: f64) -> Vec<u8> {
    if let Some(i) = integral_arg(n) {
        return itoa::Buffer::new().format(i).as_bytes().to_vec();
    }
    if !n.is_finite() {
        return crate::resp::reply::format_double(n).into_bytes();
    }
    let sci = format!("{:e}", n.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let nd = digits.len() as i32;
    let k = e - (nd - 1);
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if k >= 0 && e.abs() < nd + 7 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', k as usize));
    } else if k < 0 && (k > -7 || e.abs() < 4) {
        if e >= 0 {
            let (int, frac) = digits.split_at((e + 1) as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-e - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&e.abs().to_string());
    }
    out.into_bytes()
}

/// A number argument that `number_arg` writes in integer form.
fn integral_arg(n: f64) -> Option<i64> {
    (n.fract() == 0.0 && n.abs() <= 4.611686018427388e18).then_some(n as i64)
}
