//! Hash commands: HSET and friends, field reads, counters (HINCRBY,
//! HINCRBYFLOAT), whole-hash reads, HRANDFIELD and HSCAN. The data structure
//! itself lives in `types::hash`.

use bytes::Bytes;
use rand::Rng;

use super::notify::Notify;
use super::{cmd, flag::*, CommandSpec, Ctx, Exec};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::store::Value;
use crate::types::hash::{HashLimits, HashValue};
use crate::util::{canonical_int, eq_ic, glob_match, parse_i64, parse_long_double};

const W: &[&str] = &["write", "hash", "fast"];
const RF: &[&str] = &["read", "hash", "fast"];
const RS: &[&str] = &["read", "hash", "slow"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "hset",
        -4,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        W,
        "hash",
        "Creates or modifies the value of a field in a hash.",
        Exec::Shard(hset),
    )
    .member_at(2)
    .notify(Notify::Each(ks::HASH, "hset"))
    .key_flags(&["RW", "update"]),
    cmd(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        W,
        "hash",
        "Sets the value of a field in a hash only when the field doesn't exist.",
        Exec::Shard(hsetnx),
    )
    .member_at(2)
    .notify(Notify::Counted(ks::HASH, "hset"))
    .key_flags(&["RW", "insert"]),
    cmd(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        W,
        "hash",
        "Sets the values of multiple fields.",
        Exec::Shard(hmset),
    )
    .member_at(2)
    .notify(Notify::Each(ks::HASH, "hset"))
    .key_flags(&["RW", "update"]),
    cmd("hget", 3, READONLY | FAST, (1, 1, 1), RF, "hash", "Returns the value of a field in a hash.", Exec::Shard(hget))
        .member_at(2)
        .key_flags(&["RO", "access"]),
    cmd("hmget", -3, READONLY | FAST, (1, 1, 1), RF, "hash", "Returns the values of all fields in a hash.", Exec::Shard(hmget))
        .member_at(2)
        .key_flags(&["RO", "access"]),
    cmd("hgetall", 2, READONLY, (1, 1, 1), RS, "hash", "Returns all fields and values in a hash.", Exec::Shard(hgetall))
        .tips(&["nondeterministic_output_order"])
        .key_flags(&["RO", "access"]),
    cmd(
        "hdel",
        -3,
        WRITE | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        W,
        "hash",
        "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
        Exec::Shard(hdel),
    )
    .member_at(2)
    .notify(Notify::Counted(ks::HASH, "hdel"))
    .key_flags(&["RW", "delete"]),
    cmd("hlen", 2, READONLY | FAST, (1, 1, 1), RF, "hash", "Returns the number of fields in a hash.", Exec::Shard(hlen)),
    cmd("hexists", 3, READONLY | FAST, (1, 1, 1), RF, "hash", "Determines whether a field exists in a hash.", Exec::Shard(hexists))
        .member_at(2),
    cmd("hkeys", 2, READONLY, (1, 1, 1), RS, "hash", "Returns all fields in a hash.", Exec::Shard(hkeys))
        .tips(&["nondeterministic_output_order"])
        .key_flags(&["RO", "access"]),
    cmd("hvals", 2, READONLY, (1, 1, 1), RS, "hash", "Returns all values in a hash.", Exec::Shard(hvals))
        .tips(&["nondeterministic_output_order"])
        .key_flags(&["RO", "access"]),
    cmd("hstrlen", 3, READONLY | FAST, (1, 1, 1), RF, "hash", "Returns the length of the value of a field.", Exec::Shard(hstrlen))
        .member_at(2),
    cmd(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        W,
        "hash",
        "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
        Exec::Shard(hincrby),
    )
    .member_at(2)
    .notify(Notify::Each(ks::HASH, "hincrby"))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        W,
        "hash",
        "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
        Exec::Shard(hincrbyfloat),
    )
    .member_at(2)
    .notify(Notify::Each(ks::HASH, "hincrbyfloat"))
    .key_flags(&["RW", "access", "update"]),
    cmd("hrandfield", -2, READONLY, (1, 1, 1), RS, "hash", "Returns one or more random fields from a hash.", Exec::Shard(hrandfield))
        .tips(&["nondeterministic_output"])
        .key_flags(&["RO", "access"]),
    cmd("hscan", -3, READONLY, (1, 1, 1), RS, "hash", "Iterates over fields and values of a hash.", Exec::Shard(hscan))
        .tips(&["nondeterministic_output"])
        .key_flags(&["RO", "access"]),
];

