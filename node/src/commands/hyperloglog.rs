//! HyperLogLog commands: PFADD on the key's shard; PFCOUNT and PFMERGE,
//! over several keys, on the connection under one transaction. The sketch
//! itself (Redis's parameters and estimator) is `types::hll`.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::notify::{self, Notify};
use super::{cmd, flag::*, CommandSpec, Coord, Ctx, Exec, KeyRule};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::{Db, Value};
use crate::types::hll::{Hll, Invalid, SPARSE_MAX_DEFAULT};
use crate::util::eq_ic;

const G: &str = "hyperloglog";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "pfadd",
        -2,
        WRITE | DENYOOM | FAST | JOURNAL_ARGS,
        (1, 1, 1),
        &["write", "hyperloglog", "fast"],
        G,
        "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
        Exec::Shard(pfadd),
    )
    .notify(Notify::Counted(ks::STRING, "pfadd"))
    .key_flags(&["RW", "insert"]),
    cmd(
        "pfcount",
        -2,
        READONLY | MAY_REPLICATE,
        (1, -1, 1),
        &["read", "hyperloglog", "slow"],
        G,
        "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
        Exec::Coord(handler!(async |cx, a| pfcount(cx, a))),
    )
    .key_flags(&["RW", "access"]),
    cmd(
        "pfmerge",
        -2,
        WRITE | DENYOOM,
        (1, -1, 1),
        &["write", "hyperloglog", "slow"],
        G,
        "Merges one or more HyperLogLog values into a single key.",
        Exec::Coord(handler!(async |cx, a| pfmerge(cx, a))),
    )
    .notify(Notify::Pick(notify::pfmerge))
    .keys(&[KeyRule::range(1, 1, 1).with_flags(&["RW", "access", "insert"]), KeyRule::range(2, -1, 1).with_flags(&["RO", "access"])]),
    cmd(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        (2, 2, 1),
        &["write", "hyperloglog", "admin", "slow", "dangerous"],
        G,
        "Internal commands for debugging HyperLogLog values.",
        Exec::Shard(pfdebug),
    )
    .key_flags(&["RW", "access"]),
    cmd(
        "pfselftest",
        1,
        ADMIN,
        (0, 0, 0),
        &["hyperloglog", "admin", "slow", "dangerous"],
        G,
        "An internal command for testing HyperLogLog values.",
        Exec::Shard(pfselftest),
    ),
];

