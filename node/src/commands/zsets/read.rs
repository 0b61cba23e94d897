//! Sorted-set reads on one key: ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT,
//! ZRANK, the Z*RANGE* family (also the source side of ZRANGESTORE),
//! ZRANDMEMBER and ZSCAN.

use super::*;
use crate::commands::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::resp::reply::{d2string, format_g17};
use crate::resp::Out;
use crate::types::zset::{LexRange, ScoreRange, ZSet};
use crate::util::{eq_ic, glob_match, parse_i64};
use bytes::Bytes;

// ---------------------------------------------------------------- point reads

pub(super) fn zscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    match read(ctx, &args[1])?.and_then(|z| z.score(&args[2])) {
        Some(s) => out.double(s),
        None => out.nil(),
    }
    Ok(())
}

pub(super) fn zmscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let z = read(ctx, &args[1])?;
    out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => out.double(s),
            None => out.nil(),
        }
    }
    Ok(())
}

pub(super) fn zcard(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let n = read(ctx, &args[1])?.map_or(0, |z| z.len());
    out.int(n as i64);
    Ok(())
}

pub(super) fn zcount(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3]).ok_or_else(err_score_range)?;
    let n = read(ctx, &args[1])?.map_or(0, |z| {
        let (a, b) = z.score_ranks(&r);
        b - a
    });
    out.int(n as i64);
    Ok(())
}

pub(super) fn zlexcount(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3]).ok_or_else(err_lex_range)?;
    let n = read(ctx, &args[1])?.map_or(0, |z| {
        let (a, b) = z.lex_ranks(&r);
        b - a
    });
    out.int(n as i64);
    Ok(())
}

pub(super) fn rank_generic(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, rev: bool) -> CmdResult {
    let withscore = match args.len() {
        3 => false,
        4 if eq_ic(&args[3], "WITHSCORE") => true,
        4 => return Err(CmdError::Syntax),
        _ => return Err(CmdError::wrong_arity(if rev { "zrevrank" } else { "zrank" })),
    };
    let z = read(ctx, &args[1])?;
    let found = z.and_then(|z| z.rank(&args[2]).map(|(r, s)| (if rev { z.len() - 1 - r } else { r }, s)));
    match found {
        Some((r, s)) => {
            if withscore {
                out.array(2);
                out.int(r as i64);
                out.double(s);
            } else {
                out.int(r as i64);
            }
        }
        None if withscore => out.nil_array(),
        None => out.nil(),
    }
    Ok(())
}

pub(super) fn zrank(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    rank_generic(ctx, args, out, false)
}

pub(super) fn zrevrank(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    rank_generic(ctx, args, out, true)
}

// ---------------------------------------------------------------- ranges

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed Z*RANGE* request, validated, owning its arguments (it may be
/// sent to another shard).
#[derive(Clone, Debug)]
pub(super) struct RangeReq {
    by: By,
    rev: bool,
    withscores: bool,
    offset: i64,
    /// Negative: no limit.
    limit: i64,
    rank: (i64, i64),
    score: Option<ScoreRange>,
    /// Lex bounds, checked by `parse_range`.
    lex: (Bytes, Bytes),
}

/// Parses the range arguments starting at `args[first]` (min, max, then
/// options) as Redis's `zrangeGenericCommand`: `by` and `rev` are fixed for
/// the legacy commands (`None` lets the options choose).
pub(super) fn parse_range(args: &[Bytes], first: usize, store: bool, by: Option<By>, rev: Option<bool>) -> CmdResult<RangeReq> {
    let (mut by_opt, mut rev_opt) = (by, rev);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = first + 2;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && eq_ic(a, "WITHSCORES") {
            withscores = true;
        } else if eq_ic(a, "LIMIT") && left >= 2 {
            offset = parse_i64(&args[j + 1])?;
            limit = parse_i64(&args[j + 2])?;
            j += 2;
        } else if rev_opt.is_none() && eq_ic(a, "REV") {
            rev_opt = Some(true);
        } else if by_opt.is_none() && eq_ic(a, "BYLEX") {
            by_opt = Some(By::Lex);
        } else if by_opt.is_none() && eq_ic(a, "BYSCORE") {
            by_opt = Some(By::Score);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let by = by_opt.unwrap_or(By::Rank);
    let rev = rev_opt.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return Err(CmdError::err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && by == By::Lex {
        return Err(CmdError::err("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut lo, mut hi) = (&args[first], &args[first + 1]);
    if rev && by != By::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let mut req = RangeReq { by, rev, withscores, offset, limit, rank: (0, 0), score: None, lex: (lo.clone(), hi.clone()) };
    match by {
        By::Rank => req.rank = (parse_i64(lo)?, parse_i64(hi)?),
        By::Score => req.score = Some(ScoreRange::parse(lo, hi).ok_or_else(err_score_range)?),
        By::Lex => {
            LexRange::parse(lo, hi).ok_or_else(err_lex_range)?;
        }
    }
    Ok(req)
}

impl RangeReq {
    /// The ranks to visit, `[a, b)`, descending when `self.rev`.
    fn window(&self, z: &ZSet) -> (usize, usize) {
        let n = z.len();
        let (s, e) = match self.by {
            By::Rank => {
                return match rank_window(self.rank.0, self.rank.1, n) {
                    None => (0, 0),
                    Some((a, b)) if self.rev => (n - b, n - a),
                    Some(w) => w,
                };
            }
            By::Score => match &self.score {
                Some(r) => z.score_ranks(r),
                None => (0, 0),
            },
            By::Lex => match LexRange::parse(&self.lex.0, &self.lex.1) {
                Some(r) => z.lex_ranks(&r),
                None => (0, 0),
            },
        };
        let avail = e - s;
        if self.offset < 0 || self.offset as u64 >= avail as u64 {
            return (0, 0);
        }
        let offset = self.offset as usize;
        let take = if self.limit < 0 { avail - offset } else { (self.limit as u64).min((avail - offset) as u64) as usize };
        if self.rev {
            (e - offset - take, e - offset)
        } else {
            (s + offset, s + offset + take)
        }
    }

    /// The selected entries, ascending by (score, member), copied out.
    pub(super) fn items(&self, z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        let (a, b) = self.window(z);
        let mut v = Vec::with_capacity(b - a);
        z.for_range(a, b, false, |m, s| v.push((m.to_vec(), s)));
        v
    }
}

pub(super) fn range_reply(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, by: Option<By>, rev: Option<bool>) -> CmdResult {
    let req = parse_range(args, 2, false, by, rev)?;
    let Some(z) = read(ctx, &args[1])? else {
        out.array(0);
        return Ok(());
    };
    let (a, b) = req.window(z);
    pairs_header(out, b - a, req.withscores);
    z.for_range(a, b, req.rev, |m, s| pair(out, m, s, req.withscores));
    Ok(())
}

pub(super) fn zrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, None, None)
}

pub(super) fn zrevrange(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Rank), Some(true))
}

pub(super) fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Score), Some(false))
}

