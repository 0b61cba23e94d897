//! String commands: SET and its variants, GET family, counters, ranges,
//! and the multi-key MGET/MSET/MSETNX.

use bytes::Bytes;

use super::notify::{self, Notify};
use super::{cmd, flag::*, Combine, CommandSpec, Coord, Ctx, Exec};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::reply::format_double;
use crate::resp::Out;
use crate::store::{Db, Value};
use crate::util::{canonical_int, eq_ic, parse_i64, parse_long_double};

const S: &[&str] = &["string"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd("get", 2, READONLY | FAST, (1, 1, 1), S, "string", "Returns the string value of a key.", Exec::Shard(get))
        .key_flags(&["RO", "access"]),
    cmd(
        "lcs",
        -3,
        READONLY,
        (1, 2, 1),
        &["read", "string", "slow"],
        "string",
        "Finds the longest common substring.",
        Exec::Coord(handler!(async |cx, a| lcs(cx, a))),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "set",
        -3,
        WRITE | DENYOOM | JOURNAL_REPLAY,
        (1, 1, 1),
        S,
        "string",
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        Exec::Shard(set),
    )
    .notify(Notify::Pick(notify::set))
    .key_flags(&["RW", "access", "update", "variable_flags"]),
    cmd(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        S,
        "string",
        "Set the string value of a key only when the key doesn't exist.",
        Exec::Shard(setnx),
    )
    .notify(Notify::Counted(ks::STRING, "set"))
    .key_flags(&["OW", "insert"]),
    cmd(
        "setex",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        S,
        "string",
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
        Exec::Shard(setex),
    )
    .notify(Notify::Pick(notify::set_with_ttl))
    .key_flags(&["OW", "update"]),
    cmd(
        "psetex",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        S,
        "string",
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
        Exec::Shard(psetex),
    )
    .notify(Notify::Pick(notify::set_with_ttl))
    .key_flags(&["OW", "update"]),
    cmd(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        S,
        "string",
        "Returns the previous string value of a key after setting it to a new value.",
        Exec::Shard(getset),
    )
    .notify(Notify::Each(ks::STRING, "set"))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "getdel",
        2,
        WRITE | FAST,
        (1, 1, 1),
        S,
        "string",
        "Returns the string value of a key after deleting the key.",
        Exec::Shard(getdel),
    )
    .notify(Notify::Each(ks::GENERIC, "del"))
    .key_flags(&["RW", "access", "delete"]),
    cmd(
        "getex",
        -2,
        WRITE | FAST | JOURNAL_TTL,
        (1, 1, 1),
        S,
        "string",
        "Returns the string value of a key after setting its expiration time.",
        Exec::Shard(getex),
    )
    .notify(Notify::Pick(notify::getex))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "mget",
        -2,
        READONLY | FAST,
        (1, -1, 1),
        S,
        "string",
        "Atomically returns the string values of one or more keys.",
        Exec::Split(mget, Combine::Array),
    )
    .tips(&["request_policy:multi_shard"])
    .key_flags(&["RO", "access"]),
    cmd(
        "mset",
        -3,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, -1, 2),
        S,
        "string",
        "Atomically creates or modifies the string values of one or more keys.",
        Exec::Split(mset, Combine::Ok),
    )
    .notify(Notify::EachArg(ks::STRING, "set"))
    .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"])
    .key_flags(&["OW", "update"]),
    cmd(
        "msetnx",
        -3,
        WRITE | DENYOOM,
        (1, -1, 2),
        S,
        "string",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        Exec::Coord(handler!(async |cx, a| msetnx(cx, a))),
    )
    .notify(Notify::EachArg(ks::STRING, "set"))
    .key_flags(&["OW", "insert"]),
    cmd(
        "incr",
        2,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        S,
        "string",
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        Exec::Shard(incr),
    )
    .notify(Notify::Each(ks::STRING, "incrby"))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "decr",
        2,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        S,
        "string",
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        Exec::Shard(decr),
    )
    .notify(Notify::Each(ks::STRING, "incrby"))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "incrby",
        3,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        S,
        "string",
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        Exec::Shard(incrby),
    )
    .notify(Notify::Each(ks::STRING, "incrby"))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "decrby",
        3,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        S,
        "string",
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
        Exec::Shard(decrby),
    )
    .notify(Notify::Each(ks::STRING, "incrby"))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        S,
        "string",
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        Exec::Shard(incrbyfloat),
    )
    .notify(Notify::Each(ks::STRING, "incrbyfloat"))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "append",
        3,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        S,
        "string",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        Exec::Shard(append),
    )
    .notify(Notify::Each(ks::STRING, "append"))
    .key_flags(&["RW", "insert"]),
    cmd("strlen", 2, READONLY | FAST, (1, 1, 1), S, "string", "Returns the length of a string value.", Exec::Shard(strlen)),
    cmd("getrange", 4, READONLY, (1, 1, 1), S, "string", "Returns a substring of the string stored at a key.", Exec::Shard(getrange))
        .key_flags(&["RO", "access"]),
    cmd("substr", 4, READONLY, (1, 1, 1), S, "string", "Returns a substring from a string value.", Exec::Shard(getrange))
        .key_flags(&["RO", "access"]),
    cmd(
        "setrange",
        4,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        S,
        "string",
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
        Exec::Shard(setrange),
    )
    .notify(Notify::Each(ks::STRING, "setrange"))
    .key_flags(&["RW", "update"]),
];

