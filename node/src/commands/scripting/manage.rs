//! SCRIPT and FUNCTION: the script cache, the function libraries (load,
//! list, delete, dump, restore, stats) and killing a running script.

use bytes::Bytes;

use super::vm::with_vm;
use super::{busy_error, functions};
use crate::commands::{BusyAnswer, Coord};
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::scripting::{flags, parse_sha, sha1_hex};
use crate::shard::scripts::{FunctionInfo, KillResult, Libraries, Library, Scripting};
use crate::shard::Engine;
use crate::util::{eq_ic, glob_match};

fn help(cx: &mut dyn Coord, lines: &[&str]) {
    cx.out().help(lines);
}

fn kill_reply(cx: &mut dyn Coord, r: KillResult, functions: bool) -> CmdResult {
    kill_outcome(r, functions)?;
    cx.out().ok();
    Ok(())
}

/// SCRIPT KILL / FUNCTION KILL answered by the busy hook.
pub(super) fn kill_busy(engine: &Engine, out: &mut Out, functions: bool) -> CmdResult<BusyAnswer> {
    kill_outcome(engine.scripting.kill(functions), functions)?;
    out.ok();
    Ok(BusyAnswer::Replied)
}

/// SCRIPT KILL / FUNCTION KILL's reply: `Ok` for +OK, else Redis's error.
fn kill_outcome(r: KillResult, functions: bool) -> CmdResult {
    match r {
        KillResult::Killed => Ok(()),
        KillResult::NotBusy => Err(CmdError::Other("NOTBUSY No scripts in execution right now.".into())),
        KillResult::Unkillable => Err(CmdError::Other(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.".into(),
        )),
        KillResult::WrongKind => Err(busy_error(!functions)),
    }
}

/// SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP.
pub fn script(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (scripting, cfg) = (cx.engine().scripting.clone(), cx.engine().cfg.clone());
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"LOAD" => {
            let body = args[2].clone();
            let sha = sha1_hex(&body);
            with_vm(&scripting, &cfg, |vm| vm.script_for_body(&sha, &body, true)).map_err(CmdError::Other)?;
            cx.out().bulk(&sha);
        }
        b"EXISTS" => {
            cx.out().array(args.len() - 2);
            for a in &args[2..] {
                let found = parse_sha(a).is_some_and(|s| scripting.script_exists(&s));
                cx.out().int(found as i64);
            }
        }
        b"FLUSH" => {
            match args.len() {
                2 => {}
                3 if eq_ic(&args[2], "SYNC") || eq_ic(&args[2], "ASYNC") => {}
                _ => return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option")),
            }
            scripting.flush_scripts();
            cx.out().ok();
        }
        b"KILL" => {
            return kill_reply(cx, scripting.kill(false), false);
        }
        b"DEBUG" => return Err(CmdError::err("SCRIPT DEBUG is not supported by this server")),
        b"HELP" => help(
            cx,
            &[
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Print this help.",
            ],
        ),
        _ => return Err(CmdError::unknown_subcommand("script", &args[1])),
    }
    Ok(())
}

/// Loads a library's code on this thread's VM, checking it and collecting
/// the functions it registers.
fn build_library(cx: &mut dyn Coord, code: Bytes) -> CmdResult<Library> {
    compile_library(cx.engine(), code).map_err(CmdError::Other)
}

/// Compiles a library on this thread's VM.
fn compile_library(engine: &Engine, code: Bytes) -> Result<Library, String> {
    let (name, registered) = with_vm(&engine.scripting, &engine.cfg, |vm| {
        let r = vm.load_library(&code);
        vm.after_run();
        r
    })?;
    let functions = registered
        .into_iter()
        .map(|r| {
            std::sync::Arc::new(FunctionInfo {
                name: r.name,
                library: name.clone(),
                flags: r.flags,
                description: r.description,
                wide: Default::default(),
            })
        })
        .collect();
    Ok(Library { name, code, functions })
}

