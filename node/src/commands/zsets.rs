//! Sorted-set commands. Single-key commands (ZADD, ZINCRBY, ZSCORE, ZRANGE
//! and its legacy forms, ZREM*, ZPOP*, ZRANDMEMBER, ZSCAN, ...) run on the
//! key's shard. Commands that read or write several keys (ZUNION, ZINTER,
//! ZDIFF, ZINTERCARD, their STORE forms, ZRANGESTORE) run on the
//! connection: when all their keys live on one shard they run there in one
//! job, otherwise they lock the shards involved through `Tx`, copy the
//! inputs out, compute, and write the destination before releasing.
//!
//! Options, reply shapes and error texts follow Redis 7.2.

use std::borrow::Cow;

use bytes::Bytes;
use foldhash::fast::RandomState;
use hashbrown::hash_map::Entry as MapEntry;
use hashbrown::HashMap;

use super::notify::{self, Notify};
use super::pops::Kind;
use super::{cmd, flag::*, CommandSpec, Coord, Ctx, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::reply::{d2string, format_g17};
use crate::resp::Out;

use crate::store::{Db, Value};
use crate::types::zset::{LexRange, Outcome, ScoreRange, ZLimits, ZSet, ZSetFull};
use crate::util::{eq_ic, glob_match, now_ms, parse_f64, parse_i64};

const RF: &[&str] = &["read", "sortedset", "fast"];
const RS: &[&str] = &["read", "sortedset", "slow"];
const WF: &[&str] = &["write", "sortedset", "fast"];
const WS: &[&str] = &["write", "sortedset", "slow"];
const G: &str = "sorted-set";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        WF,
        G,
        "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.",
        Exec::Shard(zadd),
    ).notify(Notify::Pick(notify::zadd)).key_flags(&["RW", "update"]),
    cmd("zincrby", 4, WRITE | DENYOOM | FAST | JOURNAL_ARGS, (1, 1, 1), WF, G, "Increments the score of a member in a sorted set.", Exec::Shard(zincrby)).notify(Notify::Each(ks::ZSET, "zincr")).key_flags(&["RW", "access", "update"]),
    cmd("zscore", 3, READONLY | FAST, (1, 1, 1), RF, G, "Returns the score of a member in a sorted set.", Exec::Shard(zscore)).key_flags(&["RO", "access"]),
    cmd(
        "zmscore",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        RF,
        G,
        "Returns the score of one or more members in a sorted set.",
        Exec::Shard(zmscore),
    ).key_flags(&["RO", "access"]),
    cmd("zcard", 2, READONLY | FAST, (1, 1, 1), RF, G, "Returns the number of members in a sorted set.", Exec::Shard(zcard)),
    cmd(
        "zcount",
        4,
        READONLY | FAST,
        (1, 1, 1),
        RF,
        G,
        "Returns the count of members in a sorted set that have scores within a range.",
        Exec::Shard(zcount),
    ).key_flags(&["RO", "access"]),
    cmd(
        "zlexcount",
        4,
        READONLY | FAST,
        (1, 1, 1),
        RF,
        G,
        "Returns the number of members in a sorted set within a lexicographical range.",
        Exec::Shard(zlexcount),
    ).key_flags(&["RO", "access"]),
    cmd(
        "zrank",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        RF,
        G,
        "Returns the index of a member in a sorted set ordered by ascending scores.",
        Exec::Shard(zrank),
    ).key_flags(&["RO", "access"]),
    cmd(
        "zrevrank",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        RF,
        G,
        "Returns the index of a member in a sorted set ordered by descending scores.",
        Exec::Shard(zrevrank),
    ).key_flags(&["RO", "access"]),
    cmd("zrange", -4, READONLY, (1, 1, 1), RS, G, "Returns members in a sorted set within a range of indexes.", Exec::Shard(zrange)).key_flags(&["RO", "access"]),
    cmd(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        (1, 2, 1),
        WS,
        G,
        "Stores a range of members from sorted set in a key.",
        Exec::Coord(handler!(async |cx, a| zrangestore(cx, a))),
    ).notify(Notify::Store(ks::ZSET, "zrangestore")).keys(&[KeyRule::range(1, 1, 1).with_flags(&["OW", "update"]), KeyRule::range(2, 2, 1).with_flags(&["RO", "access"])]),
    cmd(
        "zrevrange",
        -4,
        READONLY,
        (1, 1, 1),
        RS,
        G,
        "Returns members in a sorted set within a range of indexes in reverse order.",
        Exec::Shard(zrevrange),
    ).key_flags(&["RO", "access"]),
    cmd(
        "zrangebyscore",
        -4,
        READONLY,
        (1, 1, 1),
        RS,
        G,
        "Returns members in a sorted set within a range of scores.",
        Exec::Shard(zrangebyscore),
    ).key_flags(&["RO", "access"]),
    cmd(
        "zrevrangebyscore",
        -4,
        READONLY,
        (1, 1, 1),
        RS,
        G,
        "Returns members in a sorted set within a range of scores in reverse order.",
        Exec::Shard(zrevrangebyscore),
    ).key_flags(&["RO", "access"]),
    cmd(
        "zrangebylex",
        -4,
        READONLY,
        (1, 1, 1),
        RS,
        G,
        "Returns members in a sorted set within a lexicographical range.",
        Exec::Shard(zrangebylex),
    ).key_flags(&["RO", "access"]),
    cmd(
        "zrevrangebylex",
        -4,
        READONLY,
        (1, 1, 1),
        RS,
        G,
        "Returns members in a sorted set within a lexicographical range in reverse order.",
        Exec::Shard(zrevrangebylex),
    ).key_flags(&["RO", "access"]),
    cmd(
        "zrem",
        -3,
        WRITE | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        WF,
        G,
        "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.",
        Exec::Shard(zrem),
    ).notify(Notify::Counted(ks::ZSET, "zrem")).key_flags(&["RW", "delete"]),
    cmd(
        "zremrangebyrank",
        4,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        WS,
        G,
        "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
        Exec::Shard(zremrangebyrank),
    ).notify(Notify::Counted(ks::ZSET, "zremrangebyrank")).key_flags(&["RW", "delete"]),
    cmd(
        "zremrangebyscore",
        4,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        WS,
        G,
        "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
        Exec::Shard(zremrangebyscore),
    ).notify(Notify::Counted(ks::ZSET, "zremrangebyscore")).key_flags(&["RW", "delete"]),
    cmd(
        "zremrangebylex",
        4,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        WS,
        G,
        "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
        Exec::Shard(zremrangebylex),
    ).notify(Notify::Counted(ks::ZSET, "zremrangebylex")).key_flags(&["RW", "delete"]),
    cmd(
        "zpopmin",
        -2,
        WRITE | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        WF,
        G,
        "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
        Exec::Shard(zpopmin),
    ).notify(Notify::Each(ks::ZSET, "zpopmin")).key_flags(&["RW", "access", "delete"]),
    cmd(
        "zpopmax",
        -2,
        WRITE | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        WF,
        G,
        "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
        Exec::Shard(zpopmax),
    ).notify(Notify::Each(ks::ZSET, "zpopmax")).key_flags(&["RW", "access", "delete"]),
    super::cmd_numkeys(
        "zmpop",
        -4,
        WRITE,
        1,
        &["write", "sortedset", "slow"],
        G,
        "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.",
        Exec::Coord(handler!(async |cx, a| zmpop(cx, a))),
    ).notify(Notify::Pick(notify::zmpop)).key_flags(&["RW", "access", "delete"]),
    cmd(
        "bzpopmin",
        -3,
        WRITE | FAST | BLOCKING,
        (1, -2, 1),
        &["write", "sortedset", "fast", "blocking"],
        G,
        "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| bzpop(cx, a, false))),
    ).notify(Notify::Each(ks::ZSET, "zpopmin")).key_flags(&["RW", "access", "delete"]),
    cmd(
        "bzpopmax",
        -3,
        WRITE | FAST | BLOCKING,
        (1, -2, 1),
        &["write", "sortedset", "fast", "blocking"],
        G,
        "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| bzpop(cx, a, true))),
    ).notify(Notify::Each(ks::ZSET, "zpopmax")).key_flags(&["RW", "access", "delete"]),
    super::cmd_numkeys(
        "bzmpop",
        -5,
        WRITE | BLOCKING,
        2,
        &["write", "sortedset", "slow", "blocking"],
        G,
        "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
        Exec::Coord(handler!(async |cx, a| bzmpop(cx, a))),
    ).notify(Notify::Pick(notify::zmpop)).key_flags(&["RW", "access", "delete"]),
    cmd("zrandmember", -2, READONLY, (1, 1, 1), RS, G, "Returns one or more random members from a sorted set.", Exec::Shard(zrandmember))
    .tips(&["nondeterministic_output"]).key_flags(&["RO", "access"]),
    cmd("zscan", -3, READONLY, (1, 1, 1), RS, G, "Iterates over members and scores of a sorted set.", Exec::Shard(zscan))
    .tips(&["nondeterministic_output"]).key_flags(&["RO", "access"]),
    cmd("zunion", -3, READONLY | MOVABLEKEYS, (0, 0, 0), RS, G, "Returns the union of multiple sorted sets.", Exec::Coord(handler!(async |cx, a| setop(cx, a, SetKind::Union, false, false))))
    .keys(&[super::KeyRule::numkeys(1).with_flags(&["RO", "access"])]),
    cmd(
        "zinter",
        -3,
        READONLY | MOVABLEKEYS,
        (0, 0, 0),
        RS,
        G,
        "Returns the intersect of multiple sorted sets.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetKind::Inter, false, false))),
    )
    .keys(&[super::KeyRule::numkeys(1).with_flags(&["RO", "access"])]),
    cmd(
        "zdiff",
        -3,
        READONLY | MOVABLEKEYS,
        (0, 0, 0),
        RS,
        G,
        "Returns the difference between multiple sorted sets.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetKind::Diff, false, false))),
    )
    .keys(&[super::KeyRule::numkeys(1).with_flags(&["RO", "access"])]),
    cmd(
        "zunionstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        (1, 1, 1),
        WS,
        G,
        "Stores the union of multiple sorted sets in a key.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetKind::Union, true, false))),
    ).notify(Notify::Store(ks::ZSET, "zunionstore"))
    .keys(&[super::KeyRule::range(1, 1, 1).with_flags(&["OW", "update"]), super::KeyRule::numkeys(2).with_flags(&["RO", "access"])]),
    cmd(
        "zinterstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        (1, 1, 1),
        WS,
        G,
        "Stores the intersect of multiple sorted sets in a key.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetKind::Inter, true, false))),
    ).notify(Notify::Store(ks::ZSET, "zinterstore"))
    .keys(&[super::KeyRule::range(1, 1, 1).with_flags(&["OW", "update"]), super::KeyRule::numkeys(2).with_flags(&["RO", "access"])]),
    cmd(
        "zdiffstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        (1, 1, 1),
        WS,
        G,
        "Stores the difference of multiple sorted sets in a key.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetKind::Diff, true, false))),
    ).notify(Notify::Store(ks::ZSET, "zdiffstore"))
    .keys(&[super::KeyRule::range(1, 1, 1).with_flags(&["OW", "update"]), super::KeyRule::numkeys(2).with_flags(&["RO", "access"])]),
    cmd(
        "zintercard",
        -3,
        READONLY | MOVABLEKEYS,
        (0, 0, 0),
        RS,
        G,
        "Returns the number of members of the intersect of multiple sorted sets.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetKind::Inter, false, true))),
    )
    .keys(&[super::KeyRule::numkeys(1).with_flags(&["RO", "access"])]),
];

