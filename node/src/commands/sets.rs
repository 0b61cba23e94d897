//! Set commands. Single-key commands (SADD, SREM, SMEMBERS, SISMEMBER,
//! SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SSCAN) run on the key's shard.
//! Commands over several keys (SINTER, SUNION, SDIFF, their STORE forms,
//! SINTERCARD, SMOVE) run on the connection: they lock the shards of their
//! keys through one transaction, copy the inputs out, compute, and write
//! the destination before releasing.
//!
//! Options, reply shapes and error texts follow Redis 7.

use bytes::Bytes;
use rand::Rng;

use super::notify::{self, Notify};
use super::{cmd, flag::*, CommandSpec, Coord, Ctx, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::{Db, SmallBytes, Value};
use crate::types::set::{SetLimits, SetValue};
use crate::util::{eq_ic, glob_match, now_ms, parse_i64};

const RF: &[&str] = &["read", "set", "fast"];
const RS: &[&str] = &["read", "set", "slow"];
const WF: &[&str] = &["write", "set", "fast"];
const WS: &[&str] = &["write", "set", "slow"];
const G: &str = "set";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "sadd",
        -3,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        WF,
        G,
        "Adds one or more members to a set. Creates the key if it doesn't exist.",
        Exec::Shard(sadd),
    )
    .member_at(2)
    .notify(Notify::Counted(ks::SET, "sadd"))
    .key_flags(&["RW", "insert"]),
    cmd(
        "srem",
        -3,
        WRITE | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        WF,
        G,
        "Removes one or more members from a set. Deletes the set if the last member was removed.",
        Exec::Shard(srem),
    )
    .member_at(2)
    .notify(Notify::Counted(ks::SET, "srem"))
    .key_flags(&["RW", "delete"]),
    cmd("smembers", 2, READONLY, (1, 1, 1), RS, G, "Returns all members of a set.", Exec::Shard(smembers))
        .tips(&["nondeterministic_output_order"])
        .key_flags(&["RO", "access"]),
    cmd("sismember", 3, READONLY | FAST, (1, 1, 1), RF, G, "Determines whether a member belongs to a set.", Exec::Shard(sismember))
        .member_at(2),
    cmd(
        "smismember",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        RF,
        G,
        "Determines whether multiple members belong to a set.",
        Exec::Shard(smismember),
    )
    .member_at(2)
    .key_flags(&["RO", "access"]),
    cmd("scard", 2, READONLY | FAST, (1, 1, 1), RF, G, "Returns the number of members in a set.", Exec::Shard(scard)),
    cmd(
        "spop",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        WF,
        G,
        "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.",
        Exec::Shard(spop),
    )
    .notify(Notify::Each(ks::SET, "spop"))
    .key_flags(&["RW", "access", "delete"])
    .tips(&["nondeterministic_output"]),
    cmd("srandmember", -2, READONLY, (1, 1, 1), RS, G, "Get one or multiple random members from a set", Exec::Shard(srandmember))
        .key_flags(&["RO", "access"])
        .tips(&["nondeterministic_output"]),
    cmd("sscan", -3, READONLY, (1, 1, 1), RS, G, "Iterates over members of a set.", Exec::Shard(sscan))
        .key_flags(&["RO", "access"])
        .tips(&["nondeterministic_output"]),
    cmd(
        "sinter",
        -2,
        READONLY,
        (1, -1, 1),
        RS,
        G,
        "Returns the intersect of multiple sets.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetOp::Inter))),
    )
    .tips(&["nondeterministic_output_order"])
    .key_flags(&["RO", "access"]),
    cmd(
        "sunion",
        -2,
        READONLY,
        (1, -1, 1),
        RS,
        G,
        "Returns the union of multiple sets.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetOp::Union))),
    )
    .tips(&["nondeterministic_output_order"])
    .key_flags(&["RO", "access"]),
    cmd(
        "sdiff",
        -2,
        READONLY,
        (1, -1, 1),
        RS,
        G,
        "Returns the difference of multiple sets.",
        Exec::Coord(handler!(async |cx, a| setop(cx, a, SetOp::Diff))),
    )
    .tips(&["nondeterministic_output_order"])
    .key_flags(&["RO", "access"]),
    cmd(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        WS,
        G,
        "Stores the intersect of multiple sets in a key.",
        Exec::Coord(handler!(async |cx, a| setop_store(cx, a, SetOp::Inter))),
    )
    .notify(Notify::Store(ks::SET, "sinterstore"))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "update"]), KeyRule::range(2, -1, 1).with_flags(&["RO", "access"])]),
    cmd(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        WS,
        G,
        "Stores the union of multiple sets in a key.",
        Exec::Coord(handler!(async |cx, a| setop_store(cx, a, SetOp::Union))),
    )
    .notify(Notify::Store(ks::SET, "sunionstore"))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["OW", "update"]), KeyRule::range(2, -1, 1).with_flags(&["RO", "access"])]),
    cmd(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        WS,
        G,
        "Stores the difference of multiple sets in a key.",
        Exec::Coord(handler!(async |cx, a| setop_store(cx, a, SetOp::Diff))),
    )
    .notify(Notify::Store(ks::SET, "sdiffstore"))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["OW", "update"]), KeyRule::range(2, -1, 1).with_flags(&["RO", "access"])]),
    super::cmd_numkeys(
        "sintercard",
        -3,
        READONLY,
        1,
        RS,
        G,
        "Returns the number of members of the intersect of multiple sets.",
        Exec::Coord(handler!(async |cx, a| sintercard(cx, a))),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "smove",
        4,
        WRITE | FAST,
        (1, 2, 1),
        WF,
        G,
        "Moves a member from one set to another.",
        Exec::Coord(handler!(async |cx, a| smove(cx, a))),
    )
    .notify(Notify::PickCounted(notify::smove))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "access", "delete"]), KeyRule::range(2, 2, 1).with_flags(&["RW", "insert"])]),
];

