//! Lengths and byte ranges of a string: APPEND, STRLEN, GETRANGE (and
//! SUBSTR), SETRANGE, and the range resolution other types share.

use bytes::Bytes;

use super::with_string;
use crate::commands::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::store::Value;
use crate::util::parse_i64;

fn max_len(ctx: &Ctx) -> usize {
    ctx.shard.cfg.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed) as usize
}

pub(super) fn append(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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

pub(super) fn strlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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

pub(super) fn getrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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

pub(super) fn setrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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