// ---------------------------------------------------------------- helpers

impl From<ZSetFull> for CmdError {
    fn from(_: ZSetFull) -> Self {
        CmdError::err("sorted set is too large")
    }
}

fn err_nan() -> CmdError {
    CmdError::err("resulting score is not a number (NaN)")
}

fn err_score_range() -> CmdError {
    CmdError::err("min or max is not a float")
}

fn err_lex_range() -> CmdError {
    CmdError::err("min or max not valid string range item")
}

fn limits(ctx: &Ctx) -> ZLimits {
    ctx.shard.cfg.zset_limits()
}

/// Parses a score, increment or weight as Redis's `getDoubleFromObject`
/// does: the whole argument must be a number (no spaces, no NaN), and
/// values that overflow to infinity or underflow to zero are refused.
pub fn parse_score(b: &[u8]) -> CmdResult<f64> {
    let v = parse_f64(b)?;
    let text = b.to_ascii_lowercase();
    let unsigned = text.strip_prefix(b"+").or_else(|| text.strip_prefix(b"-")).unwrap_or(&text);
    if v.is_infinite() && unsigned != b"inf" && unsigned != b"infinity" {
        return Err(CmdError::NotFloat);
    }
    if v == 0.0 {
        let mantissa = unsigned.split(|&c| c == b'e').next().unwrap_or(&[]);
        if mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
            return Err(CmdError::NotFloat);
        }
    }
    Ok(v)
}