// ------------------------------------------------------------------ helpers

fn find(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<u32>> {
    super::find_of(db, key, now, |v| matches!(v, Value::Set(_)))
}

fn set_at(db: &mut Db, idx: u32) -> &mut SetValue {
    match &mut db.entry_mut(idx).value {
        Value::Set(s) => s,
        _ => unreachable!("checked by find"),
    }
}

fn read_set(db: &Db, idx: u32) -> &SetValue {
    match &db.entry(idx).value {
        Value::Set(s) => s,
        _ => unreachable!("checked by find"),
    }
}

fn drop_if_empty(db: &mut Db, idx: u32) {
    if matches!(&db.entry(idx).value, Value::Set(s) if s.is_empty()) {
        db.remove_idx(idx);
    }
}

/// A copy of the set at `key` (empty when missing).
pub fn copy_of(db: &mut Db, key: &[u8], now: u64) -> CmdResult<SetValue> {
    Ok(match find(db, key, now)? {
        Some(idx) => read_set(db, idx).clone(),
        None => SetValue::default(),
    })
}

/// The set at `key` (`None` when missing), or WRONGTYPE, as a value: SMOVE
/// decides which error applies.
fn probe_set(db: &mut Db, key: &[u8], now: u64) -> CmdResult<CmdResult<Option<SetValue>>> {
    Ok(find(db, key, now).map(|idx| idx.map(|idx| read_set(db, idx).clone())))
}

/// Replaces `key` with `s` (deleting it when empty); its size.
pub fn store(db: &mut Db, key: &[u8], s: SetValue, now: u64) -> usize {
    db.remove(key, now);
    let n = s.len();
    if n > 0 {
        db.insert_new(key, Value::Set(Box::new(s)), 0);
    }
    n
}

pub fn members_reply(out: &mut Out, s: &SetValue) {
    out.set(s.len());
    for m in s.iter() {
        out.bulk(&m);
    }
}

// ----------------------------------------------------------- single key

fn sadd(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (now, limits) = (ctx.now, ctx.shard.cfg.encoding.set_limits());
    let db = ctx.db();
    let idx = match find(db, &args[1], now)? {
        Some(idx) => idx,
        None => db.insert_new(&args[1], Value::Set(Box::default()), 0),
    };
    let s = set_at(db, idx);
    let added = args[2..].iter().filter(|m| s.add(m, limits)).count();
    out.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        out.int(0);
        return Ok(());
    };
    let s = set_at(db, idx);
    let removed = args[2..].iter().filter(|m| s.remove(m)).count();
    drop_if_empty(db, idx);
    out.int(removed as i64);
    Ok(())
}

fn smembers(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    match find(db, &args[1], now)? {
        Some(idx) => members_reply(out, read_set(db, idx)),
        None => out.set(0),
    }
    Ok(())
}

