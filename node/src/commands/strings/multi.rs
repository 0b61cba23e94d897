//! Commands over several keys: MGET and MSET (split per shard), MSETNX
//! (all or nothing across shards) and LCS (two strings, read together).

use bytes::Bytes;

use super::with_string;
use crate::commands::{Coord, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::store::Value;
use crate::util::{eq_ic, parse_i64};

pub(super) fn mget(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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

pub(super) fn mset(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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