/// The sorted set at `key` for reading (`None` when missing), counting the
/// keyspace hit or miss.
fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a ZSet>> {
    let now = ctx.now;
    let idx = ctx.db().lookup(key, now);
    if idx.is_some() {
        ctx.shard.stats.keyspace_hits += 1;
    } else {
        ctx.shard.stats.keyspace_misses += 1;
    }
    let Some(idx) = idx else { return Ok(None) };
    match &ctx.db().entry(idx).value {
        Value::ZSet(z) => Ok(Some(z)),
        _ => Err(CmdError::WrongType),
    }
}

/// The slab index of the sorted set at `key` (`None` when missing).
fn find(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<u32>> {
    match db.lookup(key, now) {
        None => Ok(None),
        Some(idx) => match db.entry(idx).value {
            Value::ZSet(_) => Ok(Some(idx)),
            _ => Err(CmdError::WrongType),
        },
    }
}

fn zset_ref(db: &Db, idx: u32) -> CmdResult<&ZSet> {
    match &db.entry(idx).value {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

fn zset_at(db: &mut Db, idx: u32) -> CmdResult<&mut ZSet> {
    match &mut db.entry_mut(idx).value {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

/// Deletes the key at `idx` when its set became empty.
fn drop_if_empty(db: &mut Db, idx: u32) {
    if matches!(&db.entry(idx).value, Value::ZSet(z) if z.is_empty()) {
        db.remove_idx(idx);
    }
}

/// Replaces `key` with `z` (deleting it when `z` is empty), clearing any TTL.
fn store_set(db: &mut Db, key: &[u8], z: ZSet, now: u64) {
    db.remove(key, now);
    if !z.is_empty() {
        db.insert_new(key, Value::ZSet(Box::new(z)), 0);
    }
}

/// Writes `n` (member, score) pairs' header: a flat array in RESP2 (or
/// without scores), an array of pairs in RESP3.
fn pairs_header(out: &mut Out, n: usize, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(n * 2);
    } else {
        out.array(n);
    }
}

fn pair(out: &mut Out, m: &[u8], s: f64, withscores: bool) {
    if withscores {
        if out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        out.double(s);
    } else {
        out.bulk(m);
    }
}

/// Redis's rank-range normalisation (negative indexes count from the end):
/// the ranks `[a, b)`, or `None` when empty.
fn rank_window(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let s = if start < 0 { (len + start).max(0) } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize + 1))
}

// ---------------------------------------------------------------- ZADD, ZINCRBY

fn zadd(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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

fn zincrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let delta = parse_score(&args[2])?;
    let member = &args[3];
    let limits = limits(ctx);
    let now = ctx.now;
    let db = ctx.db();
    let idx = match find(db, &args[1], now)? {
        Some(idx) => idx,
        None => db.insert_new(&args[1], Value::ZSet(Box::new(ZSet::with_hint(1, member.len(), limits))), 0),
    };
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

// ---------------------------------------------------------------- point reads

fn zscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    match read(ctx, &args[1])?.and_then(|z| z.score(&args[2])) {
        Some(s) => out.double(s),
        None => out.nil(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let z = read(ctx, &args[1])?;
    out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => out.double(s),
            None => out.nil(),
        }
    }
    Ok(())
}

fn zcard(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let n = read(ctx, &args[1])?.map_or(0, |z| z.len());
    out.int(n as i64);
    Ok(())
}

fn zcount(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3]).ok_or_else(err_score_range)?;
    let n = read(ctx, &args[1])?.map_or(0, |z| {
        let (a, b) = z.score_ranks(&r);
        b - a
    });
    out.int(n as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3]).ok_or_else(err_lex_range)?;
    let n = read(ctx, &args[1])?.map_or(0, |z| {
        let (a, b) = z.lex_ranks(&r);
        b - a
    });
    out.int(n as i64);
    Ok(())
}

