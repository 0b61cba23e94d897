//! The JSON commands that write: JSON.SET/MSET/MERGE/DEL/CLEAR/TOGGLE,
//! NUMINCRBY/NUMMULTBY, STRAPPEND and the array updates.

use super::in_text::*;
use super::*;

/// What JSON.SET does to an existing document (shared with JSON.MSET).
/// Returns whether the value was written (false: NX/XX unmet or the path
/// cannot be created).
pub fn set_in_doc(d: &mut JsonDoc, path: &JsonPath, value: NewValue, nx: bool, xx: bool) -> CmdResult<bool> {
    if path.is_root() {
        if nx {
            return Ok(false);
        }
        *d = value.into_doc();
        return Ok(true);
    }
    let value = value.into_tree();
    if let Some(done) = set_in_text(d, path, &value, nx, xx)? {
        return Ok(done);
    }
    let locs: Vec<Loc> = if nx { Vec::new() } else { path.locate(d.tree()).into_iter().map(|(_, l)| l).collect() };
    if !locs.is_empty() {
        let locs = ops::outermost(locs);
        for l in &locs {
            check_depth(l.len(), &value)?;
        }
        reserve(d, value.mem_size().saturating_mul(locs.len()))?;
        let n = locs.len();
        let mut value = Some(value);
        for (i, l) in locs.iter().enumerate() {
            if let Some(node) = ops::node_mut(d.tree(), l) {
                *node = if i + 1 == n { value.take().unwrap_or(Json::Null) } else { value.clone().unwrap_or(Json::Null) };
            }
        }
        return Ok(true);
    }
    if xx {
        return Ok(false);
    }
    let Some((parents, last)) = path.static_parent(d.tree()) else {
        return Err(err::wrong_static_path());
    };
    match last {
        Last::Name(name) => {
            let Some((parent, loc)) = parents.into_iter().next() else { return Ok(false) };
            if !matches!(parent, Json::Object(_)) || parent.member(name).is_some() {
                return Ok(false);
            }
            let loc = loc.clone();
            check_depth(loc.len() + 1, &value)?;
            reserve(d, value.mem_size() + 24)?;
            if let Some(Json::Object(m)) = ops::node_mut(d.tree(), &loc) {
                m.push((SmallBytes::new(name), value));
            }
            Ok(true)
        }
        Last::Index => {
            if path.first(d.tree()).is_some() {
                Ok(false)
            } else {
                Err(err::index_out_of_bounds())
            }
        }
    }
}

/// The errors JSON.SET would reply for `path` in `d` when it matches
/// nothing (a dynamic path, or an array index past the end), checked before
/// JSON.MSET writes anything.
pub(super) fn check_settable(d: &JsonDoc, path: &JsonPath) -> CmdResult {
    if path.is_root() {
        return Ok(());
    }
    let root = d.view();
    if path.first(&root).is_some() {
        return Ok(());
    }
    match path.static_parent(&root) {
        None => Err(err::wrong_static_path()),
        Some((_, Last::Index)) => Err(err::index_out_of_bounds()),
        Some(_) => Ok(()),
    }
}