/// Reads a string value: `Ok(None)` when missing, WRONGTYPE for other types.
/// The closure gets the bytes (integers are formatted on the stack).
pub fn with_string<R>(db: &mut Db, key: &[u8], now: u64, f: impl FnOnce(&[u8]) -> R) -> CmdResult<Option<R>> {
    let Some(e) = db.get(key, now) else { return Ok(None) };
    let mut buf = itoa::Buffer::new();
    match e.value.as_bytes(&mut buf) {
        Some(b) => Ok(Some(f(b))),
        None => Err(CmdError::WrongType),
    }
}

fn count_hit(ctx: &mut Ctx, hit: bool) {
    if hit {
        ctx.shard.stats.keyspace_hits += 1;
    } else {
        ctx.shard.stats.keyspace_misses += 1;
    }
}

fn get(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let found = with_string(ctx.db(), &args[1], now, |b| out.bulk(b))?;
    if found.is_none() {
        out.nil();
    }
    count_hit(ctx, found.is_some());
    Ok(())
}

/// A parsed expiry option: an absolute Unix time in ms, KEEPTTL, or PERSIST.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpireOpt {
    None,
    At(u64),
    KeepTtl,
    Persist,
}

/// Converts a relative or absolute expiry argument to Unix ms, with Redis's
/// "invalid expire time" error for non-positive or overflowing values.
pub fn expire_at(arg: &[u8], unit_ms: i64, relative: bool, now: u64, cmd: &str) -> CmdResult<u64> {
    let v = parse_i64(arg)?;
    let invalid = || CmdError::InvalidExpire(cmd.to_string());
    if v <= 0 {
        return Err(invalid());
    }
    let ms = v.checked_mul(unit_ms).ok_or_else(invalid)?;
    let at = if relative { ms.checked_add(now as i64).ok_or_else(invalid)? } else { ms };
    Ok(at as u64)
}