fn rank_generic(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, rev: bool) -> CmdResult {
    let withscore = match args.len() {
        3 => false,
        4 if eq_ic(&args[3], "WITHSCORE") => true,
        4 => return Err(CmdError::Syntax),
        _ => return Err(CmdError::wrong_arity(if rev { "zrevrank" } else { "zrank" })),
    };
    let z = read(ctx, &args[1])?;
    let found = z.and_then(|z| z.rank(&args[2]).map(|(r, s)| (if rev { z.len() - 1 - r } else { r }, s)));
    match found {
        Some((r, s)) => {
            if withscore {
                out.array(2);
                out.int(r as i64);
                out.double(s);
            } else {
                out.int(r as i64);
            }
        }
        None if withscore => out.nil_array(),
        None => out.nil(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    rank_generic(ctx, args, out, false)
}

fn zrevrank(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    rank_generic(ctx, args, out, true)
}

// ---------------------------------------------------------------- ranges

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed Z*RANGE* request, validated, owning its arguments (it may be
/// sent to another shard).
#[derive(Clone, Debug)]
struct RangeReq {
    by: By,
    rev: bool,
    withscores: bool,
    offset: i64,
    /// Negative: no limit.
    limit: i64,
    rank: (i64, i64),
    score: Option<ScoreRange>,
    /// Lex bounds, checked by `parse_range`.
    lex: (Bytes, Bytes),
}

/// Parses the range arguments starting at `args[first]` (min, max, then
/// options) as Redis's `zrangeGenericCommand`: `by` and `rev` are fixed for
/// the legacy commands (`None` lets the options choose).
fn parse_range(args: &[Bytes], first: usize, store: bool, by: Option<By>, rev: Option<bool>) -> CmdResult<RangeReq> {
    let (mut by_opt, mut rev_opt) = (by, rev);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = first + 2;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && eq_ic(a, "WITHSCORES") {
            withscores = true;
        } else if eq_ic(a, "LIMIT") && left >= 2 {
            offset = parse_i64(&args[j + 1])?;
            limit = parse_i64(&args[j + 2])?;
            j += 2;
        } else if rev_opt.is_none() && eq_ic(a, "REV") {
            rev_opt = Some(true);
        } else if by_opt.is_none() && eq_ic(a, "BYLEX") {
            by_opt = Some(By::Lex);
        } else if by_opt.is_none() && eq_ic(a, "BYSCORE") {
            by_opt = Some(By::Score);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let by = by_opt.unwrap_or(By::Rank);
    let rev = rev_opt.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return Err(CmdError::err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && by == By::Lex {
        return Err(CmdError::err("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut lo, mut hi) = (&args[first], &args[first + 1]);
    if rev && by != By::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let mut req = RangeReq { by, rev, withscores, offset, limit, rank: (0, 0), score: None, lex: (lo.clone(), hi.clone()) };
    match by {
        By::Rank => req.rank = (parse_i64(lo)?, parse_i64(hi)?),
        By::Score => req.score = Some(ScoreRange::parse(lo, hi).ok_or_else(err_score_range)?),
        By::Lex => {
            LexRange::parse(lo, hi).ok_or_else(err_lex_range)?;
        }
    }
    Ok(req)
}

impl RangeReq {
    /// The ranks to visit, `[a, b)`, descending when `self.rev`.
    fn window(&self, z: &ZSet) -> (usize, usize) {
        let n = z.len();
        let (s, e) = match self.by {
            By::Rank => {
                return match rank_window(self.rank.0, self.rank.1, n) {
                    None => (0, 0),
                    Some((a, b)) if self.rev => (n - b, n - a),
                    Some(w) => w,
                };
            }
            By::Score => match &self.score {
                Some(r) => z.score_ranks(r),
                None => (0, 0),
            },
            By::Lex => match LexRange::parse(&self.lex.0, &self.lex.1) {
                Some(r) => z.lex_ranks(&r),
                None => (0, 0),
            },
        };
        let avail = e - s;
        if self.offset < 0 || self.offset as u64 >= avail as u64 {
            return (0, 0);
        }
        let offset = self.offset as usize;
        let take = if self.limit < 0 { avail - offset } else { (self.limit as u64).min((avail - offset) as u64) as usize };
        if self.rev {
            (e - offset - take, e - offset)
        } else {
            (s + offset, s + offset + take)
        }
    }

    /// The selected entries, ascending by (score, member), copied out.
    fn items(&self, z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        let (a, b) = self.window(z);
        let mut v = Vec::with_capacity(b - a);
        z.for_range(a, b, false, |m, s| v.push((m.to_vec(), s)));
        v
    }
}

fn range_reply(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, by: Option<By>, rev: Option<bool>) -> CmdResult {
    let req = parse_range(args, 2, false, by, rev)?;
    let Some(z) = read(ctx, &args[1])? else {
        out.array(0);
        return Ok(());
    };
    let (a, b) = req.window(z);
    pairs_header(out, b - a, req.withscores);
    z.for_range(a, b, req.rev, |m, s| pair(out, m, s, req.withscores));
    Ok(())
}

fn zrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, None, None)
}

fn zrevrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Rank), Some(true))
}

fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Score), Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Score), Some(true))
}