pub(super) fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Score), Some(true))
}

pub(super) fn zrangebylex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Lex), Some(false))
}

pub(super) fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    range_reply(ctx, args, out, Some(By::Lex), Some(true))
}

// ---------------------------------------------------------------- random, scan

/// Largest |count| ZRANDMEMBER serves with repetitions: the whole reply is
/// built in memory, so an absurd count is refused instead of exhausting it.
const RANDMEMBER_MAX_REPEATS: u64 = 10_000_000;

pub(super) fn zrandmember(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() == 2 {
        match read(ctx, &args[1])? {
            Some(z) if !z.is_empty() => match z.get(rand::random_range(0..z.len())) {
                Some((m, _)) => out.bulk(m),
                None => out.nil(),
            },
            _ => out.nil(),
        }
        return Ok(());
    }
    let l = parse_i64(&args[2])?;
    if l == i64::MIN {
        return Err(CmdError::err(format!("value is out of range, value must between {} and {}", -i64::MAX, i64::MAX)));
    }
    if args.len() > 4 || (args.len() == 4 && !eq_ic(&args[3], "WITHSCORES")) {
        return Err(CmdError::Syntax);
    }
    let withscores = args.len() == 4;
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::err("value is out of range"));
    }
    let Some(z) = read(ctx, &args[1])? else {
        out.array(0);
        return Ok(());
    };
    let len = z.len();
    if l == 0 || len == 0 {
        out.array(0);
        return Ok(());
    }
    if l < 0 {
        let count = l.unsigned_abs();
        if count > RANDMEMBER_MAX_REPEATS {
            return Err(CmdError::err("value is out of range"));
        }
        let mark = out.buf.len();
        pairs_header(out, count as usize, withscores);
        for _ in 0..count {
            if let Some((m, s)) = z.get(rand::random_range(0..len)) {
                pair(out, m, s, withscores);
            }
            crate::commands::sets::repeats_within(out, mark)?;
        }
        return Ok(());
    }
    let count = l as u64;
    if count >= len as u64 {
        pairs_header(out, len, withscores);
        z.for_each(|m, s| pair(out, m, s, withscores));
        return Ok(());
    }
    // Distinct ranks in random order.
    let count = count as usize;
    let order = rand::seq::index::sample(&mut rand::rng(), len, count);
    pairs_header(out, count, withscores);
    for r in order {
        if let Some((m, s)) = z.get(r) {
            pair(out, m, s, withscores);
        }
    }
    Ok(())
}

pub(super) fn zscan(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let cursor = crate::commands::scan::parse_cursor(&args[2])?;
    let Some(z) = read(ctx, &args[1])? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let (mut count, mut pattern): (usize, Option<&[u8]>) = (10, None);
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq_ic(&args[i], "COUNT") && more {
            let c = parse_i64(&args[i + 1])?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            count = c as usize;
        } else if eq_ic(&args[i], "MATCH") && more {
            pattern = (&*args[i + 1] != b"*").then_some(&args[i + 1][..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    // Redis returns the scores of a listpack as stored (its d2string form)
    // and those of a skiplist through "%.17g".
    let compact = z.is_compact();
    let mut items: Vec<(&[u8], f64)> = Vec::new();
    let next = z.scan(cursor, count, |m, s| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            items.push((m, s));
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * 2);
    for (m, s) in items {
        out.bulk(m);
        let text = if compact { d2string(s) } else { format_g17(s) };
        out.bulk(&text);
    }
    Ok(())
}
