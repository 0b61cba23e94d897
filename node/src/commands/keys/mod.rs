//! Generic key commands: DEL, UNLINK, EXISTS, TOUCH, TYPE, the EXPIRE and TTL
//! families, PERSIST, KEYS, RANDOMKEY, RENAME, RENAMENX, COPY, MOVE, SWAPDB,
//! OBJECT, MEMORY, DUMP, RESTORE, and the declaration of SCAN (implemented in
//! `scan`).
//!
//! Commands whose keys may live on two shards (RENAME, COPY) or that change
//! every shard (SWAPDB) run on the connection and use one `shard::tx::Tx`, so
//! no client ever sees them half done.

use bytes::Bytes;

use super::notify::{self, Notify};
use super::{cmd, flag::*, sub, Combine, CommandSpec, Coord, Ctx, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::db::Entry;
use crate::store::dump::{self, DumpError};
use crate::util::{eq_ic, glob_match, now_ms, parse_i64};

mod relocate;

pub use relocate::*;

const K: &[&str] = &["keyspace"];
const OBJ: &[&str] = &["keyspace", "read", "slow"];
const HELP: &str = "Returns helpful text about the different subcommands.";

pub static COMMANDS: &[CommandSpec] = &[
    cmd("del", -2, WRITE, (1, -1, 1), K, "generic", "Deletes one or more keys.", Exec::Split(del, Combine::Sum))
        .notify(Notify::Each(ks::GENERIC, "del"))
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .key_flags(&["RM", "delete"]),
    cmd(
        "unlink",
        -2,
        WRITE | FAST,
        (1, -1, 1),
        K,
        "generic",
        "Asynchronously deletes one or more keys.",
        Exec::Split(unlink, Combine::Sum),
    )
    .notify(Notify::Each(ks::GENERIC, "del"))
    .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
    .key_flags(&["RM", "delete"]),
    cmd(
        "exists",
        -2,
        READONLY | FAST,
        (1, -1, 1),
        K,
        "generic",
        "Determines whether one or more keys exist.",
        Exec::Split(exists, Combine::Sum),
    )
    .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
    cmd(
        "touch",
        -2,
        READONLY | FAST,
        (1, -1, 1),
        K,
        "generic",
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
        Exec::Split(touch, Combine::Sum),
    )
    .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
    cmd("type", 2, READONLY | FAST, (1, 1, 1), K, "generic", "Determines the type of value stored at a key.", Exec::Shard(type_)),
    cmd(
        "expire",
        -3,
        WRITE | FAST | JOURNAL_TTL,
        (1, 1, 1),
        K,
        "generic",
        "Sets the expiration time of a key in seconds.",
        Exec::Shard(expire),
    )
    .notify(Notify::PickCounted(notify::expire))
    .key_flags(&["RW", "update"]),
    cmd(
        "pexpire",
        -3,
        WRITE | FAST | JOURNAL_TTL,
        (1, 1, 1),
        K,
        "generic",
        "Sets the expiration time of a key in milliseconds.",
        Exec::Shard(pexpire),
    )
    .notify(Notify::PickCounted(notify::expire))
    .key_flags(&["RW", "update"]),
    cmd(
        "expireat",
        -3,
        WRITE | FAST | JOURNAL_TTL,
        (1, 1, 1),
        K,
        "generic",
        "Sets the expiration time of a key to a Unix timestamp.",
        Exec::Shard(expireat),
    )
    .notify(Notify::PickCounted(notify::expire))
    .key_flags(&["RW", "update"]),
    cmd(
        "pexpireat",
        -3,
        WRITE | FAST | JOURNAL_TTL,
        (1, 1, 1),
        K,
        "generic",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        Exec::Shard(pexpireat),
    )
    .notify(Notify::PickCounted(notify::expire))
    .key_flags(&["RW", "update"]),
    cmd("ttl", 2, READONLY | FAST, (1, 1, 1), K, "generic", "Returns the expiration time in seconds of a key.", Exec::Shard(ttl))
        .tips(&["nondeterministic_output"])
        .key_flags(&["RO", "access"]),
    cmd("pttl", 2, READONLY | FAST, (1, 1, 1), K, "generic", "Returns the expiration time in milliseconds of a key.", Exec::Shard(pttl))
        .tips(&["nondeterministic_output"])
        .key_flags(&["RO", "access"]),
    cmd(
        "expiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        K,
        "generic",
        "Returns the expiration time of a key as a Unix timestamp.",
        Exec::Shard(expiretime),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "pexpiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        K,
        "generic",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        Exec::Shard(pexpiretime),
    )
    .key_flags(&["RO", "access"]),
    cmd("persist", 2, WRITE | FAST | JOURNAL_TTL, (1, 1, 1), K, "generic", "Removes the expiration time of a key.", Exec::Shard(persist))
        .notify(Notify::Counted(ks::GENERIC, "persist"))
        .key_flags(&["RW", "update"]),
    cmd(
        "keys",
        2,
        READONLY,
        (0, 0, 0),
        &["keyspace", "read", "slow", "dangerous"],
        "generic",
        "Returns all key names that match a pattern.",
        Exec::Coord(handler!(async |cx, a| keys(cx, a))),
    )
    .tips(&["request_policy:all_shards", "nondeterministic_output_order"]),
    cmd(
        "randomkey",
        1,
        READONLY,
        (0, 0, 0),
        K,
        "generic",
        "Returns a random key name from the database.",
        Exec::Coord(handler!(async |cx, _a| randomkey(cx))),
    )
    .tips(&["request_policy:all_shards", "response_policy:special", "nondeterministic_output"]),
    cmd(
        "rename",
        3,
        WRITE,
        (1, 2, 1),
        K,
        "generic",
        "Renames a key and overwrites the destination.",
        Exec::Coord(handler!(async |cx, a| rename(cx, a, false))),
    )
    .notify(Notify::Pick(notify::rename))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "access", "delete"]), KeyRule::range(2, 2, 1).with_flags(&["OW", "update"])]),
    cmd(
        "renamenx",
        3,
        WRITE | FAST,
        (1, 2, 1),
        K,
        "generic",
        "Renames a key only when the target key name doesn't exist.",
        Exec::Coord(handler!(async |cx, a| rename(cx, a, true))),
    )
    .notify(Notify::PickCounted(notify::rename))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "access", "delete"]), KeyRule::range(2, 2, 1).with_flags(&["OW", "insert"])]),
    cmd(
        "scan",
        -2,
        READONLY,
        (0, 0, 0),
        &["keyspace", "read", "slow"],
        "generic",
        "Iterates over the key names in the database.",
        Exec::Coord(handler!(async |cx, a| super::scan::scan(cx, a))),
    )
    .tips(&["nondeterministic_output", "request_policy:special", "response_policy:special"]),
    cmd(
        "copy",
        -3,
        WRITE | DENYOOM,
        (1, 2, 1),
        &["keyspace", "write", "slow"],
        "generic",
        "Copies the value of a key to a new key.",
        Exec::Coord(handler!(async |cx, a| copy(cx, a))),
    )
    .notify(Notify::PickCounted(notify::copy))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["RO", "access"]), KeyRule::range(2, 2, 1).with_flags(&["OW", "update"])]),
    cmd(
        "move",
        3,
        WRITE | FAST,
        (1, 1, 1),
        &["keyspace", "write", "fast"],
        "generic",
        "Moves a key to another database.",
        Exec::Shard(move_),
    )
    .notify(Notify::PickCounted(notify::move_key))
    .key_flags(&["RW", "access", "update"]),
    cmd(
        "swapdb",
        3,
        WRITE | FAST,
        (0, 0, 0),
        &["keyspace", "write", "fast", "dangerous"],
        "server",
        "Swaps two Redis databases.",
        Exec::Coord(handler!(async |cx, a| swapdb(cx, a))),
    ),
    // OBJECT and MEMORY are containers; the key of the subcommands that take
    // one is the third argument, which routes them to its shard.
    cmd("object", -2, 0, (0, 0, 0), &["slow"], "generic", "A container for object introspection commands.", Exec::Shard(object))
        .subcommands(&[
            sub("object|encoding", 3, READONLY, (2, 2, 1), OBJ, "Returns the internal encoding of a Redis object.", Exec::Shard(object))
                .tips(&["nondeterministic_output"]),
            sub(
                "object|freq",
                3,
                READONLY,
                (2, 2, 1),
                OBJ,
                "Returns the logarithmic access frequency counter of a Redis object.",
                Exec::Shard(object),
            )
            .tips(&["nondeterministic_output"]),
            sub(
                "object|idletime",
                3,
                READONLY,
                (2, 2, 1),
                OBJ,
                "Returns the time since the last access to a Redis object.",
                Exec::Shard(object),
            )
            .tips(&["nondeterministic_output"]),
            sub("object|refcount", 3, READONLY, (2, 2, 1), OBJ, "Returns the reference count of a value of a key.", Exec::Shard(object))
                .tips(&["nondeterministic_output"]),
            sub("object|help", 2, LOADING | STALE, (0, 0, 0), &["keyspace", "slow"], HELP, Exec::Shard(object)),
        ]),
    cmd("memory", -2, 0, (0, 0, 0), &["slow"], "server", "A container for memory diagnostics commands.", Exec::Shard(memory)).subcommands(
        &[
            sub("memory|usage", -3, READONLY, (2, 2, 1), &["read", "slow"], "Estimates the memory usage of a key.", Exec::Shard(memory)),
            sub("memory|help", 2, LOADING | STALE, (0, 0, 0), &["slow"], HELP, Exec::Shard(memory)),
            sub(
                "memory|doctor",
                2,
                0,
                (0, 0, 0),
                &["slow"],
                "Outputs a memory problems report.",
                Exec::Coord(handler!(async |cx, _a| crate::commands::memory_stats::memory_doctor(cx))),
            )
            .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
            sub(
                "memory|stats",
                2,
                0,
                (0, 0, 0),
                &["slow"],
                "Returns details about memory usage.",
                Exec::Coord(handler!(async |cx, _a| crate::commands::memory_stats::memory_stats(cx))),
            )
            .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
            sub("memory|purge", 2, 0, (0, 0, 0), &["slow"], "Asks the allocator to release memory.", Exec::Shard(memory))
                .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
            sub("memory|malloc-stats", 2, 0, (0, 0, 0), &["slow"], "Returns the allocator statistics.", Exec::Shard(memory)).tips(&[
                "nondeterministic_output",
                "request_policy:all_shards",
                "response_policy:special",
            ]),
        ],
    ),
    cmd(
        "dump",
        2,
        READONLY,
        (1, 1, 1),
        &["keyspace", "read", "slow"],
        "generic",
        "Returns a serialized representation of the value stored at a key.",
        Exec::Shard(dump_),
    )
    .tips(&["nondeterministic_output"])
    .key_flags(&["RO", "access"]),
    cmd(
        "restore",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        &["keyspace", "write", "slow", "dangerous"],
        "generic",
        "Creates a key from the serialized representation of a value.",
        Exec::Shard(restore),
    )
    .notify(Notify::Pick(notify::restore))
    .key_flags(&["OW", "update"]),
];