fn zrangebylex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Lex), Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Lex), Some(true))
}

// ---------------------------------------------------------------- removals

fn zrem(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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
fn remove_range(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, pick: impl FnOnce(&ZSet) -> (usize, usize)) -> CmdResult {
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

fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (start, end) = (parse_i64(&args[2])?, parse_i64(&args[3])?);
    remove_range(ctx, args, out, |z| rank_window(start, end, z.len()).unwrap_or((0, 0)))
}

fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3]).ok_or_else(err_score_range)?;
    remove_range(ctx, args, out, |z| z.score_ranks(&r))
}

fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3]).ok_or_else(err_lex_range)?;
    remove_range(ctx, args, out, |z| z.lex_ranks(&r))
}

fn pop_generic(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, max: bool) -> CmdResult {
    let count = super::pops::parse_count(args)?.map(|c| c as u64);
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
    super::pops::parse_mpop(args, 1, "MIN", "MAX")
}

/// ZMPOP.
pub async fn zmpop(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = super::pops::parse_mpop(args, 1, "MIN", "MAX")?;
    super::pops::pop_first(cx, &keys, Kind::ZSet { max }, count, super::pops::PopReply::Nested, None, args).await
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout.
pub async fn bzpop(cx: &mut dyn Coord, args: &[Bytes], max: bool) -> CmdResult {
    let timeout = super::pops::parse_timeout(&args[args.len() - 1])?;
    let keys = args[1..args.len() - 1].to_vec();
    super::pops::pop_first(cx, &keys, Kind::ZSet { max }, 1, super::pops::PopReply::Flat, Some(timeout), args).await
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
pub async fn bzmpop(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let timeout = super::pops::parse_timeout(&args[1])?;
    let (keys, max, count) = super::pops::parse_mpop(args, 2, "MIN", "MAX")?;
    super::pops::pop_first(cx, &keys, Kind::ZSet { max }, count, super::pops::PopReply::Nested, Some(timeout), args).await
}

fn zpopmin(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    pop_generic(ctx, args, out, false)
}

fn zpopmax(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    pop_generic(ctx, args, out, true)
}

// ---------------------------------------------------------------- random, scan

/// Largest |count| ZRANDMEMBER serves with repetitions: the whole reply is
/// built in memory, so an absurd count is refused instead of exhausting it.
const RANDMEMBER_MAX_REPEATS: u64 = 10_000_000;

fn zrandmember(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() == 2 {
        match read(ctx, &args[1])? {
            Some(z) if !z.is_empty() => match z.get(rand::random_range(0..z.len())) {
                Some((m, _)) => out.bulk(m),
                None => out.nil(),
            },
            _ => out.nil(),
        }
        return Ok(());
    }
    let l = parse_i64(&args[2])?;
    if l == i64::MIN {
        return Err(CmdError::err(format!("value is out of range, value must between {} and {}", -i64::MAX, i64::MAX)));
    }
    if args.len() > 4 || (args.len() == 4 && !eq_ic(&args[3], "WITHSCORES")) {
        return Err(CmdError::Syntax);
    }
    let withscores = args.len() == 4;
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::err("value is out of range"));
    }
    let Some(z) = read(ctx, &args[1])? else {
        out.array(0);
        return Ok(());
    };
    let len = z.len();
    if l == 0 || len == 0 {
        out.array(0);
        return Ok(());
    }
    if l < 0 {
        let count = l.unsigned_abs();
        if count > RANDMEMBER_MAX_REPEATS {
            return Err(CmdError::err("value is out of range"));
        }
        pairs_header(out, count as usize, withscores);
        for _ in 0..count {
            if let Some((m, s)) = z.get(rand::random_range(0..len)) {
                pair(out, m, s, withscores);
            }
        }
        return Ok(());
    }
    let count = l as u64;
    if count >= len as u64 {
        pairs_header(out, len, withscores);
        z.for_each(|m, s| pair(out, m, s, withscores));
        return Ok(());
    }
    // Distinct ranks (Floyd's sampling), in random order.
    let count = count as usize;
    let mut chosen: hashbrown::HashSet<usize, RandomState> = hashbrown::HashSet::with_capacity_and_hasher(count, RandomState::default());
    let mut order = Vec::with_capacity(count);
    for j in len - count..len {
        let t = rand::random_range(0..=j);
        let pick = if chosen.insert(t) { t } else { j };
        if pick == j {
            chosen.insert(j);
        }
        order.push(pick);
    }
    pairs_header(out, count, withscores);
    for r in order {
        if let Some((m, s)) = z.get(r) {
            pair(out, m, s, withscores);
        }
    }
    Ok(())
}

/// Parses a SCAN-family cursor as Redis does (an unsigned decimal).
fn parse_cursor(b: &[u8]) -> CmdResult<u64> {
    let invalid = || CmdError::err("invalid cursor");
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    std::str::from_utf8(b).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(invalid)
}

