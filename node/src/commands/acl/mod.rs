//! ACL: the ACL command (SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI,
//! CAT, LOG, DRYRUN, GENPASS, SAVE, LOAD, HELP), user authentication, and
//! the connection's view of its user (`Session::user`, looked up again
//! when the node's users change). The rules live in `rules`, the
//! permission check in `check`, the ACL file in `file`.

pub mod check;
pub mod file;
pub mod rules;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;

use super::{cmd, flag::*, sub, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::acl::User;
use crate::shard::Engine;
use crate::util::{eq_ic, parse_i64};

pub use check::{check, Caller, Context, Denied};

const ACL: Exec = Exec::Coord(handler!(|cx, a| acl(cx, a)));
const A: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const ALL_NODES: &[&str] = &["request_policy:all_nodes", "response_policy:all_succeeded"];

pub static COMMANDS: &[CommandSpec] = &[cmd("acl", -2, 0, (0, 0, 0), &[], "server", "A container for Access List Control commands.", ACL)
    .subcommands(&[
        sub("acl|cat", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), &[], "Lists the ACL categories, or the commands inside a category.", ACL),
        sub("acl|deluser", -3, A, (0, 0, 0), &[], "Deletes ACL users, and terminates their connections.", ACL).tips(ALL_NODES),
        sub("acl|dryrun", -4, A, (0, 0, 0), &[], "Simulates the execution of a command by a user, without executing the command.", ACL),
        sub(
            "acl|genpass",
            -2,
            NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            &[],
            "Generates a pseudorandom, secure password that can be used to identify ACL users.",
            ACL,
        ),
        sub("acl|getuser", 3, A, (0, 0, 0), &[], "Lists the ACL rules of a user.", ACL),
        sub("acl|help", 2, LOADING | STALE, (0, 0, 0), &[], "Returns helpful text about the different subcommands.", ACL),
        sub("acl|list", 2, A, (0, 0, 0), &[], "Dumps the effective rules in ACL file format.", ACL),
        sub("acl|load", 2, A, (0, 0, 0), &[], "Reloads the rules from the configured ACL file.", ACL),
        sub("acl|log", -2, A, (0, 0, 0), &[], "Lists recent security events generated due to ACL rules.", ACL),
        sub("acl|save", 2, A, (0, 0, 0), &[], "Saves the effective ACL rules in the configured ACL file.", ACL).tips(ALL_NODES),
        sub("acl|setuser", -3, A, (0, 0, 0), &[], "Creates and modifies an ACL user and its rules.", ACL).tips(ALL_NODES),
        sub("acl|users", 2, A, (0, 0, 0), &[], "Lists all ACL users.", ACL),
        sub(
            "acl|whoami",
            2,
            NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            &[],
            "Returns the authenticated username of the current connection.",
            ACL,
        ),
    ])];

/// Sets up the node's users at start-up: `requirepass` for the default
/// user, then the config file's `user` directives or the ACL file (not
/// both, as Redis refuses). An error stops the start.
pub fn init(engine: &Engine) -> Result<(), String> {
    let cfg = &engine.cfg;
    let pw = cfg.requirepass.lock().unwrap_or_else(|e| e.into_inner()).clone();
    set_default_password(engine, pw.as_deref());
    if !cfg.aclfile.is_empty() && !cfg.users.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    if !cfg.users.is_empty() {
        file::load_config_users(engine)?;
    }
    if !cfg.aclfile.is_empty() {
        file::load(engine).map_err(|e| format!("Aborting start-up because of ACL errors: {e}"))?;
    }
    Ok(())
}

/// `requirepass` (at start-up and by CONFIG SET): the default user's
/// passwords become this one, or `nopass` when empty, as in Redis.
pub fn set_default_password(engine: &Engine, password: Option<&str>) {
    let _ = engine.acl.update("default", |cur| -> Result<User, ()> {
        let mut u = cur.cloned().unwrap_or_else(User::default_user);
        u.passwords.clear();
        match password {
            Some(p) => {
                u.nopass = false;
                u.passwords.push(crate::shard::acl::hash_password(p.as_bytes()));
            }
            None => u.nopass = true,
        }
        Ok(u)
    });
    sync_default(engine);
}