fn del(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    remove_keys(ctx, args, out, drop)
}

/// UNLINK: DEL whose big values are freed in the background
/// (`store::lazyfree`).
fn unlink(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    remove_keys(ctx, args, out, crate::store::lazyfree::free)
}

/// Deletes the keys named, handing each value to `free`; replies how many.
fn remove_keys(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, free: fn(crate::store::Value)) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let mut n = 0;
    for k in &args[1..] {
        if let Some(e) = db.remove(k, now) {
            free(e.value);
            n += 1;
        }
    }
    ctx.count(n);
    out.int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = args[1..].iter().filter(|k| db.exists(k, now)).count() as i64;
    ctx.count(n);
    out.int(n);
    Ok(())
}

/// TOUCH: EXISTS that counts as an access of each key.
fn touch(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let n = args[1..].iter().filter(|k| db.lookup(k, now).is_some()).count() as i64;
    ctx.count(n);
    out.int(n);
    Ok(())
}

fn type_(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    match ctx.db().peek(&args[1], now) {
        Some((e, _)) => out.simple(e.value.type_name()),
        None => out.simple("none"),
    }
    Ok(())
}

/// EXPIRE and friends: `unit_ms` converts the argument to milliseconds,
/// `relative` adds the current time. Options NX, XX, GT, LT as Redis 7: they
/// are checked before the time argument, a time that is not in the future
/// deletes the key, and conversions that overflow are refused.
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, unit_ms: i64, relative: bool, name: &str) -> CmdResult {
    let now = ctx.now;
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
            // Redis formats the option as a C string: it ends at a NUL.
            let shown = a.split(|&c| c == 0).next().unwrap_or_default();
            return Err(CmdError::err(format!("Unsupported option {}", String::from_utf8_lossy(shown))));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(CmdError::err("GT and LT options at the same time are not compatible"));
    }
    let v = parse_i64(&args[2])?;
    let invalid = || CmdError::InvalidExpire(name.to_string());
    let ms = v.checked_mul(unit_ms).ok_or_else(invalid)?;
    let at = if relative { ms.checked_add(now as i64).ok_or_else(invalid)? } else { ms };
    let db = ctx.db();
    let Some(idx) = db.lookup(&args[1], now) else {
        out.int(0);
        return Ok(());
    };
    let cur = db.expire_of(idx);
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
    let db = ctx.db();
    // Not an access: the key's idle time and frequency stay (Redis's
    // LOOKUP_NOTOUCH).
    match db.lookup_quiet(&args[1], now) {
        None => out.int(-2),
        Some(idx) => match db.expire_of(idx) {
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
        Some(idx) if db.expire_of(idx).is_some() => {
            db.set_expire(idx, 0);
            out.int(1);
        }
        _ => out.int(0),
    }
    Ok(())
}