/// Parses JSON.SET's NX / XX options (at most one of them).
pub(super) fn set_options(args: &[Bytes]) -> CmdResult<(bool, bool)> {
    let (mut nx, mut xx) = (false, false);
    for a in args {
        if eq_ic(a, "NX") && !nx && !xx {
            nx = true;
        } else if eq_ic(a, "XX") && !nx && !xx {
            xx = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((nx, xx))
}

pub(super) fn set(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (nx, xx) = set_options(&args[4..])?;
    let path = parse_path(&args[2])?;
    let value = NewValue::parse(&path, &args[3])?;
    let key = &args[1];
    let done = match doc(ctx, key)? {
        Some(d) => set_in_doc(&mut Editing::new(d), &path, value, nx, xx)?,
        None => {
            if xx {
                false
            } else if !path.is_root() {
                return Err(err::new_at_root());
            } else {
                ctx.db().insert_new(key, Value::Json(Box::new(value.into_doc())), 0);
                true
            }
        }
    };
    if done {
        out.ok();
    } else {
        out.nil();
    }
    Ok(())
}

pub(super) fn merge(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::Syntax);
    }
    let path = parse_path(&args[2])?;
    let patch = parse_arg(&args[3])?;
    let key = &args[1];
    let Some(d) = doc(ctx, key)? else {
        if !path.is_root() {
            return Err(err::new_at_root());
        }
        let mut v = Json::Null;
        ops::merge(&mut v, &patch);
        ctx.db().insert_new(key, Value::Json(Box::new(JsonDoc::from_tree(v))), 0);
        out.ok();
        return Ok(());
    };
    let mut d = Editing::new(d);
    if merge_in_text(&mut d, &path, &patch)?.is_some() {
        out.ok();
        return Ok(());
    }
    if path.is_root() {
        check_depth(0, &patch)?;
        reserve(&mut d, patch.mem_size())?;
        ops::merge(d.tree(), &patch);
        out.ok();
        return Ok(());
    }
    let locs: Vec<Loc> = path.locate(d.tree()).into_iter().map(|(_, l)| l).collect();
    if locs.is_empty() {
        // Creating a member where the parent object exists, as JSON.SET does.
        let created = match path.static_parent(d.tree()) {
            Some((parents, Last::Name(name))) if !matches!(patch, Json::Null) => match parents.into_iter().next() {
                Some((Json::Object(_), loc)) => {
                    check_depth(loc.len() + 1, &patch)?;
                    reserve(&mut d, patch.mem_size() + 24)?;
                    let mut v = Json::Null;
                    ops::merge(&mut v, &patch);
                    if let Some(Json::Object(m)) = ops::node_mut(d.tree(), &loc) {
                        m.push((SmallBytes::new(name), v));
                    }
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if created {
            out.ok();
        } else {
            out.nil();
        }
        return Ok(());
    }
    let locs = ops::outermost(locs);
    for l in &locs {
        check_depth(l.len(), &patch)?;
    }
    reserve(&mut d, patch.mem_size().saturating_mul(locs.len()))?;
    for l in &locs {
        if matches!(patch, Json::Null) {
            ops::remove_at(d.tree(), l);
        } else if let Some(n) = ops::node_mut(d.tree(), l) {
            ops::merge(n, &patch);
        }
    }
    out.ok();
    Ok(())
}

pub(super) fn del(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity(&String::from_utf8_lossy(&args[0])));
    }
    let path = path_arg(args, 2)?;
    let key = &args[1];
    let Some(d) = doc(ctx, key)? else {
        out.int(0);
        return Ok(());
    };
    if path.is_root() {
        let now = ctx.now;
        ctx.db().remove(key, now);
        out.int(1);
        return Ok(());
    }
    let mut d = Editing::new(d);
    if let Some(n) = del_in_text(&mut d, &path) {
        out.int(n);
        return Ok(());
    }
    let locs = ops::outermost(path.locate(d.tree()).into_iter().map(|(_, l)| l).collect());
    let mut n = 0;
    for l in &locs {
        if ops::remove_at(d.tree(), l).is_some() {
            n += 1;
        }
    }
    out.int(n);
    Ok(())
}

pub(super) fn clear(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.clear"));
    }
    let path = path_arg(args, 2)?;
    let mut d = edit_required(ctx, &args[1])?;
    let locs: Vec<Loc> = path
        .locate(d.tree())
        .into_iter()
        .filter(|(v, _)| match v {
            Json::Array(a) => !a.is_empty(),
            Json::Object(m) => !m.is_empty(),
            Json::Int(n) => *n != 0,
            Json::Float(f) => *f != 0.0,
            _ => false,
        })
        .map(|(_, l)| l)
        .collect();
    let mut n = 0;
    for l in ops::outermost(locs) {
        if ops::node_mut(d.tree(), &l).is_some_and(ops::clear) {
            n += 1;
        }
    }
    out.int(n);
    Ok(())
}