/// Keeps `has_password` (whether new connections start unauthenticated)
/// in line with the default user: without `nopass`, or disabled, they do.
pub fn sync_default(engine: &Engine) {
    let d = engine.acl.default_user();
    engine.cfg.has_password.store(!(d.nopass && d.enabled), Relaxed);
}

/// The user `name` logs in as with `password`, or WRONGPASS (logged).
pub fn authenticate(engine: &Engine, name: &[u8], password: &[u8]) -> CmdResult<Arc<User>> {
    let user = std::str::from_utf8(name).ok().and_then(|n| engine.acl.get(n));
    match user {
        Some(u) if u.password_ok(password) => Ok(u),
        _ => Err(CmdError::WrongPass),
    }
}

/// Whether AUTH's one-argument form makes sense: the default user has a
/// password (else Redis's error).
pub fn default_has_password(engine: &Engine) -> bool {
    !engine.acl.default_user().nopass
}

fn acl(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let engine = cx.engine().clone();
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"setuser" => setuser(cx, &engine, args),
        b"deluser" => {
            let names: Vec<&str> = args[2..].iter().map(|a| std::str::from_utf8(a).unwrap_or("")).collect();
            if names.contains(&"default") {
                return Err(CmdError::err("The 'default' user cannot be removed"));
            }
            let n = engine.acl.delete(&names);
            // Their connections are closed (this one after its reply).
            engine.clients.kill(|c| names.contains(&c.user().as_str()));
            cx.out().int(n as i64);
            Ok(())
        }
        b"getuser" => {
            let user = std::str::from_utf8(&args[2]).ok().and_then(|n| engine.acl.get(n));
            match user {
                None => cx.out().nil(),
                Some(u) => getuser(cx, &u),
            }
            Ok(())
        }
        b"list" | b"users" => {
            let users = engine.acl.users();
            let out = cx.out();
            out.array(users.len());
            for u in users {
                if sub.as_slice() == b"users" {
                    out.bulk(u.name.as_bytes());
                } else {
                    out.bulk(format!("user {} {}", u.name, rules::describe_user(&u)).as_bytes());
                }
            }
            Ok(())
        }
        b"whoami" => {
            let name = cx.client()?.user.name.clone();
            cx.out().bulk(name.as_bytes());
            Ok(())
        }
        b"load" | b"save" if engine.cfg.aclfile.is_empty() => Err(CmdError::err(
            "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.",
        )),
        b"load" => {
            file::load(&engine).map_err(CmdError::err)?;
            cx.out().ok();
            Ok(())
        }
        b"save" => {
            file::save(&engine).map_err(|e| {
                tracing::warn!("ACL SAVE: {e}");
                CmdError::err("There was an error trying to save the ACLs. Please check the server logs for more information")
            })?;
            cx.out().ok();
            Ok(())
        }
        b"cat" => cat(cx, args),
        b"genpass" => {
            let bits = match args.get(2) {
                Some(a) => parse_i64(a)?,
                None => 256,
            };
            if args.len() > 3 {
                return Err(CmdError::subcommand_syntax("acl", &args[1]));
            }
            if bits <= 0 || bits > 4096 {
                return Err(CmdError::err(
                    "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                ));
            }
            let chars = (bits as usize).div_ceil(4);
            let mut pass = String::with_capacity(chars);
            for _ in 0..chars {
                pass.push(char::from(b"0123456789abcdef"[rand::random::<u8>() as usize % 16]));
            }
            cx.out().bulk(pass.as_bytes());
            Ok(())
        }
        b"log" => log(cx, &engine, args),
        b"dryrun" => {
            let user = std::str::from_utf8(&args[2]).ok().and_then(|n| engine.acl.get(n));
            let Some(user) = user else {
                return Err(CmdError::err(format!("User '{}' not found", String::from_utf8_lossy(&args[2]))));
            };
            let line = &args[3..];
            let Ok(spec) = super::lookup_args(line) else {
                return Err(CmdError::err(format!("Command '{}' not found", String::from_utf8_lossy(&args[3]))));
            };
            if !spec.arity_ok(line.len()) {
                return Err(CmdError::err(format!("wrong number of arguments for '{}' command", spec.name)));
            }
            match check(&user, spec, line) {
                Ok(()) => cx.out().ok(),
                Err(d) => cx.out().bulk(d.dryrun_text(spec, line).as_bytes()),
            }
            Ok(())
        }
        b"help" => {
            cx.out().help(HELP);
            Ok(())
        }
        _ => Err(CmdError::UnknownSubcommand { cmd: "ACL".into(), sub: String::from_utf8_lossy(&args[1]).into_owned() }),
    }
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];

fn setuser(cx: &mut dyn Coord, engine: &Engine, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    if rules::has_spaces(name) {
        return Err(CmdError::err("Usernames can't contain spaces or null characters"));
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let ops: Vec<&[u8]> = args[3..].iter().map(|a| &a[..]).collect();
    let user = engine.acl.update(&name, |cur| rules::apply(cur, &name, &ops)).map_err(CmdError::Other)?;
    check::kill_pubsub_clients(engine, &user);
    if name == "default" {
        sync_default(engine);
    }
    cx.out().ok();
    Ok(())
}

fn getuser(cx: &mut dyn Coord, u: &User) {
    let out = cx.out();
    out.map(6);
    out.bulk(b"flags");
    let flags = rules::flags(u);
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    out.array(u.passwords.len());
    for p in &u.passwords {
        out.bulk(p.as_bytes());
    }
    selector_fields(out, &u.selectors[0]);
    out.bulk(b"selectors");
    out.array(u.selectors.len() - 1);
    for s in &u.selectors[1..] {
        out.map(3);
        selector_fields(out, s);
    }
}

/// A selector's `commands`, `keys` and `channels` fields (GETUSER).
fn selector_fields(out: &mut crate::resp::Out, s: &crate::shard::acl::Selector) {
    out.bulk(b"commands");
    out.bulk(rules::describe_commands(s).as_bytes());
    out.bulk(b"keys");
    if s.all_keys {
        out.bulk(b"~*");
    } else {
        out.bulk(s.keys.iter().map(rules::key_rule).collect::<Vec<_>>().join(" ").as_bytes());
    }
    out.bulk(b"channels");
    if s.all_channels {
        out.bulk(b"&*");
    } else {
        let text: Vec<String> = s.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect();
        out.bulk(text.join(" ").as_bytes());
    }
}

fn cat(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {
            let out = cx.out();
            out.array(rules::CATEGORIES.len());
            for c in rules::CATEGORIES {
                out.bulk(c.as_bytes());
            }
        }
        3 => {
            let mask = rules::category(&args[2])
                .ok_or_else(|| CmdError::err(format!("Unknown category '{}'", String::from_utf8_lossy(&args[2]))))?;
            let names: Vec<&str> = rules::in_category(mask).map(|i| rules::spec(i).name).collect();
            let out = cx.out();
            out.array(names.len());
            for n in names {
                out.bulk(n.as_bytes());
            }
        }
        _ => return Err(CmdError::subcommand_syntax("acl", &args[1])),
    }
    Ok(())
}

fn log(cx: &mut dyn Coord, engine: &Engine, args: &[Bytes]) -> CmdResult {
    let mut count = 10i64;
    match args.len() {
        2 => {}
        3 if eq_ic(&args[2], "RESET") => {
            engine.acl.log_reset();
            cx.out().ok();
            return Ok(());
        }
        3 => count = parse_i64(&args[2])?.max(0),
        _ => return Err(CmdError::subcommand_syntax("acl", &args[1])),
    }
    let entries = engine.acl.log_entries(count as usize);
    let now = crate::util::now_ms();
    let out = cx.out();
    out.array(entries.len());
    for e in entries {
        out.map(7);
        out.bulk(b"count");
        out.int(e.count as i64);
        out.bulk(b"reason");
        out.bulk(e.reason.as_bytes());
        out.bulk(b"context");
        out.bulk(e.context.as_bytes());
        out.bulk(b"object");
        out.bulk(e.object.as_bytes());
        out.bulk(b"username");
        out.bulk(e.username.as_bytes());
        out.bulk(b"age-seconds");
        out.double(now.saturating_sub(e.ctime) as f64 / 1000.0);
        out.bulk(b"client-info");
        out.bulk(e.client_info.as_bytes());
    }
    Ok(())
}