fn sismember(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let hit = find(db, &args[1], now)?.is_some_and(|idx| read_set(db, idx).contains(&args[2]));
    out.int(hit as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let idx = find(db, &args[1], now)?;
    out.array(args.len() - 2);
    for m in &args[2..] {
        out.int(idx.is_some_and(|i| read_set(db, i).contains(m)) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = find(db, &args[1], now)?.map_or(0, |idx| read_set(db, idx).len());
    out.int(n as i64);
    Ok(())
}

fn spop(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let count = super::pops::parse_count(args)?;
    let now = ctx.now;
    let key = &args[1];
    // Journaled as Redis propagates it: the members taken (SREM), or DEL
    // when a count took them all.
    let form = |r: &CmdResult<Option<(Vec<SmallBytes>, bool)>>| {
        let Ok(Some((popped, gone))) = r else { return None };
        if *gone && count.is_some() {
            return Some(vec![vec![b"DEL".to_vec(), key.to_vec()]]);
        }
        (!popped.is_empty()).then(|| vec![[b"SREM".to_vec(), key.to_vec()].into_iter().chain(popped.iter().map(|m| m.to_vec())).collect()])
    };
    let pop = |db: &mut Db| -> CmdResult<Option<(Vec<SmallBytes>, bool)>> {
        let Some(idx) = find(db, key, now)? else { return Ok(None) };
        if count == Some(0) {
            // Nothing taken: the set is not written (no event, no watcher).
            return Ok(Some((Vec::new(), false)));
        }
        let s = set_at(db, idx);
        let mut rng = rand::rng();
        let n = count.unwrap_or(1).min(s.len());
        let popped = s.pop_random(n, &mut rng);
        let gone = s.is_empty();
        drop_if_empty(db, idx);
        Ok(Some((popped, gone)))
    };
    let dbi = ctx.db;
    let Some((popped, _)) = ctx.shard.journal_as(dbi, pop, form)? else {
        match count {
            None => out.nil(),
            Some(_) => out.set(0),
        }
        return Ok(());
    };
    match count {
        None => out.bulk(&popped[0]),
        Some(_) => {
            out.set(popped.len());
            for m in &popped {
                out.bulk(m);
            }
        }
    }
    Ok(())
}

/// Most bytes a reply of random picks with repetitions (SRANDMEMBER,
/// HRANDFIELD and ZRANDMEMBER with a negative count) may take: a few long
/// members repeated millions of times would make a reply of terabytes
/// (Redis builds it whatever its size).
pub const REPEATS_REPLY_MAX: usize = 64 << 20;

/// Refuses a reply of picks with repetitions that grew past
/// `REPEATS_REPLY_MAX` since `mark`, dropping what it wrote.
pub fn repeats_within(out: &mut Out, mark: usize) -> CmdResult<()> {
    if out.buf.len() - mark <= REPEATS_REPLY_MAX {
        return Ok(());
    }
    out.buf.truncate(mark);
    out.buf.shrink_to(mark.max(1 << 16));
    Err(CmdError::err(format!("reply too large: random picks with repetitions are limited to {} MB", REPEATS_REPLY_MAX >> 20)))
}

fn srandmember(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a)? {
            i64::MIN => {
                return Err(CmdError::err("value is out of range, value must between -9223372036854775807 and 9223372036854775807"))
            }
            c => Some(c),
        },
    };
    let now = ctx.now;
    let db = ctx.db();
    let Some(idx) = find(db, &args[1], now)? else {
        match count {
            None => out.nil(),
            Some(_) => out.array(0),
        }
        return Ok(());
    };
    let s = read_set(db, idx);
    let len = s.len();
    let mut rng = rand::rng();
    let pick = |out: &mut Out, i: usize| out.bulk(s.nth(i).as_deref().unwrap_or_default());
    match count {
        None => pick(out, rng.random_range(0..len)),
        Some(c) if c >= 0 && c as u64 >= len as u64 => {
            // The whole set.
            out.array(len);
            s.iter().for_each(|m| out.bulk(&m));
        }
        Some(c) if c >= 0 => {
            // Distinct members in random order (rand picks the algorithm:
            // O(count) for few picks from a large set).
            out.array(c as usize);
            for i in rand::seq::index::sample(&mut rng, len, c as usize) {
                pick(out, i);
            }
        }
        Some(c) => {
            // Repetitions allowed: exactly |count| members.
            let n = c.unsigned_abs();
            if n > 1 << 24 {
                return Err(CmdError::err("value is out of range"));
            }
            let mark = out.buf.len();
            out.array(n as usize);
            for _ in 0..n {
                pick(out, rng.random_range(0..len));
                repeats_within(out, mark)?;
            }
        }
    }
    Ok(())
}

fn sscan(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let cursor = super::scan::parse_cursor(&args[2])?;
    let mut pattern: Option<&[u8]> = None;
    let mut count = 10usize;
    let mut i = 3;
    while i < args.len() {
        let val = args.get(i + 1).ok_or(CmdError::Syntax)?;
        if eq_ic(&args[i], "MATCH") {
            pattern = (&val[..] != b"*").then_some(&val[..]);
        } else if eq_ic(&args[i], "COUNT") {
            let c = parse_i64(val)?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(c).unwrap_or(usize::MAX);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let now = ctx.now;
    let db = ctx.db();
    let mut found: Vec<SmallBytes> = Vec::new();
    let next = match find(db, &args[1], now)? {
        Some(idx) => read_set(db, idx).scan(cursor, count, |m| {
            if pattern.is_none_or(|p| glob_match(p, m, false)) {
                found.push(SmallBytes::new(m));
            }
        }),
        None => 0,
    };
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(found.len());
    for m in &found {
        out.bulk(m);
    }
    Ok(())
}

// -------------------------------------------------------- several keys

#[derive(Clone, Copy, PartialEq)]
pub enum SetOp {
    Inter,
    Union,
    Diff,
}

pub fn combine(op: SetOp, sets: &[&SetValue], limits: SetLimits) -> SetValue {
    let mut out = SetValue::default();
    match op {
        SetOp::Union => {
            for s in sets {
                for m in s.iter() {
                    out.add(&m, limits);
                }
            }
        }
        SetOp::Inter => {
            if let Some(smallest) = sets.iter().min_by_key(|s| s.len()) {
                for m in smallest.iter() {
                    if sets.iter().all(|s| s.contains(&m)) {
                        out.add(&m, limits);
                    }
                }
            }
        }
        SetOp::Diff => {
            if let Some((first, rest)) = sets.split_first() {
                for m in first.iter() {
                    if !rest.iter().any(|s| s.contains(&m)) {
                        out.add(&m, limits);
                    }
                }
            }
        }
    }
    out
}

/// Copies the sets at `keys` under one transaction over their shards (and
/// `dst`'s) and hands them to `f`, which may return a set to store at a key.
async fn with_sets<R>(
    cx: &mut dyn Coord,
    keys: &[Bytes],
    dst: Option<&Bytes>,
    f: impl FnOnce(&[&SetValue]) -> (R, Option<(Bytes, SetValue)>),
) -> CmdResult<R> {
    // A key named several times is copied once.
    let (distinct, at) = super::distinct_keys(keys);
    super::gather(cx, &distinct, dst, copy_of, |sets| {
        let sets: Vec<&SetValue> = at.iter().map(|&i| &sets[i]).collect();
        let (r, write) = f(&sets);
        let write = write.map(|(key, s)| -> super::Write {
            (
                key,
                Box::new(move |db: &mut Db, k: &[u8], now: u64| {
                    store(db, k, s, now);
                }),
            )
        });
        (r, write)
    })
    .await
}

/// SINTER, SUNION, SDIFF.
pub async fn setop(cx: &mut dyn Coord, args: &[Bytes], op: SetOp) -> CmdResult {
    let limits = cx.engine().cfg.encoding.set_limits();
    let s = with_sets(cx, &args[1..], None, move |sets| (combine(op, sets, limits), None)).await?;
    members_reply(cx.out(), &s);
    Ok(())
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE (a source of another type fails
/// the whole command; the destination may hold any type and is replaced).
pub async fn setop_store(cx: &mut dyn Coord, args: &[Bytes], op: SetOp) -> CmdResult {
    let dst = args[1].clone();
    let keys = args[2..].to_vec();
    let limits = cx.engine().cfg.encoding.set_limits();
    let n = with_sets(cx, &keys, Some(&args[1]), move |sets| {
        let s = combine(op, sets, limits);
        (s.len(), Some((dst, s)))
    })
    .await?;
    cx.out().int(n as i64);
    Ok(())
}

/// Removes `m` from the set at `key` (WRONGTYPE for another type); with
/// `write` false only says whether it is there.
pub fn remove_member(db: &mut Db, key: &[u8], m: &[u8], now: u64, write: bool) -> CmdResult<bool> {
    let Some(idx) = find(db, key, now)? else { return Ok(false) };
    if !write {
        return Ok(read_set(db, idx).contains(m));
    }
    let hit = set_at(db, idx).remove(m);
    drop_if_empty(db, idx);
    Ok(hit)
}

/// SINTERCARD's arguments: (keys, limit; 0 for none).
pub fn parse_intercard(args: &[Bytes]) -> CmdResult<(Vec<Bytes>, usize)> {
    let n = parse_i64(&args[1]).map_err(|_| CmdError::err("numkeys should be greater than 0"))?;
    if n <= 0 {
        return Err(CmdError::err("numkeys should be greater than 0"));
    }
    let n = n as usize;
    if n > args.len() - 2 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    let keys = args[2..2 + n].to_vec();
    let mut limit = 0usize;
    let mut rest = args[2 + n..].iter();
    while let Some(a) = rest.next() {
        if eq_ic(a, "LIMIT") {
            match rest.next().map(|v| parse_i64(v)) {
                Some(Ok(l)) if l >= 0 => limit = l as usize,
                Some(_) => return Err(CmdError::err("LIMIT can't be negative")),
                None => return Err(CmdError::Syntax),
            }
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((keys, limit))
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit].
pub async fn sintercard(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let (keys, limit) = parse_intercard(args)?;
    let limits = cx.engine().cfg.encoding.set_limits();
    let card = with_sets(cx, &keys, None, move |sets| (combine(SetOp::Inter, sets, limits).len(), None)).await?;
    cx.out().int(if limit > 0 { card.min(limit) } else { card } as i64);
    Ok(())
}

/// SMOVE source destination member.
pub async fn smove(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let keys = [args[1].clone(), args[2].clone()];
    let (src_key, dst_key, member) = (args[1].clone(), args[2].clone(), args[3].clone());
    let same = src_key == dst_key;
    let db = cx.db();
    // Redis's order: a missing source answers 0 before any type check; then
    // both types are checked (WRONGTYPE before any change).
    let found = super::gather(cx, &keys, None, probe_set, move |sets| {
        let mut it = sets.into_iter();
        let found = match (it.next(), it.next()) {
            (Some(Ok(None)), _) => Ok(false),
            (Some(Ok(Some(src))), Some(Ok(_))) => Ok(src.contains(&member)),
            (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
            _ => Ok(false),
        };
        (found, None)
    })
    .await??;
    if !found || same {
        cx.out().int(found as i64);
        return Ok(());
    }
    let mut shards = vec![cx.engine().shard_of(&src_key), cx.engine().shard_of(&dst_key)];
    shards.sort_unstable();
    shards.dedup();
    cx.lock(&shards).await;
    let m = args[3].clone();
    let (s2, m2) = (src_key.clone(), m.clone());
    let moved = cx
        .run_on(cx.engine().shard_of(&src_key), move |sh| -> CmdResult<bool> {
            let now = now_ms();
            // Each half is journaled as what it did (SREM, SADD), not as
            // the whole set it changed.
            let take = |d: &mut Db| -> CmdResult<bool> {
                let Some(idx) = find(d, &s2, now)? else { return Ok(false) };
                let hit = set_at(d, idx).remove(&m2);
                drop_if_empty(d, idx);
                Ok(hit)
            };
            let form = |r: &CmdResult<bool>| matches!(r, Ok(true)).then(|| vec![vec![b"SREM".to_vec(), s2.to_vec(), m2.to_vec()]]);
            sh.journal_as(db, take, form)
        })
        .await;
    let r = match moved {
        Ok(true) => cx
            .run_on(cx.engine().shard_of(&dst_key), move |sh| -> CmdResult<()> {
                let (now, limits) = (now_ms(), sh.cfg.encoding.set_limits());
                let put = |d: &mut Db| -> CmdResult<()> {
                    let idx = match find(d, &dst_key, now)? {
                        // Already a member: the destination is not written
                        // (no watcher or keyspace event sees it), as in Redis.
                        Some(idx) if matches!(&d.entry(idx).value, Value::Set(s) if s.contains(&m)) => return Ok(()),
                        Some(idx) => idx,
                        None => d.insert_new(&dst_key, Value::Set(Box::default()), 0),
                    };
                    set_at(d, idx).add(&m, limits);
                    Ok(())
                };
                let form = |r: &CmdResult<()>| r.is_ok().then(|| vec![vec![b"SADD".to_vec(), dst_key.to_vec(), m.to_vec()]]);
                sh.journal_as(db, put, form)
            })
            .await
            .map(|_| true),
        other => other,
    };
    cx.out().int(r? as i64);
    Ok(())
}
