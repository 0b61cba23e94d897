//! JSON commands (RedisJSON-compatible): JSON.SET/GET/MGET/MSET/MERGE/DEL/
//! FORGET/TYPE/CLEAR/TOGGLE/NUMINCRBY/NUMMULTBY/STRAPPEND/STRLEN/ARRAPPEND/
//! ARRINDEX/ARRINSERT/ARRLEN/ARRPOP/ARRTRIM/OBJKEYS/OBJLEN/RESP/DEBUG.
//!
//! Reply shapes follow RedisJSON: a `$` path replies with an array over all
//! matches (nil where a match has the wrong type); a legacy path replies with
//! one value (the first match, or the last one written) and errors where
//! RedisJSON errors. Every argument (JSON text, path, number) is parsed and
//! every match checked before the document is changed, so a failing command
//! leaves the key as it was.

use bytes::Bytes;

use super::notify::Notify;
use super::{cmd, flag::*, Combine, CommandSpec, Coord, Ctx, Exec};
use crate::config::keyspace_events as ks;
use crate::error::{CmdError, CmdResult};
use crate::handler;
use crate::resp::Out;
use crate::store::{SmallBytes, Value};
use crate::types::json::ops::{self, NumOp};
use crate::types::json::path::{Last, Loc};
use crate::types::json::value::{self as jv, Format, Item, MAX_DEPTH, MAX_DOC_BYTES};
use crate::types::json::{err, parse_arg, parse_path, Json, JsonDoc, JsonPath};
use crate::util::{eq_ic, parse_i64};

const J: &[&str] = &["json"];
const G: &str = "json";

