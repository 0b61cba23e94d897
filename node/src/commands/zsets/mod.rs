//! Sorted-set commands. Single-key commands (ZADD, ZINCRBY, ZSCORE, ZRANGE
//! and its legacy forms, ZREM*, ZPOP*, ZRANDMEMBER, ZSCAN, ...) run on the
//! key's shard. Commands that read or write several keys (ZUNION, ZINTER,
//! ZDIFF, ZINTERCARD, their STORE forms, ZRANGESTORE) run on the
//! connection: when all their keys live on one shard they run there in one
//! job, otherwise they lock the shards involved through `Tx`, copy the
//! inputs out, compute, and write the destination before releasing.
//!
//! Options, reply shapes and error texts follow Redis 7.2.

use super::notify::{self, Notify};
use super::{cmd, flag::*, CommandSpec, Ctx, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;

use crate::store::{Db, Value};
use crate::types::zset::{ZLimits, ZSet, ZSetFull};
use crate::util::parse_f64;

const RF: &[&str] = &["read", "sortedset", "fast"];
const RS: &[&str] = &["read", "sortedset", "slow"];
const WF: &[&str] = &["write", "sortedset", "fast"];
const WS: &[&str] = &["write", "sortedset", "slow"];
const G: &str = "sorted-set";

mod read;
mod setops;
mod write;

use read::*;
pub use setops::*;
pub use write::*;

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
    cmd("zincrby", 4, WRITE | DENYOOM | FAST | JOURNAL_ARGS, (1, 1, 1), WF, G, "Increments the score of a member in a sorted set.", Exec::Shard(zincrby)).member_at(3).notify(Notify::Each(ks::ZSET, "zincr")).key_flags(&["RW", "access", "update"]),
    cmd("zscore", 3, READONLY | FAST, (1, 1, 1), RF, G, "Returns the score of a member in a sorted set.", Exec::Shard(zscore)).member_at(2).key_flags(&["RO", "access"]),
    cmd(
        "zmscore",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        RF,
        G,
        "Returns the score of one or more members in a sorted set.",
        Exec::Shard(zmscore),
    ).member_at(2).key_flags(&["RO", "access"]),
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
    ).member_at(2).key_flags(&["RO", "access"]),
    cmd(
        "zrevrank",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        RF,
        G,
        "Returns the index of a member in a sorted set ordered by descending scores.",
        Exec::Shard(zrevrank),
    ).member_at(2).key_flags(&["RO", "access"]),
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
    ).member_at(2).notify(Notify::Counted(ks::ZSET, "zrem")).key_flags(&["RW", "delete"]),
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

pub(super) fn err_nan() -> CmdError {
    CmdError::err("resulting score is not a number (NaN)")
}

pub(super) fn err_score_range() -> CmdError {
    CmdError::err("min or max is not a float")
}

pub(super) fn err_lex_range() -> CmdError {
    CmdError::err("min or max not valid string range item")
}

pub(super) fn limits(ctx: &Ctx) -> ZLimits {
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
pub(super) fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a ZSet>> {
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
pub(super) fn find(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<u32>> {
    match db.lookup(key, now) {
        None => Ok(None),
        Some(idx) => match db.entry(idx).value {
            Value::ZSet(_) => Ok(Some(idx)),
            _ => Err(CmdError::WrongType),
        },
    }
}

pub(super) fn zset_ref(db: &Db, idx: u32) -> CmdResult<&ZSet> {
    match &db.entry(idx).value {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

pub(super) fn zset_at(db: &mut Db, idx: u32) -> CmdResult<&mut ZSet> {
    match &mut db.entry_mut(idx).value {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

/// Deletes the key at `idx` when its set became empty.
pub(super) fn drop_if_empty(db: &mut Db, idx: u32) {
    if matches!(&db.entry(idx).value, Value::ZSet(z) if z.is_empty()) {
        db.remove_idx(idx);
    }
}

/// Replaces `key` with `z` (deleting it when `z` is empty), clearing any TTL.
pub(super) fn store_set(db: &mut Db, key: &[u8], z: ZSet, now: u64) {
    db.remove(key, now);
    if !z.is_empty() {
        db.insert_new(key, Value::ZSet(Box::new(z)), 0);
    }
}

/// Writes `n` (member, score) pairs' header: a flat array in RESP2 (or
/// without scores), an array of pairs in RESP3.
pub(super) fn pairs_header(out: &mut Out, n: usize, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(n * 2);
    } else {
        out.array(n);
    }
}

pub(super) fn pair(out: &mut Out, m: &[u8], s: f64, withscores: bool) {
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
pub(super) fn rank_window(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
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
}
