//! Connection commands (PING, ECHO, HELLO, AUTH, SELECT, CLIENT, QUIT, RESET)
//! and `dispatch`, which sends every connection-level command to its
//! implementation.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, ConnCmd, Exec};
use crate::error::{CmdError, CmdResult};
use crate::server::conn::Conn;
use crate::shard::Engine;
use crate::util::{eq_ic, parse_i64};

const C: &[&str] = &["connection"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("ping", -1, FAST | STALE, (0, 0, 0), C, "connection", "Returns the server's liveliness response.", Exec::Conn(ConnCmd::Ping))
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    cmd("echo", 2, FAST | STALE, (0, 0, 0), C, "connection", "Returns the given string.", Exec::Conn(ConnCmd::Echo)),
    cmd(
        "hello",
        -1,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING,
        (0, 0, 0),
        C,
        "connection",
        "Handshakes with the Redis server.",
        Exec::Conn(ConnCmd::Hello),
    ),
    cmd(
        "auth",
        -2,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING,
        (0, 0, 0),
        C,
        "connection",
        "Authenticates the connection.",
        Exec::Conn(ConnCmd::Auth),
    ),
    cmd("select", 2, FAST | STALE | LOADING, (0, 0, 0), C, "connection", "Changes the selected database.", Exec::Conn(ConnCmd::Select)),
    cmd(
        "client",
        -2,
        ADMIN | NOSCRIPT | STALE | LOADING,
        (0, 0, 0),
        C,
        "connection",
        "A container for client connection commands.",
        Exec::Conn(ConnCmd::Client),
    ),
    cmd(
        "quit",
        -1,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING | NO_QUEUE,
        (0, 0, 0),
        C,
        "connection",
        "Closes the connection.",
        Exec::Conn(ConnCmd::Quit),
    ),
    cmd(
        "reset",
        1,
        FAST | NO_AUTH | STALE | NOSCRIPT | LOADING | NO_QUEUE,
        (0, 0, 0),
        C,
        "connection",
        "Resets the connection.",
        Exec::Conn(ConnCmd::Reset),
    ),
];

/// Runs a connection-level command. The ones that finish at once run
/// inline; the others' state machines are large (EXEC, scripts, blocking
/// pops) and live in their own allocation while they run, so that every
/// connection's task, idle or not, stays small.
pub async fn dispatch(conn: &mut Conn, cmd: ConnCmd, args: &[Bytes]) -> CmdResult {
    use super::{scripting, server, transactions};
    match cmd {
        ConnCmd::Ping => ping(conn, args),
        ConnCmd::Echo => {
            conn.out.bulk(&args[1]);
            Ok(())
        }
        ConnCmd::Hello => hello(conn, args),
        ConnCmd::Auth => auth(conn, args),
        ConnCmd::Select => select(conn, args),
        ConnCmd::Client => client(conn, args),
        ConnCmd::Quit => {
            conn.out.ok();
            conn.closing = true;
            Ok(())
        }
        ConnCmd::Reset => {
            conn.multi = None;
            conn.unwatch();
            super::pubsub::unsubscribe_all(conn);
            conn.db = 0;
            conn.out.resp3 = false;
            conn.info.db.store(0, Relaxed);
            conn.info.resp.store(2, Relaxed);
            conn.info.name.lock().unwrap_or_else(|e| e.into_inner()).clear();
            conn.authed = !conn.engine.cfg.has_password.load(Relaxed);
            conn.out.simple("RESET");
            Ok(())
        }
        ConnCmd::Command => server::command(conn, args),
        ConnCmd::Time => server::time(conn),
        ConnCmd::Shutdown => server::shutdown(conn, args),
        ConnCmd::Lastsave => server::lastsave(conn),
        ConnCmd::Role => server::role(conn),
        ConnCmd::Multi => transactions::multi(conn),
        ConnCmd::Discard => transactions::discard(conn),
        ConnCmd::Unwatch => transactions::unwatch(conn),
        ConnCmd::Subscribe => super::pubsub::subscribe(conn, args, false),
        ConnCmd::PSubscribe => super::pubsub::subscribe(conn, args, true),
        ConnCmd::Unsubscribe => super::pubsub::unsubscribe(conn, args, false),
        ConnCmd::PUnsubscribe => super::pubsub::unsubscribe(conn, args, true),
        ConnCmd::Publish => super::pubsub::publish(conn, args),
        ConnCmd::PubSub => super::pubsub::pubsub(conn, args),
        ConnCmd::Script => scripting::script(conn, args),
        ConnCmd::Function => scripting::function(conn, args),
        c @ (ConnCmd::Asking | ConnCmd::ReadOnly | ConnCmd::ReadWrite) => super::cluster::flags(conn, c),
        _ => Box::pin(dispatch_async(conn, cmd, args)).await,
    }
}

