//! Generic key commands: DEL, UNLINK, EXISTS, TOUCH, TYPE, the EXPIRE and TTL
//! families, PERSIST, KEYS, RANDOMKEY, RENAME, RENAMENX.

use bytes::Bytes;

use super::{cmd, flag::*, Combine, CommandSpec, ConnCmd, Ctx, Exec};
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::server::conn::Conn;
use crate::shard::tx::Tx;

use crate::util::{eq_ic, glob_match, now_ms, parse_i64};

const K: &[&str] = &["keyspace"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("del", -2, WRITE, (1, -1, 1), K, "generic", "Deletes one or more keys.", Exec::Split(del, Combine::Sum)),
    cmd("unlink", -2, WRITE | FAST, (1, -1, 1), K, "generic", "Asynchronously deletes one or more keys.", Exec::Split(del, Combine::Sum)),
    cmd(
        "exists",
        -2,
        READONLY | FAST,
        (1, -1, 1),
        K,
        "generic",
        "Determines whether one or more keys exist.",
        Exec::Split(exists, Combine::Sum),
    ),
    cmd(
        "touch",
        -2,
        READONLY | FAST,
        (1, -1, 1),
        K,
        "generic",
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
        Exec::Split(exists, Combine::Sum),
    ),
    cmd("type", 2, READONLY | FAST, (1, 1, 1), K, "generic", "Determines the type of value stored at a key.", Exec::Shard(type_)),
    cmd("expire", -3, WRITE | FAST, (1, 1, 1), K, "generic", "Sets the expiration time of a key in seconds.", Exec::Shard(expire)),
    cmd("pexpire", -3, WRITE | FAST, (1, 1, 1), K, "generic", "Sets the expiration time of a key in milliseconds.", Exec::Shard(pexpire)),
    cmd(
        "expireat",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        K,
        "generic",
        "Sets the expiration time of a key to a Unix timestamp.",
        Exec::Shard(expireat),
    ),
    cmd(
        "pexpireat",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        K,
        "generic",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        Exec::Shard(pexpireat),
    ),
    cmd("ttl", 2, READONLY | FAST, (1, 1, 1), K, "generic", "Returns the expiration time in seconds of a key.", Exec::Shard(ttl)),
    cmd("pttl", 2, READONLY | FAST, (1, 1, 1), K, "generic", "Returns the expiration time in milliseconds of a key.", Exec::Shard(pttl)),
    cmd(
        "expiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        K,
        "generic",
        "Returns the expiration time of a key as a Unix timestamp.",
        Exec::Shard(expiretime),
    ),
    cmd(
        "pexpiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        K,
        "generic",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        Exec::Shard(pexpiretime),
    ),
    cmd("persist", 2, WRITE | FAST, (1, 1, 1), K, "generic", "Removes the expiration time of a key.", Exec::Shard(persist)),
    cmd(
        "keys",
        2,
        READONLY,
        (0, 0, 0),
        &["keyspace", "read", "slow", "dangerous"],
        "generic",
        "Returns all key names that match a pattern.",
        Exec::Conn(ConnCmd::Keys),
    ),
    cmd(
        "randomkey",
        1,
        READONLY | RANDOM,
        (0, 0, 0),
        K,
        "generic",
        "Returns a random key name from the database.",
        Exec::Conn(ConnCmd::RandomKey),
    ),
    cmd("rename", 3, WRITE, (1, 2, 1), K, "generic", "Renames a key and overwrites the destination.", Exec::Conn(ConnCmd::Rename)),
    cmd(
        "renamenx",
        3,
        WRITE | FAST,
        (1, 2, 1),
        K,
        "generic",
        "Renames a key only when the target key name doesn't exist.",
        Exec::Conn(ConnCmd::RenameNx),
    ),
];

fn del(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = args[1..].iter().filter(|k| db.remove(k, now).is_some()).count();
    out.int(n as i64);
    Ok(())
}

fn exists(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = args[1..].iter().filter(|k| db.exists(k, now)).count();
    out.int(n as i64);
    Ok(())
}

fn type_(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    match ctx.db().get(&args[1], now) {
        Some(e) => out.simple(e.value.type_name()),
        None => out.simple("none"),
    }
    Ok(())
}

/// EXPIRE and friends: `unit_ms` converts the argument to milliseconds,
/// `relative` adds the current time. Options NX, XX, GT, LT as Redis 7.
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, unit_ms: i64, relative: bool, name: &str) -> CmdResult {
    let now = ctx.now;
    let v = parse_i64(&args[2])?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if eq_ic(a, "NX") {
            nx = true;
        } else if eq_ic(a, "XX") {
            xx = true;
        } else if eq_ic(a, "GT") {
            gt = true;
        } else if eq_ic(a, "LT") {
            lt = true;
        } else {
            return Err(CmdError::err(format!("Unsupported option {}", String::from_utf8_lossy(a))));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(CmdError::err("GT and LT options at the same time are not compatible"));
    }
    let invalid = || CmdError::InvalidExpire(name.to_string());
    let ms = v.checked_mul(unit_ms).ok_or_else(invalid)?;
    let at = if relative { ms.checked_add(now as i64).ok_or_else(invalid)? } else { ms };
    let db = ctx.db();
    let Some(idx) = db.lookup(&args[1], now) else {
        out.int(0);
        return Ok(());
    };
    let cur = db.entry(idx).expire_at();
    // A missing TTL counts as infinite for GT/LT.
    let skip = (nx && cur.is_some())
        || (xx && cur.is_none())
        || (gt && cur.is_none_or(|c| at <= c as i64))
        || (lt && cur.is_some_and(|c| at >= c as i64));
    if skip {
        out.int(0);
        return Ok(());
    }
    if at <= now as i64 {
        db.remove_idx(idx);
    } else {
        db.set_expire(idx, at as u64);
    }
    out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    expire_generic(ctx, args, out, 1000, true, "expire")
}
fn pexpire(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    expire_generic(ctx, args, out, 1, true, "pexpire")
}
fn expireat(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    expire_generic(ctx, args, out, 1000, false, "expireat")
}
fn pexpireat(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    expire_generic(ctx, args, out, 1, false, "pexpireat")
}

