//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET
//! (CLIENT is in `client`).

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, flag::*, BusyAnswer, CommandSpec, Coord, Exec};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::shard::Engine;
use crate::util::{eq_ic, parse_i64};

const C: &[&str] = &["connection"];

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
    .when_busy(|engine, args, _authed, out| {
        authenticate(engine, args)?;
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
    s.stop_monitor(&engine);
    s.reply = super::session::Reply::On;
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
            setname = Some(super::client::client_name(&args[i + 1])?);
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
