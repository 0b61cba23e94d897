//! CLIENT: the connection's own settings (ID, SETNAME, GETNAME, SETINFO,
//! REPLY, NO-EVICT, NO-TOUCH; TRACKING, CACHING, GETREDIR and TRACKINGINFO
//! are `commands::tracking`'s) and the node's clients as operators
//! see them (LIST, INFO, KILL, PAUSE, UNPAUSE, UNBLOCK), over the registry
//! in `shard::clients`.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::session::Reply;
use super::{cmd, flag::*, sub, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::clients::{ClientInfo, ClientType};
use crate::util::{eq_ic, parse_i64};

const CS: &[&str] = &["slow", "connection"];
const CA: &[&str] = &["admin", "slow", "dangerous", "connection"];

const CLIENT: Exec = Exec::Coord(handler!(|cx, a| client(cx, a)));

pub static COMMANDS: &[CommandSpec] =
    &[cmd("client", -2, 0, (0, 0, 0), &["slow"], "connection", "A container for client connection commands.", CLIENT).subcommands(&[
        sub("client|id", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), CS, "Returns the unique client ID of the connection.", CLIENT),
        sub("client|setname", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), CS, "Sets the connection name.", CLIENT)
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        sub("client|getname", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), CS, "Returns the name of the connection.", CLIENT),
        sub(
            "client|setinfo",
            4,
            NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CS,
            "Sets information specific to the client or connection.",
            CLIENT,
        )
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        sub("client|info", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), CS, "Returns information about the connection.", CLIENT)
            .tips(&["nondeterministic_output"]),
        sub("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), CA, "Lists open connections.", CLIENT)
            .tips(&["nondeterministic_output"]),
        sub("client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), CA, "Terminates open connections.", CLIENT),
        sub(
            "client|no-evict",
            3,
            ADMIN | NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CA,
            "Sets the client eviction mode of the connection.",
            CLIENT,
        ),
        sub(
            "client|no-touch",
            3,
            NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CS,
            "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
            CLIENT,
        ),
        sub(
            "client|getredir",
            2,
            NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CS,
            "Returns the client ID to which the connection's tracking notifications are redirected.",
            CLIENT,
        ),
        sub(
            "client|tracking",
            -3,
            NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CS,
            "Controls server-assisted client-side caching for the connection.",
            CLIENT,
        ),
        sub(
            "client|caching",
            3,
            NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CS,
            "Instructs the server whether to track the keys in the next request.",
            CLIENT,
        ),
        sub(
            "client|trackinginfo",
            2,
            NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CS,
            "Returns information about server-assisted client-side caching for the connection.",
            CLIENT,
        ),
        sub("client|pause", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), CA, "Suspends commands processing.", CLIENT),
        sub(
            "client|unpause",
            2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CA,
            "Resumes processing commands from paused clients.",
            CLIENT,
        ),
        sub("client|reply", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), CS, "Instructs the server whether to reply to commands.", CLIENT),
        sub(
            "client|unblock",
            -3,
            ADMIN | NOSCRIPT | LOADING | STALE,
            (0, 0, 0),
            CA,
            "Unblocks a client blocked by a blocking command from a different connection.",
            CLIENT,
        ),
        sub("client|help", 2, LOADING | STALE, (0, 0, 0), CS, "Returns helpful text about the different subcommands.", CLIENT),
    ])];