pub async fn keys(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let pattern = args[1].clone();
    let db = cx.db();
    let found = cx
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
    cx.out().array(n);
    for k in found.iter().flatten() {
        cx.out().bulk(k);
    }
    Ok(())
}

pub async fn randomkey(cx: &mut dyn Coord) -> CmdResult {
    let db = cx.db();
    let n = cx.engine().nshards();
    let start = rand::random_range(0..n);
    for i in 0..n {
        let s = (start + i) % n;
        let k = cx.run_on(s, move |sh| sh.db_if_exists(db).and_then(|d| d.random_key(now_ms())).map(|k| Bytes::copy_from_slice(&k))).await;
        if let Some(k) = k {
            cx.out().bulk(&k);
            return Ok(());
        }
    }
    cx.out().nil();
    Ok(())
}

fn help(out: &mut Out, lines: &[&str]) {
    out.help(lines);
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the internal representation used to store the value of <key>.",
    "FREQ <key>",
    "    Return the access frequency counter of <key> (only with an LFU maxmemory-policy).",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references to the value of <key>.",
    "HELP",
    "    Print this help.",
];

/// OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ | HELP.
///
/// Values are never shared, so REFCOUNT is 1. IDLETIME and FREQ read the
/// key's access metadata (`store::access`) without counting an access.
/// Like Redis, FREQ is refused unless the maxmemory-policy is an LFU one and
/// IDLETIME is refused when it is.
fn object(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "HELP") {
        help(out, OBJECT_HELP);
        return Ok(());
    }
    let Some(which) = ["encoding", "refcount", "idletime", "freq"].into_iter().find(|w| eq_ic(sub, w)) else {
        return Err(CmdError::unknown_subcommand("object", sub));
    };
    let lfu = ctx.shard.cfg.policy().lfu();
    let now = ctx.now;
    let Some((e, meta)) = ctx.db().peek(&args[2], now) else {
        out.nil();
        return Ok(());
    };
    match which {
        "encoding" => out.bulk(e.value.encoding().as_bytes()),
        "refcount" => out.int(1),
        "idletime" => {
            if lfu {
                return Err(CmdError::err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            out.int((crate::store::access::idle_ms(meta, now) / 1000) as i64);
        }
        _ => {
            if !lfu {
                return Err(CmdError::err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            out.int(crate::store::access::decayed(meta, now) as i64);
        }
    }
    Ok(())
}

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a report of memory problems, if any.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return the estimated number of bytes <key> and its value occupy.",
    "MALLOC-STATS",
    "    Return allocator statistics (not available for this allocator).",
    "PURGE",
    "    Ask the allocator to release memory.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "HELP",
    "    Print this help.",
];

/// The bytes a key is estimated to occupy: its slab entry (48 bytes, with the
/// key and a short value inline) plus what the key and value own on the heap.
/// Exact for the value (SAMPLES is accepted and not needed); the per-slot
/// index and expiry index costs are left out.
pub fn entry_size(e: &Entry) -> usize {
    std::mem::size_of::<Option<Entry>>() + e.key.heap_size() + e.value.heap_size()
}

/// MEMORY USAGE | MALLOC-STATS | PURGE | HELP.
fn memory(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "USAGE") {
        let mut j = 3;
        while j < args.len() {
            if eq_ic(&args[j], "SAMPLES") && j + 1 < args.len() {
                if parse_i64(&args[j + 1])? < 0 {
                    return Err(CmdError::Syntax);
                }
                j += 2;
            } else {
                return Err(CmdError::Syntax);
            }
        }
        let now = ctx.now;
        match ctx.db().get(&args[2], now) {
            Some(e) => out.int(entry_size(e) as i64),
            None => out.nil(),
        }
    } else if eq_ic(sub, "HELP") {
        help(out, MEMORY_HELP);
    } else if eq_ic(sub, "PURGE") {
        // This thread's Lua garbage and free allocator pages (idle threads
        // do the same by themselves: server::housekeeping).
        crate::commands::scripting::vm::collect_garbage();
        crate::alloc::release_free_memory();
        out.ok();
    } else if eq_ic(sub, "MALLOC-STATS") {
        out.bulk(b"Stats not supported for the current allocator");
    } else {
        return Err(CmdError::unknown_subcommand("memory", sub));
    }
    Ok(())
}

/// DUMP key: the value in `store::dump`'s format, or nil.
fn dump_(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    match ctx.db().get(&args[1], now) {
        Some(e) => out.bulk(&dump::encode(&e.value)),
        None => out.nil(),
    }
    Ok(())
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
///
/// Checks in Redis's order: options, existing key, TTL, payload. IDLETIME
/// sets the key's access time under a non-LFU policy, FREQ its access
/// counter under an LFU one (each is ignored under the other, as in
/// Redis). A TTL already in the past leaves the key absent (deleted, with REPLACE).
pub(super) fn restore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let has_value = j + 1 < args.len();
        if eq_ic(&args[j], "REPLACE") {
            replace = true;
        } else if eq_ic(&args[j], "ABSTTL") {
            absttl = true;
        } else if eq_ic(&args[j], "IDLETIME") && has_value && freq.is_none() {
            let v = parse_i64(&args[j + 1])?;
            if v < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
            j += 1;
        } else if eq_ic(&args[j], "FREQ") && has_value && idle.is_none() {
            let v = parse_i64(&args[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let (now, key) = (ctx.now, &args[1]);
    if !replace && ctx.db().exists(key, now) {
        return Err(CmdError::BusyKey);
    }
    let ttl = parse_i64(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::InvalidTtl);
    }
    let limits = ctx.shard.cfg.limits();
    let value = dump::decode(&args[3], limits).map_err(|e| match e {
        DumpError::VersionOrChecksum => CmdError::BadDumpPayload,
        DumpError::BadFormat => CmdError::BadDataFormat,
    })?;
    let expire_at = match ttl {
        0 => 0,
        t if absttl => t as u64,
        t => (now as i64).saturating_add(t) as u64,
    };
    let db = ctx.db();
    if replace {
        db.remove(key, now);
    }
    if expire_at == 0 || expire_at > now {
        let idx = db.insert_new(key, value, expire_at);
        if let Some(meta) = crate::store::access::restored(idle, freq, now) {
            db.set_access_meta(idx, meta);
        }
    }
    out.ok();
    Ok(())
}