/// Replies -2 for a missing key, -1 for no TTL, else `f(expire_at, now)`.
fn ttl_generic(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, f: fn(u64, u64) -> i64) -> CmdResult {
    let now = ctx.now;
    match ctx.db().get(&args[1], now) {
        None => out.int(-2),
        Some(e) => match e.expire_at() {
            None => out.int(-1),
            Some(at) => out.int(f(at, now)),
        },
    }
    Ok(())
}

fn ttl(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    ttl_generic(ctx, args, out, |at, now| ((at - now + 500) / 1000) as i64)
}
fn pttl(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    ttl_generic(ctx, args, out, |at, now| (at - now) as i64)
}
fn expiretime(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    ttl_generic(ctx, args, out, |at, _| (at / 1000) as i64)
}
fn pexpiretime(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    ttl_generic(ctx, args, out, |at, _| at as i64)
}

fn persist(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    match db.lookup(&args[1], now) {
        Some(idx) if db.entry(idx).expire_at().is_some() => {
            db.set_expire(idx, 0);
            out.int(1);
        }
        _ => out.int(0),
    }
    Ok(())
}

pub async fn keys(conn: &mut Conn, args: &[Bytes]) -> CmdResult {
    let pattern = args[1].clone();
    let db = conn.db;
    let found = conn
        .broadcast(move |sh| {
            let now = now_ms();
            let mut v = Vec::new();
            if let Some(d) = sh.db_if_exists(db) {
                let slots: Vec<u16> = d.slots().collect();
                for s in slots {
                    d.for_each_in_slot(s, now, |e| {
                        if glob_match(&pattern, &e.key, false) {
                            v.push(Bytes::copy_from_slice(&e.key));
                        }
                    });
                }
            }
            v
        })
        .await;
    let n: usize = found.iter().map(|v| v.len()).sum();
    conn.out.array(n);
    for k in found.iter().flatten() {
        conn.out.bulk(k);
    }
    Ok(())
}

pub async fn randomkey(conn: &mut Conn) -> CmdResult {
    let db = conn.db;
    let n = conn.engine.nshards();
    let start = rand::random_range(0..n);
    for i in 0..n {
        let s = (start + i) % n;
        let k =
            conn.run_on(s, move |sh| sh.db_if_exists(db).and_then(|d| d.random_key(now_ms())).map(|k| Bytes::copy_from_slice(&k))).await;
        if let Some(k) = k {
            conn.out.bulk(&k);
            return Ok(());
        }
    }
    conn.out.nil();
    Ok(())
}

/// RENAME / RENAMENX. Source and destination may live on different shards:
/// both are locked (in shard order) so the move is atomic.
pub async fn rename(conn: &mut Conn, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (args[1].clone(), args[2].clone());
    let db = conn.db;
    let (ss, ds) = (conn.engine.shard_of(&src), conn.engine.shard_of(&dst));
    let mut tx = conn.begin_tx();
    let mut shards = vec![ss, ds];
    shards.sort_unstable();
    tx.lock_all(&shards).await;
    let result = rename_locked(&tx, db, (ss, src), (ds, dst), nx).await;
    conn.end_tx(tx);
    let renamed = result?;
    if nx {
        conn.out.int(renamed as i64);
    } else {
        conn.out.ok();
    }
    Ok(())
}

/// The body of RENAME once both shards are held: returns whether the key
/// was renamed.
async fn rename_locked(tx: &Tx, db: usize, (ss, src): (usize, Bytes), (ds, dst): (usize, Bytes), nx: bool) -> CmdResult<bool> {
    let d2 = dst.clone();
    let dst_exists = tx.run(ds, move |sh| sh.db(db).exists(&d2, now_ms())).await;
    let s2 = src.clone();
    let src_exists = tx.run(ss, move |sh| sh.db(db).exists(&s2, now_ms())).await;
    if !src_exists {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(!nx);
    }
    if nx && dst_exists {
        return Ok(false);
    }
    let taken = tx
        .run(ss, move |sh| {
            sh.db(db).remove(&src, now_ms()).map(|e| {
                let at = e.expire_at().unwrap_or(0);
                (SendValue(e.value), at)
            })
        })
        .await;
    if let Some((v, at)) = taken {
        tx.run(ds, move |sh| {
            let d = sh.db(db);
            d.remove(&dst, now_ms());
            d.insert_new(&dst, v.0, at);
        })
        .await;
    }
    Ok(true)
}

/// A value moving between shard threads.
pub struct SendValue(pub crate::store::Value);