/// Replaces every function library with those of `codes` (loading a
/// snapshot); errors name the library that failed.
pub fn restore_libraries(engine: &crate::shard::Engine, codes: &[Vec<u8>]) -> Result<(), String> {
    let mut next = Libraries::default();
    for code in codes {
        let lib = compile_library(engine, Bytes::copy_from_slice(code))?;
        next.add(lib, false)?;
    }
    *engine.scripting.libraries() = next;
    engine.scripting.libraries_changed();
    Ok(())
}

/// FUNCTION, whose changes of the libraries (LOAD, DELETE, FLUSH,
/// RESTORE) go to the journal and the replicas as sent, once they are
/// made, as Redis propagates them (libraries are no shard's data: only a
/// snapshot would keep them otherwise).
pub async fn function_journaled(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    function(cx, args)?;
    let changes = ["LOAD", "DELETE", "FLUSH", "RESTORE"].iter().any(|s| eq_ic(&args[1], s));
    if changes {
        let (db, args) = (cx.db(), args.to_vec());
        cx.run_on(0, move |sh| {
            let parts: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            sh.journal_db_command(db, &parts);
        })
        .await;
    }
    Ok(())
}

/// FUNCTION LOAD | LIST | DELETE | FLUSH | DUMP | RESTORE | STATS | KILL | HELP.
pub fn function(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let scripting = cx.engine().scripting.clone();
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"LOAD" => {
            let mut replace = false;
            let mut i = 2;
            while i < args.len() - 1 {
                if eq_ic(&args[i], "REPLACE") {
                    replace = true;
                    i += 1;
                    continue;
                }
                return Err(CmdError::err(format!("Unknown option given: {}", String::from_utf8_lossy(&args[i]))));
            }
            let lib = build_library(cx, Bytes::copy_from_slice(&args[args.len() - 1]))?;
            let name = lib.name.clone();
            scripting.libraries().add(lib, replace).map_err(CmdError::err)?;
            scripting.libraries_changed();
            cx.out().bulk(name.as_bytes());
        }
        b"DELETE" => {
            let name = String::from_utf8_lossy(&args[2]).into_owned();
            if scripting.libraries().remove(&name).is_none() {
                return Err(CmdError::err("Library not found"));
            }
            scripting.libraries_changed();
            cx.out().ok();
        }
        b"FLUSH" => {
            match args.len() {
                2 => {}
                3 if eq_ic(&args[2], "SYNC") || eq_ic(&args[2], "ASYNC") => {}
                3 => return Err(CmdError::err("FUNCTION FLUSH only supports SYNC|ASYNC option")),
                _ => return Err(CmdError::subcommand_syntax("function", &args[1])),
            }
            *scripting.libraries() = Libraries::default();
            scripting.libraries_changed();
            cx.out().ok();
        }
        b"LIST" => {
            let (mut with_code, mut pattern): (bool, Option<Bytes>) = (false, None);
            let mut i = 2;
            while i < args.len() {
                if !with_code && eq_ic(&args[i], "WITHCODE") {
                    with_code = true;
                } else if pattern.is_none() && eq_ic(&args[i], "LIBRARYNAME") {
                    if i + 1 >= args.len() {
                        return Err(CmdError::err("library name argument was not given"));
                    }
                    i += 1;
                    pattern = Some(args[i].clone());
                } else {
                    return Err(CmdError::err(format!("Unknown argument {}", String::from_utf8_lossy(&args[i]))));
                }
                i += 1;
            }
            let libs = scripting.libraries();
            let chosen: Vec<&Library> =
                libs.libs.values().filter(|l| pattern.as_ref().is_none_or(|p| glob_match(p, l.name.as_bytes(), false))).collect();
            let out = cx.out();
            out.array(chosen.len());
            for l in chosen {
                out.map(if with_code { 4 } else { 3 });
                out.bulk(b"library_name");
                out.bulk(l.name.as_bytes());
                out.bulk(b"engine");
                out.bulk(b"LUA");
                out.bulk(b"functions");
                out.array(l.functions.len());
                for f in &l.functions {
                    out.map(3);
                    out.bulk(b"name");
                    out.bulk(f.name.as_bytes());
                    out.bulk(b"description");
                    match &f.description {
                        Some(d) => out.bulk(d.as_bytes()),
                        None => out.nil(),
                    }
                    out.bulk(b"flags");
                    let names: Vec<&str> = flags::NAMES.iter().filter(|(b, _)| f.flags & b != 0).map(|(_, n)| *n).collect();
                    out.set(names.len());
                    for n in names {
                        out.simple(n);
                    }
                }
                if with_code {
                    out.bulk(b"library_code");
                    out.bulk(&l.code);
                }
            }
        }
        b"DUMP" => {
            let libs = scripting.libraries();
            let codes: Vec<&[u8]> = libs.libs.values().map(|l| &l.code[..]).collect();
            let payload = functions::dump(&codes);
            drop(libs);
            cx.out().bulk(&payload);
        }
        b"RESTORE" => {
            if args.len() > 4 {
                return Err(CmdError::subcommand_syntax("function", &args[1]));
            }
            #[derive(PartialEq)]
            enum Policy {
                Append,
                Replace,
                Flush,
            }
            let policy = match args.get(3) {
                None => Policy::Append,
                Some(p) if eq_ic(p, "APPEND") => Policy::Append,
                Some(p) if eq_ic(p, "REPLACE") => Policy::Replace,
                Some(p) if eq_ic(p, "FLUSH") => Policy::Flush,
                Some(_) => return Err(CmdError::err("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")),
            };
            let codes = functions::restore(&args[2]).map_err(CmdError::err)?;
            let mut built = Vec::with_capacity(codes.len());
            for code in codes {
                built.push(build_library(cx, Bytes::from(code))?);
            }
            let mut libs = scripting.libraries();
            let mut next = if policy == Policy::Flush { Libraries::default() } else { libs.clone() };
            for lib in built {
                // RESTORE names the library without quotes (Redis's
                // libraryJoin), unlike FUNCTION LOAD.
                if policy != Policy::Replace && next.libs.contains_key(&lib.name) {
                    return Err(CmdError::err(format!("Library {} already exists", lib.name)));
                }
                next.add(lib, policy == Policy::Replace).map_err(CmdError::err)?;
            }
            *libs = next;
            drop(libs);
            scripting.libraries_changed();
            cx.out().ok();
        }
        b"STATS" => {
            function_stats(&scripting, cx.out());
        }
        b"KILL" => {
            return kill_reply(cx, scripting.kill(true), true);
        }
        b"HELP" => help(
            cx,
            &[
                "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "LOAD [REPLACE] <FUNCTION CODE>",
                "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>",
                "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                "    Return general information on all the libraries.",
                "FLUSH [ASYNC|SYNC]",
                "    Delete all the libraries.",
                "DUMP",
                "    Return a serialized payload representing the current libraries.",
                "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                "    Restore the libraries represented by the given payload.",
                "STATS",
                "    Return information about the current function running.",
                "KILL",
                "    Kill the current running function.",
                "HELP",
                "    Print this help.",
            ],
        ),
        _ => return Err(CmdError::unknown_subcommand("function", &args[1])),
    }
    Ok(())
}

/// FUNCTION STATS's reply (also answered by the busy hook).
pub(super) fn function_stats(scripting: &Scripting, out: &mut Out) {
    let running = scripting.running_function();
    let (nlibs, nfuncs) = {
        let l = scripting.libraries();
        (l.libs.len(), l.funcs.len())
    };
    out.map(2);
    out.bulk(b"running_script");
    match running {
        Some((name, command, ms)) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name.as_bytes());
            out.bulk(b"command");
            out.array(command.len());
            for c in &command {
                out.bulk(c);
            }
            out.bulk(b"duration_ms");
            out.int(ms as i64);
        }
        None => out.nil(),
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(nlibs as i64);
    out.bulk(b"functions_count");
    out.int(nfuncs as i64);
}
