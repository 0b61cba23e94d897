//! Commands that move values between keys, databases or shards: RENAME,
//! RENAMENX, COPY, MOVE, SWAPDB. Two keys may live on two shards: both are
//! locked through one `Tx`, in shard order, so the move is atomic.

use crate::commands::{Coord, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::shard::Shard;
use crate::util::{eq_ic, now_ms, parse_i64};
use bytes::Bytes;

/// RENAME / RENAMENX. Source and destination may live on different shards:
/// both are locked (in shard order) so the move is atomic.
pub async fn rename(cx: &mut dyn Coord, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (args[1].clone(), args[2].clone());
    let db = cx.db();
    let (ss, ds) = (cx.engine().shard_of(&src), cx.engine().shard_of(&dst));
    let mut shards = vec![ss, ds];
    shards.sort_unstable();
    cx.lock(&shards).await;
    let result = rename_locked(cx, db, (ss, src), (ds, dst), nx).await;
    let renamed = result?;
    if nx {
        cx.out().int(renamed as i64);
    } else {
        cx.out().ok();
    }
    Ok(())
}

/// The body of RENAME once both shards are held: returns whether the key
/// was renamed.
pub(super) async fn rename_locked(
    cx: &mut dyn Coord,
    db: usize,
    (ss, src): (usize, Bytes),
    (ds, dst): (usize, Bytes),
    nx: bool,
) -> CmdResult<bool> {
    let d2 = dst.clone();
    let dst_exists = cx.run_on(ds, move |sh| sh.db(db).exists(&d2, now_ms())).await;
    let s2 = src.clone();
    let src_exists = cx.run_on(ss, move |sh| sh.db(db).exists(&s2, now_ms())).await;
    if !src_exists {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(!nx);
    }
    if nx && dst_exists {
        return Ok(false);
    }
    let taken = cx
        .run_on(ss, move |sh| {
            let d = sh.db(db);
            let idx = d.lookup(&src, now_ms())?;
            let at = d.expire_of(idx).unwrap_or(0);
            d.remove_idx(idx).map(|e| (SendValue(e.value), at))
        })
        .await;
    if let Some((v, at)) = taken {
        cx.run_on(ds, move |sh| {
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

/// Parses an argument Redis reads as a C `int`: not an integer ->
/// `ERR value is not an integer or out of range`, beyond 32 bits -> `msg` (or
/// Redis's range error when there is none).
pub(super) fn parse_int32(arg: &[u8], msg: Option<&str>) -> CmdResult<i64> {
    let v = match parse_i64(arg) {
        Ok(v) => v,
        Err(e) => return Err(msg.map(CmdError::err).unwrap_or(e)),
    };
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(match msg {
            Some(m) => CmdError::err(m),
            None => CmdError::err(format!("value is out of range, value must between {} and {}", i32::MIN, i32::MAX)),
        });
    }
    Ok(v)
}

/// A database index argument (COPY ... DB n, MOVE).
pub(super) fn parse_db(arg: &[u8], databases: usize) -> CmdResult<usize> {
    let v = parse_int32(arg, None)?;
    if v < 0 || v as usize >= databases {
        return Err(CmdError::DbIndexOutOfRange);
    }
    Ok(v as usize)
}

/// A deep copy of a live key's value and its expiry (0 = none).
pub(super) fn duplicate(sh: &mut Shard, db: usize, key: &[u8]) -> Option<(SendValue, u64)> {
    let d = sh.db(db);
    let idx = d.lookup(key, now_ms())?;
    Some((SendValue(d.entry(idx).value.duplicate()), d.expire_of(idx).unwrap_or(0)))
}

/// Stores a copied value under `key`; refuses (false) when the key exists and
/// `replace` is not set.
pub(super) fn place(sh: &mut Shard, db: usize, key: &[u8], value: SendValue, expire_at: u64, replace: bool) -> bool {
    let now = now_ms();
    let d = sh.db(db);
    if d.exists(key, now) {
        if !replace {
            return false;
        }
        d.remove(key, now);
    }
    d.insert_new(key, value.0, expire_at);
    true
}

/// COPY source destination [DB destination-db] [REPLACE]. The copy is deep
/// and keeps the TTL. Source and destination may be on different shards and
/// in different databases: both shards are locked (in shard order) for the
/// whole operation.
pub async fn copy(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (args[1].clone(), args[2].clone());
    let src_db = cx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "REPLACE") {
            replace = true;
        } else if eq_ic(&args[j], "DB") && j + 1 < args.len() {
            dst_db = parse_db(&args[j + 1], cx.engine().cfg.databases)?;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if dst_db != src_db && cx.engine().cluster.is_some() {
        return Err(CmdError::err("Copying to another database is not allowed in cluster mode"));
    }
    if src_db == dst_db && src == dst {
        return Err(CmdError::SameObject);
    }
    let (ss, ds) = (cx.engine().shard_of(&src), cx.engine().shard_of(&dst));
    let copied = if ss == ds {
        // One job has the shard to itself: atomic without a transaction.
        cx.run_on(ss, move |sh| match duplicate(sh, src_db, &src) {
            Some((v, at)) => place(sh, dst_db, &dst, v, at, replace),
            None => false,
        })
        .await
    } else {
        cx.lock(&[ss.min(ds), ss.max(ds)]).await;
        let copied = match cx.run_on(ss, move |sh| duplicate(sh, src_db, &src)).await {
            Some((v, at)) => cx.run_on(ds, move |sh| place(sh, dst_db, &dst, v, at, replace)).await,
            None => false,
        };
        copied
    };
    cx.out().int(copied as i64);
    Ok(())
}

/// MOVE key db: the key lives on the same shard in every database, so this
/// is a single-shard command.
pub(super) fn move_(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if ctx.shard.cluster.is_some() {
        return Err(CmdError::err("MOVE is not allowed in cluster mode"));
    }
    let dst = parse_db(&args[2], ctx.shard.db_count())?;
    if dst == ctx.db {
        return Err(CmdError::SameObject);
    }
    let (now, key, src) = (ctx.now, &args[1], ctx.db);
    let Some(idx) = ctx.db().lookup(key, now) else {
        out.int(0);
        return Ok(());
    };
    if ctx.shard.db_if_exists(dst).is_some_and(|d| d.exists(key, now)) {
        out.int(0);
        return Ok(());
    }
    let at = ctx.shard.db(src).expire_of(idx).unwrap_or(0);
    let Some(e) = ctx.shard.db(src).remove_idx(idx) else {
        out.int(0);
        return Ok(());
    };
    ctx.shard.db(dst).insert_new(key, e.value, at);
    out.int(1);
    Ok(())
}

/// SWAPDB index1 index2: every shard swaps the two databases inside one
/// transaction that holds all shards, so no client sees some shards swapped
/// and others not.
pub async fn swapdb(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    if cx.engine().cluster.is_some() {
        return Err(CmdError::err("SWAPDB is not allowed in cluster mode"));
    }
    let a = parse_int32(&args[1], Some("invalid first DB index"))?;
    let b = parse_int32(&args[2], Some("invalid second DB index"))?;
    let n = cx.engine().cfg.databases as i64;
    if !(0..n).contains(&a) || !(0..n).contains(&b) {
        return Err(CmdError::DbIndexOutOfRange);
    }
    let (a, b) = (a as usize, b as usize);
    for s in 0..cx.engine().nshards() {
        cx.lock_run(s, move |sh| sh.swap_dbs(a, b)).await;
    }
    cx.out().ok();
    Ok(())
}