pub(super) fn toggle(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let path = parse_path(&args[2])?;
    let mut d = edit_required(ctx, &args[1])?;
    let res = match toggle_in_text(&mut d, &path) {
        Some(res) => res,
        None => {
            let locs = typed_locs(d.tree(), &path, |v| matches!(v, Json::Bool(_)));
            mutate(d.tree(), locs, |v, _| match v {
                Json::Bool(b) => {
                    *b = !*b;
                    *b
                }
                _ => false,
            })
        }
    };
    if path.legacy {
        match last_of(&res) {
            Some(b) => out.bulk(if b { b"true" } else { b"false" }),
            None => return Err(err::path_missing_or("not a bool")),
        }
    } else {
        int_array(out, &res.iter().map(|r| r.map(|b| b as i64)).collect::<Vec<_>>());
    }
    Ok(())
}

pub(super) fn num_op(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, op: NumOp) -> CmdResult {
    let path = parse_path(&args[2])?;
    let n = Json::parse(&args[3]).map_err(err::parse)?;
    if !n.is_number() {
        return Err(err::bad_number());
    }
    let mut d = edit_required(ctx, &args[1])?;
    let results = match num_in_text(&mut d, &path, &n, op)? {
        Some(results) => results,
        None => num_in_tree(&mut d, &path, &n, op)?,
    };
    if out.resp3 {
        out.array(results.len());
        for r in &results {
            match r {
                Some(Json::Int(i)) => out.int(*i),
                Some(Json::Float(f)) => out.double(*f),
                _ => out.nil(),
            }
        }
    } else if path.legacy {
        match last_of(&results) {
            Some(v) => out.bulk(&v.to_text()),
            None => return Err(err::path_missing_or("does not contains a number")),
        }
    } else {
        let mut text = Vec::new();
        jv::write_items(results.iter().map(|r| r.as_ref().map_or(Item::Null, Item::Value)), &mut text, &Format::COMPACT);
        out.bulk(&text);
    }
    Ok(())
}

/// JSON.NUMINCRBY/NUMMULTBY on the tree: every result is computed first,
/// so one that is not a finite number fails the command before anything
/// changes.
fn num_in_tree(d: &mut JsonDoc, path: &JsonPath, n: &Json, op: NumOp) -> CmdResult<Vec<Option<Json>>> {
    let matches = path.locate(d.tree());
    let mut planned: Vec<Option<(Loc, Json)>> = Vec::with_capacity(matches.len());
    for (v, l) in matches {
        if v.is_number() {
            planned.push(Some((l, ops::num_op(v, n, op).ok_or_else(err::not_a_number)?)));
        } else {
            planned.push(None);
        }
    }
    let mut results: Vec<Option<Json>> = Vec::with_capacity(planned.len());
    for p in planned {
        match p {
            Some((l, r)) => {
                if let Some(node) = ops::node_mut(d.tree(), &l) {
                    *node = r.clone();
                }
                results.push(Some(r));
            }
            None => results.push(None),
        }
    }
    Ok(results)
}

pub(super) fn numincrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    num_op(ctx, args, out, NumOp::Incr)
}

pub(super) fn nummultby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    num_op(ctx, args, out, NumOp::Mult)
}

pub(super) fn strappend(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (path, text) = match args.len() {
        3 => (parse_path(b".")?, &args[2]),
        4 => (parse_path(&args[2])?, &args[3]),
        _ => return Err(CmdError::wrong_arity("json.strappend")),
    };
    let suffix = match parse_arg(text)? {
        Json::Str(s) => s,
        other => return Err(err::wrong_type("string", &other)),
    };
    let mut d = edit_required(ctx, &args[1])?;
    let res = match strappend_in_text(&mut d, &path, &suffix) {
        Some(res) => res,
        None => strappend_in_tree(&mut d, &path, &suffix)?,
    };
    if path.legacy {
        out.int(last_of(&res).ok_or_else(|| err::path_missing_or("not a string"))?);
    } else {
        int_array(out, &res);
    }
    Ok(())
}