fn zscan(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let Some(z) = read(ctx, &args[1])? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let (mut count, mut pattern): (usize, Option<&[u8]>) = (10, None);
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq_ic(&args[i], "COUNT") && more {
            let c = parse_i64(&args[i + 1])?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            count = c as usize;
        } else if eq_ic(&args[i], "MATCH") && more {
            pattern = (&*args[i + 1] != b"*").then_some(&args[i + 1][..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    // Redis returns the scores of a listpack as stored (its d2string form)
    // and those of a skiplist through "%.17g".
    let compact = z.is_compact();
    let mut items: Vec<(&[u8], f64)> = Vec::new();
    let next = z.scan(cursor, count, |m, s| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            items.push((m, s));
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * 2);
    for (m, s) in items {
        out.bulk(m);
        let text = if compact { d2string(s) } else { format_g17(s) };
        out.bulk(&text);
    }
    Ok(())
}

// ---------------------------------------------------------------- set operations

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetKind {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// A parsed ZUNION/ZINTER/ZDIFF/ZINTERCARD (or STORE form).
#[derive(Clone, Debug)]
struct SetOp {
    kind: SetKind,
    dst: Option<Bytes>,
    keys: Vec<Bytes>,
    weights: Vec<f64>,
    agg: Agg,
    withscores: bool,
    /// ZINTERCARD: count only, stopping at `limit` (0 = no limit).
    card: Option<usize>,
    /// An option error, reported after the keys' types were checked (the
    /// order Redis reports them in).
    late_err: Option<CmdError>,
}

fn parse_setop(args: &[Bytes], kind: SetKind, store: bool, card: bool) -> CmdResult<SetOp> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let nk_at = if store { 2 } else { 1 };
    let numkeys = parse_i64(&args[nk_at])?;
    if numkeys < 1 {
        return Err(CmdError::err(format!("at least 1 input key is needed for '{name}' command")));
    }
    if numkeys as u64 > (args.len() - nk_at - 1) as u64 {
        return Err(CmdError::Syntax);
    }
    let n = numkeys as usize;
    let keys: Vec<Bytes> = args[nk_at + 1..nk_at + 1 + n].to_vec();
    let mut op = SetOp {
        kind,
        dst: store.then(|| args[1].clone()),
        keys,
        weights: vec![1.0; n],
        agg: Agg::Sum,
        withscores: false,
        card: card.then_some(0),
        late_err: None,
    };
    let mut j = nk_at + 1 + n;
    let res: CmdResult = (|| {
        while j < args.len() {
            let remaining = args.len() - j;
            let a = &args[j];
            if kind != SetKind::Diff && !card && remaining > n && eq_ic(a, "WEIGHTS") {
                for i in 0..n {
                    op.weights[i] = parse_score(&args[j + 1 + i]).map_err(|_| CmdError::err("weight value is not a float"))?;
                }
                j += 1 + n;
            } else if kind != SetKind::Diff && !card && remaining >= 2 && eq_ic(a, "AGGREGATE") {
                let v = &args[j + 1];
                op.agg = if eq_ic(v, "SUM") {
                    Agg::Sum
                } else if eq_ic(v, "MIN") {
                    Agg::Min
                } else if eq_ic(v, "MAX") {
                    Agg::Max
                } else {
                    return Err(CmdError::Syntax);
                };
                j += 2;
            } else if !store && !card && eq_ic(a, "WITHSCORES") {
                op.withscores = true;
                j += 1;
            } else if card && remaining >= 2 && eq_ic(a, "LIMIT") {
                match parse_i64(&args[j + 1]) {
                    Ok(l) if l >= 0 => op.card = Some(l as usize),
                    _ => return Err(CmdError::err("LIMIT can't be negative")),
                }
                j += 2;
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(())
    })();
    op.late_err = res.err();
    Ok(op)
}

#[inline]
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

#[inline]
fn aggregate(target: &mut f64, v: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *target += v;
            // inf + -inf: Redis's convention is 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Agg::Min => {
            if v < *target {
                *target = v;
            }
        }
        Agg::Max => {
            if v > *target {
                *target = v;
            }
        }
    }
}

impl SetOp {
    /// The result in ascending (score, member) order, borrowing the inputs.
    fn items<'a>(&self, srcs: &[Option<&'a ZSet>]) -> Vec<(&'a [u8], f64)> {
        let len = |i: usize| srcs[i].map_or(0, |z| z.len());
        // Smallest inputs first, as Redis orders them (it matters for
        // intersections' speed and for the order of floating-point sums).
        let mut order: Vec<usize> = (0..srcs.len()).collect();
        order.sort_by_key(|&i| len(i));
        let mut items: Vec<(&'a [u8], f64)> = Vec::new();
        match self.kind {
            SetKind::Union => {
                let cap = order.last().map_or(0, |&i| len(i));
                let mut acc: HashMap<&'a [u8], f64, RandomState> = HashMap::with_capacity_and_hasher(cap, RandomState::default());
                for &i in &order {
                    let Some(z) = srcs[i] else { continue };
                    let w = self.weights[i];
                    z.for_each(|m, s| {
                        let v = weighted(s, w);
                        match acc.entry(m) {
                            MapEntry::Vacant(e) => {
                                e.insert(v);
                            }
                            MapEntry::Occupied(mut e) => aggregate(e.get_mut(), v, self.agg),
                        }
                    });
                }
                items.extend(acc);
            }
            SetKind::Inter => {
                if order.iter().any(|&i| len(i) == 0) {
                    return items;
                }
                let first = order[0];
                if let Some(z) = srcs[first] {
                    z.for_each(|m, s| {
                        let mut score = weighted(s, self.weights[first]);
                        for &j in &order[1..] {
                            match srcs[j].and_then(|o| o.score(m)) {
                                Some(sj) => aggregate(&mut score, weighted(sj, self.weights[j]), self.agg),
                                None => return,
                            }
                        }
                        items.push((m, score));
                    });
                }
            }
            SetKind::Diff => {
                if let Some(z) = srcs[0] {
                    z.for_each(|m, s| {
                        if !srcs[1..].iter().any(|o| o.is_some_and(|o| o.score(m).is_some())) {
                            items.push((m, s));
                        }
                    });
                }
                // Already in order: a subsequence of the first set.
                return items;
            }
        }
        items.sort_unstable_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(b.0)));
        items
    }

    /// ZINTERCARD: the intersection's size, stopping at the limit.
    fn cardinality(&self, srcs: &[Option<&ZSet>]) -> usize {
        let limit = self.card.unwrap_or(0);
        let mut order: Vec<usize> = (0..srcs.len()).collect();
        order.sort_by_key(|&i| srcs[i].map_or(0, |z| z.len()));
        let Some(Some(first)) = order.first().map(|&i| srcs[i]) else { return 0 };
        let mut n = 0;
        let (mut a, len) = (0, first.len());
        // Walk in slices so the limit can stop the walk early.
        while a < len && (limit == 0 || n < limit) {
            let b = (a + 256).min(len);
            first.for_range(a, b, false, |m, _| {
                if (limit == 0 || n < limit) && order[1..].iter().all(|&j| srcs[j].is_some_and(|o| o.score(m).is_some())) {
                    n += 1;
                }
            });
            a = b;
        }
        n
    }

    /// Runs the operation over the inputs: writes the reply (ZUNION, ZINTER,
    /// ZDIFF, ZINTERCARD) or returns the set to store.
    fn run(&self, srcs: &[Option<&ZSet>], out: &mut Out, limits: ZLimits) -> CmdResult<Option<ZSet>> {
        if self.card.is_some() {
            out.int(self.cardinality(srcs) as i64);
            return Ok(None);
        }
        let items = self.items(srcs);
        if self.dst.is_some() {
            return Ok(Some(ZSet::from_sorted(&items, limits)?));
        }
        pairs_header(out, items.len(), self.withscores);
        for (m, s) in items {
            pair(out, m, s, self.withscores);
        }
        Ok(None)
    }
}

