//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, CLIENT, QUIT,
//! RESET.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, flag::*, sub, BusyAnswer, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::clients::{ClientInfo, ClientType};
use crate::shard::Engine;
use crate::util::{eq_ic, parse_i64};

const C: &[&str] = &["connection"];
const CS: &[&str] = &["slow", "connection"];
const CA: &[&str] = &["admin", "slow", "dangerous", "connection"];

const CLIENT: Exec = Exec::Coord(handler!(|cx, a| client(cx, a)));

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "ping",
        -1,
        FAST | SUBSCRIBED,
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
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING | ALLOW_BUSY,
        (0, 0, 0),
        C,
        "connection",
        "Handshakes with the Redis server.",
        Exec::Coord(handler!(|cx, a| hello(cx, a))),
    ),
    // Allowed while a script is busy, as in Redis: on a node with a
    // password, whoever must stop the script has to log in first.
    cmd(
        "auth",
        -2,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING | ALLOW_BUSY,
        (0, 0, 0),
        C,
        "connection",
        "Authenticates the connection.",
        Exec::Coord(handler!(|cx, a| auth(cx, a))),
    )
    .when_busy(|engine, args, authed, out| {
        if authed || !authenticate(engine, args)? {
            return Ok(BusyAnswer::Defer);
        }
        out.ok();
        Ok(BusyAnswer::Authenticated)
    }),
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
    cmd("client", -2, 0, (0, 0, 0), &["slow"], "connection", "A container for client connection commands.", CLIENT).subcommands(&[
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
        sub("client|help", 2, LOADING | STALE, (0, 0, 0), CS, "Returns helpful text about the different subcommands.", CLIENT),
    ]),
    cmd(
        "quit",
        -1,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING | ALLOW_BUSY | NO_QUEUE | SUBSCRIBED,
        (0, 0, 0),
        C,
        "connection",
        "Closes the connection.",
        Exec::Coord(handler!(|cx, _a| quit(cx))),
    ),
    cmd(
        "reset",
        1,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING | ALLOW_BUSY | NO_QUEUE | SUBSCRIBED,
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
    s.info.no_evict.store(false, Relaxed);
    s.info.no_touch.store(false, Relaxed);
    if let Some(c) = &mut s.cluster {
        c.readonly = false;
        c.asking = false;
    }
    s.authed = !engine.cfg.has_password.load(Relaxed);
    s.set_user(&engine, engine.acl.default_user());
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
        _ => return Err(super::arity_error(args)),
    }
    Ok(())
}

fn auth(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let engine = cx.engine().clone();
    let (user, pass) = auth_args(&engine, args)?;
    log_in(cx, &engine, &args[0], user, pass)?;
    cx.out().ok();
    Ok(())
}

/// AUTH's user and password (`default` for the one-argument form, which
/// needs the default user to have a password).
fn auth_args<'a>(engine: &Engine, args: &'a [Bytes]) -> CmdResult<(&'a [u8], &'a [u8])> {
    match args.len() {
        2 if !super::acl::default_has_password(engine) => Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        )),
        2 => Ok((b"default", &args[1])),
        3 => Ok((&args[1], &args[2])),
        _ => Err(CmdError::Syntax),
    }
}

/// Authenticates the connection as `user`, or logs the failure in the
/// ACL LOG and answers WRONGPASS (`command`: AUTH or HELLO, as sent).
fn log_in(cx: &mut dyn Coord, engine: &Engine, command: &[u8], user: &[u8], pass: &[u8]) -> CmdResult {
    let s = cx.client()?;
    match super::acl::authenticate(engine, user, pass) {
        Ok(u) => {
            s.authed = true;
            s.set_user(engine, u);
            Ok(())
        }
        Err(e) => {
            super::acl::check::log_auth(engine, s.multi.is_some(), command, user, &s.info);
            Err(e)
        }
    }
}

/// AUTH answered by a busy script's hook: only for a connection not
/// authenticated yet (so running as `default`) logging in as `default`;
/// anything else waits for the connection, which knows its user.
pub fn authenticate(engine: &Engine, args: &[Bytes]) -> CmdResult<bool> {
    let (user, pass) = auth_args(engine, args)?;
    if user != b"default" {
        return Ok(false);
    }
    super::acl::authenticate(engine, user, pass)?;
    Ok(true)
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
            let engine = cx.engine().clone();
            log_in(cx, &engine, &args[0], &args[i + 1], &args[i + 2])?;
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
                "GETNAME",
                "    Return the name of the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "SETINFO <option> <value>",
                "    Set client meta attr. Options are:",
                "    * LIB-NAME: the client lib name.",
                "    * LIB-VER: the client lib version.",
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