fn strappend_in_tree(d: &mut JsonDoc, path: &JsonPath, suffix: &[u8]) -> CmdResult<Vec<Option<i64>>> {
    let locs = typed_locs(d.tree(), path, |v| matches!(v, Json::Str(_)));
    let count = locs.iter().flatten().count();
    reserve(d, suffix.len().saturating_mul(count))?;
    Ok(mutate(d.tree(), locs, |v, _| match v {
        Json::Str(s) => {
            let mut b = Vec::with_capacity(s.len() + suffix.len());
            b.extend_from_slice(s);
            b.extend_from_slice(suffix);
            let n = b.len() as i64;
            *s = SmallBytes::from_vec(b);
            n
        }
        _ => 0,
    }))
}

pub(super) fn parse_values(args: &[Bytes]) -> CmdResult<Vec<Json>> {
    args.iter().map(|a| parse_arg(a)).collect()
}

pub(super) fn arrappend(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let path = parse_path(&args[2])?;
    let values = parse_values(&args[3..])?;
    let mut d = edit_required(ctx, &args[1])?;
    let res = match append_in_text(&mut d, &path, &values)? {
        Some(res) => res,
        None => append_in_tree(&mut d, &path, &values)?,
    };
    if path.legacy {
        out.int(last_of(&res).ok_or_else(|| err::path_missing_or("not an array"))?);
    } else {
        int_array(out, &res);
    }
    Ok(())
}

fn append_in_tree(d: &mut JsonDoc, path: &JsonPath, values: &[Json]) -> CmdResult<Vec<Option<i64>>> {
    let locs = typed_locs(d.tree(), path, |v| matches!(v, Json::Array(_)));
    let added: usize = values.iter().map(Json::mem_size).sum();
    for l in locs.iter().flatten() {
        for v in values {
            check_depth(l.len() + 1, v)?;
        }
    }
    reserve(d, added.saturating_mul(locs.iter().flatten().count()))?;
    Ok(mutate(d.tree(), locs, |v, _| match v {
        Json::Array(a) => {
            a.extend(values.iter().cloned());
            a.len() as i64
        }
        _ => 0,
    }))
}

pub(super) fn arrinsert(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let path = parse_path(&args[2])?;
    let index = parse_i64(&args[3])?;
    let values = parse_values(&args[4..])?;
    let mut d = edit_required(ctx, &args[1])?;
    let res = match arrinsert_in_text(&mut d, &path, index, &values)? {
        Some(res) => res,
        None => arrinsert_in_tree(&mut d, &path, index, &values)?,
    };
    if path.legacy {
        out.int(last_of(&res).ok_or_else(|| err::path_missing_or("not an array"))?);
    } else {
        int_array(out, &res);
    }
    Ok(())
}

fn arrinsert_in_tree(d: &mut JsonDoc, path: &JsonPath, index: i64, values: &[Json]) -> CmdResult<Vec<Option<i64>>> {
    let matches = path.locate(d.tree());
    let mut locs = Vec::with_capacity(matches.len());
    for (v, l) in matches {
        match v {
            Json::Array(a) => {
                ops::insert_position(a.len(), index).ok_or_else(err::index_out_of_bounds)?;
                for x in values {
                    check_depth(l.len() + 1, x)?;
                }
                locs.push(Some(l));
            }
            _ => locs.push(None),
        }
    }
    let added: usize = values.iter().map(Json::mem_size).sum();
    reserve(d, added.saturating_mul(locs.iter().flatten().count()))?;
    Ok(mutate(d.tree(), locs, |v, _| match v {
        Json::Array(a) => {
            let at = ops::insert_position(a.len(), index).unwrap_or(a.len());
            a.splice(at..at, values.iter().cloned());
            a.len() as i64
        }
        _ => 0,
    }))
}

pub(super) fn arrpop(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::wrong_arity("json.arrpop"));
    }
    let path = path_arg(args, 2)?;
    let index = args.get(3).map(|a| parse_i64(a)).transpose()?.unwrap_or(-1);
    let mut d = edit_required(ctx, &args[1])?;
    let locs = typed_locs(d.tree(), &path, |v| matches!(v, Json::Array(_)));
    let any = locs.iter().any(Option::is_some);
    let res = mutate(d.tree(), locs, |v, _| match v {
        Json::Array(a) => ops::arr_pop(a, index),
        _ => None,
    });
    if path.legacy {
        if !any {
            return Err(err::path_missing_or("not an array"));
        }
        match res.iter().rev().flatten().next() {
            Some(Some(v)) => out.bulk(&v.to_text()),
            _ => out.nil(),
        }
    } else {
        out.array(res.len());
        for r in &res {
            match r {
                Some(Some(v)) => out.bulk(&v.to_text()),
                _ => out.nil(),
            }
        }
    }
    Ok(())
}