/// The sorted sets at `keys` (`None` for missing keys); WRONGTYPE when one
/// holds another type.
fn inputs<'a>(db: &'a mut Db, keys: &[Bytes], now: u64) -> CmdResult<Vec<Option<&'a ZSet>>> {
    let idx: Vec<Option<u32>> = keys.iter().map(|k| db.lookup(k, now)).collect();
    let db: &Db = db;
    idx.into_iter()
        .map(|i| match i {
            None => Ok(None),
            Some(i) => match &db.entry(i).value {
                Value::ZSet(z) => Ok(Some(&**z)),
                _ => Err(CmdError::WrongType),
            },
        })
        .collect()
}

/// ZUNION/ZINTER/ZDIFF's inputs: as `inputs`, but a plain set reads as a
/// sorted set whose scores are all 1, as in Redis.
fn setop_inputs<'a>(db: &'a mut Db, keys: &[Bytes], now: u64, limits: ZLimits) -> CmdResult<Vec<Option<Cow<'a, ZSet>>>> {
    let idx: Vec<Option<u32>> = keys.iter().map(|k| db.lookup(k, now)).collect();
    let db: &Db = db;
    idx.into_iter()
        .map(|i| match i {
            None => Ok(None),
            Some(i) => match &db.entry(i).value {
                Value::ZSet(z) => Ok(Some(Cow::Borrowed(&**z))),
                Value::Set(s) => {
                    let mut members: Vec<&[u8]> = s.iter().map(|m| &m[..]).collect();
                    members.sort_unstable();
                    let items: Vec<(&[u8], f64)> = members.into_iter().map(|m| (m, 1.0)).collect();
                    Ok(Some(Cow::Owned(ZSet::from_sorted(&items, limits)?)))
                }
                _ => Err(CmdError::WrongType),
            },
        })
        .collect()
}

/// The shard all of `keys` live on, if they share one.
fn one_shard<'a>(cx: &mut dyn Coord, mut keys: impl Iterator<Item = &'a Bytes>) -> Option<usize> {
    let first = cx.engine().shard_of(keys.next()?);
    keys.all(|k| cx.engine().shard_of(k) == first).then_some(first)
}

/// ZUNION, ZINTER, ZDIFF, ZINTERCARD and the STORE forms.
pub async fn setop(cx: &mut dyn Coord, args: &[Bytes], kind: SetKind, store: bool, card: bool) -> CmdResult {
    let op = parse_setop(args, kind, store, card)?;
    let db = cx.db();
    let resp3 = cx.out().resp3;
    let all_keys = op.keys.iter().chain(op.dst.iter());
    if let Some(shard) = one_shard(cx, all_keys) {
        // Everything on one shard: one job, no copies.
        let reply = cx
            .run_on(shard, move |sh| -> CmdResult<Vec<u8>> {
                let limits = sh.cfg.zset_limits();
                let now = now_ms();
                let d = sh.db(db);
                let mut out = Out::new(resp3);
                let built = {
                    let owned = setop_inputs(d, &op.keys, now, limits)?;
                    let srcs: Vec<Option<&ZSet>> = owned.iter().map(|z| z.as_deref()).collect();
                    if let Some(e) = op.late_err.clone() {
                        return Err(e);
                    }
                    op.run(&srcs, &mut out, limits)?
                };
                if let (Some(dst), Some(z)) = (&op.dst, built) {
                    out.int(z.len() as i64);
                    store_set(d, dst, z, now);
                }
                Ok(out.buf)
            })
            .await?;
        cx.out().buf.extend_from_slice(&reply);
        return Ok(());
    }
    // Keys on several shards: lock them in order, copy the inputs out.
    let mut shards: Vec<usize> = op.keys.iter().chain(op.dst.iter()).map(|k| cx.engine().shard_of(k)).collect();
    shards.sort_unstable();
    shards.dedup();
    let result = setop_locked(cx, op, shards).await;
    result
}