/// Reads the hash at `key` (`None` when missing; WRONGTYPE for other types),
/// counting a keyspace hit or miss as Redis's read lookups do.
fn read_hash<'c>(ctx: &'c mut Ctx, key: &[u8]) -> CmdResult<Option<&'c HashValue>> {
    let now = ctx.now;
    let idx = ctx.db().lookup(key, now);
    let stats = &mut ctx.shard.stats;
    if idx.is_some() {
        stats.keyspace_hits += 1;
    } else {
        stats.keyspace_misses += 1;
    }
    let Some(idx) = idx else { return Ok(None) };
    match &ctx.db().entry(idx).value {
        Value::Hash(h) => Ok(Some(h)),
        _ => Err(CmdError::WrongType),
    }
}

/// Runs `f` on the hash at `key` for writing. A missing key is `f` on a new
/// empty hash when `create` (stored only if `f` leaves it non-empty), and
/// `Ok(None)` otherwise. A hash left empty is deleted. `f` must not modify
/// the hash when it returns an error.
fn write_hash<R>(
    ctx: &mut Ctx,
    key: &[u8],
    create: bool,
    f: impl FnOnce(&mut HashValue, HashLimits) -> CmdResult<R>,
) -> CmdResult<Option<R>> {
    let now = ctx.now;
    let limits = ctx.shard.cfg.hash_limits();
    let db = ctx.db();
    match db.lookup(key, now) {
        Some(idx) => {
            let Value::Hash(h) = &mut db.entry_mut(idx).value else { return Err(CmdError::WrongType) };
            let r = f(h, limits)?;
            if h.is_empty() {
                db.remove_idx(idx);
            }
            Ok(Some(r))
        }
        None if create => {
            let mut h = HashValue::default();
            let r = f(&mut h, limits)?;
            if !h.is_empty() {
                db.insert_new(key, Value::Hash(Box::new(h)), 0);
            }
            Ok(Some(r))
        }
        None => Ok(None),
    }
}

/// Sets every (field, value) pair of `pairs`; returns how many fields are new.
fn set_pairs(ctx: &mut Ctx, key: &[u8], pairs: &[Bytes]) -> CmdResult<i64> {
    let longest = pairs.iter().map(|a| a.len()).max().unwrap_or(0);
    let n = pairs.len() / 2;
    let added = write_hash(ctx, key, true, |h, limits| {
        if h.is_empty() {
            *h = HashValue::with_capacity(n, limits);
        }
        h.reserve(n, longest, limits);
        let mut added = 0;
        for p in pairs.chunks_exact(2) {
            added += h.set(&p[0], &p[1], limits) as i64;
        }
        Ok(added)
    })?;
    Ok(added.unwrap_or(0))
}

fn hset(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_arity("hset"));
    }
    out.int(set_pairs(ctx, &args[1], &args[2..])?);
    Ok(())
}

fn hmset(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_arity("hmset"));
    }
    set_pairs(ctx, &args[1], &args[2..])?;
    out.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (field, value) = (&args[2], &args[3]);
    let added = write_hash(ctx, &args[1], true, |h, limits| {
        if h.get(field).is_some() {
            return Ok(false);
        }
        h.reserve(1, field.len().max(value.len()), limits);
        Ok(h.set(field, value, limits))
    })?;
    out.int(added.unwrap_or(false) as i64);
    Ok(())
}