/// The connection-level commands that wait on shards or clients.
async fn dispatch_async(conn: &mut Conn, cmd: ConnCmd, args: &[Bytes]) -> CmdResult {
    use super::zsets::{self, SetKind};
    use super::{keys, scan, scripting, server, strings, transactions};
    match cmd {
        ConnCmd::Info => server::info(conn, args).await,
        ConnCmd::Config => server::config(conn, args).await,
        ConnCmd::DbSize => server::dbsize(conn).await,
        ConnCmd::FlushDb => server::flush(conn, args, false).await,
        ConnCmd::FlushAll => server::flush(conn, args, true).await,
        ConnCmd::Wait => server::wait(conn, args).await,
        ConnCmd::Keys => keys::keys(conn, args).await,
        ConnCmd::RandomKey => keys::randomkey(conn).await,
        ConnCmd::Rename => keys::rename(conn, args, false).await,
        ConnCmd::RenameNx => keys::rename(conn, args, true).await,
        ConnCmd::Scan => scan::scan(conn, args).await,
        ConnCmd::Copy => keys::copy(conn, args).await,
        ConnCmd::SwapDb => keys::swapdb(conn, args).await,
        ConnCmd::MSetNx => strings::msetnx(conn, args).await,
        ConnCmd::Lcs => strings::lcs(conn, args).await,
        ConnCmd::Exec => transactions::exec(conn).await,
        ConnCmd::Watch => transactions::watch(conn, args).await,
        ConnCmd::JsonMSet => super::json::mset(conn, args).await,
        ConnCmd::ZUnion => zsets::setop(conn, args, SetKind::Union, false, false).await,
        ConnCmd::ZMPop => zsets::zmpop(conn, args).await,
        ConnCmd::BZPopMin => zsets::bzpop(conn, args, false).await,
        ConnCmd::BZPopMax => zsets::bzpop(conn, args, true).await,
        ConnCmd::BZMPop => zsets::bzmpop(conn, args).await,
        ConnCmd::LMove => super::lists::lmove(conn, args, false).await,
        ConnCmd::RPopLPush => super::lists::lmove(conn, args, true).await,
        ConnCmd::LMPop => super::lists::lmpop(conn, args).await,
        ConnCmd::BLPop => super::lists::bpop(conn, args, true).await,
        ConnCmd::BRPop => super::lists::bpop(conn, args, false).await,
        ConnCmd::BLMPop => super::lists::blmpop(conn, args).await,
        ConnCmd::BLMove => super::lists::blmove(conn, args, false).await,
        ConnCmd::BRPopLPush => super::lists::blmove(conn, args, true).await,
        ConnCmd::SInter => super::sets::setop(conn, args, super::sets::SetOp::Inter).await,
        ConnCmd::SUnion => super::sets::setop(conn, args, super::sets::SetOp::Union).await,
        ConnCmd::SDiff => super::sets::setop(conn, args, super::sets::SetOp::Diff).await,
        ConnCmd::SInterStore => super::sets::setop_store(conn, args, super::sets::SetOp::Inter).await,
        ConnCmd::SUnionStore => super::sets::setop_store(conn, args, super::sets::SetOp::Union).await,
        ConnCmd::SDiffStore => super::sets::setop_store(conn, args, super::sets::SetOp::Diff).await,
        ConnCmd::SInterCard => super::sets::sintercard(conn, args).await,
        ConnCmd::SMove => super::sets::smove(conn, args).await,
        ConnCmd::XRead => super::streams::xread(conn, args).await,
        ConnCmd::BitOp => super::bitmaps::bitop(conn, args).await,
        ConnCmd::PfCount => super::hyperloglog::pfcount(conn, args).await,
        ConnCmd::PfMerge => super::hyperloglog::pfmerge(conn, args).await,
        ConnCmd::ZInter => zsets::setop(conn, args, SetKind::Inter, false, false).await,
        ConnCmd::ZDiff => zsets::setop(conn, args, SetKind::Diff, false, false).await,
        ConnCmd::ZUnionStore => zsets::setop(conn, args, SetKind::Union, true, false).await,
        ConnCmd::ZInterStore => zsets::setop(conn, args, SetKind::Inter, true, false).await,
        ConnCmd::ZDiffStore => zsets::setop(conn, args, SetKind::Diff, true, false).await,
        ConnCmd::ZInterCard => zsets::setop(conn, args, SetKind::Inter, false, true).await,
        ConnCmd::ZRangeStore => zsets::zrangestore(conn, args).await,
        ConnCmd::Eval | ConnCmd::EvalSha | ConnCmd::EvalRo | ConnCmd::EvalShaRo | ConnCmd::Fcall | ConnCmd::FcallRo => {
            scripting::eval(conn, cmd, args).await
        }
        ConnCmd::Cluster => super::cluster::cluster(conn, args).await,
        // The rest run inline in `dispatch` and never get here.
        _ => Err(CmdError::err(format!("{cmd:?} is not an asynchronous command"))),
    }
}