pub static COMMANDS: &[CommandSpec] = &[
    cmd("json.set", -4, WRITE | DENYOOM | JOURNAL_ARGS, (1, 1, 1), J, G, "Sets or updates the JSON value at a path.", Exec::Shard(set))
        .notify(Notify::Each(ks::MODULE, "json.set")),
    cmd("json.get", -2, READONLY, (1, 1, 1), J, G, "Gets the value at one or more paths in JSON serialized form.", Exec::Shard(get)),
    cmd(
        "json.mget",
        -3,
        READONLY,
        (1, -2, 1),
        J,
        G,
        "Returns the values at a path from one or more keys.",
        Exec::Split(mget, Combine::Array),
    )
    .tips(&["request_policy:multi_shard"]),
    cmd(
        "json.mset",
        -4,
        WRITE | DENYOOM,
        (1, -1, 3),
        J,
        G,
        "Sets or updates the JSON value of one or more keys, atomically.",
        Exec::Coord(handler!(async |cx, a| mset(cx, a))),
    )
    .notify(Notify::Each(ks::MODULE, "json.mset")),
    cmd(
        "json.merge",
        -4,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Merges a given JSON value into matching paths (RFC 7396).",
        Exec::Shard(merge),
    )
    .notify(Notify::Each(ks::MODULE, "json.merge")),
    cmd("json.del", -2, WRITE | JOURNAL_ARGS, (1, 1, 1), J, G, "Deletes a value.", Exec::Shard(del))
        .notify(Notify::Each(ks::MODULE, "json.del")),
    cmd("json.forget", -2, WRITE | JOURNAL_ARGS, (1, 1, 1), J, G, "Deletes a value.", Exec::Shard(del))
        .notify(Notify::Each(ks::MODULE, "json.del")),
    cmd("json.type", -2, READONLY, (1, 1, 1), J, G, "Returns the type of the JSON value at path.", Exec::Shard(type_)),
    cmd(
        "json.clear",
        -2,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Clears all values from an array or an object and sets numeric values to 0.",
        Exec::Shard(clear),
    )
    .notify(Notify::Each(ks::MODULE, "json.clear")),
    cmd("json.toggle", 3, WRITE | JOURNAL_ARGS, (1, 1, 1), J, G, "Toggles a boolean value.", Exec::Shard(toggle))
        .notify(Notify::Each(ks::MODULE, "json.toggle")),
    cmd(
        "json.numincrby",
        4,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Increments the numeric value at path by a value.",
        Exec::Shard(numincrby),
    )
    .notify(Notify::Each(ks::MODULE, "json.numincrby")),
    cmd(
        "json.nummultby",
        4,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Multiplies the numeric value at path by a value.",
        Exec::Shard(nummultby),
    )
    .notify(Notify::Each(ks::MODULE, "json.nummultby")),
    cmd(
        "json.strappend",
        -3,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Appends a string to a JSON string value at path.",
        Exec::Shard(strappend),
    )
    .notify(Notify::Each(ks::MODULE, "json.strappend")),
    cmd("json.strlen", -2, READONLY, (1, 1, 1), J, G, "Returns the length of the JSON String at path in key.", Exec::Shard(strlen)),
    cmd(
        "json.arrappend",
        -4,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Appends one or more JSON values into the array at path after the last element in it.",
        Exec::Shard(arrappend),
    )
    .notify(Notify::Each(ks::MODULE, "json.arrappend")),
    cmd(
        "json.arrindex",
        -4,
        READONLY,
        (1, 1, 1),
        J,
        G,
        "Returns the index of the first occurrence of a JSON scalar value in the array at path.",
        Exec::Shard(arrindex),
    ),
    cmd(
        "json.arrinsert",
        -5,
        WRITE | DENYOOM | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Inserts the JSON scalar(s) value at the specified index in the array at path.",
        Exec::Shard(arrinsert),
    )
    .notify(Notify::Each(ks::MODULE, "json.arrinsert")),
    cmd("json.arrlen", -2, READONLY, (1, 1, 1), J, G, "Returns the length of the array at path.", Exec::Shard(arrlen)),
    cmd(
        "json.arrpop",
        -2,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Removes and returns the element at the specified index in the array at path.",
        Exec::Shard(arrpop),
    )
    .notify(Notify::Each(ks::MODULE, "json.arrpop")),
    cmd(
        "json.arrtrim",
        5,
        WRITE | JOURNAL_ARGS,
        (1, 1, 1),
        J,
        G,
        "Trims the array at path to contain only the specified inclusive range of indices from start to stop.",
        Exec::Shard(arrtrim),
    )
    .notify(Notify::Each(ks::MODULE, "json.arrtrim")),
    cmd("json.objkeys", -2, READONLY, (1, 1, 1), J, G, "Returns the JSON keys of the object at path.", Exec::Shard(objkeys)),
    cmd("json.objlen", -2, READONLY, (1, 1, 1), J, G, "Returns the number of keys of the object at path.", Exec::Shard(objlen)),
    cmd(
        "json.resp",
        -2,
        READONLY,
        (1, 1, 1),
        J,
        G,
        "Returns the JSON value at path in Redis Serialization Protocol (RESP).",
        Exec::Shard(resp),
    ),
    cmd("json.debug", -2, READONLY, (2, 2, 1), J, G, "Debugging container command (MEMORY, HELP).", Exec::Shard(debug)),
];

