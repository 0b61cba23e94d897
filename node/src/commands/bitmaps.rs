//! Bit operations on string values: SETBIT, GETBIT, BITCOUNT and BITPOS on
//! the key's shard; BITOP, over several keys, on the connection under one
//! transaction. Bit 0 is the most significant bit of the first byte, as in
//! Redis. Reply shapes and error texts follow Redis 7.

use bytes::Bytes;

use super::{cmd, flag::*, CommandSpec, Coord, Ctx, Exec, KeyRule};
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::{Db, Value};
use crate::util::{eq_ic, parse_i64};

const G: &str = "bitmap";

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "setbit",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        &["write", "bitmap", "slow"],
        G,
        "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
        Exec::Shard(setbit),
    )
    .key_flags(&["RW", "access", "update"]),
    cmd("getbit", 3, READONLY | FAST, (1, 1, 1), &["read", "bitmap", "fast"], G, "Returns a bit value by offset.", Exec::Shard(getbit))
        .key_flags(&["RO", "access"]),
    cmd(
        "bitcount",
        -2,
        READONLY,
        (1, 1, 1),
        &["read", "bitmap", "slow"],
        G,
        "Counts the number of set bits (population counting) in a string.",
        Exec::Shard(bitcount),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "bitpos",
        -3,
        READONLY,
        (1, 1, 1),
        &["read", "bitmap", "slow"],
        G,
        "Finds the first set (1) or clear (0) bit in a string.",
        Exec::Shard(bitpos),
    )
    .key_flags(&["RO", "access"]),
    cmd(
        "bitop",
        -4,
        WRITE | DENYOOM,
        (2, -1, 1),
        &["write", "bitmap", "slow"],
        G,
        "Performs bitwise operations on multiple strings, and stores the result.",
        Exec::Coord(handler!(async |cx, a| bitop(cx, a))),
    )
    .keys(&[KeyRule::range(2, 2, 1).with_flags(&["OW", "update"]), KeyRule::range(3, -1, 1).with_flags(&["RO", "access"])]),
];

/// The bytes of the string at `key` (empty when missing); WRONGTYPE for
/// another type.
fn bytes_of(db: &mut Db, key: &[u8], now: u64) -> CmdResult<Vec<u8>> {
    Ok(super::strings::with_string(db, key, now, |b| b.to_vec())?.unwrap_or_default())
}

fn bit_offset(a: &[u8]) -> CmdResult<u64> {
    match parse_i64(a) {
        Ok(n) if (0..1 << 32).contains(&n) => Ok(n as u64),
        _ => Err(CmdError::err("bit offset is not an integer or out of range")),
    }
}

fn setbit(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let off = bit_offset(&args[2])?;
    let on = match &args[3][..] {
        b"1" => true,
        b"0" => false,
        _ => return Err(CmdError::err("bit is not an integer or out of range")),
    };
    let byte = (off / 8) as usize;
    let limit = ctx.shard.cfg.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed) as usize;
    if byte >= limit {
        return Err(CmdError::err("bit offset is not an integer or out of range"));
    }
    let now = ctx.now;
    let db = ctx.db();
    let mut v = bytes_of(db, &args[1], now)?;
    if v.len() <= byte {
        v.resize(byte + 1, 0);
    }
    let mask = 0x80u8 >> (off % 8);
    let old = v[byte] & mask != 0;
    if on {
        v[byte] |= mask;
    } else {
        v[byte] &= !mask;
    }
    db.set(&args[1], Value::string_from_vec(v), true, now);
    out.int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let off = bit_offset(&args[2])?;
    let now = ctx.now;
    let bit = super::strings::with_string(ctx.db(), &args[1], now, |b| {
        b.get((off / 8) as usize).is_some_and(|byte| byte & (0x80 >> (off % 8)) != 0)
    })?;
    out.int(bit.unwrap_or(false) as i64);
    Ok(())
}

