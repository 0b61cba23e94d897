//! Sorted-set algebra over several keys: ZUNION, ZINTER, ZDIFF, ZINTERCARD,
//! their STORE forms, and ZRANGESTORE; on one shard in one job, otherwise
//! under `Tx` locks on the shards involved.

use super::*;
use crate::commands::Coord;
use crate::error::{CmdError, CmdResult};
use crate::resp::Out;
use crate::store::{Db, Value};
use crate::types::zset::{ZLimits, ZSet};
use crate::types::SmallBytes;
use crate::util::{eq_ic, now_ms, parse_i64};
use bytes::Bytes;
use foldhash::fast::RandomState;
use hashbrown::hash_map::Entry as MapEntry;
use hashbrown::HashMap;
use std::borrow::Cow;

// ---------------------------------------------------------------- set operations

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetKind {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Agg {
    Sum,
    Min,
    Max,
}

/// A parsed ZUNION/ZINTER/ZDIFF/ZINTERCARD (or STORE form).
#[derive(Clone, Debug)]
pub(super) struct SetOp {
    kind: SetKind,
    dst: Option<Bytes>,
    keys: Vec<Bytes>,
    weights: Vec<f64>,
    agg: Agg,
    withscores: bool,
    /// ZINTERCARD: count only, stopping at `limit` (0 = no limit).
    card: Option<usize>,
    /// An option error, reported after the keys' types were checked (the
    /// order Redis reports them in).
    late_err: Option<CmdError>,
}

pub(super) fn parse_setop(args: &[Bytes], kind: SetKind, store: bool, card: bool) -> CmdResult<SetOp> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let nk_at = if store { 2 } else { 1 };
    let numkeys = parse_i64(&args[nk_at])?;
    if numkeys < 1 {
        return Err(CmdError::err(format!("at least 1 input key is needed for '{name}' command")));
    }
    if numkeys as u64 > (args.len() - nk_at - 1) as u64 {
        return Err(CmdError::Syntax);
    }
    let n = numkeys as usize;
    let keys: Vec<Bytes> = args[nk_at + 1..nk_at + 1 + n].to_vec();
    let mut op = SetOp {
        kind,
        dst: store.then(|| args[1].clone()),
        keys,
        weights: vec![1.0; n],
        agg: Agg::Sum,
        withscores: false,
        card: card.then_some(0),
        late_err: None,
    };
    let mut j = nk_at + 1 + n;
    let res: CmdResult = (|| {
        while j < args.len() {
            let remaining = args.len() - j;
            let a = &args[j];
            if kind != SetKind::Diff && !card && remaining > n && eq_ic(a, "WEIGHTS") {
                for i in 0..n {
                    op.weights[i] = parse_score(&args[j + 1 + i]).map_err(|_| CmdError::err("weight value is not a float"))?;
                }
                j += 1 + n;
            } else if kind != SetKind::Diff && !card && remaining >= 2 && eq_ic(a, "AGGREGATE") {
                let v = &args[j + 1];
                op.agg = if eq_ic(v, "SUM") {
                    Agg::Sum
                } else if eq_ic(v, "MIN") {
                    Agg::Min
                } else if eq_ic(v, "MAX") {
                    Agg::Max
                } else {
                    return Err(CmdError::Syntax);
                };
                j += 2;
            } else if !store && !card && eq_ic(a, "WITHSCORES") {
                op.withscores = true;
                j += 1;
            } else if card && remaining >= 2 && eq_ic(a, "LIMIT") {
                match parse_i64(&args[j + 1]) {
                    Ok(l) if l >= 0 => op.card = Some(l as usize),
                    _ => return Err(CmdError::err("LIMIT can't be negative")),
                }
                j += 2;
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(())
    })();
    op.late_err = res.err();
    Ok(op)
}

#[inline]
pub(super) fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

#[inline]
pub(super) fn aggregate(target: &mut f64, v: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *target += v;
            // inf + -inf: Redis's convention is 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Agg::Min => {
            if v < *target {
                *target = v;
            }
        }
        Agg::Max => {
            if v > *target {
                *target = v;
            }
        }
    }
}