/// Validates a client name: no spaces, newlines or other special characters.
pub(super) fn client_name(b: &[u8]) -> CmdResult<String> {
    if b.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn client(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let info = cx.client()?.info.clone();
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"ID" => {
            cx.out().int(info.id as i64);
        }
        b"SETNAME" => {
            let name = client_name(&args[2])?;
            *info.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
            cx.out().ok();
        }
        b"GETNAME" => {
            let name = info.name();
            if name.is_empty() {
                cx.out().nil();
            } else {
                cx.out().bulk(name.as_bytes());
            }
        }
        b"SETINFO" => {
            let val = client_name(&args[3])
                .map_err(|_| CmdError::err("lib-name and lib-ver cannot contain spaces, newlines or special characters."))?;
            if eq_ic(&args[2], "LIB-NAME") {
                *info.lib_name.lock().unwrap_or_else(|e| e.into_inner()) = val;
            } else if eq_ic(&args[2], "LIB-VER") {
                *info.lib_ver.lock().unwrap_or_else(|e| e.into_inner()) = val;
            } else {
                return Err(CmdError::err(format!("Unrecognized option '{}'", String::from_utf8_lossy(&args[2]))));
            }
            cx.out().ok();
        }
        b"INFO" => {
            publish_self(cx, args)?;
            let line = info.describe() + "\n";
            cx.out().verbatim(&line);
        }
        b"LIST" => {
            // As Redis: either TYPE <type> or ID <id> [<id> ...].
            let mut ty = None;
            let mut ids = None;
            if args.len() == 4 && eq_ic(&args[2], "TYPE") {
                ty = Some(client_type(&args[3])?);
            } else if args.len() > 3 && eq_ic(&args[2], "ID") {
                let v: CmdResult<Vec<i64>> = args[3..].iter().map(|a| parse_i64(a)).collect();
                ids = Some(v.map_err(|_| CmdError::err("Invalid client ID"))?);
            } else if args.len() != 2 {
                return Err(CmdError::Syntax);
            }
            publish_self(cx, args)?;
            let clients = cx.engine().clients.list();
            let mut text = String::new();
            let mut line = |c: &ClientInfo| {
                text.push_str(&c.describe());
                text.push('\n');
            };
            match ids {
                // In the order asked, each listed once per mention.
                Some(ids) => {
                    for id in ids {
                        if let Some(c) = clients.iter().find(|c| c.id as i64 == id) {
                            line(c);
                        }
                    }
                }
                None => clients.iter().filter(|c| ty.is_none_or(|t| c.client_type() == t)).for_each(|c| line(c)),
            }
            cx.out().verbatim(&text);
        }
        b"NO-EVICT" | b"NO-TOUCH" => {
            let on = if eq_ic(&args[2], "ON") {
                true
            } else if eq_ic(&args[2], "OFF") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
            let flag = if sub.as_slice() == b"NO-EVICT" { &info.no_evict } else { &info.no_touch };
            flag.store(on, Relaxed);
            cx.out().ok();
        }
        b"KILL" => return client_kill(cx, args),
        b"GETREDIR" => return super::tracking::client_getredir(cx),
        b"TRACKING" => return super::tracking::client_tracking(cx, args),
        b"CACHING" => return super::tracking::client_caching(cx, args),
        b"TRACKINGINFO" => return super::tracking::client_trackinginfo(cx),
        b"REPLY" => {
            let s = cx.client()?;
            if eq_ic(&args[2], "ON") {
                s.reply = Reply::On;
                cx.out().ok();
            } else if eq_ic(&args[2], "OFF") {
                s.reply = Reply::Off;
            } else if eq_ic(&args[2], "SKIP") {
                if s.reply != Reply::Off {
                    s.reply = Reply::SkipNext;
                }
            } else {
                return Err(CmdError::Syntax);
            }
        }
        b"PAUSE" => {
            if args.len() > 4 {
                return Err(CmdError::subcommand_syntax("client", &args[1]));
            }
            let ms = parse_i64(&args[2]).map_err(|_| CmdError::err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(CmdError::err("timeout is negative"));
            }
            let all = match args.get(3) {
                None => true,
                Some(m) if eq_ic(m, "ALL") => true,
                Some(m) if eq_ic(m, "WRITE") => false,
                Some(_) => return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL")),
            };
            cx.engine().clients.pause(crate::util::now_ms(), ms as u64, all);
            cx.out().ok();
        }
        b"UNPAUSE" => {
            cx.engine().clients.unpause();
            cx.out().ok();
        }
        b"UNBLOCK" => {
            if args.len() > 4 {
                return Err(CmdError::subcommand_syntax("client", &args[1]));
            }
            let id = parse_i64(&args[2])?;
            let error = match args.get(3) {
                None => false,
                Some(m) if eq_ic(m, "TIMEOUT") => false,
                Some(m) if eq_ic(m, "ERROR") => true,
                Some(_) => return Err(CmdError::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
            };
            let target = cx.engine().clients.list().into_iter().find(|c| c.id as i64 == id);
            let done = target.is_some_and(|c| c.unblock(error));
            cx.out().int(i64::from(done));
        }
        b"HELP" => {
            // Redis 7.2's text (with 7.4's ID and MAXAGE filters).
            let lines = [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CACHING (YES|NO)",
                "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                "GETREDIR",
                "    Return the client ID we are redirecting to when tracking is enabled.",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are:",
                "    * ADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made from the specified address",
                "    * LADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made to specified local address",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Kill connections by type.",
                "    * USER <username>",
                "      Kill connections authenticated by <username>.",
                "    * SKIPME (YES|NO)",
                "      Skip killing current connection (default: yes).",
                "    * ID <client-id>",
                "      Kill connections by client id.",
                "    * MAXAGE <maxage>",
                "      Kill connections older than the specified age.",
                "LIST [options ...]",
                "    Return information about client connections. Options:",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Return clients of specified type.",
                "UNPAUSE",
                "    Stop the current client pause, resuming traffic.",
                "PAUSE <timeout> [WRITE|ALL]",
                "    Suspend all, or just write, clients for <timeout> milliseconds.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "SETINFO <option> <value>",
                "    Set client meta attr. Options are:",
                "    * LIB-NAME: the client lib name.",
                "    * LIB-VER: the client lib version.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
                "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                "         [OPTIN] [OPTOUT] [NOLOOP]",
                "    Control server assisted client side caching.",
                "TRACKINGINFO",
                "    Report tracking status for the current connection.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
                "NO-TOUCH (ON|OFF)",
                "    Will not touch LRU/LFU stats when this mode is on.",
                "HELP",
                "    Print this help.",
            ];
            cx.out().help(&lines);
        }
        _ => return Err(CmdError::UnknownSubcommand { cmd: "CLIENT".into(), sub: String::from_utf8_lossy(&args[1]).into_owned() }),
    }
    Ok(())
}

/// A client type argument (`Unknown client type` otherwise).
fn client_type(name: &[u8]) -> CmdResult<ClientType> {
    ClientType::parse(name).ok_or_else(|| CmdError::err(format!("Unknown client type '{}'", String::from_utf8_lossy(name))))
}

/// Before CLIENT describes its own connection: the session as it is now,
/// the replies before this command in the pipeline, and this command's
/// arguments (the connection publishes them only between pipelines).
fn publish_self(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (pending, cap) = (cx.out().buf.len(), cx.out().buf.capacity());
    let s = cx.client()?;
    s.publish(cap);
    s.info.set_running(args);
    s.info.set_pending(pending);
    Ok(())
}

/// CLIENT KILL addr, or CLIENT KILL with filters (ID, ADDR, LADDR, TYPE,
/// USER, SKIPME, and Redis 7.4's MAXAGE), parsed in order as Redis does.
fn client_kill(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let info = cx.client()?.info.clone();
    if args.len() == 3 {
        // Old form: CLIENT KILL addr:port (which may be the caller).
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        let n = cx.engine().clients.kill(|c| c.addr == addr);
        if n == 0 {
            return Err(CmdError::err("No such client"));
        }
        cx.out().ok();
        return Ok(());
    }
    let (mut id, mut addr, mut laddr, mut ty, mut max_age, mut skipme) = (None, None, None, None, None, true);
    let mut user: Option<String> = None;
    let mut i = 2;
    while i < args.len() {
        let (opt, Some(v)) = (&args[i], args.get(i + 1)) else { return Err(CmdError::Syntax) };
        if eq_ic(opt, "ID") {
            let n = parse_i64(v).ok().filter(|&n| n > 0).ok_or_else(|| CmdError::err("client-id should be greater than 0"))?;
            id = Some(n as u64);
        } else if eq_ic(opt, "MAXAGE") {
            let n = parse_i64(v).map_err(|_| CmdError::err("maxage is not an integer or out of range"))?;
            if n <= 0 {
                return Err(CmdError::err("maxage should be greater than 0"));
            }
            max_age = Some(n as u64);
        } else if eq_ic(opt, "TYPE") {
            ty = Some(client_type(v)?);
        } else if eq_ic(opt, "ADDR") {
            addr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(opt, "LADDR") {
            laddr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(opt, "USER") {
            // An ACL user (names are case-sensitive).
            match std::str::from_utf8(v).ok().and_then(|n| cx.engine().acl.get(n)) {
                Some(u) => user = Some(u.name.clone()),
                None => return Err(CmdError::err(format!("No such user '{}'", String::from_utf8_lossy(v)))),
            }
        } else if eq_ic(opt, "SKIPME") {
            skipme = if eq_ic(v, "YES") {
                true
            } else if eq_ic(v, "NO") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let me = info.id;
    let now = crate::util::now_ms();
    let n = cx.engine().clients.kill(|c| {
        id.is_none_or(|i| c.id == i)
            && addr.as_ref().is_none_or(|a| &c.addr == a)
            && laddr.as_ref().is_none_or(|a| &c.laddr == a)
            && ty.is_none_or(|t| c.client_type() == t)
            && max_age.is_none_or(|m| c.age(now) >= m)
            && user.as_ref().is_none_or(|u| c.user() == *u)
            && !(skipme && c.id == me)
    });
    cx.out().int(n as i64);
    Ok(())
}