pub(super) fn arrtrim(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let path = parse_path(&args[2])?;
    let (start, stop) = (parse_i64(&args[3])?, parse_i64(&args[4])?);
    let mut d = edit_required(ctx, &args[1])?;
    let locs = typed_locs(d.tree(), &path, |v| matches!(v, Json::Array(_)));
    let res = mutate(d.tree(), locs, |v, _| match v {
        Json::Array(a) => ops::arr_trim(a, start, stop) as i64,
        _ => 0,
    });
    if path.legacy {
        out.int(last_of(&res).ok_or_else(|| err::path_missing_or("not an array"))?);
    } else {
        int_array(out, &res);
    }
    Ok(())
}

/// One checked JSON.MSET triplet, ready to apply on its shard.
pub struct MsetItem {
    key: Bytes,
    path: JsonPath,
    value: NewValue,
}

/// JSON.MSET: every triplet is parsed first, then all the keys' shards are
/// locked (in order) and every triplet checked against the documents as
/// they are (type, creation at the root); only if all pass are they applied,
/// while the locks are still held. Replies OK, or nil when some path could
/// not be set (as RedisJSON).
pub async fn mset(cx: &mut dyn Coord, args: &[Bytes]) -> CmdResult {
    if !(args.len() - 1).is_multiple_of(3) {
        return Err(CmdError::wrong_arity("json.mset"));
    }
    let mut parts: Vec<(usize, Vec<MsetItem>)> = Vec::new();
    for t in args[1..].chunks_exact(3) {
        let path = parse_path(&t[1])?;
        let value = NewValue::parse(&path, &t[2])?;
        let s = cx.engine().shard_of(&t[0]);
        let item = MsetItem { key: t[0].clone(), path, value };
        match parts.iter_mut().find(|p| p.0 == s) {
            Some(p) => p.1.push(item),
            None => parts.push((s, vec![item])),
        }
    }
    parts.sort_by_key(|p| p.0);
    let db = cx.db();
    let mut shards = Vec::with_capacity(parts.len());
    let mut failed = None;
    for (s, items) in parts {
        // Check this shard's triplets; hand them back for the second phase.
        let (items, checked) = cx
            .lock_run(s, move |sh| {
                let now = crate::util::now_ms();
                let d = sh.db(db);
                let mut created: Vec<Bytes> = Vec::new();
                for it in &items {
                    match d.get(&it.key, now).map(|e| &e.value) {
                        Some(Value::Json(doc)) => {
                            if let Err(e) = check_settable(doc, &it.path) {
                                return (items, Err(e));
                            }
                        }
                        Some(_) => return (items, Err(CmdError::WrongType)),
                        None if it.path.is_root() => created.push(it.key.clone()),
                        None if created.contains(&it.key) => {}
                        None => return (items, Err(err::new_at_root())),
                    }
                }
                (items, Ok(()))
            })
            .await;
        if let Err(e) = checked {
            failed = Some(e);
            break;
        }
        shards.push((s, items));
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut all = true;
    for (s, items) in shards {
        all &= cx
            .run_on(s, move |sh| {
                let now = crate::util::now_ms();
                let d = sh.db(db);
                let mut all = true;
                for it in items {
                    let done = match d.get_mut(&it.key, now).map(|e| &mut e.value) {
                        Some(Value::Json(doc)) => set_in_doc(&mut Editing::new(doc), &it.path, it.value, false, false).unwrap_or(false),
                        _ if it.path.is_root() => {
                            d.set(&it.key, Value::Json(Box::new(it.value.into_doc())), false, now);
                            true
                        }
                        _ => false,
                    };
                    all &= done;
                }
                all
            })
            .await;
    }
    if all {
        cx.out().ok();
    } else {
        cx.out().nil();
    }
    Ok(())
}