impl SetOp {
    /// The result in ascending (score, member) order, borrowing the inputs.
    fn items<'a>(&self, srcs: &[Option<&'a ZSet>]) -> Vec<(&'a [u8], f64)> {
        let len = |i: usize| srcs[i].map_or(0, |z| z.len());
        // Smallest inputs first, as Redis orders them (it matters for
        // intersections' speed and for the order of floating-point sums).
        let mut order: Vec<usize> = (0..srcs.len()).collect();
        order.sort_by_key(|&i| len(i));
        let mut items: Vec<(&'a [u8], f64)> = Vec::new();
        match self.kind {
            SetKind::Union => {
                let cap = order.last().map_or(0, |&i| len(i));
                let mut acc: HashMap<&'a [u8], f64, RandomState> = HashMap::with_capacity_and_hasher(cap, RandomState::default());
                for &i in &order {
                    let Some(z) = srcs[i] else { continue };
                    let w = self.weights[i];
                    z.for_each(|m, s| {
                        let v = weighted(s, w);
                        match acc.entry(m) {
                            MapEntry::Vacant(e) => {
                                e.insert(v);
                            }
                            MapEntry::Occupied(mut e) => aggregate(e.get_mut(), v, self.agg),
                        }
                    });
                }
                items.extend(acc);
            }
            SetKind::Inter => {
                if order.iter().any(|&i| len(i) == 0) {
                    return items;
                }
                let first = order[0];
                if let Some(z) = srcs[first] {
                    z.for_each(|m, s| {
                        let mut score = weighted(s, self.weights[first]);
                        for &j in &order[1..] {
                            match srcs[j].and_then(|o| o.score(m)) {
                                Some(sj) => aggregate(&mut score, weighted(sj, self.weights[j]), self.agg),
                                None => return,
                            }
                        }
                        items.push((m, score));
                    });
                }
            }
            SetKind::Diff => {
                if let Some(z) = srcs[0] {
                    z.for_each(|m, s| {
                        if !srcs[1..].iter().any(|o| o.is_some_and(|o| o.score(m).is_some())) {
                            items.push((m, s));
                        }
                    });
                }
                // Already in order: a subsequence of the first set.
                return items;
            }
        }
        items.sort_unstable_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(b.0)));
        items
    }

    /// ZINTERCARD: the intersection's size, stopping at the limit.
    fn cardinality(&self, srcs: &[Option<&ZSet>]) -> usize {
        let limit = self.card.unwrap_or(0);
        let mut order: Vec<usize> = (0..srcs.len()).collect();
        order.sort_by_key(|&i| srcs[i].map_or(0, |z| z.len()));
        let Some(Some(first)) = order.first().map(|&i| srcs[i]) else { return 0 };
        let mut n = 0;
        let (mut a, len) = (0, first.len());
        // Walk in slices so the limit can stop the walk early.
        while a < len && (limit == 0 || n < limit) {
            let b = (a + 256).min(len);
            first.for_range(a, b, false, |m, _| {
                if (limit == 0 || n < limit) && order[1..].iter().all(|&j| srcs[j].is_some_and(|o| o.score(m).is_some())) {
                    n += 1;
                }
            });
            a = b;
        }
        n
    }

    /// Runs the operation over the inputs: writes the reply (ZUNION, ZINTER,
    /// ZDIFF, ZINTERCARD) or returns the set to store.
    fn run(&self, srcs: &[Option<&ZSet>], out: &mut Out, limits: ZLimits) -> CmdResult<Option<ZSet>> {
        if self.card.is_some() {
            out.int(self.cardinality(srcs) as i64);
            return Ok(None);
        }
        let items = self.items(srcs);
        if self.dst.is_some() {
            return Ok(Some(ZSet::from_sorted(&items, limits)?));
        }
        pairs_header(out, items.len(), self.withscores);
        for (m, s) in items {
            pair(out, m, s, self.withscores);
        }
        Ok(None)
    }
}

