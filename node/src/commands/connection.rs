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
    s.stop_tracking();
    s.set_push_target(false);
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
        s.set_push_target(p == 3);
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