fn set(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut exp = ExpireOpt::None;
    let mut when = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let has_next = i + 1 < args.len();
        if eq_ic(a, "NX") && !xx {
            nx = true;
        } else if eq_ic(a, "XX") && !nx {
            xx = true;
        } else if eq_ic(a, "GET") {
            get = true;
        } else if eq_ic(a, "KEEPTTL") && exp == ExpireOpt::None {
            exp = ExpireOpt::KeepTtl;
        } else if exp == ExpireOpt::None && has_next && ["EX", "PX", "EXAT", "PXAT"].iter().any(|w| eq_ic(a, w)) {
            let (unit, rel) = match a.to_ascii_uppercase().as_slice() {
                b"EX" => (1000, true),
                b"PX" => (1, true),
                b"EXAT" => (1000, false),
                _ => (1, false),
            };
            // Validated after the whole syntax (Redis's order).
            exp = ExpireOpt::At(0);
            when = Some((&args[i + 1], unit, rel));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if let Some((v, unit, rel)) = when {
        exp = ExpireOpt::At(expire_at(v, unit, rel, ctx.now, "set")?);
    }
    // The journal gets the command as Redis propagates it, not the key's
    // state (which would cost a second lookup and a copy of the value per
    // write): see the end.
    let journal = ctx.shard.journal_mark(ctx.db);
    let now = ctx.now;
    let db = ctx.db();
    let key = &args[1];
    let existing = db.lookup(key, now);
    if get {
        match existing {
            Some(idx) => {
                let mut buf = itoa::Buffer::new();
                match db.entry(idx).value.as_bytes(&mut buf) {
                    Some(b) => out.bulk(b),
                    None => return Err(CmdError::WrongType),
                }
            }
            None => out.nil(),
        }
    }
    if (nx && existing.is_some()) || (xx && existing.is_none()) {
        if !get {
            out.nil();
        }
        return Ok(());
    }
    let value = Value::string_arg(&args[2]);
    match existing {
        Some(idx) => {
            db.entry_mut(idx).value = value;
            match exp {
                ExpireOpt::KeepTtl => {}
                ExpireOpt::At(at) => db.set_expire(idx, at),
                _ => db.set_expire(idx, 0),
            }
        }
        None => {
            let at = if let ExpireOpt::At(at) = exp { at } else { 0 };
            db.insert_new(key, value, at);
        }
    }
    if let ExpireOpt::At(at) = exp {
        if at <= now {
            db.remove(key, 0);
        }
    }
    if let Some(mark) = journal {
        match exp {
            // As sent, less GET.
            ExpireOpt::KeepTtl => {
                let options = args[3..].iter().filter(|a| !eq_ic(a, "GET"));
                let parts: Vec<&[u8]> = args[..3].iter().chain(options).map(|a| &a[..]).collect();
                ctx.shard.journal_parts(ctx.db, mark, &parts);
            }
            // Born expired: gone.
            ExpireOpt::At(at) if at <= now => ctx.shard.journal_parts(ctx.db, mark, &[b"DEL", key]),
            // A relative expiry as the absolute time it gave.
            ExpireOpt::At(at) => {
                let mut ms = itoa::Buffer::new();
                ctx.shard.journal_parts(ctx.db, mark, &[b"SET", key, &args[2], b"PXAT", ms.format(at).as_bytes()]);
            }
            // NX/XX held when it ran; replayed on the same data it writes.
            _ => ctx.shard.journal_parts(ctx.db, mark, &[b"SET", key, &args[2]]),
        }
    }
    if !get {
        out.ok();
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    if db.exists(&args[1], now) {
        out.int(0);
    } else {
        db.insert_new(&args[1], Value::string(&args[2]), 0);
        out.int(1);
    }
    Ok(())
}

fn set_with_ttl(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, unit: i64, name: &str) -> CmdResult {
    let now = ctx.now;
    let at = expire_at(&args[2], unit, true, now, name)?;
    let db = ctx.db();
    let idx = db.set(&args[1], Value::string(&args[3]), false, now);
    db.set_expire(idx, at);
    out.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    set_with_ttl(ctx, args, out, 1000, "setex")
}

fn psetex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    set_with_ttl(ctx, args, out, 1, "psetex")
}

fn getset(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    if with_string(db, &args[1], now, |b| out.bulk(b))?.is_none() {
        out.nil();
    }
    db.set(&args[1], Value::string(&args[2]), false, now);
    Ok(())
}

fn getdel(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    if with_string(db, &args[1], now, |b| out.bulk(b))?.is_some() {
        db.remove(&args[1], now);
    } else {
        out.nil();
    }
    Ok(())
}

fn getex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let mut exp = ExpireOpt::None;
    let mut when = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "PERSIST") && exp == ExpireOpt::None {
            exp = ExpireOpt::Persist;
        } else if exp == ExpireOpt::None && i + 1 < args.len() && ["EX", "PX", "EXAT", "PXAT"].iter().any(|w| eq_ic(a, w)) {
            let (unit, rel) = match a.to_ascii_uppercase().as_slice() {
                b"EX" => (1000, true),
                b"PX" => (1, true),
                b"EXAT" => (1000, false),
                _ => (1, false),
            };
            // Validated once the key is found to be a string (Redis's order).
            exp = ExpireOpt::At(0);
            when = Some((&args[i + 1], unit, rel));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let db = ctx.db();
    let Some(idx) = db.lookup(&args[1], now) else {
        out.nil();
        return Ok(());
    };
    if db.entry(idx).value.as_bytes(&mut itoa::Buffer::new()).is_none() {
        return Err(CmdError::WrongType);
    }
    if let Some((v, unit, rel)) = when {
        exp = ExpireOpt::At(expire_at(v, unit, rel, now, "getex")?);
    }
    let mut buf = itoa::Buffer::new();
    if let Some(b) = db.entry(idx).value.as_bytes(&mut buf) {
        out.bulk(b);
    }
    match exp {
        ExpireOpt::At(at) if at <= now => {
            db.remove_idx(idx);
        }
        ExpireOpt::At(at) => db.set_expire(idx, at),
        ExpireOpt::Persist if db.expire_of(idx).is_some() => db.set_expire(idx, 0),
        _ => {}
    }
    Ok(())
}