/// The sorted sets at `keys` (`None` for missing keys); WRONGTYPE when one
/// holds another type.
pub(super) fn inputs<'a>(db: &'a mut Db, keys: &[Bytes], now: u64) -> CmdResult<Vec<Option<&'a ZSet>>> {
    let idx: Vec<Option<u32>> = keys.iter().map(|k| db.lookup(k, now)).collect();
    let db: &Db = db;
    idx.into_iter()
        .map(|i| match i {
            None => Ok(None),
            Some(i) => match &db.entry(i).value {
                Value::ZSet(z) => Ok(Some(&**z)),
                _ => Err(CmdError::WrongType),
            },
        })
        .collect()
}

/// ZUNION/ZINTER/ZDIFF's inputs: as `inputs`, but a plain set reads as a
/// sorted set whose scores are all 1, as in Redis.
pub(super) fn setop_inputs<'a>(db: &'a mut Db, keys: &[Bytes], now: u64, limits: ZLimits) -> CmdResult<Vec<Option<Cow<'a, ZSet>>>> {
    let idx: Vec<Option<u32>> = keys.iter().map(|k| db.lookup(k, now)).collect();
    let db: &Db = db;
    idx.into_iter()
        .map(|i| match i {
            None => Ok(None),
            Some(i) => match &db.entry(i).value {
                Value::ZSet(z) => Ok(Some(Cow::Borrowed(&**z))),
                Value::Set(s) => {
                    let mut members: Vec<SmallBytes> = s.iter().map(|m| SmallBytes::new(&m)).collect();
                    members.sort_unstable();
                    let items: Vec<(&[u8], f64)> = members.iter().map(|m| (&m[..], 1.0)).collect();
                    Ok(Some(Cow::Owned(ZSet::from_sorted(&items, limits)?)))
                }
                _ => Err(CmdError::WrongType),
            },
        })
        .collect()
}

/// The shard all of `keys` live on, if they share one.
pub(super) fn one_shard<'a>(cx: &mut dyn Coord, mut keys: impl Iterator<Item = &'a Bytes>) -> Option<usize> {
    let first = cx.engine().shard_of(keys.next()?);
    keys.all(|k| cx.engine().shard_of(k) == first).then_some(first)
}

/// ZUNION, ZINTER, ZDIFF, ZINTERCARD and the STORE forms.
pub async fn setop(cx: &mut dyn Coord, args: &[Bytes], kind: SetKind, store: bool, card: bool) -> CmdResult {
    let op = parse_setop(args, kind, store, card)?;
    let db = cx.db();
    let resp3 = cx.out().resp3;
    let all_keys = op.keys.iter().chain(op.dst.iter());
    if let Some(shard) = one_shard(cx, all_keys) {
        // Everything on one shard: one job, no copies.
        let reply = cx
            .run_on(shard, move |sh| -> CmdResult<Vec<u8>> {
                let limits = sh.cfg.zset_limits();
                let now = now_ms();
                let d = sh.db(db);
                let mut out = Out::new(resp3);
                let built = {
                    // A key named several times is read (and a plain set
                    // converted) once.
                    let (distinct, at) = crate::commands::distinct_keys(&op.keys);
                    let owned = setop_inputs(d, &distinct, now, limits)?;
                    let srcs: Vec<Option<&ZSet>> = at.iter().map(|&i| owned[i].as_deref()).collect();
                    if let Some(e) = op.late_err.clone() {
                        return Err(e);
                    }
                    op.run(&srcs, &mut out, limits)?
                };
                if let (Some(dst), Some(z)) = (&op.dst, built) {
                    out.int(z.len() as i64);
                    store_set(d, dst, z, now);
                }
                Ok(out.buf)
            })
            .await?;
        cx.out().buf.extend_from_slice(&reply);
        return Ok(());
    }
    // Keys on several shards: lock them in order, copy the inputs out.
    let mut shards: Vec<usize> = op.keys.iter().chain(op.dst.iter()).map(|k| cx.engine().shard_of(k)).collect();
    shards.sort_unstable();
    shards.dedup();
    let result = setop_locked(cx, op, shards).await;
    result
}

