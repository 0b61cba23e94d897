//! MODULE: what this server says about Redis modules. It loads none (it is
//! not redis-server and has no module API), but RedisJSON's commands are
//! built in, so MODULE LIST and INFO `modules` show one module, `ReJSON`,
//! at the RedisJSON version whose semantics the JSON.* commands follow, as
//! tools that look for JSON there (RedisInsight, client libraries) expect.
//! LOAD, LOADEX and UNLOAD are refused unless `enable-module-command`
//! allows them, as in Redis 7; allowed, a load fails as a failed load does
//! in Redis and the built-in module cannot be unloaded (it exports a data
//! type, `ReJSON-RL`).

use std::fmt::Write;

use bytes::Bytes;

use super::persistence::protection_allows;
use super::{cmd, flag::*, sub, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::util::eq_ic;

/// The built-in module's name, as RedisJSON registers it.
pub const JSON_MODULE: &str = "ReJSON";

/// The RedisJSON version the JSON.* commands and the `ReJSON-RL` type
/// follow (2.6.24), as RedisJSON reports it (major*10000 + minor*100 +
/// patch).
pub const JSON_MODULE_VERSION: i64 = 20624;

const MODULE: Exec = Exec::Coord(handler!(|cx, a| module(cx, a)));
const ADM: &[&str] = &["admin", "slow", "dangerous"];
/// MODULE LOAD, LOADEX and UNLOAD. Redis also marks them PROTECTED (which
/// COMMAND hides; here that is `allowed`) and NO_ASYNC_LOADING (there is
/// no asynchronous loading here to mark them for).
const PROTECTED: u32 = ADMIN | NOSCRIPT;

pub static COMMANDS: &[CommandSpec] = &[cmd("module", -2, 0, (0, 0, 0), &["slow"], "server", "A container for module commands.", MODULE)
    .subcommands(&[
        sub("module|help", 2, LOADING | STALE, (0, 0, 0), &["slow"], "Returns helpful text about the different subcommands.", MODULE),
        sub("module|list", 2, ADMIN | NOSCRIPT, (0, 0, 0), ADM, "Returns all loaded modules.", MODULE)
            .tips(&["nondeterministic_output_order"]),
        sub("module|load", -3, PROTECTED, (0, 0, 0), ADM, "Loads a module.", MODULE),
        sub("module|loadex", -3, PROTECTED, (0, 0, 0), ADM, "Loads a module using extended parameters.", MODULE),
        sub("module|unload", 3, PROTECTED, (0, 0, 0), ADM, "Unloads a module.", MODULE),
    ])];

const HELP: &[&str] = &[
    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
    "HELP",
    "    Prints this help.",
];

/// The INFO `modules` section's line for the built-in module, in Redis's
/// shape less `api` (the module API version a module was built against:
/// there is no module API here). No command filters, no modules using or
/// used by it, no module options.
pub fn write_info(text: &mut String) {
    let _ = write!(text, "module:name={JSON_MODULE},ver={JSON_MODULE_VERSION},filters=0,usedby=[],using=[],options=[]\r\n");
}

/// The path MODULE LIST gives the built-in module: Redis prints the file
/// a module was loaded from, and RedisJSON's commands here live in this
/// server's own executable.
fn json_module_path() -> String {
    std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()
}

fn module(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_uppercase();
    if matches!(sub.as_slice(), b"LOAD" | b"LOADEX" | b"UNLOAD") && !allowed(cx)? {
        return Err(CmdError::err(
            "MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ));
    }
    match (sub.as_slice(), args.len()) {
        (b"HELP", 2) => cx.out().help(HELP),
        (b"LIST", 2) => {
            let out = cx.out();
            out.array(1);
            out.map(4);
            out.bulk(b"name");
            out.bulk(JSON_MODULE.as_bytes());
            out.bulk(b"ver");
            out.int(JSON_MODULE_VERSION);
            out.bulk(b"path");
            out.bulk(json_module_path().as_bytes());
            out.bulk(b"args");
            out.array(0);
        }
        (b"LOAD" | b"LOADEX", n) if n >= 3 => {
            tracing::warn!(
                "MODULE {}: this server does not load modules (RedisJSON's commands are built in); not loading '{}'",
                String::from_utf8_lossy(&sub),
                String::from_utf8_lossy(&args[2])
            );
            return Err(CmdError::err("Error loading the extension. Please check the server logs."));
        }
        // Redis looks module names up without regard to case.
        (b"UNLOAD", 3) if eq_ic(&args[2], JSON_MODULE) => {
            return Err(CmdError::err("Error unloading module: the module exports one or more module-side data types, can't unload"))
        }
        (b"UNLOAD", 3) => return Err(CmdError::err("Error unloading module: no such module with that name")),
        _ => return Err(CmdError::subcommand_syntax("MODULE", &args[1])),
    }
    Ok(())
}

/// Whether `enable-module-command` lets this client load and unload.
fn allowed(cx: &mut dyn Coord) -> CmdResult<bool> {
    let engine = cx.engine().clone();
    protection_allows(cx, &engine.cfg.enable_module_command)
}