/// The document at `key`: `None` when missing, WRONGTYPE for other types.
fn doc<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a mut JsonDoc>> {
    let now = ctx.now;
    match ctx.db().get_mut(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Json(d) => Ok(Some(d)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// The document at `key`, which must exist.
fn doc_required<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<&'a mut JsonDoc> {
    doc(ctx, key)?.ok_or_else(err::no_key)
}

/// The optional path argument at `i` (the legacy root when absent).
fn path_arg(args: &[Bytes], i: usize) -> CmdResult<JsonPath> {
    parse_path(args.get(i).map(|b| &b[..]).unwrap_or(b"."))
}

/// Locations of the matches; `None` for a match that fails `keep`.
fn typed_locs(root: &Json, path: &JsonPath, keep: impl Fn(&Json) -> bool) -> Vec<Option<Loc>> {
    path.locate(root).into_iter().map(|(v, l)| keep(v).then_some(l)).collect()
}

/// Applies `f` to every kept location in a safe order; results land in
/// match order.
fn mutate<R>(root: &mut Json, locs: Vec<Option<Loc>>, mut f: impl FnMut(&mut Json, &Loc) -> R) -> Vec<Option<R>> {
    let mut res: Vec<Option<R>> = (0..locs.len()).map(|_| None).collect();
    let mut order: Vec<(usize, Loc)> = locs.into_iter().enumerate().filter_map(|(i, l)| l.map(|l| (i, l))).collect();
    ops::sort_for_mutation(&mut order);
    for (i, loc) in order {
        if let Some(n) = ops::node_mut(root, &loc) {
            res[i] = Some(f(n, &loc));
        }
    }
    res
}

fn int_array(out: &mut Out, res: &[Option<i64>]) {
    out.array(res.len());
    for r in res {
        match r {
            Some(n) => out.int(*n),
            None => out.nil(),
        }
    }
}

/// The result for a legacy path: the last written value in match order.
fn last_of<R: Clone>(res: &[Option<R>]) -> Option<R> {
    res.iter().rev().flatten().next().cloned()
}

/// Refuses a value whose nesting below `at_depth` containers would pass the
/// limit.
fn check_depth(at_depth: usize, v: &Json) -> CmdResult {
    if at_depth + v.depth() > MAX_DEPTH {
        return Err(err::too_deep());
    }
    Ok(())
}

fn reserve(d: &mut JsonDoc, added: usize) -> CmdResult {
    if d.reserve(added, MAX_DOC_BYTES) {
        Ok(())
    } else {
        Err(err::too_large())
    }
}

/// A document for a parsed value (parsing already kept it within the size
/// limit).
fn new_doc(v: Json) -> CmdResult<Box<JsonDoc>> {
    Ok(Box::new(JsonDoc::new(v)))
}

/// What JSON.SET does to an existing document (shared with JSON.MSET).
/// Returns whether the value was written (false: NX/XX unmet or the path
/// cannot be created).
pub fn set_in_doc(d: &mut JsonDoc, path: &JsonPath, value: Json, nx: bool, xx: bool) -> CmdResult<bool> {
    if path.is_root() {
        if nx {
            return Ok(false);
        }
        *d = *new_doc(value)?;
        return Ok(true);
    }
    let locs: Vec<Loc> = if nx { Vec::new() } else { path.locate(&d.root).into_iter().map(|(_, l)| l).collect() };
    if !locs.is_empty() {
        let locs = ops::outermost(locs);
        for l in &locs {
            check_depth(l.len(), &value)?;
        }
        reserve(d, value.mem_size().saturating_mul(locs.len()))?;
        let n = locs.len();
        let mut value = Some(value);
        for (i, l) in locs.iter().enumerate() {
            if let Some(node) = ops::node_mut(&mut d.root, l) {
                *node = if i + 1 == n { value.take().unwrap_or(Json::Null) } else { value.clone().unwrap_or(Json::Null) };
            }
        }
        return Ok(true);
    }
    if xx {
        return Ok(false);
    }
    let Some((parents, last)) = path.static_parent(&d.root) else {
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
            if let Some(Json::Object(m)) = ops::node_mut(&mut d.root, &loc) {
                m.push((SmallBytes::new(name), value));
            }
            Ok(true)
        }
        Last::Index => {
            if path.first(&d.root).is_some() {
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
fn check_settable(d: &JsonDoc, path: &JsonPath) -> CmdResult {
    if path.is_root() || path.first(&d.root).is_some() {
        return Ok(());
    }
    match path.static_parent(&d.root) {
        None => Err(err::wrong_static_path()),
        Some((_, Last::Index)) => Err(err::index_out_of_bounds()),
        Some(_) => Ok(()),
    }
}

/// Parses JSON.SET's NX / XX options (at most one of them).
fn set_options(args: &[Bytes]) -> CmdResult<(bool, bool)> {
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

fn set(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (nx, xx) = set_options(&args[4..])?;
    let path = parse_path(&args[2])?;
    let value = parse_arg(&args[3])?;
    let key = &args[1];
    let done = match doc(ctx, key)? {
        Some(d) => set_in_doc(d, &path, value, nx, xx)?,
        None => {
            if xx {
                false
            } else if !path.is_root() {
                return Err(err::new_at_root());
            } else {
                let d = new_doc(value)?;
                ctx.db().insert_new(key, Value::Json(d), 0);
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

/// JSON.GET's reply format (RESP3 only besides STRING).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplyFormat {
    String,
    Expand1,
    Expand,
}

fn get(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (mut indent, mut newline, mut space): (&[u8], &[u8], &[u8]) = (b"", b"", b"");
    let mut format = ReplyFormat::String;
    let mut paths: Vec<&[u8]> = Vec::new();
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        let value = || args.get(i + 1).map(|b| &b[..]).ok_or_else(|| CmdError::wrong_arity("json.get"));
        if a.len() > 8 {
            paths.push(a);
        } else if eq_ic(a, "INDENT") {
            indent = value()?;
            i += 1;
        } else if eq_ic(a, "NEWLINE") {
            newline = value()?;
            i += 1;
        } else if eq_ic(a, "SPACE") {
            space = value()?;
            i += 1;
        } else if eq_ic(a, "NOESCAPE") {
            // Accepted and ignored, as RedisJSON does.
        } else if eq_ic(a, "FORMAT") {
            if !out.resp3 {
                return Err(CmdError::err("FORMAT argument is not supported on RESP2"));
            }
            let f = value()?;
            format = if eq_ic(f, "STRING") {
                ReplyFormat::String
            } else if eq_ic(f, "EXPAND1") {
                ReplyFormat::Expand1
            } else if eq_ic(f, "EXPAND") {
                ReplyFormat::Expand
            } else {
                return Err(CmdError::err("wrong reply format"));
            };
            i += 1;
        } else {
            paths.push(a);
        }
        i += 1;
    }
    if paths.is_empty() {
        paths.push(b".");
    }
    let fmt = Format { indent, newline, space };
    let Some(d) = doc(ctx, &args[1])? else {
        out.nil();
        return Ok(());
    };
    let root = &d.root;
    if format != ReplyFormat::String {
        out.array(paths.len());
        for p in &paths {
            let matches = parse_path(p).map(|p| p.select(root)).unwrap_or_default();
            out.array(matches.len());
            for v in matches {
                resp3_value(v, format == ReplyFormat::Expand, &fmt, out);
            }
        }
        return Ok(());
    }
    let mut text = Vec::new();
    if paths.len() == 1 {
        let p = parse_path(paths[0])?;
        if p.legacy {
            let v = p.first(root).ok_or_else(|| err::path_missing(&p.normalized))?;
            v.write(&mut text, &fmt);
        } else {
            jv::write_array(p.select(root).into_iter(), &mut text, &fmt);
        }
        out.bulk(&text);
        return Ok(());
    }
    // Several paths: an object keyed by each path as given (once each, in
    // argument order; paths that do not parse are left out, as RedisJSON does).
    let parsed: Vec<(&[u8], JsonPath)> = paths.iter().filter_map(|p| parse_path(p).ok().map(|q| (*p, q))).collect();
    let legacy = paths.iter().all(|p| !p.starts_with(b"$"));
    let mut seen: Vec<&[u8]> = Vec::new();
    text.push(b'{');
    for (orig, p) in &parsed {
        if seen.contains(orig) {
            continue;
        }
        if !seen.is_empty() {
            text.push(b',');
        }
        seen.push(orig);
        fmt.line(&mut text, 1);
        jv::write_str(orig, &mut text);
        text.push(b':');
        text.extend_from_slice(fmt.space);
        if legacy {
            let v = p.first(root).ok_or_else(|| err::path_missing(&String::from_utf8_lossy(orig)))?;
            jv::write_value(v, &mut text, &fmt, 1);
        } else {
            jv::write_seq(p.select(root).into_iter().map(Item::Value), &mut text, &fmt, 1);
        }
    }
    if !seen.is_empty() {
        fmt.line(&mut text, 0);
    }
    text.push(b'}');
    out.bulk(&text);
    Ok(())
}

/// A value as a RESP3 reply: scalars natively; containers natively when
/// `expand`, else as JSON text.
fn resp3_value(v: &Json, expand: bool, fmt: &Format, out: &mut Out) {
    match v {
        Json::Null => out.nil(),
        Json::Bool(b) => out.boolean(*b),
        Json::Int(n) => out.int(*n),
        Json::Float(f) => out.double(*f),
        Json::Str(s) => out.bulk(s),
        Json::Array(a) if expand => {
            out.array(a.len());
            for x in a {
                resp3_value(x, true, fmt, out);
            }
        }
        Json::Object(m) if expand => {
            out.map(m.len());
            for (k, x) in m {
                out.bulk(k);
                resp3_value(x, true, fmt, out);
            }
        }
        _ => {
            let mut text = Vec::new();
            v.write(&mut text, fmt);
            out.bulk(&text);
        }
    }
}

fn mget(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let keys = &args[1..args.len() - 1];
    // A path that does not parse makes every reply nil, as in RedisJSON.
    let path = parse_path(&args[args.len() - 1]).ok();
    out.array(keys.len());
    ctx.mark(out);
    let now = ctx.now;
    for key in keys {
        let text = match (ctx.db().get(key, now).map(|e| &e.value), &path) {
            (Some(Value::Json(d)), Some(p)) => {
                if p.legacy {
                    p.first(&d.root).map(|v| v.to_text())
                } else {
                    let mut t = Vec::new();
                    jv::write_array(p.select(&d.root).into_iter(), &mut t, &Format::COMPACT);
                    Some(t)
                }
            }
            _ => None,
        };
        match text {
            Some(t) => out.bulk(&t),
            None => out.nil(),
        }
        ctx.mark(out);
    }
    Ok(())
}

fn merge(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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
        let d = new_doc(v)?;
        ctx.db().insert_new(key, Value::Json(d), 0);
        out.ok();
        return Ok(());
    };
    if path.is_root() {
        check_depth(0, &patch)?;
        reserve(d, patch.mem_size())?;
        ops::merge(&mut d.root, &patch);
        out.ok();
        return Ok(());
    }
    let locs: Vec<Loc> = path.locate(&d.root).into_iter().map(|(_, l)| l).collect();
    if locs.is_empty() {
        // Creating a member where the parent object exists, as JSON.SET does.
        let created = match path.static_parent(&d.root) {
            Some((parents, Last::Name(name))) if !matches!(patch, Json::Null) => match parents.into_iter().next() {
                Some((Json::Object(_), loc)) => {
                    check_depth(loc.len() + 1, &patch)?;
                    reserve(d, patch.mem_size() + 24)?;
                    let mut v = Json::Null;
                    ops::merge(&mut v, &patch);
                    if let Some(Json::Object(m)) = ops::node_mut(&mut d.root, &loc) {
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
    reserve(d, patch.mem_size().saturating_mul(locs.len()))?;
    for l in &locs {
        if matches!(patch, Json::Null) {
            ops::remove_at(&mut d.root, l);
        } else if let Some(n) = ops::node_mut(&mut d.root, l) {
            ops::merge(n, &patch);
        }
    }
    out.ok();
    Ok(())
}

fn del(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
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
    let locs = ops::outermost(path.locate(&d.root).into_iter().map(|(_, l)| l).collect());
    let mut n = 0;
    for l in &locs {
        if ops::remove_at(&mut d.root, l).is_some() {
            n += 1;
        }
    }
    out.int(n);
    Ok(())
}

fn type_(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.type"));
    }
    let path = path_arg(args, 2)?;
    let resp3 = out.resp3;
    let Some(d) = doc(ctx, &args[1])? else {
        if resp3 {
            out.array(1);
        }
        out.nil();
        return Ok(());
    };
    if resp3 {
        out.array(1);
    }
    if path.legacy {
        match path.first(&d.root) {
            Some(v) => out.bulk(v.type_name().as_bytes()),
            None => out.nil(),
        }
    } else {
        let vals = path.select(&d.root);
        out.array(vals.len());
        for v in vals {
            out.bulk(v.type_name().as_bytes());
        }
    }
    Ok(())
}

fn clear(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.clear"));
    }
    let path = path_arg(args, 2)?;
    let d = doc_required(ctx, &args[1])?;
    let locs: Vec<Loc> = path
        .locate(&d.root)
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
        if ops::node_mut(&mut d.root, &l).is_some_and(ops::clear) {
            n += 1;
        }
    }
    out.int(n);
    Ok(())
}

fn toggle(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let path = parse_path(&args[2])?;
    let d = doc_required(ctx, &args[1])?;
    let locs = typed_locs(&d.root, &path, |v| matches!(v, Json::Bool(_)));
    let res = mutate(&mut d.root, locs, |v, _| match v {
        Json::Bool(b) => {
            *b = !*b;
            *b
        }
        _ => false,
    });
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

fn num_op(ctx: &mut Ctx, args: &[Bytes], out: &mut Out, op: NumOp) -> CmdResult {
    let path = parse_path(&args[2])?;
    let n = Json::parse(&args[3]).map_err(err::parse)?;
    if !n.is_number() {
        return Err(err::bad_number());
    }
    let d = doc_required(ctx, &args[1])?;
    // Compute every result first: one that is not a finite number fails
    // the command before anything changes.
    let matches = path.locate(&d.root);
    let mut planned: Vec<Option<(Loc, Json)>> = Vec::with_capacity(matches.len());
    for (v, l) in matches {
        if v.is_number() {
            planned.push(Some((l, ops::num_op(v, &n, op).ok_or_else(err::not_a_number)?)));
        } else {
            planned.push(None);
        }
    }
    let mut results: Vec<Option<Json>> = Vec::with_capacity(planned.len());
    for p in planned {
        match p {
            Some((l, r)) => {
                if let Some(node) = ops::node_mut(&mut d.root, &l) {
                    *node = r.clone();
                }
                results.push(Some(r));
            }
            None => results.push(None),
        }
    }
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

fn numincrby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    num_op(ctx, args, out, NumOp::Incr)
}

fn nummultby(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    num_op(ctx, args, out, NumOp::Mult)
}

fn strappend(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let (path, text) = match args.len() {
        3 => (parse_path(b".")?, &args[2]),
        4 => (parse_path(&args[2])?, &args[3]),
        _ => return Err(CmdError::wrong_arity("json.strappend")),
    };
    let suffix = match parse_arg(text)? {
        Json::Str(s) => s,
        other => return Err(err::wrong_type("string", &other)),
    };
    let d = doc_required(ctx, &args[1])?;
    let locs = typed_locs(&d.root, &path, |v| matches!(v, Json::Str(_)));
    let count = locs.iter().flatten().count();
    reserve(d, suffix.len().saturating_mul(count))?;
    let res = mutate(&mut d.root, locs, |v, _| match v {
        Json::Str(s) => {
            let mut b = Vec::with_capacity(s.len() + suffix.len());
            b.extend_from_slice(s);
            b.extend_from_slice(&suffix);
            let n = b.len() as i64;
            *s = SmallBytes::from_vec(b);
            n
        }
        _ => 0,
    });
    if path.legacy {
        out.int(last_of(&res).ok_or_else(|| err::path_missing_or("not a string"))?);
    } else {
        int_array(out, &res);
    }
    Ok(())
}

fn strlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.strlen"));
    }
    let path = path_arg(args, 2)?;
    if path.legacy {
        let Some(d) = doc(ctx, &args[1])? else {
            out.nil();
            return Ok(());
        };
        match path.first(&d.root) {
            Some(Json::Str(s)) => out.int(s.len() as i64),
            Some(v) => return Err(err::wrong_type("string", v)),
            None => return Err(err::path_missing(&path.normalized)),
        }
        return Ok(());
    }
    let d = doc_required(ctx, &args[1])?;
    let res: Vec<Option<i64>> = path.select(&d.root).into_iter().map(|v| v.as_str().map(|s| s.len() as i64)).collect();
    int_array(out, &res);
    Ok(())
}

fn parse_values(args: &[Bytes]) -> CmdResult<Vec<Json>> {
    args.iter().map(|a| parse_arg(a)).collect()
}

fn arrappend(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let path = parse_path(&args[2])?;
    let values = parse_values(&args[3..])?;
    let d = doc_required(ctx, &args[1])?;
    let locs = typed_locs(&d.root, &path, |v| matches!(v, Json::Array(_)));
    let added: usize = values.iter().map(Json::mem_size).sum();
    for l in locs.iter().flatten() {
        for v in &values {
            check_depth(l.len() + 1, v)?;
        }
    }
    reserve(d, added.saturating_mul(locs.iter().flatten().count()))?;
    let res = mutate(&mut d.root, locs, |v, _| match v {
        Json::Array(a) => {
            a.extend(values.iter().cloned());
            a.len() as i64
        }
        _ => 0,
    });
    if path.legacy {
        out.int(last_of(&res).ok_or_else(|| err::path_missing_or("not an array"))?);
    } else {
        int_array(out, &res);
    }
    Ok(())
}

fn arrindex(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 6 {
        return Err(CmdError::wrong_arity("json.arrindex"));
    }
    let path = parse_path(&args[2])?;
    let needle = parse_arg(&args[3])?;
    let start = args.get(4).map(|a| parse_i64(a)).transpose()?.unwrap_or(0);
    let stop = args.get(5).map(|a| parse_i64(a)).transpose()?.unwrap_or(0);
    let Some(d) = doc(ctx, &args[1])? else { return Err(err::path_missing_plain()) };
    let find = |v: &Json| -> Option<i64> {
        let Json::Array(a) = v else { return None };
        let (s, e) = ops::index_window(a.len(), start, stop);
        Some((s..e).find(|&i| a[i].same(&needle)).map_or(-1, |i| i as i64))
    };
    if path.legacy {
        let v = path.first(&d.root).ok_or_else(|| err::path_missing(&path.normalized))?;
        out.int(find(v).ok_or_else(|| err::wrong_type("array", v))?);
    } else {
        let res: Vec<Option<i64>> = path.select(&d.root).into_iter().map(find).collect();
        int_array(out, &res);
    }
    Ok(())
}

fn arrinsert(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let path = parse_path(&args[2])?;
    let index = parse_i64(&args[3])?;
    let values = parse_values(&args[4..])?;
    let d = doc_required(ctx, &args[1])?;
    let matches = path.locate(&d.root);
    let mut locs = Vec::with_capacity(matches.len());
    for (v, l) in matches {
        match v {
            Json::Array(a) => {
                ops::insert_position(a.len(), index).ok_or_else(err::index_out_of_bounds)?;
                for x in &values {
                    check_depth(l.len() + 1, x)?;
                }
                locs.push(Some(l));
            }
            _ => locs.push(None),
        }
    }
    let added: usize = values.iter().map(Json::mem_size).sum();
    reserve(d, added.saturating_mul(locs.iter().flatten().count()))?;
    let res = mutate(&mut d.root, locs, |v, _| match v {
        Json::Array(a) => {
            let at = ops::insert_position(a.len(), index).unwrap_or(a.len());
            a.splice(at..at, values.iter().cloned());
            a.len() as i64
        }
        _ => 0,
    });
    if path.legacy {
        out.int(last_of(&res).ok_or_else(|| err::path_missing_or("not an array"))?);
    } else {
        int_array(out, &res);
    }
    Ok(())
}

fn arrlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.arrlen"));
    }
    let path = path_arg(args, 2)?;
    let len = |v: &Json| match v {
        Json::Array(a) => Some(a.len() as i64),
        _ => None,
    };
    if path.legacy {
        let Some(d) = doc(ctx, &args[1])? else {
            out.nil();
            return Ok(());
        };
        let v = path.first(&d.root).ok_or_else(err::path_missing_plain)?;
        out.int(len(v).ok_or_else(|| err::path_missing_or("not an array"))?);
        return Ok(());
    }
    let d = doc_required(ctx, &args[1])?;
    let res: Vec<Option<i64>> = path.select(&d.root).into_iter().map(len).collect();
    int_array(out, &res);
    Ok(())
}

fn arrpop(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::wrong_arity("json.arrpop"));
    }
    let path = path_arg(args, 2)?;
    let index = args.get(3).map(|a| parse_i64(a)).transpose()?.unwrap_or(-1);
    let d = doc_required(ctx, &args[1])?;
    let locs = typed_locs(&d.root, &path, |v| matches!(v, Json::Array(_)));
    let any = locs.iter().any(Option::is_some);
    let res = mutate(&mut d.root, locs, |v, _| match v {
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

fn arrtrim(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let path = parse_path(&args[2])?;
    let (start, stop) = (parse_i64(&args[3])?, parse_i64(&args[4])?);
    let d = doc_required(ctx, &args[1])?;
    let locs = typed_locs(&d.root, &path, |v| matches!(v, Json::Array(_)));
    let res = mutate(&mut d.root, locs, |v, _| match v {
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

fn keys_reply(v: &Json, out: &mut Out) {
    if let Json::Object(m) = v {
        out.array(m.len());
        for (k, _) in m {
            out.bulk(k);
        }
    }
}

fn objkeys(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.objkeys"));
    }
    let path = path_arg(args, 2)?;
    if path.legacy {
        let Some(d) = doc(ctx, &args[1])? else {
            out.nil();
            return Ok(());
        };
        match path.first(&d.root) {
            Some(v @ Json::Object(_)) => keys_reply(v, out),
            Some(_) => return Err(err::path_missing_or("not an object")),
            None => out.nil(),
        }
        return Ok(());
    }
    let d = doc_required(ctx, &args[1])?;
    let vals = path.select(&d.root);
    out.array(vals.len());
    for v in vals {
        match v {
            Json::Object(_) => keys_reply(v, out),
            _ => out.nil(),
        }
    }
    Ok(())
}

fn objlen(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.objlen"));
    }
    let path = path_arg(args, 2)?;
    let found = doc(ctx, &args[1])?;
    if path.legacy {
        let Some(d) = found else {
            out.nil();
            return Ok(());
        };
        match path.first(&d.root) {
            Some(Json::Object(m)) => out.int(m.len() as i64),
            Some(v) => return Err(err::wrong_type("object", v)),
            None => out.nil(),
        }
        return Ok(());
    }
    let d = found.ok_or_else(|| err::path_missing_or("not an object"))?;
    let res: Vec<Option<i64>> = path
        .select(&d.root)
        .into_iter()
        .map(|v| match v {
            Json::Object(m) => Some(m.len() as i64),
            _ => None,
        })
        .collect();
    int_array(out, &res);
    Ok(())
}

/// JSON.RESP's encoding of a value.
fn resp_value(v: &Json, out: &mut Out) {
    match v {
        Json::Null => out.nil(),
        Json::Bool(b) => out.simple(if *b { "true" } else { "false" }),
        Json::Int(n) => out.int(*n),
        Json::Float(f) => out.double(*f),
        Json::Str(s) => out.bulk(s),
        Json::Array(a) => {
            out.array(a.len() + 1);
            out.simple("[");
            for x in a {
                resp_value(x, out);
            }
        }
        Json::Object(m) => {
            out.array(2 * m.len() + 1);
            out.simple("{");
            for (k, x) in m {
                out.bulk(k);
                resp_value(x, out);
            }
        }
    }
}

fn resp(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::wrong_arity("json.resp"));
    }
    let path = path_arg(args, 2)?;
    let Some(d) = doc(ctx, &args[1])? else {
        out.nil();
        return Ok(());
    };
    if path.legacy {
        let v = path.first(&d.root).ok_or_else(|| err::path_missing(&path.normalized))?;
        resp_value(v, out);
    } else {
        let vals = path.select(&d.root);
        out.array(vals.len());
        for v in vals {
            resp_value(v, out);
        }
    }
    Ok(())
}

fn debug(ctx: &mut Ctx, args: &[Bytes], out: &mut Out) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "HELP") {
        out.array(2);
        out.simple("MEMORY <key> [path] - reports memory usage");
        out.simple("HELP                - this message");
        return Ok(());
    }
    if !eq_ic(sub, "MEMORY") {
        return Err(CmdError::err("unknown subcommand - try `JSON.DEBUG HELP`"));
    }
    if args.len() < 3 || args.len() > 4 {
        return Err(CmdError::wrong_arity("json.debug"));
    }
    let path = path_arg(args, 3)?;
    let found = doc(ctx, &args[2])?;
    if path.legacy {
        let n = match found {
            Some(d) => path.first(&d.root).ok_or_else(|| err::path_missing(&path.normalized))?.mem_size(),
            None => 0,
        };
        out.int(n as i64);
    } else {
        let sizes: Vec<Option<i64>> = match found {
            Some(d) => path.select(&d.root).into_iter().map(|v| Some(v.mem_size() as i64)).collect(),
            None => Vec::new(),
        };
        int_array(out, &sizes);
    }
    Ok(())
}

/// One checked JSON.MSET triplet, ready to apply on its shard.
pub struct MsetItem {
    key: Bytes,
    path: JsonPath,
    value: Json,
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
        let value = parse_arg(&t[2])?;
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
                        Some(Value::Json(doc)) => set_in_doc(&mut *doc, &it.path, it.value, false, false).unwrap_or(false),
                        _ => match new_doc(it.value) {
                            Ok(doc) if it.path.is_root() => {
                                d.set(&it.key, Value::Json(doc), false, now);
                                true
                            }
                            _ => false,
                        },
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

#[cfg(test)]
mod tests;
