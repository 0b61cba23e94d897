//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, CLIENT, QUIT,
//! RESET.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::Engine;
use crate::util::{eq_ic, parse_i64};

const C: &[&str] = &["connection"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "ping",
        -1,
        FAST,
        (0, 0, 0),
        C,
        "connection",
        "Returns the server's liveliness response.",
        Exec::Coord(handler!(|cx, a| ping(cx, a))),
    )
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd(
        "echo",
        2,
        LOADING | STALE | FAST,
        (0, 0, 0),
        C,
        "connection",
        "Returns the given string.",
        Exec::Coord(handler!(|cx, a| echo(cx, a))),
    ),
    cmd(
        "hello",
        -1,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING,
        (0, 0, 0),
        C,
        "connection",
        "Handshakes with the Redis server.",
        Exec::Coord(handler!(|cx, a| hello(cx, a))),
    ),
    cmd(
        "auth",
        -2,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING,
        (0, 0, 0),
        C,
        "connection",
        "Authenticates the connection.",
        Exec::Coord(handler!(|cx, a| auth(cx, a))),
    ),
    cmd(
        "select",
        2,
        FAST | STALE | LOADING,
        (0, 0, 0),
        C,
        "connection",
        "Changes the selected database.",
        Exec::Coord(handler!(|cx, a| select(cx, a))),
    ),
    cmd(
        "client",
        -2,
        ADMIN | NOSCRIPT | STALE | LOADING,
        (0, 0, 0),
        C,
        "connection",
        "A container for client connection commands.",
        Exec::Coord(handler!(|cx, a| client(cx, a))),
    ),
    cmd(
        "quit",
        -1,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING | NO_QUEUE,
        (0, 0, 0),
        C,
        "connection",
        "Closes the connection.",
        Exec::Coord(handler!(|cx, _a| quit(cx))),
    ),
    cmd(
        "reset",
        1,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING | NO_QUEUE,
        (0, 0, 0),
        C,
        "connection",
        "Resets the connection.",
        Exec::Coord(handler!(|cx, _a| reset(cx))),
    ),
];

fn echo(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    cx.out().bulk(&args[1]);
    Ok(())
}

fn quit(cx: &mut dyn Coord) -> CmdResult {
    cx.client()?.closing = true;
    cx.out().ok();
    Ok(())
}

fn reset(cx: &mut dyn Coord) -> CmdResult {
    let engine = cx.engine().clone();
    let s = cx.client()?;
    s.multi = None;
    s.unwatch(&engine);
    super::pubsub::unsubscribe_all(&engine, s);
    s.info.db.store(0, Relaxed);
    s.info.resp.store(2, Relaxed);
    s.info.name.lock().unwrap_or_else(|e| e.into_inner()).clear();
    s.authed = !engine.cfg.has_password.load(Relaxed);
    cx.set_db(0);
    cx.out().resp3 = false;
    cx.out().simple("RESET");
    Ok(())
}

fn ping(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    if args.len() <= 2 && !cx.out().resp3 && cx.session().is_some_and(|s| s.sub.is_some()) {
        // Subscribed (RESP2): PING answers in the message format.
        cx.out().array(2);
        cx.out().bulk(b"pong");
        cx.out().bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
        return Ok(());
    }
    match args.len() {
        1 => cx.out().simple("PONG"),
        2 => cx.out().bulk(&args[1]),
        _ => return Err(CmdError::wrong_arity("ping")),
    }
    Ok(())
}

fn password_ok(engine: &Engine, user: &[u8], pass: &[u8]) -> CmdResult {
    let pw = engine.cfg.requirepass.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match pw {
        None => {
            if user == b"default" {
                Ok(())
            } else {
                Err(CmdError::WrongPass)
            }
        }
        Some(pw) if user == b"default" && pw.as_bytes() == pass => Ok(()),
        Some(_) => Err(CmdError::WrongPass),
    }
}

fn auth(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    authenticate(cx.engine(), args)?;
    cx.client()?.authed = true;
    cx.out().ok();
    Ok(())
}

/// Checks AUTH's arguments; `Ok` when they log the client in.
pub fn authenticate(engine: &Engine, args: &[Bytes]) -> CmdResult {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => (b"default", &args[1]),
        3 => (&args[1], &args[2]),
        _ => return Err(CmdError::Syntax),
    };
    if args.len() == 2 && !engine.cfg.has_password.load(Relaxed) {
        return Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    password_ok(engine, user, pass)
}