fn hget(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    match read_hash(ctx, &args[1])?.and_then(|h| h.get(&args[2])) {
        Some(v) => out.bulk(v),
        None => out.nil(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let h = read_hash(ctx, &args[1])?;
    let fields = &args[2..];
    out.array(fields.len());
    for f in fields {
        match h.and_then(|h| h.get(f)) {
            Some(v) => out.bulk(v),
            None => out.nil(),
        }
    }
    Ok(())
}

fn hgetall(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let Some(h) = read_hash(ctx, &args[1])? else {
        out.map(0);
        return Ok(());
    };
    out.map(h.len());
    for (f, v) in h.iter() {
        out.bulk(f);
        out.bulk(v);
    }
    Ok(())
}

fn hkeys(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let h = read_hash(ctx, &args[1])?;
    out.array(h.map_or(0, |h| h.len()));
    for (f, _) in h.iter().flat_map(|h| h.iter()) {
        out.bulk(f);
    }
    Ok(())
}

fn hvals(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let h = read_hash(ctx, &args[1])?;
    out.array(h.map_or(0, |h| h.len()));
    for (_, v) in h.iter().flat_map(|h| h.iter()) {
        out.bulk(v);
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let fields = &args[2..];
    // Only a deletion writes (watchers and keyspace events see nothing else).
    if !read_hash(ctx, &args[1])?.is_some_and(|h| fields.iter().any(|f| h.get(f).is_some())) {
        out.int(0);
        return Ok(());
    }
    let removed = write_hash(ctx, &args[1], false, |h, _| {
        let mut n = 0;
        for f in fields {
            n += h.remove(f) as i64;
            if h.is_empty() {
                break;
            }
        }
        Ok(n)
    })?;
    out.int(removed.unwrap_or(0));
    Ok(())
}

fn hlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let n = read_hash(ctx, &args[1])?.map_or(0, |h| h.len());
    out.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let found = read_hash(ctx, &args[1])?.is_some_and(|h| h.get(&args[2]).is_some());
    out.int(found as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let n = read_hash(ctx, &args[1])?.and_then(|h| h.get(&args[2])).map_or(0, |v| v.len());
    out.int(n as i64);
    Ok(())
}

fn hincrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let delta = parse_i64(&args[3])?;
    let field = &args[2];
    let new = write_hash(ctx, &args[1], true, |h, limits| {
        let cur = match h.get(field) {
            Some(v) => canonical_int(v).ok_or(CmdError::HashNotInteger)?,
            None => 0,
        };
        let new = cur.checked_add(delta).ok_or(CmdError::Overflow)?;
        h.set(field, itoa::Buffer::new().format(new).as_bytes(), limits);
        Ok(new)
    })?;
    out.int(new.unwrap_or(delta));
    Ok(())
}

/// The text HINCRBYFLOAT stores: the shortest decimal that reads back as the
/// same double, never in exponent form, and "0" rather than "-0".
fn float_text(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v}")
    }
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let delta = parse_long_double(&args[3])?;
    if !delta.is_finite() {
        return Err(CmdError::NanOrInfinityValue);
    }
    let field = &args[2];
    let text = write_hash(ctx, &args[1], true, |h, limits| {
        let (cur, exact) = match h.get(field) {
            Some(v) => (parse_long_double(v).map_err(|_| CmdError::HashNotFloat)?, crate::types::decimal::add(v, &args[3])),
            None => (0.0, crate::types::decimal::add(b"0", &args[3])),
        };
        let new = cur + delta;
        if !new.is_finite() {
            return Err(CmdError::NanOrInfinity);
        }
        // Short decimals add exactly, as Redis's long double shows them.
        let text = exact.unwrap_or_else(|| float_text(new));
        h.set(field, text.as_bytes(), limits);
        Ok(text)
    })?;
    out.bulk(text.unwrap_or_default().as_bytes());
    Ok(())
}

/// Upper bound on the number of elements one HRANDFIELD with a negative
/// count may reply with, so that a single command cannot make the server
/// build an unbounded reply in memory.
const RANDFIELD_MAX_REPEATS: u64 = 1 << 24;