/// The multi-shard part of `setop`, with `tx` taking the shards' locks.
async fn setop_locked(cx: &mut dyn Coord, op: SetOp, shards: Vec<usize>) -> CmdResult {
    let db = cx.db();
    let mut copies: Vec<Option<ZSet>> = vec![None; op.keys.len()];
    for &s in &shards {
        let mine: Vec<(usize, Bytes)> =
            op.keys.iter().enumerate().filter(|(_, k)| cx.engine().shard_of(k) == s).map(|(i, k)| (i, k.clone())).collect();
        let fetched = cx
            .lock_run(s, move |sh| -> CmdResult<Vec<(usize, Option<ZSet>)>> {
                let now = now_ms();
                let limits = sh.cfg.zset_limits();
                let d = sh.db(db);
                let keys: Vec<Bytes> = mine.iter().map(|(_, k)| k.clone()).collect();
                let found = setop_inputs(d, &keys, now, limits)?;
                Ok(mine.iter().zip(found).map(|((i, _), z)| (*i, z.map(Cow::into_owned))).collect())
            })
            .await?;
        for (i, z) in fetched {
            copies[i] = z;
        }
    }
    if let Some(e) = op.late_err.clone() {
        return Err(e);
    }
    let srcs: Vec<Option<&ZSet>> = copies.iter().map(|z| z.as_ref()).collect();
    let limits = cx.engine().cfg.zset_limits();
    let built = op.run(&srcs, cx.out(), limits)?;
    if let (Some(dst), Some(z)) = (op.dst.clone(), built) {
        let n = z.len();
        let shard = cx.engine().shard_of(&dst);
        cx.run_on(shard, move |sh| store_set(sh.db(db), &dst, z, now_ms())).await;
        cx.out().int(n as i64);
    }
    Ok(())
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
pub async fn zrangestore(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let req = parse_range(args, 3, true, None, None)?;
    let (dst, src) = (args[1].clone(), args[2].clone());
    let db = cx.db();
    let (ds, ss) = (cx.engine().shard_of(&dst), cx.engine().shard_of(&src));
    if ds == ss {
        let n = cx
            .run_on(ss, move |sh| -> CmdResult<usize> {
                let limits = sh.cfg.zset_limits();
                let now = now_ms();
                let d = sh.db(db);
                let items = inputs(d, std::slice::from_ref(&src), now)?[0].map(|z| req.items(z)).unwrap_or_default();
                let z = ZSet::from_sorted(&items, limits)?;
                let n = z.len();
                store_set(d, &dst, z, now);
                Ok(n)
            })
            .await?;
        cx.out().int(n as i64);
        return Ok(());
    }
    let mut shards = [ss, ds];
    shards.sort_unstable();
    cx.lock(&shards).await;
    let limits = cx.engine().cfg.zset_limits();
    let result = async {
        let items = cx
            .run_on(ss, move |sh| -> CmdResult<Vec<(Vec<u8>, f64)>> {
                let d = sh.db(db);
                Ok(inputs(d, std::slice::from_ref(&src), now_ms())?[0].map(|z| req.items(z)).unwrap_or_default())
            })
            .await?;
        let z = ZSet::from_sorted(&items, limits)?;
        let n = z.len();
        cx.run_on(ds, move |sh| store_set(sh.db(db), &dst, z, now_ms())).await;
        Ok::<usize, CmdError>(n)
    }
    .await;
    cx.out().int(result? as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_like_get_double_from_object() {
        assert_eq!(parse_score(b"1.5"), Ok(1.5));
        assert_eq!(parse_score(b"-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Ok(f64::INFINITY));
        assert_eq!(parse_score(b"1e300"), Ok(1e300));
        assert_eq!(parse_score(b"0e5"), Ok(0.0));
        assert_eq!(parse_score(b"-0"), Ok(-0.0));
        for bad in [&b"1e400"[..], b"1e-400", b"nan", b"", b" 1", b"1 ", b"abc", b"1.5x"] {
            assert_eq!(parse_score(bad), Err(CmdError::NotFloat), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn rank_windows_follow_redis() {
        assert_eq!(rank_window(0, -1, 5), Some((0, 5)));
        assert_eq!(rank_window(-2, -1, 5), Some((3, 5)));
        assert_eq!(rank_window(-100, 1, 5), Some((0, 2)));
        assert_eq!(rank_window(3, 1, 5), None);
        assert_eq!(rank_window(5, 10, 5), None);
        assert_eq!(rank_window(0, -100, 5), None);
        assert_eq!(rank_window(i64::MIN, i64::MAX, 5), Some((0, 5)));
    }

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert!(parse_cursor(b"-1").is_err());
        assert!(parse_cursor(b"18446744073709551616").is_err());
        assert!(parse_cursor(b"x").is_err());
    }
}