fn hello(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let mut proto = None;
    let mut i = 1;
    if args.len() > 1 {
        let v = parse_i64(&args[1]).map_err(|_| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::NoProto);
        }
        proto = Some(v);
        i = 2;
    }
    let mut setname = None;
    while i < args.len() {
        if eq_ic(&args[i], "AUTH") && i + 2 < args.len() {
            password_ok(cx.engine(), &args[i + 1], &args[i + 2])?;
            cx.client()?.authed = true;
            i += 3;
        } else if eq_ic(&args[i], "SETNAME") && i + 1 < args.len() {
            setname = Some(client_name(&args[i + 1])?);
            i += 2;
        } else {
            return Err(CmdError::err(format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(&args[i]))));
        }
    }
    let s = cx.client()?;
    if !s.authed {
        return Err(CmdError::Other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(name) = setname {
        *s.info.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    }
    let id = s.info.id;
    if let Some(p) = proto {
        s.info.resp.store(p as usize, Relaxed);
        cx.out().resp3 = p == 3;
    }
    let out = cx.out();
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if out.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

fn select(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let i = parse_i64(&args[1])?;
    if cx.engine().cluster.is_some() && i != 0 {
        return Err(CmdError::err("SELECT is not allowed in cluster mode"));
    }
    if i < 0 || i as usize >= cx.engine().cfg.databases {
        return Err(CmdError::DbIndexOutOfRange);
    }
    cx.set_db(i as usize);
    cx.out().ok();
    Ok(())
}

/// Validates a client name: no spaces, newlines or other special characters.
fn client_name(b: &[u8]) -> CmdResult<String> {
    if b.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn client(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let info = cx.client()?.info.clone();
    let sub = args[1].to_ascii_uppercase();
    let arity = |n: usize| -> CmdResult {
        if args.len() != n {
            Err(CmdError::err(format!(
                "wrong number of arguments for 'client|{}' command",
                String::from_utf8_lossy(&args[1]).to_lowercase()
            )))
        } else {
            Ok(())
        }
    };
    match sub.as_slice() {
        b"ID" => {
            arity(2)?;
            cx.out().int(info.id as i64);
        }
        b"SETNAME" => {
            arity(3)?;
            let name = client_name(&args[2])?;
            *info.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
            cx.out().ok();
        }
        b"GETNAME" => {
            arity(2)?;
            let name = info.name();
            if name.is_empty() {
                cx.out().nil();
            } else {
                cx.out().bulk(name.as_bytes());
            }
        }
        b"SETINFO" => {
            arity(4)?;
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
            arity(2)?;
            let line = info.describe() + "\n";
            cx.out().verbatim(&line);
        }
        b"LIST" => {
            let mut ids: Option<Vec<u64>> = None;
            let mut i = 2;
            while i < args.len() {
                if eq_ic(&args[i], "ID") {
                    let v: CmdResult<Vec<u64>> = args[i + 1..].iter().map(|a| parse_i64(a).map(|n| n as u64)).collect();
                    ids = Some(v.map_err(|_| CmdError::err("Invalid client ID"))?);
                    break;
                } else if eq_ic(&args[i], "TYPE") && i + 1 < args.len() {
                    let t = args[i + 1].to_ascii_lowercase();
                    if !matches!(t.as_slice(), b"normal" | b"master" | b"replica" | b"pubsub") {
                        return Err(CmdError::err(format!("Unknown client type '{}'", String::from_utf8_lossy(&args[i + 1]))));
                    }
                    if t != b"normal" {
                        ids = Some(Vec::new());
                    }
                    i += 2;
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            let mut text = String::new();
            for c in cx.engine().clients.list() {
                if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
                    text.push_str(&c.describe());
                    text.push('\n');
                }
            }
            cx.out().verbatim(&text);
        }
        b"KILL" => return client_kill(cx, args),
        b"HELP" => {
            let lines = [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
                "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> ...]",
                "    Return information about client connections.",
                "GETNAME",
                "    Return the name of the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "SETINFO <option> <value>",
                "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                "HELP",
                "    Print this help.",
            ];
            cx.out().array(lines.len());
            for l in lines {
                cx.out().simple(l);
            }
        }
        _ => return Err(CmdError::UnknownSubcommand { cmd: "CLIENT".into(), sub: String::from_utf8_lossy(&args[1]).into_owned() }),
    }
    Ok(())
}

fn client_kill(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let info = cx.client()?.info.clone();
    if args.len() == 3 {
        // Old form: CLIENT KILL addr:port
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        let n = cx.engine().clients.kill(|c| c.addr == addr);
        if n == 0 {
            return Err(CmdError::err("No such client"));
        }
        cx.out().ok();
        return Ok(());
    }
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    for pair in args[2..].chunks_exact(2) {
        let v = String::from_utf8_lossy(&pair[1]).into_owned();
        if eq_ic(&pair[0], "ID") {
            id = Some(parse_i64(&pair[1]).map_err(|_| CmdError::err("client-id should be greater than 0"))? as u64);
        } else if eq_ic(&pair[0], "ADDR") {
            addr = Some(v);
        } else if eq_ic(&pair[0], "LADDR") {
            laddr = Some(v);
        } else if eq_ic(&pair[0], "SKIPME") {
            skipme = match v.to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                _ => return Err(CmdError::Syntax),
            };
        } else if eq_ic(&pair[0], "TYPE") || eq_ic(&pair[0], "USER") || eq_ic(&pair[0], "MAXAGE") {
            // Accepted filters that match every normal client of the default user.
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let me = info.id;
    let n = cx.engine().clients.kill(|c| {
        id.is_none_or(|i| c.id == i)
            && addr.as_ref().is_none_or(|a| &c.addr == a)
            && laddr.as_ref().is_none_or(|a| &c.laddr == a)
            && !(skipme && c.id == me)
    });
    cx.out().int(n as i64);
    Ok(())
}