fn hrandfield(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() == 2 {
        match read_hash(ctx, &args[1])? {
            Some(h) if !h.is_empty() => {
                let i = rand::rng().random_range(0..h.len());
                match h.nth(i) {
                    Some((f, _)) => out.bulk(f),
                    None => out.nil(),
                }
            }
            _ => out.nil(),
        }
        return Ok(());
    }
    let count = parse_i64(&args[2])?;
    if count == i64::MIN {
        return Err(CmdError::err("value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    }
    let with_values = match args.len() {
        3 => false,
        4 if eq_ic(&args[3], "WITHVALUES") => true,
        _ => return Err(CmdError::Syntax),
    };
    if with_values && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::OutOfRange);
    }
    let resp3 = out.resp3;
    let Some(h) = read_hash(ctx, &args[1])? else {
        out.array(0);
        return Ok(());
    };
    let n = h.len();
    if n == 0 || count == 0 {
        out.array(0);
        return Ok(());
    }
    // Writes one picked pair: `[field, value]` pairs in RESP3, flat in RESP2.
    let emit = |out: &mut Out, i: usize| {
        if let Some((f, v)) = h.nth(i) {
            if with_values && resp3 {
                out.array(2);
            }
            out.bulk(f);
            if with_values {
                out.bulk(v);
            }
        }
    };
    let header = |out: &mut Out, picks: usize| out.array(if with_values && !resp3 { picks * 2 } else { picks });
    let mut rng = rand::rng();
    if count < 0 {
        // Repeats allowed: independent uniform picks.
        let picks = count.unsigned_abs();
        if picks > RANDFIELD_MAX_REPEATS {
            return Err(CmdError::OutOfRange);
        }
        let mark = out.buf.len();
        header(out, picks as usize);
        for _ in 0..picks {
            emit(out, rng.random_range(0..n));
            super::sets::repeats_within(out, mark)?;
        }
        return Ok(());
    }
    let want = (count as u64).min(n as u64) as usize;
    header(out, want);
    if want == n {
        for i in 0..n {
            emit(out, i);
        }
    } else {
        // Distinct indices in random order (rand picks the algorithm:
        // O(want) for few picks from a large hash).
        for i in rand::seq::index::sample(&mut rng, n, want) {
            emit(out, i);
        }
    }
    Ok(())
}

fn hscan(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let cursor = super::scan::parse_cursor(&args[2])?;
    let Some(h) = read_hash(ctx, &args[1])? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut no_values = false;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let has_next = i + 1 < args.len();
        if eq_ic(a, "COUNT") && has_next {
            let c = parse_i64(&args[i + 1])?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(c).unwrap_or(usize::MAX);
            i += 2;
        } else if eq_ic(a, "MATCH") && has_next {
            let p = &args[i + 1][..];
            pattern = (p != b"*").then_some(p);
            i += 2;
        } else if eq_ic(a, "NOVALUES") {
            no_values = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut found: Vec<(&[u8], &[u8])> = Vec::with_capacity(count.min(h.len()).min(1024));
    let next = h.scan(cursor, count, |f, v| {
        if pattern.is_none_or(|p| glob_match(p, f, false)) {
            found.push((f, v));
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(if no_values { found.len() } else { found.len() * 2 });
    for (f, v) in found {
        out.bulk(f);
        if !no_values {
            out.bulk(v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::shard::Shard;

    fn shard() -> Shard {
        let args = <crate::config::Args as clap::Parser>::parse_from(["damselfly"]);
        let cfg = crate::config::Config::from_args(&args).expect("default config");
        Shard::new(0, 1, Arc::new(cfg), crate::shard::scripts::Scripting::new(crate::commands::is_command))
    }

    /// Runs one command on `sh` and returns its reply (or error) as text.
    fn run(sh: &mut Shard, resp3: bool, args: &[&str]) -> String {
        let spec = super::super::lookup(args[0].as_bytes()).expect("known command");
        if !spec.arity_ok(args.len()) {
            return format!("-{}\r\n", CmdError::wrong_arity(spec.name));
        }
        let Exec::Shard(f) = spec.exec else { panic!("hash commands run on the shard") };
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let mut out = Out::new(resp3);
        let mut ctx = Ctx { shard: sh, db: 0, now: 1, part: None };
        if let Err(e) = f(&mut ctx, &args, &mut out) {
            out.buf.clear();
            out.error(&e);
        }
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    #[test]
    fn set_get_delete_lifecycle() {
        let mut sh = shard();
        assert_eq!(run(&mut sh, false, &["HSET", "h", "a", "1", "b", "2"]), ":2\r\n");
        assert_eq!(run(&mut sh, false, &["HSET", "h", "a", "3", "c", "4"]), ":1\r\n");
        assert_eq!(run(&mut sh, false, &["HGET", "h", "a"]), "$1\r\n3\r\n");
        assert_eq!(run(&mut sh, false, &["HGETALL", "h"]), "*6\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n4\r\n");
        assert_eq!(run(&mut sh, true, &["HGETALL", "h"]), "%3\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n4\r\n");
        assert_eq!(run(&mut sh, false, &["HDEL", "h", "a", "b", "zz"]), ":2\r\n");
        assert_eq!(run(&mut sh, false, &["HDEL", "h", "c"]), ":1\r\n");
        assert!(!sh.db(0).exists(b"h", 1), "the last HDEL deletes the key");
        assert_eq!(run(&mut sh, false, &["HSET", "h", "a"]), "-ERR wrong number of arguments for 'hset' command\r\n");
        assert_eq!(run(&mut sh, false, &["HSET", "h", "a", "1", "b"]), "-ERR wrong number of arguments for 'hset' command\r\n");
        assert_eq!(run(&mut sh, false, &["HMSET", "h", "a", "1", "b"]), "-ERR wrong number of arguments for 'hmset' command\r\n");
        assert!(!sh.db(0).exists(b"h", 1), "a failed HSET creates nothing");
    }

    #[test]
    fn counters() {
        let mut sh = shard();
        assert_eq!(run(&mut sh, false, &["HINCRBY", "h", "n", "5"]), ":5\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBY", "h", "n", "-7"]), ":-2\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBY", "h", "n", "x"]), "-ERR value is not an integer or out of range\r\n");
        run(&mut sh, false, &["HSET", "h", "s", "abc", "big", "9223372036854775807", "f", "1.5"]);
        assert_eq!(run(&mut sh, false, &["HINCRBY", "h", "s", "1"]), "-ERR hash value is not an integer\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBY", "h", "big", "1"]), "-ERR increment or decrement would overflow\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBYFLOAT", "h", "f", "0.25"]), "$4\r\n1.75\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBYFLOAT", "h", "s", "1"]), "-ERR hash value is not a float\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBYFLOAT", "h", "f", "inf"]), "-ERR value is NaN or Infinity\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBYFLOAT", "h", "f", "x"]), "-ERR value is not a valid float\r\n");
        run(&mut sh, false, &["HSET", "h", "huge", "1e308"]);
        assert_eq!(run(&mut sh, false, &["HINCRBYFLOAT", "h", "huge", "1e308"]), "-ERR increment would produce NaN or Infinity\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBYFLOAT", "h", "z", "-0.5"]), "$4\r\n-0.5\r\n");
        assert_eq!(run(&mut sh, false, &["HINCRBYFLOAT", "h", "z", "0.5"]), "$1\r\n0\r\n");
        assert_eq!(run(&mut sh, false, &["HGET", "h", "z"]), "$1\r\n0\r\n");
    }

    #[test]
    fn float_text_has_no_exponent() {
        assert_eq!(float_text(10.5 + 0.1), "10.6");
        assert_eq!(float_text(1e21), "1000000000000000000000");
        assert_eq!(float_text(1.5e-7), "0.00000015");
        assert_eq!(float_text(-0.0), "0");
        assert_eq!(float_text(3.0), "3");
    }

    #[test]
    fn wrong_type_everywhere() {
        let mut sh = shard();
        sh.db(0).insert_new(b"s", Value::string(b"v"), 0);
        for args in [
            &["HSET", "s", "f", "v"][..],
            &["HSETNX", "s", "f", "v"],
            &["HMSET", "s", "f", "v"],
            &["HGET", "s", "f"],
            &["HMGET", "s", "f"],
            &["HGETALL", "s"],
            &["HDEL", "s", "f"],
            &["HLEN", "s"],
            &["HEXISTS", "s", "f"],
            &["HKEYS", "s"],
            &["HVALS", "s"],
            &["HSTRLEN", "s", "f"],
            &["HINCRBY", "s", "f", "1"],
            &["HINCRBYFLOAT", "s", "f", "1"],
            &["HRANDFIELD", "s"],
            &["HRANDFIELD", "s", "2"],
            &["HSCAN", "s", "0"],
        ] {
            assert_eq!(run(&mut sh, false, args), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", "{args:?}");
        }
    }

    #[test]
    fn randfield_distinct_picks_on_large_tables() {
        let mut sh = shard();
        let mut args = vec!["HSET".to_string(), "h".to_string()];
        for i in 0..1000 {
            args.push(format!("f{i}"));
            args.push(format!("{i}"));
        }
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        assert_eq!(run(&mut sh, false, &a), ":1000\r\n");
        for count in [1, 10, 200, 400, 999] {
            let reply = run(&mut sh, false, &["HRANDFIELD", "h", &count.to_string(), "WITHVALUES"]);
            let lines: Vec<&str> = reply.split("\r\n").collect();
            assert_eq!(lines[0], format!("*{}", count * 2));
            let mut fields: Vec<&str> = lines[1..].chunks(4).filter(|c| c.len() == 4).map(|c| c[1]).collect();
            for c in lines[1..].chunks(4).filter(|c| c.len() == 4) {
                assert_eq!(format!("f{}", c[3]), c[1], "value belongs to its field");
            }
            fields.sort_unstable();
            fields.dedup();
            assert_eq!(fields.len(), count, "picks are distinct");
        }
    }

    #[test]
    fn scan_on_a_table_pages_through_everything() {
        let mut sh = shard();
        for i in 0..500 {
            run(&mut sh, false, &["HSET", "h", &format!("f{i}"), "v"]);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        for _ in 0..1000 {
            let reply = run(&mut sh, false, &["HSCAN", "h", &cursor, "COUNT", "7", "NOVALUES"]);
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_string();
            seen.extend(lines[5..].iter().step_by(2).filter(|l| l.starts_with('f')).map(|l| l.to_string()));
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(cursor, "0");
        assert_eq!(seen.len(), 500);
    }
}