fn ping(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    if args.len() <= 2 && !conn.out.resp3 && conn.sub.is_some() {
        // Subscribed (RESP2): PING answers in the message format.
        conn.out.array(2);
        conn.out.bulk(b"pong");
        conn.out.bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
        return Ok(());
    }
    match args.len() {
        1 => conn.out.simple("PONG"),
        2 => conn.out.bulk(&args[1]),
        _ => return Err(CmdError::wrong_arity("ping")),
    }
    Ok(())
}

fn check_password(conn: &Conn, user: &[u8], pass: &[u8]) -> CmdResult {
    password_ok(&conn.engine, user, pass)
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

fn auth(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    authenticate(&conn.engine, args)?;
    conn.authed = true;
    conn.out.ok();
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

fn hello(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
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
            check_password(conn, &args[i + 1], &args[i + 2])?;
            conn.authed = true;
            i += 3;
        } else if eq_ic(&args[i], "SETNAME") && i + 1 < args.len() {
            setname = Some(client_name(&args[i + 1])?);
            i += 2;
        } else {
            return Err(CmdError::err(format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(&args[i]))));
        }
    }
    if !conn.authed {
        return Err(CmdError::Other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(name) = setname {
        *conn.info.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    }
    if let Some(p) = proto {
        conn.out.resp3 = p == 3;
        conn.info.resp.store(p as usize, Relaxed);
    }
    let out = &mut conn.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if out.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(conn.info.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

fn select(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    let i = parse_i64(&args[1])?;
    if conn.cluster.is_some() && i != 0 {
        return Err(CmdError::err("SELECT is not allowed in cluster mode"));
    }
    if i < 0 || i as usize >= conn.engine.cfg.databases {
        return Err(CmdError::DbIndexOutOfRange);
    }
    conn.db = i as usize;
    conn.info.db.store(conn.db, Relaxed);
    conn.out.ok();
    Ok(())
}

/// Validates a client name: no spaces, newlines or other special characters.
fn client_name(b: &[u8]) -> CmdResult<String> {
    if b.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn client(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
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
            conn.out.int(conn.info.id as i64);
        }
        b"SETNAME" => {
            arity(3)?;
            let name = client_name(&args[2])?;
            *conn.info.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
            conn.out.ok();
        }
        b"GETNAME" => {
            arity(2)?;
            let name = conn.info.name();
            if name.is_empty() {
                conn.out.nil();
            } else {
                conn.out.bulk(name.as_bytes());
            }
        }
        b"SETINFO" => {
            arity(4)?;
            let val = client_name(&args[3])
                .map_err(|_| CmdError::err("lib-name and lib-ver cannot contain spaces, newlines or special characters."))?;
            if eq_ic(&args[2], "LIB-NAME") {
                *conn.info.lib_name.lock().unwrap_or_else(|e| e.into_inner()) = val;
            } else if eq_ic(&args[2], "LIB-VER") {
                *conn.info.lib_ver.lock().unwrap_or_else(|e| e.into_inner()) = val;
            } else {
                return Err(CmdError::err(format!("Unrecognized option '{}'", String::from_utf8_lossy(&args[2]))));
            }
            conn.out.ok();
        }
        b"INFO" => {
            arity(2)?;
            let line = conn.info.describe() + "\n";
            conn.out.verbatim(&line);
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
            for c in conn.engine.clients.list() {
                if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
                    text.push_str(&c.describe());
                    text.push('\n');
                }
            }
            conn.out.verbatim(&text);
        }
        b"KILL" => return client_kill(conn, args),
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
            conn.out.array(lines.len());
            for l in lines {
                conn.out.simple(l);
            }
        }
        _ => return Err(CmdError::UnknownSubcommand { cmd: "CLIENT".into(), sub: String::from_utf8_lossy(&args[1]).into_owned() }),
    }
    Ok(())
}

fn client_kill(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    if args.len() == 3 {
        // Old form: CLIENT KILL addr:port
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        let n = conn.engine.clients.kill(|c| c.addr == addr);
        if n == 0 {
            return Err(CmdError::err("No such client"));
        }
        conn.out.ok();
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
    let me = conn.info.id;
    let n = conn.engine.clients.kill(|c| {
        id.is_none_or(|i| c.id == i)
            && addr.as_ref().is_none_or(|a| &c.addr == a)
            && laddr.as_ref().is_none_or(|a| &c.laddr == a)
            && !(skipme && c.id == me)
    });
    conn.out.int(n as i64);
    Ok(())
}