fn mget(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    out.array(args.len() - 1);
    ctx.mark(out);
    let mut hits = 0;
    for key in &args[1..] {
        // Keys of other types read as nil in MGET.
        match with_string(ctx.db(), key, now, |b| out.bulk(b)) {
            Ok(Some(())) => hits += 1,
            _ => out.nil(),
        }
        ctx.mark(out);
    }
    ctx.shard.stats.keyspace_hits += hits;
    ctx.shard.stats.keyspace_misses += (args.len() - 1) as u64 - hits;
    Ok(())
}

fn mset(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_arity("mset"));
    }
    let now = ctx.now;
    let db = ctx.db();
    for pair in args[1..].chunks_exact(2) {
        db.set(&pair[0], Value::string(&pair[1]), false, now);
    }
    out.ok();
    Ok(())
}

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

fn incr(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    out.int(incr_by(ctx, &args[1], 1)?);
    Ok(())
}

fn decr(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    out.int(incr_by(ctx, &args[1], -1)?);
    Ok(())
}

fn incrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let d = parse_i64(&args[2])?;
    out.int(incr_by(ctx, &args[1], d)?);
    Ok(())
}

fn decrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let d = parse_i64(&args[2])?;
    let d = d.checked_neg().ok_or_else(|| CmdError::err("decrement would overflow"))?;
    out.int(incr_by(ctx, &args[1], d)?);
    Ok(())
}

fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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

fn max_len(ctx: &Ctx) -> usize {
    ctx.shard.cfg.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed) as usize
}

fn append(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let limit = max_len(ctx);
    let db = ctx.db();
    match db.lookup(&args[1], now) {
        Some(idx) => {
            let e = db.entry_mut(idx);
            let mut buf = itoa::Buffer::new();
            let cur = e.value.as_bytes(&mut buf).ok_or(CmdError::WrongType)?;
            if cur.len() + args[2].len() > limit {
                return Err(CmdError::StringTooLong);
            }
            let mut v = Vec::with_capacity(cur.len() + args[2].len());
            v.extend_from_slice(cur);
            v.extend_from_slice(&args[2]);
            out.int(v.len() as i64);
            e.value = Value::string_from_vec(v);
        }
        None => {
            db.insert_new(&args[1], Value::string(&args[2]), 0);
            out.int(args[2].len() as i64);
        }
    }
    Ok(())
}

fn strlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let n = with_string(ctx.db(), &args[1], now, |b| b.len())?.unwrap_or(0);
    out.int(n as i64);
    Ok(())
}

/// Resolves Redis's inclusive, possibly negative `start`/`end` pair against a
/// length; `None` when the range is empty.
pub fn resolve_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if e < 0 {
        e = 0;
    }
    if e >= len {
        e = len - 1;
    }
    if len == 0 || s > e || s >= len {
        return None;
    }
    Some((s as usize, e as usize))
}

fn getrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let (start, end) = (parse_i64(&args[2])?, parse_i64(&args[3])?);
    let done = with_string(ctx.db(), &args[1], now, |b| {
        if start < 0 && end < 0 && start > end {
            out.bulk(b"");
            return;
        }
        match resolve_range(start, end, b.len()) {
            Some((s, e)) => out.bulk(&b[s..=e]),
            None => out.bulk(b""),
        }
    })?;
    if done.is_none() {
        out.bulk(b"");
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let offset = parse_i64(&args[2])?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let offset = offset as usize;
    let val = &args[3];
    let limit = max_len(ctx);
    let db = ctx.db();
    let idx = db.lookup(&args[1], now);
    let mut cur = match idx {
        Some(i) => {
            let mut buf = itoa::Buffer::new();
            db.entry(i).value.as_bytes(&mut buf).ok_or(CmdError::WrongType)?.to_vec()
        }
        None => Vec::new(),
    };
    if val.is_empty() {
        out.int(cur.len() as i64);
        return Ok(());
    }
    if offset + val.len() > limit {
        return Err(CmdError::StringTooLong);
    }
    if cur.len() < offset + val.len() {
        cur.resize(offset + val.len(), 0);
    }
    cur[offset..offset + val.len()].copy_from_slice(val);
    out.int(cur.len() as i64);
    match idx {
        Some(i) => db.entry_mut(i).value = Value::string_from_vec(cur),
        None => {
            db.insert_new(&args[1], Value::string_from_vec(cur), 0);
        }
    }
    Ok(())
}

