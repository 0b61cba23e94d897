//! Sorted-set writes on one key: ZADD, ZINCRBY, ZREM, ZREMRANGEBY*,
//! ZPOPMIN/ZPOPMAX and the pop helpers the blocking commands share.

use super::*;
use crate::commands::pops::Kind;
use crate::commands::{Coord, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::store::{Db, Value};
use crate::types::zset::{LexRange, Outcome, ScoreRange, ZLimits, ZSet};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;

// ---------------------------------------------------------------- ZADD, ZINCRBY

pub(super) fn zadd(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) = (false, false, false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "NX") {
            nx = true;
        } else if eq_ic(a, "XX") {
            xx = true;
        } else if eq_ic(a, "GT") {
            gt = true;
        } else if eq_ic(a, "LT") {
            lt = true;
        } else if eq_ic(a, "CH") {
            ch = true;
        } else if eq_ic(a, "INCR") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::err("XX and NX options at the same time are not compatible"));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::err("GT, LT, and/or NX options at the same time are not compatible"));
    }
    if incr && rest.len() > 2 {
        return Err(CmdError::err("INCR option supports a single increment-element pair"));
    }
    let scores = rest.iter().step_by(2).map(|s| parse_score(s)).collect::<CmdResult<Vec<f64>>>()?;
    let limits = limits(ctx);
    let now = ctx.now;
    let db = ctx.db();
    let key = &args[1];
    let idx = match find(db, key, now)? {
        Some(idx) => idx,
        None if xx => {
            if incr {
                out.nil();
            } else {
                out.int(0);
            }
            return Ok(());
        }
        None => {
            let longest = rest.iter().skip(1).step_by(2).map(|m| m.len()).max().unwrap_or(0);
            let z = ZSet::with_hint(scores.len(), longest, limits);
            db.insert_new(key, Value::ZSet(Box::new(z)), 0)
        }
    };
    // Only a change writes (watchers and keyspace events see nothing
    // else): some member is new and may be added, or changes its score.
    let changes = |z: &ZSet| {
        rest.chunks_exact(2).zip(&scores).any(|(pair, &score)| match z.score(&pair[1]) {
            None => !xx,
            Some(old) => {
                let new = if incr { old + score } else { score };
                !nx && new != old && (!gt || new > old) && (!lt || new < old)
            }
        })
    };
    if !changes(zset_ref(db, idx)?) {
        if incr {
            // INCR by 0 of a member, with no NX/GT/LT to stop it, answers
            // its score; a stopped one answers nil.
            match zset_ref(db, idx)?.score(&rest[1]) {
                Some(old) if !nx && !gt && !lt => out.double(old),
                _ => out.nil(),
            }
        } else {
            out.int(0);
        }
        return Ok(());
    }
    let z = zset_at(db, idx)?;
    let (mut added, mut updated, mut processed, mut nan) = (0, 0, 0, false);
    let mut last = 0.0;
    let mut result = Ok(());
    for (pair, &score) in rest.chunks_exact(2).zip(&scores) {
        let member = &pair[1];
        let mut new_score = score;
        let r = z.upsert(member, limits, |cur| match cur {
            Some(c) => {
                if nx {
                    return None;
                }
                let s = if incr { c + score } else { score };
                if s.is_nan() {
                    nan = true;
                    return None;
                }
                if (gt && s <= c) || (lt && s >= c) {
                    return None;
                }
                new_score = s;
                Some(s)
            }
            None => (!xx).then_some(score),
        });
        match r {
            Ok(Outcome::Added) => {
                added += 1;
                processed += 1;
            }
            Ok(Outcome::Updated) => {
                updated += 1;
                processed += 1;
            }
            Ok(Outcome::Same) => processed += 1,
            Ok(Outcome::Nop) => {}
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
        last = new_score;
        if nan {
            result = Err(err_nan());
            break;
        }
    }
    drop_if_empty(db, idx);
    result?;
    if incr {
        if processed > 0 {
            out.double(last);
        } else {
            out.nil();
        }
    } else {
        out.int(added + if ch { updated } else { 0 });
    }
    Ok(())
}

pub(super) fn zincrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let delta = parse_score(&args[2])?;
    let member = &args[3];
    let limits = limits(ctx);
    let now = ctx.now;
    let db = ctx.db();
    let idx = match find(db, &args[1], now)? {
        Some(idx) => idx,
        None => db.insert_new(&args[1], Value::ZSet(Box::new(ZSet::with_hint(1, member.len(), limits))), 0),
    };
    // A score the increment leaves as it is (an infinite one, or one too
    // big for the increment to show) is no write: no watcher or keyspace
    // event hears of it, as in Redis.
    if let Some(old) = zset_ref(db, idx)?.score(member) {
        if old + delta == old {
            out.double(old + delta);
            return Ok(());
        }
    }
    let z = zset_at(db, idx)?;
    let mut new = delta;
    let r = z.upsert(member, limits, |cur| {
        // A new member takes the increment itself (-0 stays -0, as in Redis).
        new = cur.map_or(delta, |c| c + delta);
        (!new.is_nan()).then_some(new)
    });
    drop_if_empty(db, idx);
    r?;
    if new.is_nan() {
        return Err(err_nan());
    }
    out.double(new);
    Ok(())
}

// ---------------------------------------------------------------- removals