/// BITCOUNT/BITPOS's optional range: start and end (inclusive, negative from
/// the end) in bytes, or in bits with BIT; `None` for the whole string.
/// Returns the bit range to look at, or `None` when it is empty.
/// `count`: BITCOUNT, which answers an empty range for two negative
/// indexes with start after end before clamping them (BITPOS clamps).
fn bit_range(len: usize, args: &[Bytes], end_given: &mut bool, count: bool) -> CmdResult<Option<(u64, u64)>> {
    let total_bits = len as i64 * 8;
    if args.len() > 3 {
        // Counted before any argument is parsed, as Redis does.
        return Err(CmdError::Syntax);
    }
    if args.is_empty() {
        return Ok((len > 0).then(|| (0, total_bits as u64 - 1)));
    }
    let unit = || match args.get(2) {
        None => Ok(false),
        Some(u) if eq_ic(u, "BIT") => Ok(true),
        Some(u) if eq_ic(u, "BYTE") => Ok(false),
        Some(_) => Err(CmdError::Syntax),
    };
    // BITPOS reads the unit between start and end, BITCOUNT after both.
    let start = parse_i64(&args[0])?;
    let early = if count { None } else { Some(unit()?) };
    let end = match args.get(1) {
        Some(e) => {
            *end_given = true;
            parse_i64(e)?
        }
        None => -1,
    };
    // BITCOUNT answers this empty range before it reads the unit.
    if count && start < 0 && end < 0 && start > end {
        return Ok(None);
    }
    let bits = match early {
        Some(b) => b,
        None => unit()?,
    };
    let size = if bits { total_bits } else { len as i64 };
    let fix = |i: i64| if i < 0 { (size + i).max(0) } else { i };
    let (s, e) = (fix(start), fix(end).min(size - 1));
    if size == 0 || s > e {
        return Ok(None);
    }
    Ok(Some(if bits { (s as u64, e as u64) } else { (s as u64 * 8, e as u64 * 8 + 7) }))
}

fn bit_at(v: &[u8], i: u64) -> bool {
    v[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
}

fn bitcount(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    // Redis 7 looks the key up first: a missing key counts 0 whatever the
    // arguments (Redis 8 checks them first).
    let now = ctx.now;
    let Some(v) = super::strings::with_string(ctx.db(), &args[1], now, |b| b.to_vec())? else {
        out.int(0);
        return Ok(());
    };
    if args.len() == 3 {
        return Err(CmdError::Syntax);
    }
    let mut end_given = false;
    let n = match bit_range(v.len(), &args[2..], &mut end_given, true)? {
        None => 0,
        Some((a, b)) => (a..=b).filter(|&i| bit_at(&v, i)).count(),
    };
    out.int(n as i64);
    Ok(())
}

fn bitpos(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let want = match parse_i64(&args[2])? {
        1 => true,
        0 => false,
        _ => return Err(CmdError::err("The bit argument must be 1 or 0.")),
    };
    let now = ctx.now;
    let db = ctx.db();
    let exists = db.exists(&args[1], now);
    let v = bytes_of(db, &args[1], now)?;
    if !exists {
        out.int(if want { -1 } else { 0 });
        return Ok(());
    }
    let mut end_given = false;
    let pos = match bit_range(v.len(), &args[3..], &mut end_given, false)? {
        None => -1,
        Some((a, b)) => match (a..=b).find(|&i| bit_at(&v, i) == want) {
            Some(i) => i as i64,
            // Looking for a clear bit past a run of set ones with no end
            // given: the string is taken as padded with zeros.
            None if !want && !end_given => (b + 1) as i64,
            None => -1,
        },
    };
    out.int(pos);
    Ok(())
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...].
pub async fn bitop(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let op = &args[1];
    let kind = if eq_ic(op, "AND") {
        0
    } else if eq_ic(op, "OR") {
        1
    } else if eq_ic(op, "XOR") {
        2
    } else if eq_ic(op, "NOT") {
        3
    } else {
        return Err(CmdError::Syntax);
    };
    let srcs = &args[3..];
    if kind == 3 && srcs.len() != 1 {
        return Err(CmdError::err("BITOP NOT must be called with a single source key."));
    }
    let dst = args[2].clone();
    let n = super::gather(cx, srcs, Some(&args[2]), bytes_of, move |inputs| {
        let len = inputs.iter().map(Vec::len).max().unwrap_or(0);
        let mut res = vec![0u8; len];
        for (i, b) in res.iter_mut().enumerate() {
            let byte = |v: &Vec<u8>| v.get(i).copied().unwrap_or(0);
            *b = match kind {
                0 => inputs.iter().map(byte).fold(0xff, |a, x| a & x),
                1 => inputs.iter().map(byte).fold(0, |a, x| a | x),
                2 => inputs.iter().map(byte).fold(0, |a, x| a ^ x),
                _ => !byte(&inputs[0]),
            };
        }
        let n = res.len();
        let write: super::Write = (
            dst,
            Box::new(move |d: &mut Db, k: &[u8], now: u64| {
                d.remove(k, now);
                if !res.is_empty() {
                    d.insert_new(k, Value::string_from_vec(res), 0);
                }
            }),
        );
        (n, Some(write))
    })
    .await?;
    cx.out().int(n as i64);
    Ok(())
}
