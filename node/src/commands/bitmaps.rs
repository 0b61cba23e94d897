//! Bit operations on string values: SETBIT, GETBIT, BITCOUNT, BITPOS and
//! BITFIELD / BITFIELD_RO on the key's shard; BITOP, over several keys, on
//! the connection under one transaction. Bit 0 is the most significant bit of the first byte, as in
//! Redis. Reply shapes and error texts follow Redis 7.

use bytes::Bytes;

use super::notify::Notify;
use super::{cmd, flag::*, CommandSpec, Coord, Ctx, Exec, KeyRule};
use crate::config::keyspace_events as ks;
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
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        &["write", "bitmap", "slow"],
        G,
        "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
        Exec::Shard(setbit),
    )
    .notify(Notify::Each(ks::STRING, "setbit"))
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
    .notify(Notify::Store(ks::STRING, "set"))
    .keys(&[KeyRule::range(2, 2, 1).with_flags(&["OW", "update"]), KeyRule::range(3, -1, 1).with_flags(&["RO", "access"])]),
    cmd(
        "bitfield",
        -2,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        &["write", "bitmap", "slow"],
        G,
        "Performs arbitrary bitfield integer operations on strings.",
        Exec::Shard(bitfield),
    )
    .key_flags(&["RW", "access", "update", "variable_flags"]),
    cmd(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        (1, 1, 1),
        &["read", "bitmap", "fast"],
        G,
        "Performs arbitrary read-only bitfield integer operations on strings.",
        Exec::Shard(bitfield_ro),
    )
    .key_flags(&["RO", "access"]),
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
    let grew = v.len() <= byte;
    if grew {
        v.resize(byte + 1, 0);
    }
    let mask = 0x80u8 >> (off % 8);
    let old = v[byte] & mask != 0;
    if !grew && old == on {
        // Nothing changes: no write (watchers and keyspace events see none).
        out.int(old as i64);
        return Ok(());
    }
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
    // A source named several times is read and copied once.
    let (distinct, at) = super::distinct_keys(srcs);
    let n = super::gather(cx, &distinct, Some(&args[2]), bytes_of, move |loaded| {
        let inputs: Vec<&Vec<u8>> = at.iter().map(|&i| &loaded[i]).collect();
        let len = inputs.iter().map(|v| v.len()).max().unwrap_or(0);
        let mut res = vec![0u8; len];
        for (i, b) in res.iter_mut().enumerate() {
            let byte = |v: &&Vec<u8>| v.get(i).copied().unwrap_or(0);
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

/// BITFIELD's overflow behaviour (`OVERFLOW WRAP|SAT|FAIL`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

/// One BITFIELD operation: a field of `bits` bits at bit `offset`.
#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    offset: u64,
    bits: u32,
    signed: bool,
    overflow: Overflow,
}

/// `i1`..`i64`, `u1`..`u63`.
fn field_type(a: &[u8]) -> CmdResult<(bool, u32)> {
    let err = || CmdError::err("Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
    let signed = match a.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    match parse_i64(&a[1..]) {
        Ok(n) if n >= 1 && (n <= 63 || (signed && n == 64)) => Ok((signed, n as u32)),
        _ => Err(err()),
    }
}

/// A field's bit offset: a number, or `#n` for the n-th field of this width.
fn field_offset(a: &[u8], bits: u32, max_bytes: u64) -> CmdResult<u64> {
    let err = || CmdError::err("bit offset is not an integer or out of range");
    let (hash, digits) = match a.strip_prefix(b"#") {
        Some(rest) => (true, rest),
        None => (false, a),
    };
    let mut n = parse_i64(digits).map_err(|_| err())?;
    if hash {
        // Redis multiplies in C's (wrapping) arithmetic, then checks the sign.
        n = n.wrapping_mul(bits as i64);
    }
    if n < 0 || (n as u64 >> 3) >= max_bytes {
        return Err(err());
    }
    Ok(n as u64)
}

/// Parses BITFIELD's operations, in Redis's order of checks.
fn parse_fields(args: &[Bytes], max_bytes: u64) -> CmdResult<Vec<Field>> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let rest = args.len() - j - 1;
        let a = &args[j];
        let kind = if eq_ic(a, "GET") && rest >= 2 {
            0
        } else if eq_ic(a, "SET") && rest >= 3 {
            1
        } else if eq_ic(a, "INCRBY") && rest >= 3 {
            2
        } else if eq_ic(a, "OVERFLOW") && rest >= 1 {
            let t = &args[j + 1];
            overflow = if eq_ic(t, "WRAP") {
                Overflow::Wrap
            } else if eq_ic(t, "SAT") {
                Overflow::Sat
            } else if eq_ic(t, "FAIL") {
                Overflow::Fail
            } else {
                return Err(CmdError::err("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = field_offset(&args[j + 2], bits, max_bytes)?;
        let op = match kind {
            0 => FieldOp::Get,
            1 => FieldOp::Set(parse_i64(&args[j + 3])?),
            _ => FieldOp::Incr(parse_i64(&args[j + 3])?),
        };
        fields.push(Field { op, offset, bits, signed, overflow });
        j += if kind == 0 { 3 } else { 4 };
    }
    Ok(fields)
}

/// The `bits`-bit unsigned field at bit `offset` (bits past the end read 0).
fn get_field(v: &[u8], offset: u64, bits: u32) -> u64 {
    let mut value = 0u64;
    for i in 0..bits as u64 {
        let o = offset + i;
        let bit = v.get((o >> 3) as usize).map_or(0, |b| (b >> (7 - (o & 7))) & 1);
        value = (value << 1) | bit as u64;
    }
    value
}

/// Writes the low `bits` bits of `value` at bit `offset` (`v` is long enough).
fn set_field(v: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..bits as u64 {
        let bit = (value >> (bits as u64 - 1 - i)) & 1;
        let o = offset + i;
        let byte = &mut v[(o >> 3) as usize];
        let mask = 1u8 << (7 - (o & 7));
        if bit == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

fn sign_extend(u: u64, bits: u32) -> i64 {
    if bits < 64 && u & (1 << (bits - 1)) != 0 {
        (u | (u64::MAX << bits)) as i64
    } else {
        u as i64
    }
}

/// Redis's checkUnsignedBitfieldOverflow: whether `value + incr` leaves the
/// range of a `bits`-bit unsigned integer, and the value to store instead
/// (WRAP, SAT). The arithmetic wraps as C's does.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || {
        let res = value.wrapping_add(incr as u64);
        if bits == 64 {
            res
        } else {
            res & !(u64::MAX << bits)
        }
    };
    if value > max || (incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr < minincr {
        (true, if ow == Overflow::Sat { 0 } else { wrap() })
    } else {
        (false, value.wrapping_add(incr as u64))
    }
}

/// Redis's checkSignedBitfieldOverflow, as `unsigned_overflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Sat { max } else { wrap() })
    } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        (true, if ow == Overflow::Sat { min } else { wrap() })
    } else {
        (false, value.wrapping_add(incr))
    }
}

/// Runs one write operation on `v`: the reply (`None`: a FAIL overflow,
/// nothing written).
fn apply_field(v: &mut [u8], f: &Field) -> Option<i64> {
    let old = get_field(v, f.offset, f.bits);
    let (incr, is_set) = match f.op {
        FieldOp::Get => return Some(if f.signed { sign_extend(old, f.bits) } else { old as i64 }),
        FieldOp::Set(x) => (x, true),
        FieldOp::Incr(x) => (x, false),
    };
    let (overflow, new, reply) = if f.signed {
        let old = sign_extend(old, f.bits);
        let (o, n) = if is_set { signed_overflow(incr, 0, f.bits, f.overflow) } else { signed_overflow(old, incr, f.bits, f.overflow) };
        (o, n as u64, if is_set { old } else { n })
    } else {
        let (o, n) =
            if is_set { unsigned_overflow(incr as u64, 0, f.bits, f.overflow) } else { unsigned_overflow(old, incr, f.bits, f.overflow) };
        (o, n, if is_set { old as i64 } else { n as i64 })
    };
    if overflow && f.overflow == Overflow::Fail {
        return None;
    }
    set_field(v, f.offset, f.bits, new);
    Some(reply)
}

fn bitfield(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    bitfield_generic(ctx, args, out, false)
}

fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    bitfield_generic(ctx, args, out, true)
}

/// BITFIELD key [GET type offset | SET type offset value | INCRBY type
/// offset increment | OVERFLOW WRAP|SAT|FAIL] ...; BITFIELD_RO takes GETs
/// only.
fn bitfield_generic(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, ro: bool) -> CmdResult {
    let max_bytes = ctx.shard.cfg.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed);
    let fields = parse_fields(args, max_bytes)?;
    let writes = fields.iter().filter(|f| f.op != FieldOp::Get).map(|f| f.offset + f.bits as u64 - 1).max();
    if ro && writes.is_some() {
        return Err(CmdError::err("BITFIELD_RO only supports the GET subcommand"));
    }
    let now = ctx.now;
    let db = ctx.db();
    let idx = db.lookup(&args[1], now);
    let mut cur = match idx {
        Some(i) => {
            let mut buf = itoa::Buffer::new();
            Some(db.entry(i).value.as_bytes(&mut buf).ok_or(CmdError::WrongType)?.to_vec())
        }
        None => None,
    };
    let Some(highest) = writes else {
        // GETs only: nothing is created or written.
        let v = cur.unwrap_or_default();
        out.array(fields.len());
        for f in &fields {
            out.int(read_only(&v, f));
        }
        return Ok(());
    };
    let existed = cur.is_some();
    let mut v = cur.take().unwrap_or_default();
    let old_len = v.len();
    let need = (highest >> 3) as usize + 1;
    if v.len() < need {
        v.resize(need, 0);
    }
    let before = v.clone();
    out.array(fields.len());
    let mut wrote = false;
    for f in &fields {
        match apply_field(&mut v, f) {
            Some(n) => {
                wrote |= f.op != FieldOp::Get;
                out.int(n)
            }
            None => out.nil(),
        }
    }
    // As Redis: the key is created (or padded) even when every write
    // failed; an unchanged value is left alone.
    let changed = !existed || v.len() != old_len || v != before;
    if changed {
        match idx {
            Some(i) => db.entry_mut(i).value = Value::string_from_vec(v),
            None => {
                db.insert_new(&args[1], Value::string_from_vec(v), 0);
            }
        }
    }
    // `setbit` when a SET or INCRBY took effect and something changed
    // (a created or padded key counts), as Redis tells it.
    if wrote && changed {
        db.push_event(ks::STRING, "setbit", &args[1]);
    }
    Ok(())
}

/// A GET's value from the string as it is.
fn read_only(v: &[u8], f: &Field) -> i64 {
    let u = get_field(v, f.offset, f.bits);
    if f.signed {
        sign_extend(u, f.bits)
    } else {
        u as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_and_write_across_bytes() {
        let mut v = vec![0u8; 3];
        set_field(&mut v, 5, 10, 0b10_1100_1101);
        assert_eq!(get_field(&v, 5, 10), 0b10_1100_1101);
        assert_eq!(sign_extend(get_field(&v, 5, 10), 10), 0b10_1100_1101 - 1024);
        assert_eq!(get_field(&v, 20, 20), get_field(&v, 20, 4) << 16);
    }

    #[test]
    fn overflow_follows_redis() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), (true, 4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), (true, 255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), (true, 0));
        assert_eq!(unsigned_overflow(5, -5, 8, Overflow::Wrap), (false, 0));
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Wrap), (true, -126));
        assert_eq!(signed_overflow(-120, -10, 8, Overflow::Sat), (true, -128));
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Overflow::Wrap), (true, i64::MIN));
        assert_eq!(signed_overflow(i64::MIN, -1, 64, Overflow::Sat), (true, i64::MIN));
        assert_eq!(signed_overflow(1, 2, 64, Overflow::Sat), (false, 3));
    }
}