pub(super) fn zrem(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.int(0);
        return Ok(());
    };
    // Only a removal writes (watchers and keyspace events see nothing else).
    if !args[2..].iter().any(|m| zset_ref(db, idx).is_ok_and(|z| z.score(m).is_some())) {
        zset_ref(db, idx)?;
        out.int(0);
        return Ok(());
    }
    let z = zset_at(db, idx)?;
    let mut n = 0;
    for m in &args[2..] {
        if z.remove(m).is_some() {
            n += 1;
            if z.is_empty() {
                break;
            }
        }
    }
    drop_if_empty(db, idx);
    out.int(n);
    Ok(())
}

/// Removes the ranks chosen by `pick` from the set at `args[1]`; replies
/// with the count.
pub(super) fn remove_range(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, pick: impl FnOnce(&ZSet) -> (usize, usize)) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.int(0);
        return Ok(());
    };
    let z = zset_ref(db, idx)?;
    let (a, b) = pick(z);
    if a >= b.min(z.len()) {
        // Nothing to remove: no write.
        out.int(0);
        return Ok(());
    }
    let n = zset_at(db, idx)?.remove_ranks(a, b);
    drop_if_empty(db, idx);
    out.int(n as i64);
    Ok(())
}

pub(super) fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (start, end) = (parse_i64(&args[2])?, parse_i64(&args[3])?);
    remove_range(ctx, args, out, |z| rank_window(start, end, z.len()).unwrap_or((0, 0)))
}

pub(super) fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3]).ok_or_else(err_score_range)?;
    remove_range(ctx, args, out, |z| z.score_ranks(&r))
}

pub(super) fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3]).ok_or_else(err_lex_range)?;
    remove_range(ctx, args, out, |z| z.lex_ranks(&r))
}

pub(super) fn pop_generic(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, max: bool) -> CmdResult {
    let count = crate::commands::pops::parse_count(args)?.map(|c| c as u64);
    let now = ctx.now;
    let db = ctx.db();
    let idx = find(db, &args[1], now)?;
    let (Some(idx), false) = (idx, count == Some(0)) else {
        out.array(0);
        return Ok(());
    };
    let z = zset_at(db, idx)?;
    let n = count.unwrap_or(1).min(z.len() as u64) as usize;
    // RESP3 nests the pairs only when a count was given.
    let nested = out.resp3 && count.is_some();
    out.array(if nested { n } else { n * 2 });
    for _ in 0..n {
        z.pop(max, |m, s| {
            if nested {
                out.array(2);
            }
            out.bulk(m);
            out.double(s);
        });
    }
    drop_if_empty(db, idx);
    Ok(())
}

/// Pops up to `count` members (highest scores with `max`) of the sorted set
/// at `key`: none when there is no such key; WRONGTYPE for another type.
pub fn pop_members(db: &mut Db, key: &[u8], max: bool, count: usize, now: u64) -> CmdResult<Vec<(Vec<u8>, f64)>> {
    let Some(idx) = find(db, key, now)? else { return Ok(Vec::new()) };
    let z = zset_at(db, idx)?;
    let n = count.min(z.len());
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        z.pop(max, |m, sc| items.push((m.to_vec(), sc)));
    }
    drop_if_empty(db, idx);
    Ok(items)
}

/// Whether `key` holds a non-empty sorted set.
pub fn has_members(db: &mut Db, key: &[u8], now: u64) -> bool {
    matches!(find(db, key, now), Ok(Some(_)))
}

/// Puts popped members back (a blocked client that left before its reply).
pub fn push_back(db: &mut Db, key: &[u8], items: Vec<(Vec<u8>, f64)>, limits: ZLimits, now: u64) {
    let idx = match find(db, key, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => db.insert_new(key, Value::ZSet(Box::new(ZSet::with_hint(items.len(), 16, limits))), 0),
        Err(_) => return,
    };
    if let Ok(z) = zset_at(db, idx) {
        for (m, sc) in items {
            let _ = z.upsert(&m, limits, |_| Some(sc));
        }
    }
}

/// ZMPOP's arguments: (keys, highest scores, count).
pub fn parse_mpop_args(args: &[Bytes]) -> CmdResult<(Vec<Bytes>, bool, usize)> {
    crate::commands::pops::parse_mpop(args, 1, "MIN", "MAX")
}

/// ZMPOP.
pub async fn zmpop(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = crate::commands::pops::parse_mpop(args, 1, "MIN", "MAX")?;
    crate::commands::pops::pop_first(cx, &keys, Kind::ZSet { max, mpop: true }, count, crate::commands::pops::PopReply::Nested, None, args)
        .await
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout.
pub async fn bzpop(cx: &mut dyn Coord, args: &[Bytes], max: bool) -> CmdResult {
    let timeout = crate::commands::pops::parse_timeout(&args[args.len() - 1])?;
    let keys = args[1..args.len() - 1].to_vec();
    crate::commands::pops::pop_first(
        cx,
        &keys,
        Kind::ZSet { max, mpop: false },
        1,
        crate::commands::pops::PopReply::Flat,
        Some(timeout),
        args,
    )
    .await
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
pub async fn bzmpop(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let timeout = crate::commands::pops::parse_timeout(&args[1])?;
    let (keys, max, count) = crate::commands::pops::parse_mpop(args, 2, "MIN", "MAX")?;
    crate::commands::pops::pop_first(
        cx,
        &keys,
        Kind::ZSet { max, mpop: true },
        count,
        crate::commands::pops::PopReply::Nested,
        Some(timeout),
        args,
    )
    .await
}

pub(super) fn zpopmin(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    pop_generic(ctx, args, out, false)
}

pub(super) fn zpopmax(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    pop_generic(ctx, args, out, true)
}