/// The multi-shard part of `setop`, with `tx` taking the shards' locks.
pub(super) async fn setop_locked(cx: &mut dyn Coord, op: SetOp, shards: Vec<usize>) -> CmdResult {
    let db = cx.db();
    // A key named several times is copied once.
    let (distinct, at) = crate::commands::distinct_keys(&op.keys);
    let mut copies: Vec<Option<ZSet>> = vec![None; distinct.len()];
    for &s in &shards {
        let mine: Vec<(usize, Bytes)> =
            distinct.iter().enumerate().filter(|(_, k)| cx.engine().shard_of(k) == s).map(|(i, k)| (i, k.clone())).collect();
        let fetched = cx
            .lock_run(s, move |sh| -> CmdResult<Vec<(usize, Option<ZSet>)>> {
                let now = now_ms();
                let limits = sh.cfg.zset_limits();
                let d = sh.db(db);
                let keys: Vec<Bytes> = mine.iter().map(|(_, k)| k.clone()).collect();
                let found = setop_inputs(d, &keys, now, limits)?;
                Ok(mine.iter().zip(found).map(|((i, _), z)| (*i, z.map(Cow::into_owned))).collect())
            })
            .await?;
        for (i, z) in fetched {
            copies[i] = z;
        }
    }
    if let Some(e) = op.late_err.clone() {
        return Err(e);
    }
    let srcs: Vec<Option<&ZSet>> = at.iter().map(|&i| copies[i].as_ref()).collect();
    let limits = cx.engine().cfg.zset_limits();
    let built = op.run(&srcs, cx.out(), limits)?;
    if let (Some(dst), Some(z)) = (op.dst.clone(), built) {
        let n = z.len();
        let shard = cx.engine().shard_of(&dst);
        cx.run_on(shard, move |sh| store_set(sh.db(db), &dst, z, now_ms())).await;
        cx.out().int(n as i64);
    }
    Ok(())
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
pub async fn zrangestore(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    let req = parse_range(args, 3, true, None, None)?;
    let (dst, src) = (args[1].clone(), args[2].clone());
    let db = cx.db();
    let (ds, ss) = (cx.engine().shard_of(&dst), cx.engine().shard_of(&src));
    if ds == ss {
        let n = cx
            .run_on(ss, move |sh| -> CmdResult<usize> {
                let limits = sh.cfg.zset_limits();
                let now = now_ms();
                let d = sh.db(db);
                let items = inputs(d, std::slice::from_ref(&src), now)?[0].map(|z| req.items(z)).unwrap_or_default();
                let z = ZSet::from_sorted(&items, limits)?;
                let n = z.len();
                store_set(d, &dst, z, now);
                Ok(n)
            })
            .await?;
        cx.out().int(n as i64);
        return Ok(());
    }
    let mut shards = [ss, ds];
    shards.sort_unstable();
    cx.lock(&shards).await;
    let limits = cx.engine().cfg.zset_limits();
    let result = async {
        let items = cx
            .run_on(ss, move |sh| -> CmdResult<Vec<(Vec<u8>, f64)>> {
                let d = sh.db(db);
                Ok(inputs(d, std::slice::from_ref(&src), now_ms())?[0].map(|z| req.items(z)).unwrap_or_default())
            })
            .await?;
        let z = ZSet::from_sorted(&items, limits)?;
        let n = z.len();
        cx.run_on(ds, move |sh| store_set(sh.db(db), &dst, z, now_ms())).await;
        Ok::<usize, CmdError>(n)
    }
    .await;
    cx.out().int(result? as i64);
    Ok(())
}