/// MSETNX: sets every pair only if none of the keys exists, atomically across
/// shards (all involved shards are locked while checking and writing).
pub async fn msetnx(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_arity("msetnx"));
    }
    let mut parts: Vec<(usize, Vec<Bytes>)> = Vec::new();
    for pair in args[1..].chunks_exact(2) {
        let s = cx.engine().shard_of(&pair[0]);
        match parts.iter_mut().find(|p| p.0 == s) {
            Some(p) => p.1.extend(pair.iter().cloned()),
            None => parts.push((s, pair.to_vec())),
        }
    }
    parts.sort_by_key(|p| p.0);
    let db = cx.db();
    let mut any = false;
    for (s, pairs) in &parts {
        let keys: Vec<Bytes> = pairs.iter().step_by(2).cloned().collect();
        any |= cx
            .lock_run(*s, move |sh| {
                let now = crate::util::now_ms();
                keys.iter().any(|k| sh.db(db).exists(k, now))
            })
            .await;
        if any {
            break;
        }
    }
    if !any {
        for (s, pairs) in parts {
            cx.run_on(s, move |sh| {
                let now = crate::util::now_ms();
                let d = sh.db(db);
                for p in pairs.chunks_exact(2) {
                    d.set(&p[0], Value::string(&p[1]), false, now);
                }
            })
            .await;
        }
    }
    cx.out().int(!any as i64);
    Ok(())
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest
/// common subsequence of two strings (missing keys count as empty). Both
/// values are read under one transaction when they live on two shards.
pub async fn lcs(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let db = cx.db();
    let read = move |sh: &mut crate::shard::Shard, key: Bytes| -> CmdResult<Vec<u8>> {
        match with_string(sh.db(db), &key, crate::util::now_ms(), |b| b.to_vec()) {
            Ok(v) => Ok(v.unwrap_or_default()),
            Err(_) => Err(CmdError::err("The specified keys must contain string values")),
        }
    };
    let (ka, kb) = (args[1].clone(), args[2].clone());
    let (sa, sb) = (cx.engine().shard_of(&ka), cx.engine().shard_of(&kb));
    let (a, b) = if sa == sb {
        cx.run_on(sa, move |sh| (read(sh, ka), read(sh, kb))).await
    } else {
        cx.lock(&[sa.min(sb), sa.max(sb)]).await;
        let a = cx.run_on(sa, move |sh| read(sh, ka)).await;
        let b = cx.run_on(sb, move |sh| read(sh, kb)).await;
        (a, b)
    };
    let (a, b) = (a?, b?);
    // Options are read once both keys are known to hold strings (Redis's order).
    let (mut len_only, mut idx, mut min_len, mut with_len) = (false, false, 0usize, false);
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "LEN") {
            len_only = true;
        } else if eq_ic(&args[j], "IDX") {
            idx = true;
        } else if eq_ic(&args[j], "WITHMATCHLEN") {
            with_len = true;
        } else if eq_ic(&args[j], "MINMATCHLEN") && j + 1 < args.len() {
            min_len = parse_i64(&args[j + 1])?.max(0) as usize;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if len_only && idx {
        return Err(CmdError::err("If you want both the length and indexes, please just use IDX."));
    }
    let limit = cx.engine().cfg.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed) as usize;
    if crate::types::lcs::table_bytes(a.len(), b.len()).is_none_or(|n| n > limit) {
        return Err(CmdError::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let r = crate::types::lcs::lcs(&a, &b);
    let out = cx.out();
    if len_only {
        out.int(r.string.len() as i64);
    } else if idx {
        out.map(2);
        out.bulk(b"matches");
        let shown: Vec<_> = r.matches.iter().filter(|m| min_len == 0 || m.len() >= min_len).collect();
        out.array(shown.len());
        for m in shown {
            out.array(if with_len { 3 } else { 2 });
            for (x, y) in [m.a, m.b] {
                out.array(2);
                out.int(x as i64);
                out.int(y as i64);
            }
            if with_len {
                out.int(m.len() as i64);
            }
        }
        out.bulk(b"len");
        out.int(r.string.len() as i64);
    } else {
        out.bulk(&r.string);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(resolve_range(0, -1, 5), Some((0, 4)));
        assert_eq!(resolve_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(resolve_range(3, 1, 5), None);
        assert_eq!(resolve_range(0, 100, 5), Some((0, 4)));
        assert_eq!(resolve_range(10, 20, 5), None);
        assert_eq!(resolve_range(0, 0, 0), None);
    }
}
