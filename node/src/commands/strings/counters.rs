//! Counters: INCR, DECR, INCRBY, DECRBY and INCRBYFLOAT.

use bytes::Bytes;

use super::with_string;
use crate::commands::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::resp::reply::format_double;
use crate::resp::Out;
use crate::store::Value;
use crate::util::{canonical_int, parse_i64, parse_long_double};

/// Adds `delta` to the integer at `key` (0 when missing); returns the result.
fn incr_by(ctx: &mut Ctx, key: &[u8], delta: i64) -> CmdResult<i64> {
    let now = ctx.now;
    let db = ctx.db();
    match db.lookup(key, now) {
        Some(idx) => {
            let e = db.entry_mut(idx);
            let cur = match &e.value {
                Value::Int(n) => *n,
                Value::Str(s) => canonical_int(s).ok_or(CmdError::NotInteger)?,
                _ => return Err(CmdError::WrongType),
            };
            let new = cur.checked_add(delta).ok_or(CmdError::Overflow)?;
            e.value = Value::Int(new);
            Ok(new)
        }
        None => {
            db.insert_new(key, Value::Int(delta), 0);
            Ok(delta)
        }
    }
}

pub(super) fn incr(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    out.int(incr_by(ctx, &args[1], 1)?);
    Ok(())
}

pub(super) fn decr(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    out.int(incr_by(ctx, &args[1], -1)?);
    Ok(())
}

pub(super) fn incrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let d = parse_i64(&args[2])?;
    out.int(incr_by(ctx, &args[1], d)?);
    Ok(())
}

pub(super) fn decrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let d = parse_i64(&args[2])?;
    let d = d.checked_neg().ok_or_else(|| CmdError::err("decrement would overflow"))?;
    out.int(incr_by(ctx, &args[1], d)?);
    Ok(())
}

pub(super) fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    // Journaled as Redis propagates it: SET key <result> KEEPTTL.
    let journal = ctx.shard.journal_mark(ctx.db);
    let db = ctx.db();
    let cur = with_string(db, &args[1], now, |b| parse_long_double(b).map(|v| (v, crate::types::decimal::add(b, &args[2]))))?;
    let (cur, exact) = match cur {
        Some(v) => v?,
        None => (0.0, crate::types::decimal::add(b"0", &args[2])),
    };
    // After the key's type and value, as Redis checks them.
    let delta = parse_long_double(&args[2])?;
    let new = cur + delta;
    if !new.is_finite() {
        return Err(CmdError::NanOrInfinity);
    }
    // Short decimals add exactly, as Redis's long double shows them.
    let text = exact.unwrap_or_else(|| format_double(new));
    db.set(&args[1], Value::string(text.as_bytes()), true, now);
    if let Some(mark) = journal {
        ctx.shard.journal_parts(ctx.db, mark, &[b"SET", &args[1], text.as_bytes(), b"KEEPTTL"]);
    }
    out.bulk(text.as_bytes());
    Ok(())
}
