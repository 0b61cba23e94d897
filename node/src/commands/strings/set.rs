//! SET and its variants (SETNX, SETEX, PSETEX) and the GET forms that
//! also write: GETSET, GETDEL, GETEX. Also the expiry options they parse.

use bytes::Bytes;

use super::with_string;
use crate::commands::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::store::Value;
use crate::util::{eq_ic, parse_i64};

/// A parsed expiry option: an absolute Unix time in ms, KEEPTTL, or PERSIST.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpireOpt {
    None,
    At(u64),
    KeepTtl,
    Persist,
}

/// The unit (ms) and whether the time is relative, of SET's and GETEX's
/// expiry options EX, PX, EXAT and PXAT (any case).
fn expiry_word(a: &[u8]) -> Option<(i64, bool)> {
    [("EX", 1000, true), ("PX", 1, true), ("EXAT", 1000, false), ("PXAT", 1, false)]
        .into_iter()
        .find(|(w, ..)| eq_ic(a, w))
        .map(|(_, unit, rel)| (unit, rel))
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

pub(super) fn set(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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
        } else if let Some((unit, rel)) = expiry_word(a).filter(|_| exp == ExpireOpt::None && has_next) {
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

pub(super) fn setnx(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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

pub(super) fn setex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    set_with_ttl(ctx, args, out, 1000, "setex")
}

pub(super) fn psetex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    set_with_ttl(ctx, args, out, 1, "psetex")
}

pub(super) fn getset(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    if with_string(db, &args[1], now, |b| out.bulk(b))?.is_none() {
        out.nil();
    }
    db.set(&args[1], Value::string(&args[2]), false, now);
    Ok(())
}

pub(super) fn getdel(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    if with_string(db, &args[1], now, |b| out.bulk(b))?.is_some() {
        db.remove(&args[1], now);
    } else {
        out.nil();
    }
    Ok(())
}

pub(super) fn getex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let now = ctx.now;
    let mut exp = ExpireOpt::None;
    let mut when = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq_ic(a, "PERSIST") && exp == ExpireOpt::None {
            exp = ExpireOpt::Persist;
        } else if let Some((unit, rel)) = expiry_word(a).filter(|_| exp == ExpireOpt::None && i + 1 < args.len()) {
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
