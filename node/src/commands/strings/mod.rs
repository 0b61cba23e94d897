//! String commands: SET and its variants, GET family, counters, ranges,
//! and the multi-key MGET/MSET/MSETNX. The command table, GET and the
//! string read the other families share live here.

use bytes::Bytes;

use super::notify::{self, Notify};
use super::{cmd, flag::*, Combine, CommandSpec, Ctx, Exec};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::Db;

mod counters;
mod multi;
mod ranges;
mod set;

use counters::*;
pub use multi::*;
pub use ranges::*;
pub use set::*;

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