/// The sketch at `key`: `None` when there is no key.
fn load(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<Hll>> {
    super::strings::with_string(db, key, now, Hll::from_bytes)?.transpose().map_err(invalid)
}

/// The error for a string that is not a HyperLogLog.
fn invalid(e: Invalid) -> CmdError {
    match e {
        Invalid::NotHll => CmdError::Other("WRONGTYPE Key is not a valid HyperLogLog string value.".into()),
        Invalid::Corrupt => CmdError::Other("INVALIDOBJ Corrupted HLL object detected".into()),
    }
}

/// Writes the sketch, sparse while it fits in `sparse_max` bytes
/// (`hll-sparse-max-bytes`).
fn save(db: &mut Db, key: &[u8], h: &Hll, now: u64, sparse_max: u64) {
    db.set(key, Value::string_from_vec(h.to_bytes(sparse_max)), true, now);
}

fn pfadd(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let sparse_max = ctx.shard.engine.as_ref().map_or(SPARSE_MAX_DEFAULT, |e| e.cfg.encoding.hll_sparse_max_bytes.load(Relaxed));
    let db = ctx.db();
    let (mut h, mut changed) = match load(db, &args[1], now)? {
        Some(h) => (h, false),
        None => (Hll::default(), true),
    };
    for e in &args[2..] {
        changed |= h.add(e);
    }
    if changed {
        save(db, &args[1], &h, now, sparse_max);
    }
    out.int(changed as i64);
    Ok(())
}

/// PFSELFTEST: the sketch's own checks (`hll::self_test`), on the thread
/// of the shard it runs on, as Redis runs them on its only thread.
fn pfselftest(ctx: &mut Ctx, _args: &[Bytes], out: &mut Out) -> CmdResult {
    let sparse_max = ctx.shard.engine.as_ref().map_or(SPARSE_MAX_DEFAULT, |e| e.cfg.encoding.hll_sparse_max_bytes.load(Relaxed));
    crate::types::hll::self_test(crate::util::now_us(), sparse_max).map_err(CmdError::err)?;
    out.ok();
    Ok(())
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key, as Redis's: the registers
/// (a sparse string is made dense first), the sparse opcodes, the
/// layout's name, or whether it was converted to dense.
fn pfdebug(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let sparse_max = ctx.shard.engine.as_ref().map_or(SPARSE_MAX_DEFAULT, |e| e.cfg.encoding.hll_sparse_max_bytes.load(Relaxed));
    let db = ctx.db();
    let key = &args[2];
    let Some(bytes) = super::strings::with_string(db, key, now, |b| b.to_vec())? else {
        return Err(CmdError::err("The specified key does not exist"));
    };
    let mut h = Hll::from_bytes(&bytes).map_err(invalid)?;
    let sub = &args[1];
    if eq_ic(sub, "GETREG") {
        if !h.is_dense() {
            h.make_dense();
            save(db, key, &h, now, sparse_max);
        }
        out.array(h.registers().len());
        for &r in h.registers() {
            out.int(r as i64);
        }
    } else if eq_ic(sub, "DECODE") {
        let Some(text) = Hll::describe_sparse(&bytes) else { return Err(CmdError::err("HLL encoding is not sparse")) };
        out.bulk(text.as_bytes());
    } else if eq_ic(sub, "ENCODING") {
        out.simple(if h.is_dense() { "dense" } else { "sparse" });
    } else if eq_ic(sub, "TODENSE") {
        let convert = !h.is_dense();
        if convert {
            h.make_dense();
            save(db, key, &h, now, sparse_max);
        }
        out.int(convert as i64);
    } else {
        return Err(CmdError::err(format!("Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(sub))));
    }
    Ok(())
}

/// The union of the sketches at `keys` (read under one transaction).
async fn union_of(cx: &mut dyn Coord, keys: &[Bytes], store_at: Option<&Bytes>) -> CmdResult<u64> {
    let dst = store_at.cloned();
    let sparse_max = cx.engine().cfg.encoding.hll_sparse_max_bytes.load(Relaxed);
    // A union: a key named several times counts once.
    let (distinct, _) = super::distinct_keys(keys);
    super::gather(cx, &distinct, store_at, load, move |sketches| {
        let mut union = Hll::default();
        for h in sketches.iter().flatten() {
            union.merge(h);
        }
        let n = union.count();
        let write =
            dst.map(|key| -> super::Write { (key, Box::new(move |db: &mut Db, k: &[u8], now: u64| save(db, k, &union, now, sparse_max))) });
        (n, write)
    })
    .await
}

/// PFCOUNT key [key ...]. With one key, a count cached in the string's
/// header is answered as is; otherwise the count is computed and stored in
/// that cache, as Redis does: the bytes a later GET returns are
/// redis-server's, and watchers of the key are told, as Redis's
/// signalModifiedKey tells them.
pub async fn pfcount(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let n = match &args[1..] {
        [key] => {
            super::gather(cx, std::slice::from_ref(key), Some(key), load_single, |loaded| {
                let (n, compute) = match loaded.into_iter().next().flatten() {
                    None => (0, false),
                    Some(Single::Cached(n)) => (n, false),
                    Some(Single::Sketch(h)) => (h.count(), true),
                };
                let cache = move |db: &mut Db, k: &[u8], now: u64| cache_count(db, k, n, now);
                (n, compute.then(|| -> super::Write { (key.clone(), Box::new(cache)) }))
            })
            .await?
        }
        keys => union_of(cx, keys, None).await?,
    };
    cx.out().int(n as i64);
    Ok(())
}

/// One key's HyperLogLog for PFCOUNT: its cached count, or its registers.
enum Single {
    Cached(u64),
    Sketch(Hll),
}

fn load_single(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Option<Single>> {
    let read = |b: &[u8]| match Hll::cached_count(b) {
        Some(n) => Ok(Single::Cached(n)),
        None => Hll::from_bytes(b).map(Single::Sketch),
    };
    super::strings::with_string(db, key, now, read)?.transpose().map_err(invalid)
}

/// Stores `n` in the header cache of the HyperLogLog at `key` if the cache
/// there is stale.
fn cache_count(db: &mut Db, key: &[u8], n: u64, now: u64) {
    let Some(idx) = db.lookup(key, now) else { return };
    let mut bytes = match &db.entry(idx).value {
        Value::Str(s) if s.len() >= Hll::CACHE.end && s.starts_with(b"HYLL") && s[Hll::CACHE.end - 1] & Hll::STALE != 0 => s.to_vec(),
        _ => return,
    };
    bytes[Hll::CACHE].copy_from_slice(&n.to_le_bytes());
    db.entry_mut(idx).value = Value::string_from_vec(bytes);
}

/// PFMERGE destkey [sourcekey ...]: the destination's own registers count.
pub async fn pfmerge(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    union_of(cx, &args[1..], Some(&args[1])).await?;
    cx.out().ok();
    Ok(())
}
